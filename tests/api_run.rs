//! End-to-end runs of LLM agents over the providers' APIs: the real binary,
//! the built-in agent loop and the scripted provider server.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use llm_orchestrate::mock_provider::{MockServer, Script};

const KEY: &str = "sk-test-SECRET-0123456789";

fn run_dir_of(dir: &Path) -> PathBuf {
    let runs = dir.join("runs");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.pop().expect("a run folder")
}

fn plan(dir: &Path, platform: &str, extra: serde_json::Value) -> PathBuf {
    let mut agent = serde_json::json!({
        "agentId": "WRITER",
        "workDescription": "write hello into out.txt",
        "scope": "svc",
        "estimatedDuration": "1m",
    });
    if let (Some(agent), Some(extra)) = (agent.as_object_mut(), extra.as_object()) {
        agent.extend(extra.clone());
    }
    let plan = serde_json::json!({
        "orchestrationId": "api-test",
        "platform": platform,
        "waves": [{"waveId": "w1", "agents": [agent]}],
    });
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    path
}

fn script() -> Script {
    Script::from_json(
        r#"{"agents": {"WRITER": {"turns": [
            {"text": "[STATUS: STARTED] writing\n", "toolCalls": [
                {"name": "write_file", "arguments": {"path": "out.txt", "content": "hello"}},
                {"name": "report_status", "arguments": {"status": "PROGRESS", "progress": 50, "text": "half"}}
            ]},
            {"text": "All done.\n[STATUS: COMPLETE] wrote out.txt\n"}
        ]}}}"#,
    )
    .expect("script parses")
}

async fn run_platform(platform: &str, env: &[(&str, String)]) -> (tempfile::TempDir, PathBuf) {
    let (dir, run_dir, code, out) =
        run_with(script(), platform, serde_json::json!({}), &[], env).await;
    assert_eq!(code, Some(0), "run failed: {out}");
    (dir, run_dir)
}

/// Runs a one-agent plan against a scripted server; returns the folder, the
/// run folder, the exit code and the combined output.
async fn run_with(
    script: Script,
    platform: &str,
    agent_fields: serde_json::Value,
    args: &[&str],
    env: &[(&str, String)],
) -> (tempfile::TempDir, PathBuf, Option<i32>, String) {
    let (dir, run_dir, code, text, _) =
        run_recorded(script, platform, agent_fields, args, env).await;
    (dir, run_dir, code, text)
}

/// [`run_with`], also returning the requests the server received. `{base}`
/// in agent fields and environment values is the server's URL.
async fn run_recorded(
    script: Script,
    platform: &str,
    agent_fields: serde_json::Value,
    args: &[&str],
    env: &[(&str, String)],
) -> (
    tempfile::TempDir,
    PathBuf,
    Option<i32>,
    String,
    Vec<llm_orchestrate::mock_provider::RecordedRequest>,
) {
    let server = MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let agent_fields: serde_json::Value = serde_json::from_str(
        &agent_fields
            .to_string()
            .replace("{base}", &server.base_url()),
    )
    .unwrap();
    let plan = plan(dir.path(), platform, agent_fields);
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(dir.path())
        .env("CI", "1")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("GOOGLE_API_KEY")
        // The platforms must use their APIs here, even where the agent CLIs are installed.
        .env("LLMO_CLAUDE_BIN", "/nonexistent/claude")
        .env("LLMO_CODEX_BIN", "/nonexistent/codex")
        .env("LLMO_GEMINI_BIN", "/nonexistent/gemini")
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .args(["--run-dir", "runs", "--retry-base", "50ms"])
        .args(args);
    for (name, value) in env {
        let value = value.replace("{base}", &server.base_url());
        cmd.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = run_dir_of(dir.path());
    (dir, run_dir, output.status.code(), text, server.requests())
}

fn report_agent(run_dir: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    report["agents"][0].clone()
}

fn claude_env() -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", "{base}".into()),
        ("ANTHROPIC_API_KEY", KEY.into()),
    ]
}

