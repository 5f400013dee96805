//! The aider flavour on output captured from aider 0.86.2 (`--no-pretty
//! --no-stream`) against the scripted server.

use super::*;

/// stdout of a run whose reply created hello.txt.
const STDOUT: &str = r#"
Aider v0.86.2
Model: openai/mock-model with whole edit format
Git repo: none
Repo-map: disabled

Creating the file.



hello.txt

```
hello from aider

```


[STATUS: COMPLETE] wrote hello.txt

Tokens: 621 sent, 22 received. Cost: $0.00067 message, $0.00067 session.

hello.txt
Applied edit to hello.txt
"#;

/// Its analytics log.
const ANALYTICS: &str = r#"{"event": "launched", "properties": {}, "user_id": "d79683ec-76ef-4516-b03f-7e42eaccc517", "time": 1795757379}
{"event": "no-repo", "properties": {}, "user_id": "d79683ec-76ef-4516-b03f-7e42eaccc517", "time": 1795757383}
{"event": "auto_commits", "properties": {"enabled": true}, "user_id": "d79683ec-76ef-4516-b03f-7e42eaccc517", "time": 1795757383}
{"event": "message_send_starting", "properties": {}, "user_id": "d79683ec-76ef-4516-b03f-7e42eaccc517", "time": 1795757383}
{"event": "message_send", "properties": {"main_model": "openai/mock-model", "weak_model": "openai/mock-model", "editor_model": "openai/mock-model", "edit_format": "whole", "prompt_tokens": 621, "completion_tokens": 22, "total_tokens": 643, "cost": 0.000665, "total_cost": 0.000665}, "user_id": "d79683ec-76ef-4516-b03f-7e42eaccc517", "time": 1795757384}
{"event": "exit", "properties": {"reason": "Completed --message"}, "user_id": "d79683ec-76ef-4516-b03f-7e42eaccc517", "time": 1795757384}
"#;

/// stdout of a run whose server was unreachable (exit code 0 all the same).
const UNREACHABLE: &str = r#"
Aider v0.86.2
Model: openai/mock-model with whole edit format
Git repo: none
Repo-map: disabled

litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 0.2 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 0.5 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 1.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 2.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 4.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 8.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 16.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.
Retrying in 32.0 seconds...
litellm.InternalServerError: InternalServerError: OpenAIException - Connection 
error.
The API provider's servers are down or overloaded.

"#;

fn reader(dir: &Path) -> AiderReader {
    AiderReader::new("mock-model", dir.join(ANALYTICS_LOG))
}

fn feed(reader: &mut AiderReader, stdout: &str) -> Vec<Observation> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        reader.plain(line, &mut out);
    }
    out
}

fn usages(out: &[Observation]) -> Vec<(Usage, Option<f64>)> {
    out.iter()
        .filter_map(|o| match o {
            Observation::Usage {
                usage, cost_usd, ..
            } => Some((*usage, *cost_usd)),
            _ => None,
        })
        .collect()
}

const OK: Exit = Exit {
    code: Some(0),
    signal: None,
};

#[test]
fn stdout_lines_are_text_and_usage_comes_from_the_analytics_log() {
    let dir = tempfile::tempdir().unwrap();
    // An earlier attempt's events stay out of this one.
    std::fs::write(dir.path().join(ANALYTICS_LOG), ANALYTICS).unwrap();
    let mut reader = reader(dir.path());
    let text = feed(&mut reader, STDOUT);
    assert!(text.contains(&Observation::Text(
        "[STATUS: COMPLETE] wrote hello.txt\n".into()
    )));
    let log = format!("{ANALYTICS}{}", ANALYTICS.replace("621", "700"));
    std::fs::write(dir.path().join(ANALYTICS_LOG), log).unwrap();
    let mut out = Vec::new();
    reader.drain(OK, &mut out);
    assert_eq!(
        usages(&out),
        [(
            Usage {
                input_tokens: 700,
                output_tokens: 22,
                cached_input_tokens: 0
            },
            Some(0.000665)
        )]
    );
    assert_eq!(reader.finish(OK), Ok(()));
}

#[test]
fn without_an_analytics_log_the_tokens_lines_give_the_usage() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = reader(dir.path());
    feed(&mut reader, STDOUT);
    let mut out = Vec::new();
    reader.drain(OK, &mut out);
    assert_eq!(
        usages(&out),
        [(
            Usage {
                input_tokens: 621,
                output_tokens: 22,
                cached_input_tokens: 0
            },
            Some(0.00067)
        )]
    );
    assert_eq!(reader.finish(OK), Ok(()));
}

