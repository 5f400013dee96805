//! Unit tests: script parsing, agent and turn selection, replies, each
//! format's request reading and answers, stream damage, and the server.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::reply::{Reply, split_chars};
use super::script::{FaultKind, Script, ScriptError};
use super::select::{contains_word, match_agent};
use super::sse::{Frame, Payload, StreamFault};
use super::wire::WireFormat;
use super::{MockServer, anthropic, gemini, openai_chat, openai_responses};

fn script(text: &str) -> Script {
    Script::from_json(text).expect("valid script")
}

fn sample() -> Script {
    script(
        r#"{"agents": {
            "AUTH": {"turns": [{"text": "auth"}]},
            "AUTH_IMPL": {"turns": [
                {"text": "[STATUS: STARTED] working",
                 "toolCalls": [{"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}},
                               {"name": "read_file", "arguments": {"path": "b.txt"}}],
                 "fault": {"kind": "rate-limit", "retryAfterS": 3, "times": 2}},
                {"text": "done [STATUS: COMPLETE]", "usage": {"inputTokens": 7, "outputTokens": 9}}
            ]},
            "*": {"turns": [{"text": "[STATUS: COMPLETE]"}]}
        }}"#,
    )
}

#[test]
fn script_parses_camel_case_fields() {
    let s = sample();
    let turn = &s.agents["AUTH_IMPL"].turns[0];
    assert_eq!(turn.tool_calls.len(), 2);
    let fault = turn.fault.expect("fault");
    assert_eq!(fault.kind, FaultKind::RateLimit);
    assert_eq!(fault.retry_after_s, Some(3));
    assert_eq!(fault.times(), 2);
}

#[test]
fn script_every_fault_kind_parses() {
    for kind in [
        "rate-limit",
        "server-error",
        "overloaded",
        "cut-stream",
        "malformed-json",
        "slow-trickle",
    ] {
        let s = script(&format!(
            r#"{{"agents": {{"*": {{"turns": [{{"fault": {{"kind": "{kind}"}}}}]}}}}}}"#
        ));
        let parsed = s.agents["*"].turns[0].fault.expect("fault").kind;
        assert_eq!(parsed.as_str(), kind);
    }
}

