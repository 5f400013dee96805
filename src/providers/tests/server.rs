//! A scripted HTTP server for client tests: answers each request with the
//! next canned response and records what it received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;

/// One piece of a canned body.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Bytes to send.
    Data(String),
    /// A pause.
    Sleep(Duration),
    /// Abort the connection.
    Fail,
}

/// A canned response.
#[derive(Debug, Clone)]
pub struct Canned {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<Chunk>,
}

impl Canned {
    /// 200 with an SSE body.
    pub fn sse(body: &str) -> Self {
        Self::chunks(vec![Chunk::Data(body.to_string())])
    }

    /// 200 with an SSE body sent in pieces.
    pub fn chunks(body: Vec<Chunk>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body,
        }
    }

    /// An error status with a JSON body.
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![Chunk::Data(body.to_string())],
        }
    }

    /// The same response with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Path and query.
    pub uri: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its JSON body (Null if not JSON).
    pub body: serde_json::Value,
}

impl Recorded {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Canned>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running scripted server.
pub struct TestServer {
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    inner: Arc<Inner>,
}

impl TestServer {
    /// Starts a server answering with `script`, in order.
    pub async fn start(script: Vec<Canned>) -> Self {
        let inner = Arc::new(Inner {
            script: Mutex::new(script.into()),
            requests: Mutex::default(),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}"),
            inner,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().expect("lock").clone()
    }
}

async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let uri = request.uri().to_string();
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    inner
        .requests
        .lock()
        .expect("lock")
        .push(Recorded { uri, headers, body });
    let canned = inner.script.lock().expect("lock").pop_front();
    let Some(canned) = canned else {
        return Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .body(Body::from("script exhausted"))
            .expect("response");
    };
    let stream = futures::stream::iter(canned.body).filter_map(|chunk| async move {
        match chunk {
            Chunk::Data(text) => Some(Ok(Bytes::from(text))),
            Chunk::Sleep(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Chunk::Fail => Some(Err(std::io::Error::other("connection reset"))),
        }
    });
    let mut builder = Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        builder = builder.header(name, value);
    }
    builder.body(Body::from_stream(stream)).expect("response")
}
