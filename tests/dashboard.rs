//! The web dashboard through the real binary: `run --dashboard`, `serve` and
//! `report --html`. The SSE, token and report tests talk HTTP directly; the
//! browser tests drive headless Chromium with playwright-core
//! (`tests/browser/*.mjs`), installed by `.ci/run`:
//!
//! - Chromium: `LLMO_CHROMIUM`, else `/usr/bin/chromium`;
//! - playwright-core: `LLMO_PLAYWRIGHT_MODULES` (a `node_modules` folder),
//!   else `.ci/browser/node_modules` of this checkout;
//! - screenshots go to `target/test-artifacts/dashboard/`.
//!
//! Without them a browser test is skipped with a message, unless `CI` is set:
//! then it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("llm-orchestrate")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write_plan(dir: &Path, json: serde_json::Value) -> PathBuf {
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    path
}

fn agent(id: &str, deps: &[&str], estimate: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "agentId": id,
        "workDescription": format!("work of {id}"),
        "estimatedDuration": estimate,
        "dependencies": deps,
        "command": ["sh", "-c", script],
    })
}

/// A child process killed (by its own pid) when the test ends.
struct Spawned {
    child: Child,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Spawned {
    fn start(mut command: Command) -> Spawned {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let pipe = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned {
            child,
            stderr: rx,
            lines: Vec::new(),
        }
    }

    /// Waits for the `dashboard: http://…/` line.
    fn url(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                self.lines.push(line.clone());
                if let Some(url) = line.strip_prefix("dashboard: http") {
                    return format!("http{url}");
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited {status} before serving: {:?}", self.drain());
            }
        }
        panic!("no dashboard URL on stderr: {:?}", self.drain());
    }

    fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(50)) {
            self.lines.push(line);
        }
        self.lines.clone()
    }

    /// Waits for the exit code (at most `limit`).
    fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running after {limit:?}: {:?}",
                self.drain()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
struct Message {
    id: Option<i64>,
    event: String,
    data: String,
}

/// Reads messages from an event stream until `stop` says so (or 30 s pass).
fn read_events(
    response: reqwest::blocking::Response,
    mut stop: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    assert_eq!(response.status(), 200);
    let mut reader = BufReader::new(response);
    let mut messages = Vec::new();
    let mut current = Message::default();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("stream broken after {messages:?}: {e}"),
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !current.event.is_empty() || !current.data.is_empty() {
                messages.push(std::mem::take(&mut current));
                if stop(&messages) {
                    break;
                }
            }
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => current.id = Some(value.parse().unwrap()),
            "event" => current.event = value.to_string(),
            "data" => current.data.push_str(value),
            _ => {}
        }
    }
    messages
}

fn journal_ids(messages: &[Message]) -> Vec<i64> {
    messages
        .iter()
        .filter(|m| m.event == "journal")
        .map(|m| m.id.expect("journal messages carry ids"))
        .collect()
}

fn data(message: &Message) -> serde_json::Value {
    serde_json::from_str(&message.data).unwrap()
}

fn last_seq_of(run_dir: &Path) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let journal =
            llm_orchestrate::journal::Journal::open_read_only(&run_dir.join("journal.sqlite"))
                .await
                .unwrap();
        let last = journal.replay().await.unwrap().last_seq;
        journal.close().await;
        last
    })
}

fn only_run(runs: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

/// A finished run of four shell agents (one fails, one is blocked), in `dir/runs`.
fn finished_run(dir: &Path) -> PathBuf {
    let plan = write_plan(
        dir,
        serde_json::json!({
            "orchestrationId": "dash",
            "waves": [
                {"waveId": "w1", "agents": [
                    agent("A", &[], "1m", "echo '[STATUS: STARTED] go'; echo '[STATUS: PROGRESS-50%] half'; echo '[STATUS: COMPLETE] done'"),
                    agent("B", &[], "2m", "echo '[STATUS: PROGRESS-20%] trying'; sleep 0.4; printf '[ERROR: Agent B failed]\\nCause: the parser broke\\nImpact: D waits\\nRecommendation: fix the parser\\n'; exit 3"),
                ]},
                {"waveId": "w2", "agents": [
                    agent("C", &["A"], "30s", "echo '[STATUS: COMPLETE] ok'"),
                    agent("D", &["B"], "30s", "echo never"),
                ]}
            ]
        }),
    );
    let status = Command::new(bin())
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.join("runs"))
        .env("CI", "1")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "B fails the run");
    only_run(&dir.join("runs"))
}

