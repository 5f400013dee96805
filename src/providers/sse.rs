//! Server-sent events from a streaming HTTP response, with an idle timeout
//! between pieces of the body.

use std::fmt;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

use super::error::ProviderError;

/// Why reading the body stopped.
#[derive(Debug)]
enum BodyError {
    /// No bytes for the idle timeout.
    Idle(Duration),
    /// The connection failed mid-body.
    Http(reqwest::Error),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle(d) => write!(f, "no stream data for {d:?}"),
            Self::Http(e) => write!(f, "{e}"),
        }
    }
}

/// The SSE events of `response`. Each error ends the stream: a silence of
/// `idle` gives [`ProviderError::Timeout`], a lost connection
/// [`ProviderError::Transient`], bad framing or UTF-8 [`ProviderError::Stream`].
pub(crate) fn events(
    response: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = Result<Event, ProviderError>> + Send {
    let body = Box::pin(response.bytes_stream());
    let timed = futures::stream::unfold((body, false), move |(mut body, stopped)| async move {
        if stopped {
            return None;
        }
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), (body, false))),
            Ok(Some(Err(e))) => Some((Err(BodyError::Http(e.without_url())), (body, true))),
            Ok(None) => None,
            Err(_) => Some((Err(BodyError::Idle(idle)), (body, true))),
        }
    });
    timed.eventsource().map(|item| {
        item.map_err(|e| match e {
            EventStreamError::Transport(BodyError::Idle(d)) => ProviderError::Timeout {
                message: format!("no stream data for {d:?}"),
            },
            EventStreamError::Transport(BodyError::Http(e)) => ProviderError::Transient {
                status: None,
                message: format!("connection lost mid-stream: {}", error_chain(&e)),
            },
            EventStreamError::Utf8(e) => ProviderError::stream(format!("invalid UTF-8: {e}")),
            EventStreamError::Parser(e) => ProviderError::stream(format!("bad SSE framing: {e}")),
        })
    })
}

/// An error and its sources, joined by `: `.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// Parses an event's JSON data, or reports a malformed stream.
pub(crate) fn json<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, ProviderError> {
    serde_json::from_str(&event.data).map_err(|e| {
        ProviderError::stream(format!(
            "malformed JSON in {} event: {e}",
            if event.event.is_empty() {
                "a"
            } else {
                &event.event
            }
        ))
    })
}
