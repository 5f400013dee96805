//! Fidelity of the scripted provider server, checked with the real agent CLIs:
//! Claude Code (Anthropic Messages), Codex CLI (OpenAI Responses) and Gemini
//! CLI (Gemini API) each complete a scripted task against it that makes them
//! write a file with their own tools.
//!
//! `.ci/run` installs the CLIs from npm into `.ci/clis` (pinned versions);
//! the tests look there, then on PATH. Under CI (`CI` set) a missing CLI is a
//! failure; elsewhere the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use llm_orchestrate::mock_provider::{MockServer, Script};

fn find_cli(name: &str) -> Option<PathBuf> {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/clis/node_modules/.bin")
        .join(name);
    if local.is_file() {
        return Some(local);
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
