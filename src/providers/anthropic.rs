//! The Anthropic Messages API (`POST {base}/v1/messages`, streaming).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eventsource_stream::Event;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use serde_json::value::RawValue;

use super::transport::{Decoder, Flow, OnText, Transport};
use super::{
    ChatProvider, ChatRequest, ChatResponse, Message, Part, ProviderConfig, ProviderError, Role,
    StopReason, ToolCall, ToolSpec, Usage, error, parse_arguments, sse,
};

/// The API version sent in `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A tool list and its JSON.
type ToolsJson = (Arc<[ToolSpec]>, Arc<RawValue>);

/// A client of the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicClient {
    transport: Transport,
    /// The last tool list sent, serialized: every turn of every agent offers
    /// the same (shared) list, so it is written to JSON once.
    tools_json: Mutex<Option<ToolsJson>>,
}

impl AnthropicClient {
    /// A client for `config`; fails on an invalid base URL.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            transport: Transport::new(config)?,
            tools_json: Mutex::new(None),
        })
    }

    /// `tools` as the request's JSON array (`None` when empty).
    fn tools_json(&self, tools: &Arc<[ToolSpec]>) -> Result<Option<Arc<RawValue>>, ProviderError> {
        if tools.is_empty() {
            return Ok(None);
        }
        let mut cached = self
            .tools_json
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((list, json)) = cached.as_ref()
            && Arc::ptr_eq(list, tools)
        {
            return Ok(Some(Arc::clone(json)));
        }
        let wire: Vec<WireTool<'_>> = tools
            .iter()
            .map(|t| WireTool {
                name: &t.name,
                description: &t.description,
                input_schema: &t.input_schema,
            })
            .collect();
        let json: Arc<RawValue> = serde_json::value::to_raw_value(&wire)
            .map_err(|e| ProviderError::InvalidRequest {
                status: None,
                message: format!("cannot encode the tools: {e}"),
            })?
            .into();
        *cached = Some((Arc::clone(tools), Arc::clone(&json)));
        Ok(Some(json))
    }

    async fn send(
        &self,
        request: &ChatRequest,
        on_text: &OnText<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        self.transport
            .key_header(&mut headers, HeaderName::from_static("x-api-key"), "")?;
        let url = self.transport.url("/v1/messages");
        self.transport
            .stream(
                &url,
                &headers,
                &request_body(request, self.tools_json(&request.tools)?.as_deref()),
                Stream::default,
                on_text,
            )
            .await
    }
}

impl ChatProvider for AnthropicClient {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_text: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        self.send(request, on_text).boxed()
    }

    fn wire(&self) -> &'static str {
        "anthropic"
    }
}

/// The JSON body of a Messages request, serialized straight from the
/// request it borrows (no intermediate `Value` tree: building, cloning and
/// dropping one per turn was a fifth of a 1,000-agent run's CPU).
/// `tools` is the request's tool list already in JSON (see
/// [`AnthropicClient::tools_json`]).
pub(crate) fn request_body<'a>(
    request: &'a ChatRequest,
    tools: Option<&'a RawValue>,
) -> RequestBody<'a> {
    RequestBody {
        model: &request.model,
        max_tokens: request.max_tokens,
        messages: request
            .messages
            .iter()
            .map(|m| WireMessage {
                role: match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                },
                content: m.parts.iter().filter_map(content_block).collect(),
            })
            .collect(),
        stream: true,
        system: &request.system,
        tools,
    }
}

/// A Messages request body (see [`request_body`]).
#[derive(Debug, Serialize)]
pub(crate) struct RequestBody<'a> {
    model: &'a str,
    max_tokens: u32,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a RawValue>,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<WireBlock<'a>>,
}

#[derive(Debug, Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

/// A content block of a request message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: ObjectOrEmpty<'a>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        is_error: bool,
    },
}

/// A tool call's arguments as the API wants them: an object, `{}` for anything else.
#[derive(Debug)]
struct ObjectOrEmpty<'a>(&'a Value);

impl Serialize for ObjectOrEmpty<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => map.serialize(serializer),
            _ => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

