//! The live stream of a run: server-sent events read from its journal.
//!
//! Messages:
//!
//! - `event: journal`, `id: <seq>`: one per journal event, in order, whose
//!   id is the event's journal sequence number. Its data ([`JournalMessage`])
//!   names the event, gives its activity line and the new views of the
//!   agents it changed.
//! - `event: summary` (no id): the run summary, after each batch of events and
//!   right after connecting.
//! - `event: problem` (no id): the journal could not be read (the stream goes on).
//!
//! A stream starts after the sequence number in the `Last-Event-ID` header
//! (sent by a reconnecting `EventSource`), else after `?after=N` (the
//! `lastSeq` of the view a page loaded first), else at the beginning. Every
//! event after that number is sent exactly once, in order: nothing is missed
//! and nothing repeated across reconnections.
//!
//! The journal is polled (every [`POLL`] while the run goes on, every
//! [`IDLE_POLL`] once it ended), never written, and the run engine knows
//! nothing of the stream.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::Event as SseEvent;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::output::Redactor;
use super::runs::Catalog;
use super::view::{ActivityLine, AgentView, Touched, Tracker};

/// How often a live run's journal is read.
pub const POLL: Duration = Duration::from_millis(200);
/// How often an ended run's journal is read (it may be resumed).
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// The reconnection delay browsers are told to use.
pub const RETRY: Duration = Duration::from_millis(1000);

/// The data of a `journal` message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalMessage {
    /// The event's journal sequence number (also the message's `id:`).
    pub seq: i64,
    /// When it was journaled (ms since the epoch).
    pub at_ms: i64,
    /// The event's type (`AgentStatus`, …).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The agent it is about, if any.
    pub agent: Option<String>,
    /// Its activity line, if it is worth one.
    pub line: Option<ActivityLine>,
    /// The new views of the agents it changed.
    pub agents: Vec<AgentView>,
    /// `agents` holds every agent, in plan order (the plan may have changed).
    pub all: bool,
}

/// Where a stream starts: after the `Last-Event-ID` header's sequence
/// number, else after the `after` query parameter, else after 0.
pub fn start_after(headers: &HeaderMap, query: Option<&str>) -> Result<i64, String> {
    let parse = |what: &str, text: &str| {
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} must be a journal sequence number, not {text:?}"))
    };
    if let Some(value) = headers.get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| "Last-Event-ID must be a journal sequence number".to_string())?;
        if !text.trim().is_empty() {
            return parse("Last-Event-ID", text);
        }
    }
    match query.and_then(|q| super::auth::query_param(q, "after")) {
        Some(bytes) => parse("after", &String::from_utf8_lossy(&bytes)),
        None => Ok(0),
    }
}

/// Sends a run's events after `after` to `tx` until the receiver is dropped
/// or `closing` fires (then the stream ends).
pub async fn pump(
    catalog: Arc<Catalog>,
    run_id: String,
    after: i64,
    redactor: Arc<Redactor>,
    tx: mpsc::Sender<SseEvent>,
    closing: CancellationToken,
) {
    if tx.send(SseEvent::default().retry(RETRY)).await.is_err() {
        return;
    }
    let journal = loop {
        match catalog.journal(&run_id).await {
            Ok(Some(journal)) => break journal,
            Ok(None) => {}
            Err(e) => {
                if tx.send(problem(&e.to_string())).await.is_err() {
                    return;
                }
            }
        }
        if wait(&tx, POLL, &closing).await.is_err() {
            return;
        }
    };
    let mut tracker = Tracker::new();
    let mut first = true;
    loop {
        match journal.read_after(tracker.last_seq()).await {
            Ok(records) => {
                let mut sent = false;
                for record in &records {
                    let applied = tracker.apply(record);
                    if record.seq <= after {
                        continue;
                    }
                    let message = JournalMessage {
                        seq: record.seq,
                        at_ms: record.at_ms,
                        kind: record.event.kind(),
                        agent: record.event.agent().map(str::to_string),
                        line: applied.line,
                        agents: tracker.views_of(&applied.touched),
                        all: applied.touched == Touched::All,
                    };
                    let event = SseEvent::default()
                        .id(record.seq.to_string())
                        .event("journal")
                        .data(redactor.redact(to_json(&message)));
                    if tx.send(event).await.is_err() {
                        return;
                    }
                    sent = true;
                }
                if sent || first {
                    let summary = tracker.summary(crate::journal::now_ms());
                    let event = SseEvent::default()
                        .event("summary")
                        .data(redactor.redact(to_json(&summary)));
                    if tx.send(event).await.is_err() {
                        return;
                    }
                    first = false;
                }
            }
            Err(e) => {
                if tx.send(problem(&e.to_string())).await.is_err() {
                    return;
                }
            }
        }
        let interval = if tracker.state().outcome.is_some() {
            IDLE_POLL
        } else {
            POLL
        };
        if wait(&tx, interval, &closing).await.is_err() {
            return;
        }
    }
}

