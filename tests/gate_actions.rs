//! Quality gates in real runs: an agent's own gates and its retry with the
//! failure as context, stage failure actions (pause-wave and resume,
//! rollback-and-retry, manual-review approve/reject, continue),
//! `--quality-gates` and `--risk-tolerance`, the gate lines and JUnit output.
//! Agents are shell commands; gates are `sh -c` commands with exit codes.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;

fn bin() -> Command {
    Command::cargo_bin("llm-orchestrate").expect("binary built")
}

fn write_plan(dir: &Path, plan: serde_json::Value) -> PathBuf {
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    path
}

fn agent(id: &str, deps: &[&str], script: &str) -> serde_json::Value {
    serde_json::json!({
        "agentId": id,
        "workDescription": format!("work of {id}"),
        "dependencies": deps,
        "command": ["sh", "-c", script],
    })
}

/// A gate that passes when `file` holds `ok`, and otherwise prints a
/// cargo-like failing test line and exits 1.
fn file_gate(file: &str) -> serde_json::Value {
    serde_json::json!({
        "command": format!("grep -qx ok {file} || {{ echo 'test checks::{file} ... FAILED'; echo '{file} needs fixing'; exit 1; }}"),
        "parser": "exit-code",
    })
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = bin()
        .current_dir(dir)
        .args(args)
        .env_remove("CI")
        .timeout(std::time::Duration::from_secs(60))
        .output()
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

fn run_plan(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "run",
        "--no-worktrees",
        "--plan",
        "plan.json",
        "--run-dir",
        "runs",
        "--retry-base",
        "10ms",
    ];
    args.extend_from_slice(extra);
    run(dir, &args)
}

fn resume(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["resume", "--run-dir", "runs", "--workdir", "."];
    args.extend_from_slice(extra);
    run(dir, &args)
}

fn run_dir(dir: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries.pop().unwrap()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir(dir).join("report.json")).unwrap())
        .unwrap()
}

fn agent_report(dir: &Path, id: &str) -> serde_json::Value {
    report(dir)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap()
}

#[test]
fn a_failing_agent_gate_retries_the_agent_with_the_failure_as_context() {
    let dir = tempfile::tempdir().unwrap();
    // The agent writes `ok` only when its retry context names the failure.
    let mut a = agent(
        "FIXER",
        &[],
        "if printf '%s' \"$LLMO_RETRY_CONTEXT\" | grep -q 'result.txt needs fixing'; then echo ok > result.txt; else echo broken > result.txt; fi; echo '[STATUS: COMPLETE]'",
    );
    a["qualityGates"] = serde_json::json!(["check"]);
    a["maxRetries"] = 1.into();
    write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "g", "waves": [{"waveId": "w", "agents": [a]}],
            "gates": {"check": file_gate("result.txt")}}),
    );
    let (code, out) = run_plan(dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[GATE: check] Service: FIXER - FAILED (exit code 1)"),
        "{out}"
    );
    assert!(
        out.contains("[GATE: check] Service: FIXER - PASSED"),
        "{out}"
    );
    assert_eq!(agent_report(dir.path(), "FIXER")["attempts"], 2);
    let junit = std::fs::read_to_string(run_dir(dir.path()).join("gates.junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"check:FIXER\""), "{junit}");
    let gates = report(dir.path())["gates"].as_array().unwrap().clone();
    assert_eq!(gates.len(), 2, "{gates:?}");
    assert_eq!(gates[0]["result"]["status"], "failed");
    assert_eq!(gates[1]["result"]["status"], "passed");
    let markdown = std::fs::read_to_string(run_dir(dir.path()).join("report.md")).unwrap();
    assert!(markdown.contains("## Quality gates"), "{markdown}");
    assert!(
        markdown.contains("[GATE: check] Service: FIXER - PASSED"),
        "{markdown}"
    );
}

