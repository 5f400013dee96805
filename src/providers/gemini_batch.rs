//! Gemini's Batch API as a [`ChatProvider`]: the turns of many agents go to
//! Gemini as batch jobs instead of one request each.
//!
//! Each [`ChatProvider::chat`] call queues its request under its correlation
//! key (`<agentId>/<turn>`, [`ChatRequest::correlation`]). A collector sends a
//! batch (`models/{model}:batchGenerateContent` with the requests inlined, each
//! with `metadata.key`) as soon as `batch_size` requests wait, or when the
//! first waiting request is [`BATCH_WINDOW`] old; it polls the batch's
//! operation (`GET batches/{id}`) until it is done and routes every response
//! back by its key, whatever the order. A key answered twice keeps the first
//! answer; a key the batch left unanswered is queued again (up to
//! [`MAX_ROUNDS`] batches in all), then fails with an error naming the batch
//! and the key. A batch that fails or cannot be read fails all its requests.
//! Text is not streamed: the whole reply is handed to `on_text` at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use super::ChatProvider;
use super::config::ProviderConfig;
use super::error::ProviderError;
use super::gemini::{Stream, request_body};
use super::retry::random_u64;
use super::transport::Transport;
use super::types::{ChatRequest, ChatResponse};

/// How long the first waiting request waits for others before its batch goes.
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// Batches a request may take part in before an unanswered key fails.
pub const MAX_ROUNDS: u32 = 3;
/// Time between polls of a running batch.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

struct Waiting {
    key: String,
    model: String,
    body: Value,
    rounds: u32,
    reply: oneshot::Sender<Result<ChatResponse, ProviderError>>,
}

struct Inner {
    transport: Transport,
    batch_size: usize,
    queue: Mutex<Vec<Waiting>>,
    arrived: Notify,
    started: std::sync::Once,
}

/// A Gemini client that sends turns through the Batch API (see the module docs).
#[derive(Clone)]
pub struct GeminiBatchClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GeminiBatchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiBatchClient")
            .field("config", &self.inner.transport.config)
            .field("batch_size", &self.inner.batch_size)
            .finish()
    }
}

impl GeminiBatchClient {
    /// A client sending batches of at most `batch_size` requests.
    pub fn new(config: ProviderConfig, batch_size: usize) -> Result<Self, ProviderError> {
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport::new(config)?,
                batch_size: batch_size.max(1),
                queue: Mutex::new(Vec::new()),
                arrived: Notify::new(),
                started: std::sync::Once::new(),
            }),
        })
    }

    async fn send(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let key = request
            .correlation
            .clone()
            .ok_or_else(|| ProviderError::InvalidRequest {
                status: None,
                message: "a batched request needs a correlation key".into(),
            })?;
        let model = request
            .model
            .strip_prefix("models/")
            .unwrap_or(&request.model)
            .to_string();
        let (reply, answer) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        inner.started.call_once(|| {
            tokio::spawn(collect(Arc::clone(&inner)));
        });
        lock(&inner.queue).push(Waiting {
            key,
            model,
            body: request_body(request),
            rounds: 0,
            reply,
        });
        inner.arrived.notify_one();
        answer.await.unwrap_or_else(|_| {
            Err(ProviderError::Transient {
                status: None,
                message: "the batch collector stopped".into(),
            })
        })
    }
}

