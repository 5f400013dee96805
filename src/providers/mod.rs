//! HTTP clients for the LLM providers' wire formats (Anthropic Messages,
//! OpenAI Responses and Chat Completions, Gemini), with streaming, retries,
//! typed errors and usage accounting.
//!
//! Every client implements [`ChatProvider`]: one call sends one request,
//! streams text deltas to a callback and returns the whole
//! [`ChatResponse`]. Transient failures (429, 5xx, Anthropic 529, lost
//! connections, streams cut before their final event or carrying malformed
//! JSON, idle streams) are retried with exponential backoff and jitter
//! ([`RetryPolicy`]); each HTTP attempt holds a permit of the provider's
//! shared [`AdaptiveLimiter`] when one is configured.
//!
//! **Text deltas and retries.** Deltas are passed to `on_text` as they
//! arrive. When an attempt fails mid-stream and is retried, the new attempt
//! starts its text over, so `on_text` may see a prefix of the answer twice;
//! the returned [`ChatResponse`] holds only the successful attempt's text.
//! Treat `on_text` as a live preview.
//!
//! **Secrets.** Keys come only from the environment ([`ProviderConfig`]),
//! travel in headers marked sensitive, and never appear in errors or
//! `Debug` output.

pub mod anthropic;
pub mod config;
pub mod error;
pub mod gemini;
pub mod gemini_batch;
pub mod limiter;
pub mod openai_chat;
pub mod openai_responses;
pub mod price;
pub mod retry;
mod sse;
mod transport;
pub mod types;

#[cfg(test)]
mod tests;

pub use anthropic::AnthropicClient;
pub use config::ProviderConfig;
pub use error::ProviderError;
pub use gemini::GeminiClient;
pub use gemini_batch::GeminiBatchClient;
pub use limiter::{AdaptiveLimiter, LimiterPermit};
pub use openai_chat::OpenAiChatClient;
pub use openai_responses::OpenAiResponsesClient;
pub use price::{ModelPrice, PriceTable};
pub use retry::RetryPolicy;
pub use types::{
    ChatRequest, ChatResponse, Message, Part, Role, StopReason, StreamEvent, ToolCall, ToolResult,
    ToolSpec, Usage,
};

/// A model provider that answers chat requests.
pub trait ChatProvider: Send + Sync {
    /// Sends one request (streaming when the provider supports it), calling
    /// `on_text` with each text delta as it arrives, and returns the whole
    /// response. Retries transient failures itself; a retried attempt may
    /// repeat text already given to `on_text` (see the module docs).
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_text: &'a (dyn Fn(&str) + Send + Sync),
    ) -> futures::future::BoxFuture<'a, Result<ChatResponse, ProviderError>>;

    /// The wire format: `"anthropic"`, `"openai-chat"`, `"openai-responses"`
    /// or `"gemini"`.
    fn wire(&self) -> &'static str;
}

/// Parses a tool call's accumulated argument text: `{}` when empty, the raw
/// text as a JSON string when it is not valid JSON (so the agent loop can
/// tell the model).
pub(crate) fn parse_arguments(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// A tool call's arguments as the JSON text the OpenAI formats expect.
pub(crate) fn arguments_text(arguments: &serde_json::Value) -> String {
    match arguments {
        serde_json::Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}
