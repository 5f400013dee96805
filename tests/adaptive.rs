//! `--mode adaptive` end to end: shell agents, real gates, and the scripted
//! provider server playing the analyzer LLM (`PLAN_ANALYZER`) or no LLM at
//! all (the built-in rules).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use llm_orchestrate::mock_provider::{MockServer, Script};

fn bin() -> Command {
    Command::cargo_bin("llm-orchestrate").expect("binary built")
}

/// FIXER writes `ok` only when its work description says so; its gate
/// passes only on `ok`. B (wave 2) needs FIXER; SIDE (wave 1) does not.
fn write_plan(dir: &Path) {
    let fixer = serde_json::json!({
        "agentId": "FIXER",
        "workDescription": "write result.txt",
        "command": ["sh", "-c", "if printf '%s' \"$LLMO_WORK_DESCRIPTION\" | grep -q 'write ok'; then echo ok > result.txt; else echo broken > result.txt; fi; echo '[STATUS: COMPLETE]'"],
        "qualityGates": ["check"],
    });
    let side = serde_json::json!({
        "agentId": "SIDE", "workDescription": "side work",
        "command": ["sh", "-c", "echo side > side.txt; echo '[STATUS: COMPLETE]'"],
    });
    let b = serde_json::json!({
        "agentId": "B", "workDescription": "use the result", "dependencies": ["FIXER"],
        "command": ["sh", "-c", "grep -qx ok result.txt && echo '[STATUS: COMPLETE]' || echo '[FAILED] result is not ok'"],
    });
    let plan = serde_json::json!({
        "orchestrationId": "adapt", "platform": "claude",
        "waves": [{"waveId": "w1", "agents": [fixer, side]}, {"waveId": "w2", "agents": [b]}],
        "gates": {"check": {
            "command": "grep -qx ok result.txt || { echo 'test checks::result ... FAILED'; echo 'result.txt must hold ok'; exit 1; }",
            "parser": "exit-code"}},
    });
    std::fs::write(
        dir.join("plan.json"),
        serde_json::to_string_pretty(&plan).unwrap(),
    )
    .unwrap();
}

fn analyzer_answer(answer: serde_json::Value) -> Script {
    let script =
        serde_json::json!({"agents": {"PLAN_ANALYZER": {"turns": [{"text": answer.to_string()}]}}});
    Script::from_json(&script.to_string()).unwrap()
}

