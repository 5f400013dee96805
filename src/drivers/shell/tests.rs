//! Tests of the shell driver with real child processes.
//!
//! Checks that processes are gone look at `/proc/<pid>/stat`: a process counts
//! as alive when it exists, is not a zombie, and is still in the agent's
//! process group (so a recycled pid cannot make a test fail). Zombies are
//! accepted: grandchildren are reparented to pid 1 when the group leader dies,
//! and pid 1 of a container does not always reap them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::drivers::{AgentOutput, AgentTask, Driver, DriverResult};
use crate::plan::{Agent, CommandSpec};
use crate::protocol::{ProtocolEvent, ReportedStatus};

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    fn agent_dir(&self) -> PathBuf {
        self.path().join("run/agents/A1")
    }

    fn log(&self) -> PathBuf {
        self.agent_dir().join(OUTPUT_LOG)
    }

    fn task(&self, command: Option<CommandSpec>) -> AgentTask {
        let mut agent: Agent = serde_json::from_value(serde_json::json!({
            "agentId": "A1",
            "workDescription": "do the thing",
        }))
        .unwrap();
        agent.command = command;
        AgentTask {
            run_id: "run-1".into(),
            agent,
            workdir: self.path().join("work"),
            run_dir: self.run_dir(),
            agent_dir: self.agent_dir(),
            prompt: String::new(),
            attempt: 1,
            retry_context: None,
            timeout: Some(Duration::from_secs(20)),
            stall_timeout: None,
            kill_grace: Duration::from_millis(300),
        }
    }
}

fn sh(script: &str) -> Option<CommandSpec> {
    Some(CommandSpec::Shell(script.into()))
}

fn argv(args: &[&str]) -> Option<CommandSpec> {
    Some(CommandSpec::Argv(
        args.iter().map(|a| a.to_string()).collect(),
    ))
}

struct Ran {
    result: DriverResult,
    outputs: Vec<AgentOutput>,
    elapsed: Duration,
}

