//! The HTTP server: routes of the four wire formats, and [`MockServer`], which
//! runs them on a socket until dropped or shut down.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::faults::error_response;
use super::handler::{Call, UrlFacts, answer, parse_body, record_of};
use super::script::Script;
use super::state::{RecordedRequest, State as Shared};
use super::wire::{ErrorKind, WireFormat};
use super::{anthropic, gemini, gemini_batch};

/// Request bodies up to this size are accepted (long agent conversations).
const BODY_LIMIT: usize = 256 * 1024 * 1024;

type AppState = State<Arc<Shared>>;

/// A running scripted provider server. It stops when dropped or shut down.
#[derive(Debug)]
pub struct MockServer {
    /// The address it listens on (the real port when started on port 0).
    pub addr: SocketAddr,
    state: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockServer {
    /// Binds `addr` (port 0 picks a free port) and serves `script` in the
    /// background of the current tokio runtime.
    pub async fn start(script: Script, addr: SocketAddr) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Shared::new(script));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state.clone());
        // Streamed events are small writes: without TCP_NODELAY, Nagle's
        // algorithm holds them back for the peer's delayed ACK (~40 ms each).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(MockServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (a wildcard bind address is shown as loopback).
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("http://{addr}")
    }

    /// The model requests received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Stops accepting requests and waits (at most 2 s) for open responses.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// All routes.
fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/messages/count_tokens", post(anthropic_count))
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/responses", post(responses))
        .route("/responses", post(responses))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1beta/models/{target}", post(gemini_call))
        .route("/v1/models/{target}", post(gemini_call))
        .route("/v1beta/batches/{id}", get(gemini_batch_get))
        .route("/v1/batches/{id}", get(gemini_batch_get))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// `GET /` and `HEAD /` (Claude Code probes it).
async fn root() -> &'static str {
    "mock-provider: ok\n"
}

async fn not_found(method: Method, uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {
            "message": format!("mock-provider: no such endpoint: {method} {}", uri.path()),
            "type": "not_found_error",
            "code": 404,
        }})),
    )
        .into_response()
}

async fn call(
    state: AppState,
    format: WireFormat,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        format,
        method: &method,
        uri: &uri,
        headers: &headers,
        url: None,
    };
    answer(state.0, call, body).await
}

async fn anthropic_messages(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(state, WireFormat::Anthropic, method, uri, headers, body).await
}

async fn chat(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(state, WireFormat::OpenAiChat, method, uri, headers, body).await
}

async fn responses(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(
        state,
        WireFormat::OpenAiResponses,
        method,
        uri,
        headers,
        body,
    )
    .await
}

/// `POST /v1/messages/count_tokens`.
async fn anthropic_count(body: Bytes) -> Response {
    match parse_body(WireFormat::Anthropic, &body) {
        Ok(json) => Json(anthropic::count_tokens(&anthropic::inbound(&json))).into_response(),
        Err(response) => *response,
    }
}

/// `GET /v1/models`: one model, for clients that list them.
async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock-provider"}],
    }))
}

/// `POST /v1beta/models/{model}:{action}`.
async fn gemini_call(
    state: AppState,
    Path(target): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = WireFormat::Gemini;
    let (model, action) = target.split_once(':').unwrap_or((target.as_str(), ""));
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        "countTokens" => {
            return match parse_body(format, &body) {
                Ok(json) => {
                    let request = json.get("generateContentRequest").unwrap_or(&json);
                    Json(gemini::count_tokens(&gemini::inbound(request))).into_response()
                }
                Err(response) => *response,
            };
        }
        "batchGenerateContent" => {
            let json = match parse_body(format, &body) {
                Ok(json) => json,
                Err(response) => return *response,
            };
            let call = Call {
                format,
                method: &method,
                uri: &uri,
                headers: &headers,
                url: None,
            };
            let created = gemini_batch::create(&state.0, model, &json);
            state
                .0
                .record(record_of(&call, json, &Default::default(), None));
            return match created {
                Ok(op) => Json(op).into_response(),
                Err(message) => error_response(format, ErrorKind::BadRequest, &message, None),
            };
        }
        _ => {
            let message = format!("mock-provider: unknown Gemini method {target:?}");
            return error_response(format, ErrorKind::NotFound, &message, None);
        }
    };
    let sse = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    let call = Call {
        format,
        method: &method,
        uri: &uri,
        headers: &headers,
        url: Some(UrlFacts {
            stream,
            sse,
            model: model.to_string(),
        }),
    };
    answer(state.0, call, body).await
}

/// `GET /v1beta/batches/{id}`.
async fn gemini_batch_get(state: AppState, Path(id): Path<String>) -> Response {
    match state.0.batch(&format!("batches/{id}")) {
        Some(batch) => Json(gemini_batch::operation(&batch, true)).into_response(),
        None => error_response(
            WireFormat::Gemini,
            ErrorKind::NotFound,
            &format!("mock-provider: no batch batches/{id}"),
            None,
        ),
    }
}
