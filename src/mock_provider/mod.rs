//! The scripted provider server (`llm-orchestrate mock-provider`): speaks the
//! providers' wire formats and plays a script, for offline tests of plans.
//!
//! A real HTTP server (axum) answering Anthropic Messages (`/v1/messages`),
//! OpenAI Chat Completions (`/v1/chat/completions`), OpenAI Responses
//! (`/v1/responses`) and Gemini (`/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`, `:batchGenerateContent`), streamed or not,
//! with the event names and JSON shapes of the real APIs.
//!
//! How a request is answered:
//! 1. the format's module reads the conversation's text and counts its
//!    assistant turns ([`wire::Inbound`]);
//! 2. `select` picks the script agent whose id occurs in that text as a whole
//!    word (the longest; else `"*"`; else a 400 error);
//! 3. `reply` resolves the turn (index = assistant turns so far; past the end,
//!    the last text again without tools) with its ids, usage and pacing;
//! 4. `state` counts the turn's fault, which `faults` and `sse` apply;
//! 5. the format's module writes the answer as events or one JSON body.
//!
//! Credentials (`x-api-key`, `Authorization`, `x-goog-api-key`, `?key=`) are
//! never stored or printed.

mod anthropic;
mod faults;
mod gemini;
mod gemini_batch;
mod handler;
mod openai_chat;
mod openai_responses;
mod reply;
pub mod script;
mod select;
mod server;
mod sse;
mod state;
mod timer;
pub mod wire;

#[cfg(test)]
mod tests;

pub use script::{
    AgentScript, Fault, FaultKind, Script, ScriptError, ScriptToolCall, ScriptUsage, Turn,
};
pub use server::MockServer;
pub use state::RecordedRequest;
pub use wire::WireFormat;
