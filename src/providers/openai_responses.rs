//! The OpenAI Responses API (`POST {base}/responses`, streaming).

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

/// A client of the Responses API.
#[derive(Debug)]
pub struct OpenAiResponsesClient {
    transport: Transport,
}

impl OpenAiResponsesClient {
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
        let url = self.transport.url("/responses");
        self.transport
            .stream(
                &url,
                &headers,
                &request_body(request),
                Stream::default,
                on_text,
            )
            .await
    }
}

impl ChatProvider for OpenAiResponsesClient {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_text: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        self.send(request, on_text).boxed()
    }

    fn wire(&self) -> &'static str {
        "openai-responses"
    }
}

/// The JSON body of a Responses request. The conversation is sent whole
/// each time, so nothing needs to be stored server-side (`store: false`).
pub(crate) fn request_body(request: &ChatRequest) -> Value {
    let mut input = Vec::new();
    for message in &request.messages {
        let text = message.text();
        match message.role {
            Role::User => {
                for part in &message.parts {
                    if let Part::ToolResult(result) = part {
                        let output = if result.is_error {
                            format!("Error: {}", result.content)
                        } else {
                            result.content.clone()
                        };
                        input.push(json!({
                            "type": "function_call_output",
                            "call_id": result.call_id,
                            "output": output,
                        }));
                    }
                }
                if !text.is_empty() {
                    input.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                if !text.is_empty() {
                    input.push(json!({"role": "assistant", "content": text}));
                }
                for call in message.tool_calls() {
                    input.push(json!({
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": arguments_text(&call.arguments),
                    }));
                }
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "input": input,
        "max_output_tokens": request.max_tokens,
        "stream": true,
        "store": false,
    });
    if !request.system.is_empty() {
        body["instructions"] = json!(request.system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                })
            })
            .collect();
    }
    body
}

/// One output item being streamed.
#[derive(Debug)]
enum Item {
    Text(String),
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// Reasoning and other items, not part of the message.
    Other,
}

/// The state of one streamed response.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    items: BTreeMap<u64, Item>,
    usage: Usage,
    incomplete: Option<String>,
    done: bool,
}

fn str_at<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn u64_at(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl Stream {
    /// Records an `output_item.added` or `.done` item.
    fn item(&mut self, index: u64, item: &Value, done: bool) {
        match str_at(item, "type") {
            "function_call" => {
                let arguments = str_at(item, "arguments");
                match self.items.get_mut(&index) {
                    Some(Item::Call {
                        call_id,
                        name,
                        arguments: sofar,
                    }) => {
                        if call_id.is_empty() {
                            *call_id = str_at(item, "call_id").to_string();
                        }
                        if name.is_empty() {
                            *name = str_at(item, "name").to_string();
                        }
                        if done && !arguments.is_empty() {
                            *sofar = arguments.to_string();
                        }
                    }
                    _ => {
                        self.items.insert(
                            index,
                            Item::Call {
                                call_id: str_at(item, "call_id").to_string(),
                                name: str_at(item, "name").to_string(),
                                arguments: arguments.to_string(),
                            },
                        );
                    }
                }
            }
            "message" => {
                let full: String = item
                    .get("content")
                    .and_then(Value::as_array)
                    .map(|parts| {
                        parts
                            .iter()
                            .filter(|p| str_at(p, "type") == "output_text")
                            .map(|p| str_at(p, "text"))
                            .collect()
                    })
                    .unwrap_or_default();
                let entry = self
                    .items
                    .entry(index)
                    .or_insert_with(|| Item::Text(String::new()));
                if let Item::Text(text) = entry
                    && done
                    && !full.is_empty()
                {
                    *text = full;
                }
            }
            _ => {
                self.items.entry(index).or_insert(Item::Other);
            }
        }
    }
}

impl Decoder for Stream {
    fn event(&mut self, event: &Event, on_text: &OnText<'_>) -> Result<Flow, ProviderError> {
        let raw = event.data.trim();
        if raw.is_empty() || raw == "[DONE]" {
            return Ok(Flow::More);
        }
        let data: Value = sse::json(event)?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&event.event);
        let index = u64_at(&data, "output_index");
        match kind {
            "response.output_item.added" => self.item(index, &data["item"], false),
            "response.output_item.done" => self.item(index, &data["item"], true),
            "response.output_text.delta" => {
                let piece = str_at(&data, "delta");
                match self
                    .items
                    .entry(index)
                    .or_insert_with(|| Item::Text(String::new()))
                {
                    Item::Text(text) => text.push_str(piece),
                    _ => return Err(ProviderError::stream("text delta for a non-message item")),
                }
                on_text(piece);
            }
            "response.function_call_arguments.delta" => match self.items.get_mut(&index) {
                Some(Item::Call { arguments, .. }) => arguments.push_str(str_at(&data, "delta")),
                _ => {
                    return Err(ProviderError::stream(
                        "function_call_arguments.delta for an unknown call",
                    ));
                }
            },
            "response.function_call_arguments.done" => {
                if let Some(Item::Call { arguments, .. }) = self.items.get_mut(&index)
                    && let Some(full) = data.get("arguments").and_then(Value::as_str)
                {
                    *arguments = full.to_string();
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = &data["response"];
                let usage = &response["usage"];
                self.usage = Usage {
                    input_tokens: u64_at(usage, "input_tokens"),
                    output_tokens: u64_at(usage, "output_tokens"),
                    cached_input_tokens: u64_at(&usage["input_tokens_details"], "cached_tokens"),
                };
                if kind == "response.incomplete" {
                    let reason = str_at(&response["incomplete_details"], "reason");
                    self.incomplete = Some(
                        if reason.is_empty() {
                            "incomplete"
                        } else {
                            reason
                        }
                        .to_string(),
                    );
                }
                self.done = true;
                return Ok(Flow::Done);
            }
            "response.failed" => {
                let e = &data["response"]["error"];
                return Err(error::from_stream_error(
                    str_at(e, "code"),
                    str_at(e, "message"),
                ));
            }
            "error" => {
                let e = data.get("error").filter(|e| e.is_object()).unwrap_or(&data);
                let code = ["code", "type"]
                    .iter()
                    .map(|k| str_at(e, k))
                    .find(|s| !s.is_empty())
                    .unwrap_or("error");
                return Err(error::from_stream_error(code, str_at(e, "message")));
            }
            _ => {}
        }
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ChatResponse, ProviderError> {
        if !self.done {
            return Err(ProviderError::stream(
                "the stream ended before response.completed",
            ));
        }
        let mut has_calls = false;
        let parts: Vec<Part> = self
            .items
            .into_values()
            .filter_map(|item| match item {
                Item::Text(text) if !text.is_empty() => Some(Part::Text { text }),
                Item::Call {
                    call_id,
                    name,
                    arguments,
                } => {
                    has_calls = true;
                    Some(Part::ToolCall(ToolCall {
                        id: call_id,
                        name,
                        arguments: parse_arguments(&arguments),
                    }))
                }
                _ => None,
            })
            .collect();
        let stop_reason = match self.incomplete.as_deref() {
            Some("max_output_tokens") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
            None if has_calls => StopReason::ToolUse,
            None => StopReason::EndTurn,
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
