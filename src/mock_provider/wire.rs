//! What the four wire formats have in common: the request facts the server
//! needs, the error kinds, and the dispatch to each format's module.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::reply::Reply;
use super::sse::Frame;
use super::{anthropic, gemini, openai_chat, openai_responses};

/// A provider wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAiChat,
    /// OpenAI Responses (`/v1/responses`).
    OpenAiResponses,
    /// Gemini (`/v1beta/models/{model}:generateContent` and friends).
    Gemini,
}

/// The facts of a request the server acts on.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// All text of the conversation (system prompt and messages).
    pub text: String,
    /// Assistant (model) turns already in the conversation.
    pub assistant_turns: usize,
    /// The client asked for a stream.
    pub stream: bool,
    /// The requested model.
    pub model: String,
    /// Chat Completions: `stream_options.include_usage`.
    pub include_usage: bool,
}

/// The errors the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is unusable or names no scripted agent (400).
    BadRequest,
    /// No such endpoint (404).
    NotFound,
    /// `rate-limit` (429).
    RateLimit,
    /// `server-error` (500).
    Server,
    /// `overloaded` (Anthropic 529, others 503).
    Overloaded,
}

impl WireFormat {
    /// Reads the request facts from a JSON body.
    pub fn inbound(self, body: &Value) -> Inbound {
        match self {
            WireFormat::Anthropic => anthropic::inbound(body),
            WireFormat::OpenAiChat => openai_chat::inbound(body),
            WireFormat::OpenAiResponses => openai_responses::inbound(body),
            WireFormat::Gemini => gemini::inbound(body),
        }
    }

    /// The event stream answering with `reply`.
    pub fn frames(self, reply: &Reply, inbound: &Inbound) -> Vec<Frame> {
        match self {
            WireFormat::Anthropic => anthropic::frames(reply),
            WireFormat::OpenAiChat => openai_chat::frames(reply, inbound),
            WireFormat::OpenAiResponses => openai_responses::frames(reply),
            WireFormat::Gemini => gemini::frames(reply),
        }
    }

    /// The single JSON body answering with `reply`.
    pub fn json(self, reply: &Reply) -> Value {
        match self {
            WireFormat::Anthropic => anthropic::message(reply),
            WireFormat::OpenAiChat => openai_chat::completion(reply),
            WireFormat::OpenAiResponses => openai_responses::response(reply, "completed"),
            WireFormat::Gemini => gemini::response(reply),
        }
    }

    /// The status and body of an error, in this format's shape.
    pub fn error(self, kind: ErrorKind, message: &str) -> (StatusCode, Value) {
        match self {
            WireFormat::Anthropic => anthropic::error(kind, message),
            WireFormat::OpenAiChat | WireFormat::OpenAiResponses => {
                openai_chat::error(kind, message)
            }
            WireFormat::Gemini => gemini::error(kind, message),
        }
    }
}

/// Seconds since the Unix epoch (for `created` fields).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
