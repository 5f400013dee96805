//! The whole flow with a real coding-agent CLI: Claude Code (installed from
//! npm by `.ci/run`) driven by `llm-orchestrate run` against the scripted
//! provider server, each agent in its own git worktree. The scripted model
//! makes Claude Code run its own Bash tool to change files.
//!
//! Under CI (`CI` set) a missing CLI is a failure; elsewhere the tests say so
//! and pass.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

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

fn claude_or_skip() -> Option<PathBuf> {
    let found = find_cli("claude");
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "claude is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: claude is not installed");
    }
    found
}

fn sh(dir: &Path, script: &str) -> String {
    let out = StdCommand::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A scripted agent that runs one Bash command, then reports COMPLETE.
fn bash_then_complete(command: &str, summary: &str) -> serde_json::Value {
    serde_json::json!({"turns": [
        {"text": "[STATUS: STARTED]", "toolCalls": [{"name": "Bash", "arguments": {"command": command, "description": "do the work"}}]},
        {"text": format!("[STATUS: COMPLETE] {summary}")}
    ]})
}

async fn server(agents: serde_json::Value) -> MockServer {
    let mut agents = agents;
    agents["*"] = serde_json::json!({"turns": [{"text": "ok"}]});
    let script = Script::from_json(&serde_json::json!({ "agents": agents }).to_string()).unwrap();
    MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

struct Setup {
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
    plans: tempfile::TempDir,
    claude: PathBuf,
    /// More environment for the orchestrator (other CLIs' program variables).
    extra_env: Vec<(String, PathBuf)>,
}

fn setup(claude: PathBuf) -> Setup {
    let repo = tempfile::tempdir().unwrap();
    sh(
        repo.path(),
        "git init -q -b main && mkdir -p svc/lib svc/app && echo base > shared.txt && echo l > svc/lib/keep && echo a > svc/app/keep && git add . && git commit -qm init",
    );
    Setup {
        repo,
        home: tempfile::tempdir().unwrap(),
        plans: tempfile::tempdir().unwrap(),
        claude,
        extra_env: Vec::new(),
    }
}

fn claude_agent(id: &str, scope: Option<&str>, deps: &[&str]) -> serde_json::Value {
    let mut agent = serde_json::json!({
        "agentId": id,
        "workDescription": format!("the work of {id}"),
        "dependencies": deps,
        "driver": "claude-code",
        "permissions": "full-access",
        "estimatedDuration": "2m",
    });
    if let Some(scope) = scope {
        agent["scope"] = scope.into();
    }
    agent
}

impl Setup {
    fn plan(&self, waves: serde_json::Value, extra: serde_json::Value) -> PathBuf {
        let mut plan = serde_json::json!({"orchestrationId": "cc", "waves": waves});
        if let serde_json::Value::Object(extra) = extra {
            for (k, v) in extra {
                plan[k] = v;
            }
        }
        let path = self.plans.path().join("plan.json");
        std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
        path
    }

    /// Runs `llm-orchestrate` with these arguments in the repository, with
    /// Claude Code pointed at `server`; returns (exit code, output).
    async fn orchestrate(&self, server: &MockServer, args: &[&str]) -> (i32, String) {
        let mut command = assert_cmd::Command::cargo_bin("llm-orchestrate").unwrap();
        command
            .current_dir(self.repo.path())
            .args(args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env_remove("CI")
            .env("LLMO_CLAUDE_BIN", &self.claude)
            .env("HOME", self.home.path())
            .env_remove("CODEX_HOME")
            .env_remove("GEMINI_CLI_HOME")
            .env_remove("GOOGLE_API_KEY")
            .env("ANTHROPIC_BASE_URL", server.base_url())
            .env("ANTHROPIC_API_KEY", "test-key")
            .env("OPENAI_BASE_URL", format!("{}/v1", server.base_url()))
            .env("OPENAI_API_KEY", "test-key")
            .env("GOOGLE_GEMINI_BASE_URL", server.base_url())
            .env("GEMINI_API_KEY", "test-key")
            .timeout(std::time::Duration::from_secs(240));
        let out = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    async fn run(&self, server: &MockServer, plan: &Path) -> (i32, String) {
        let plan = plan.to_string_lossy().into_owned();
        self.orchestrate(
            server,
            &[
                "run",
                "--plan",
                &plan,
                "--workdir",
                ".",
                "--stall-timeout",
                "90s",
            ],
        )
        .await
    }

    fn run_dir(&self) -> PathBuf {
        let runs = self.repo.path().join(".llm-orchestrate/runs");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        entries.pop().expect("a run folder")
    }

    fn run_id(&self) -> String {
        self.run_dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn branch(&self, agent: &str) -> String {
        format!("llmo/{}/{agent}", self.run_id())
    }

    fn outcome_of(&self, id: &str) -> String {
        let text = std::fs::read_to_string(self.run_dir().join("report.json")).unwrap();
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        report["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["outcome"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_two_sees_wave_ones_merged_work_and_merge_all_lands_it() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let s = setup(claude);
    // LIB_USER's prompt names LIB (its dependency); the longer id wins the match.
    let server = server(serde_json::json!({
        "LIB": bash_then_complete("printf 'pub fn lib() {}\\n' > lib.rs", "lib.rs written"),
        "LIB_USER": bash_then_complete("cp ../lib/lib.rs uses_lib.rs", "copied wave 1's lib.rs"),
    }))
    .await;
    let plan = s.plan(
        serde_json::json!([
            {"waveId": "lib", "agents": [claude_agent("LIB", Some("svc/lib"), &[])]},
            {"waveId": "app", "agents": [claude_agent("LIB_USER", Some("svc/app"), &["LIB"])]}
        ]),
        serde_json::json!({"qualityGates": {"final": {"gates": [], "successAction": "merge-all"}}}),
    );
    let (code, out) = s.run(&server, &plan).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(s.repo.path().join("svc/app/uses_lib.rs")).unwrap(),
        "pub fn lib() {}\n",
        "wave 2 read wave 1's merged file; merge-all landed both in the checkout"
    );
    for agent in ["LIB", "LIB_USER"] {
        sh(
            s.repo.path(),
            &format!("git merge-base --is-ancestor {} main", s.branch(agent)),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_outside_the_scope_is_caught() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let s = setup(claude);
    let server = server(serde_json::json!({
        "LIB": bash_then_complete("printf 'x\\n' > lib.rs; printf 'meddled\\n' > ../../shared.txt", "done"),
    }))
    .await;
    let plan = s.plan(
        serde_json::json!([{"waveId": "w", "agents": [claude_agent("LIB", Some("svc/lib"), &[])]}]),
        serde_json::json!({"coordinationRules": {"conflictHandling": "fail"}}),
    );
    let (code, out) = s.run(&server, &plan).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("outside its scope") && out.contains("shared.txt"),
        "{out}"
    );
    assert_eq!(s.outcome_of("LIB"), "failed");
    assert_eq!(
        sh(
            s.repo.path(),
            &format!("git show {}:shared.txt", s.branch("LIB"))
        ),
        "meddled",
        "the agent's work is kept on its branch"
    );
}

fn conflicting_agents() -> serde_json::Value {
    serde_json::json!({
        "LEFT": bash_then_complete("printf 'left\\n' > shared.txt", "left side"),
        "RIGHT": bash_then_complete("printf 'right\\n' > shared.txt", "right side"),
        "RIGHT_RESOLVER": bash_then_complete("printf 'left and right\\n' > shared.txt", "resolved"),
    })
}

fn conflicting_plan(s: &Setup, handling: &str) -> PathBuf {
    s.plan(
        serde_json::json!([{"waveId": "w", "agents": [claude_agent("LEFT", None, &[]), claude_agent("RIGHT", None, &[])]}]),
        serde_json::json!({"coordinationRules": {"conflictHandling": handling}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_conflict_pauses_then_resume_finishes_after_a_manual_fix() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let s = setup(claude);
    let server = server(conflicting_agents()).await;
    let plan = conflicting_plan(&s, "pause-and-resolve");
    let (code, out) = s.run(&server, &plan).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("merge conflict") && out.contains("shared.txt"),
        "{out}"
    );
    let integration = s.run_dir().join("integration");
    std::fs::write(integration.join("shared.txt"), "fixed by hand\n").unwrap();
    sh(&integration, "git add shared.txt");
    let (code, out) = s.orchestrate(&server, &["resume", "--workdir", "."]).await;
    assert_eq!(code, 0, "{out}");
    let integration_branch = format!("llmo/{}/integration", s.run_id());
    for agent in ["LEFT", "RIGHT"] {
        sh(
            s.repo.path(),
            &format!(
                "git merge-base --is-ancestor {} {integration_branch}",
                s.branch(agent)
            ),
        );
    }
    assert_eq!(
        sh(
            s.repo.path(),
            &format!("git show {integration_branch}:shared.txt")
        ),
        "fixed by hand"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_conflict_is_resolved_by_a_resolver_agent() {
    let Some(claude) = claude_or_skip() else {
        return;
    };
    let s = setup(claude);
    let server = server(conflicting_agents()).await;
    let plan = conflicting_plan(&s, "resolve-with-agent");
    let (code, out) = s.run(&server, &plan).await;
    assert_eq!(code, 0, "{out}");
    let integration_branch = format!("llmo/{}/integration", s.run_id());
    assert_eq!(
        sh(
            s.repo.path(),
            &format!("git show {integration_branch}:shared.txt")
        ),
        "left and right"
    );
    for agent in ["LEFT", "RIGHT"] {
        sh(
            s.repo.path(),
            &format!(
                "git merge-base --is-ancestor {} {integration_branch}",
                s.branch(agent)
            ),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_then_gemini_cli_build_on_each_others_merged_work() {
    let (Some(claude), Some(codex), Some(gemini)) =
        (claude_or_skip(), find_cli("codex"), find_cli("gemini"))
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "codex and gemini are installed by .ci/run"
        );
        return;
    };
    let mut s = setup(claude);
    s.extra_env = vec![
        ("LLMO_CODEX_BIN".into(), codex),
        ("LLMO_GEMINI_BIN".into(), gemini),
    ];
    let server = server(serde_json::json!({
        "LIB": {"turns": [
            {"text": "[STATUS: STARTED]", "toolCalls": [{"name": "exec_command", "arguments": {"cmd": "printf 'pub fn lib() {}\\n' > lib.rs"}}]},
            {"text": "[STATUS: COMPLETE] lib.rs written"}
        ]},
        "LIB_USER": {"turns": [
            {"text": "[STATUS: STARTED]", "toolCalls": [{"name": "run_shell_command", "arguments": {"command": "cp ../lib/lib.rs uses_lib.rs", "description": "copy"}}]},
            {"text": "[STATUS: COMPLETE] copied wave 1's lib.rs"}
        ]},
    }))
    .await;
    let mut lib = claude_agent("LIB", Some("svc/lib"), &[]);
    lib["driver"] = "codex".into();
    lib["model"] = "gpt-5-codex".into();
    let mut user = claude_agent("LIB_USER", Some("svc/app"), &["LIB"]);
    user["driver"] = "gemini-cli".into();
    user["model"] = "gemini-2.5-pro".into();
    let plan = s.plan(
        serde_json::json!([
            {"waveId": "lib", "agents": [lib]},
            {"waveId": "app", "agents": [user]}
        ]),
        serde_json::json!({}),
    );
    let (code, out) = s.run(&server, &plan).await;
    assert_eq!(code, 0, "{out}");
    let integration = format!("llmo/{}/integration", s.run_id());
    assert_eq!(
        sh(
            s.repo.path(),
            &format!("git show {integration}:svc/app/uses_lib.rs")
        ),
        "pub fn lib() {}",
        "Gemini CLI in wave 2 read what Codex wrote in wave 1"
    );
    for agent in ["LIB", "LIB_USER"] {
        sh(
            s.repo.path(),
            &format!(
                "git merge-base --is-ancestor {} {integration}",
                s.branch(agent)
            ),
        );
    }
}