fn content_block(part: &Part) -> Option<WireBlock<'_>> {
    Some(match part {
        // The API rejects empty text blocks.
        Part::Text { text } if text.is_empty() => return None,
        Part::Text { text } => WireBlock::Text { text },
        Part::ToolCall(call) => WireBlock::ToolUse {
            id: &call.id,
            name: &call.name,
            input: ObjectOrEmpty(&call.arguments),
        },
        Part::ToolResult(result) => WireBlock::ToolResult {
            tool_use_id: &result.call_id,
            content: &result.content,
            is_error: result.is_error,
        },
    })
}

/// One content block being streamed.
#[derive(Debug)]
enum Block {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
        initial: Option<Value>,
    },
    /// Thinking and other blocks, not part of the message.
    Other,
}

/// The state of one streamed response.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    blocks: BTreeMap<u64, Block>,
    usage: Usage,
    stop_reason: Option<String>,
    done: bool,
}

fn u64_at(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn str_at<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

impl Decoder for Stream {
    fn event(&mut self, event: &Event, on_text: &OnText<'_>) -> Result<Flow, ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(Flow::More);
        }
        let data: Value = sse::json(event)?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&event.event);
        let index = u64_at(&data, "index");
        match kind {
            "message_start" => {
                let usage = &data["message"]["usage"];
                let cached = u64_at(usage, "cache_read_input_tokens");
                self.usage.cached_input_tokens = cached;
                self.usage.input_tokens = u64_at(usage, "input_tokens")
                    + cached
                    + u64_at(usage, "cache_creation_input_tokens");
                self.usage.output_tokens = u64_at(usage, "output_tokens");
            }
            "content_block_start" => {
                let block = &data["content_block"];
                let started = match str_at(block, "type") {
                    "text" => {
                        let text = str_at(block, "text");
                        if !text.is_empty() {
                            on_text(text);
                        }
                        Block::Text(text.to_string())
                    }
                    "tool_use" => Block::Tool {
                        id: str_at(block, "id").to_string(),
                        name: str_at(block, "name").to_string(),
                        json: String::new(),
                        // Kept in case no input_json_delta follows.
                        initial: block.get("input").cloned(),
                    },
                    _ => Block::Other,
                };
                self.blocks.insert(index, started);
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match (str_at(delta, "type"), self.blocks.get_mut(&index)) {
                    ("text_delta", Some(Block::Text(text))) => {
                        let piece = str_at(delta, "text");
                        text.push_str(piece);
                        on_text(piece);
                    }
                    ("text_delta", None) => {
                        let piece = str_at(delta, "text");
                        on_text(piece);
                        self.blocks.insert(index, Block::Text(piece.to_string()));
                    }
                    ("input_json_delta", Some(Block::Tool { json, .. })) => {
                        json.push_str(str_at(delta, "partial_json"));
                    }
                    ("input_json_delta", _) => {
                        return Err(ProviderError::stream(format!(
                            "input_json_delta for block {index}, which is not a tool_use"
                        )));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"].get("stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_string());
                }
                let usage = &data["usage"];
                if let Some(out) = usage.get("output_tokens").and_then(Value::as_u64) {
                    self.usage.output_tokens = out;
                }
            }
            "message_stop" => {
                self.done = true;
                return Ok(Flow::Done);
            }
            "error" => {
                let e = &data["error"];
                return Err(error::from_stream_error(
                    str_at(e, "type"),
                    str_at(e, "message"),
                ));
            }
            // ping, content_block_stop, future events
            _ => {}
        }
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ChatResponse, ProviderError> {
        if !self.done {
            return Err(ProviderError::stream(
                "the stream ended before message_stop",
            ));
        }
        let parts = self
            .blocks
            .into_values()
            .filter_map(|block| match block {
                Block::Text(text) if !text.is_empty() => Some(Part::Text { text }),
                Block::Tool {
                    id,
                    name,
                    json,
                    initial,
                } => Some(Part::ToolCall(ToolCall {
                    id,
                    name,
                    arguments: match initial {
                        Some(input) if json.is_empty() && input.is_object() => input,
                        _ => parse_arguments(&json),
                    },
                })),
                _ => None,
            })
            .collect();
        let stop_reason = match self.stop_reason.as_deref() {
            Some("end_turn") | Some("stop_sequence") | None => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
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
