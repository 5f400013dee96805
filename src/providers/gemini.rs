//! The Gemini API (`POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`).
//!
//! Gemini function calls carry no id: the client generates one per call,
//! and results are matched by name. Gemini's thinking models attach a
//! `thoughtSignature` to function calls that must be sent back with them;
//! it travels inside the generated id (`call_…#sig:…`) so the
//! provider-neutral types need no extra field.

use eventsource_stream::Event;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::retry::random_u64;
use super::transport::{Decoder, Flow, OnText, Transport};
use super::{
    ChatProvider, ChatRequest, ChatResponse, Message, Part, ProviderConfig, ProviderError, Role,
    StopReason, ToolCall, Usage, error, sse,
};

/// Separates a generated call id from the thought signature it carries.
const SIGNATURE_MARK: &str = "#sig:";

/// A client of the Gemini API.
#[derive(Debug)]
pub struct GeminiClient {
    transport: Transport,
}

impl GeminiClient {
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
            .key_header(&mut headers, HeaderName::from_static("x-goog-api-key"), "")?;
        let model = request
            .model
            .strip_prefix("models/")
            .unwrap_or(&request.model);
        if model.is_empty() || model.contains(['/', '?', '#']) {
            return Err(ProviderError::InvalidRequest {
                status: None,
                message: format!("invalid Gemini model name {model:?}"),
            });
        }
        let url = self.transport.url(&format!(
            "/v1beta/models/{model}:streamGenerateContent?alt=sse"
        ));
        let nonce = random_u64() & 0xffff_ffff;
        self.transport
            .stream(
                &url,
                &headers,
                &request_body(request),
                || Stream::new(nonce),
                on_text,
            )
            .await
    }
}

impl ChatProvider for GeminiClient {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_text: &'a (dyn Fn(&str) + Send + Sync),
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        self.send(request, on_text).boxed()
    }

    fn wire(&self) -> &'static str {
        "gemini"
    }
}

/// The JSON body of a streamGenerateContent request.
pub(crate) fn request_body(request: &ChatRequest) -> Value {
    let contents: Vec<Value> = request
        .messages
        .iter()
        .filter_map(|message| {
            let parts: Vec<Value> = message.parts.iter().filter_map(content_part).collect();
            (!parts.is_empty()).then(|| {
                json!({
                    "role": match message.role { Role::User => "user", Role::Assistant => "model" },
                    "parts": parts,
                })
            })
        })
        .collect();
    let mut body = json!({
        "contents": contents,
        "generationConfig": {"maxOutputTokens": request.max_tokens},
    });
    if !request.system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": request.system}]});
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "parameters": clean_schema(&t.input_schema),
                })
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    body
}

fn content_part(part: &Part) -> Option<Value> {
    Some(match part {
        Part::Text { text } if text.is_empty() => return None,
        Part::Text { text } => json!({"text": text}),
        Part::ToolCall(call) => {
            let args = if call.arguments.is_object() {
                call.arguments.clone()
            } else {
                json!({})
            };
            let mut part = json!({"functionCall": {"name": call.name, "args": args}});
            if let Some((_, signature)) = call.id.split_once(SIGNATURE_MARK) {
                part["thoughtSignature"] = json!(signature);
            }
            part
        }
        Part::ToolResult(result) => {
            let mut response = json!({"content": result.content});
            if result.is_error {
                response["is_error"] = json!(true);
            }
            json!({"functionResponse": {"name": result.name, "response": response}})
        }
    })
}

/// Schema keywords Gemini's OpenAPI-subset schemas reject.
const UNSUPPORTED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "examples",
    "default",
    "const",
    "oneOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
];

