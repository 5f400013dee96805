//! OpenAI Responses: streaming, function calls, usage, request shape, faults.

use serde_json::json;

use super::faults::fault_tests;
use super::server::{Canned, TestServer};
use super::{KEY, WireCase, calls, chat, config, simple_request, tool_round_trip};
use crate::providers::{ChatProvider, OpenAiResponsesClient, StopReason, Usage};

const TEXT: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","status":"in_progress"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello","logprobs":[]}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":", world","logprobs":[]}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hello, world"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"text":"Hello, world"}],"role":"assistant"}}

event: response.completed
data: {"type":"response.completed","sequence_number":8,"response":{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":130,"input_tokens_details":{"cached_tokens":100},"output_tokens":12,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":142}}}

"#;

const CUT: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","content":[],"role":"assistant"}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hel"}

"#;

const MALFORMED: &str = r#"event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"delta":"Hel"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_in

event: response.completed
data: {"type":"response.completed","response":{"status":"completed"}}

"#;

const TOOLS: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_2","status":"in_progress"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":2,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"id":"msg_2","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_2","output_index":1,"content_index":0,"delta":"Reading both."}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":5,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_AAA","name":"read_file"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_1","output_index":2,"delta":"{\"pa"}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":7,"output_index":3,"item":{"id":"fc_2","type":"function_call","status":"in_progress","arguments":"","call_id":"call_BBB","name":"list_dir"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":8,"item_id":"fc_1","output_index":2,"delta":"th\": \"a.txt\"}"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_2","output_index":3,"delta":"{\"path\": \".\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":10,"item_id":"fc_1","output_index":2,"arguments":"{\"path\": \"a.txt\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":11,"output_index":3,"item":{"id":"fc_2","type":"function_call","status":"completed","arguments":"{\"path\": \".\"}","call_id":"call_BBB","name":"list_dir"}}

event: response.completed
data: {"type":"response.completed","sequence_number":12,"response":{"id":"resp_2","status":"completed","usage":{"input_tokens":400,"input_tokens_details":{"cached_tokens":0},"output_tokens":91,"total_tokens":491}}}

"#;

fn make(config: crate::providers::ProviderConfig) -> Box<dyn ChatProvider> {
    Box::new(OpenAiResponsesClient::new(config).expect("client"))
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
    assert_eq!(client.wire(), "openai-responses");
    let (result, streamed) = chat(client.as_ref(), &simple_request("gpt-5")).await;
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
    assert_eq!(request.uri, "/responses");
    assert_eq!(request.header("authorization"), format!("Bearer {KEY}"));
}

#[tokio::test]
async fn parallel_function_calls() {
    let server = TestServer::start(vec![Canned::sse(TOOLS)]).await;
    let client = make(config(&server.base_url));
    let (result, streamed) = chat(client.as_ref(), &tool_round_trip("gpt-5")).await;
    let response = result.expect("ok");
    assert_eq!(streamed, "Reading both.");
    assert_eq!(response.message.text(), "Reading both.");
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
    assert_eq!(response.usage.output_tokens, 91);
}

#[tokio::test]
async fn request_body_shape() {
    let server = TestServer::start(vec![Canned::sse(TEXT)]).await;
    let client = make(config(&server.base_url));
    chat(client.as_ref(), &tool_round_trip("gpt-5"))
        .await
        .0
        .expect("ok");
    let body = &server.requests()[0].body;
    assert_eq!(
        body,
        &json!({
            "model": "gpt-5",
            "instructions": "Use tools.",
            "max_output_tokens": 1024,
            "stream": true,
            "store": false,
            "input": [
                {"role": "user", "content": "Read a.txt and b.txt"},
                {"role": "assistant", "content": "Reading both."},
                {"type": "function_call", "call_id": "call_a", "name": "read_file", "arguments": "{\"path\":\"a.txt\"}"},
                {"type": "function_call", "call_id": "call_b", "name": "read_file", "arguments": "{\"path\":\"b.txt\"}"},
                {"type": "function_call_output", "call_id": "call_a", "output": "alpha"},
                {"type": "function_call_output", "call_id": "call_b", "output": "Error: no such file"}
            ],
            "tools": [{
                "type": "function",
                "name": "read_file",
                "description": "Reads a file",
                "parameters": super::tools()[0].input_schema,
            }]
        })
    );
}

#[tokio::test]
async fn incomplete_response_is_max_tokens() {
    let body = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"Hi\"}\n\nevent: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":5,\"output_tokens\":256}}}\n\n";
    let server = TestServer::start(vec![Canned::sse(body)]).await;
    let (result, _) = chat(
        make(config(&server.base_url)).as_ref(),
        &simple_request("gpt-5"),
    )
    .await;
    let response = result.expect("ok");
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
    assert_eq!(response.message.text(), "Hi");
}

#[tokio::test]
async fn failed_response_is_retried_when_transient() {
    let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model failed\"}}}\n\n";
    let server = TestServer::start(vec![Canned::sse(failed), Canned::sse(TEXT)]).await;
    let (result, _) = chat(
        make(config(&server.base_url)).as_ref(),
        &simple_request("gpt-5"),
    )
    .await;
    assert_eq!(result.expect("ok").message.text(), "Hello, world");
    assert_eq!(server.requests().len(), 2);
}
