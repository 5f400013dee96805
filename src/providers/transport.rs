//! The HTTP side shared by every client: one streaming attempt (send,
//! classify the status, feed SSE events to a wire decoder), wrapped in the
//! retry loop, the per-attempt timeout and the shared limiter.

use std::time::{Duration, SystemTime};

use eventsource_stream::Event;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::config::ProviderConfig;
use super::error::{self, ProviderError};
use super::retry::{parse_retry_after, with_retries};
use super::sse;
use super::types::ChatResponse;

/// The callback receiving text deltas.
pub(crate) type OnText<'a> = dyn Fn(&str) + Send + Sync + 'a;

/// Whether a decoder wants more events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    More,
    /// That was the final event.
    Done,
}

/// Turns one wire format's events into a [`ChatResponse`].
pub(crate) trait Decoder: Send {
    /// Handles one event, passing text deltas to `on_text`.
    fn event(&mut self, event: &Event, on_text: &OnText<'_>) -> Result<Flow, ProviderError>;
    /// The response, once the body has ended; an error if the stream was cut
    /// before its final event.
    fn finish(self) -> Result<ChatResponse, ProviderError>;
}

/// Longest error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A configured HTTP client for one provider.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    /// The configuration it was built from.
    pub(crate) config: ProviderConfig,
}

impl Transport {
    /// Checks the base URL and builds the HTTP client.
    pub(crate) fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let url =
            reqwest::Url::parse(&config.base_url).map_err(|e| ProviderError::InvalidRequest {
                status: None,
                message: format!("invalid base URL {:?}: {e}", config.base_url),
            })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProviderError::InvalidRequest {
                status: None,
                message: format!("base URL {:?} is not http(s)", config.base_url),
            });
        }
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(30));
        if url.scheme() == "http" {
            // A plain-http base URL (a local server such as `mock-provider`)
            // never needs TLS: skip loading the system's root certificates,
            // 10-15 ms of reading and parsing every file in /etc/ssl/certs at
            // the start of each run. A redirect to https is then refused.
            builder = builder.tls_certs_only([]);
        }
        let http = builder.build().map_err(|e| ProviderError::InvalidRequest {
            status: None,
            message: format!("cannot build the HTTP client: {}", sse::error_chain(&e)),
        })?;
        Ok(Self { http, config })
    }

    /// The HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base_url` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url)
    }

    /// A header carrying the key, marked sensitive; an error (without the
    /// key) when the key is not a valid header value.
    pub(crate) fn key_header(
        &self,
        headers: &mut HeaderMap,
        name: HeaderName,
        prefix: &str,
    ) -> Result<(), ProviderError> {
        let Some(key) = &self.config.api_key else {
            return Ok(());
        };
        let mut value =
            HeaderValue::from_str(&format!("{prefix}{key}")).map_err(|_| ProviderError::Auth {
                status: None,
                message: "the API key contains characters not allowed in an HTTP header".into(),
            })?;
        value.set_sensitive(true);
        headers.insert(name, value);
        Ok(())
    }

    /// POSTs `body` to `url` with `headers`, streaming, retrying and
    /// decoding with fresh `decoder()`s, until success or a final error.
    pub(crate) async fn stream<D: Decoder, B: serde::Serialize + Sync>(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &B,
        decoder: impl Fn() -> D + Send + Sync,
        on_text: &OnText<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let secret = self.config.api_key.as_deref();
        with_retries(&self.config.retry, self.config.limiter.as_deref(), |_| {
            let attempt = self.attempt(url, headers, body, decoder(), on_text);
            async move {
                match tokio::time::timeout(self.config.request_timeout, attempt).await {
                    Ok(result) => result,
                    Err(_) => Err(ProviderError::Timeout {
                        message: format!(
                            "the request took longer than {:?}",
                            self.config.request_timeout
                        ),
                    }),
                }
            }
        })
        .await
        .map_err(|e| e.redacted(secret))
    }

    async fn attempt<D: Decoder, B: serde::Serialize + Sync>(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &B,
        mut decoder: D,
        on_text: &OnText<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self
            .http
            .post(url)
            .headers(headers.clone())
            .json(body)
            .send()
            .await
            .map_err(send_error)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let text = self.error_body(response).await;
            return Err(error::from_http(
                status.as_u16(),
                retry_after,
                &text,
                self.config.api_key.is_none(),
            ));
        }
        let events = sse::events(response, self.config.idle_timeout);
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            if decoder.event(&event?, on_text)? == Flow::Done {
                break;
            }
        }
        decoder.finish()
    }

    /// The start of an error response's body (empty if it cannot be read in time).
    async fn error_body(&self, mut response: reqwest::Response) -> String {
        let mut bytes = Vec::new();
        let read = async {
            while let Ok(Some(chunk)) = response.chunk().await {
                bytes.extend_from_slice(&chunk);
                if bytes.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.config.idle_timeout, read).await;
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Classifies a failure to send a request or receive its headers.
fn send_error(e: reqwest::Error) -> ProviderError {
    let e = e.without_url();
    if e.is_timeout() {
        ProviderError::Timeout {
            message: sse::error_chain(&e),
        }
    } else if e.is_builder() {
        ProviderError::InvalidRequest {
            status: None,
            message: sse::error_chain(&e),
        }
    } else {
        ProviderError::Transient {
            status: None,
            message: format!("connection failed: {}", sse::error_chain(&e)),
        }
    }
}
