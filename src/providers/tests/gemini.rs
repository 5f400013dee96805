//! Gemini: streaming, function calls with generated ids and thought
//! signatures, usage, request shape and schema cleaning, faults.

use serde_json::json;

use super::faults::fault_tests;
use super::server::{Canned, TestServer};
use super::{KEY, WireCase, chat, config, simple_request, tool_round_trip};
use crate::providers::gemini::clean_schema;
use crate::providers::{ChatProvider, GeminiClient, Part, StopReason, Usage};

const TEXT: &str = r#"data: {"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 130,"totalTokenCount": 130},"modelVersion": "gemini-2.5-flash","responseId": "r1"}

data: {"candidates": [{"content": {"parts": [{"text": ", world"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 130,"candidatesTokenCount": 4,"thoughtsTokenCount": 8,"cachedContentTokenCount": 100,"totalTokenCount": 142},"modelVersion": "gemini-2.5-flash","responseId": "r1"}

"#;

const CUT: &str = r#"data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 130}}

"#;

const MALFORMED: &str = r#"data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},"index": 0}]}

data: {"candidates": [{"content": {"parts": [{"text": "lo"}],"role": "mod

data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP"}]}

"#;

const TOOLS: &str = r#"data: {"candidates": [{"content": {"parts": [{"text": "Thinking about files", "thought": true}, {"text": "Reading both."}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 400}}

data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "read_file","args": {"path": "a.txt"}},"thoughtSignature": "c2lnbmF0dXJl"},{"functionCall": {"name": "list_dir","args": {"path": "."}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 400,"candidatesTokenCount": 91,"totalTokenCount": 491}}

"#;

fn make(config: crate::providers::ProviderConfig) -> Box<dyn ChatProvider> {
    Box::new(GeminiClient::new(config).expect("client"))
}

const CASE: WireCase = WireCase {
    make,
    text_body: TEXT,
    expected_text: "Hello, world",
    cut_body: CUT,
    malformed_body: MALFORMED,
};

fault_tests!(CASE);

#[tokio::test]
async fn streams_text_and_usage() {
    let server = TestServer::start(vec![Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    assert_eq!(client.wire(), "gemini");
    let (result, streamed) = chat(client.as_ref(), &simple_request("gemini-2.5-flash")).await;
    let response = result.expect("ok");
    assert_eq!(streamed, "Hello, world");
    assert_eq!(response.message.text(), "Hello, world");
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 130,
            output_tokens: 12,
            cached_input_tokens: 100
        }
    );
    let request = &server.requests()[0];
    assert_eq!(
        request.uri,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(request.header("x-goog-api-key"), KEY);
    assert!(!request.uri.contains(KEY), "the key is never in the URL");
}

#[tokio::test]
async fn parallel_function_calls_get_ids_and_keep_signatures() {
    let server = TestServer::start(vec![Canned::sse(TOOLS), Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    let (result, streamed) = chat(client.as_ref(), &tool_round_trip("gemini-2.5-pro")).await;
    let response = result.expect("ok");
    assert_eq!(streamed, "Reading both.", "thoughts are not streamed");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    let calls: Vec<_> = response.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].name.as_str(), &calls[0].arguments),
        ("read_file", &json!({"path": "a.txt"}))
    );
    assert_eq!(
        (calls[1].name.as_str(), &calls[1].arguments),
        ("list_dir", &json!({"path": "."}))
    );
    assert_ne!(calls[0].id, calls[1].id);
    assert!(calls[0].id.ends_with("#sig:c2lnbmF0dXJl"));
    assert_eq!(response.usage.output_tokens, 91);

    // Sending the calls back returns the signature with the first call.
    let mut next = tool_round_trip("gemini-2.5-pro");
    next.messages[1] = response.message.clone();
    chat(client.as_ref(), &next).await.0.expect("ok");
    let body = &server.requests()[1].body;
    let model_parts = &body["contents"][1]["parts"];
    assert_eq!(model_parts[1]["thoughtSignature"], "c2lnbmF0dXJl");
    assert!(model_parts[2].get("thoughtSignature").is_none());
    assert!(matches!(response.message.parts[0], Part::Text { .. }));
}

#[tokio::test]
async fn request_body_shape() {
    let server = TestServer::start(vec![Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    chat(client.as_ref(), &tool_round_trip("models/gemini-2.5-pro"))
        .await
        .0
        .expect("ok");
    let request = &server.requests()[0];
    assert_eq!(
        request.uri,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        request.body,
        json!({
            "systemInstruction": {"parts": [{"text": "Use tools."}]},
            "generationConfig": {"maxOutputTokens": 1024},
            "contents": [
                {"role": "user", "parts": [{"text": "Read a.txt and b.txt"}]},
                {"role": "model", "parts": [
                    {"text": "Reading both."},
                    {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}},
                    {"functionCall": {"name": "read_file", "args": {"path": "b.txt"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "read_file", "response": {"content": "alpha"}}},
                    {"functionResponse": {"name": "read_file", "response": {"content": "no such file", "is_error": true}}}
                ]}
            ],
            "tools": [{"functionDeclarations": [{
                "name": "read_file",
                "description": "Reads a file",
                "parameters": {
                    "type": "object",
                    "properties": {"path": {"type": "string", "description": "file path"}},
                    "required": ["path"]
                }
            }]}]
        })
    );
}

#[test]
fn schema_cleaning_keeps_property_names() {
    let schema = json!({
        "$schema": "x",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "default": {"type": ["string", "null"], "default": "a", "format": "uri"},
            "mode": {"const": "fast"},
            "items": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}},
            "when": {"type": "string", "format": "date-time"}
        }
    });
    assert_eq!(
        clean_schema(&schema),
        json!({
            "type": "object",
            "properties": {
                "default": {"type": "string", "nullable": true},
                "mode": {"enum": ["fast"]},
                "items": {"type": "array", "items": {"type": "object"}},
                "when": {"type": "string", "format": "date-time"}
            }
        })
    );
}

#[tokio::test]
async fn per_minute_resource_exhausted_is_retried() {
    let limited = r#"{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0s"}]}}"#;
    let server = TestServer::start(vec![Canned::status(429, limited), Canned::sse(TEXT)]).await;
    let (result, _) = chat(
        make(config(&server.base_url)).as_ref(),
        &simple_request("gemini-2.5-flash"),
    )
    .await;
    assert_eq!(result.expect("ok").message.text(), "Hello, world");
    assert_eq!(server.requests().len(), 2);
}