fn serve(runs: &Path, extra: &[&str]) -> (Spawned, String) {
    let mut command = Command::new(bin());
    command
        .args(["serve", "--run-dir"])
        .arg(runs)
        .args(extra)
        .env_remove("LLMO_DASHBOARD_TOKEN");
    let mut server = Spawned::start(command);
    let url = server.url();
    (server, url)
}

#[test]
fn the_event_stream_starts_after_last_event_id_or_after_with_nothing_missed_or_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = finished_run(dir.path());
    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let last = last_seq_of(&run_dir);
    assert!(last > 10, "{last}");
    let (_server, url) = serve(&dir.path().join("runs"), &["--addr", "127.0.0.1:0"]);
    let events_url = format!("{url}api/runs/{run_id}/events");
    let until_last = |m: &[Message]| journal_ids(m).last() == Some(&last);

    // From the beginning: every event once, in order, then the summary.
    let all = read_events(http().get(&events_url).send().unwrap(), |m| {
        until_last(m) || m.len() > 1 && m.last().is_some_and(|x| x.event == "summary")
    });
    assert_eq!(journal_ids(&all), (1..=last).collect::<Vec<_>>());
    let first = data(&all[0]);
    assert_eq!(first["type"], "RunStarted");
    assert_eq!(first["agents"].as_array().unwrap().len(), 4);
    let b_failed = all
        .iter()
        .filter(|m| m.event == "journal")
        .map(data)
        .find(|d| d["type"] == "AgentFinished" && d["agent"] == "B")
        .unwrap();
    assert_eq!(b_failed["agents"][0]["status"], "failed");
    assert_eq!(b_failed["agents"][0]["exitCode"], 3);

    // A browser reconnecting after event 5: from 6 on, exactly once.
    let resumed = read_events(
        http()
            .get(&events_url)
            .header("Last-Event-ID", "5")
            .send()
            .unwrap(),
        until_last,
    );
    assert_eq!(journal_ids(&resumed), (6..=last).collect::<Vec<_>>());
    // The first load's `after` works the same, and the header wins over it.
    let after = read_events(
        http().get(format!("{events_url}?after=9")).send().unwrap(),
        until_last,
    );
    assert_eq!(journal_ids(&after), (10..=last).collect::<Vec<_>>());
    let both = read_events(
        http()
            .get(format!("{events_url}?after=2"))
            .header("Last-Event-ID", &(last - 1).to_string())
            .send()
            .unwrap(),
        until_last,
    );
    assert_eq!(journal_ids(&both), vec![last]);
    // Caught up: the summary follows at once, with the run's outcome.
    let summary = read_events(
        http()
            .get(&events_url)
            .header("Last-Event-ID", &last.to_string())
            .send()
            .unwrap(),
        |m| m.iter().any(|x| x.event == "summary"),
    );
    assert!(journal_ids(&summary).is_empty());
    let summary = data(summary.iter().find(|m| m.event == "summary").unwrap());
    assert_eq!(summary["outcome"], "failed");
    assert_eq!(summary["lastSeq"], last);
    assert_eq!(summary["criticalPath"]["agents"][0], "B");

    // Bad ids and unknown runs are refused.
    let bad = http()
        .get(&events_url)
        .header("Last-Event-ID", "abc")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("Last-Event-ID"));
    assert_eq!(
        http()
            .get(format!("{url}api/runs/nope/events"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http()
            .get(format!("{url}api/runs/..%2Fx/events"))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn a_live_run_streams_to_a_reconnecting_client_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let steps = |id: &str| {
        format!(
            "for p in 10 20 30 40 50 60 70 80 90; do echo \"[STATUS: PROGRESS-$p%] {id} at $p\"; sleep 0.15; done; echo '[STATUS: COMPLETE] done'"
        )
    };
    let plan = write_plan(
        dir.path(),
        serde_json::json!({
            "orchestrationId": "live",
            "waves": [
                {"waveId": "w1", "agents": [agent("A", &[], "5s", &steps("A")), agent("B", &[], "5s", &steps("B"))]},
                {"waveId": "w2", "agents": [agent("C", &["A", "B"], "5s", &steps("C"))]}
            ]
        }),
    );
    let runs = dir.path().join("runs");
    let mut command = Command::new(bin());
    command
        .args([
            "run",
            "--no-worktrees",
            "--dashboard",
            "127.0.0.1:0",
            "--plan",
        ])
        .arg(&plan)
        .arg("--run-dir")
        .arg(&runs)
        .env("CI", "1")
        .env_remove("LLMO_DASHBOARD_TOKEN");
    let mut run = Spawned::start(command);
    let url = run.url();

    // The history lists the live run.
    let history: serde_json::Value = http()
        .get(format!("{url}api/runs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let live = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["live"] == true)
        .expect("the live run is listed");
    let run_id = live["runId"].as_str().unwrap().to_string();
    let events_url = format!("{url}api/runs/{run_id}/events");

    // A first connection sees some events and drops.
    let first = read_events(http().get(&events_url).send().unwrap(), |m| {
        journal_ids(m).len() >= 6
    });
    let first_ids = journal_ids(&first);
    let last_seen = *first_ids.last().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // The reconnection resumes after the last id it saw, to the run's end.
    let second = read_events(
        http()
            .get(&events_url)
            .header("Last-Event-ID", &last_seen.to_string())
            .send()
            .unwrap(),
        |m| {
            m.iter()
                .any(|x| x.event == "journal" && data(x)["type"] == "RunFinished")
        },
    );
    let second_ids = journal_ids(&second);
    assert!(
        !second_ids.is_empty() && second_ids[0] == last_seen + 1,
        "{second_ids:?}"
    );
    let all: Vec<i64> = first_ids.iter().chain(&second_ids).copied().collect();
    let expected: Vec<i64> = (1..=*all.last().unwrap()).collect();
    assert_eq!(all, expected, "nothing missed, nothing repeated");
    let progress: Vec<i64> = second
        .iter()
        .filter(|m| m.event == "journal")
        .map(data)
        .filter(|d| d["type"] == "AgentStatus" && d["agent"] == "C")
        .map(|d| d["agents"][0]["progress"].as_i64().unwrap())
        .collect();
    assert!(
        progress.len() >= 9,
        "C's progress was streamed: {progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    assert_eq!(run.wait(Duration::from_secs(60)), 0, "{:?}", run.drain());
    assert_eq!(*all.last().unwrap(), last_seq_of(&only_run(&runs)));
}

#[test]
fn off_loopback_the_token_is_required_and_checked_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();

    // No token: refused before binding, with the reason (exit 2).
    for addr in ["0.0.0.0:0", "127.0.0.2:0"] {
        let out = Command::new(bin())
            .args(["serve", "--addr", addr, "--run-dir"])
            .arg(&runs)
            .env_remove("LLMO_DASHBOARD_TOKEN")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{addr}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--token"), "{stderr}");
    }
    let plan = write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "t", "waves": [{"waveId": "w", "agents": [
            agent("A", &[], "1m", "touch ran")]}]}),
    );
    let out = Command::new(bin())
        .args([
            "run",
            "--no-worktrees",
            "--dashboard",
            "0.0.0.0:0",
            "--plan",
        ])
        .arg(&plan)
        .arg("--run-dir")
        .arg(&runs)
        .env_remove("LLMO_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
    assert!(
        !dir.path().join("ran").exists(),
        "refused before the run started"
    );
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0);

    let token = "t0k3n-for-the-dashboard";
    let (mut server, url) = serve(&runs, &["--addr", "127.0.0.2:0", "--token", token]);
    assert!(url.starts_with("http://127.0.0.2:"), "{url}");
    let stderr = server.drain().join("\n");
    assert!(
        !stderr.contains(token),
        "the token is never printed: {stderr}"
    );
    let client = http();
    for path in ["", "api/runs", "api/runs/x/events", "nothing-here"] {
        let response = client.get(format!("{url}{path}")).send().unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert!(response.headers().contains_key("www-authenticate"));
        let wrong = client
            .get(format!("{url}{path}"))
            .bearer_auth("t0k3n-for-the-dashboarD")
            .send()
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let page = client.get(&url).bearer_auth(token).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("connect-src 'self'")
    );
    let runs_list = client
        .get(format!("{url}api/runs?token={token}"))
        .send()
        .unwrap();
    assert_eq!(runs_list.status(), 200);
    assert_eq!(runs_list.text().unwrap(), "[]");

    // On 127.0.0.1 without a token, a foreign Host (DNS rebinding) is refused.
    let (_plain, plain_url) = serve(&runs, &["--addr", "127.0.0.1:0"]);
    assert_eq!(client.get(&plain_url).send().unwrap().status(), 200);
    let rebound = client
        .get(&plain_url)
        .header("Host", "attacker.example")
        .send()
        .unwrap();
    assert_eq!(rebound.status(), 403);
}

#[test]
fn report_html_is_one_self_contained_file_with_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = finished_run(dir.path());
    let out = dir.path().join("report.html");
    let status = Command::new(bin())
        .args(["report", "--html"])
        .arg(&out)
        .arg(&run_dir)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no reference to any host"
    );
    for external in ["<link", "src=", "@import", "url("] {
        assert!(!html.contains(external), "no external resource: {external}");
    }
    assert!(html.contains("connect-src") || html.contains("default-src 'none'"));

    // The embedded data: a stable projection of it as a snapshot.
    let start = html
        .find(r#"<script id="llmo-data" type="application/json">"#)
        .unwrap();
    let rest = &html[start..];
    let json = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(data["mode"], "static");
    let run = &data["run"];
    let mut text = format!(
        "outcome: {}\ncounts: {}\ncritical path: {}\nwaves: {}\n",
        run["run"]["outcome"],
        run["run"]["counts"],
        run["run"]["criticalPath"]["agents"],
        run["run"]["waves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| format!(
                "{}={}",
                w["id"].as_str().unwrap(),
                w["state"].as_str().unwrap()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for agent in run["agents"].as_array().unwrap() {
        let markers: Vec<&str> = agent["statusHistory"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["marker"].as_str().unwrap())
            .collect();
        text.push_str(&format!(
            "\n{} [{}] {}% attempts={} markers={:?}\n  errors={}\n  impact={}\n  output={:?}\n",
            agent["id"].as_str().unwrap(),
            agent["status"].as_str().unwrap(),
            agent["progress"],
            agent["attempts"].as_array().unwrap().len(),
            markers,
            agent["errors"],
            agent["impact"],
            agent["outputTail"]
                .as_str()
                .unwrap()
                .lines()
                .filter(|l| l.starts_with('['))
                .collect::<Vec<_>>(),
        ));
    }
    insta::assert_snapshot!(text);
    assert_eq!(data["history"][0]["agents"], 4);

    // To standard output with `-`, and an unknown run is a usage error.
    let stdout = Command::new(bin())
        .args(["report", "--html", "-", "--run-dir"])
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(stdout.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&stdout.stdout).contains("llmo-data"));
    let missing = Command::new(bin())
        .args(["report", "nope", "--html", "x.html", "--run-dir"])
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run nope"));
}

#[test]
fn secret_values_an_agent_prints_are_redacted_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-test-0123456789abcdef";
    let plan = write_plan(
        dir.path(),
        serde_json::json!({"orchestrationId": "leak", "waves": [{"waveId": "w", "agents": [
            agent("A", &[], "1m", "echo \"[STATUS: PROGRESS-50%] key is $MY_API_KEY\"; echo \"raw $MY_API_KEY\"")]}]}),
    );
    let runs = dir.path().join("runs");
    let status = Command::new(bin())
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(&runs)
        .env("MY_API_KEY", secret)
        .env("CI", "1")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let run_dir = only_run(&runs);
    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        std::fs::read_to_string(run_dir.join("agents/A/output.log"))
            .unwrap()
            .contains(secret),
        "the log itself has it"
    );

    let mut command = Command::new(bin());
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--run-dir"])
        .arg(&runs)
        .env("MY_API_KEY", secret)
        .env_remove("LLMO_DASHBOARD_TOKEN");
    let mut server = Spawned::start(command);
    let url = server.url();
    let client = http();
    for path in [
        format!("api/runs/{run_id}"),
        format!("api/runs/{run_id}/agents/A/output"),
    ] {
        let body = client
            .get(format!("{url}{path}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(!body.contains(secret), "{path}: {body}");
        assert!(body.contains("[redacted]"), "{path}: {body}");
    }
    let events = read_events(
        client
            .get(format!("{url}api/runs/{run_id}/events"))
            .send()
            .unwrap(),
        |m| m.iter().any(|x| x.event == "summary"),
    );
    assert!(events.iter().all(|m| !m.data.contains(secret)));
    let out = dir.path().join("r.html");
    let status = Command::new(bin())
        .args(["report", "--html"])
        .arg(&out)
        .arg(&run_dir)
        .env("MY_API_KEY", secret)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains(secret) && html.contains("[redacted]"));
}

