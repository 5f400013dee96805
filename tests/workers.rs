//! Workers on several processes coordinated through PostgreSQL: real
//! coordinator and worker processes against a real server.
//!
//! They need `LLMO_TEST_PG_URL` (a role that may create databases; `.ci/run`
//! starts a server and sets it). Without it they are skipped with a loud
//! message, except under CI (`CI` set), where they fail.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Row;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_llm-orchestrate"))
}

/// A fresh database for one test, on the server of `LLMO_TEST_PG_URL`.
fn test_database(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("LLMO_TEST_PG_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("LLMO_TEST_PG_URL is not set under CI: the PostgreSQL worker tests cannot run");
        }
        eprintln!(
            "\n*** SKIPPED {name}: set LLMO_TEST_PG_URL=postgres://USER:PASSWORD@HOST:PORT/DB to run the PostgreSQL worker tests ***\n"
        );
        return None;
    };
    let db = format!("llmo_t_{name}_{}", std::process::id());
    let rt = runtime();
    rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .expect("connect to LLMO_TEST_PG_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&pool)
        .await
        .expect("drop the old test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&pool)
            .await
            .expect("create a test database");
        pool.close().await;
    });
    let mut url = reqwest::Url::parse(&base).expect("LLMO_TEST_PG_URL is a URL");
    url.set_path(&format!("/{db}"));
    Some(url.to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a query on the test database and returns its rows as text columns.
fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    runtime().block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<String, _>(i).unwrap_or_default())
                    .collect()
            })
            .collect()
    })
}

fn write_plan(dir: &Path, agents: Vec<serde_json::Value>) -> PathBuf {
    let path = dir.join("plan.json");
    let plan = serde_json::json!({
        "orchestrationId": "workers",
        "executionMode": "waves",
        "waves": [{"waveId": "w1", "agents": agents}],
    });
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    path
}

fn shell_agent(id: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "agentId": id,
        "workDescription": format!("work of {id}"),
        "estimatedDuration": "1m",
        "dependencies": [],
        "maxRetries": 0,
        "command": ["sh", "-c", script],
    })
}

/// A child process killed (SIGKILL) when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits for the exit code, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, name: &str, args: &[&str]) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("LEDGER", dir.join("ledger"))
        .env("STARTED", dir.join("started"))
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Proc { child, log }
}

fn worker(dir: &Path, url: &str, id: &str, capacity: &str) -> Proc {
    let workdir = dir.join(id);
    spawn(
        dir,
        id,
        &[
            "worker",
            "--store",
            url,
            "--id",
            id,
            "--capacity",
            capacity,
            "--lease",
            "2s",
            "--heartbeat",
            "500ms",
            "--workdir",
            workdir.to_str().unwrap(),
        ],
    )
}

fn coordinator(dir: &Path, url: &str, plan: &Path, concurrency: &str) -> Proc {
    spawn(
        dir,
        "coordinator",
        &[
            "run",
            "--plan",
            plan.to_str().unwrap(),
            "--store",
            url,
            "--workers-only",
            "--concurrency",
            concurrency,
            "--run-dir",
            dir.join("runs").to_str().unwrap(),
        ],
    )
}

fn ledger(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ledger"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LEDGER_LINE: &str = "echo \"$LLMO_AGENT_ID $LLMO_ATTEMPT\" >> \"$LEDGER\"";

#[test]
fn three_workers_run_a_300_agent_plan_with_each_agent_run_exactly_once() {
    let Some(url) = test_database("three") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = format!("echo '[STATUS: STARTED]'; {LEDGER_LINE}; echo '[STATUS: COMPLETE] ok'");
    let agents = (0..300)
        .map(|i| shell_agent(&format!("a{i:03}"), &script))
        .collect();
    let plan = write_plan(dir.path(), agents);
    let workers: Vec<Proc> = (1..=3)
        .map(|i| worker(dir.path(), &url, &format!("w{i}"), "4"))
        .collect();
    let mut coord = coordinator(dir.path(), &url, &plan, "300");
    let code = coord.wait(Duration::from_secs(240));
    assert_eq!(code, Some(0), "coordinator:\n{}", coord.log());
    let mut lines = ledger(dir.path());
    assert_eq!(lines.len(), 300, "one run per agent");
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 300, "no agent ran twice");
    assert!(
        lines.iter().all(|l| l.ends_with(" 1")),
        "all first attempts"
    );
    let per_worker = query(
        &url,
        "SELECT worker, count(*)::text FROM claims WHERE ending = 'finished' GROUP BY worker",
    );
    let total: usize = per_worker
        .iter()
        .map(|r| r[1].parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, 300, "{per_worker:?}");
    assert!(per_worker.len() >= 2, "the work was shared: {per_worker:?}");
    let finished = query(
        &url,
        "SELECT count(*)::text FROM events WHERE kind = 'AgentFinished'",
    );
    assert_eq!(finished[0][0], "300");
    drop(workers);
}

