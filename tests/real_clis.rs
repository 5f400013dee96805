//! Fidelity of the scripted provider server, checked with the real agent CLIs:
//! Claude Code (Anthropic Messages), Codex CLI (OpenAI Responses), Gemini CLI
//! (Gemini API) and opencode (OpenAI Chat Completions) each complete a
//! scripted task against it that makes them write a file with their own
//! tools; aider (Chat Completions, no tools) applies the file edit written in
//! the scripted reply's text.
//!
//! `.ci/run` installs the npm CLIs into `.ci/clis` and aider into `.ci/venv`
//! (pinned versions); the tests look there, then on PATH. Under CI (`CI` set) a missing CLI is a
//! failure; elsewhere the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use llm_orchestrate::mock_provider::{MockServer, Script};

fn find_cli(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [".ci/clis/node_modules/.bin", ".ci/venv/bin"] {
        let local = root.join(dir).join(name);
        if local.is_file() {
            return Some(local);
        }
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn cli_or_skip(name: &str) -> Option<PathBuf> {
    let found = find_cli(name);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

fn script(agent: &str, tool: &str, arguments: serde_json::Value) -> Script {
    let json = serde_json::json!({"agents": {
        agent: {"turns": [
            {"text": "Writing the file.", "toolCalls": [{"name": tool, "arguments": arguments}]},
            {"text": "[STATUS: COMPLETE] wrote hello.txt"}
        ]},
        "*": {"turns": [{"text": "ok"}]}
    }});
    Script::from_json(&json.to_string()).unwrap()
}

/// Runs `command` with a time limit; returns (success, stdout, stderr).
fn run(mut command: Command, limit: Duration) -> (bool, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("the CLI starts");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(limit);
        // SAFETY: kill(2) on the child's pid; the worst case is a pid that already exited.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    });
    let output = child.wait_with_output().expect("the CLI ends");
    drop(watchdog);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn tail(text: &str) -> &str {
    &text[text.len().saturating_sub(2000)..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_writes_a_file_against_the_scripted_server() {
    let Some(claude) = cli_or_skip("claude") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("hello.txt");
    let server = MockServer::start(
        script(
            "CC_AGENT",
            "Write",
            serde_json::json!({"file_path": target, "content": "hello from claude code\n"}),
        ),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut command = Command::new(claude);
    command
        .current_dir(work.path())
        .env("HOME", work.path())
        .env("IS_SANDBOX", "1")
        .env("ANTHROPIC_BASE_URL", server.base_url())
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .args([
            "-p",
            "You are agent CC_AGENT. Write hello.txt.",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
        ]);
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(command, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(ok, "claude failed:\n{}\n{}", tail(&out), tail(&err));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap_or_default(),
        "hello from claude code\n",
        "{}",
        tail(&out)
    );
    assert!(out.contains("\"subtype\":\"success\""), "{}", tail(&out));
    assert!(server.requests().len() >= 2, "a tool turn and a final turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_writes_a_file_against_the_scripted_server() {
    let Some(codex) = cli_or_skip("codex") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let server = MockServer::start(
        script(
            "CX_AGENT",
            "exec_command",
            serde_json::json!({"cmd": "printf 'hello from codex\\n' > hello.txt"}),
        ),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut command = Command::new(codex);
    command
        .current_dir(work.path())
        .env("HOME", work.path())
        .env("CODEX_HOME", work.path().join(".codex"))
        .env("OPENAI_API_KEY", "test-key")
        .args([
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-m",
            "gpt-5-codex",
            "--sandbox",
            "danger-full-access",
            "-c",
            "model_provider=local",
            "-c",
            "model_providers.local.name=\"local\"",
            "-c",
        ])
        .arg(format!(
            "model_providers.local.base_url=\"{}/v1\"",
            server.base_url()
        ))
        .args([
            "-c",
            "model_providers.local.env_key=\"OPENAI_API_KEY\"",
            "-c",
            "model_providers.local.wire_api=\"responses\"",
            "You are agent CX_AGENT. Write hello.txt.",
        ]);
    std::fs::create_dir_all(work.path().join(".codex")).unwrap();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(command, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(ok, "codex failed:\n{}\n{}", tail(&out), tail(&err));
    assert_eq!(
        std::fs::read_to_string(work.path().join("hello.txt")).unwrap_or_default(),
        "hello from codex\n",
        "{}\n{}",
        tail(&out),
        tail(&err)
    );
    assert!(
        out.contains("\"type\":\"turn.completed\""),
        "{}",
        tail(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_writes_a_file_against_the_scripted_server() {
    let Some(gemini) = cli_or_skip("gemini") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    std::fs::write(
        home.join(".gemini/settings.json"),
        r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#,
    )
    .unwrap();
    let target = work.path().join("hello.txt");
    let server = MockServer::start(
        script(
            "GM_AGENT",
            "write_file",
            serde_json::json!({"file_path": target, "content": "hello from gemini\n"}),
        ),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut command = Command::new(gemini);
    command
        .current_dir(work.path())
        .env("HOME", &home)
        .env("GEMINI_API_KEY", "test-key")
        .env("GOOGLE_GEMINI_BASE_URL", server.base_url())
        .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
        .args([
            "-m",
            "gemini-2.5-pro",
            "-p",
            "You are agent GM_AGENT. Write hello.txt.",
            "-o",
            "stream-json",
            "--approval-mode",
            "yolo",
        ]);
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(command, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(ok, "gemini failed:\n{}\n{}", tail(&out), tail(&err));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap_or_default(),
        "hello from gemini\n",
        "{}\n{}",
        tail(&out),
        tail(&err)
    );
    assert!(out.contains("\"status\":\"success\""), "{}", tail(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_writes_a_file_against_the_scripted_server() {
    let Some(opencode) = cli_or_skip("opencode") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let project = work.path().join("project");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let target = project.join("hello.txt");
    let server = MockServer::start(
        script(
            "OC_AGENT",
            "write",
            serde_json::json!({"filePath": target, "content": "hello from opencode\n"}),
        ),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // An OpenAI-compatible provider (bundled in opencode: nothing to install)
    // pointing at the server; edits and commands allowed without asking.
    let config = serde_json::json!({
        "autoupdate": false,
        "share": "disabled",
        "provider": {"mock": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "mock",
            "options": {"baseURL": format!("{}/v1", server.base_url()), "apiKey": "test-key"},
            "models": {"mock-model": {"name": "mock-model"}}
        }},
        "model": "mock/mock-model",
        "permission": {"edit": "allow", "bash": "allow", "webfetch": "deny"}
    });
    let mut command = Command::new(opencode);
    command
        .current_dir(&project)
        .env("HOME", &home)
        .env("OPENCODE_CONFIG_CONTENT", config.to_string())
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_DISABLE_SHARE", "1")
        // Its background install of @opencode-ai/plugin fails at once, offline.
        .env("npm_config_offline", "true")
        .args([
            "run",
            "You are agent OC_AGENT. Write hello.txt.",
            "--format",
            "json",
            "-m",
            "mock/mock-model",
            // A given title: no extra model request to make one up.
            "--title",
            "OC_AGENT",
        ])
        // It takes its directory from PWD (inherited here), not the cwd.
        .arg("--dir")
        .arg(&project);
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(command, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(ok, "opencode failed:\n{}\n{}", tail(&out), tail(&err));
    assert_eq!(
        std::fs::read_to_string(&target).unwrap_or_default(),
        "hello from opencode\n",
        "{}\n{}",
        tail(&out),
        tail(&err)
    );
    let events: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let has = |kind: &str| events.iter().any(|e| e["type"] == kind);
    assert!(has("tool_use") && has("step_finish"), "{}", tail(&out));
    assert!(
        out.contains("[STATUS: COMPLETE] wrote hello.txt"),
        "{}",
        tail(&out)
    );
    assert!(server.requests().len() >= 2, "a tool turn and a final turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_applies_a_whole_file_edit_against_the_scripted_server() {
    let Some(aider) = cli_or_skip("aider") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    let project = work.path().join("project");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    // aider edits files from the reply's text: `whole` format is the file
    // name on its own line, then the whole content in a fence.
    let script = Script::from_json(
        &serde_json::json!({"agents": {
            "AD_AGENT": {"turns": [{"text":
                "Creating the file.\n\nhello.txt\n```\nhello from aider\n```\n\n[STATUS: COMPLETE] wrote hello.txt\n",
                "usage": {"inputTokens": 1234, "outputTokens": 56}}]},
        }})
        .to_string(),
    )
    .unwrap();
    let server = MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Known model metadata: aider does not fetch litellm's price list.
    let metadata = work.path().join("model-metadata.json");
    std::fs::write(
        &metadata,
        serde_json::json!({"openai/mock-model": {
            "max_input_tokens": 128000, "max_output_tokens": 8192, "max_tokens": 8192,
            "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
            "litellm_provider": "openai", "mode": "chat"}})
        .to_string(),
    )
    .unwrap();
    let analytics = work.path().join("aider-analytics.jsonl");
    let mut command = Command::new(aider);
    command
        .current_dir(&project)
        .env("HOME", &home)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .args([
            "--message",
            "You are agent AD_AGENT. Write hello.txt.",
            "--yes-always",
            "--no-stream",
            "--no-pretty",
            "--no-git",
            "--edit-format",
            "whole",
            "--map-tokens",
            "0",
            "--model",
            "openai/mock-model",
            "--openai-api-key",
            "test-key",
            "--no-analytics",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-show-model-warnings",
        ])
        .arg("--openai-api-base")
        .arg(format!("{}/v1", server.base_url()))
        .arg("--model-metadata-file")
        .arg(&metadata)
        .arg("--analytics-log")
        .arg(&analytics);
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || run(command, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(ok, "aider failed:\n{}\n{}", tail(&out), tail(&err));
    assert_eq!(
        std::fs::read_to_string(project.join("hello.txt")).unwrap_or_default(),
        "hello from aider\n",
        "{}\n{}",
        tail(&out),
        tail(&err)
    );
    assert!(out.contains("Tokens: "), "{}", tail(&out));
    let log = std::fs::read_to_string(&analytics).unwrap_or_default();
    let sent = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "message_send")
        .unwrap_or_else(|| panic!("no message_send event in {log}"));
    // The scripted turn answered (aider's few-shot example turns before the
    // task are not counted as the agent's), with its usage.
    assert_eq!(sent["properties"]["prompt_tokens"], 1234, "{log}");
    assert_eq!(sent["properties"]["completion_tokens"], 56, "{log}");
    assert!(sent["properties"]["cost"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(!server.requests().is_empty());
}