impl ChatProvider for GeminiBatchClient {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_text: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        async move {
            let response = self.send(request).await?;
            let text = response.message.text();
            if !text.is_empty() {
                on_text(&text);
            }
            Ok(response)
        }
        .boxed()
    }

    fn wire(&self) -> &'static str {
        "gemini-batch"
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The collector: forms batches and runs them, each batch in its own task.
async fn collect(inner: Arc<Inner>) {
    loop {
        if lock(&inner.queue).is_empty() {
            inner.arrived.notified().await;
            continue;
        }
        // Wait for a full batch, at most the window.
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while lock(&inner.queue).len() < inner.batch_size {
            if tokio::time::timeout_at(deadline, inner.arrived.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        let batch: Vec<Waiting> = {
            let mut queue = lock(&inner.queue);
            let model = queue[0].model.clone();
            let mut taken = Vec::new();
            let mut kept = Vec::new();
            for w in queue.drain(..) {
                if w.model == model && taken.len() < inner.batch_size {
                    taken.push(w);
                } else {
                    kept.push(w);
                }
            }
            *queue = kept;
            taken
        };
        tokio::spawn(run_batch(Arc::clone(&inner), batch));
    }
}

async fn run_batch(inner: Arc<Inner>, batch: Vec<Waiting>) {
    let model = batch[0].model.clone();
    let result = submit_and_wait(&inner, &model, &batch).await;
    let mut by_key: HashMap<String, Waiting> =
        batch.into_iter().map(|w| (w.key.clone(), w)).collect();
    match result {
        Err((name, e)) => {
            for (_, w) in by_key {
                let _ = w.reply.send(Err(with_batch(&e, &name)));
            }
        }
        Ok((name, responses)) => {
            for item in responses {
                let Some(key) = item.pointer("/metadata/key").and_then(Value::as_str) else {
                    continue;
                };
                // A duplicate answer finds its key already answered and is dropped.
                let Some(w) = by_key.remove(key) else {
                    continue;
                };
                let answer = match item.get("response") {
                    Some(response) => decode(response),
                    None => Err(ProviderError::InvalidRequest {
                        status: None,
                        message: format!(
                            "batch {name}: request {key} failed: {}",
                            item.pointer("/error/message")
                                .and_then(Value::as_str)
                                .unwrap_or("no response and no error")
                        ),
                    }),
                };
                let _ = w.reply.send(answer);
            }
            // Keys the batch did not answer: another round, or a clear failure.
            for (key, mut w) in by_key {
                w.rounds += 1;
                if w.rounds >= MAX_ROUNDS {
                    let _ = w.reply.send(Err(ProviderError::Stream {
                        message: format!(
                            "batch {name} returned no response for {key} ({MAX_ROUNDS} batches tried)"
                        ),
                    }));
                } else {
                    lock(&inner.queue).push(w);
                    inner.arrived.notify_one();
                }
            }
        }
    }
}

fn with_batch(e: &ProviderError, name: &str) -> ProviderError {
    ProviderError::Transient {
        status: e.status(),
        message: format!("batch {name}: {e}"),
    }
}

fn headers(transport: &Transport) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    transport.key_header(&mut headers, HeaderName::from_static("x-goog-api-key"), "")?;
    Ok(headers)
}

/// Creates the batch and polls it; returns its name and inlined responses.
async fn submit_and_wait(
    inner: &Inner,
    model: &str,
    batch: &[Waiting],
) -> Result<(String, Vec<Value>), (String, ProviderError)> {
    let unnamed = |e| (String::from("(not created)"), e);
    let transport = &inner.transport;
    let headers = headers(transport).map_err(unnamed)?;
    let requests: Vec<Value> = batch
        .iter()
        .map(|w| json!({"request": w.body, "metadata": {"key": w.key}}))
        .collect();
    let body = json!({"batch": {
        "displayName": format!("llm-orchestrate-{}", batch[0].key.replace('/', "-")),
        "inputConfig": {"requests": {"requests": requests}},
    }});
    let url = transport.url(&format!("/v1beta/models/{model}:batchGenerateContent"));
    let created = call(
        inner,
        transport
            .http()
            .post(&url)
            .headers(headers.clone())
            .json(&body),
    )
    .await
    .map_err(unnamed)?;
    let name = created
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            unnamed(ProviderError::Stream {
                message: "the batch operation has no name".into(),
            })
        })?
        .to_string();
    let poll_url = transport.url(&format!("/v1beta/{name}"));
    let mut operation = created;
    let deadline = tokio::time::Instant::now() + transport.config.request_timeout;
    while !operation
        .get("done")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        if tokio::time::Instant::now() >= deadline {
            return Err((
                name,
                ProviderError::Timeout {
                    message: "the batch did not finish in time".into(),
                },
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        operation = call(
            inner,
            transport.http().get(&poll_url).headers(headers.clone()),
        )
        .await
        .map_err(|e| (name.clone(), e))?;
    }
    if let Some(error) = operation.get("error") {
        return Err((
            name,
            ProviderError::Transient {
                status: None,
                message: format!(
                    "the batch failed: {}",
                    error.get("message").and_then(Value::as_str).unwrap_or("")
                ),
            },
        ));
    }
    let responses = operation
        .pointer("/response/inlinedResponses/inlinedResponses")
        .or_else(|| operation.pointer("/metadata/output/inlinedResponses/inlinedResponses"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok((name, responses))
}

/// One HTTP call returning JSON, retried on transient failures by the policy.
async fn call(inner: &Inner, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
    let config = &inner.transport.config;
    let policy = &config.retry;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(builder) = request.try_clone() else {
            return Err(ProviderError::InvalidRequest {
                status: None,
                message: "the request cannot be repeated".into(),
            });
        };
        let result = async {
            let response = builder
                .timeout(config.request_timeout)
                .send()
                .await
                .map_err(|e| ProviderError::Transient {
                    status: None,
                    message: format!("connection failed: {}", e.without_url()),
                })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| super::retry::parse_retry_after(v, std::time::SystemTime::now()));
            let text = response
                .text()
                .await
                .map_err(|e| ProviderError::Transient {
                    status: Some(status),
                    message: format!("the body could not be read: {}", e.without_url()),
                })?;
            if status >= 400 {
                return Err(super::error::from_http(
                    status,
                    retry_after,
                    &text,
                    config.api_key.is_none(),
                ));
            }
            serde_json::from_str::<Value>(&text).map_err(|e| ProviderError::Stream {
                message: format!("malformed JSON: {e}"),
            })
        }
        .await;
        match result {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                tokio::time::sleep(policy.delay(attempt, e.retry_after())).await;
            }
            Err(e) => return Err(e.redacted(config.api_key.as_deref())),
        }
    }
}

/// A `GenerateContentResponse` as a [`ChatResponse`], decoded like a
/// streamed Gemini response.
fn decode(response: &Value) -> Result<ChatResponse, ProviderError> {
    let mut decoder = Stream::new(random_u64() & 0xffff_ffff);
    decoder.chunk(response, &|_: &str| {})?;
    decoder.response()
}
