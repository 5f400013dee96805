//! Anthropic Messages: streaming, tool calls, usage, request shape, faults.

use serde_json::json;

use super::faults::fault_tests;
use super::server::{Canned, TestServer};
use super::{KEY, WireCase, calls, chat, config, simple_request, tool_round_trip};
use crate::providers::{AnthropicClient, ChatProvider, StopReason, Usage};

const TEXT: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", world"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}

event: message_stop
data: {"type":"message_stop"}

"#;

const CUT: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}

"#;

const MALFORMED: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01","usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel

event: message_stop
data: {"type":"message_stop"}

"#;

const TOOLS: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_02","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":400,"cache_read_input_tokens":0,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Reading both."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"read_file","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"pa"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"th\": \"a.txt\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01B","name":"list_dir","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"path\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \".\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":91}}

event: message_stop
data: {"type":"message_stop"}

"#;

fn make(config: crate::providers::ProviderConfig) -> Box<dyn ChatProvider> {
    Box::new(AnthropicClient::new(config).expect("client"))
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
    assert_eq!(client.wire(), "anthropic");
    let (result, streamed) = chat(client.as_ref(), &simple_request("claude-sonnet-4-5")).await;
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
    let requests = server.requests();
    assert_eq!(requests[0].uri, "/v1/messages");
    assert_eq!(requests[0].header("x-api-key"), KEY);
    assert_eq!(requests[0].header("anthropic-version"), "2023-06-01");
    assert_eq!(requests[0].header("content-type"), "application/json");
}

#[tokio::test]
async fn parallel_tool_calls() {
    let server = TestServer::start(vec![Canned::sse(TOOLS)]).await;
    let client = make(config(&server.base_url));
    let (result, streamed) = chat(client.as_ref(), &tool_round_trip("claude-sonnet-4-5")).await;
    let response = result.expect("ok");
    assert_eq!(streamed, "Reading both.");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        calls(&response),
        vec![
            (
                "toolu_01A".into(),
                "read_file".into(),
                json!({"path": "a.txt"})
            ),
            ("toolu_01B".into(), "list_dir".into(), json!({"path": "."})),
        ]
    );
    assert_eq!(response.usage.output_tokens, 91);
}

#[tokio::test]
async fn request_body_shape() {
    let server = TestServer::start(vec![Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    chat(client.as_ref(), &tool_round_trip("claude-sonnet-4-5"))
        .await
        .0
        .expect("ok");
    let body = &server.requests()[0].body;
    assert_eq!(
        body,
        &json!({
            "model": "claude-sonnet-4-5",
            "system": "Use tools.",
            "max_tokens": 1024,
            "stream": true,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Read a.txt and b.txt"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Reading both."},
                    {"type": "tool_use", "id": "call_a", "name": "read_file", "input": {"path": "a.txt"}},
                    {"type": "tool_use", "id": "call_b", "name": "read_file", "input": {"path": "b.txt"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "alpha", "is_error": false},
                    {"type": "tool_result", "tool_use_id": "call_b", "content": "no such file", "is_error": true}
                ]}
            ],
            "tools": [{
                "name": "read_file",
                "description": "Reads a file",
                "input_schema": super::tools()[0].input_schema,
            }]
        })
    );
}

#[tokio::test]
async fn overloaded_error_event_is_retried() {
    let overloaded = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let server = TestServer::start(vec![Canned::sse(overloaded), Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    let (result, _) = chat(client.as_ref(), &simple_request("m")).await;
    assert_eq!(result.expect("ok").message.text(), "Hello, world");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn invalid_base_url_is_rejected() {
    let e = AnthropicClient::new(crate::providers::ProviderConfig::new("not a url", None))
        .expect_err("invalid");
    assert_eq!(e.kind(), "invalid_request");
}

#[tokio::test]
async fn tool_input_given_whole_in_block_start() {
    let body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"read_file\",\"input\":{\"path\":\"z\"}}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let server = TestServer::start(vec![Canned::sse(body)]).await;
    let (result, _) = chat(
        make(config(&server.base_url)).as_ref(),
        &simple_request("m"),
    )
    .await;
    assert_eq!(
        calls(&result.expect("ok")),
        vec![("toolu_9".into(), "read_file".into(), json!({"path": "z"}))]
    );
}