#[test]
fn no_reply_fails_the_attempt_despite_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = reader(dir.path());
    feed(&mut reader, UNREACHABLE);
    let mut out = Vec::new();
    reader.drain(OK, &mut out);
    assert!(out.is_empty());
    let why = reader.finish(OK).unwrap_err();
    assert!(
        why.starts_with("aider got no reply from the model"),
        "{why}"
    );
    assert!(
        why.contains("Retrying") || why.contains("servers are down"),
        "{why}"
    );
}

#[test]
fn a_non_zero_exit_fails_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = reader(dir.path());
    feed(&mut reader, STDOUT);
    let exit = Exit {
        code: Some(2),
        signal: None,
    };
    assert_eq!(reader.finish(exit), Err("aider: exit code 2".to_string()));
}

#[test]
fn tokens_lines_in_all_their_forms() {
    assert_eq!(
        parse_tokens_line("Tokens: 621 sent, 22 received."),
        Some(TokensLine {
            sent: 621,
            cache_hit: 0,
            received: 22,
            cost_usd: None
        })
    );
    assert_eq!(
        parse_tokens_line(
            "Tokens: 12k sent, 1.5k cache hit, 2.3k received. Cost: $0.04 message, $0.10 session."
        ),
        Some(TokensLine {
            sent: 12_000,
            cache_hit: 1_500,
            received: 2_300,
            cost_usd: Some(0.04)
        })
    );
    assert_eq!(parse_tokens_line("Tokens: lots"), None);
    assert_eq!(parse_tokens_line("no tokens here"), None);
}

#[test]
fn a_json_line_is_text_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = reader(dir.path());
    let mut out = Vec::new();
    reader.event(&serde_json::json!({"a": 1}), &mut out);
    assert_eq!(out, [Observation::Text("{\"a\":1}\n".into())]);
}

#[test]
fn models_metadata_and_git_detection() {
    assert_eq!(aider_model("qwen3"), "openai/qwen3");
    assert_eq!(aider_model("openai/qwen3"), "openai/qwen3");
    assert_eq!(aider_model("qwen/qwen3-coder"), "openai/qwen/qwen3-coder");
    let metadata = model_metadata("openai/qwen3");
    assert_eq!(metadata["openai/qwen3"]["litellm_provider"], "openai");
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("a/b");
    std::fs::create_dir_all(&inner).unwrap();
    assert!(!in_git_repo(&inner));
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    assert!(in_git_repo(&inner));
}

fn task(dir: &Path) -> crate::drivers::AgentTask {
    let agent: crate::plan::Agent = serde_json::from_value(serde_json::json!({
        "agentId": "AD1", "workDescription": "do it",
    }))
    .unwrap();
    crate::drivers::AgentTask {
        run_id: "r".into(),
        agent,
        workdir: dir.join("svc"),
        run_dir: dir.to_path_buf(),
        agent_dir: dir.join("agents/AD1"),
        prompt: "PROMPT".into(),
        attempt: 1,
        retry_context: None,
        timeout: None,
        stall_timeout: None,
        kill_grace: std::time::Duration::from_millis(200),
    }
}

#[test]
fn the_command_writes_the_prompt_and_metadata_and_keeps_the_key_out_of_argv() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let attempt = Attempt {
        task: &task,
        prompt: "do the thing",
        model: Some("qwen3"),
        permissions: Permissions::ReadOnly,
    };
    let command = Aider.command(&attempt).unwrap();
    let args: Vec<String> = command
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let after = |flag: &str| {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1].clone()
    };
    let prompt = after("--message-file");
    assert!(Path::new(&prompt).is_absolute(), "{prompt}");
    assert_eq!(std::fs::read_to_string(&prompt).unwrap(), "do the thing");
    assert_eq!(after("--model"), "openai/qwen3");
    let metadata: Value =
        serde_json::from_str(&std::fs::read_to_string(after("--model-metadata-file")).unwrap())
            .unwrap();
    assert!(metadata.get("openai/qwen3").is_some());
    assert!(after("--analytics-log").ends_with("agents/AD1/aider-analytics.jsonl"));
    for flag in [
        "--yes-always",
        "--no-stream",
        "--no-pretty",
        "--no-analytics",
        "--dry-run",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }
    // A temporary folder is in no git repository.
    assert!(args.iter().any(|a| a == "--no-git"));
    assert!(!args.iter().any(|a| a.contains("api-key")));
    assert!(command.trailing.is_empty());
    let names: Vec<&str> = command.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["OPENAI_API_KEY", "LITELLM_LOCAL_MODEL_COST_MAP"]);
}
