//! `llm-orchestrate mock-provider`: the real binary on a free port, spoken to
//! over HTTP in the four wire formats, with every fault kind.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SCRIPT: &str = r#"{
  "agents": {
    "AUTH_IMPL": { "turns": [
      { "text": "[STATUS: STARTED] working on it",
        "toolCalls": [ {"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}},
                       {"name": "read_file", "arguments": {"path": "b.txt"}} ] },
      { "text": "done [STATUS: COMPLETE]", "usage": {"inputTokens": 100, "outputTokens": 20} }
    ]},
    "AUTH": { "turns": [ { "text": "short id" } ] },
    "RATE": { "turns": [ { "text": "after rate limit", "fault": {"kind": "rate-limit", "retryAfterS": 7, "times": 2} } ] },
    "BOOM": { "turns": [ { "text": "after 500", "fault": {"kind": "server-error"} } ] },
    "BUSY": { "turns": [ { "text": "after overload", "fault": {"kind": "overloaded", "times": 3} } ] },
    "CUT": { "turns": [ { "text": "a long enough answer to be cut", "fault": {"kind": "cut-stream"} } ] },
    "BAD": { "turns": [ { "text": "a long enough answer to break", "fault": {"kind": "malformed-json"} } ] },
    "SLOW": { "turns": [ { "text": "slowly now", "chunkDelayMs": 150, "fault": {"kind": "slow-trickle"} } ] },
    "LATE": { "turns": [ { "text": "late", "latencyMs": 400 } ] },
    "*": { "turns": [ { "text": "[STATUS: COMPLETE]" } ] }
  }
}"#;

const STRICT_SCRIPT: &str = r#"{"agents": {"ONLY": {"turns": [{"text": "x"}]}}}"#;

/// The server process; killed on drop.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(script: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("script.json");
    std::fs::write(&path, script).expect("write script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-orchestrate"))
        .args(["mock-provider", "--addr", "127.0.0.1:0", "--script"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let url = line
        .trim()
        .strip_prefix("mock-provider listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Server {
        child,
        url,
        _dir: dir,
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn post(server: &Server, path: &str, body: &Value) -> reqwest::blocking::Response {
    client()
        .post(format!("{}{path}", server.url))
        .header("x-api-key", "sk-test-secret")
        .json(body)
        .send()
        .expect("send")
}

/// One server-sent event: its `event:` name (if any) and `data:` text.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

fn parse_sse(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            Event { name, data }
        })
        .collect()
}

/// Reads a streamed body: its text and whether it ended cleanly.
fn read_stream(response: reqwest::blocking::Response) -> (String, bool) {
    let mut response = response;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let clean = loop {
        match response.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&bytes).into_owned(), clean)
}

fn stream_events(response: reqwest::blocking::Response) -> Vec<Event> {
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let (text, clean) = read_stream(response);
    assert!(clean, "stream ended with an error: {text}");
    parse_sse(&text)
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().filter_map(|e| e.name.as_deref()).collect()
}

fn anthropic_body(text: &str, history: &[Value], stream: bool) -> Value {
    let mut messages = vec![json!({"role": "user", "content": text})];
    messages.extend(history.iter().cloned());
    json!({"model": "claude-test", "max_tokens": 1000, "stream": stream,
           "system": [{"type": "text", "text": "You are a coding agent."}],
           "messages": messages,
           "tools": [{"name": "write_file", "description": "w", "input_schema": {"type": "object"}}]})
}

fn chat_body(text: &str, stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]})
}

fn gemini_body(text: &str) -> Value {
    json!({"systemInstruction": {"parts": [{"text": "sys"}]},
           "contents": [{"role": "user", "parts": [{"text": text}]}]})
}

