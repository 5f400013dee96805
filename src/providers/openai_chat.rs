//! The OpenAI Chat Completions API (`POST {base}/chat/completions`,
//! streaming), also spoken by Ollama, vLLM, llama.cpp and other local
//! servers; parsing is lenient about missing and extra fields.

use std::collections::BTreeMap;

use eventsource_stream::Event;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::transport::{Decoder, Flow, OnText, Transport};
use super::{
    ChatProvider, ChatRequest, ChatResponse, Message, Part, ProviderConfig, ProviderError, Role,
    StopReason, ToolCall, Usage, arguments_text, error, parse_arguments, sse,
};

/// A client of the Chat Completions API.
#[derive(Debug)]
pub struct OpenAiChatClient {
    transport: Transport,
}

impl OpenAiChatClient {
    /// A client for `config`; fails on an invalid base URL.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            transport: Transport::new(config)?,
        })
    }

    async fn send(
        &self,
        request: &ChatRequest,
        on_text: &OnText<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.transport
            .key_header(&mut headers, AUTHORIZATION, "Bearer ")?;
        let url = self.transport.url("/chat/completions");
        let official = self.transport.config.base_url.contains("api.openai.com");
        let body = request_body(request, official);
        self.transport
            .stream(&url, &headers, &body, Stream::default, on_text)
            .await
    }
}

impl ChatProvider for OpenAiChatClient {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_text: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        self.send(request, on_text).boxed()
    }

    fn wire(&self) -> &'static str {
        "openai-chat"
    }
}

/// The JSON body of a Chat Completions request. OpenAI itself (`official`)
/// wants `max_completion_tokens` (its reasoning models reject
/// `max_tokens`); other servers get the widely supported `max_tokens`.
pub(crate) fn request_body(request: &ChatRequest, official: bool) -> Value {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for message in &request.messages {
        match message.role {
            Role::User => {
                // Tool results must directly follow the assistant's tool calls.
                for part in &message.parts {
                    if let Part::ToolResult(result) = part {
                        let content = if result.is_error {
                            format!("Error: {}", result.content)
                        } else {
                            result.content.clone()
                        };
                        messages.push(json!({
                            "role": "tool",
                            "tool_call_id": result.call_id,
                            "content": content,
                        }));
                    }
                }
                let text = message.text();
                if !text.is_empty() {
                    messages.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let text = message.text();
                let calls: Vec<Value> = message
                    .tool_calls()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": arguments_text(&call.arguments)},
                        })
                    })
                    .collect();
                let mut entry = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    if text.is_empty() {
                        entry["content"] = Value::Null;
                    }
                    entry["tool_calls"] = Value::Array(calls);
                }
                messages.push(entry);
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let limit_key = if official {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[limit_key] = json!(request.max_tokens);
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                })
            })
            .collect();
    }
    body
}

/// A tool call being assembled from deltas.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The state of one streamed response.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    text: String,
    calls: BTreeMap<u64, PartialCall>,
    finish_reason: Option<String>,
    usage: Usage,
    done: bool,
}

impl Stream {
    fn tool_delta(&mut self, position: usize, delta: &Value) {
        let id = delta.get("id").and_then(Value::as_str).unwrap_or("");
        let index = match delta.get("index").and_then(Value::as_u64) {
            Some(index) => index,
            // Servers that omit `index`: a new id starts a call, else continue the last.
            None => match self
                .calls
                .iter()
                .find(|(_, c)| !id.is_empty() && c.id == id)
            {
                Some((index, _)) => *index,
                None if !id.is_empty() || self.calls.is_empty() => self
                    .calls
                    .keys()
                    .next_back()
                    .map_or(position as u64, |k| k + 1),
                None => self.calls.keys().next_back().copied().unwrap_or(0),
            },
        };
        let call = self.calls.entry(index).or_default();
        if call.id.is_empty() {
            call.id = id.to_string();
        }
        let function = &delta["function"];
        if let Some(name) = function.get("name").and_then(Value::as_str) {
            // Some servers repeat the whole name on every delta.
            if call.name.is_empty() {
                call.name = name.to_string();
            } else if call.name != name {
                call.name.push_str(name);
            }
        }
        match function.get("arguments") {
            Some(Value::String(piece)) => call.arguments.push_str(piece),
            // A few servers send the arguments as an object.
            Some(object @ Value::Object(_)) => call.arguments.push_str(&object.to_string()),
            _ => {}
        }
    }
}

impl Decoder for Stream {
    fn event(&mut self, event: &Event, on_text: &OnText<'_>) -> Result<Flow, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(Flow::Done);
        }
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let chunk: Value = sse::json(event)?;
        if let Some(e) = chunk.get("error").filter(|e| !e.is_null()) {
            let code = ["type", "code"]
                .iter()
                .find_map(|k| e.get(*k).and_then(Value::as_str))
                .unwrap_or("error");
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(error::from_stream_error(code, message));
        }
        if let Some(choices) = chunk.get("choices").and_then(Value::as_array) {
            for choice in choices {
                if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                    continue;
                }
                let delta = &choice["delta"];
                if let Some(text) = delta.get("content").and_then(Value::as_str)
                    && !text.is_empty()
                {
                    self.text.push_str(text);
                    on_text(text);
                }
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for (position, call) in calls.iter().enumerate() {
                        self.tool_delta(position, call);
                    }
                }
                if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                    self.finish_reason = Some(reason.to_string());
                }
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Usage {
                input_tokens: number(usage, "prompt_tokens"),
                output_tokens: number(usage, "completion_tokens"),
                cached_input_tokens: number(&usage["prompt_tokens_details"], "cached_tokens"),
            };
        }
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ChatResponse, ProviderError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(ProviderError::stream(
                "the stream ended before [DONE] or a finish_reason",
            ));
        }
        let mut parts = Vec::new();
        if !self.text.is_empty() {
            parts.push(Part::Text { text: self.text });
        }
        let has_calls = !self.calls.is_empty();
        for (index, call) in self.calls {
            parts.push(Part::ToolCall(ToolCall {
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id
                },
                name: call.name,
                arguments: parse_arguments(&call.arguments),
            }));
        }
        let stop_reason = match self.finish_reason.as_deref() {
            Some("length") => StopReason::MaxTokens,
            // Some local servers say "stop" after tool calls.
            _ if has_calls => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some(other) => StopReason::Other(other.to_string()),
        };
        Ok(ChatResponse {
            message: Message {
                role: Role::Assistant,
                parts,
            },
            stop_reason,
            usage: self.usage,
        })
    }
}