impl Ran {
    fn statuses(&self) -> Vec<(ReportedStatus, String)> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                AgentOutput::Protocol(ProtocolEvent::Status { status, text }) => {
                    Some((*status, text.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn pid(&self) -> u32 {
        self.outputs
            .iter()
            .find_map(|o| match o {
                AgentOutput::Spawned { pid } => Some(*pid),
                _ => None,
            })
            .expect("a Spawned output")
    }
}

async fn run_with(task: AgentTask, cancel: CancellationToken) -> Ran {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let result = ShellDriver::new().run(task, tx, cancel).await;
    let elapsed = start.elapsed();
    let mut outputs = Vec::new();
    while let Ok(o) = rx.try_recv() {
        outputs.push(o);
    }
    Ran {
        result,
        outputs,
        elapsed,
    }
}

async fn run(task: AgentTask) -> Ran {
    run_with(task, CancellationToken::new()).await
}

fn failed(reason: &str) -> AgentOutcome {
    AgentOutcome::Failed {
        reason: reason.into(),
    }
}

/// True when `pid` exists, is not a zombie, and is in process group `pgid`.
fn alive_in_group(pid: u32, pgid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the parenthesised command: state ppid pgrp ...
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().copied().unwrap_or("");
    let pgrp: u32 = fields.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
    !matches!(state, "Z" | "X") && pgrp == pgid
}

/// Polls up to 3 s for every pid to be gone from the group.
async fn assert_gone(pids: &[u32], pgid: u32) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| alive_in_group(*p, pgid))
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still alive in group {pgid}: {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_pids(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn complete_marker_and_exit_zero_completes() {
    let f = Fixture::new();
    let ran = run(f.task(sh(
        "echo '[STATUS: STARTED] go'; echo '[STATUS: COMPLETE] all done'",
    )))
    .await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert_eq!(ran.result.exit_code, Some(0));
    assert_eq!(
        ran.statuses(),
        vec![
            (ReportedStatus::Started, "go".into()),
            (ReportedStatus::Complete, "all done".into())
        ]
    );
    assert!(matches!(ran.outputs[0], AgentOutput::Spawned { pid } if pid > 0));
    assert_eq!(
        ran.result.tail,
        "[STATUS: STARTED] go\n[STATUS: COMPLETE] all done\n"
    );
}

#[tokio::test]
async fn failed_marker_fails_even_with_exit_zero() {
    let f = Fixture::new();
    let ran = run(f.task(sh(
        "echo '[STATUS: COMPLETE] looks fine'; echo '[STATUS: FAILED] database down' >&2; exit 0",
    )))
    .await;
    assert_eq!(ran.result.outcome, failed("database down"));
    assert_eq!(ran.result.exit_code, Some(0));

    let ran = run(f.task(sh("echo '[STATUS: FAILED]'"))).await;
    assert_eq!(ran.result.outcome, failed("reported FAILED"));
}

#[tokio::test]
async fn non_zero_exit_fails_with_the_code() {
    let f = Fixture::new();
    let ran = run(f.task(sh("echo '[STATUS: COMPLETE] claimed'; exit 3"))).await;
    assert_eq!(ran.result.outcome, failed("exit code 3"));
    assert_eq!(ran.result.exit_code, Some(3));

    let ran = run(f.task(sh("echo '[FAILED] tests broke'; exit 4"))).await;
    assert_eq!(ran.result.outcome, failed("exit code 4: tests broke"));
    assert_eq!(ran.result.exit_code, Some(4));
}

#[tokio::test]
async fn killed_by_a_signal_fails_without_exit_code() {
    let f = Fixture::new();
    let ran = run(f.task(sh("kill -9 $$"))).await;
    assert_eq!(ran.result.outcome, failed("killed by signal 9"));
    assert_eq!(ran.result.exit_code, None);
}

#[tokio::test]
async fn exit_zero_without_marker_completes_with_warning() {
    let f = Fixture::new();
    let ran = run(f.task(argv(&["echo", "just some work"]))).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: true
        }
    );
    assert_eq!(ran.result.exit_code, Some(0));
    assert_eq!(ran.result.tail, "just some work\n");
}

#[tokio::test]
async fn environment_cwd_and_stdin() {
    let f = Fixture::new();
    let mut task = f.task(argv(&[
        "sh",
        "-c",
        r#"echo "[STATUS: COMPLETE] $LLMO_AGENT_ID $LLMO_ATTEMPT $LLMO_RETRY_CONTEXT"
echo "desc=$LLMO_WORK_DESCRIPTION"
echo "run=$LLMO_RUN_DIR"
echo "extra=$EXTRA_VAR"
echo "pwd=$(pwd -P)"
cat; echo "stdin=eof""#,
    ]));
    task.attempt = 2;
    task.retry_context = Some("previous attempt: exit code 1".into());
    task.agent
        .env
        .insert("EXTRA_VAR".into(), "from plan".into());
    let ran = run(task).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert_eq!(
        ran.statuses(),
        vec![(
            ReportedStatus::Complete,
            "A1 2 previous attempt: exit code 1".into()
        )]
    );
    let workdir = f.path().join("work").canonicalize().unwrap();
    let expected = format!(
        "[STATUS: COMPLETE] A1 2 previous attempt: exit code 1\ndesc=do the thing\nrun={}\nextra=from plan\npwd={}\nstdin=eof\n",
        f.run_dir().display(),
        workdir.display()
    );
    assert_eq!(ran.result.tail, expected);
}

#[tokio::test]
async fn retry_context_is_empty_when_none() {
    let f = Fixture::new();
    let ran = run(f.task(sh(r#"echo "rc=[${LLMO_RETRY_CONTEXT-unset}]""#))).await;
    assert_eq!(ran.result.tail, "rc=[]\n");
}

#[tokio::test]
async fn argv_is_passed_literally() {
    let f = Fixture::new();
    let ran = run(f.task(argv(&[
        "printf",
        "%s|",
        "a b",
        "it's",
        "\"q\"",
        "$HOME",
        "; echo injected",
        "*",
        "`id`",
    ])))
    .await;
    assert_eq!(ran.result.exit_code, Some(0));
    assert_eq!(
        ran.result.tail,
        "a b|it's|\"q\"|$HOME|; echo injected|*|`id`|"
    );
}

#[tokio::test]
async fn no_command_fails_immediately() {
    let f = Fixture::new();
    let ran = run(f.task(None)).await;
    assert_eq!(
        ran.result.outcome,
        failed("agent A1 has no command (the shell driver needs one)")
    );
    assert!(ran.outputs.is_empty());
    assert!(ran.elapsed < Duration::from_millis(500));

    let ran = run(f.task(Some(CommandSpec::Argv(vec![])))).await;
    assert_eq!(ran.result.outcome, failed("agent A1 has an empty command"));
}

#[tokio::test]
async fn missing_workdir_fails_clearly() {
    let f = Fixture::new();
    let mut task = f.task(argv(&["true"]));
    task.workdir = f.path().join("nope");
    let ran = run(task).await;
    let AgentOutcome::Failed { reason } = ran.result.outcome else {
        panic!("expected a failure, got {:?}", ran.result.outcome);
    };
    assert_eq!(
        reason,
        format!(
            "working directory {} of agent A1 does not exist",
            f.path().join("nope").display()
        )
    );
    assert!(ran.outputs.is_empty());
}

#[tokio::test]
async fn unknown_program_fails_to_start() {
    let f = Fixture::new();
    let ran = run(f.task(argv(&["/nonexistent/agent-program", "x"]))).await;
    let AgentOutcome::Failed { reason } = &ran.result.outcome else {
        panic!("expected a failure, got {:?}", ran.result.outcome);
    };
    assert!(
        reason.starts_with("cannot start `/nonexistent/agent-program x`:"),
        "{reason}"
    );
    let log = std::fs::read_to_string(f.log()).unwrap();
    assert!(log.contains("cannot start"), "{log}");
}

#[tokio::test]
async fn output_log_appends_attempts_with_headers() {
    let f = Fixture::new();
    // The pause keeps the unterminated last line after stderr's line in the log.
    let mut task = f.task(sh("echo out; echo err >&2; sleep 0.3; printf 'no newline'"));
    run(task.clone()).await;
    task.attempt = 2;
    task.agent.command = argv(&["echo", "second try"]);
    run(task).await;
    let log = std::fs::read_to_string(f.log()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[0],
        "==> attempt 1: echo out; echo err >&2; sleep 0.3; printf 'no newline' <=="
    );
    // stdout and stderr both land in the log (their relative order is not fixed).
    let mut middle = lines[1..3].to_vec();
    middle.sort_unstable();
    assert_eq!(middle, ["err", "out"]);
    assert_eq!(lines[3], "no newline");
    assert_eq!(lines[4], "==> attempt 2: echo 'second try' <==");
    assert_eq!(lines[5], "second try");
    assert_eq!(lines.len(), 6);
}

#[tokio::test]
async fn a_silent_attempt_leaves_no_log() {
    let f = Fixture::new();
    let ran = run(f.task(argv(&["true"]))).await;
    assert!(ran.result.outcome.is_success(), "{:?}", ran.result);
    assert!(
        !f.agent_dir().exists(),
        "no folder or log for an agent that printed nothing"
    );
}

#[tokio::test]
async fn an_unwritable_log_does_not_stop_the_agent_and_is_reported() {
    let f = Fixture::new();
    // The agent's folder is a file: the log cannot be created.
    std::fs::create_dir_all(f.agent_dir().parent().unwrap()).unwrap();
    std::fs::write(f.agent_dir(), "in the way").unwrap();
    let ran = run(f.task(sh("echo '[STATUS: PROGRESS-50%] half'; echo '[COMPLETE]'"))).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert_eq!(ran.statuses()[0].0, ReportedStatus::Progress(50));
    assert!(
        ran.result.tail.contains("(output log"),
        "{}",
        ran.result.tail
    );
}

#[tokio::test]
async fn tail_is_bounded_to_the_last_lines() {
    let f = Fixture::new();
    let ran = run(f.task(argv(&["seq", "1", "100000"]))).await;
    let tail = &ran.result.tail;
    assert_eq!(tail.lines().count(), TAIL_LINES);
    assert!(tail.starts_with("99951\n"), "{tail}");
    assert!(tail.ends_with("100000\n"));
}

#[tokio::test]
async fn tail_keeps_only_the_last_bytes_of_long_lines() {
    let mut tail = Tail::default();
    tail.push(&vec![b'a'; 40_000]);
    tail.push(b"bc");
    assert_eq!(tail.bytes.len(), TAIL_BYTES);
    let text = tail.render();
    assert!(text.ends_with("abc"));
    assert_eq!(text.len(), TAIL_BYTES);
}

#[tokio::test]
async fn ansi_colours_and_invalid_utf8() {
    let f = Fixture::new();
    let ran = run(f.task(sh(
        r"printf '\033[32m[STATUS: PROGRESS-50%%]\033[0m half \377\n[STATUS: COMPLETE] ok\n'",
    )))
    .await;
    let statuses = ran.statuses();
    assert!(
        statuses
            .iter()
            .any(|(s, _)| *s == ReportedStatus::Progress(50)),
        "{statuses:?}"
    );
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert!(ran.result.tail.contains('\u{FFFD}'), "{}", ran.result.tail);
}

#[tokio::test]
async fn timeout_kills_the_whole_group_even_when_it_ignores_sigterm() {
    let f = Fixture::new();
    let dir = f.path().display().to_string();
    let script = r#"trap '' TERM
echo $$ >> "$1/pids"
sh -c 'echo $$ >> "$1/pids"; exec sleep 1000' x "$1" &
sh -c 'trap "" TERM; echo $$ >> "$1/pids"; exec sleep 1000' x "$1" &
sleep 1000 &
echo $! >> "$1/pids"
echo '[STATUS: STARTED] waiting'
wait
sleep 1000"#;
    let mut task = f.task(argv(&["sh", "-c", script, "x", &dir]));
    task.timeout = Some(Duration::from_secs(1));
    task.kill_grace = Duration::from_millis(300);
    let ran = run(task).await;
    assert_eq!(ran.result.outcome, AgentOutcome::TimedOut);
    assert_eq!(ran.result.exit_code, None);
    // Nothing answered SIGTERM, so the driver waited the whole grace.
    assert!(
        ran.elapsed >= Duration::from_millis(1250),
        "{:?}",
        ran.elapsed
    );
    assert!(ran.elapsed < Duration::from_secs(4), "{:?}", ran.elapsed);
    let pids = read_pids(&f.path().join("pids"));
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert_eq!(pids[0], ran.pid());
    assert_gone(&pids, ran.pid()).await;
}

/// An agent that answers SIGTERM by writing more than a pipe holds: its
/// output is read during the grace, so it finishes writing and exits by
/// itself instead of blocking on a full pipe until the SIGKILL.
#[tokio::test]
async fn output_written_while_stopping_is_read_during_the_grace() {
    let f = Fixture::new();
    let script = r#"trap 'head -c 300000 /dev/zero | tr "\0" x; echo; echo stopped-cleanly; exit 0' TERM
echo '[STATUS: STARTED] waiting'
while :; do sleep 0.05; done"#;
    let mut task = f.task(sh(script));
    task.timeout = Some(Duration::from_millis(500));
    task.kill_grace = Duration::from_secs(10);
    let ran = run(task).await;
    assert_eq!(ran.result.outcome, AgentOutcome::TimedOut);
    assert!(ran.elapsed < Duration::from_secs(5), "{:?}", ran.elapsed);
    let log = std::fs::read_to_string(f.log()).unwrap();
    assert!(
        log.contains("stopped-cleanly"),
        "{}",
        &log[log.len() - 200..]
    );
}

#[tokio::test]
async fn stall_watchdog_stops_a_silent_agent() {
    let f = Fixture::new();
    let mut task = f.task(argv(&["sleep", "30"]));
    task.stall_timeout = Some(Duration::from_millis(500));
    let ran = run(task).await;
    assert_eq!(ran.result.outcome, AgentOutcome::Stalled);
    assert!(ran.elapsed >= Duration::from_millis(500));
    assert!(ran.elapsed < Duration::from_secs(2), "{:?}", ran.elapsed);
    assert_gone(&[ran.pid()], ran.pid()).await;
}

#[tokio::test]
async fn output_on_either_pipe_resets_the_stall_watchdog() {
    let f = Fixture::new();
    let mut task = f.task(sh(
        "for i in 1 2 3; do echo out $i; sleep 0.2; echo err $i >&2; sleep 0.2; done; echo '[COMPLETE]'",
    ));
    task.stall_timeout = Some(Duration::from_millis(500));
    let ran = run(task).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert!(ran.elapsed >= Duration::from_millis(1200));
}

#[tokio::test]
async fn cancel_stops_the_agent() {
    let f = Fixture::new();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let ran = run_with(f.task(argv(&["sleep", "30"])), cancel).await;
    assert_eq!(ran.result.outcome, AgentOutcome::Cancelled);
    assert_eq!(ran.result.exit_code, None);
    assert!(ran.elapsed >= Duration::from_millis(200));
    assert!(ran.elapsed < Duration::from_secs(1), "{:?}", ran.elapsed);
    assert_gone(&[ran.pid()], ran.pid()).await;
}

#[tokio::test]
async fn background_child_holding_the_pipes_is_killed_after_the_grace() {
    let f = Fixture::new();
    let mut task = f.task(sh(
        r#"sleep 1000 & echo $! > "$LLMO_RUN_DIR/bg"; echo '[STATUS: COMPLETE] done'"#,
    ));
    task.kill_grace = Duration::from_millis(300);
    let ran = run(task).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert_eq!(ran.result.exit_code, Some(0));
    assert!(ran.elapsed >= Duration::from_millis(300));
    assert!(ran.elapsed < Duration::from_secs(2), "{:?}", ran.elapsed);
    assert_gone(&read_pids(&f.run_dir().join("bg")), ran.pid()).await;
}

#[tokio::test]
async fn background_child_without_the_pipes_is_swept() {
    let f = Fixture::new();
    let mut task = f.task(sh(
        r#"sleep 1000 >/dev/null 2>&1 & echo $! > "$LLMO_RUN_DIR/bg"; echo '[COMPLETE]'"#,
    ));
    task.kill_grace = Duration::from_secs(5);
    let ran = run(task).await;
    assert!(ran.result.outcome.is_success());
    // The pipes closed with the leader: no need to wait for the grace.
    assert!(ran.elapsed < Duration::from_secs(2), "{:?}", ran.elapsed);
    assert_gone(&read_pids(&f.run_dir().join("bg")), ran.pid()).await;
}

#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let f = Fixture::new();
    let task = f.task(sh(
        r#"sleep 1000 & echo $! > "$LLMO_RUN_DIR/bg"; echo started; sleep 1000"#,
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = ShellDriver::new().run(task, tx, CancellationToken::new());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fut)
            .await
            .is_err()
    );
    let Some(AgentOutput::Spawned { pid }) = rx.recv().await else {
        panic!("expected Spawned first");
    };
    let bg = read_pids(&f.run_dir().join("bg"));
    assert_gone(&[pid, bg[0]], pid).await;
}

/// Peak resident set size of this process, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs `yes <line> | head -c 1GiB` and checks the result, the log and the
/// growth of this process's peak RSS (shared with concurrently running tests,
/// hence the generous 64 MiB bound).
async fn one_gibibyte_of(line: &str) {
    const GIB: u64 = 1 << 30;
    // The marker must start a line of its own.
    assert_eq!(GIB % (line.len() as u64 + 1), 0, "{line:?}");
    let f = Fixture::new();
    let before = vm_hwm_kib();
    let mut task = f.task(argv(&[
        "sh",
        "-c",
        r#"yes "$1" | head -c 1073741824; echo "[STATUS: COMPLETE] done""#,
        "x",
        line,
    ]));
    task.timeout = Some(Duration::from_secs(300));
    let ran = run(task).await;
    let after = vm_hwm_kib();
    let log_len = std::fs::metadata(f.log()).map(|m| m.len());
    let _ = std::fs::remove_file(f.log());
    eprintln!(
        "1 GiB of {line:?}: {:?}, VmHWM {before} -> {after} KiB",
        ran.elapsed
    );
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        },
        "tail: {}",
        ran.result.tail
    );
    assert!(ran.result.tail.len() < 64 * 1024);
    assert_eq!(ran.result.tail.lines().count(), TAIL_LINES);
    assert!(ran.result.tail.ends_with("[STATUS: COMPLETE] done\n"));
    let log_len = log_len.unwrap();
    assert!(log_len >= GIB, "{log_len}");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}

// The same check for plain lines runs end to end in tests/memory.rs, in a
// process of its own (peak RSS is per process, and the unit tests share one).

/// Every line starts with `[`, so the parser looks at each one: ~3 s in a
/// release build but ~50 s in a debug build on a 2-core machine, hence ignored
/// (run it with `cargo test --release -- --ignored`).
#[tokio::test]
#[ignore = "about 50 s in a debug build; run with --release -- --ignored"]
async fn one_gibibyte_of_bracketed_output_keeps_memory_bounded() {
    one_gibibyte_of("[INFO] some log line with words").await;
}

#[tokio::test]
async fn a_remembered_program_removed_between_two_agents_is_looked_up_again() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let (a, b) = (fx.path().join("a"), fx.path().join("b"));
    for (folder, word) in [(&a, "from-a"), (&b, "from-b")] {
        std::fs::create_dir_all(folder).unwrap();
        let tool = folder.join("llmo-test-tool");
        std::fs::write(&tool, format!("#!/bin/sh\necho {word}\n")).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}:/usr/bin:/bin", a.display(), b.display());
    let task = || {
        let mut task = fx.task(argv(&["llmo-test-tool"]));
        task.agent.env.insert("PATH".into(), path.clone());
        task
    };
    let first = run(task()).await;
    assert!(matches!(
        first.result.outcome,
        AgentOutcome::Completed { .. }
    ));
    assert!(
        std::fs::read_to_string(fx.log())
            .unwrap()
            .contains("from-a")
    );
    std::fs::remove_file(a.join("llmo-test-tool")).unwrap();
    let second = run(task()).await;
    assert!(
        matches!(second.result.outcome, AgentOutcome::Completed { .. }),
        "{:?}",
        second.result.outcome
    );
    assert!(
        std::fs::read_to_string(fx.log())
            .unwrap()
            .contains("from-b")
    );
}
