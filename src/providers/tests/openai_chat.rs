//! OpenAI Chat Completions: streaming, tool calls merged by index, usage,
//! request shape, lenient parsing, faults.

use serde_json::json;

use super::faults::fault_tests;
use super::server::{Canned, TestServer};
use super::{KEY, WireCase, calls, chat, config, simple_request, tool_round_trip};
use crate::providers::{ChatProvider, OpenAiChatClient, StopReason, Usage};

const TEXT: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":", world"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[],"usage":{"prompt_tokens":130,"completion_tokens":12,"total_tokens":142,"prompt_tokens_details":{"cached_tokens":100,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

"#;

const CUT: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}

"#;

const MALFORMED: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":

data: [DONE]

"#;

const TOOLS: &str = r#"data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Reading both."},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_AAA","type":"function","function":{"name":"read_file","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_BBB","type":"function","function":{"name":"list_dir","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\": \"a.txt\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"path\": \".\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":400,"completion_tokens":91,"total_tokens":491}}

data: [DONE]

"#;

fn make(config: crate::providers::ProviderConfig) -> Box<dyn ChatProvider> {
    Box::new(OpenAiChatClient::new(config).expect("client"))
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
    assert_eq!(client.wire(), "openai-chat");
    let (result, streamed) = chat(client.as_ref(), &simple_request("gpt-4.1")).await;
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
    assert_eq!(request.uri, "/chat/completions");
    assert_eq!(request.header("authorization"), format!("Bearer {KEY}"));
}

#[tokio::test]
async fn parallel_tool_calls_merge_by_index() {
    let server = TestServer::start(vec![Canned::sse(TOOLS)]).await;
    let client = make(config(&server.base_url));
    let (result, streamed) = chat(client.as_ref(), &tool_round_trip("gpt-4.1")).await;
    let response = result.expect("ok");
    assert_eq!(streamed, "Reading both.");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        calls(&response),
        vec![
            (
                "call_AAA".into(),
                "read_file".into(),
                json!({"path": "a.txt"})
            ),
            ("call_BBB".into(), "list_dir".into(), json!({"path": "."})),
        ]
    );
    assert_eq!(response.usage.input_tokens, 400);
}

#[tokio::test]
async fn request_body_shape() {
    let server = TestServer::start(vec![Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    chat(client.as_ref(), &tool_round_trip("gpt-4.1"))
        .await
        .0
        .expect("ok");
    let body = &server.requests()[0].body;
    assert_eq!(
        body,
        &json!({
            "model": "gpt-4.1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 1024,
            "messages": [
                {"role": "system", "content": "Use tools."},
                {"role": "user", "content": "Read a.txt and b.txt"},
                {"role": "assistant", "content": "Reading both.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"b.txt\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_a", "content": "alpha"},
                {"role": "tool", "tool_call_id": "call_b", "content": "Error: no such file"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "read_file",
                "description": "Reads a file",
                "parameters": super::tools()[0].input_schema,
            }}]
        })
    );
}

/// Ollama-style: no usage, no [DONE] after finish_reason, whole tool call
/// in one chunk without an id, "stop" as the finish reason, unknown fields.
#[tokio::test]
async fn lenient_local_server_stream() {
    let body = r#"data: {"id":"chatcmpl-7","object":"chat.completion.chunk","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"index":0,"function":{"name":"read_file","arguments":"{\"path\":\"a.txt\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-7","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}

"#;
    let server = TestServer::start(vec![Canned::sse(body)]).await;
    let mut cfg = config(&server.base_url);
    cfg.api_key = None;
    let client = make(cfg);
    let (result, _) = chat(client.as_ref(), &simple_request("llama3.1")).await;
    let response = result.expect("ok");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        calls(&response),
        vec![(
            "call_0".into(),
            "read_file".into(),
            json!({"path": "a.txt"})
        )]
    );
    assert_eq!(server.requests()[0].header("authorization"), "");
}

#[tokio::test]
async fn official_endpoint_uses_max_completion_tokens() {
    let body = crate::providers::openai_chat::request_body(&simple_request("gpt-5"), true);
    assert_eq!(body["max_completion_tokens"], 256);
    assert!(body.get("max_tokens").is_none());
}

#[tokio::test]
async fn error_chunk_in_stream_is_typed() {
    let body = "data: {\"error\":{\"message\":\"model not found\",\"type\":\"invalid_request_error\"}}\n\n";
    let server = TestServer::start(vec![Canned::sse(body)]).await;
    let (result, _) = chat(
        make(config(&server.base_url)).as_ref(),
        &simple_request("x"),
    )
    .await;
    assert_eq!(result.expect_err("error").kind(), "invalid_request");
    assert_eq!(server.requests().len(), 1);
}
