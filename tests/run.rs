//! End-to-end runs of real shell agents through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("llm-orchestrate").expect("binary built")
}

fn write_plan(dir: &Path, json: serde_json::Value) -> PathBuf {
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    path
}

fn agent(id: &str, deps: &[&str], script: &str) -> serde_json::Value {
    serde_json::json!({
        "agentId": id,
        "workDescription": format!("work of {id}"),
        "scope": format!("svc/{}", id.to_lowercase()),
        "estimatedDuration": "1m",
        "dependencies": deps,
        "command": ["sh", "-c", script],
    })
}

fn run_dir_of(dir: &Path) -> PathBuf {
    let runs = dir.join("runs");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.pop().expect("a run folder")
}

fn report(dir: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(run_dir_of(dir).join("report.json")).expect("report.json written");
    serde_json::from_str(&text).unwrap()
}

fn outcome_of(report: &serde_json::Value, id: &str) -> String {
    report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["outcome"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

const MARKERS: &str = "echo \"[STATUS: STARTED] $LLMO_AGENT_ID\"; echo '[STATUS: PROGRESS-50%] half'; echo \"$LLMO_AGENT_ID\" >> \"$LEDGER\"; echo '[STATUS: COMPLETE] done'";

fn three_wave_plan(dir: &Path) -> PathBuf {
    write_plan(
        dir,
        serde_json::json!({
            "orchestrationId": "e2e",
            "executionMode": "waves",
            "waves": [
                {"waveId": "w1", "agents": [agent("A", &[], MARKERS), agent("B", &[], MARKERS)]},
                {"waveId": "w2", "agents": [agent("C", &["A"], MARKERS), agent("D", &["B"], MARKERS)]},
                {"waveId": "w3", "parallel": false, "agents": [agent("E", &["C", "D"], MARKERS), agent("F", &["E"], MARKERS)]}
            ]
        }),
    )
}

#[test]
fn a_three_wave_plan_of_shell_agents_completes_in_wave_order() {
    let dir = tempfile::tempdir().unwrap();
    let plan = three_wave_plan(dir.path());
    let ledger = dir.path().join("ledger.txt");
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LEDGER", &ledger)
        .env("CI", "1")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("WAVE w1 started"))
        .stdout(predicate::str::contains("A [STATUS: PROGRESS-50%] half"))
        .stdout(predicate::str::contains("6 agents: 6 complete"));
    let lines: Vec<String> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 6);
    let pos = |id: &str| lines.iter().position(|l| l == id).unwrap();
    assert!(pos("A") < pos("C") && pos("B") < pos("C") && pos("B") < pos("D"));
    assert!(pos("C") < pos("E") && pos("D") < pos("E") && pos("E") < pos("F"));
    let report = report(dir.path());
    for id in ["A", "B", "C", "D", "E", "F"] {
        assert_eq!(outcome_of(&report, id), "completed", "{id}: {report}");
    }
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir_of(dir.path()).join("status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["overallProgress"], 100);
    assert!(run_dir_of(dir.path()).join("agents/A/output.log").is_file());
    assert!(
        !run_dir_of(dir.path()).join("agents/A/prompt.md").exists(),
        "shell agents run a command, not a prompt"
    );
    assert!(
        dir.path().join("svc/a").is_dir(),
        "scope folders are the agents' working directories"
    );
}

#[test]
fn the_seeds_bare_form_runs_a_plan_and_streams_json_events() {
    let dir = tempfile::tempdir().unwrap();
    let plan = three_wave_plan(dir.path());
    let assert = bin()
        .arg("--plan")
        .arg(&plan)
        .args([
            "--mode",
            "continuous",
            "--platform",
            "auto",
            "--no-worktrees",
            "--json",
            "--run-dir",
        ])
        .arg(dir.path().join("runs"))
        .env("LEDGER", dir.path().join("ledger.txt"))
        .assert()
        .code(0);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&assert.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(events[0]["event"]["type"], "RunStarted");
    assert_eq!(events.last().unwrap()["event"]["type"], "RunFinished");
    assert!(
        events
            .iter()
            .any(|e| e["event"]["type"] == "AgentStatus" && e["event"]["status"]["percent"] == 50)
    );
    // continuous mode: no wave events
    assert!(!events.iter().any(|e| e["event"]["type"] == "WaveStarted"));
}

#[test]
fn a_failure_blocks_exactly_its_dependants_under_continue_others() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        serde_json::json!({
            "orchestrationId": "fail",
            "waves": [
                {"waveId": "w1", "agents": [agent("AUTH_IMPL", &[], "echo '[STATUS: FAILED] Database connection timeout'; exit 0"), agent("LOG", &[], MARKERS)]},
                {"waveId": "w2", "agents": [agent("PROFILE_IMPL", &["AUTH_IMPL"], MARKERS), agent("METRICS", &["LOG"], MARKERS)]},
                {"waveId": "w3", "agents": [agent("SETTINGS", &["PROFILE_IMPL"], MARKERS)]}
            ]
        }),
    );
    let ledger = dir.path().join("ledger.txt");
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LEDGER", &ledger)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("[ERROR: Agent AUTH_IMPL failed]"))
        .stdout(predicate::str::contains(
            "Cause: Database connection timeout",
        ))
        .stdout(predicate::str::contains(
            "Impact: Blocks PROFILE_IMPL in wave 2",
        ))
        .stdout(predicate::str::contains(
            "PROFILE_IMPL BLOCKED: dependency AUTH_IMPL failed",
        ));
    let report = report(dir.path());
    assert_eq!(outcome_of(&report, "AUTH_IMPL"), "failed");
    assert_eq!(outcome_of(&report, "LOG"), "completed");
    assert_eq!(outcome_of(&report, "METRICS"), "completed");
    assert_eq!(outcome_of(&report, "PROFILE_IMPL"), "blocked");
    assert_eq!(outcome_of(&report, "SETTINGS"), "blocked");
    let ran = std::fs::read_to_string(&ledger).unwrap();
    assert!(!ran.contains("PROFILE_IMPL") && !ran.contains("SETTINGS"));
}

