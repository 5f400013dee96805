//! The `shell` driver: runs an agent's `command` as a local child process.
//!
//! # What it runs
//!
//! The agent's [`CommandSpec`]: an argv array is executed directly (never
//! through a shell, so spaces, quotes and `$` in plan text stay literal); a
//! string is run with `sh -c`. The driver never builds a shell string itself.
//! The process runs in [`AgentTask::workdir`] with stdin on `/dev/null` and the
//! orchestrator's environment plus the agent's `env` plus `LLMO_AGENT_ID`,
//! `LLMO_WORK_DESCRIPTION`, `LLMO_ATTEMPT`, `LLMO_RETRY_CONTEXT` (empty when
//! there is none) and `LLMO_RUN_DIR`.
//!
//! # Output
//!
//! stdout and stderr share one pipe (as with `2>&1`, so the log shows them
//! interleaved as written), read by one task in reads of up to 64 KiB. Every
//! chunk is appended to `<agent_dir>/output.log` (after a `==> attempt N:
//! <command> <==` header line; the folder, the file and the header are
//! written when the attempt's first output arrives, so a silent attempt
//! leaves no trace there), fed to a [`MarkerParser`] (events
//! are sent as [`AgentOutput::Protocol`] as they are parsed), and pushed into a
//! bounded tail (the last 16 KiB; the result keeps at most its last 50 lines).
//! Memory stays bounded whatever the agent prints: the log is written by one
//! blocking writer fed through a bounded queue, so a slow disk slows the
//! readers down instead of buffering output.
//!
//! # Ending an attempt
//!
//! The command is the leader of its own process group. The attempt ends when
//!
//! - the leader exits: the driver then waits for the pipe to reach end of
//!   file, at most [`AgentTask::kill_grace`] (a background grandchild may keep
//!   it open), and stops reading after that;
//! - [`AgentTask::timeout`] elapses ([`AgentOutcome::TimedOut`]);
//! - no output arrives for [`AgentTask::stall_timeout`]
//!   ([`AgentOutcome::Stalled`]);
//! - `cancel` fires ([`AgentOutcome::Cancelled`]).
//!
//! In the last three cases the driver sends SIGTERM to the whole group, waits
//! up to `kill_grace` for the leader to exit and the pipe to close, then sends
//! SIGKILL to the group and reaps the leader. In every case the group gets a
//! final SIGKILL once the attempt is over, so no process left in it (a
//! grandchild that ignores SIGTERM, a background job that closed its output)
//! outlives the attempt. If the driver's future is dropped before it finishes,
//! a guard sends SIGKILL to the group. Processes that leave the group on
//! purpose (`setsid`, `setpgid`) are out of reach of all of this.
//!
//! # Reconciling markers with the exit status
//!
//! | the process                    | markers seen       | outcome                                            |
//! |--------------------------------|--------------------|----------------------------------------------------|
//! | exited 0                       | a FAILED marker    | `Failed { reason: <its text> }` (or `reported FAILED`) |
//! | exited 0                       | COMPLETE, no FAILED| `Completed { without_marker: false }`              |
//! | exited 0                       | no COMPLETE        | `Completed { without_marker: true }` (a warning)   |
//! | exited with N ≠ 0              | any                | `Failed { reason: "exit code N" }`, plus `: <text>` of the last FAILED marker |
//! | was killed by signal S (not by the driver) | any    | `Failed { reason: "killed by signal S" }`, plus `: <text>` as above |
//! | was killed by the driver       | any                | `TimedOut`, `Stalled` or `Cancelled`               |
//!
//! A FAILED marker always wins over COMPLETE; the last FAILED marker's text is
//! the one reported. [`DriverResult::exit_code`] is set only when the process
//! exited by itself with a code.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::{AgentOutput, AgentTask, Driver, DriverResult, StatusVerdict};
use crate::journal::AgentOutcome;
use crate::plan::CommandSpec;
use crate::protocol::{MarkerParser, ProtocolEvent};

/// Size of one read from a pipe.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Bytes of combined output kept in memory for the tail.
const TAIL_BYTES: usize = 16 * 1024;
/// Most lines in [`DriverResult::tail`].
const TAIL_LINES: usize = 50;
/// Chunks queued for the log writer before the readers wait for it.
const LOG_QUEUE_CHUNKS: usize = 16;
/// After the final SIGKILL, how long the readers may still drain the pipes.
const POST_KILL_DRAIN: Duration = Duration::from_millis(250);
/// After SIGKILL, how long to wait for the leader to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);
/// Name of the output log in the agent's directory.
pub const OUTPUT_LOG: &str = "output.log";

