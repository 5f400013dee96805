//! The server's shared state: the script, how often each faulty turn has
//! failed, the recorded requests and the Gemini batches.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::reply::Reply;
use super::script::{FaultKind, Script};
use super::wire::WireFormat;

/// Headers carrying credentials: their values are never stored.
const SECRET_HEADERS: &[&str] = &[
    "x-api-key",
    "authorization",
    "x-goog-api-key",
    "proxy-authorization",
    "api-key",
    "cookie",
];
/// Query parameters carrying credentials (Gemini's `?key=`).
const SECRET_PARAMS: &[&str] = &["key", "api_key", "api-key"];
/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// A request the server received, for tests. Credentials are redacted.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The URL path, e.g. `/v1/messages`.
    pub path: String,
    /// The query string, with credential parameters redacted.
    pub query: Option<String>,
    /// The wire format of the endpoint.
    pub format: WireFormat,
    /// The headers (lower-case names); credential values are `<redacted>`.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body (`null` when it was not JSON).
    pub body: Value,
    /// The script agent that answered, if any matched.
    pub agent: Option<String>,
    /// The turn index that answered.
    pub turn: Option<usize>,
    /// The fault injected into the answer, if any.
    pub fault: Option<FaultKind>,
    /// True when the client asked for a stream.
    pub stream: bool,
}

/// A Gemini batch job.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `batches/<id>`.
    pub name: String,
    /// `models/<model>`.
    pub model: String,
    /// The client's name for it.
    pub display_name: String,
    /// When it was created (Unix seconds).
    pub created: u64,
    /// When it succeeds (the longest scripted latency after creation).
    pub ready_at: std::time::Instant,
    /// The inlined responses, in request order.
    pub responses: Vec<Value>,
}

/// Most requests a server keeps for inspection (the newest): a server that
/// runs for a long time does not grow without bound.
pub const MAX_RECORDED: usize = 10_000;

/// Everything the handlers share.
#[derive(Debug)]
pub struct State {
    /// The script being played.
    pub script: Script,
    faults: Mutex<HashMap<(String, usize), u32>>,
    /// Each request (the last [`MAX_RECORDED`]), with its raw body when that
    /// is parsed on demand.
    requests: Mutex<VecDeque<(RecordedRequest, Option<Bytes>)>>,
    batches: Mutex<HashMap<String, Batch>>,
    next_batch: AtomicU64,
}

impl State {
    /// Fresh state for `script`.
    pub fn new(script: Script) -> State {
        State {
            script,
            faults: Mutex::default(),
            requests: Mutex::default(),
            batches: Mutex::default(),
            next_batch: AtomicU64::new(1),
        }
    }

    /// The fault to inject into `reply`, counting it: a turn's fault hits its
    /// first `times` requests.
    pub fn take_fault(&self, reply: &Reply) -> Option<FaultKind> {
        let fault = reply.fault?;
        let mut counts = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry((reply.agent.clone(), reply.turn)).or_insert(0);
        if *count < fault.times() {
            *count += 1;
            Some(fault.kind)
        } else {
            None
        }
    }

    /// Stores a request.
    pub fn record(&self, request: RecordedRequest) {
        self.keep((request, None));
    }

    /// Stores a request whose body is kept as received and parsed only when
    /// [`Self::requests`] is asked for it (most requests are never looked at).
    pub fn record_raw(&self, request: RecordedRequest, body: Bytes) {
        self.keep((request, Some(body)));
    }

    /// Keeps a request, forgetting the oldest beyond [`MAX_RECORDED`].
    fn keep(&self, entry: (RecordedRequest, Option<Bytes>)) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if requests.len() >= MAX_RECORDED {
            requests.pop_front();
        }
        requests.push_back(entry);
    }

    /// The requests so far (the last [`MAX_RECORDED`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let stored = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        stored
            .into_iter()
            .map(|(mut request, raw)| {
                if let Some(raw) = raw {
                    request.body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                }
                request
            })
            .collect()
    }

    /// Stores a new batch under a fresh name and returns it.
    pub fn add_batch(&self, mut batch: Batch) -> Batch {
        let n = self.next_batch.fetch_add(1, Ordering::Relaxed);
        batch.name = format!("batches/mock-{n}");
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(batch.name.clone(), batch.clone());
        batch
    }

    /// The batch named `batches/<id>`.
    pub fn batch(&self, name: &str) -> Option<Batch> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// The headers as (name, value) pairs, credential values redacted.
pub fn redact_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = if SECRET_HEADERS.contains(&name.as_str()) {
                REDACTED.to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect()
}

/// The query string with credential parameters' values redacted.
pub fn redact_query(query: Option<&str>) -> Option<String> {
    query.map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                    format!("{k}={REDACTED}")
                }
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}