// ---- browser tests ---------------------------------------------------------

/// What the browser tests need, or why they cannot run.
struct Browser {
    node: PathBuf,
    modules: PathBuf,
    chromium: PathBuf,
}

fn browser() -> Option<Browser> {
    let chromium = std::env::var_os("LLMO_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let modules = std::env::var_os("LLMO_PLAYWRIGHT_MODULES")
        .map_or_else(|| root().join(".ci/browser/node_modules"), PathBuf::from);
    let node = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("node"))
            .find(|p| p.is_file())
    });
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!("Chromium at {}", chromium.display()));
    }
    if !modules.join("playwright-core/index.mjs").is_file() {
        missing.push(format!("playwright-core in {}", modules.display()));
    }
    if node.is_none() {
        missing.push("node on PATH".to_string());
    }
    if missing.is_empty() {
        return Some(Browser {
            node: node.unwrap_or_default(),
            modules,
            chromium,
        });
    }
    let message = format!(
        "browser test needs {} (bash .ci/run installs them)",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{message}");
    // Written to the real stderr (not captured by the test harness), so the
    // skip shows in the test output.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED: {message} !!!!!!!!\n"
    );
    None
}

fn artifacts() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().map_or(tmp.clone(), Path::to_path_buf);
    target.join("test-artifacts/dashboard")
}