#[test]
fn bad_script_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{\"agents\": {\"A\": {\"turns\": [{\"txet\": 1}]}}}").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-orchestrate"))
        .args(["mock-provider", "--addr", "127.0.0.1:0", "--script"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert!(stderr.contains("txet"), "{stderr}");
    let missing = Command::new(env!("CARGO_BIN_EXE_llm-orchestrate"))
        .args(["mock-provider", "--script", "/nonexistent/script.json"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/script.json"));
}

#[test]
fn root_answers_head_and_get() {
    let server = start(SCRIPT);
    let c = client();
    assert_eq!(c.head(&server.url).send().expect("head").status(), 200);
    assert_eq!(c.get(&server.url).send().expect("get").status(), 200);
    let missing = c.get(format!("{}/nope", server.url)).send().expect("get");
    assert_eq!(missing.status(), 404);
}

#[test]
fn anthropic_stream_text_and_parallel_tool_calls() {
    let server = start(SCRIPT);
    let events = stream_events(post(
        &server,
        "/v1/messages?beta=true",
        &anthropic_body("You are agent AUTH_IMPL.", &[], true),
    ));
    let seq = names(&events);
    assert_eq!(seq.first(), Some(&"message_start"));
    assert_eq!(seq[seq.len() - 2..], ["message_delta", "message_stop"]);
    for e in &events {
        assert_eq!(
            Some(e.json()["type"].as_str().expect("type")),
            e.name.as_deref()
        );
    }
    let start = events[0].json();
    assert_eq!(start["message"]["role"], "assistant");
    assert_eq!(start["message"]["model"], "claude-test");
    assert!(
        start["message"]["usage"]["input_tokens"]
            .as_u64()
            .expect("input")
            >= 1
    );
    let blocks: Vec<Value> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_start"))
        .map(|e| e.json())
        .collect();
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        blocks[0]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(blocks[1]["content_block"]["type"], "tool_use");
    assert_eq!(blocks[1]["content_block"]["id"], "toolu_AUTH_IMPL_0_0");
    assert_eq!(blocks[1]["content_block"]["input"], json!({}));
    assert_eq!(blocks[2]["content_block"]["name"], "read_file");
    let deltas: Vec<Value> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| e.json())
        .collect();
    let text: String = deltas
        .iter()
        .filter(|d| d["delta"]["type"] == "text_delta")
        .map(|d| d["delta"]["text"].as_str().expect("text").to_string())
        .collect();
    assert_eq!(text, "[STATUS: STARTED] working on it");
    assert!(
        deltas
            .iter()
            .filter(|d| d["delta"]["type"] == "text_delta")
            .count()
            >= 3
    );
    let args: String = deltas
        .iter()
        .filter(|d| d["index"] == 1 && d["delta"]["type"] == "input_json_delta")
        .map(|d| {
            d["delta"]["partial_json"]
                .as_str()
                .expect("partial")
                .to_string()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).expect("args"),
        json!({"path": "a.txt", "content": "hi"})
    );
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert!(delta["usage"]["output_tokens"].as_u64().expect("output") >= 1);
}

#[test]
fn anthropic_turn_selection_by_history_and_past_the_end() {
    let server = start(SCRIPT);
    let assistant = json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_AUTH_IMPL_0_0", "name": "write_file", "input": {}}]});
    let result = json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_AUTH_IMPL_0_0", "content": "ok"}]});
    let body = anthropic_body(
        "agent AUTH_IMPL",
        &[assistant.clone(), result.clone()],
        false,
    );
    let response = post(&server, "/v1/messages", &body);
    assert_eq!(response.status(), 200);
    let message: Value = response.json().expect("json");
    assert_eq!(message["type"], "message");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["content"][0]["text"], "done [STATUS: COMPLETE]");
    assert_eq!(message["usage"]["input_tokens"], 100);
    assert_eq!(message["usage"]["output_tokens"], 20);
    // Same request again: same turn (stateless).
    let again: Value = post(&server, "/v1/messages", &body).json().expect("json");
    assert_eq!(again["content"], message["content"]);
    // Past the last turn: the last text, no tools.
    let history = [assistant.clone(), result.clone(), assistant, result];
    let past: Value = post(
        &server,
        "/v1/messages",
        &anthropic_body("agent AUTH_IMPL", &history, false),
    )
    .json()
    .expect("json");
    assert_eq!(past["content"].as_array().map(Vec::len), Some(1));
    assert_eq!(past["content"][0]["text"], "done [STATUS: COMPLETE]");
    assert_eq!(past["stop_reason"], "end_turn");
    // First turn, not streamed: tool_use blocks with inputs.
    let first: Value = post(
        &server,
        "/v1/messages",
        &anthropic_body("agent AUTH_IMPL", &[], false),
    )
    .json()
    .expect("json");
    assert_eq!(first["stop_reason"], "tool_use");
    assert_eq!(first["content"][1]["input"]["path"], "a.txt");
}

#[test]
fn agent_matching_longest_whole_word_then_wildcard_then_400() {
    let server = start(SCRIPT);
    let text = |body: Value| -> String {
        let v: Value = post(&server, "/v1/messages", &body).json().expect("json");
        v["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        text(anthropic_body("AUTH and AUTH_IMPL", &[], false)),
        "[STATUS: STARTED] working on it"
    );
    assert_eq!(
        text(anthropic_body("only AUTH here", &[], false)),
        "short id"
    );
    assert_eq!(
        text(anthropic_body("AUTH_IMPLX XAUTH", &[], false)),
        "[STATUS: COMPLETE]"
    );
    let strict = start(STRICT_SCRIPT);
    let response = post(
        &strict,
        "/v1/messages",
        &anthropic_body("nobody", &[], false),
    );
    assert_eq!(response.status(), 400);
    let err: Value = response.json().expect("json");
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("ONLY")
    );
    let chat = post(&strict, "/v1/chat/completions", &chat_body("nobody", false));
    assert_eq!(chat.status(), 400);
    let err: Value = chat.json().expect("json");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    let gem = post(
        &strict,
        "/v1beta/models/g:generateContent",
        &gemini_body("nobody"),
    );
    assert_eq!(gem.status(), 400);
    let err: Value = gem.json().expect("json");
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    let bad_json = client()
        .post(format!("{}/v1/messages", strict.url))
        .body("{not json")
        .send()
        .expect("send");
    assert_eq!(bad_json.status(), 400);
}

#[test]
fn chat_stream_tool_calls_usage_and_done() {
    let server = start(SCRIPT);
    for path in ["/v1/chat/completions", "/chat/completions"] {
        let events = stream_events(post(&server, path, &chat_body("agent AUTH_IMPL", true)));
        assert!(events.iter().all(|e| e.name.is_none()));
        assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "[STATUS: STARTED] working on it");
        let mut ids = Vec::new();
        let mut args = [String::new(), String::new()];
        for c in &chunks {
            for call in c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = call["index"].as_u64().expect("index") as usize;
                if let Some(id) = call["id"].as_str() {
                    ids.push(id.to_string());
                    assert_eq!(call["type"], "function");
                }
                args[i].push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
        }
        assert_eq!(ids, ["call_AUTH_IMPL_0_0", "call_AUTH_IMPL_0_1"]);
        assert_eq!(
            serde_json::from_str::<Value>(&args[1]).expect("args"),
            json!({"path": "b.txt"})
        );
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        let usage = &chunks[chunks.len() - 1];
        assert_eq!(usage["choices"], json!([]));
        let u = &usage["usage"];
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(
                u["prompt_tokens"].as_u64().expect("p")
                    + u["completion_tokens"].as_u64().expect("c")
            )
        );
    }
}

