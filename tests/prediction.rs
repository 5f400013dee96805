//! Prediction end to end: a real run of shell agents is recorded in the
//! history, `simulate` predicts its makespan, `history` shows it, and
//! `analyze --history` calibrates from generated histories.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use llm_orchestrate::history::{HistoryRow, HistoryStore, RunRow};
use predicates::prelude::*;

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("llm-orchestrate").expect("binary built");
    cmd.env_remove("LLMO_HISTORY").env("CI", "1");
    cmd
}

/// A shell agent sleeping `secs` seconds, estimated at exactly that.
fn sleeper(id: &str, secs: f64, deps: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "agentId": id,
        "workDescription": format!("sleep {secs}s"),
        "estimatedDuration": format!("{}ms", (secs * 1000.0) as u64),
        "dependencies": deps,
        "command": format!("sleep {secs}; echo '[STATUS: COMPLETE] slept'"),
    })
}

/// 8 agents in 3 waves (the last sequential); at concurrency 2 the nominal
/// makespan is 2.0 + 1.5 + 1.5 = 5 s.
fn sleep_plan(dir: &Path) -> PathBuf {
    let plan = serde_json::json!({
        "orchestrationId": "sleepers",
        "executionMode": "waves",
        "concurrency": 2,
        "waves": [
            {"waveId": "w1", "agents": [sleeper("A", 1.0, &[]), sleeper("B", 0.5, &[]), sleeper("C", 1.5, &[])]},
            {"waveId": "w2", "agents": [sleeper("D", 1.0, &["A"]), sleeper("E", 1.0, &[]), sleeper("F", 0.5, &[])]},
            {"waveId": "w3", "parallel": false, "agents": [sleeper("G", 0.5, &[]), sleeper("H", 1.0, &["D"])]}
        ]
    });
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    path
}

fn json_of(output: &[u8]) -> serde_json::Value {
    serde_json::from_slice(output)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(output)))
}

fn report(runs: &Path) -> serde_json::Value {
    let run = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("report.json").is_file())
        .expect("a run folder with report.json");
    serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap()
}

#[test]
fn the_simulated_makespan_matches_a_real_run_and_the_run_is_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let plan = sleep_plan(dir.path());
    let runs = dir.path().join("runs");
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(&runs)
        .assert()
        .code(0);
    let report = report(&runs);
    let real = report["totals"]["wallTimeMs"].as_f64().expect("wall time") / 1000.0;

    let simulated = json_of(
        &bin()
            .arg("simulate")
            .arg(&plan)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .stdout,
    );
    let predicted = simulated["makespan"].as_f64().unwrap();
    assert_eq!(predicted, 5.0, "nominal makespan of the plan");
    assert!(
        (predicted - real).abs() / real <= 0.10,
        "simulated {predicted}s vs real {real}s"
    );
    eprintln!("real run {real}s, simulated {predicted}s");
    // B (0.5 s) frees the slot C (1.5 s) takes: B and C set wave w1's 2 s.
    assert_eq!(
        simulated["criticalPath"],
        serde_json::json!(["B", "C", "D", "F", "G", "H"])
    );

    // The run was recorded next to the runs folder, one row per agent.
    let history = dir.path().join("history.sqlite");
    assert!(history.is_file(), "history.sqlite next to the runs folder");
    let shown = json_of(
        &bin()
            .args(["history", "--json", "--history"])
            .arg(&history)
            .assert()
            .code(0)
            .get_output()
            .stdout,
    );
    let run = &shown["runs"][0];
    assert_eq!(shown["runs"].as_array().unwrap().len(), 1);
    assert_eq!(run["agents"], 8);
    assert_eq!(run["successRate"], 1.0);
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["predictedSecs"], 5.0, "predicted from the estimates");
    assert_eq!(run["predictionBasis"], "estimates");
    let ratio = run["agentRatio"].as_f64().unwrap();
    assert!(
        (0.95..1.3).contains(&ratio),
        "sleeps take their estimate: {ratio}"
    );
    assert_eq!(shown["platforms"][0]["key"], "shell");
    bin()
        .args(["history", "--history"])
        .arg(&history)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("success rate"))
        .stdout(predicate::str::contains("sleepers-"));

    // With the history, every agent is calibrated by its own earlier run.
    let svg = dir.path().join("gantt.svg");
    let calibrated = json_of(
        &bin()
            .arg("simulate")
            .arg(&plan)
            .arg("--history")
            .arg(&history)
            .arg("--svg")
            .arg(&svg)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .stdout,
    );
    assert_eq!(calibrated["calibratedAgents"], 8);
    assert_eq!(calibrated["agents"][0]["basis"], "sleepers/A (1 runs)");
    let with_history = calibrated["makespan"].as_f64().unwrap();
    assert!(
        (with_history - real).abs() / real <= 0.10,
        "calibrated {with_history}s vs real {real}s"
    );
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.trim_end().ends_with("</svg>"));
    assert!(drawn.contains("wave w3 (sequential)"));
}

