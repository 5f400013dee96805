//! The opencode flavour on lines captured from opencode 1.18.33 (`run
//! --format json` against the scripted server).

use super::*;
use std::path::Path;

/// A whole run: text, a `write` tool use, two steps, the final text.
const RUN: [&str; 7] = [
    r#"{"type":"step_start","timestamp":1795757261818,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"id":"prt_21b794388001yI4f2eITNNHInM","messageID":"msg_21b793e22001Bk34vXOHKmMFlK","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","type":"step-start"}}"#,
    r#"{"type":"text","timestamp":1795757261818,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"id":"prt_21b7943a60017fEHEq7l34G3tZ","messageID":"msg_21b793e22001Bk34vXOHKmMFlK","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","type":"text","text":"Writing the file.","time":{"start":1795757261734,"end":1795757261760}}}"#,
    r#"{"type":"tool_use","timestamp":1795757261818,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"type":"tool","tool":"write","callID":"call_OC_AGENT_0_0","state":{"status":"completed","input":{"content":"hello from opencode\n","filePath":"/tmp/oc/work/hello.txt"},"output":"Wrote file successfully.","metadata":{"diagnostics":{},"filepath":"/tmp/oc/work/hello.txt","exists":false,"truncated":false},"title":"tmp/oc/work/hello.txt","time":{"start":1795757261756,"end":1795757261781}},"id":"prt_21b7943ae001mtoHiCYRfSrJ9s","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","messageID":"msg_21b793e22001Bk34vXOHKmMFlK"}}"#,
    r#"{"type":"step_finish","timestamp":1795757261818,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"id":"prt_21b7943dc001UaMGpXpLzYExW1","reason":"tool-calls","messageID":"msg_21b793e22001Bk34vXOHKmMFlK","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","type":"step-finish","tokens":{"total":2419,"input":2396,"output":23,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}"#,
    r#"{"type":"step_start","timestamp":1795757261976,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"id":"prt_21b79446c001MA8bRxT6EIAOXJ","messageID":"msg_21b7943ee001QkACFYwVULUcGN","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","type":"step-start"}}"#,
    r#"{"type":"text","timestamp":1795757261977,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"id":"prt_21b794472001dlE6IXgSSGnaZI","messageID":"msg_21b7943ee001QkACFYwVULUcGN","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","type":"text","text":"[STATUS: COMPLETE] wrote hello.txt","time":{"start":1795757261939,"end":1795757261947}}}"#,
    r#"{"type":"step_finish","timestamp":1795757261977,"sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","part":{"id":"prt_21b794480001BSJZ8PgcB4OW6w","reason":"stop","messageID":"msg_21b7943ee001QkACFYwVULUcGN","sessionID":"ses_de486c889ffeh9Hk61tOnp04TI","type":"step-finish","tokens":{"total":2415,"input":2407,"output":8,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}"#,
];

/// The model was unknown to the server.
const ERROR: &str = r#"{"type":"error","timestamp":1795757351727,"sessionID":"ses_de4856384ffemdx20SMvM0wb0O","error":{"name":"UnknownError","data":{"message":"Unexpected server error. Check server logs for details.","ref":"err_b656c73c"}}}"#;

/// The server answered 400 (opencode does not retry it; a 500 it retries for
/// about 70 s, then reports the same way).
const API_ERROR: &str = r#"{"type":"error","timestamp":1795759100319,"sessionID":"ses_de46ac19dffeG4wv7xW6sAXRKT","error":{"name":"APIError","data":{"message":"mock-provider: no script agent matches this request (its text names none of: OC_AGENT, OTHER; add a \"*\" agent to answer any request)","statusCode":400,"isRetryable":false,"responseHeaders":{"content-length":"214","content-type":"application/json","date":"Fri, 27 Nov 2026 05:58:20 GMT"},"responseBody":"{\"error\":{\"code\":null,\"message\":\"mock-provider: no script agent matches this request (its text names none of: OC_AGENT, OTHER; add a \\\"*\\\" agent to answer any request)\",\"param\":null,\"type\":\"invalid_request_error\"}}","metadata":{"url":"http://127.0.0.1:18431/v1/chat/completions"}}}}"#;

fn read(reader: &mut OpencodeReader, lines: &[&str]) -> Vec<Observation> {
    let mut out = Vec::new();
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap();
        reader.event(&event, &mut out);
    }
    out
}

fn exit(code: i32) -> Exit {
    Exit {
        code: Some(code),
        signal: None,
    }
}