/// `SIGTERM` (15 on every Linux architecture).
pub(crate) const SIGTERM: i32 = 15;
/// `SIGKILL` (9 everywhere).
pub(crate) const SIGKILL: i32 = 9;

/// Runs agents as local commands (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellDriver;

impl ShellDriver {
    /// A shell driver.
    pub fn new() -> Self {
        Self
    }
}

impl Driver for ShellDriver {
    fn run(
        &self,
        task: AgentTask,
        output: mpsc::UnboundedSender<AgentOutput>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult> {
        Box::pin(run_attempt(task, output, cancel))
    }

    fn uses_prompt(&self) -> bool {
        false
    }
}

/// An attempt that ends before a process runs.
fn failed_early(reason: String) -> DriverResult {
    DriverResult {
        outcome: AgentOutcome::Failed { reason },
        exit_code: None,
        tail: String::new(),
    }
}

/// Why the driver stopped the process.
#[derive(Debug, Clone, Copy)]
enum Stop {
    TimedOut,
    Stalled,
    Cancelled,
}

/// What the readers saw, shared between them.
#[derive(Default)]
struct Observed {
    tail: Tail,
    verdict: StatusVerdict,
}

fn lock(observed: &Mutex<Observed>) -> MutexGuard<'_, Observed> {
    observed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The last [`TAIL_BYTES`] bytes of output.
#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_BYTES {
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - TAIL_BYTES..]);
            return;
        }
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    /// The tail as text: lossy UTF-8, at most [`TAIL_LINES`] lines.
    fn render(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let text = String::from_utf8_lossy(&bytes);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let start = body
            .rmatch_indices('\n')
            .nth(TAIL_LINES - 1)
            .map_or(0, |(i, _)| i + 1);
        text[start..].to_string()
    }
}

/// Kills the process group with SIGKILL when dropped while armed, so nothing
/// survives when the driver's future is dropped mid-attempt.
/// Shared with the agent loop's `run_command`.
pub(crate) struct GroupGuard {
    pub(crate) child: Box<dyn ChildWrapper>,
    /// While true, dropping the guard kills the group.
    pub(crate) armed: bool,
    /// The group id registered with the [`super::janitor`], unregistered on drop.
    registered: Option<u32>,
}

impl GroupGuard {
    /// Guards a freshly spawned group leader and registers its group with the janitor.
    pub(crate) fn new(child: Box<dyn ChildWrapper>) -> Self {
        let registered = child.id();
        if let Some(pid) = registered {
            // The janitor kills this group if the orchestrator dies without cleaning up.
            super::janitor::register(pid);
        }
        Self {
            child,
            armed: true,
            registered,
        }
    }

    /// Sends `signal` to the whole group; errors (the group is gone) are ignored.
    pub(crate) fn signal_group(&self, signal: i32) {
        let _ = self.child.signal(signal);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.signal_group(SIGKILL);
        }
        if let Some(pgid) = self.registered.take() {
            super::janitor::unregister(pgid);
        }
    }
}

