//! HTTP clients for the LLM providers' wire formats (Anthropic Messages,
//! OpenAI Responses and Chat Completions, Gemini), with streaming, retries,
//! typed errors and usage accounting.

pub mod types;

pub use types::{
    ChatRequest, ChatResponse, Message, Part, Role, StopReason, StreamEvent, ToolCall, ToolResult,
    ToolSpec, Usage,
};