#[test]
fn chat_non_streaming_completion() {
    let server = start(SCRIPT);
    let body: Value = post(
        &server,
        "/v1/chat/completions",
        &chat_body("agent AUTH_IMPL", false),
    )
    .json()
    .expect("json");
    assert_eq!(body["object"], "chat.completion");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"]["name"],
        "write_file"
    );
    let args = choice["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .expect("string arguments");
    assert_eq!(
        serde_json::from_str::<Value>(args).expect("json")["content"],
        "hi"
    );
    let plain: Value = post(&server, "/v1/chat/completions", &chat_body("hello", false))
        .json()
        .expect("json");
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "[STATUS: COMPLETE]"
    );
    assert!(plain["choices"][0]["message"].get("tool_calls").is_none());
}

#[test]
fn responses_stream_events_and_completed_response() {
    let server = start(SCRIPT);
    let body = json!({"model": "gpt-5", "instructions": "You are agent AUTH_IMPL", "stream": true,
                      "input": [{"role": "user", "content": [{"type": "input_text", "text": "go"}]}],
                      "tools": [{"type": "function", "name": "write_file", "parameters": {"type": "object"}}]});
    let events = stream_events(post(&server, "/v1/responses", &body));
    let seq = names(&events);
    let expected_prefix = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ];
    assert_eq!(seq[..5], expected_prefix);
    assert_eq!(seq.last(), Some(&"response.completed"));
    for name in [
        "response.output_text.done",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
    ] {
        assert!(seq.contains(&name), "{name} missing from {seq:?}");
    }
    for (i, e) in events.iter().enumerate() {
        let v = e.json();
        assert_eq!(v["type"].as_str(), e.name.as_deref());
        assert_eq!(v["sequence_number"], json!(i));
    }
    let added: Vec<Value> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("response.output_item.added"))
        .map(|e| e.json())
        .collect();
    assert_eq!(added[1]["item"]["type"], "function_call");
    assert_eq!(added[1]["item"]["call_id"], "call_AUTH_IMPL_0_0");
    let completed = events.last().expect("completed").json();
    let response = &completed["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["object"], "response");
    let output = response["output"].as_array().expect("output");
    assert_eq!(output.len(), 3);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["content"][0]["type"], "output_text");
    assert_eq!(
        output[0]["content"][0]["text"],
        "[STATUS: STARTED] working on it"
    );
    assert_eq!(output[2]["name"], "read_file");
    let usage = &response["usage"];
    assert!(usage["input_tokens"].as_u64().expect("in") >= 1);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
    // Next turn: after the model's message and calls, and their outputs.
    let next = json!({"model": "gpt-5", "instructions": "You are agent AUTH_IMPL",
        "input": [{"role": "user", "content": "go"},
                  output[0], output[1], output[2],
                  {"type": "function_call_output", "call_id": "call_AUTH_IMPL_0_0", "output": "ok"},
                  {"type": "function_call_output", "call_id": "call_AUTH_IMPL_0_1", "output": "ok"}]});
    let reply: Value = post(&server, "/responses", &next).json().expect("json");
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        "done [STATUS: COMPLETE]"
    );
    assert_eq!(reply["usage"]["total_tokens"], 120);
}