#[test]
fn stop_all_cancels_running_agents_and_starts_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("slow-finished");
    let slow = format!("sleep 20; touch {}", marker.display());
    let plan = write_plan(
        dir.path(),
        serde_json::json!({
            "orchestrationId": "stop",
            "coordinationRules": {"failureStrategy": "stop-all"},
            "waves": [
                {"waveId": "w1", "agents": [agent("FAILS", &[], "sleep 0.3; exit 7"), agent("SLOW", &[], &slow)]},
                {"waveId": "w2", "agents": [agent("LATER", &[], MARKERS)]}
            ]
        }),
    );
    let started = std::time::Instant::now();
    bin()
        .args(["run", "--no-worktrees", "--kill-grace", "1s", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LEDGER", dir.path().join("ledger.txt"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("SLOW cancelled"));
    assert!(
        started.elapsed().as_secs() < 15,
        "stop-all did not cancel the slow agent"
    );
    assert!(!marker.exists());
    assert!(
        !dir.path().join("ledger.txt").exists(),
        "LATER must not run"
    );
}

#[test]
fn a_failed_attempt_is_retried_with_its_failure_as_context() {
    let dir = tempfile::tempdir().unwrap();
    let script = "if [ \"$LLMO_ATTEMPT\" = 1 ]; then echo '[STATUS: FAILED] flaky network'; exit 1; fi; \
                  echo \"context: $LLMO_RETRY_CONTEXT\" > \"$OUT\"; echo '[STATUS: COMPLETE] ok'";
    let mut a = agent("FLAKY", &[], script);
    a["maxRetries"] = serde_json::json!(2);
    let plan = write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "retry", "waves": [{"waveId": "w", "agents": [a]}]}),
    );
    let out = dir.path().join("context.txt");
    bin()
        .args(["run", "--no-worktrees", "--retry-base", "200ms", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("OUT", &out)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("FLAKY will retry (attempt 2)"))
        .stdout(predicate::str::contains("FLAKY started (attempt 2)"));
    let context = std::fs::read_to_string(&out).unwrap();
    assert!(context.contains("flaky network"), "{context}");
    let report = report(dir.path());
    let flaky = &report["agents"][0];
    assert_eq!(flaky["attempts"], 2);
}