#[test]
fn a_worker_killed_mid_agent_has_its_agent_finished_by_another_exactly_once() {
    let Some(url) = test_database("killed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "echo \"$LLMO_ATTEMPT\" >> \"$STARTED\"; sleep 3; {LEDGER_LINE}; echo '[STATUS: COMPLETE] ok'"
    );
    let plan = write_plan(dir.path(), vec![shell_agent("slow", &script)]);
    let mut coord = coordinator(dir.path(), &url, &plan, "4");
    let first = worker(dir.path(), &url, "doomed", "1");
    wait_for(
        "the agent to start on the first worker",
        Duration::from_secs(30),
        || dir.path().join("started").exists(),
    );
    first.signal(libc::SIGKILL);
    let _second = worker(dir.path(), &url, "rescuer", "1");
    let code = coord.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "coordinator:\n{}", coord.log());
    assert_eq!(
        ledger(dir.path()),
        vec!["slow 2".to_string()],
        "the killed attempt never finished; the re-queued one ran once"
    );
    let claims = query(
        &url,
        "SELECT attempt::text, worker, COALESCE(ending, '') FROM claims ORDER BY attempt",
    );
    assert_eq!(
        claims,
        vec![
            vec!["1".to_string(), "doomed".into(), "lost".into()],
            vec!["2".to_string(), "rescuer".into(), "finished".into()],
        ]
    );
    let journaled = query(
        &url,
        "SELECT body->>'worker', body->>'claim' FROM events WHERE kind = 'AgentClaimed' ORDER BY seq",
    );
    assert_eq!(
        journaled.last(),
        Some(&vec!["rescuer".to_string(), "2".to_string()])
    );
    let finished = query(
        &url,
        "SELECT count(*)::text FROM events WHERE kind = 'AgentFinished'",
    );
    assert_eq!(finished[0][0], "1");
}

#[test]
fn a_worker_stopped_past_its_lease_is_fenced_and_its_late_result_rejected() {
    let Some(url) = test_database("fenced") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Attempt 1 fails: were its late result applied, the run would fail
    // (no retries).
    let script = format!(
        "echo \"$LLMO_ATTEMPT\" >> \"$STARTED\"; sleep 3; {LEDGER_LINE}; \
         if [ \"$LLMO_ATTEMPT\" = 1 ]; then echo '[STATUS: FAILED] stale'; exit 7; fi; \
         echo '[STATUS: COMPLETE] ok'"
    );
    let plan = write_plan(dir.path(), vec![shell_agent("part", &script)]);
    let mut coord = coordinator(dir.path(), &url, &plan, "4");
    let mut stopped = worker(dir.path(), &url, "partitioned", "1");
    wait_for(
        "the agent to start on the first worker",
        Duration::from_secs(30),
        || dir.path().join("started").exists(),
    );
    stopped.signal(libc::SIGSTOP);
    let _other = worker(dir.path(), &url, "healthy", "1");
    wait_for(
        "the first attempt's agent to finish during the partition",
        Duration::from_secs(30),
        || ledger(dir.path()).contains(&"part 1".to_string()),
    );
    wait_for(
        "the second worker to take the agent over",
        Duration::from_secs(30),
        || !query(&url, "SELECT 1::text FROM claims WHERE attempt = 2").is_empty(),
    );
    stopped.signal(libc::SIGCONT);
    let code = coord.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "coordinator:\n{}", coord.log());
    wait_for(
        "the stopped worker to try its late result",
        Duration::from_secs(20),
        || stopped.log().contains("rejected"),
    );
    let mut lines = ledger(dir.path());
    lines.sort();
    assert_eq!(lines, vec!["part 1".to_string(), "part 2".to_string()]);
    let claims = query(
        &url,
        "SELECT attempt::text, worker, COALESCE(ending, '') FROM claims ORDER BY attempt",
    );
    assert_eq!(
        claims,
        vec![
            vec!["1".to_string(), "partitioned".into(), "rejected".into()],
            vec!["2".to_string(), "healthy".into(), "finished".into()],
        ]
    );
    let finished = query(
        &url,
        "SELECT body->'outcome'->>'kind' FROM events WHERE kind = 'AgentFinished'",
    );
    assert_eq!(
        finished,
        vec![vec!["completed".to_string()]],
        "finished once, by the healthy worker"
    );
    let status = Command::new(bin())
        .args(["status", "--store", &url, "--json"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["agentStatus"][0]["status"], "COMPLETE", "{json}");
    let _ = stopped.wait(Duration::from_millis(10));
}