#[test]
fn gemini_sse_array_and_single_response() {
    let server = start(SCRIPT);
    let events = stream_events(post(
        &server,
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
        &gemini_body("agent AUTH_IMPL"),
    ));
    assert!(events.len() >= 2);
    let chunks: Vec<Value> = events.iter().map(Event::json).collect();
    let text: String = chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "[STATUS: STARTED] working on it");
    let last = chunks.last().expect("last");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["candidates"][0]["content"]["role"], "model");
    assert_eq!(
        last["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
        "write_file"
    );
    assert_eq!(
        last["candidates"][0]["content"]["parts"][1]["functionCall"]["args"],
        json!({"path": "b.txt"})
    );
    let usage = &last["usageMetadata"];
    assert_eq!(
        usage["totalTokenCount"].as_u64(),
        Some(
            usage["promptTokenCount"].as_u64().expect("p")
                + usage["candidatesTokenCount"].as_u64().expect("c")
        )
    );
    assert_eq!(last["modelVersion"], "gemini-test");
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
    // Without alt=sse: a JSON array of the same chunks.
    let array: Value = post(
        &server,
        "/v1/models/gemini-test:streamGenerateContent",
        &gemini_body("agent AUTH_IMPL"),
    )
    .json()
    .expect("json");
    assert_eq!(array.as_array().map(Vec::len), Some(chunks.len()));
    // generateContent, second turn.
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "agent AUTH_IMPL"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "write_file", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {"ok": true}}}]}]});
    let single: Value = post(&server, "/v1beta/models/gemini-test:generateContent", &body)
        .json()
        .expect("json");
    assert_eq!(
        single["candidates"][0]["content"]["parts"][0]["text"],
        "done [STATUS: COMPLETE]"
    );
    assert_eq!(single["usageMetadata"]["candidatesTokenCount"], 20);
}