#[test]
fn script_unknown_field_is_an_error_with_position() {
    let err = Script::from_json("{\"agents\": {\"*\": {\"turns\": [\n  {\"txt\": \"x\"}]}}}")
        .expect_err("unknown field");
    match &err {
        ScriptError::Parse {
            file, line, column, ..
        } => {
            assert_eq!(file, "<script>");
            assert_eq!(*line, 2);
            assert!(*column > 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("txt"), "{err}");
}

#[test]
fn script_rejects_empty_turns_and_non_object_arguments() {
    let err = Script::from_json(r#"{"agents": {"A": {"turns": []}}}"#).expect_err("no turns");
    assert!(err.to_string().contains("agents.A.turns"), "{err}");
    let err = Script::from_json(
        r#"{"agents": {"A": {"turns": [{"toolCalls": [{"name": "x", "arguments": [1]}]}]}}}"#,
    )
    .expect_err("array arguments");
    assert!(
        err.to_string()
            .contains("agents.A.turns[0].toolCalls[0].arguments"),
        "{err}"
    );
    assert!(Script::from_json(r#"{"agents": {}}"#).is_err());
}

#[test]
fn script_load_names_the_missing_file() {
    let err = Script::load(std::path::Path::new("/nonexistent/s.json")).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/s.json"), "{err}");
}

#[test]
fn whole_word_matching() {
    assert!(contains_word("you are AUTH_IMPL.", "AUTH_IMPL"));
    assert!(contains_word("AUTH_IMPL", "AUTH_IMPL"));
    assert!(!contains_word("AUTH_IMPL2", "AUTH_IMPL"));
    assert!(!contains_word("XAUTH_IMPL", "AUTH_IMPL"));
    assert!(!contains_word("AUTH_IMPL-x", "AUTH_IMPL"));
    assert!(!contains_word("toolu_AUTH_IMPL_0_0", "AUTH_IMPL"));
    assert!(contains_word("é AUTH é", "AUTH"));
    assert!(contains_word("AUTH_IMPLX and AUTH_IMPL", "AUTH_IMPL"));
}

#[test]
fn longest_matching_agent_wins_else_wildcard() {
    let s = sample();
    assert_eq!(
        match_agent(&s, "agent AUTH_IMPL, see AUTH"),
        Some("AUTH_IMPL")
    );
    assert_eq!(match_agent(&s, "agent AUTH only"), Some("AUTH"));
    assert_eq!(match_agent(&s, "nobody"), Some("*"));
    let strict = script(r#"{"agents": {"A": {"turns": [{"text": "a"}]}}}"#);
    assert_eq!(match_agent(&strict, "nobody"), None);
}

#[test]
fn split_chars_respects_char_boundaries() {
    assert_eq!(split_chars("", 4), Vec::<String>::new());
    assert_eq!(split_chars("ab", 4), vec!["a", "b"]);
    let pieces = split_chars("héllo wörld ✓✓", 4);
    assert_eq!(pieces.len(), 4);
    assert_eq!(pieces.concat(), "héllo wörld ✓✓");
}

#[test]
fn reply_usage_ids_and_past_the_end() {
    let s = sample();
    let r = Reply::resolve(&s, "AUTH_IMPL", 0, 400, "m");
    assert_eq!(r.input_tokens, 100);
    assert!(r.output_tokens >= 1);
    assert_eq!(r.call_id("toolu", 1), "toolu_AUTH_IMPL_0_1");
    assert!(r.uses_tools());
    assert!(r.fault.is_some());
    let r = Reply::resolve(&s, "AUTH_IMPL", 1, 400, "m");
    assert_eq!((r.input_tokens, r.output_tokens), (7, 9));
    let r = Reply::resolve(&s, "AUTH_IMPL", 5, 400, "");
    assert_eq!(r.text, "done [STATUS: COMPLETE]");
    assert!(!r.uses_tools());
    assert!(r.fault.is_none());
    assert_eq!(r.model, "mock-model");
    let r = Reply::resolve(&s, "*", 0, 0, "m");
    assert_eq!(r.id("msg"), "msg_default_0");
    assert_eq!(r.input_tokens, 1);
}

#[test]
fn anthropic_inbound_counts_assistant_messages_and_reads_all_text() {
    let body = json!({
        "system": [{"type": "text", "text": "You are AUTH_IMPL"}],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_X", "name": "w", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_X", "content": "ok"}]},
        ],
        "stream": true,
    });
    let inbound = anthropic::inbound(&body);
    assert_eq!(inbound.assistant_turns(), 1);
    assert!(inbound.stream);
    assert!(inbound.text.contains("You are AUTH_IMPL"));
    assert!(inbound.text.contains("ok"));
    assert!(!inbound.text.contains("toolu_X"));
}

#[test]
fn chat_inbound_reads_include_usage() {
    let body = json!({
        "messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": null,
                      "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c", "content": "r"}],
        "stream": true, "stream_options": {"include_usage": true},
    });
    let inbound = openai_chat::inbound(&body);
    assert_eq!(inbound.assistant_turns(), 1);
    assert!(inbound.include_usage);
}

#[test]
fn responses_inbound_groups_consecutive_model_items_into_turns() {
    let body = json!({
        "instructions": "be AUTH",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "go"}]},
            {"type": "reasoning", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "t"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r"},
            {"type": "function_call_output", "call_id": "c2", "output": "r"},
            {"type": "function_call", "call_id": "c3", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c3", "output": "r"},
        ],
    });
    let inbound = openai_responses::inbound(&body);
    assert_eq!(inbound.assistant_turns(), 2);
    assert!(inbound.text.contains("be AUTH"));
    let plain = openai_responses::inbound(&json!({"input": "hello AUTH"}));
    assert_eq!(plain.assistant_turns(), 0);
    assert!(plain.text.contains("hello AUTH"));
}

#[test]
fn gemini_inbound_counts_model_contents() {
    let body = json!({
        "systemInstruction": {"parts": [{"text": "AUTH"}]},
        "contents": [{"role": "user", "parts": [{"text": "go"}]},
                     {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                     {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"r": "x"}}}]}],
    });
    let inbound = gemini::inbound(&body);
    assert_eq!(inbound.assistant_turns(), 1);
    assert!(inbound.text.contains("AUTH"));
}

