//! Turning a fault into a response: HTTP errors in the provider's shape, and
//! damaged non-streamed bodies. (Damaged streams are in `sse`.)

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::script::FaultKind;
use super::sse::StreamFault;
use super::wire::{ErrorKind, WireFormat};

/// What a fault does to the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Answer with an HTTP error instead.
    Error(ErrorKind),
    /// Damage the body.
    Damage(StreamFault),
    /// Stream slowly.
    Trickle,
}

/// The effect of a fault kind.
pub fn effect(kind: FaultKind) -> Effect {
    match kind {
        FaultKind::RateLimit => Effect::Error(ErrorKind::RateLimit),
        FaultKind::ServerError => Effect::Error(ErrorKind::Server),
        FaultKind::Overloaded => Effect::Error(ErrorKind::Overloaded),
        FaultKind::CutStream => Effect::Damage(StreamFault::Cut),
        FaultKind::MalformedJson => Effect::Damage(StreamFault::Malformed),
        FaultKind::SlowTrickle => Effect::Trickle,
    }
}

/// The message of an injected error.
pub fn message(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RateLimit => "mock-provider: rate limit exceeded (scripted fault)",
        ErrorKind::Server => "mock-provider: internal server error (scripted fault)",
        ErrorKind::Overloaded => "mock-provider: overloaded (scripted fault)",
        ErrorKind::BadRequest => "mock-provider: bad request",
        ErrorKind::NotFound => "mock-provider: not found",
    }
}

/// An error response in `format`'s shape; `retry_after` sets `Retry-After`.
pub fn error_response(
    format: WireFormat,
    kind: ErrorKind,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let (status, body) = format.error(kind, message);
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if format == WireFormat::Anthropic && kind == ErrorKind::RateLimit {
        // Claude Code reads this header too.
        response
            .headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("true"));
    }
    response
}

/// A 200 JSON response damaged by `fault`: cut halfway (the connection drops)
/// or not valid JSON.
pub fn damaged_json(body: &Value, fault: StreamFault) -> Response {
    let text = body.to_string();
    let half = text.len() / 2;
    let half = (0..=half)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let head = Bytes::from(text[..half].to_string());
    let body = match fault {
        StreamFault::Malformed => Body::from(head),
        StreamFault::Cut => {
            let steps: Vec<Option<Bytes>> = vec![Some(head), None];
            Body::from_stream(futures::stream::unfold(
                steps.into_iter(),
                |mut steps| async move {
                    match steps.next()? {
                        Some(bytes) => Some((Ok(bytes), steps)),
                        None => {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            Some((
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::ConnectionAborted,
                                    "mock-provider: cut-stream fault",
                                )),
                                steps,
                            ))
                        }
                    }
                },
            ))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