#[test]
fn gemini_batch_create_and_poll() {
    let server = start(SCRIPT);
    let body = json!({"batch": {"displayName": "b1", "inputConfig": {"requests": {"requests": [
        {"request": gemini_body("agent AUTH"), "metadata": {"key": "k1"}},
        {"request": gemini_body("agent LATE"), "metadata": {"key": "k2"}}]}}}});
    let op: Value = post(
        &server,
        "/v1beta/models/gemini-test:batchGenerateContent",
        &body,
    )
    .json()
    .expect("json");
    let name = op["name"].as_str().expect("name").to_string();
    assert!(name.starts_with("batches/"));
    assert_eq!(op["metadata"]["displayName"], "b1");
    let poll = || -> Value {
        client()
            .get(format!("{}/v1beta/{name}", server.url))
            .send()
            .expect("get")
            .json()
            .expect("json")
    };
    let running = poll();
    assert_eq!(running["metadata"]["state"], "BATCH_STATE_RUNNING");
    std::thread::sleep(Duration::from_millis(450));
    let done = poll();
    assert_eq!(done["done"], true);
    assert_eq!(done["metadata"]["state"], "BATCH_STATE_SUCCEEDED");
    let items = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
        .as_array()
        .expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["metadata"]["key"], "k1");
    assert_eq!(
        items[0]["response"]["candidates"][0]["content"]["parts"][0]["text"],
        "short id"
    );
    assert_eq!(
        items[1]["response"]["candidates"][0]["content"]["parts"][0]["text"],
        "late"
    );
    let missing = client()
        .get(format!("{}/v1beta/batches/nope", server.url))
        .send()
        .expect("get");
    assert_eq!(missing.status(), 404);
}

#[test]
fn fault_rate_limit_429_with_retry_after_then_served() {
    let server = start(SCRIPT);
    for _ in 0..2 {
        let response = post(&server, "/v1/messages", &anthropic_body("RATE", &[], true));
        assert_eq!(response.status(), 429);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
        let err: Value = response.json().expect("json");
        assert_eq!(err["error"]["type"], "rate_limit_error");
    }
    let events = stream_events(post(
        &server,
        "/v1/messages",
        &anthropic_body("RATE", &[], true),
    ));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    // The count is per (agent, turn) across formats: already used up.
    let ok = post(&server, "/v1/chat/completions", &chat_body("RATE", false));
    assert_eq!(ok.status(), 200);
}

#[test]
fn fault_rate_limit_in_openai_and_gemini_shapes() {
    let server = start(SCRIPT);
    let chat = post(&server, "/v1/chat/completions", &chat_body("RATE", true));
    assert_eq!(chat.status(), 429);
    let err: Value = chat.json().expect("json");
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    let gem = post(
        &server,
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        &gemini_body("RATE"),
    );
    assert_eq!(gem.status(), 429);
    let err: Value = gem.json().expect("json");
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["error"]["code"], 429);
}

#[test]
fn fault_server_error_500_once() {
    let server = start(SCRIPT);
    let response = post(
        &server,
        "/v1/responses",
        &json!({"input": "BOOM", "stream": true}),
    );
    assert_eq!(response.status(), 500);
    let err: Value = response.json().expect("json");
    assert_eq!(err["error"]["type"], "server_error");
    let events = stream_events(post(
        &server,
        "/v1/responses",
        &json!({"input": "BOOM", "stream": true}),
    ));
    assert_eq!(names(&events).last(), Some(&"response.completed"));
}