async fn run(dir: &Path, args: &[&str], server: Option<&MockServer>) -> (i32, String) {
    let mut cmd = bin();
    cmd.current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("ANTHROPIC_API_KEY")
        .timeout(std::time::Duration::from_secs(90));
    if let Some(server) = server {
        cmd.env("ANTHROPIC_BASE_URL", server.base_url())
            .env("ANTHROPIC_API_KEY", "analyzer-test-key");
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (out.status.code().unwrap_or(-1), output_text(&out))
}

/// A finished command's standard output, then its standard error.
fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `resume` of the run in `runs` of the current folder, with the analyzer on
/// `analyzer` (`off` or a platform).
fn resume_args(analyzer: &'static str) -> Vec<&'static str> {
    vec![
        "resume",
        "--run-dir",
        "runs",
        "--workdir",
        ".",
        "--analyzer-platform",
        analyzer,
    ]
}

const RUN: &[&str] = &[
    "run",
    "--no-worktrees",
    "--plan",
    "plan.json",
    "--run-dir",
    "runs",
    "--mode",
    "adaptive",
    "--gate-advisor",
    "off",
    "--retry-base",
    "10ms",
];

/// Starts the scripted analyzer, writes the plan in a fresh folder and runs
/// it adaptively with the analyzer on Claude's wire format (plus `extra`);
/// returns the folder, the exit code, the output and what the analyzer was asked.
async fn run_with_analyzer(
    script: Script,
    extra: &[&str],
) -> (tempfile::TempDir, i32, String, String) {
    let server = MockServer::start(script, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path());
    let mut args = RUN.to_vec();
    args.extend(["--analyzer-platform", "claude"]);
    args.extend_from_slice(extra);
    let (code, text) = run(dir.path(), &args, Some(&server)).await;
    let asked = format!("{:?}", server.requests());
    assert!(asked.contains("PLAN_ANALYZER"), "{text}");
    (dir, code, text, asked)
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

fn outcome(report: &serde_json::Value, id: &str) -> String {
    report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["outcome"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn retry_with_ok() -> serde_json::Value {
    serde_json::json!({
        "recommendations": ["FIXER wrote broken output; tell it to write ok"],
        "patch": {"reason": "the gate wants ok in result.txt", "operations": [
            {"op": "retry", "agent": "FIXER", "workDescription": "write ok into result.txt"}
        ]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gate_leads_to_an_adapted_plan_that_fixes_it() {
    let (dir, code, text, asked) = run_with_analyzer(analyzer_answer(retry_with_ok()), &[]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PLAN ADAPTED (1, by analyzer"), "{text}");
    assert!(
        text.contains(
            "~ FIXER: workDescription \"write result.txt\" -> \"write ok into result.txt\""
        ),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("result.txt")).unwrap(),
        "ok\n"
    );
    let report = report(dir.path());
    assert_eq!(outcome(&report, "FIXER"), "completed");
    assert_eq!(outcome(&report, "B"), "completed");
    assert_eq!(report["adaptations"][0]["status"], "applied", "{report:#}");
    // The analyzer saw the gate failure.
    assert!(asked.contains("result.txt must hold ok"), "{asked}");
    // The journal keeps the adapted plan: its description is the analyzer's.
    let journal = std::fs::read(run_dir(dir.path()).join("journal.sqlite")).unwrap();
    assert!(String::from_utf8_lossy(&journal).contains("PlanAdapted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_patch_is_refused_and_the_run_goes_on() {
    // A fix-up agent that waits for B, which waits for FIXER, which would wait for it: a cycle.
    let answer = serde_json::json!({
        "recommendations": ["add a fix-up agent"],
        "patch": {"reason": "fix first", "operations": [
            {"op": "add", "wave": "w3", "agent": {"agentId": "FIXUP", "workDescription": "fix", "dependencies": ["B"]}},
            {"op": "retry", "agent": "FIXER", "addDependencies": ["FIXUP"]}
        ]}
    });
    let (dir, code, text, _) = run_with_analyzer(analyzer_answer(answer), &[]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("dependency-cycle"), "{text}");
    assert!(!text.contains("PLAN ADAPTED"), "{text}");
    let report = report(dir.path());
    assert_eq!(outcome(&report, "FIXER"), "failed");
    assert_eq!(outcome(&report, "SIDE"), "completed");
    assert_eq!(outcome(&report, "B"), "blocked");
    assert_eq!(report["adaptations"][0]["status"], "refused", "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_analyzer_answer_is_refused_with_a_warning() {
    let script = Script::from_json(
        r#"{"agents": {"PLAN_ANALYZER": {"turns": [{"text": "I think you should try harder."}]}}}"#,
    )
    .unwrap();
    let (dir, code, text, _) = run_with_analyzer(script, &[]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("WARNING: adaptation by analyzer"), "{text}");
    assert!(text.contains("not a valid proposal"), "{text}");
    assert_eq!(outcome(&report(dir.path()), "SIDE"), "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_pauses_under_low_risk_tolerance() {
    let (dir, code, text, _) = run_with_analyzer(
        analyzer_answer(retry_with_ok()),
        &["--risk-tolerance", "low"],
    )
    .await;
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("ADAPTATION 1 proposed by analyzer"), "{text}");
    assert!(text.contains("--approve"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("result.txt")).unwrap(),
        "broken\n"
    );
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(dir.path()).join("status.json")).unwrap(),
    )
    .unwrap();
    assert!(
        status["recommendations"].to_string().contains("--approve"),
        "{status:#}"
    );
    // Without a decision it stays paused.
    let resume = resume_args("off");
    let (code, text) = run(dir.path(), &resume, None).await;
    assert_eq!(code, 3, "{text}");
    let mut approve = resume.to_vec();
    approve.push("--approve");
    let (code, text) = run(dir.path(), &approve, None).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PLAN ADAPTED (1"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("result.txt")).unwrap(),
        "ok\n"
    );
    assert_eq!(outcome(&report(dir.path()), "B"), "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_adaptation_leaves_the_plan_as_it_was() {
    let (dir, code, _, _) = run_with_analyzer(
        analyzer_answer(retry_with_ok()),
        &["--risk-tolerance", "low"],
    )
    .await;
    assert_eq!(code, 3);
    let mut reject = resume_args("off");
    reject.push("--reject");
    let (code, text) = run(dir.path(), &reject, None).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ADAPTATION 1 rejected by a person"), "{text}");
    let report = report(dir.path());
    assert_eq!(outcome(&report, "FIXER"), "failed");
    assert_eq!(report["adaptations"][0]["status"], "declined", "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_llm_the_built_in_rules_retry_with_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    // The agent fails naming what is missing, and succeeds once its
    // description carries that failure.
    let plan = serde_json::json!({
        "orchestrationId": "rules",
        "waves": [{"waveId": "w1", "agents": [{
            "agentId": "CFG", "workDescription": "build it",
            "command": ["sh", "-c", "if printf '%s' \"$LLMO_WORK_DESCRIPTION\" | grep -q 'config.txt is missing'; then touch config.txt; echo '[STATUS: COMPLETE]'; else echo '[FAILED] config.txt is missing'; fi"],
        }]}],
    });
    std::fs::write(dir.path().join("plan.json"), plan.to_string()).unwrap();
    let (code, text) = run(dir.path(), RUN, None).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("ANALYSIS (rules) after agent CFG failed"),
        "{text}"
    );
    assert!(text.contains("PLAN ADAPTED (1, by rules)"), "{text}");
    assert!(dir.path().join("config.txt").exists());
}

/// Ctrl-C while the analyzer thinks ends the wait at once (before, the run
/// sat out the analyzer's two-minute timeout): the run stops as interrupted
/// (exit 130) and starts nothing more; the cut-short analysis leaves no
/// record, so `resume` asks again, and then follows the analyzer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_ends_the_wait_for_the_analyzer() {
    let slow = serde_json::json!({"agents": {"PLAN_ANALYZER": {"turns": [
        {"text": retry_with_ok().to_string(), "latencyMs": 600_000}]}}});
    let server = MockServer::start(
        Script::from_json(&slow.to_string()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path());
    let mut args = RUN.to_vec();
    args.extend(["--analyzer-platform", "claude"]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_llm-orchestrate"))
        .current_dir(dir.path())
        .args(&args)
        .env_remove("CI")
        .env("ANTHROPIC_BASE_URL", server.base_url())
        .env("ANTHROPIC_API_KEY", "analyzer-test-key")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !format!("{:?}", server.requests()).contains("PLAN_ANALYZER") {
        assert!(
            std::time::Instant::now() < deadline,
            "the analyzer was never asked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let interrupted = std::time::Instant::now();
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = output_text(&out);
    assert!(
        interrupted.elapsed() < std::time::Duration::from_secs(30),
        "took {:?} after the interrupt: {text}",
        interrupted.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{text}");
    let stopped = report(dir.path());
    assert_eq!(stopped["totals"]["outcome"], "interrupted", "{stopped:#}");
    let b = stopped["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "B")
        .unwrap();
    assert_eq!(b["attempts"], 0, "{stopped:#}");
    assert!(stopped["adaptations"].is_null(), "{stopped:#}");
    assert!(stopped["analyses"].is_null(), "{stopped:#}");

    // `resume` asks the analyzer again, now a quick one, and follows it.
    let quick = MockServer::start(
        analyzer_answer(retry_with_ok()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut resume = resume_args("claude");
    resume.extend(["--gate-advisor", "off"]);
    let (code, text) = run(dir.path(), &resume, Some(&quick)).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PLAN ADAPTED (1, by analyzer"), "{text}");
    let resumed = report(dir.path());
    assert_eq!(outcome(&resumed, "B"), "completed", "{resumed:#}");
}
