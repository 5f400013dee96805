//! The `generic` platform end to end: instructions rendered for a person,
//! the run pauses, replies are ingested and the run continues.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn bin(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(dir).env("CI", "1");
    cmd
}

fn run_dir_of(dir: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.pop().expect("a run folder")
}

fn outcome(run_dir: &Path, id: &str) -> String {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["outcome"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn generic_run_pauses_for_replies_and_continues_with_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let plan = serde_json::json!({
        "orchestrationId": "gen-test",
        "platform": "generic",
        "executionMode": "continuous",
        "waves": [{"waveId": "w1", "agents": [
            {"agentId": "DESIGN", "workDescription": "design the API", "scope": "api"},
            {"agentId": "BUILD", "workDescription": "build the API", "scope": "api", "dependencies": ["DESIGN"]}
        ]}]
    });
    std::fs::write(dir.path().join("plan.json"), plan.to_string()).unwrap();

    // 1. The run renders DESIGN's instructions and pauses (exit 3); BUILD waits.
    let out = bin(dir.path())
        .args([
            "run",
            "--no-worktrees",
            "--plan",
            "plan.json",
            "--run-dir",
            "runs",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let run_dir = run_dir_of(dir.path());
    let prompt = std::fs::read_to_string(run_dir.join("agents/DESIGN/prompt.md")).unwrap();
    assert!(prompt.contains("design the API"), "{prompt}");
    assert!(
        prompt.contains("[STATUS: COMPLETE]"),
        "the STATUS protocol is in the instructions"
    );
    assert!(!run_dir.join("agents/BUILD/prompt.md").exists());
    assert_eq!(outcome(&run_dir, "DESIGN"), "awaiting-input");
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("status.json")).unwrap())
            .unwrap();
    assert_eq!(status["agentStatus"][0]["status"], "AWAITING-INPUT");

    // 2. A reply for an agent that is not waiting is refused (exit 2), nothing changes.
    std::fs::write(dir.path().join("build.txt"), "[STATUS: COMPLETE]\n").unwrap();
    bin(dir.path())
        .args([
            "ingest",
            "gen-test",
            "build.txt",
            "--agent",
            "BUILD",
            "--run-dir",
            "runs",
        ])
        .assert()
        .code(2);

    // 3. DESIGN's reply completes it; the run continues and pauses for BUILD.
    std::fs::write(
        dir.path().join("design.txt"),
        "[STATUS: STARTED]\n[STATUS: PROGRESS-50%] drafting\n[STATUS: COMPLETE] API designed\n",
    )
    .unwrap();
    let out = bin(dir.path())
        .args([
            "ingest",
            "gen-test",
            "design.txt",
            "--agent",
            "DESIGN",
            "--run-dir",
            "runs",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(outcome(&run_dir, "DESIGN"), "completed");
    assert!(run_dir.join("agents/BUILD/prompt.md").is_file());

    // 4. A pasted reply with an [AGENT-N: ID] section finishes the run.
    let out = bin(dir.path())
        .args(["ingest", "gen-test", "-", "--run-dir", "runs"])
        .write_stdin("Here you go.\n[AGENT-2: BUILD]\n[STATUS: COMPLETE] built\n")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(outcome(&run_dir, "BUILD"), "completed");
}