fn generated_row(run: usize, agent: &str, platform: &str, model: &str, ratio: f64) -> HistoryRow {
    HistoryRow {
        run_id: format!("gen-{run}"),
        plan: "generated".into(),
        plan_path: None,
        agent_id: agent.into(),
        wave: Some("w".into()),
        platform: platform.into(),
        model: Some(model.into()),
        scope: Vec::new(),
        estimate_secs: Some(600.0),
        actual_secs: Some(600.0 * ratio),
        attempt_secs: Some(600.0 * ratio),
        attempts: 1,
        failed_attempts: 0,
        outcome: "completed".into(),
        gates_passed: 0,
        gates_failed: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        started_at_ms: Some(0),
        finished_at_ms: run as i64,
    }
}

/// Writes a history where claude/sonnet agents take 2× their estimate and
/// gpt/gpt-5 agents 0.5× (log-normal around those medians, σ 0.3).
fn generated_history(path: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = HistoryStore::open(path).await.unwrap();
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for run in 0..200 {
            let mut normal = || {
                let (u1, u2) = (1.0 - uniform(), uniform());
                (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            };
            let rows = vec![
                generated_row(run, "X", "claude", "sonnet", 2.0 * (0.3 * normal()).exp()),
                generated_row(run, "Y", "gpt", "gpt-5", 0.5 * (0.3 * normal()).exp()),
            ];
            let summary = RunRow {
                run_id: format!("gen-{run}"),
                plan: "generated".into(),
                plan_path: None,
                mode: "waves".into(),
                concurrency: 2,
                agents: 2,
                outcome: "succeeded".into(),
                started_at_ms: Some(0),
                finished_at_ms: run as i64,
                wall_secs: Some(1200.0),
                predicted_secs: Some(600.0),
                prediction_basis: "estimates".into(),
                cost_usd: 0.0,
            };
            store.upsert_run(&summary, &rows).await.unwrap();
        }
        store.close().await;
    });
}

#[test]
fn analyze_with_history_predicts_from_calibrated_durations() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.sqlite");
    generated_history(&history);
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"orchestrationId":"new-plan","waves":[{"waveId":"w1","agents":[
            {"agentId":"SLOW","workDescription":"s","estimatedDuration":"1h","platform":"claude","model":"sonnet"},
            {"agentId":"FAST","workDescription":"f","estimatedDuration":"1h","platform":"gpt","model":"gpt-5"},
            {"agentId":"NEXT","workDescription":"n","estimatedDuration":"1h","platform":"gpt","model":"gpt-5"}]},
            {"waveId":"w2","agents":[
            {"agentId":"LAST","workDescription":"l","estimatedDuration":"30m","platform":"claude","model":"sonnet","dependencies":["SLOW"]}]}]}"#,
    )
    .unwrap();
    let out = json_of(
        &bin()
            .arg("analyze")
            .arg(&plan)
            .arg("--history")
            .arg(&history)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .stdout,
    );
    // Today's analysis is still there, by the plan's estimates.
    assert_eq!(out["criticalPathLength"]["seconds"], 5400.0);
    let prediction = &out["prediction"];
    assert_eq!(prediction["historyRows"], 400);
    assert_eq!(prediction["calibratedAgents"], 4);
    let agent = |id: &str| {
        prediction["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap()
            .clone()
    };
    // Within 10% of the true medians: 2 × 1 h and 0.5 × 1 h.
    let slow = agent("SLOW")["calibrated"]["seconds"].as_f64().unwrap();
    let fast = agent("FAST")["calibrated"]["seconds"].as_f64().unwrap();
    assert!((slow - 7200.0).abs() / 7200.0 < 0.10, "{slow}");
    assert!((fast - 1800.0).abs() / 1800.0 < 0.10, "{fast}");
    assert_eq!(agent("SLOW")["basis"], "claude/sonnet (200 runs)");
    assert_eq!(
        prediction["criticalPath"],
        serde_json::json!(["SLOW", "LAST"])
    );
    assert_eq!(prediction["bottlenecks"][0]["id"], "SLOW");
    let makespan = prediction["predictedMakespan"]["seconds"].as_f64().unwrap();
    assert!((makespan - 10_800.0).abs() / 10_800.0 < 0.10, "{makespan}");
    // FAST and NEXT fit in SLOW's shadow: two slots are enough.
    assert_eq!(prediction["suggestedConcurrency"], 2);

    bin()
        .arg("analyze")
        .arg(&plan)
        .arg("--history")
        .arg(&history)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Prediction from history"))
        .stdout(predicate::str::contains("Suggested concurrency: 2"));
}

