//! Client tests against in-process scripted servers: every wire format's
//! streaming, tool calls, usage and request shape, and the shared fault
//! handling (the same fault suite runs against every client).

mod anthropic;
mod faults;
mod gemini;
mod gemini_batch;
mod openai_chat;
mod openai_responses;
mod secrets;
mod server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{
    ChatProvider, ChatRequest, ChatResponse, Message, Part, ProviderConfig, ProviderError,
    RetryPolicy, Role, ToolCall, ToolResult, ToolSpec,
};

/// The key every test client sends; it must never show in errors.
pub const KEY: &str = "sk-test-SECRET-0123456789abcdef";

/// A configuration for tests: fast retries, short idle timeout.
pub fn config(base_url: &str) -> ProviderConfig {
    ProviderConfig {
        retry: RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(20),
        },
        request_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_millis(300),
        ..ProviderConfig::new(base_url, Some(KEY.to_string()))
    }
}

/// One wire format under test.
pub struct WireCase {
    /// Builds the client.
    pub make: fn(ProviderConfig) -> Box<dyn ChatProvider>,
    /// A successful streamed text answer…
    pub text_body: &'static str,
    /// …whose text is this.
    pub expected_text: &'static str,
    /// The same answer cut before its final event.
    pub cut_body: &'static str,
    /// A stream with a malformed JSON event.
    pub malformed_body: &'static str,
}

/// Collects what `on_text` receives.
#[derive(Clone, Default)]
pub struct Collected(Arc<Mutex<String>>);

impl Collected {
    /// Everything received.
    pub fn text(&self) -> String {
        self.0.lock().expect("lock").clone()
    }
}

/// Sends `request` and collects the streamed text.
pub async fn chat(
    client: &dyn ChatProvider,
    request: &ChatRequest,
) -> (Result<ChatResponse, ProviderError>, String) {
    let seen = Collected::default();
    let sink = seen.clone();
    let on_text = move |t: &str| sink.0.lock().expect("lock").push_str(t);
    let result = client.chat(request, &on_text).await;
    (result, seen.text())
}

/// A plain request with one user message.
pub fn simple_request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        system: "You are terse.".into(),
        messages: vec![Message::user_text("Say hello")],
        tools: Vec::new().into(),
        correlation: None,
        max_tokens: 256,
    }
}

/// The tools used by the request-shape tests.
pub fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "read_file".into(),
        description: "Reads a file".into(),
        input_schema: serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"path": {"type": "string", "description": "file path"}},
            "required": ["path"],
            "additionalProperties": false
        }),
    }]
}

/// A conversation with a tool round trip: user, assistant text + two
/// calls, user with two results (one failed) and more text.
pub fn tool_round_trip(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        system: "Use tools.".into(),
        messages: vec![
            Message::user_text("Read a.txt and b.txt"),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text {
                        text: "Reading both.".into(),
                    },
                    Part::ToolCall(ToolCall {
                        id: "call_a".into(),
                        name: "read_file".into(),
                        arguments: serde_json::json!({"path": "a.txt"}),
                    }),
                    Part::ToolCall(ToolCall {
                        id: "call_b".into(),
                        name: "read_file".into(),
                        arguments: serde_json::json!({"path": "b.txt"}),
                    }),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult(ToolResult {
                        call_id: "call_a".into(),
                        name: "read_file".into(),
                        content: "alpha".into(),
                        is_error: false,
                    }),
                    Part::ToolResult(ToolResult {
                        call_id: "call_b".into(),
                        name: "read_file".into(),
                        content: "no such file".into(),
                        is_error: true,
                    }),
                ],
            },
        ],
        tools: tools().into(),
        correlation: None,
        max_tokens: 1024,
    }
}

/// The tool calls of a response, as (id, name, arguments).
pub fn calls(response: &ChatResponse) -> Vec<(String, String, serde_json::Value)> {
    response
        .message
        .tool_calls()
        .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
        .collect()
}
