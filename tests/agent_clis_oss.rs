//! End-to-end runs of the aider and opencode drivers: the real binary runs a
//! plan whose agent sets `driver: aider|opencode`; the real CLI edits a file
//! against the scripted server (OpenAI Chat Completions).
//!
//! The CLIs come from `.ci/venv/bin` (aider) and `.ci/clis/node_modules/.bin`
//! (opencode), installed by `.ci/run`, else from PATH. Under CI (`CI` set) a
//! missing CLI fails the test; elsewhere the test says so and passes.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use llm_orchestrate::mock_provider::{MockServer, Script};

const KEY: &str = "sk-test-SECRET-oss-0123456789";

fn find_cli(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [".ci/venv/bin", ".ci/clis/node_modules/.bin"] {
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

/// What a run left behind.
struct Ran {
    dir: tempfile::TempDir,
    run_dir: PathBuf,
    code: Option<i32>,
    output: String,
}

impl Ran {
    fn agent(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.run_dir.join("report.json"))
            .unwrap_or_else(|e| panic!("no report.json ({e}): {}", self.output));
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        report["agents"][0].clone()
    }

    fn log(&self, agent: &str) -> String {
        std::fs::read_to_string(self.run_dir.join("agents").join(agent).join("output.log"))
            .unwrap_or_default()
    }
}

/// Runs a one-agent plan (`driver`, agent `agent`, no scope: the plan's folder
/// is the workspace) against a server playing `script(workspace)`.
async fn run(cli: &Path, driver: &str, agent: &str, script: impl FnOnce(&Path) -> Script) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let server = MockServer::start(script(&work), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("server starts");
    let plan = serde_json::json!({
        "orchestrationId": "oss-cli-test",
        "platform": "open-source",
        "waves": [{"waveId": "w1", "agents": [{
            "agentId": agent,
            "workDescription": "write hello.txt",
            "estimatedDuration": "2m",
            "driver": driver,
            "model": "mock-model",
        }]}],
    });
    let plan_path = work.join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let variable = format!("LLMO_{}_BIN", driver.to_uppercase());
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(&work)
        .env("HOME", &home)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.base_url()))
        .env("OPENAI_API_KEY", KEY)
        .env_remove("OPENAI_COMPATIBLE_API_KEY")
        .env_remove("OLLAMA_HOST")
        .env_remove("LLMO_MODEL")
        .env(variable, cli)
        .args(["run", "--plan"])
        .arg(&plan_path)
        .args(["--run-dir", "../runs", "--timeout-factor", "1"]);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let runs = dir.path().join("runs");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    entries.sort();
    let output_text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let run_dir = entries
        .pop()
        .unwrap_or_else(|| panic!("no run folder: {output_text}"));
    drop(server);
    Ran {
        dir,
        run_dir,
        code: output.status.code(),
        output: output_text,
    }
}

fn assert_completed_with_usage(ran: &Ran, agent: &str) {
    let report = ran.agent();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.output, ran.log(agent));
    assert_eq!(
        report["outcome"],
        "completed",
        "{report}\n{}",
        ran.log(agent)
    );
    assert!(
        report["usage"]["inputTokens"].as_u64().unwrap_or(0) > 0
            && report["usage"]["outputTokens"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // The key is passed in the environment only: no file of the run holds it.
    let log = ran.log(agent);
    assert!(!log.contains(KEY), "the output log holds the key");
    assert!(!ran.output.contains(KEY));
}

fn aider_script(text: &str) -> Script {
    Script::from_json(
        &serde_json::json!({"agents": {"AIDER_AGENT": {"turns": [{"text": text}]}}}).to_string(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_agent_edits_a_file_and_completes() {
    let Some(aider) = cli_or_skip("aider") else {
        return;
    };
    let ran = run(&aider, "aider", "AIDER_AGENT", |_| {
        aider_script(
            "Creating it.\n\nhello.txt\n```\nhello from aider\n```\n\n[STATUS: COMPLETE] wrote hello.txt\n",
        )
    })
    .await;
    assert_completed_with_usage(&ran, "AIDER_AGENT");
    assert_eq!(
        std::fs::read_to_string(ran.dir.path().join("work/hello.txt")).unwrap_or_default(),
        "hello from aider\n",
        "{}",
        ran.log("AIDER_AGENT")
    );
    let analytics = ran.run_dir.join("agents/AIDER_AGENT/aider-analytics.jsonl");
    assert!(
        std::fs::read_to_string(&analytics)
            .unwrap_or_default()
            .contains("\"message_send\""),
        "{}",
        analytics.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aider_agent_reporting_failed_fails() {
    let Some(aider) = cli_or_skip("aider") else {
        return;
    };
    let ran = run(&aider, "aider", "AIDER_AGENT", |_| {
        aider_script("[STATUS: FAILED] x\n")
    })
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.output);
    let agent = ran.agent();
    assert_eq!(agent["outcome"], "failed", "{agent}");
    assert!(
        agent["lastFailure"]
            .as_str()
            .unwrap_or_default()
            .contains('x'),
        "{agent}"
    );
}

fn opencode_script(work: &Path, last: &str) -> Script {
    Script::from_json(
        &serde_json::json!({"agents": {"OPENCODE_AGENT": {"turns": [
            {"text": "Writing it.", "toolCalls": [{"name": "write", "arguments": {
                "filePath": work.join("hello.txt"), "content": "hello from opencode\n"}}]},
            {"text": last}
        ]}}})
        .to_string(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_agent_edits_a_file_and_completes() {
    let Some(opencode) = cli_or_skip("opencode") else {
        return;
    };
    let ran = run(&opencode, "opencode", "OPENCODE_AGENT", |work| {
        opencode_script(work, "[STATUS: COMPLETE] wrote hello.txt")
    })
    .await;
    assert_completed_with_usage(&ran, "OPENCODE_AGENT");
    assert_eq!(
        std::fs::read_to_string(ran.dir.path().join("work/hello.txt")).unwrap_or_default(),
        "hello from opencode\n",
        "{}",
        ran.log("OPENCODE_AGENT")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_agent_reporting_failed_fails() {
    let Some(opencode) = cli_or_skip("opencode") else {
        return;
    };
    let ran = run(&opencode, "opencode", "OPENCODE_AGENT", |work| {
        opencode_script(work, "[STATUS: FAILED] x")
    })
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.output);
    let agent = ran.agent();
    assert_eq!(agent["outcome"], "failed", "{agent}");
    assert!(
        agent["lastFailure"]
            .as_str()
            .unwrap_or_default()
            .contains('x'),
        "{agent}"
    );
}
