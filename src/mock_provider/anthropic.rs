//! Anthropic Messages: `POST /v1/messages`, streaming events
//! `message_start` … `message_stop`, and `{"type":"error",...}` errors.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::reply::Reply;
use super::select::collect_text;
use super::sse::Frame;
use super::wire::{ErrorKind, Inbound};

/// The request facts: `system` and `messages` text, assistant messages, `stream`.
pub fn inbound(body: &Value) -> Inbound {
    let mut text = String::new();
    if let Some(system) = body.get("system") {
        collect_text(system, &mut text);
    }
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
        model: model(body),
        include_usage: false,
    }
}

fn model(body: &Value) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn stop_reason(reply: &Reply) -> &'static str {
    if reply.uses_tools() {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
    })
}

/// The streamed answer.
pub fn frames(reply: &Reply) -> Vec<Frame> {
    let mut frames = vec![Frame::named(
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": reply.id("msg"),
                "type": "message",
                "role": "assistant",
                "model": reply.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage(reply.input_tokens, 1),
            }
        }),
    )];
    let mut index = 0;
    if reply.has_text() {
        frames.push(Frame::named(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                   "content_block": {"type": "text", "text": ""}}),
        ));
        frames.push(Frame::named("ping", json!({"type": "ping"})));
        for piece in reply.text_pieces() {
            frames.push(
                Frame::named(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "text_delta", "text": piece}}),
                )
                .delta_chunk(),
            );
        }
        frames.push(Frame::named(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for (i, call) in reply.calls.iter().enumerate() {
        frames.push(Frame::named(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                   "content_block": {"type": "tool_use", "id": reply.call_id("toolu", i),
                                     "name": call.name, "input": {}}}),
        ));
        for piece in reply.argument_pieces(i) {
            frames.push(
                Frame::named(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": piece}}),
                )
                .delta_chunk(),
            );
        }
        frames.push(Frame::named(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    frames.push(Frame::named(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
               "usage": {"output_tokens": reply.output_tokens}}),
    ));
    frames.push(Frame::named(
        "message_stop",
        json!({"type": "message_stop"}),
    ));
    frames
}

/// The non-streamed answer.
pub fn message(reply: &Reply) -> Value {
    let mut content = Vec::new();
    if reply.has_text() {
        content.push(json!({"type": "text", "text": reply.text}));
    }
    for (i, call) in reply.calls.iter().enumerate() {
        content.push(json!({"type": "tool_use", "id": reply.call_id("toolu", i),
                            "name": call.name, "input": call.arguments}));
    }
    json!({
        "id": reply.id("msg"),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": usage(reply.input_tokens, reply.output_tokens),
    })
}

/// `POST /v1/messages/count_tokens`.
pub fn count_tokens(inbound: &Inbound) -> Value {
    json!({"input_tokens": (inbound.text.chars().count() / 4).max(1)})
}

/// An error: `{"type":"error","error":{"type":..,"message":..}}`.
pub fn error(kind: ErrorKind, message: &str) -> (StatusCode, Value) {
    let (status, kind) = match kind {
        ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found_error"),
        ErrorKind::RateLimit => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
        ErrorKind::Server => (StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
        ErrorKind::Overloaded => (
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
        ),
    };
    (
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}