fn assert_ran_and_kept_the_key_secret(dir: &Path, run_dir: &Path) {
    assert_eq!(
        std::fs::read_to_string(dir.join("svc/out.txt")).unwrap(),
        "hello",
        "the agent's write_file landed in its workspace"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    let agent = &report["agents"][0];
    assert_eq!(agent["outcome"], "completed", "{report}");
    assert!(
        agent["usage"]["outputTokens"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // No file of the run directory holds the key.
    for entry in walk(run_dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "{} contains the API key",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_agent_writes_a_file_through_the_anthropic_api() {
    let (dir, run_dir) = run_platform(
        "claude",
        &[
            ("ANTHROPIC_BASE_URL", "{base}".into()),
            ("ANTHROPIC_API_KEY", KEY.into()),
        ],
    )
    .await;
    assert_ran_and_kept_the_key_secret(dir.path(), &run_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpt_agent_writes_a_file_through_the_responses_api() {
    let (dir, run_dir) = run_platform(
        "gpt",
        &[
            ("OPENAI_BASE_URL", "{base}/v1".into()),
            ("OPENAI_API_KEY", KEY.into()),
        ],
    )
    .await;
    assert_ran_and_kept_the_key_secret(dir.path(), &run_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_agent_writes_a_file_through_the_gemini_api() {
    let (dir, run_dir) = run_platform(
        "gemini",
        &[
            ("GOOGLE_GEMINI_BASE_URL", "{base}".into()),
            ("GEMINI_API_KEY", KEY.into()),
        ],
    )
    .await;
    assert_ran_and_kept_the_key_secret(dir.path(), &run_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_source_agent_uses_the_text_tool_protocol_over_chat_completions() {
    let script = Script::from_json(
        r#"{"agents": {"WRITER": {"turns": [
            {"text": "I will write it.\n<tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"out.txt\", \"content\": \"hello\"}}\n</tool_call>\n"},
            {"text": "[STATUS: COMPLETE] wrote out.txt\n"}
        ]}}}"#,
    )
    .unwrap();
    let (dir, run_dir, code, out) = run_with(
        script,
        "open-source",
        serde_json::json!({}),
        &[],
        &[
            ("OLLAMA_HOST", "{base}".into()),
            ("OPENAI_API_KEY", KEY.into()),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert_ran_and_kept_the_key_secret(dir.path(), &run_dir);
    let log = std::fs::read_to_string(run_dir.join("agents/WRITER/output.log")).unwrap();
    assert!(log.contains("--> write_file"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_base_url_from_the_plan_is_used_and_gets_no_openai_key() {
    let script = Script::from_json(
        r#"{"agents": {"WRITER": {"turns": [
            {"text": "<tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"out.txt\", \"content\": \"hello\"}}\n</tool_call>\n"},
            {"text": "[STATUS: COMPLETE] wrote out.txt\n"}
        ]}}}"#,
    )
    .unwrap();
    let (dir, run_dir, code, out, requests) = run_recorded(
        script,
        "open-source",
        serde_json::json!({"baseUrl": "{base}/v1"}),
        &[],
        &[
            // Where the agent would go without its baseUrl: nothing listens there.
            ("OLLAMA_HOST", "127.0.0.1:9".into()),
            ("OPENAI_API_KEY", KEY.into()),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert_ran_and_kept_the_key_secret(dir.path(), &run_dir);
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(
            !request
                .headers
                .iter()
                .any(|(name, _)| name == "authorization"),
            "OPENAI_API_KEY went to a URL from the plan: {:?}",
            request.headers
        );
    }
}

fn expensive_script() -> Script {
    expensive_script_with_second_turn_after(0)
}

/// A first turn that costs $18 at list prices, then a second turn that
/// completes `latency_ms` after it is asked for.
fn expensive_script_with_second_turn_after(latency_ms: u64) -> Script {
    let script = serde_json::json!({"agents": {"WRITER": {"turns": [
        {"text": "[STATUS: STARTED]\n", "usage": {"inputTokens": 1000000, "outputTokens": 1000000},
         "toolCalls": [{"name": "list_dir", "arguments": {}}]},
        {"text": "[STATUS: COMPLETE]\n", "latencyMs": latency_ms}
    ]}}});
    Script::from_json(&script.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_its_budget_is_stopped_and_fails_with_budget() {
    let (_dir, run_dir, code, out) = run_with(
        expensive_script(),
        "claude",
        serde_json::json!({"budgetUsd": 1.0, "model": "claude-sonnet-4-5"}),
        &[],
        &claude_env(),
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    let agent = report_agent(&run_dir);
    assert_eq!(agent["outcome"], "failed", "{agent}");
    let failure = agent["lastFailure"].as_str().unwrap_or_default();
    assert!(failure.starts_with("budget:"), "{agent}");
    // 1M input at $3 + 1M output at $15 per million.
    assert_eq!(agent["costUsd"], 18.0, "{agent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_max_budget_usd_stops_everything() {
    // The engine checks the run's budget as the first turn's usage arrives;
    // a slow second turn keeps the agent running until it is stopped (with
    // an instant one, a loaded machine could let it complete first).
    let (_dir, run_dir, code, out) = run_with(
        expensive_script_with_second_turn_after(30_000),
        "claude",
        serde_json::json!({"model": "claude-sonnet-4-5"}),
        &["--max-budget-usd", "5"],
        &claude_env(),
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("run budget exceeded"), "{out}");
    let agent = report_agent(&run_dir);
    assert_ne!(agent["outcome"], "completed", "{agent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_turn_is_retried_and_the_agent_completes() {
    let script = Script::from_json(
        r#"{"agents": {"WRITER": {"turns": [
            {"text": "[STATUS: COMPLETE]\n", "fault": {"kind": "rate-limit", "retryAfterS": 1, "times": 1}}
        ]}}}"#,
    )
    .unwrap();
    let (_dir, run_dir, code, out) =
        run_with(script, "claude", serde_json::json!({}), &[], &claude_env()).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(report_agent(&run_dir)["outcome"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_provider_refuses_fails_the_agent_with_a_typed_reason() {
    // No script entry matches the agent and there is no "*": the server answers 400.
    let script =
        Script::from_json(r#"{"agents": {"SOMEONE_ELSE": {"turns": [{"text": "hi"}]}}}"#).unwrap();
    let (_dir, run_dir, code, out) =
        run_with(script, "claude", serde_json::json!({}), &[], &claude_env()).await;
    assert_eq!(code, Some(1), "{out}");
    let agent = report_agent(&run_dir);
    let failure = agent["lastFailure"].as_str().unwrap_or_default();
    assert!(failure.starts_with("invalid_request:"), "{agent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_batch_mode_sends_turns_as_keyed_batches_and_routes_them_back() {
    let turns = |file: &str| {
        serde_json::json!({"turns": [
            {"text": "[STATUS: STARTED]\n", "toolCalls": [
                {"name": "write_file", "arguments": {"path": file, "content": file}}]},
            {"text": "[STATUS: COMPLETE] done\n"}
        ]})
    };
    let script = Script::from_json(
        &serde_json::json!({"agents": {
            "AGENT_A": turns("a.txt"), "AGENT_B": turns("b.txt"), "AGENT_C": turns("c.txt")
        }})
        .to_string(),
    )
    .unwrap();
    let server = MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agents: Vec<serde_json::Value> = ["AGENT_A", "AGENT_B", "AGENT_C"]
        .iter()
        .map(|id| serde_json::json!({"agentId": id, "workDescription": "write a file", "scope": "svc"}))
        .collect();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        serde_json::json!({"orchestrationId": "batch", "platform": "gemini",
            "waves": [{"waveId": "w", "agents": agents}]})
        .to_string(),
    )
    .unwrap();
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(dir.path())
        .env("CI", "1")
        .env("GOOGLE_GEMINI_BASE_URL", server.base_url())
        .env("GEMINI_API_KEY", KEY)
        .args([
            "--no-worktrees",
            "--plan",
            "plan.json",
            "--platform",
            "gemini",
            "--batch-size",
            "3",
        ])
        .args(["--correlation-mode", "enabled", "--run-dir", "runs"]);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    for file in ["a.txt", "b.txt", "c.txt"] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("svc").join(file)).unwrap(),
            file
        );
    }
    let batches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(":batchGenerateContent"))
        .collect();
    assert!(!batches.is_empty(), "turns went through the Batch API");
    assert!(
        batches.len() <= 4,
        "three agents' two turns go in a few batches, not one request each: {}",
        batches.len()
    );
    let keys: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            b.body
                .pointer("/batch/inputConfig/requests/requests")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| {
            r.pointer("/metadata/key")
                .and_then(|k| k.as_str())
                .map(String::from)
        })
        .collect();
    for key in ["AGENT_A/0", "AGENT_B/0", "AGENT_C/0", "AGENT_A/1"] {
        assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
    }
    assert_ran_and_kept_the_key_secret_dir(&run_dir_of(dir.path()));
}

/// No file of the run directory holds the key.
fn assert_ran_and_kept_the_key_secret_dir(run_dir: &Path) {
    for entry in walk(run_dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "{} contains the API key",
            entry.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prices_file_overrides_the_built_in_table() {
    let prices = tempfile::tempdir().unwrap();
    let file = prices.path().join("prices.json");
    std::fs::write(
        &file,
        r#"{"claude-sonnet-4-5": {"input": 1.0, "output": 1.0, "cachedInput": 0.1}}"#,
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let (_dir, run_dir, code, out) = run_with(
        expensive_script(),
        "claude",
        serde_json::json!({"model": "claude-sonnet-4-5"}),
        &["--prices", &file],
        &claude_env(),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    // Turn 1: 1M input + 1M output at $1 per million each; turn 2 is nearly free.
    let cost = report_agent(&run_dir)["costUsd"].as_f64().unwrap();
    assert!((2.0..2.01).contains(&cost), "{cost}");
}