/// Sleeps for `interval`; `Err` as soon as the browser went away or the
/// server is closing.
async fn wait(
    tx: &mpsc::Sender<SseEvent>,
    interval: Duration,
    closing: &CancellationToken,
) -> Result<(), ()> {
    tokio::select! {
        () = tokio::time::sleep(interval) => Ok(()),
        () = tx.closed() => Err(()),
        () = closing.cancelled() => Err(()),
    }
}

fn problem(text: &str) -> SseEvent {
    SseEvent::default()
        .event("problem")
        .data(to_json(&serde_json::json!({ "message": text })))
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot serialize: {e}") }).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The ids of the `journal` messages among the next `count` messages
    /// that are not the retry hint.
    async fn next_ids(rx: &mut mpsc::Receiver<SseEvent>, count: usize) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        while out.len() < count {
            let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a message in time")
                .expect("the stream goes on");
            // The wire form: `id: N`, `event: journal|summary`, `data: …`.
            let wire = String::from_utf8_lossy(
                &axum::body::to_bytes(
                    axum::response::IntoResponse::into_response(axum::response::sse::Sse::new(
                        futures::stream::iter([Ok::<_, std::convert::Infallible>(event)]),
                    ))
                    .into_body(),
                    1 << 20,
                )
                .await
                .unwrap(),
            )
            .into_owned();
            if wire.starts_with("retry:") {
                continue;
            }
            let kind = wire
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("{wire}"))
                .to_string();
            let id = wire
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map_or(0, |id| id.parse().unwrap());
            out.push((kind, id));
        }
        out
    }

    #[tokio::test]
    async fn a_stream_sends_every_event_after_its_start_once_as_the_journal_grows() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let journal = crate::journal::Journal::open(&runs.join("r/journal.sqlite"))
            .await
            .unwrap();
        let started = |n: u32| crate::journal::Event::AgentStarted {
            agent: format!("A{n}"),
            attempt: 1,
        };
        journal
            .append(&[started(1), started(2), started(3)])
            .await
            .unwrap();
        let catalog = Arc::new(Catalog::new(Some(runs), Vec::new(), None));
        let (tx, mut rx) = mpsc::channel(64);
        let task = tokio::spawn(pump(
            catalog,
            "r".into(),
            1,
            Arc::new(Redactor::default()),
            tx,
            CancellationToken::new(),
        ));
        assert_eq!(
            next_ids(&mut rx, 3).await,
            [
                ("journal".into(), 2),
                ("journal".into(), 3),
                ("summary".into(), 0)
            ]
        );
        journal.append(&[started(4), started(5)]).await.unwrap();
        assert_eq!(
            next_ids(&mut rx, 3).await,
            [
                ("journal".into(), 4),
                ("journal".into(), 5),
                ("summary".into(), 0)
            ]
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the pump ends when the browser goes away")
            .unwrap();
    }

    #[test]
    fn the_header_wins_over_the_query_and_bad_numbers_are_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(start_after(&headers, None), Ok(0));
        assert_eq!(start_after(&headers, Some("after=7&token=x")), Ok(7));
        headers.insert("last-event-id", HeaderValue::from_static("12"));
        assert_eq!(start_after(&headers, Some("after=7")), Ok(12));
        headers.insert("last-event-id", HeaderValue::from_static(""));
        assert_eq!(start_after(&headers, Some("after=7")), Ok(7));
        headers.insert("last-event-id", HeaderValue::from_static("x1"));
        assert!(
            start_after(&headers, None)
                .unwrap_err()
                .contains("Last-Event-ID")
        );
        assert!(start_after(&HeaderMap::new(), Some("after=-1")).is_err());
    }
}
