//! Alerts: a webhook receiver in the test gets the alert for a stalled agent
//! and the end of the run; `--on-event` runs a command per alert.

use std::sync::{Arc, Mutex};

use assert_cmd::Command;

type Received = Arc<Mutex<Vec<serde_json::Value>>>;

/// A webhook receiver on a free port; returns its URL and what it received.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_agent_alerts_the_webhook_and_the_hook_command() {
    let (url, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = serde_json::json!({"orchestrationId": "alerts", "waves": [{"waveId": "w", "agents": [
        {"agentId": "QUIET", "workDescription": "hangs", "command": ["sh", "-c", "echo '[STATUS: STARTED]'; sleep 30"]},
        {"agentId": "FINE", "workDescription": "works", "command": ["sh", "-c", "echo '[STATUS: COMPLETE]'"]}
    ]}]});
    std::fs::write(dir.path().join("plan.json"), plan.to_string()).unwrap();
    let hook_log = dir.path().join("hook.log");
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(dir.path())
        .args([
            "run",
            "--no-worktrees",
            "--plan",
            "plan.json",
            "--run-dir",
            "runs",
        ])
        .args(["--stall-timeout", "700ms", "--kill-grace", "300ms"])
        .args(["--notify-webhook", &url])
        .arg("--on-event")
        .arg(format!(
            "printf '%s %s\\n' \"$LLMO_EVENT_KIND\" \"$LLMO_RUN_ID\" >> {}",
            hook_log.display()
        ))
        .timeout(std::time::Duration::from_secs(60));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let received = received.lock().unwrap().clone();
    let kinds: Vec<&str> = received.iter().filter_map(|b| b["kind"].as_str()).collect();
    // The default set: the stalled agent and the end of the run; not FINE's success.
    assert_eq!(kinds, ["AgentFinished", "RunFinished"], "{received:?}");
    assert_eq!(received[0]["event"]["agent"], "QUIET");
    assert_eq!(
        received[0]["event"]["outcome"]["kind"], "stalled",
        "{}",
        received[0]
    );
    assert!(
        received[0]["text"].as_str().unwrap().contains("QUIET"),
        "{}",
        received[0]
    );
    let run_id = received[0]["runId"].as_str().unwrap().to_string();
    let hooks = std::fs::read_to_string(&hook_log).unwrap();
    assert_eq!(
        hooks,
        format!("AgentFinished {run_id}\nRunFinished {run_id}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_silent_for_three_times_its_usual_interval_raises_a_stalled_anomaly() {
    let (url, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    // Progress every 0.2 s, then 3.5 s of silence (the floor is 2 s), then done.
    let script = "for i in 1 2 3 4; do echo \"[STATUS: PROGRESS-${i}0%]\"; sleep 0.2; done; sleep 3.5; echo '[STATUS: COMPLETE]'";
    let plan = serde_json::json!({"orchestrationId": "anomaly", "waves": [{"waveId": "w", "agents": [
        {"agentId": "SLOW", "workDescription": "pauses", "command": ["sh", "-c", script]}
    ]}]});
    std::fs::write(dir.path().join("plan.json"), plan.to_string()).unwrap();
    let mut cmd = Command::cargo_bin("llm-orchestrate").unwrap();
    cmd.current_dir(dir.path())
        .args([
            "run",
            "--no-worktrees",
            "--plan",
            "plan.json",
            "--run-dir",
            "runs",
        ])
        .args(["--notify-webhook", &url])
        .timeout(std::time::Duration::from_secs(60));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("ANOMALY stalled SLOW: no progress for"),
        "{stdout}"
    );
    let received = received.lock().unwrap().clone();
    let anomaly = received
        .iter()
        .find(|b| b["kind"] == "Anomaly")
        .unwrap_or_else(|| panic!("no anomaly alert in {received:?}"));
    assert_eq!(anomaly["event"]["kind"], "stalled", "{anomaly}");
    assert_eq!(anomaly["event"]["agent"], "SLOW", "{anomaly}");
    assert!(
        anomaly["event"]["recommendation"]
            .as_str()
            .unwrap()
            .contains("output.log")
    );
    let report: serde_json::Value = {
        let runs = dir.path().join("runs");
        let run = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_dir())
            .unwrap();
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap()
    };
    assert_eq!(report["anomalies"][0]["kind"], "stalled", "{report:#}");
}