#[test]
fn sampled_simulations_are_reproducible_and_history_handles_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.sqlite");
    generated_history(&history);
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"orchestrationId":"p","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"1h","platform":"claude","model":"sonnet"},
            {"agentId":"B","workDescription":"b","estimatedDuration":"1h","platform":"gpt","model":"gpt-5","dependencies":[]}]}]}"#,
    )
    .unwrap();
    let sample = |seed: &str| {
        json_of(
            &bin()
                .arg("simulate")
                .arg(&plan)
                .arg("--history")
                .arg(&history)
                .args([
                    "--runs",
                    "200",
                    "--seed",
                    seed,
                    "--json",
                    "--timeout-factor",
                    "10",
                ])
                .assert()
                .code(0)
                .get_output()
                .stdout,
        )
    };
    let first = sample("7");
    assert_eq!(first["p50"], sample("7")["p50"]);
    let p50 = first["p50"].as_f64().unwrap();
    let p90 = first["p90"].as_f64().unwrap();
    assert!(p50 <= p90);
    assert!((p50 - 7200.0).abs() / 7200.0 < 0.10, "{p50}");
    // No history file yet: an empty history, not an error.
    bin()
        .args(["history", "--history"])
        .arg(dir.path().join("none.sqlite"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No runs"));
    bin()
        .arg("simulate")
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(2);
}

#[test]
fn a_history_that_cannot_be_written_is_a_warning_and_off_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"orchestrationId":"one","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"1s","command":"true"}]}]}"#,
    )
    .unwrap();
    // A file where the history's folder should be.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "not a folder").unwrap();
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .arg("--history")
        .arg(blocker.join("history.sqlite"))
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "warning: the run was not recorded in the history",
        ));
    bin()
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("LLMO_HISTORY", "off")
        .assert()
        .code(0);
    assert!(!dir.path().join("history.sqlite").exists());
}

/// A history where agent S of plan `slowpoke` always took 2× its estimate.
fn slow_history(path: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = HistoryStore::open(path).await.unwrap();
        for run in 0..5 {
            let mut row = generated_row(run, "S", "shell", "none", 2.0);
            row.plan = "slowpoke".into();
            row.model = None;
            row.estimate_secs = Some(1.0);
            row.actual_secs = Some(2.0);
            row.attempt_secs = Some(2.0);
            let summary = RunRow {
                run_id: format!("gen-{run}"),
                plan: "slowpoke".into(),
                plan_path: None,
                mode: "waves".into(),
                concurrency: 1,
                agents: 1,
                outcome: "succeeded".into(),
                started_at_ms: Some(0),
                finished_at_ms: run as i64,
                wall_secs: Some(2.0),
                predicted_secs: Some(1.0),
                prediction_basis: "estimates".into(),
                cost_usd: 0.0,
            };
            store.upsert_run(&summary, &[row]).await.unwrap();
        }
        store.close().await;
    });
}

#[test]
fn overrun_anomalies_follow_the_history_spread() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    // Estimated at 1 s, takes 1.7 s: over the default 1.5×, within the history's 2×.
    std::fs::write(
        &plan,
        r#"{"orchestrationId":"slowpoke","waves":[{"waveId":"w","agents":[
            {"agentId":"S","workDescription":"slow","estimatedDuration":"1s","command":"sleep 1.7; echo '[STATUS: COMPLETE]'"}]}]}"#,
    )
    .unwrap();
    let run = |history: &str| {
        let out = bin()
            .args(["run", "--no-worktrees", "--plan"])
            .arg(&plan)
            .arg("--run-dir")
            .arg(dir.path().join(format!("runs-{}", history.len())))
            .args(["--history", history])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let without = run("off");
    assert!(
        without.contains("ANOMALY overrun S: running for"),
        "{without}"
    );
    assert!(without.contains("over 1.5× its estimate"), "{without}");
    let history = dir.path().join("slow.sqlite");
    slow_history(&history);
    let with = run(history.to_str().unwrap());
    assert!(!with.contains("ANOMALY overrun"), "{with}");
}
