//! End-to-end runs of agents on the real coding-agent CLIs (Claude Code,
//! Codex, Gemini CLI): the real binary drives the real CLI, which talks to
//! the scripted provider server and writes a file with its own tool.
//!
//! `.ci/run` installs the CLIs into `.ci/clis` (pinned versions); the tests
//! point `LLMO_<CLI>_BIN` there (else they look on PATH). Under CI (`CI` set)
//! a missing CLI is a failure; elsewhere the test says so and passes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use llm_orchestrate::mock_provider::{MockServer, Script};

const KEY: &str = "sk-test-SECRET-cli-0123456789";

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

/// One agent's run: the folder (plan, workspace, runs), the run folder, the
/// exit code, stdout (`--json`: one journal event per line) and stderr.
struct Ran {
    dir: tempfile::TempDir,
    run_dir: PathBuf,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Ran {
    fn agent(&self) -> serde_json::Value {
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.run_dir.join("report.json")).unwrap(),
        )
        .unwrap();
        report["agents"][0].clone()
    }

    /// The journal events of `type`.
    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|record| record["event"].clone())
            .filter(|event| event["type"] == kind)
            .collect()
    }

    fn context(&self) -> String {
        let log = std::fs::read_dir(self.run_dir.join("agents"))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("output.log")).ok())
            .collect::<Vec<_>>()
            .join("\n");
        let tail = |t: &str| t[t.len().saturating_sub(3000)..].to_string();
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- output.log\n{}",
            self.code,
            tail(&self.stdout),
            tail(&self.stderr),
            tail(&log)
        )
    }
}

struct Cli {
    /// `LLMO_CLAUDE_BIN`, …
    variable: &'static str,
    program: PathBuf,
}

/// Runs a one-agent plan (no `scope`: the agent works in the plan's folder)
/// against `script`.
async fn run(
    cli: &Cli,
    script: Script,
    agent: serde_json::Value,
    platform: &str,
    args: &[&str],
) -> Ran {
    let server = MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("server starts");
    let base = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    let mut agent_json = serde_json::json!({
        "workDescription": "write hello.txt",
        "estimatedDuration": "1m",
    });
    if let (Some(a), Some(extra)) = (agent_json.as_object_mut(), agent.as_object()) {
        a.extend(extra.clone());
    }
    let plan = serde_json::json!({
        "orchestrationId": "cli-test",
        "platform": platform,
        "waves": [{"waveId": "w1", "agents": [agent_json]}],
    });
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(dir.path())
        .env("CI", "1")
        .env("HOME", &home)
        .env_remove("GEMINI_CLI_HOME")
        .env_remove("CODEX_HOME")
        .env_remove("LLMO_MODEL")
        .env_remove("GOOGLE_API_KEY")
        .env("LLMO_CLAUDE_BIN", "/nonexistent/claude")
        .env("LLMO_CODEX_BIN", "/nonexistent/codex")
        .env("LLMO_GEMINI_BIN", "/nonexistent/gemini")
        .env(cli.variable, &cli.program)
        .env("ANTHROPIC_BASE_URL", &base)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{base}/v1"))
        .env("OPENAI_API_KEY", KEY)
        .env("GOOGLE_GEMINI_BASE_URL", &base)
        .env("GEMINI_API_KEY", KEY)
        .args(["run", "--json", "--plan"])
        .arg(&plan_path)
        .args(["--run-dir", "runs", "--kill-grace", "1s"])
        .args(args);
    let start = Instant::now();
    let output =
        tokio::task::spawn_blocking(move || cmd.timeout(Duration::from_secs(120)).output())
            .await
            .unwrap()
            .unwrap();
    let elapsed = start.elapsed();
    let runs = dir.path().join("runs");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let run_dir = entries.pop().expect("a run folder");
    drop(server);
    Ran {
        dir,
        run_dir,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed,
    }
}

fn script_json(agent: &str, turns: serde_json::Value) -> Script {
    let json = serde_json::json!({"agents": {
        agent: {"turns": turns},
        "*": {"turns": [{"text": "ok"}]}
    }});
    Script::from_json(&json.to_string()).unwrap()
}

/// A tool call that writes `hello.txt`, then `[STATUS: COMPLETE]`.
fn write_script(agent: &str, tool: &str, arguments: serde_json::Value) -> Script {
    script_json(
        agent,
        serde_json::json!([
            {"text": "[STATUS: STARTED] writing", "toolCalls": [{"name": tool, "arguments": arguments}]},
            {"text": "Done.\n[STATUS: COMPLETE] wrote hello.txt"}
        ]),
    )
}

