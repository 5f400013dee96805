//! Gemini: `models/{model}:generateContent` and `:streamGenerateContent`
//! (`alt=sse` for events, else a JSON array of chunks), `GenerateContentResponse`
//! chunks with `candidates` and `usageMetadata`, and `{"error":{code,message,status}}`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::reply::Reply;
use super::select::collect_text;
use super::sse::Frame;
use super::wire::{ErrorKind, Inbound};

/// The request facts: `systemInstruction` and `contents` text, `model` turns.
/// Streaming and the model come from the URL, not the body.
pub fn inbound(body: &Value) -> Inbound {
    let mut text = String::new();
    for key in ["systemInstruction", "system_instruction"] {
        if let Some(system) = body.get(key) {
            collect_text(system, &mut text);
        }
    }
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut assistant_starts = Vec::new();
    for c in contents {
        if c.get("role").and_then(Value::as_str) == Some("model") {
            assistant_starts.push(text.len());
        }
        if let Some(parts) = c.get("parts") {
            collect_text(parts, &mut text);
        }
    }
    Inbound {
        text,
        assistant_starts,
        stream: false,
        model: String::new(),
        include_usage: false,
    }
}

fn call_part(reply: &Reply, i: usize) -> Value {
    let (name, args) = reply
        .calls
        .get(i)
        .map(|c| (c.name.as_str(), c.arguments.clone()))
        .unwrap_or_default();
    json!({"functionCall": {"name": name, "args": args}})
}

fn chunk(reply: &Reply, parts: Vec<Value>, last: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let usage = if last {
        if let Some(obj) = candidate.as_object_mut() {
            obj.insert("finishReason".into(), json!("STOP"));
        }
        json!({
            "promptTokenCount": reply.input_tokens,
            "candidatesTokenCount": reply.output_tokens,
            "totalTokenCount": reply.total_tokens(),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}],
        })
    } else {
        json!({"promptTokenCount": reply.input_tokens, "totalTokenCount": reply.input_tokens})
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": reply.model,
        "responseId": reply.id("resp"),
    })
}

/// The streamed answer: text chunks, then one chunk with all function calls;
/// the last chunk carries `finishReason: STOP` and the full usage.
pub fn frames(reply: &Reply) -> Vec<Frame> {
    let mut parts_per_chunk: Vec<Vec<Value>> = reply
        .text_pieces()
        .into_iter()
        .map(|p| vec![json!({"text": p})])
        .collect();
    if reply.uses_tools() {
        parts_per_chunk.push(
            (0..reply.calls.len())
                .map(|i| call_part(reply, i))
                .collect(),
        );
    }
    if parts_per_chunk.is_empty() {
        parts_per_chunk.push(vec![json!({"text": ""})]);
    }
    let last = parts_per_chunk.len() - 1;
    parts_per_chunk
        .into_iter()
        .enumerate()
        .map(|(i, parts)| Frame::data(chunk(reply, parts, i == last)).delta_chunk())
        .collect()
}

/// The non-streamed answer.
pub fn response(reply: &Reply) -> Value {
    let mut parts = Vec::new();
    if reply.has_text() {
        parts.push(json!({"text": reply.text}));
    }
    parts.extend((0..reply.calls.len()).map(|i| call_part(reply, i)));
    chunk(reply, parts, true)
}

/// `models/{model}:countTokens`.
pub fn count_tokens(inbound: &Inbound) -> Value {
    json!({"totalTokens": (inbound.text.chars().count() / 4).max(1)})
}

/// A Google API error: `{"error":{"code","message","status"}}`.
pub fn error(kind: ErrorKind, message: &str) -> (StatusCode, Value) {
    let (status, name) = match kind {
        ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        ErrorKind::RateLimit => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        ErrorKind::Server => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        ErrorKind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
    };
    (
        status,
        json!({"error": {"code": status.as_u16(), "message": message, "status": name}}),
    )
}
