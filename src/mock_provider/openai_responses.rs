//! OpenAI Responses: `POST /v1/responses`, the `response.*` streaming events
//! (each with `type` and `sequence_number`) up to `response.completed`.
//! Codex CLI speaks this. Errors share the Chat Completions shape.

use serde_json::{Value, json};

use super::reply::Reply;
use super::select::collect_text;
use super::sse::{Frame, Payload};
use super::wire::{Inbound, unix_now};

/// True for input items the model produced (assistant messages, reasoning,
/// and `*_call` items such as `function_call`).
fn is_model_item(item: &Value) -> bool {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    let role = item.get("role").and_then(Value::as_str);
    match kind {
        "message" => role == Some("assistant"),
        "reasoning" => true,
        other => other.ends_with("_call"),
    }
}

/// The request facts: `instructions` and `input` text; assistant turns are
/// runs of consecutive model items in `input`.
pub fn inbound(body: &Value) -> Inbound {
    let mut text = String::new();
    if let Some(instructions) = body.get("instructions") {
        collect_text(instructions, &mut text);
    }
    let mut assistant_starts = Vec::new();
    match body.get("input") {
        Some(Value::Array(items)) => {
            let mut in_turn = false;
            for item in items {
                let model = is_model_item(item);
                if model && !in_turn {
                    assistant_starts.push(text.len());
                }
                in_turn = model;
                collect_text(item, &mut text);
            }
        }
        Some(other) => collect_text(other, &mut text),
        None => {}
    }
    Inbound {
        text,
        assistant_starts,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        include_usage: false,
    }
}

fn message_item(reply: &Reply, status: &str, text: &str) -> Value {
    let content = if status == "completed" {
        json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
    } else {
        json!([])
    };
    json!({"id": reply.id("msg"), "type": "message", "status": status,
           "role": "assistant", "content": content})
}

fn call_item(reply: &Reply, i: usize, status: &str, arguments: &str) -> Value {
    let name = reply
        .calls
        .get(i)
        .map(|c| c.name.as_str())
        .unwrap_or_default();
    json!({"id": reply.call_id("fc", i), "type": "function_call", "status": status,
           "call_id": reply.call_id("call", i), "name": name, "arguments": arguments})
}

fn output(reply: &Reply) -> Vec<Value> {
    let mut items = Vec::new();
    if reply.has_text() {
        items.push(message_item(reply, "completed", &reply.text));
    }
    for (i, call) in reply.calls.iter().enumerate() {
        items.push(call_item(reply, i, "completed", &call.arguments_json));
    }
    items
}

/// The response object; `status` `completed` carries the output and usage,
/// `in_progress` has neither.
pub fn response(reply: &Reply, status: &str) -> Value {
    let done = status == "completed";
    json!({
        "id": reply.id("resp"),
        "object": "response",
        "created_at": unix_now(),
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": reply.model,
        "output": if done { output(reply) } else { Vec::new() },
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": if done {
            json!({
                "input_tokens": reply.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": reply.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": reply.total_tokens(),
            })
        } else {
            Value::Null
        },
        "user": null,
        "metadata": {},
    })
}

/// The streamed answer, `sequence_number` counting from 0.
pub fn frames(reply: &Reply) -> Vec<Frame> {
    let mut frames = vec![
        Frame::named(
            "response.created",
            json!({"type": "response.created", "response": response(reply, "in_progress")}),
        ),
        Frame::named(
            "response.in_progress",
            json!({"type": "response.in_progress", "response": response(reply, "in_progress")}),
        ),
    ];
    let mut index = 0;
    if reply.has_text() {
        let item_id = reply.id("msg");
        let at = |kind: &str| json!({"type": kind, "item_id": item_id, "output_index": index, "content_index": 0});
        let with = |mut v: Value, key: &str, value: Value| {
            if let Some(obj) = v.as_object_mut() {
                obj.insert(key.to_string(), value);
            }
            v
        };
        frames.push(Frame::named(
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": index,
                   "item": message_item(reply, "in_progress", "")}),
        ));
        frames.push(Frame::named(
            "response.content_part.added",
            with(
                at("response.content_part.added"),
                "part",
                json!({"type": "output_text", "text": "", "annotations": []}),
            ),
        ));
        for piece in reply.text_pieces() {
            let delta = with(at("response.output_text.delta"), "delta", json!(piece));
            frames.push(
                Frame::named(
                    "response.output_text.delta",
                    with(delta, "logprobs", json!([])),
                )
                .delta_chunk(),
            );
        }
        let done = with(at("response.output_text.done"), "text", json!(reply.text));
        frames.push(Frame::named(
            "response.output_text.done",
            with(done, "logprobs", json!([])),
        ));
        frames.push(Frame::named(
            "response.content_part.done",
            with(
                at("response.content_part.done"),
                "part",
                json!({"type": "output_text", "text": reply.text, "annotations": []}),
            ),
        ));
        frames.push(Frame::named(
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": index,
                   "item": message_item(reply, "completed", &reply.text)}),
        ));
        index += 1;
    }
    for (i, call) in reply.calls.iter().enumerate() {
        let item_id = reply.call_id("fc", i);
        frames.push(Frame::named(
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": index,
                   "item": call_item(reply, i, "in_progress", "")}),
        ));
        for piece in reply.argument_pieces(i) {
            frames.push(
                Frame::named(
                    "response.function_call_arguments.delta",
                    json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                           "output_index": index, "delta": piece}),
                )
                .delta_chunk(),
            );
        }
        frames.push(Frame::named(
            "response.function_call_arguments.done",
            json!({"type": "response.function_call_arguments.done", "item_id": item_id,
                   "output_index": index, "name": call.name, "arguments": call.arguments_json}),
        ));
        frames.push(Frame::named(
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": index,
                   "item": call_item(reply, i, "completed", &call.arguments_json)}),
        ));
        index += 1;
    }
    frames.push(Frame::named(
        "response.completed",
        json!({"type": "response.completed", "response": response(reply, "completed")}),
    ));
    for (n, frame) in frames.iter_mut().enumerate() {
        if let Payload::Json(Value::Object(obj)) = &mut frame.data {
            obj.insert("sequence_number".into(), json!(n));
        }
    }
    frames
}
