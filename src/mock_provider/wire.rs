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
    /// Where each assistant (model) turn already in the conversation starts
    /// in `text` (byte offsets, ascending).
    pub assistant_starts: Vec<usize>,
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

impl Inbound {
    /// Assistant (model) turns already in the conversation.
    pub fn assistant_turns(&self) -> usize {
        self.assistant_starts.len()
    }

    /// The turn index of `agent` (a script id, or `*`): the assistant turns
    /// that start after the first mention of `agent` as a whole word. Turns
    /// before it (few-shot examples, as aider sends before the task) are not
    /// the agent's; without a mention (`*`), every turn counts.
    pub fn turn_of(&self, agent: &str) -> usize {
        match super::select::first_word_at(&self.text, agent) {
            Some(at) => self.assistant_starts.iter().filter(|s| **s > at).count(),
            None => self.assistant_turns(),
        }
    }
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