/// Runs a browser script; panics with its output (and the server's stderr)
/// when it fails.
fn run_script(
    browser: &Browser,
    script: &str,
    env: &[(&str, String)],
    server: Option<&mut Spawned>,
) {
    let mut command = Command::new(&browser.node);
    command
        .arg(root().join("tests/browser").join(script))
        .env("LLMO_PLAYWRIGHT_MODULES", &browser.modules)
        .env("LLMO_CHROMIUM", &browser.chromium)
        .env("LLMO_ARTIFACTS", artifacts())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("node starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "{script} failed ({status}):\n{out}\n{err}\nserver stderr: {:?}",
        server.map(Spawned::drain)
    );
}

#[test]
fn browser_the_page_of_a_live_run_updates_without_reload() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    // Each agent waits (at most 2 minutes) for a file the browser script writes.
    let wait = |name: &str| {
        format!(
            "i=0; while [ ! -e \"$RELEASE/{name}\" ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 9; sleep 0.1; done"
        )
    };
    let plan = write_plan(
        dir.path(),
        serde_json::json!({
            "orchestrationId": "browser-live",
            "waves": [
                {"waveId": "build", "agents": [
                    agent("A", &[], "1m", &format!(
                        "echo '[STATUS: STARTED] up'; echo '[STATUS: PROGRESS-10%] ten'; {}; echo '[STATUS: PROGRESS-60%] sixty'; {}; echo '[STATUS: COMPLETE] done'",
                        wait("a1"), wait("a2"))),
                    agent("C", &[], "10s", "echo '[STATUS: PROGRESS-50%] half'; sleep 1; echo '[STATUS: COMPLETE] quick'"),
                ]},
                {"waveId": "ship", "agents": [
                    agent("B", &["A"], "30s", &format!(
                        "echo '[STATUS: PROGRESS-20%] twenty'; {}; echo '[STATUS: COMPLETE] shipped'", wait("b1"))),
                ]}
            ]
        }),
    );
    let mut command = Command::new(bin());
    command
        .args([
            "run",
            "--no-worktrees",
            "--dashboard",
            "127.0.0.1:0",
            "--plan",
        ])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .env("CI", "1")
        .env("RELEASE", &release)
        .env_remove("LLMO_DASHBOARD_TOKEN");
    let mut run = Spawned::start(command);
    let url = run.url();
    run_script(
        &browser,
        "live.mjs",
        &[
            ("DASHBOARD_URL", url),
            ("RELEASE_DIR", release.display().to_string()),
            ("AGENTS", "A,C,B".into()),
        ],
        Some(&mut run),
    );
    assert_eq!(run.wait(Duration::from_secs(60)), 0, "{:?}", run.drain());
}

#[test]
fn browser_a_request_without_the_token_is_refused_off_loopback() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    finished_run(dir.path());
    let token = "browser-token-123";
    let (mut server, url) = serve(
        &dir.path().join("runs"),
        &["--addr", "127.0.0.2:0", "--token", token],
    );
    run_script(
        &browser,
        "token.mjs",
        &[
            ("DASHBOARD_URL", url),
            ("DASHBOARD_TOKEN", token.to_string()),
            ("AGENTS", "A,B,C,D".into()),
        ],
        Some(&mut server),
    );
}

#[test]
fn browser_the_html_report_renders_from_a_file_without_a_network() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run_dir = finished_run(dir.path());
    let file = dir.path().join("report.html");
    let status = Command::new(bin())
        .args(["report", "--html"])
        .arg(&file)
        .arg(&run_dir)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    run_script(
        &browser,
        "report.mjs",
        &[
            ("REPORT_FILE", file.display().to_string()),
            ("AGENTS", "A,B,C,D".into()),
        ],
        None,
    );
}