#[test]
fn example_turns_before_the_agent_is_named_are_not_its_turns() {
    // aider sends few-shot example exchanges before the task that names the agent.
    let body = json!({"messages": [
        {"role": "system", "content": "You edit files."},
        {"role": "user", "content": "Change greeting.py"},
        {"role": "assistant", "content": "greeting.py\n```\nprint('hi')\n```"},
        {"role": "user", "content": "You are agent AIDER_AGENT. Write hello.txt."},
    ]});
    let inbound = openai_chat::inbound(&body);
    assert_eq!(inbound.assistant_turns(), 1);
    assert_eq!(inbound.turn_of("AIDER_AGENT"), 0);
    assert_eq!(inbound.turn_of("*"), 1);
    let mut later = body.clone();
    if let Some(messages) = later["messages"].as_array_mut() {
        messages.push(json!({"role": "assistant", "content": "hello.txt\n```\nhi\n```"}));
        messages.push(json!({"role": "user", "content": "The edit failed; try again."}));
    }
    assert_eq!(openai_chat::inbound(&later).turn_of("AIDER_AGENT"), 1);
    // Named before every assistant turn (the usual case): all of them count.
    let anthropic = anthropic::inbound(&json!({
        "system": "You are AUTH_IMPL",
        "messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": "a"},
                     {"role": "user", "content": "more"}, {"role": "assistant", "content": "b"}],
    }));
    assert_eq!(anthropic.turn_of("AUTH_IMPL"), 2);
}

fn events(frames: &[Frame]) -> Vec<&str> {
    frames.iter().filter_map(|f| f.event).collect()
}

#[test]
fn anthropic_stream_event_sequence_with_tools() {
    let s = sample();
    let r = Reply::resolve(&s, "AUTH_IMPL", 0, 40, "claude");
    let frames = anthropic::frames(&r);
    let names = events(&frames);
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "content_block_start")
            .count(),
        3
    );
    let Payload::Json(delta) = &frames[frames.len() - 2].data else {
        panic!("json")
    };
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    let json_pieces: String = frames
        .iter()
        .filter_map(|f| match &f.data {
            Payload::Json(v) if v["index"] == 1 && v["delta"]["type"] == "input_json_delta" => {
                v["delta"]["partial_json"].as_str().map(str::to_string)
            }
            _ => None,
        })
        .collect();
    let args: Value = serde_json::from_str(&json_pieces).expect("arguments json");
    assert_eq!(args, json!({"path": "a.txt", "content": "hi"}));
}

#[test]
fn responses_sequence_numbers_count_from_zero() {
    let s = sample();
    let r = Reply::resolve(&s, "AUTH_IMPL", 0, 40, "gpt");
    let frames = openai_responses::frames(&r);
    for (i, f) in frames.iter().enumerate() {
        let Payload::Json(v) = &f.data else {
            panic!("json")
        };
        assert_eq!(v["sequence_number"], json!(i));
        assert_eq!(v["type"].as_str(), f.event);
    }
    let Payload::Json(done) = &frames[frames.len() - 1].data else {
        panic!("json")
    };
    assert_eq!(done["response"]["output"].as_array().map(Vec::len), Some(3));
    assert_eq!(done["response"]["status"], "completed");
}

#[test]
fn error_shapes_per_format() {
    use super::wire::ErrorKind;
    let (status, body) = WireFormat::Anthropic.error(ErrorKind::Overloaded, "m");
    assert_eq!(status.as_u16(), 529);
    assert_eq!(body["error"]["type"], "overloaded_error");
    let (status, body) = WireFormat::OpenAiResponses.error(ErrorKind::Overloaded, "m");
    assert_eq!(status.as_u16(), 503);
    assert_eq!(body["error"]["message"], "m");
    let (status, body) = WireFormat::Gemini.error(ErrorKind::RateLimit, "m");
    assert_eq!(status.as_u16(), 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["code"], 429);
}

