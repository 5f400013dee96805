//! Crash test: a run of 200 shell agents, each appending one line to a ledger,
//! is killed with SIGKILL at random moments 20 times and resumed each time.
//!
//! Checked at the end: every agent has a line; an agent whose completion was
//! journaled never ran again; extra lines only for agents that were running
//! at the moment of a kill; no agent process outlived a killed orchestrator;
//! the journal replays to a consistent state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENTS: usize = 200;
const KILLS: usize = 20;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("llm-orchestrate")
}

fn ledger_counts(ledger: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(ledger).unwrap_or_default().lines() {
        *counts.entry(line.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Agent ids in each phase, from `status --json` (none when the run has not
/// journaled its start: `status` then finds no run).
fn phases(runs: &Path) -> HashMap<String, String> {
    let out = Command::new(bin())
        .args(["status", "--json", "--run-dir"])
        .arg(runs)
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no run"), "status failed: {err}");
        return HashMap::new();
    }
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["agentStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Processes (other than zombies) whose environment carries `tag`.
fn tagged_processes(tag: &str) -> Vec<u32> {
    let needle = format!("CRASH_TEST_TAG={tag}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sigkill_twenty_times_and_resume_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.txt");
    let runs = dir.path().join("runs");
    let tag = format!("{}-{}", std::process::id(), dir.path().display());
    // Every 50th agent is slow (its `sleep` is a grandchild of the agent's `sh`), so
    // most kills find long-lived agent processes that must not survive.
    let agents: Vec<serde_json::Value> = (0..AGENTS)
        .map(|i| {
            let pause = if i % 50 == 0 { "3" } else { "0.05" };
            serde_json::json!({
                "agentId": format!("A{i:03}"),
                "workDescription": "append one line",
                "command": ["sh", "-c", format!("sleep {pause}; echo \"$LLMO_AGENT_ID\" >> \"$LEDGER\"; echo '[STATUS: COMPLETE]'")],
            })
        })
        .collect();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        serde_json::json!({"orchestrationId": "crash", "executionMode": "continuous", "concurrency": 8,
            "waves": [{"waveId": "w", "agents": agents}]})
        .to_string(),
    )
    .unwrap();

    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    let mut completed_at_kill: Vec<HashMap<String, usize>> = Vec::new();
    let mut running_at_kill: HashMap<String, usize> = HashMap::new();
    let mut kills = 0;
    let mut first = true;
    while kills < KILLS {
        let mut command = Command::new(bin());
        if first {
            command.args(["run", "--no-worktrees", "--plan"]).arg(&plan);
        } else {
            command.args(["resume", "--workdir"]).arg(dir.path());
        }
        let mut child = command
            .arg("--run-dir")
            .arg(&runs)
            .env("LEDGER", &ledger)
            .env("CRASH_TEST_TAG", &tag)
            .env("CI", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait_ms = 100 + xorshift(&mut seed) % 900;
        std::thread::sleep(Duration::from_millis(wait_ms));
        if let Some(status) = child.try_wait().unwrap() {
            // Finished before the kill: the run is complete.
            assert!(status.success(), "a run ended by itself with {status:?}");
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if first && phases(&runs).is_empty() {
            // Killed before its start was journaled: nothing ran and there is
            // nothing to resume; start the run again, as a user would.
            assert!(
                ledger_counts(&ledger).is_empty(),
                "an agent ran before the run's start was journaled"
            );
            let _ = std::fs::remove_dir_all(&runs);
            continue;
        }
        first = false;
        // No agent may outlive the orchestrator.
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut left = tagged_processes(&tag);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = tagged_processes(&tag);
        }
        assert!(
            left.is_empty(),
            "agent processes outlived the killed orchestrator: {left:?}"
        );
        let phases = phases(&runs);
        let counts = ledger_counts(&ledger);
        let mut snapshot = HashMap::new();
        for (id, phase) in &phases {
            if phase == "COMPLETE" {
                snapshot.insert(id.clone(), counts.get(id).copied().unwrap_or(0));
            } else if phase != "PENDING" && phase != "BLOCKED" && phase != "FAILED" {
                *running_at_kill.entry(id.clone()).or_insert(0) += 1;
            }
        }
        completed_at_kill.push(snapshot);
    }
    // Finish the run.
    let status = Command::new(bin())
        .args(["resume", "--workdir"])
        .arg(dir.path())
        .arg("--run-dir")
        .arg(&runs)
        .env("LEDGER", &ledger)
        .env("CRASH_TEST_TAG", &tag)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success() || kills == 0,
        "final resume failed: {status:?}"
    );

    let counts = ledger_counts(&ledger);
    for i in 0..AGENTS {
        let id = format!("A{i:03}");
        let n = counts.get(&id).copied().unwrap_or(0);
        assert!(n >= 1, "{id} was lost");
        let allowed_repeats = running_at_kill.get(&id).copied().unwrap_or(0);
        // Runs after a kill while it was running (started, completion not journaled) may repeat it.
        assert!(
            n - 1 <= allowed_repeats,
            "{id} ran {n} times but was running at only {allowed_repeats} kill(s)"
        );
    }
    for snapshot in &completed_at_kill {
        for (id, count_then) in snapshot {
            assert_eq!(
                counts[id], *count_then,
                "{id} ran again after its completion was journaled"
            );
        }
    }
    let phases = phases(&runs);
    assert_eq!(phases.len(), AGENTS);
    assert!(
        phases.values().all(|p| p == "COMPLETE"),
        "journal does not replay to a complete run"
    );
    eprintln!(
        "crash test: {kills} kills, {} repeated agents",
        counts.values().filter(|n| **n > 1).count()
    );
}
