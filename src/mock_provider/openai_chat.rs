//! OpenAI Chat Completions: `POST /v1/chat/completions`, `chat.completion.chunk`
//! events ending with `data: [DONE]`, and `{"error":{...}}` errors (shared with
//! the Responses API). Ollama, vLLM and llama.cpp clients speak it too.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::reply::Reply;
use super::select::collect_text;
use super::sse::{Frame, Payload};
use super::wire::{ErrorKind, Inbound, unix_now};

/// The request facts: message text, assistant messages, `stream`,
/// `stream_options.include_usage`.
pub fn inbound(body: &Value) -> Inbound {
    let mut text = String::new();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut assistant_starts = Vec::new();
    for m in messages {
        if m.get("role").and_then(Value::as_str) == Some("assistant") {
            assistant_starts.push(text.len());
        }
        if let Some(content) = m.get("content") {
            collect_text(content, &mut text);
        }
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
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.uses_tools() {
        "tool_calls"
    } else {
        "stop"
    }
}

fn usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.total_tokens(),
    })
}

/// The streamed answer.
pub fn frames(reply: &Reply, inbound: &Inbound) -> Vec<Frame> {
    let id = reply.id("chatcmpl");
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if inbound.include_usage
            && let Some(obj) = c.as_object_mut()
        {
            obj.insert("usage".into(), Value::Null);
        }
        Frame::data(c)
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    for piece in reply.text_pieces() {
        frames.push(chunk(json!({"content": piece}), Value::Null).delta_chunk());
    }
    for (i, call) in reply.calls.iter().enumerate() {
        frames.push(chunk(
            json!({"tool_calls": [{"index": i, "id": reply.call_id("call", i), "type": "function",
                                   "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in reply.argument_pieces(i) {
            frames.push(
                chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                    Value::Null,
                )
                .delta_chunk(),
            );
        }
    }
    frames.push(chunk(json!({}), json!(finish_reason(reply))));
    if inbound.include_usage {
        frames.push(Frame::data(json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage(reply),
        })));
    }
    frames.push(Frame {
        event: None,
        data: Payload::Done,
        delta: false,
    });
    frames
}

/// The non-streamed answer.
pub fn completion(reply: &Reply) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if reply.has_text() { json!(reply.text) } else { Value::Null },
        "refusal": null,
    });
    if reply.uses_tools()
        && let Some(obj) = message.as_object_mut()
    {
        let calls: Vec<Value> = reply
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"id": reply.call_id("call", i), "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments_json}})
            })
            .collect();
        obj.insert("tool_calls".into(), Value::Array(calls));
    }
    json!({
        "id": reply.id("chatcmpl"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": reply.model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": finish_reason(reply)}],
        "usage": usage(reply),
    })
}

/// An OpenAI error: `{"error":{"message","type","param","code"}}`.
pub fn error(kind: ErrorKind, message: &str) -> (StatusCode, Value) {
    let (status, kind, code) = match kind {
        ErrorKind::BadRequest => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Value::Null,
        ),
        ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            json!("not_found"),
        ),
        ErrorKind::RateLimit => (
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            json!("rate_limit_exceeded"),
        ),
        ErrorKind::Server => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            Value::Null,
        ),
        ErrorKind::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            json!("overloaded"),
        ),
    };
    (
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}