async fn run_attempt(
    task: AgentTask,
    output: mpsc::UnboundedSender<AgentOutput>,
    cancel: CancellationToken,
) -> DriverResult {
    let agent_id = task.agent.agent_id.clone();
    let Some(command) = task.agent.command.clone() else {
        return failed_early(format!(
            "agent {agent_id} has no command (the shell driver needs one)"
        ));
    };
    let (program, args) = match &command {
        CommandSpec::Shell(script) => ("sh".to_string(), vec!["-c".to_string(), script.clone()]),
        CommandSpec::Argv(argv) => match argv.split_first() {
            Some((program, args)) if !program.is_empty() => (program.clone(), args.to_vec()),
            _ => {
                return failed_early(format!("agent {agent_id} has an empty command"));
            }
        },
    };
    match std::fs::metadata(&task.workdir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return failed_early(format!(
                "working directory {} of agent {agent_id} is not a directory",
                task.workdir.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return failed_early(format!(
                "working directory {} of agent {agent_id} does not exist",
                task.workdir.display()
            ));
        }
        Err(e) => {
            return failed_early(format!(
                "working directory {} of agent {agent_id} is not usable: {e}",
                task.workdir.display()
            ));
        }
    }

    let display = command.display();
    let header = format!("==> attempt {}: {display} <==\n", task.attempt);
    let log_path = task.agent_dir.join(OUTPUT_LOG);
    // The log (and the agent's folder) is created when there is something to
    // write: an agent that prints nothing leaves no empty log behind and costs
    // no file-system work.
    let log = Arc::new(LogSink::new(task.agent_dir.clone(), header));

    // stdout and stderr share one pipe, as with `2>&1`: one reader, and the
    // log shows the two streams interleaved as the agent wrote them.
    let (pipe_reader, pipe_writer) = match output_pipe() {
        Ok(pipe) => pipe,
        Err(e) => return failed_early(format!("cannot create the output pipe: {e}")),
    };
    let mut wrap = CommandWrap::with_new(&program, |c| {
        c.args(&args)
            .current_dir(&task.workdir)
            .envs(&task.agent.env)
            .env("LLMO_AGENT_ID", &agent_id)
            .env("LLMO_WORK_DESCRIPTION", &task.agent.work_description)
            .env("LLMO_ATTEMPT", task.attempt.to_string())
            .env(
                "LLMO_RETRY_CONTEXT",
                task.retry_context.as_deref().unwrap_or(""),
            )
            .env("LLMO_RUN_DIR", &task.run_dir)
            .env(super::janitor::TAG_VARIABLE, super::janitor::instance_tag())
            .stdin(Stdio::null())
            .stdout(pipe_writer.stdout)
            .stderr(pipe_writer.stderr);
    });
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let spawned = wrap.spawn();
    // The command holds the parent's copies of the pipe's write end: close them,
    // or the reader would never see end of file.
    drop(wrap);
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("cannot start `{display}`: {e}");
            log.append_note(&format!("==> {reason} <==\n"));
            return failed_early(reason);
        }
    };
    let mut guard = GroupGuard::new(child);
    if let Some(pid) = guard.child.id() {
        let _ = output.send(AgentOutput::Spawned { pid });
    }

    // Readers and the log writer.
    let base = Instant::now();
    let last_output = Arc::new(AtomicU64::new(0));
    let observed = Arc::new(Mutex::new(Observed::default()));
    let stop_reading = CancellationToken::new();
    let mut readers = JoinSet::new();
    match tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(pipe_reader)) {
        Ok(pipe) => {
            readers.spawn(read_pipe(Reader {
                pipe: Box::new(pipe),
                log: Arc::clone(&log),
                output: output.clone(),
                observed: Arc::clone(&observed),
                last_output: Arc::clone(&last_output),
                base,
                stop: stop_reading.clone(),
            }));
        }
        Err(e) => lock(&observed)
            .tail
            .push(format!("(cannot read the output pipe: {e})\n").as_bytes()),
    }

    // Wait for the leader to exit or for a reason to stop it.
    let timeout_deadline = task.timeout.map(|t| base + t);
    let ended: Result<std::io::Result<ExitStatus>, Stop> = {
        let mut wait = guard.child.wait();
        loop {
            let stall_deadline = task.stall_timeout.map(|stall| {
                base + Duration::from_millis(last_output.load(Ordering::Relaxed)) + stall
            });
            tokio::select! {
                biased;
                status = &mut wait => break Ok(status),
                () = cancel.cancelled() => break Err(Stop::Cancelled),
                () = sleep_until_opt(timeout_deadline) => break Err(Stop::TimedOut),
                () = sleep_until_opt(stall_deadline) => {
                    let idle = base.elapsed().saturating_sub(Duration::from_millis(
                        last_output.load(Ordering::Relaxed),
                    ));
                    if task.stall_timeout.is_some_and(|stall| idle >= stall) {
                        break Err(Stop::Stalled);
                    }
                }
            }
        }
    };

    let (status, stop) = match ended {
        Ok(status) => {
            // Exited by itself: background holders of the pipes get the grace.
            let drained = drain(&mut readers, task.kill_grace).await;
            guard.signal_group(SIGKILL);
            if !drained {
                finish_readers(&mut readers, &stop_reading).await;
            }
            (Some(status), None)
        }
        Err(stop) => {
            guard.signal_group(SIGTERM);
            let grace_end = Instant::now() + task.kill_grace;
            let exited = timeout_at(grace_end, guard.child.wait()).await.is_ok();
            let drained = timeout_at(grace_end, drain(&mut readers, task.kill_grace))
                .await
                .unwrap_or(false);
            guard.signal_group(SIGKILL);
            if !exited {
                let _ = timeout(REAP_LIMIT, guard.child.wait()).await;
            }
            if !drained {
                finish_readers(&mut readers, &stop_reading).await;
            }
            (None, Some(stop))
        }
    };
    guard.armed = false;
    let write_error = log.finish().await;

    let observed = std::mem::take(&mut *lock(&observed));
    let mut tail = observed.tail.render();
    if let Some(e) = write_error {
        tail.push_str(&format!("\n(output log {}: {e})\n", log_path.display()));
    }
    let (outcome, exit_code) = match (stop, status) {
        (Some(Stop::TimedOut), _) => (AgentOutcome::TimedOut, None),
        (Some(Stop::Stalled), _) => (AgentOutcome::Stalled, None),
        (Some(Stop::Cancelled), _) => (AgentOutcome::Cancelled, None),
        (None, Some(Ok(status))) => reconcile(status, &observed),
        (None, Some(Err(e))) => (
            AgentOutcome::Failed {
                reason: format!("could not wait for the process: {e}"),
            },
            None,
        ),
        (None, None) => (
            AgentOutcome::Failed {
                reason: "the process ended without a status".to_string(),
            },
            None,
        ),
    };
    DriverResult {
        outcome,
        exit_code,
        tail,
    }
}