fn staged_plan(dir: &Path, action: &str, wave2: bool) {
    let mut waves = vec![serde_json::json!({"waveId": "build", "agents": [
        agent("MAKER", &[], "echo broken > product.txt; echo '[STATUS: COMPLETE]'")
    ]})];
    if wave2 {
        waves.push(serde_json::json!({"waveId": "after", "agents": [
            agent("NEXT", &["MAKER"], "echo next > next.txt; echo '[STATUS: COMPLETE]'")
        ]}));
    }
    write_plan(
        dir,
        serde_json::json!({"orchestrationId": "g", "waves": waves,
            "gates": {"check": file_gate("product.txt")},
            "qualityGates": {"build": {"gates": ["check"], "failureAction": action}}}),
    );
}

#[test]
fn pause_wave_exits_3_and_resume_reruns_the_gate_after_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "pause-wave", true);
    let (code, out) = run_plan(dir.path(), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("GATES build FAILED (MAKER)"), "{out}");
    assert!(
        !dir.path().join("next.txt").exists(),
        "wave 2 must not start"
    );
    // Resuming without a fix pauses again.
    let (code, out) = resume(dir.path(), &[]);
    assert_eq!(code, 3, "{out}");
    std::fs::write(dir.path().join("product.txt"), "ok\n").unwrap();
    let (code, out) = resume(dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("GATES build passed"), "{out}");
    assert!(dir.path().join("next.txt").is_file());
}

#[test]
fn manual_review_pauses_writes_review_md_and_approve_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "manual-review", true);
    let (code, out) = run_plan(dir.path(), &[]);
    assert_eq!(code, 3, "{out}");
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(dir.path()).join("status.json")).unwrap(),
    )
    .unwrap();
    assert!(
        status["risks"]
            .to_string()
            .contains("quality gate stage build failed (manual-review)"),
        "{status}"
    );
    assert!(
        status["recommendations"].to_string().contains("--approve"),
        "{status}"
    );
    let review = std::fs::read_to_string(run_dir(dir.path()).join("review.md")).unwrap();
    assert!(review.contains("gate stage `build`"), "{review}");
    assert!(review.contains("product.txt needs fixing"), "{review}");
    assert!(review.contains("--approve"), "{review}");
    // No decision: still paused.
    let (code, out) = resume(dir.path(), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("waits for a manual review"), "{out}");
    let (code, out) = resume(dir.path(), &["--approve"]);
    assert_eq!(code, 0, "{out}");
    assert!(dir.path().join("next.txt").is_file());
}

#[test]
fn manual_review_reject_fails_the_stage_and_blocks_its_dependants() {
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "manual-review", true);
    let (code, _) = run_plan(dir.path(), &[]);
    assert_eq!(code, 3);
    let (code, out) = resume(dir.path(), &["--reject"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(agent_report(dir.path(), "MAKER")["outcome"], "failed");
    assert_eq!(agent_report(dir.path(), "NEXT")["outcome"], "blocked");
    assert!(!dir.path().join("next.txt").exists());
}

#[test]
fn continue_records_the_failure_and_the_run_fails_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "continue", true);
    let (code, out) = run_plan(dir.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(dir.path().join("next.txt").is_file(), "the run went on");
}

#[test]
fn risk_tolerance_changes_what_a_failure_does() {
    // high: pause-wave acts as continue.
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "pause-wave", true);
    let (code, out) = run_plan(dir.path(), &["--risk-tolerance", "high"]);
    assert_eq!(code, 1, "{out}");
    assert!(dir.path().join("next.txt").is_file(), "{out}");
    // low: continue acts as pause-wave.
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "continue", true);
    let (code, out) = run_plan(dir.path(), &["--risk-tolerance", "low"]);
    assert_eq!(code, 3, "{out}");
    assert!(!dir.path().join("next.txt").exists(), "{out}");
}