#[test]
fn status_reads_the_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = three_wave_plan(dir.path());
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LEDGER", dir.path().join("ledger.txt"))
        .assert()
        .code(0);
    bin()
        .args(["status", "--run-dir"])
        .arg(dir.path().join("runs"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("run e2e-"))
        .stdout(predicate::str::contains("100% overall"));
    let assert = bin()
        .args(["status", "--json", "--run-dir"])
        .arg(dir.path().join("runs"))
        .assert()
        .code(0);
    let status: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(status["agentStatus"].as_array().unwrap().len(), 6);
    assert!(status["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn ctrl_c_stops_cleanly_and_resume_finishes_without_rerunning_completed_agents() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.txt");
    let gate = dir.path().join("gate");
    // B waits for the gate file, so the run is still going when we interrupt it.
    let wait = format!(
        "while [ ! -f {} ]; do sleep 0.1; done; {MARKERS}",
        gate.display()
    );
    let plan = write_plan(
        dir.path(),
        serde_json::json!({
            "orchestrationId": "resume",
            "executionMode": "continuous",
            "waves": [{"waveId": "w", "agents": [agent("A", &[], MARKERS), agent("B", &[], &wait), agent("C", &["B"], MARKERS)]}]
        }),
    );
    let bin_path = assert_cmd::cargo::cargo_bin("llm-orchestrate");
    let mut child = StdCommand::new(&bin_path)
        .args(["run", "--no-worktrees", "--kill-grace", "1s", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LEDGER", &ledger)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&ledger)
        .unwrap_or_default()
        .contains('A')
    {
        assert!(std::time::Instant::now() < deadline, "A never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::fs::write(&gate, "").unwrap();
    bin()
        .args(["resume", "--run-dir"])
        .arg(dir.path().join("runs"))
        .arg("--workdir")
        .arg(dir.path())
        .env("LEDGER", &ledger)
        .assert()
        .code(0);
    let lines: Vec<String> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines.iter().filter(|l| *l == "A").count(),
        1,
        "A ran again: {lines:?}"
    );
    assert_eq!(lines.iter().filter(|l| *l == "B").count(), 1);
    assert_eq!(lines.iter().filter(|l| *l == "C").count(), 1);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn the_readme_demo_plan_runs_and_retries_its_flaky_agent() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shell-demo.json");
    bin()
        .args(["run", "--no-worktrees", "--retry-base", "100ms", "--plan"])
        .arg(&plan)
        .arg("--workdir")
        .arg(dir.path())
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("LOG_IMPL started (attempt 2)"))
        .stdout(predicate::str::contains(
            "PROFILE_IMPL progress report: 1 done, 1 remaining",
        ))
        .stdout(predicate::str::contains("3 agents: 3 complete"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("demo/auth-service/tokens.txt")).unwrap(),
        "token: ok\n"
    );
}

#[test]
fn pause_wave_lets_running_agents_finish_then_pauses_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.txt");
    let fails = "exit 4";
    let plan = write_plan(
        dir.path(),
        serde_json::json!({
            "orchestrationId": "pause",
            "coordinationRules": {"failureStrategy": "pause-wave"},
            "waves": [
                {"waveId": "w1", "agents": [agent("FAILS", &[], fails), agent("SLOWER", &[], &format!("sleep 1; {MARKERS}"))]},
                {"waveId": "w2", "agents": [agent("NEXT", &[], MARKERS)]}
            ]
        }),
    );
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LEDGER", &ledger)
        .assert()
        .code(3);
    let ran = std::fs::read_to_string(&ledger).unwrap();
    assert!(ran.contains("SLOWER"), "the running agent finishes");
    assert!(
        !ran.contains("NEXT"),
        "nothing new starts after the failure"
    );
}

#[test]
fn the_stall_watchdog_stops_a_silent_agent() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "stall", "waves": [{"waveId": "w", "agents": [agent("QUIET", &[], "echo '[STATUS: STARTED]'; sleep 30")]}]}),
    );
    let started = std::time::Instant::now();
    bin()
        .args([
            "run",
            "--no-worktrees",
            "--stall-timeout",
            "700ms",
            "--kill-grace",
            "300ms",
            "--plan",
        ])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "Cause: stalled: no output for too long",
        ));
    assert!(started.elapsed().as_secs() < 10);
    assert_eq!(outcome_of(&report(dir.path()), "QUIET"), "stalled");
}

#[test]
fn resume_retry_failed_runs_failed_agents_and_their_dependants_again() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "retry-failed", "waves": [
            {"waveId": "w1", "agents": [agent("FLAKY", &[], "test -f \"$FIXED\" || { echo '[STATUS: FAILED] not fixed yet'; exit 1; }; echo '[STATUS: COMPLETE]'")]},
            {"waveId": "w2", "agents": [agent("AFTER", &["FLAKY"], "echo AFTER >> \"$LEDGER\"; echo '[STATUS: COMPLETE]'")]}
        ]}),
    );
    let fixed = dir.path().join("fixed");
    let ledger = dir.path().join("ledger.txt");
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("FIXED", &fixed)
        .env("LEDGER", &ledger)
        .assert()
        .code(1);
    assert!(!ledger.exists(), "AFTER was blocked");
    std::fs::write(&fixed, "").unwrap();
    // A plain resume does not run failed agents again.
    bin()
        .args(["resume", "--workdir"])
        .arg(dir.path())
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("FIXED", &fixed)
        .env("LEDGER", &ledger)
        .assert()
        .code(1);
    assert!(!ledger.exists());
    bin()
        .args(["resume", "--retry-failed", "--workdir"])
        .arg(dir.path())
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("FIXED", &fixed)
        .env("LEDGER", &ledger)
        .assert()
        .code(0);
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), "AFTER\n");
    let report = report(dir.path());
    assert_eq!(outcome_of(&report, "FLAKY"), "completed");
    let flaky = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "FLAKY")
        .unwrap()
        .clone();
    assert_eq!(flaky["attempts"], 2);
}