/// Outcome and exit code of a process that ended by itself (see the module docs).
fn reconcile(status: ExitStatus, observed: &Observed) -> (AgentOutcome, Option<i32>) {
    let verdict = &observed.verdict;
    let failed_suffix = verdict
        .failed_text
        .as_deref()
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    match status.code() {
        Some(0) => (verdict.outcome(), Some(0)),
        Some(code) => (
            AgentOutcome::Failed {
                reason: format!("exit code {code}{failed_suffix}"),
            },
            Some(code),
        ),
        None => {
            let reason = match status.signal() {
                Some(signal) => format!("killed by signal {signal}{failed_suffix}"),
                None => format!("ended with {status}{failed_suffix}"),
            };
            (AgentOutcome::Failed { reason }, None)
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Waits for every reader to finish, at most `within`; true when they all did.
async fn drain(readers: &mut JoinSet<()>, within: Duration) -> bool {
    timeout(within, async {
        while readers.join_next().await.is_some() {}
    })
    .await
    .is_ok()
}

/// After the final SIGKILL: lets the readers take what is left in the pipes,
/// then stops them (a process outside the group may still hold a pipe open).
async fn finish_readers(readers: &mut JoinSet<()>, stop: &CancellationToken) {
    if !drain(readers, POST_KILL_DRAIN).await {
        stop.cancel();
        while readers.join_next().await.is_some() {}
    }
}

/// The write end of the output pipe, once for stdout and once for stderr.
pub(crate) struct PipeWriters {
    /// For the child's stdout.
    pub(crate) stdout: Stdio,
    /// For the child's stderr.
    pub(crate) stderr: Stdio,
}

/// A pipe for a child's stdout and stderr together (close-on-exec on our side).
pub(crate) fn output_pipe() -> std::io::Result<(std::io::PipeReader, PipeWriters)> {
    let (reader, writer) = std::io::pipe()?;
    let stderr = writer.try_clone()?;
    Ok((
        reader,
        PipeWriters {
            stdout: Stdio::from(writer),
            stderr: Stdio::from(stderr),
        },
    ))
}

/// Creates the agent directory, opens the log for appending and writes the header.
fn open_log(agent_dir: &Path, header: &str) -> std::io::Result<File> {
    std::fs::create_dir_all(agent_dir)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(agent_dir.join(OUTPUT_LOG))?;
    file.write_all(header.as_bytes())?;
    Ok(file)
}

/// The output log, shared by the pipe readers. The file (after its header
/// line) and its writer (a blocking task fed through a bounded queue) come
/// into being with the first chunk of output, so an agent that prints nothing
/// costs neither a file nor a writer.
struct LogSink {
    state: Mutex<LogState>,
}

enum LogState {
    /// No output yet: where the log goes and its header line.
    Unopened(std::path::PathBuf, String),
    /// The writer runs: the queue's sender and the writer's handle.
    Writing(
        mpsc::Sender<Vec<u8>>,
        tokio::task::JoinHandle<Option<std::io::Error>>,
    ),
    /// The log could not be opened; output is not logged.
    Unwritable(std::io::Error),
    /// [`LogSink::finish`] ran.
    Finished,
}

impl LogSink {
    fn new(agent_dir: std::path::PathBuf, header: String) -> Self {
        Self {
            state: Mutex::new(LogState::Unopened(agent_dir, header)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the header and `note` to the log directly (no writer runs yet).
    fn append_note(&self, note: &str) {
        if let LogState::Unopened(dir, header) = &*self.lock()
            && let Ok(mut file) = open_log(dir, header)
        {
            let _ = file.write_all(note.as_bytes());
        }
    }

    /// A sender into the writer's queue, opening the log and starting the
    /// writer if needed; `None` when the log cannot be written.
    fn sender(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, LogState::Finished) {
            LogState::Unopened(dir, header) => match open_log(&dir, &header) {
                Ok(file) => {
                    let (tx, rx) = mpsc::channel::<Vec<u8>>(LOG_QUEUE_CHUNKS);
                    let writer = tokio::task::spawn_blocking(move || write_log(file, rx));
                    *state = LogState::Writing(tx.clone(), writer);
                    Some(tx)
                }
                Err(e) => {
                    *state = LogState::Unwritable(e);
                    None
                }
            },
            LogState::Writing(tx, writer) => {
                let sender = tx.clone();
                *state = LogState::Writing(tx, writer);
                Some(sender)
            }
            other => {
                *state = other;
                None
            }
        }
    }

    /// After every reader is done: closes the queue, waits for the writer and
    /// returns the error that kept output out of the log, if any.
    async fn finish(&self) -> Option<std::io::Error> {
        let state = std::mem::replace(&mut *self.lock(), LogState::Finished);
        match state {
            LogState::Unopened(..) | LogState::Finished => None,
            LogState::Unwritable(e) => Some(e),
            LogState::Writing(tx, writer) => {
                drop(tx);
                writer.await.ok().flatten()
            }
        }
    }
}

/// The log writer: appends chunks until every reader is gone. After a write
/// error it keeps taking chunks (so the readers never block) and returns the error.
fn write_log(mut file: File, mut chunks: mpsc::Receiver<Vec<u8>>) -> Option<std::io::Error> {
    let mut error = None;
    let mut ends_with_newline = true;
    while let Some(chunk) = chunks.blocking_recv() {
        if error.is_some() || chunk.is_empty() {
            continue;
        }
        match file.write_all(&chunk) {
            Ok(()) => ends_with_newline = chunk.ends_with(b"\n"),
            Err(e) => error = Some(e),
        }
    }
    if error.is_none() && !ends_with_newline {
        // The next attempt's header starts on its own line.
        error = file.write_all(b"\n").err();
    }
    error
}

/// One pipe's reader.
struct Reader {
    pipe: Box<dyn AsyncRead + Send + Unpin>,
    log: Arc<LogSink>,
    output: mpsc::UnboundedSender<AgentOutput>,
    observed: Arc<Mutex<Observed>>,
    /// Milliseconds after `base` of the last output on either pipe.
    last_output: Arc<AtomicU64>,
    base: Instant,
    stop: CancellationToken,
}

/// Reads a pipe to its end (or until told to stop): log, markers, tail, watchdog.
async fn read_pipe(reader: Reader) {
    let Reader {
        mut pipe,
        log,
        output,
        observed,
        last_output,
        base,
        stop,
    } = reader;
    let mut parser = MarkerParser::new();
    // Filled with `read_buf`, which appends to the spare capacity: no zeroing.
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF_BYTES);
    let mut log_tx: Option<mpsc::Sender<Vec<u8>>> = None;
    let mut events = Vec::new();
    loop {
        let n = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            read = { buf.clear(); pipe.read_buf(&mut buf) } => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        let millis = u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_output.fetch_max(millis, Ordering::Relaxed);
        let chunk = &buf[..n];
        parser.feed(chunk, &mut events);
        {
            let mut seen = lock(&observed);
            seen.tail.push(chunk);
            seen.note(&events);
        }
        for event in events.drain(..) {
            let _ = output.send(AgentOutput::Protocol(event));
        }
        // The writer takes chunks until every reader is gone, so a failed
        // send cannot happen; waiting here is the backpressure of a slow disk.
        if log_tx.is_none() {
            log_tx = log.sender();
        }
        let Some(tx) = &log_tx else { continue };
        let stopped = tokio::select! {
            biased;
            () = stop.cancelled() => true,
            _ = tx.send(chunk.to_vec()) => false,
        };
        if stopped {
            break;
        }
    }
    parser.finish(&mut events);
    lock(&observed).note(&events);
    for event in events.drain(..) {
        let _ = output.send(AgentOutput::Protocol(event));
    }
}

impl Observed {
    /// Records the markers that decide the outcome.
    fn note(&mut self, events: &[ProtocolEvent]) {
        for event in events {
            self.verdict.note(event);
        }
    }
}

#[cfg(test)]
mod tests;