/// A JSON Schema reduced to the subset Gemini accepts: unsupported
/// keywords dropped, `const` turned into a one-value `enum`, and a type
/// list like `["string", "null"]` turned into `type` + `nullable`.
pub fn clean_schema(schema: &Value) -> Value {
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "properties" => {
                let properties = match value {
                    Value::Object(props) => props
                        .iter()
                        .map(|(name, s)| (name.clone(), clean_schema(s)))
                        .collect(),
                    _ => Map::new(),
                };
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" => {
                out.insert(key.clone(), clean_schema(value));
            }
            "anyOf" => {
                let options = value
                    .as_array()
                    .map(|a| a.iter().map(clean_schema).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(options));
            }
            "type" => match value {
                Value::Array(types) => {
                    let nullable = types.iter().any(|t| t == "null");
                    if let Some(first) = types.iter().find(|t| *t != "null") {
                        out.insert(key.clone(), first.clone());
                    }
                    if nullable {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "format" => {
                const KNOWN: &[&str] = &["enum", "date-time", "float", "double", "int32", "int64"];
                if value.as_str().is_some_and(|f| KNOWN.contains(&f)) {
                    out.insert(key.clone(), value.clone());
                }
            }
            k if UNSUPPORTED.contains(&k) => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

/// The state of one streamed response.
#[derive(Debug)]
pub(crate) struct Stream {
    nonce: u64,
    parts: Vec<Part>,
    calls: usize,
    finish_reason: Option<String>,
    usage: Usage,
}

impl Stream {
    /// A decoder for responses whose generated call ids carry `nonce`.
    pub(crate) fn new(nonce: u64) -> Self {
        Self {
            nonce,
            parts: Vec::new(),
            calls: 0,
            finish_reason: None,
            usage: Usage::default(),
        }
    }

    fn push_text(&mut self, text: &str) {
        if let Some(Part::Text { text: last }) = self.parts.last_mut() {
            last.push_str(text);
        } else {
            self.parts.push(Part::Text {
                text: text.to_string(),
            });
        }
    }
}

impl Decoder for Stream {
    fn event(&mut self, event: &Event, on_text: &OnText<'_>) -> Result<Flow, ProviderError> {
        let raw = event.data.trim();
        if raw.is_empty() || raw == "[DONE]" {
            return Ok(Flow::More);
        }
        let chunk: Value = sse::json(event)?;
        self.chunk(&chunk, on_text)?;
        Ok(Flow::More)
    }

    fn finish(self) -> Result<ChatResponse, ProviderError> {
        self.response()
    }
}

impl Stream {
    /// Takes one `GenerateContentResponse` (a streamed chunk, or a whole
    /// response of `generateContent` or of a batch).
    pub(crate) fn chunk(
        &mut self,
        chunk: &Value,
        on_text: &OnText<'_>,
    ) -> Result<(), ProviderError> {
        if let Some(e) = chunk.get("error").filter(|e| e.is_object()) {
            let code = e.get("status").and_then(Value::as_str).unwrap_or("error");
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(error::from_stream_error(code, message));
        }
        let candidate = &chunk["candidates"][0];
        if let Some(parts) = candidate["content"]["parts"].as_array() {
            for part in parts {
                if let Some(call) = part.get("functionCall") {
                    let mut id = format!("call_{:08x}_{}", self.nonce, self.calls);
                    if let Some(signature) = part.get("thoughtSignature").and_then(Value::as_str) {
                        id.push_str(SIGNATURE_MARK);
                        id.push_str(signature);
                    }
                    self.calls += 1;
                    self.parts.push(Part::ToolCall(ToolCall {
                        id,
                        name: call["name"].as_str().unwrap_or("").to_string(),
                        arguments: call.get("args").cloned().unwrap_or_else(|| json!({})),
                    }));
                } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                    let thought = part
                        .get("thought")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    if !thought && !text.is_empty() {
                        self.push_text(text);
                        on_text(text);
                    }
                }
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        if let Some(reason) = chunk["promptFeedback"]
            .get("blockReason")
            .and_then(Value::as_str)
        {
            self.finish_reason = Some(format!("BLOCKED_{reason}"));
        }
        if let Some(usage) = chunk.get("usageMetadata").filter(|u| u.is_object()) {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Usage {
                input_tokens: n("promptTokenCount"),
                output_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
                cached_input_tokens: n("cachedContentTokenCount"),
            };
        }
        Ok(())
    }

    /// The response decoded so far; an error when no `finishReason` came.
    pub(crate) fn response(self) -> Result<ChatResponse, ProviderError> {
        let Some(reason) = self.finish_reason else {
            return Err(ProviderError::stream(
                "the stream ended before a finishReason",
            ));
        };
        let stop_reason = match reason.as_str() {
            "MAX_TOKENS" => StopReason::MaxTokens,
            _ if self.calls > 0 => StopReason::ToolUse,
            "STOP" => StopReason::EndTurn,
            other => StopReason::Other(other.to_string()),
        };
        Ok(ChatResponse {
            message: Message {
                role: Role::Assistant,
                parts: self.parts,
            },
            stop_reason,
            usage: self.usage,
        })
    }
}
