//! One model request, whatever the format: parse, match the agent and turn,
//! record, inject the turn's fault, wait, answer.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;

use super::faults::{self, Effect};
use super::reply::Reply;
use super::script::WILDCARD;
use super::select::match_agent;
use super::sse;
use super::state::{RecordedRequest, State, redact_headers, redact_query};
use super::wire::{ErrorKind, Inbound, WireFormat};

/// Where a request came from and what its URL says.
pub struct Call<'a> {
    /// The endpoint's format.
    pub format: WireFormat,
    /// The HTTP method.
    pub method: &'a Method,
    /// The URL.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// Gemini: streaming and the model come from the URL.
    pub url: Option<UrlFacts>,
}

/// Request facts a Gemini URL carries.
#[derive(Debug, Clone)]
pub struct UrlFacts {
    /// `:streamGenerateContent`.
    pub stream: bool,
    /// `alt=sse` (else a streamed JSON array).
    pub sse: bool,
    /// The model in the path.
    pub model: String,
}

/// Parses the body as JSON, or answers 400 in the format's shape.
pub fn parse_body(format: WireFormat, body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(faults::error_response(
            format,
            ErrorKind::BadRequest,
            &format!("mock-provider: the request body is not valid JSON: {e}"),
            None,
        ))
    })
}

/// The message of a request no script agent answers.
pub fn no_agent_message(state: &State) -> String {
    let ids: Vec<&str> = state.script.agents.keys().map(String::as_str).collect();
    format!(
        "mock-provider: no script agent matches this request (its text names none of: {}; \
         add a \"{WILDCARD}\" agent to answer any request)",
        ids.join(", ")
    )
}

/// A model request's JSON without its top-level `tools`: no answer depends
/// on the tool list, and its schemas are most of a request's bytes (parsing
/// them into a tree for every request was a quarter of the server's CPU).
/// The list is still checked to be valid JSON; the recorded body keeps it.
pub fn parse_request(format: WireFormat, body: &Bytes) -> Result<Value, Box<Response>> {
    match serde_json::from_slice::<std::collections::BTreeMap<String, &RawValue>>(body) {
        Ok(fields) => fields
            .into_iter()
            .filter(|(name, _)| name != "tools")
            .map(|(name, raw)| Some((name, serde_json::from_str::<Value>(raw.get()).ok()?)))
            .collect::<Option<serde_json::Map<String, Value>>>()
            .map_or_else(|| parse_body(format, body), |map| Ok(Value::Object(map))),
        // Not an object (or not JSON): the full parse reports it as before.
        Err(_) => parse_body(format, body),
    }
}

/// Resolves the reply of a parsed request, or `None` when no agent matches.
pub fn resolve(state: &State, inbound: &Inbound) -> Option<Reply> {
    let agent = match_agent(&state.script, &inbound.text)?;
    Some(Reply::resolve(
        &state.script,
        agent,
        inbound.turn_of(agent),
        inbound.text.chars().count(),
        &inbound.model,
    ))
}

/// Answers one model request.
pub async fn answer(state: Arc<State>, call: Call<'_>, body: Bytes) -> Response {
    let arrived = std::time::Instant::now();
    let format = call.format;
    let json = match parse_request(format, &body) {
        Ok(v) => v,
        Err(response) => {
            state.record(record_of(&call, Value::Null, &Inbound::default(), None));
            return *response;
        }
    };
    let mut inbound = format.inbound(&json);
    if let Some(url) = &call.url {
        inbound.stream = url.stream;
        inbound.model = url.model.clone();
    }
    let Some(reply) = resolve(&state, &inbound) else {
        state.record_raw(record_of(&call, Value::Null, &inbound, None), body);
        return faults::error_response(
            format,
            ErrorKind::BadRequest,
            &no_agent_message(&state),
            None,
        );
    };
    let fault = state.take_fault(&reply);
    state.record_raw(
        RecordedRequest {
            fault,
            ..record_of(&call, Value::Null, &inbound, Some(&reply))
        },
        body,
    );

    // The answer is made before the scripted latency and sent when it is
    // over, so making it is not added to the latency.
    let latency = reply.latency;
    let response = make_response(&call, format, &inbound, reply, fault);
    if !latency.is_zero() {
        // Counted from the request's arrival (its body read), kept to a
        // fraction of a millisecond (see `timer`).
        super::timer::sleep_until(arrived + latency).await;
    }
    response
}

/// The answer to a request: its scripted reply, or the injected fault.
fn make_response(
    call: &Call<'_>,
    format: WireFormat,
    inbound: &Inbound,
    mut reply: Reply,
    fault: Option<super::script::FaultKind>,
) -> Response {
    let mut damage = None;
    match fault.map(faults::effect) {
        Some(Effect::Error(kind)) => {
            let retry_after = (kind == ErrorKind::RateLimit)
                .then(|| reply.fault.and_then(|f| f.retry_after_s).unwrap_or(1));
            return faults::error_response(format, kind, faults::message(kind), retry_after);
        }
        Some(Effect::Damage(d)) => damage = Some(d),
        Some(Effect::Trickle) => {
            let turn_delay_set = !reply.chunk_delay.is_zero();
            reply.trickle(turn_delay_set);
        }
        None => {}
    }
    let sse = call.url.as_ref().is_none_or(|u| u.sse);
    if inbound.stream && sse {
        let frames = format.frames(&reply, inbound);
        return sse::response(&frames, reply.chunk_delay, damage);
    }
    let body = if inbound.stream {
        // Gemini's streamGenerateContent without alt=sse: a JSON array of chunks.
        Value::Array(sse::payloads(&format.frames(&reply, inbound)))
    } else {
        format.json(&reply)
    };
    match damage {
        Some(d) => faults::damaged_json(&body, d),
        None => Json(body).into_response(),
    }
}

/// The record of a request (no fault).
pub fn record_of(
    call: &Call<'_>,
    body: Value,
    inbound: &Inbound,
    reply: Option<&Reply>,
) -> RecordedRequest {
    RecordedRequest {
        method: call.method.to_string(),
        path: call.uri.path().to_string(),
        query: redact_query(call.uri.query()),
        format: call.format,
        headers: redact_headers(call.headers),
        body,
        agent: reply.map(|r| r.agent.clone()),
        turn: reply.map(|r| r.turn),
        fault: None,
        stream: inbound.stream,
    }
}