#[test]
fn fault_overloaded_529_for_anthropic_503_for_others() {
    let server = start(SCRIPT);
    let a = post(&server, "/v1/messages", &anthropic_body("BUSY", &[], true));
    assert_eq!(a.status().as_u16(), 529);
    let err: Value = a.json().expect("json");
    assert_eq!(err["error"]["type"], "overloaded_error");
    let c = post(&server, "/v1/chat/completions", &chat_body("BUSY", true));
    assert_eq!(c.status(), 503);
    let g = post(
        &server,
        "/v1beta/models/g:generateContent",
        &gemini_body("BUSY"),
    );
    assert_eq!(g.status(), 503);
    let err: Value = g.json().expect("json");
    assert_eq!(err["error"]["status"], "UNAVAILABLE");
    let served = post(
        &server,
        "/v1beta/models/g:generateContent",
        &gemini_body("BUSY"),
    );
    assert_eq!(served.status(), 200);
}

#[test]
fn fault_cut_stream_drops_the_connection_before_the_final_event() {
    let server = start(SCRIPT);
    let response = post(&server, "/v1/messages", &anthropic_body("CUT", &[], true));
    assert_eq!(response.status(), 200);
    let (text, clean) = read_stream(response);
    assert!(!clean, "the stream should end with an error");
    assert!(text.contains("event: message_start"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
    let events = stream_events(post(
        &server,
        "/v1/messages",
        &anthropic_body("CUT", &[], true),
    ));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
}

#[test]
fn fault_cut_stream_in_responses_lacks_completed() {
    let server = start(SCRIPT);
    let response = post(
        &server,
        "/v1/responses",
        &json!({"input": "CUT", "stream": true}),
    );
    let (text, clean) = read_stream(response);
    assert!(!clean);
    assert!(text.contains("response.created"), "{text}");
    assert!(!text.contains("response.completed"), "{text}");
}

#[test]
fn fault_malformed_json_data_line() {
    let server = start(SCRIPT);
    let response = post(&server, "/v1/chat/completions", &chat_body("BAD", true));
    assert_eq!(response.status(), 200);
    let (text, _) = read_stream(response);
    let events = parse_sse(&text);
    let invalid = events
        .iter()
        .filter(|e| serde_json::from_str::<Value>(&e.data).is_err())
        .count();
    assert_eq!(invalid, 1, "{text}");
    assert!(!text.contains("[DONE]"));
    let events = stream_events(post(
        &server,
        "/v1/chat/completions",
        &chat_body("BAD", true),
    ));
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
}

#[test]
fn fault_slow_trickle_then_normal_pace() {
    let server = start(SCRIPT);
    let started = Instant::now();
    let slow = stream_events(post(
        &server,
        "/v1/messages",
        &anthropic_body("SLOW", &[], true),
    ));
    let slow_time = started.elapsed();
    let deltas = slow
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .count();
    assert!(deltas >= 3);
    assert!(
        slow_time >= Duration::from_millis(150 * deltas as u64 - 50),
        "{slow_time:?} for {deltas} chunks"
    );
    // chunkDelayMs applies on every request, fault or not.
    let started = Instant::now();
    stream_events(post(
        &server,
        "/v1/messages",
        &anthropic_body("SLOW", &[], true),
    ));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn latency_delays_the_answer() {
    let server = start(SCRIPT);
    let started = Instant::now();
    let response = post(&server, "/v1/chat/completions", &chat_body("LATE", false));
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    let quick = post(&server, "/v1/chat/completions", &chat_body("AUTH", false));
    assert_eq!(quick.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[test]
fn count_tokens_and_models_endpoints() {
    let server = start(SCRIPT);
    let count: Value = post(
        &server,
        "/v1/messages/count_tokens",
        &anthropic_body("AUTH", &[], false),
    )
    .json()
    .expect("json");
    assert!(count["input_tokens"].as_u64().expect("n") >= 1);
    let gem: Value = post(
        &server,
        "/v1beta/models/g:countTokens",
        &gemini_body("AUTH"),
    )
    .json()
    .expect("json");
    assert!(gem["totalTokens"].as_u64().expect("n") >= 1);
    let models: Value = client()
        .get(format!("{}/v1/models", server.url))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(models["object"], "list");
}

#[test]
fn sigterm_stops_the_server_with_exit_0() {
    let mut server = start(SCRIPT);
    let pid = i32::try_from(server.child.id()).expect("pid");
    // SAFETY: sends SIGTERM to the child this test started.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = server.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}