/// The file exists, the agent completed, its session id is journaled, its
/// usage is counted, and the key is nowhere in the run folder.
fn assert_completed_with_a_session(ran: &Ran, file: &Path, expected: &str) {
    assert_eq!(ran.code, Some(0), "{}", ran.context());
    assert_eq!(
        std::fs::read_to_string(file).unwrap_or_default(),
        expected,
        "{}",
        ran.context()
    );
    let agent = ran.agent();
    assert_eq!(agent["outcome"], "completed", "{agent}");
    assert!(
        agent["usage"]["outputTokens"].as_u64().unwrap_or(0) > 0,
        "{agent}"
    );
    let sessions = ran.events("AgentSession");
    assert_eq!(sessions.len(), 1, "{}", ran.context());
    assert!(
        sessions[0]["sessionId"]
            .as_str()
            .is_some_and(|s| s.len() >= 8),
        "{sessions:?}"
    );
    assert_eq!(sessions[0]["attempt"], 1);
    assert_eq!(agent["sessionId"], sessions[0]["sessionId"], "{agent}");
    assert!(agent["toolUses"].as_u64().unwrap_or(0) >= 1, "{agent}");
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ran.run_dir.join("status.json")).unwrap())
            .unwrap();
    assert_eq!(
        status["agentStatus"][0]["sessionId"], sessions[0]["sessionId"],
        "{status}"
    );
    let tools = ran.events("AgentTools");
    assert_eq!(tools.len(), 1, "{}", ran.context());
    let statuses: Vec<String> = ran
        .events("AgentStatus")
        .iter()
        .map(|e| e["status"]["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(statuses, ["started", "complete"], "{}", ran.context());
    for entry in walk(&ran.run_dir) {
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
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn claude() -> Option<Cli> {
    Some(Cli {
        variable: "LLMO_CLAUDE_BIN",
        program: cli_or_skip("claude")?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_agent_writes_a_file_and_completes() {
    let Some(cli) = claude() else { return };
    // The agent works in its own folder (`--workdir`): Claude's Write tool
    // wants an absolute path, known before the run starts.
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("hello.txt");
    let workdir = work.path().to_string_lossy().into_owned();
    let ran = run(
        &cli,
        write_script(
            "CC_AGENT",
            "Write",
            serde_json::json!({"file_path": target, "content": "hello from claude code\n"}),
        ),
        serde_json::json!({"agentId": "CC_AGENT"}),
        "claude",
        &["--workdir", &workdir],
    )
    .await;
    assert_completed_with_a_session(&ran, &target, "hello from claude code\n");
    let log = std::fs::read_to_string(ran.run_dir.join("agents/CC_AGENT/output.log")).unwrap();
    assert!(
        log.starts_with("==> attempt 1: ") && log.contains("-p <prompt>"),
        "{log}"
    );
    assert!(log.contains("--permission-mode acceptEdits"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_agent_writes_a_file_and_completes() {
    let Some(program) = cli_or_skip("codex") else {
        return;
    };
    let cli = Cli {
        variable: "LLMO_CODEX_BIN",
        program,
    };
    let ran = run(
        &cli,
        write_script(
            "CX_AGENT",
            "exec_command",
            serde_json::json!({"cmd": "printf 'hello from codex\\n' > hello.txt"}),
        ),
        serde_json::json!({"agentId": "CX_AGENT", "driver": "codex", "model": "gpt-5-codex"}),
        "auto",
        &[],
    )
    .await;
    assert_completed_with_a_session(
        &ran,
        &ran.dir.path().join("hello.txt"),
        "hello from codex\n",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_agent_writes_a_file_and_completes() {
    let Some(program) = cli_or_skip("gemini") else {
        return;
    };
    let cli = Cli {
        variable: "LLMO_GEMINI_BIN",
        program,
    };
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("hello.txt");
    let workdir = work.path().to_string_lossy().into_owned();
    let ran = run(
        &cli,
        write_script(
            "GM_AGENT",
            "write_file",
            serde_json::json!({"file_path": target, "content": "hello from gemini\n"}),
        ),
        serde_json::json!({"agentId": "GM_AGENT", "model": "gemini-2.5-pro"}),
        "gemini",
        &["--workdir", &workdir],
    )
    .await;
    assert_completed_with_a_session(&ran, &target, "hello from gemini\n");
    // The API key is selected in a settings file of the agent's own; the key is not in it.
    let settings = ran
        .run_dir
        .join("agents/GM_AGENT/gemini-home/.gemini/settings.json");
    assert!(settings.is_file(), "{}", ran.context());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_fails_a_claude_code_agent() {
    let Some(cli) = claude() else { return };
    let ran = run(
        &cli,
        script_json(
            "CC_FAIL",
            serde_json::json!([{"text": "[STATUS: FAILED] database unreachable"}]),
        ),
        serde_json::json!({"agentId": "CC_FAIL", "driver": "claude-code"}),
        "auto",
        &[],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.context());
    let agent = ran.agent();
    assert_eq!(agent["outcome"], "failed", "{agent}");
    assert_eq!(agent["lastFailure"], "database unreachable", "{agent}");
}

/// True when a live process (not a zombie) has `mark` in its environment.
fn processes_with(mark: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|v| v == mark.as_bytes()) {
            continue;
        }
        let state = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_default();
        if state != "Z" && state != "X" {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_claude_code_is_stopped_by_the_stall_watchdog() {
    let Some(cli) = claude() else { return };
    let mark = format!("LLMO_TEST_MARK=stall-{}", std::process::id());
    let (name, value) = mark.split_once('=').unwrap();
    let ran = run(
        &cli,
        script_json(
            "CC_HANG",
            serde_json::json!([{"text": "[STATUS: COMPLETE] too late", "latencyMs": 600000}]),
        ),
        serde_json::json!({"agentId": "CC_HANG", "driver": "claude-code", "env": {name: value}}),
        "auto",
        &["--stall-timeout", "3s"],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{}", ran.context());
    assert_eq!(ran.agent()["outcome"], "stalled", "{}", ran.context());
    assert!(ran.elapsed < Duration::from_secs(20), "{:?}", ran.elapsed);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with(&mark);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
