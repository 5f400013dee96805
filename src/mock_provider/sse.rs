//! Server-sent event bodies: frames written with pacing, and the stream
//! faults (`cut-stream`, `malformed-json`) applied to them.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

/// What a frame's `data:` line carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON value.
    Json(Value),
    /// OpenAI's end marker `[DONE]`.
    Done,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The `event:` line, when the format names events.
    pub event: Option<&'static str>,
    /// The `data:` line.
    pub data: Payload,
    /// True for content chunks (text or argument deltas): the chunk delay
    /// applies before them.
    pub delta: bool,
}

impl Frame {
    /// A named event with a JSON payload.
    pub fn named(event: &'static str, data: Value) -> Frame {
        Frame {
            event: Some(event),
            data: Payload::Json(data),
            delta: false,
        }
    }

    /// An unnamed event with a JSON payload.
    pub fn data(data: Value) -> Frame {
        Frame {
            event: None,
            data: Payload::Json(data),
            delta: false,
        }
    }

    /// Marks the frame as a content chunk.
    pub fn delta_chunk(mut self) -> Frame {
        self.delta = true;
        self
    }

    fn encode(&self) -> String {
        let data = match &self.data {
            Payload::Json(v) => v.to_string(),
            Payload::Done => "[DONE]".to_string(),
        };
        self.encode_with(&data)
    }

    fn encode_with(&self, data: &str) -> String {
        match self.event {
            Some(event) => format!("event: {event}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        }
    }
}

/// How a stream goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// Send about half the frames, then drop the connection.
    Cut,
    /// Replace a content frame's data by broken JSON and end there.
    Malformed,
}

/// One step of writing a body.
enum Step {
    Wait(Duration),
    Send(Bytes),
    Abort,
}

/// The steps writing `frames` with `chunk_delay` before content frames,
/// damaged by `fault`. Frames with no pause between them go out as one body
/// chunk, as a real server's buffered writer sends them: the bytes are the
/// same, and the client reads them in one go instead of waking once per event
/// (a scripted turn's events used to reach the client spread over a
/// millisecond or more under load).
fn plan(frames: &[Frame], chunk_delay: Duration, fault: Option<StreamFault>) -> VecDeque<Step> {
    coalesce(frame_steps(frames, chunk_delay, fault))
}

/// Joins every run of consecutive [`Step::Send`]s into one.
fn coalesce(steps: VecDeque<Step>) -> VecDeque<Step> {
    let mut joined = VecDeque::with_capacity(steps.len());
    let mut pending: Vec<u8> = Vec::new();
    for step in steps {
        match step {
            Step::Send(bytes) => pending.extend_from_slice(&bytes),
            other => {
                if !pending.is_empty() {
                    joined.push_back(Step::Send(Bytes::from(std::mem::take(&mut pending))));
                }
                joined.push_back(other);
            }
        }
    }
    if !pending.is_empty() {
        joined.push_back(Step::Send(Bytes::from(pending)));
    }
    joined
}

/// One step per frame (and per pause), before [`coalesce`].
fn frame_steps(
    frames: &[Frame],
    chunk_delay: Duration,
    fault: Option<StreamFault>,
) -> VecDeque<Step> {
    let mut steps = VecDeque::new();
    let wait = |steps: &mut VecDeque<Step>, frame: &Frame| {
        if frame.delta && !chunk_delay.is_zero() {
            steps.push_back(Step::Wait(chunk_delay));
        }
    };
    match fault {
        None => {
            for frame in frames {
                wait(&mut steps, frame);
                steps.push_back(Step::Send(Bytes::from(frame.encode())));
            }
        }
        Some(StreamFault::Cut) => {
            let keep = (frames.len() / 2)
                .max(1)
                .min(frames.len().saturating_sub(1));
            for frame in &frames[..keep] {
                wait(&mut steps, frame);
                steps.push_back(Step::Send(Bytes::from(frame.encode())));
            }
            // Let the sent bytes reach the client before the connection drops.
            steps.push_back(Step::Wait(Duration::from_millis(30)));
            steps.push_back(Step::Abort);
        }
        Some(StreamFault::Malformed) => {
            let bad = frames
                .iter()
                .position(|f| f.delta)
                .unwrap_or(frames.len().saturating_sub(1) / 2);
            for (i, frame) in frames.iter().enumerate() {
                wait(&mut steps, frame);
                if i == bad {
                    let broken = broken_json(&frame.data);
                    steps.push_back(Step::Send(Bytes::from(frame.encode_with(&broken))));
                    break;
                }
                steps.push_back(Step::Send(Bytes::from(frame.encode())));
            }
        }
    }
    steps
}

/// The first half of the payload's JSON text, never valid JSON.
fn broken_json(data: &Payload) -> String {
    let text = match data {
        Payload::Json(v) => v.to_string(),
        Payload::Done => "{}".to_string(),
    };
    let chars: Vec<char> = text.chars().collect();
    let half: String = chars[..chars.len() / 2].iter().collect();
    format!("{half}{{\"truncated")
}

/// A 200 `text/event-stream` response writing `frames`.
pub fn response(frames: &[Frame], chunk_delay: Duration, fault: Option<StreamFault>) -> Response {
    let steps = plan(frames, chunk_delay, fault);
    let stream = futures::stream::unfold(steps, |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Wait(d) => tokio::time::sleep(d).await,
                Step::Send(bytes) => return Some((Ok(bytes), steps)),
                Step::Abort => {
                    let err = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "mock-provider: cut-stream fault",
                    );
                    return Some((Err(err), VecDeque::new()));
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The JSON payloads of `frames` (Gemini's non-SSE streaming form).
pub fn payloads(frames: &[Frame]) -> Vec<Value> {
    frames
        .iter()
        .filter_map(|f| match &f.data {
            Payload::Json(v) => Some(v.clone()),
            Payload::Done => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frames() -> Vec<Frame> {
        vec![
            Frame::named("message_start", json!({"n": 1})),
            Frame::named("content_block_delta", json!({"n": 2})).delta_chunk(),
            Frame::named("content_block_delta", json!({"n": 3})).delta_chunk(),
            Frame::named("message_stop", json!({"n": 4})),
        ]
    }

    fn shape(steps: &VecDeque<Step>) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Wait(d) => format!("wait {}", d.as_millis()),
                Step::Send(b) => format!(
                    "send {}",
                    String::from_utf8_lossy(b).matches("event: ").count()
                ),
                Step::Abort => "abort".into(),
            })
            .collect()
    }

    #[test]
    fn frames_without_pauses_go_out_as_one_chunk_with_the_same_bytes() {
        let steps = plan(&frames(), Duration::ZERO, None);
        assert_eq!(shape(&steps), ["send 4"]);
        let Some(Step::Send(bytes)) = steps.front() else {
            panic!("one send")
        };
        let expected: String = frames().iter().map(Frame::encode).collect();
        assert_eq!(bytes.as_ref(), expected.as_bytes());
    }

    #[test]
    fn a_chunk_delay_still_separates_content_frames() {
        let steps = plan(&frames(), Duration::from_millis(7), None);
        assert_eq!(
            shape(&steps),
            ["send 1", "wait 7", "send 1", "wait 7", "send 2"]
        );
    }

    #[test]
    fn a_cut_stream_sends_its_half_then_pauses_and_aborts() {
        let steps = plan(&frames(), Duration::ZERO, Some(StreamFault::Cut));
        assert_eq!(shape(&steps), ["send 2", "wait 30", "abort"]);
    }
}