#[test]
fn quality_gates_off_skips_and_strict_fails_a_missing_tool() {
    let dir = tempfile::tempdir().unwrap();
    staged_plan(dir.path(), "pause-wave", false);
    let (code, out) = run_plan(dir.path(), &["--quality-gates", "off"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SKIPPED (quality gates are off)"), "{out}");

    let missing = |dir: &Path| {
        write_plan(
            dir,
            serde_json::json!({"orchestrationId": "g",
                "waves": [{"waveId": "build", "agents": [agent("MAKER", &[], "echo '[STATUS: COMPLETE]'")]}],
                "gates": {"check": {"command": ["no-such-test-runner-xyz"]}},
                "qualityGates": {"build": {"gates": ["check"], "failureAction": "pause-wave"}}}),
        );
    };
    let dir = tempfile::tempdir().unwrap();
    missing(dir.path());
    let (code, out) = run_plan(dir.path(), &[]);
    assert_eq!(code, 0, "normal skips a missing tool: {out}");
    assert!(
        out.contains("tool not installed: no-such-test-runner-xyz"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    missing(dir.path());
    let (code, out) = run_plan(dir.path(), &["--quality-gates", "strict"]);
    assert_eq!(code, 3, "strict fails it: {out}");
}

fn git(dir: &Path, script: &str) -> String {
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

#[test]
fn rollback_and_retry_reruns_the_agent_in_a_fresh_worktree_with_the_gate_failure() {
    let repo = tempfile::tempdir().unwrap();
    git(
        repo.path(),
        "git init -q -b main && echo base > README.md && git add . && git commit -qm init",
    );
    let plans = tempfile::tempdir().unwrap();
    // First attempt leaves junk and a broken product; the retry sees the gate
    // failure in its context, and a clean worktree (no junk).
    let script = "if [ -f junk.txt ]; then echo '[STATUS: FAILED] not rolled back'; exit 1; fi; \
                  if printf '%s' \"$LLMO_RETRY_CONTEXT\" | grep -q 'product.txt needs fixing'; then echo ok > product.txt; \
                  else echo broken > product.txt; echo junk > junk.txt; fi; echo '[STATUS: COMPLETE]'";
    write_plan(
        plans.path(),
        serde_json::json!({"orchestrationId": "g",
            "waves": [{"waveId": "build", "agents": [agent("MAKER", &[], script)]}],
            "gates": {"check": file_gate("product.txt")},
            "qualityGates": {"build": {"gates": ["check"], "failureAction": "rollback-and-retry", "maxRetries": 1}}}),
    );
    let plan = plans.path().join("plan.json");
    let (code, out) = run(
        repo.path(),
        &[
            "run",
            "--plan",
            plan.to_str().unwrap(),
            "--workdir",
            ".",
            "--retry-base",
            "10ms",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("MAKER rolled back by gate stage build"),
        "{out}"
    );
    let runs = repo.path().join(".llm-orchestrate/runs");
    let id = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'))
        .unwrap();
    let integration = format!("llmo/{id}/integration");
    assert_eq!(
        git(repo.path(), &format!("git show {integration}:product.txt")),
        "ok"
    );
    // The rolled-back attempt's work is kept under a saved ref.
    assert_eq!(
        git(
            repo.path(),
            &format!("git show refs/llmo/{id}/saved/MAKER/2:junk.txt")
        ),
        "junk"
    );
}

#[test]
fn final_gates_run_after_the_last_wave_and_merge_all_waits_for_them() {
    let repo = tempfile::tempdir().unwrap();
    git(
        repo.path(),
        "git init -q -b main && echo base > README.md && git add . && git commit -qm init",
    );
    let plans = tempfile::tempdir().unwrap();
    write_plan(
        plans.path(),
        serde_json::json!({"orchestrationId": "g",
            "waves": [{"waveId": "build", "agents": [agent("MAKER", &[], "echo broken > product.txt; echo '[STATUS: COMPLETE]'")]}],
            "gates": {"check": file_gate("product.txt")},
            "qualityGates": {"final": {"gates": ["check"], "failureAction": "manual-review", "successAction": "merge-all"}}}),
    );
    let plan = plans.path().join("plan.json");
    let (code, out) = run(
        repo.path(),
        &["run", "--plan", plan.to_str().unwrap(), "--workdir", "."],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("[GATE: check] Service: integration - FAILED"),
        "{out}"
    );
    assert!(
        !repo.path().join("product.txt").exists(),
        "nothing landed before the review"
    );
    let (code, out) = run(repo.path(), &["resume", "--workdir", ".", "--approve"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("product.txt")).unwrap(),
        "broken\n",
        "approved work landed on main"
    );
}

#[test]
fn a_preset_gate_runs_the_real_pytest_and_its_failing_test_reaches_the_retry() {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin");
    if !venv.join("pytest").is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "pytest is installed by .ci/run"
        );
        eprintln!("skipped: pytest is not installed in .ci/venv");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A Python project; the first attempt's test fails, the retry (which sees
    // the failing test's name in its context) fixes the code.
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"calc\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    let script = "if printf '%s' \"$LLMO_RETRY_CONTEXT\" | grep -q 'test_adds'; then \
                  printf 'def add(a, b):\\n    return a + b\\n' > calc.py; \
                  else printf 'def add(a, b):\\n    return a - b\\n' > calc.py; fi; \
                  printf 'from calc import add\\n\\ndef test_adds():\\n    assert add(2, 2) == 4\\n\\ndef test_zero():\\n    assert add(0, 0) == 0\\n' > test_calc.py; \
                  echo '[STATUS: COMPLETE]'";
    let mut a = agent("CALC", &[], script);
    a["qualityGates"] = serde_json::json!(["unit-tests"]);
    a["maxRetries"] = 1.into();
    write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "py", "waves": [{"waveId": "w", "agents": [a]}]}),
    );
    let path = format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = bin()
        .current_dir(dir.path())
        .args([
            "run",
            "--no-worktrees",
            "--plan",
            "plan.json",
            "--run-dir",
            "runs",
            "--retry-base",
            "10ms",
        ])
        .env_remove("CI")
        .env("PATH", path)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("[GATE: unit-tests] Service: CALC - FAILED (1/2 tests failed)"),
        "{text}"
    );
    assert!(text.contains("test_adds"), "{text}");
    assert!(
        text.contains("[GATE: unit-tests] Service: CALC - PASSED (2/2 tests)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_llm_suggests_fixes_for_a_failed_gate() {
    use llm_orchestrate::mock_provider::{MockServer, Script};
    let script = Script::from_json(
        r#"{"agents": {"GATE_ADVISOR": {"turns": [
            {"text": "result.txt must hold exactly `ok`: write ok, not broken."}
        ]}}}"#,
    )
    .unwrap();
    let server = MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The retry writes `ok` only when the suggestion reached its context.
    let mut a = agent(
        "FIXER",
        &[],
        "if printf '%s' \"$LLMO_RETRY_CONTEXT\" | grep -q 'write ok, not broken'; then echo ok > result.txt; else echo broken > result.txt; fi; echo '[STATUS: COMPLETE]'",
    );
    a["qualityGates"] = serde_json::json!(["check"]);
    a["maxRetries"] = 1.into();
    write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "g", "platform": "claude",
            "waves": [{"waveId": "w", "agents": [a]}],
            "gates": {"check": file_gate("result.txt")}}),
    );
    let mut cmd = bin();
    cmd.current_dir(dir.path())
        .args([
            "run",
            "--no-worktrees",
            "--plan",
            "plan.json",
            "--run-dir",
            "runs",
            "--retry-base",
            "10ms",
        ])
        .env_remove("CI")
        .env("ANTHROPIC_BASE_URL", server.base_url())
        .env("ANTHROPIC_API_KEY", "advisor-test-key")
        .timeout(std::time::Duration::from_secs(60));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Suggested fixes:"), "{text}");
    assert!(text.contains("write ok, not broken"), "{text}");
    let gates = report(dir.path())["gates"].as_array().unwrap().clone();
    assert_eq!(
        gates[0]["result"]["suggestion"],
        "result.txt must hold exactly `ok`: write ok, not broken."
    );
    assert!(!server.requests().is_empty());
}