#[test]
fn a_whole_run_gives_text_tools_usage_and_the_session() {
    let mut reader = OpencodeReader::new("mock-model");
    let out = read(&mut reader, &RUN);
    let texts: Vec<&str> = out
        .iter()
        .filter_map(|o| match o {
            Observation::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "Writing the file.\n",
            "[STATUS: COMPLETE] wrote hello.txt\n"
        ]
    );
    assert!(out.contains(&Observation::Tool("write".into())));
    assert!(out.contains(&Observation::Session(
        "ses_de486c889ffeh9Hk61tOnp04TI".into()
    )));
    let usages: Vec<(Usage, Option<f64>)> = out
        .iter()
        .filter_map(|o| match o {
            Observation::Usage {
                model,
                usage,
                cost_usd,
            } => {
                assert_eq!(model, "mock-model");
                Some((*usage, *cost_usd))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        usages,
        [
            (
                Usage {
                    input_tokens: 2396,
                    output_tokens: 23,
                    cached_input_tokens: 0
                },
                None
            ),
            (
                Usage {
                    input_tokens: 2407,
                    output_tokens: 8,
                    cached_input_tokens: 0
                },
                None
            ),
        ]
    );
    assert_eq!(reader.finish(exit(0)), Ok(()));
}

#[test]
fn an_error_event_fails_the_attempt_even_with_exit_0() {
    let mut reader = OpencodeReader::new("m");
    read(&mut reader, &[ERROR]);
    let why = reader.finish(exit(0)).unwrap_err();
    assert_eq!(
        why,
        "opencode: UnknownError: Unexpected server error. Check server logs for details."
    );
}

#[test]
fn an_api_error_names_the_servers_message() {
    let mut reader = OpencodeReader::new("m");
    read(&mut reader, &[API_ERROR]);
    let exit = Exit {
        code: Some(1),
        signal: None,
    };
    let why = reader.finish(exit).unwrap_err();
    assert!(
        why.starts_with("opencode: APIError: mock-provider: no script agent matches"),
        "{why}"
    );
}

#[test]
fn a_non_zero_exit_fails_the_attempt() {
    let mut reader = OpencodeReader::new("m");
    read(&mut reader, &RUN[..2]);
    assert_eq!(
        reader.finish(exit(1)),
        Err("opencode: exit code 1".to_string())
    );
    let killed = Exit {
        code: None,
        signal: Some(9),
    };
    assert!(reader.finish(killed).unwrap_err().contains("signal 9"));
}

#[test]
fn a_priced_step_keeps_its_cost_and_cache_reads() {
    let part = serde_json::json!({"tokens": {"input": 100, "output": 20, "reasoning": 5,
        "cache": {"read": 40, "write": 0}}, "cost": 0.0125});
    let (usage, cost) = step_usage(&part);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 140,
            output_tokens: 25,
            cached_input_tokens: 40
        }
    );
    assert_eq!(cost, Some(0.0125));
    assert_eq!(error_message(&serde_json::json!({"error": "boom"})), "boom");
    assert_eq!(
        error_message(
            &serde_json::json!({"error": {"name": "APIError", "data": {"message": "429"}}})
        ),
        "APIError: 429"
    );
}

#[test]
fn the_configuration_points_the_provider_at_the_server() {
    let config = config("http://127.0.0.1:9/v1", "k", "qwen3", Permissions::ReadOnly);
    assert_eq!(config["model"], "llmo/qwen3");
    assert_eq!(
        config["provider"]["llmo"]["options"]["baseURL"],
        "http://127.0.0.1:9/v1"
    );
    assert_eq!(
        config["provider"]["llmo"]["models"]["qwen3"]["name"],
        "qwen3"
    );
    assert_eq!(config["permission"]["edit"], "deny");
    assert_eq!(
        permission_config(Permissions::WorkspaceWrite)["external_directory"],
        "deny"
    );
    assert_eq!(
        permission_config(Permissions::FullAccess)["webfetch"],
        "allow"
    );
}

fn task(dir: &std::path::Path) -> crate::drivers::AgentTask {
    let agent: crate::plan::Agent = serde_json::from_value(serde_json::json!({
        "agentId": "OC1", "workDescription": "do it",
    }))
    .unwrap();
    crate::drivers::AgentTask {
        run_id: "r".into(),
        agent,
        workdir: dir.join("svc/."),
        run_dir: dir.to_path_buf(),
        agent_dir: dir.join("agents/OC1"),
        prompt: "PROMPT".into(),
        attempt: 1,
        retry_context: None,
        timeout: None,
        stall_timeout: None,
        kill_grace: std::time::Duration::from_millis(200),
    }
}

#[test]
fn the_command_passes_the_prompt_last_and_the_configuration_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let attempt = Attempt {
        task: &task,
        prompt: "-starts with a dash",
        model: Some("qwen3"),
        permissions: Permissions::WorkspaceWrite,
    };
    let command = Opencode.command(&attempt).unwrap();
    let args: Vec<String> = command
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args[..3], ["run", "--format", "json"]);
    let after = |flag: &str| {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1].clone()
    };
    assert_eq!(after("-m"), "llmo/qwen3");
    assert_eq!(after("--title"), "OC1");
    let workdir = after("--dir");
    assert!(Path::new(&workdir).is_absolute(), "{workdir}");
    assert_eq!(
        command.trailing,
        [OsString::from("--"), OsString::from("-starts with a dash")]
    );
    let env = |name: &str| {
        command
            .env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    let config: Value = serde_json::from_str(&env("OPENCODE_CONFIG_CONTENT").unwrap()).unwrap();
    assert_eq!(config["model"], "llmo/qwen3");
    assert_eq!(config["permission"]["edit"], "allow");
    assert_eq!(env("OPENCODE_DISABLE_MODELS_FETCH").as_deref(), Some("1"));
    assert_eq!(env("npm_config_offline").as_deref(), Some("true"));
    assert_eq!(env("PWD"), Some(workdir));
    // The key travels in the configuration (the environment), never in argv.
    assert!(!args.iter().any(|a| a.contains("apiKey")));
}