async fn body_text(response: axum::response::Response) -> Result<String, String> {
    use futures::StreamExt;
    let mut stream = response.into_body().into_data_stream();
    let mut out = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => return Err(format!("{out}\nERROR {e}")),
        }
    }
    Ok(out)
}

#[tokio::test]
async fn cut_stream_stops_before_the_final_event_with_an_error() {
    let s = sample();
    let r = Reply::resolve(&s, "AUTH_IMPL", 1, 40, "claude");
    let frames = anthropic::frames(&r);
    let response = super::sse::response(&frames, std::time::Duration::ZERO, Some(StreamFault::Cut));
    let text = body_text(response).await.expect_err("aborted");
    assert!(text.contains("message_start"));
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn malformed_stream_has_a_data_line_that_is_not_json() {
    let s = sample();
    let r = Reply::resolve(&s, "AUTH_IMPL", 1, 40, "gpt");
    let frames = openai_chat::frames(&r, &Default::default());
    let response = super::sse::response(
        &frames,
        std::time::Duration::ZERO,
        Some(StreamFault::Malformed),
    );
    let text = body_text(response).await.expect("complete body");
    let bad = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(bad, 1, "{text}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn server_records_requests_without_secrets() {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = MockServer::start(sample(), addr).await.expect("start");
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/messages?beta=true", server.base_url()))
        .header("x-api-key", "sk-secret-1")
        .header("authorization", "Bearer sk-secret-2")
        .json(&json!({"model": "claude", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "you are AUTH"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["content"][0]["text"], "auth");
    let gemini = client
        .post(format!(
            "{}/v1beta/models/gemini-x:generateContent?key=sk-secret-3",
            server.base_url()
        ))
        .header("x-goog-api-key", "sk-secret-4")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "AUTH"}]}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(gemini.status(), 200);
    let recorded = server.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].agent.as_deref(), Some("AUTH"));
    assert_eq!(recorded[0].turn, Some(0));
    assert_eq!(recorded[0].query.as_deref(), Some("beta=true"));
    let dump = serde_json::to_string(&recorded).expect("serialize");
    assert!(!dump.contains("sk-secret"), "{dump}");
    assert_eq!(recorded[1].format, WireFormat::Gemini);
    server.shutdown().await;
}

#[tokio::test]
async fn the_tool_list_is_skipped_for_answering_but_kept_in_the_record() {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = MockServer::start(sample(), addr).await.expect("start");
    let tools =
        json!([{"name": "read_file", "description": "Reads", "input_schema": {"type": "object"}}]);
    let request = json!({"model": "claude", "max_tokens": 10, "tools": tools,
                         "messages": [{"role": "user", "content": "you are AUTH"}]});
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", server.base_url()))
        .json(&request)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let recorded = server.requests();
    assert_eq!(recorded[0].agent.as_deref(), Some("AUTH"));
    assert_eq!(recorded[0].body, request);

    let parsed = super::handler::parse_request(WireFormat::Anthropic, &request.to_string().into())
        .expect("parsed");
    assert_eq!(parsed.get("tools"), None);
    assert_eq!(parsed["messages"], request["messages"]);
    for bad in ["{\"tools\": [1,", "[1, 2]", "not json"] {
        let full = super::handler::parse_body(WireFormat::Anthropic, &bad.to_string().into());
        let partial = super::handler::parse_request(WireFormat::Anthropic, &bad.to_string().into());
        assert_eq!(full.is_ok(), partial.is_ok(), "{bad}");
    }
    server.shutdown().await;
}

#[test]
fn only_the_newest_requests_are_kept() {
    use super::state::{MAX_RECORDED, RecordedRequest, State};
    let state = State::new(sample());
    for i in 0..MAX_RECORDED + 5 {
        state.record(RecordedRequest {
            method: "POST".into(),
            path: format!("/{i}"),
            query: None,
            format: WireFormat::Anthropic,
            headers: Vec::new(),
            body: Value::Null,
            agent: None,
            turn: None,
            fault: None,
            stream: false,
        });
    }
    let kept = state.requests();
    assert_eq!(kept.len(), MAX_RECORDED);
    assert_eq!(kept[0].path, "/5");
    assert_eq!(
        kept[MAX_RECORDED - 1].path,
        format!("/{}", MAX_RECORDED + 4)
    );
}
