//! Supervising one agent process: the machinery shared by the `shell` driver
//! and the agent-CLI drivers ([`super::cli`]).
//!
//! [`supervise`] starts a program as the leader of its own process group
//! (registered with the [`super::janitor`]), stdin on `/dev/null`, in the
//! agent's working directory, with the orchestrator's environment plus the
//! given variables and the janitor's tag. Its output is read in chunks of up
//! to 64 KiB and appended to `<agent_dir>/output.log` after a `==> attempt N:
//! <command> <==` header (the folder, the file and the header are written
//! when the first output arrives, so a silent attempt leaves no trace), and
//! each chunk is handed to a [`PipeSink`] of the caller (markers, JSON
//! events, a tail). stdout and stderr either share one pipe ([`Streams::Combined`],
//! as with `2>&1`) or have one each ([`Streams::Separate`]).
//!
//! The attempt ends when the leader exits (the readers then get
//! [`AgentTask::kill_grace`] to reach end of file), at
//! [`AgentTask::timeout`], when nothing was read for
//! [`AgentTask::stall_timeout`], or when `cancel` fires. In the last three
//! cases the group gets SIGTERM, `kill_grace` to exit, then SIGKILL; in every
//! case a final SIGKILL to the group once the attempt is over, so nothing left
//! in it outlives the attempt. If the future is dropped mid-attempt, a guard
//! kills the group.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::{AgentOutput, AgentTask};

/// Size of one read from a pipe.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Bytes of output kept in memory for a [`Tail`].
pub(crate) const TAIL_BYTES: usize = 16 * 1024;
/// Most lines in a rendered [`Tail`].
pub(crate) const TAIL_LINES: usize = 50;
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

/// Why the supervisor stopped the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// [`AgentTask::timeout`] elapsed.
    TimedOut,
    /// Nothing was read for [`AgentTask::stall_timeout`].
    Stalled,
    /// `cancel` fired.
    Cancelled,
}

/// Takes what one pipe delivers. Runs on the pipe's reader task.
pub(crate) trait PipeSink: Send + 'static {
    /// One chunk as read (any size, any boundary; already queued for the log).
    fn chunk(&mut self, bytes: &[u8]);
    /// The pipe reached its end (or reading stopped).
    fn end(&mut self);
}

/// Where the child's stdout and stderr go.
pub(crate) enum Streams {
    /// One pipe for both, as with `2>&1`: the log shows them interleaved as written.
    Combined(Box<dyn PipeSink>),
    /// A pipe each.
    Separate {
        /// Takes stdout.
        stdout: Box<dyn PipeSink>,
        /// Takes stderr.
        stderr: Box<dyn PipeSink>,
    },
}

/// The program to supervise.
pub(crate) struct ProcessSpec {
    /// Program (a path, or a name looked up on PATH).
    pub(crate) program: std::ffi::OsString,
    /// Arguments, passed as they are (never through a shell).
    pub(crate) args: Vec<std::ffi::OsString>,
    /// Variables added to the orchestrator's environment.
    pub(crate) env: Vec<(String, std::ffi::OsString)>,
    /// The command as shown in the log header and in errors (no secrets).
    pub(crate) display: String,
}

/// How a supervised process ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited by itself.
    Exited(ExitStatus),
    /// Waiting for it failed.
    WaitFailed(std::io::Error),
    /// The supervisor stopped it.
    Stopped(Stop),
}

/// The end of a supervised process and what kept output out of its log.
#[derive(Debug)]
pub(crate) struct Supervised {
    /// How it ended.
    pub(crate) ended: Ended,
    /// Why output could not be logged, as a line for the tail (`(output log …: …)`).
    pub(crate) log_error: Option<String>,
}

/// Checks that the agent's working directory exists and is a folder.
pub(crate) fn check_workdir(task: &AgentTask) -> Result<(), String> {
    let agent_id = &task.agent.agent_id;
    match std::fs::metadata(&task.workdir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "working directory {} of agent {agent_id} is not a directory",
            task.workdir.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "working directory {} of agent {agent_id} does not exist",
            task.workdir.display()
        )),
        Err(e) => Err(format!(
            "working directory {} of agent {agent_id} is not usable: {e}",
            task.workdir.display()
        )),
    }
}

/// The variables every agent process gets: `LLMO_AGENT_ID`,
/// `LLMO_WORK_DESCRIPTION`, `LLMO_ATTEMPT`, `LLMO_RETRY_CONTEXT` (empty when
/// there is none), `LLMO_RUN_DIR`, then the agent's `env` from the plan.
pub(crate) fn agent_environment(task: &AgentTask) -> Vec<(String, std::ffi::OsString)> {
    let mut env: Vec<(String, std::ffi::OsString)> = vec![
        ("LLMO_AGENT_ID".into(), task.agent.agent_id.clone().into()),
        (
            "LLMO_WORK_DESCRIPTION".into(),
            task.agent.work_description.clone().into(),
        ),
        ("LLMO_ATTEMPT".into(), task.attempt.to_string().into()),
        (
            "LLMO_RETRY_CONTEXT".into(),
            task.retry_context.clone().unwrap_or_default().into(),
        ),
        ("LLMO_RUN_DIR".into(), task.run_dir.clone().into_os_string()),
    ];
    env.extend(
        task.agent
            .env
            .iter()
            .map(|(k, v)| (k.clone(), std::ffi::OsString::from(v))),
    );
    env
}

/// Runs `spec` for one attempt of `task` (see the module documentation).
/// `Err` when the process could not start (the reason is also written to the log).
pub(crate) async fn supervise(
    task: &AgentTask,
    spec: ProcessSpec,
    streams: Streams,
    output: &mpsc::UnboundedSender<AgentOutput>,
    cancel: &CancellationToken,
) -> Result<Supervised, String> {
    let header = format!("==> attempt {}: {} <==\n", task.attempt, spec.display);
    let log_path = task.agent_dir.join(OUTPUT_LOG);
    // The log (and the agent's folder) is created when there is something to
    // write: an agent that prints nothing leaves no empty log behind.
    let log = Arc::new(LogSink::new(task.agent_dir.clone(), header));

    let pipe_error = |e: std::io::Error| format!("cannot create the output pipe: {e}");
    let (writers, stdout_sink, stderr_sink) = match streams {
        Streams::Combined(sink) => {
            let (reader, writer) = std::io::pipe().map_err(pipe_error)?;
            let writers = ChildOutput {
                stdout: writer.into(),
                stderr: None,
            };
            (writers, (reader, sink), None)
        }
        Streams::Separate { stdout, stderr } => {
            let (out_reader, out_writer) = std::io::pipe().map_err(pipe_error)?;
            let (err_reader, err_writer) = std::io::pipe().map_err(pipe_error)?;
            let writers = ChildOutput {
                stdout: out_writer.into(),
                stderr: Some(err_writer.into()),
            };
            (writers, (out_reader, stdout), Some((err_reader, stderr)))
        }
    };
    // The spawn closes our copies of the pipes' write ends, or the readers
    // would never see end of file.
    let child = match start_leader(task, &spec, writers) {
        Ok(child) => child,
        Err(e) => {
            // A missing or unusable working directory is the likely cause:
            // say so in its own words.
            check_workdir(task)?;
            let reason = format!("cannot start `{}`: {e}", spec.display);
            log.append_note(&format!("==> {reason} <==\n"));
            return Err(reason);
        }
    };
    let mut guard = GroupGuard::new(child);
    if let Some(pid) = guard.child.id() {
        let _ = output.send(AgentOutput::Spawned { pid });
    }

    // Readers and the log writer.
    let base = Instant::now();
    let last_output = Arc::new(AtomicU64::new(0));
    let stop_reading = CancellationToken::new();
    let mut pipe_readers = Vec::with_capacity(2);
    for (pipe, mut sink) in std::iter::once(stdout_sink).chain(stderr_sink) {
        match tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(pipe)) {
            Ok(pipe) => {
                pipe_readers.push(read_pipe(Reader {
                    pipe: Box::new(pipe),
                    log: Arc::clone(&log),
                    sink,
                    last_output: Arc::clone(&last_output),
                    base,
                    stop: stop_reading.clone(),
                }));
            }
            Err(e) => {
                sink.chunk(format!("(cannot read the output pipe: {e})\n").as_bytes());
                sink.end();
            }
        }
    }
    let mut readers = Readers::new(pipe_readers);

    // Wait for the leader to exit or for a reason to stop it.
    let timeout_deadline = task.timeout.map(|t| base + t);
    let ended: Result<std::io::Result<ExitStatus>, Stop> = {
        let mut wait = std::pin::pin!(guard.child.wait());
        loop {
            let stall_deadline = task.stall_timeout.map(|stall| {
                base + Duration::from_millis(last_output.load(Ordering::Relaxed)) + stall
            });
            tokio::select! {
                biased;
                status = &mut wait => break Ok(status),
                () = cancel.cancelled() => break Err(Stop::Cancelled),
                () = sleep_until_opt(timeout_deadline) => break Err(Stop::TimedOut),
                // The pipes are read while the leader runs (pending once they end).
                () = readers.progress() => {}
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

    let ended = match ended {
        Ok(status) => {
            // Exited by itself: background holders of the pipes get the grace.
            let drained = readers.drain(task.kill_grace).await;
            guard.signal_group(SIGKILL);
            if !drained {
                readers.finish(&stop_reading).await;
            }
            match status {
                Ok(status) => Ended::Exited(status),
                Err(e) => Ended::WaitFailed(e),
            }
        }
        Err(stop) => {
            guard.signal_group(SIGTERM);
            let grace_end = Instant::now() + task.kill_grace;
            // The pipes go on being read while the group has its grace (a
            // process writing as it stops must not block on a full pipe).
            let (exited, drained) = tokio::join!(
                async { timeout_at(grace_end, guard.child.wait()).await.is_ok() },
                async {
                    timeout_at(grace_end, readers.drain(task.kill_grace))
                        .await
                        .unwrap_or(false)
                },
            );
            guard.signal_group(SIGKILL);
            if !exited {
                let _ = timeout(REAP_LIMIT, guard.child.wait()).await;
            }
            if !drained {
                readers.finish(&stop_reading).await;
            }
            Ended::Stopped(stop)
        }
    };
    guard.armed = false;
    let log_error = log
        .finish()
        .await
        .map(|e| format!("\n(output log {}: {e})\n", log_path.display()));
    Ok(Supervised { ended, log_error })
}

/// The write ends of a child's output pipes.
struct ChildOutput {
    /// Becomes stdout.
    stdout: std::os::fd::OwnedFd,
    /// Becomes stderr; `None` shares stdout's pipe (as with `2>&1`).
    stderr: Option<std::os::fd::OwnedFd>,
}

/// Starts `spec` in `task`'s working directory as the leader of a new
/// process group, with stdin on `/dev/null` and `output` as stdout and
/// stderr (closed here once the child has its copies). A program found on
/// `PATH` (or given as an absolute path) is started by [`super::spawn`];
/// anything else (a relative path, a name not found, which then reports the
/// spawn's own error) goes through `std::process::Command`.
fn start_leader(
    task: &AgentTask,
    spec: &ProcessSpec,
    output: ChildOutput,
) -> std::io::Result<GroupLeader> {
    use std::os::fd::AsRawFd;
    let tag = (
        super::janitor::TAG_VARIABLE,
        std::ffi::OsStr::new(super::janitor::instance_tag()),
    );
    let spawn_at = |executable: &Path| {
        let env: Vec<(&str, &std::ffi::OsStr)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .chain(std::iter::once(tag))
            .collect();
        let stdout = output.stdout.as_raw_fd();
        super::spawn::spawn(&super::spawn::SpawnRequest {
            executable,
            arg0: &spec.program,
            args: &spec.args,
            env: &env,
            cwd: &task.workdir,
            stdout,
            stderr: output.stderr.as_ref().map_or(stdout, AsRawFd::as_raw_fd),
        })
    };
    if Path::new(&spec.program).is_absolute() {
        return spawn_at(Path::new(&spec.program)).map(GroupLeader::Spawned);
    }
    if let Some(found) = resolve_on_path(&spec.program, &spec.env, Lookup::Remembered) {
        match spawn_at(&found.path) {
            // A remembered program that cannot be started any more (removed,
            // no longer executable) is looked up afresh, once.
            Err(e)
                if found.remembered
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                    ) =>
            {
                if let Some(fresh) = resolve_on_path(&spec.program, &spec.env, Lookup::Fresh) {
                    return spawn_at(&fresh.path).map(GroupLeader::Spawned);
                }
                // Found nowhere now: the spawn below reports it as usual.
            }
            spawned => return spawned.map(GroupLeader::Spawned),
        }
    }
    let stderr = match output.stderr {
        Some(stderr) => stderr,
        None => output.stdout.try_clone()?,
    };
    let mut wrap = CommandWrap::with_new(&spec.program, |c| {
        c.args(&spec.args)
            .current_dir(&task.workdir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(tag.0, tag.1)
            .stdin(Stdio::null())
            .stdout(Stdio::from(output.stdout))
            .stderr(Stdio::from(stderr));
    });
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    wrap.spawn().map(GroupLeader::Wrapped)
}

/// A process group leader: started by [`super::spawn`], or through
/// `process_wrap` (gates, the agent loop's commands, programs that need a
/// `PATH` search by the spawn).
pub(crate) enum GroupLeader {
    /// Started by [`super::spawn::spawn`].
    Spawned(super::spawn::Leader),
    /// Started by `process_wrap`.
    Wrapped(Box<dyn ChildWrapper>),
}

impl From<Box<dyn ChildWrapper>> for GroupLeader {
    fn from(child: Box<dyn ChildWrapper>) -> Self {
        Self::Wrapped(child)
    }
}

impl GroupLeader {
    /// The leader's process id (the group id); `None` once `process_wrap` reaped it.
    pub(crate) fn id(&self) -> Option<u32> {
        match self {
            Self::Spawned(leader) => Some(leader.id()),
            Self::Wrapped(child) => child.id(),
        }
    }

    /// Sends `signal` to the whole group.
    pub(crate) fn signal(&self, signal: i32) -> std::io::Result<()> {
        match self {
            Self::Spawned(leader) => leader.signal_group(signal),
            Self::Wrapped(child) => child.signal(signal),
        }
    }

    /// Waits for the leader to exit (again and again after the first time).
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Self::Spawned(leader) => leader.wait().await,
            Self::Wrapped(child) => child.wait().await,
        }
    }
}

/// Where `program` is on the child's `PATH` (the agent's own `PATH` if its
/// environment sets one, else the orchestrator's): the first folder holding an
/// executable file of that name, as `execvp` finds it. Found with one `access`
/// per folder, where letting the spawn search would attempt an `execve` in each
/// (each copying the whole environment into the kernel before failing).
/// `None` leaves the search to the spawn: a name with a `/`, a `PATH` with an
/// empty or relative entry (those depend on the child's working directory), or
/// nothing found (the spawn then reports the error as it always did).
///
/// Like a shell's command hash, a program found once is remembered for its
/// `PATH` (1,000 agents running the same command look it up once) and used
/// without another look (`Lookup::Remembered`); the caller looks it up afresh
/// (`Lookup::Fresh`) when starting the remembered file fails, as bash does.
/// A program placed in an earlier `PATH` folder during a run is therefore
/// not noticed, as in a shell.
pub(crate) fn resolve_on_path(
    program: &std::ffi::OsStr,
    env: &[(String, std::ffi::OsString)],
    lookup: Lookup,
) -> Option<Resolved> {
    use std::os::unix::ffi::OsStrExt;
    type Found = std::collections::HashMap<(std::ffi::OsString, std::ffi::OsString), PathBuf>;
    static FOUND: std::sync::LazyLock<std::sync::Mutex<Found>> =
        std::sync::LazyLock::new(Default::default);
    if program.is_empty() || program.as_bytes().contains(&b'/') {
        return None;
    }
    let path = match env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => v.clone(),
        None => std::env::var_os("PATH")?,
    };
    let key = (program.to_os_string(), path);
    let found = || {
        FOUND
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if lookup == Lookup::Remembered
        && let Some(path) = found().get(&key).cloned()
    {
        return Some(Resolved {
            path,
            remembered: true,
        });
    }
    // Searched without holding the lock: other agents' spawns go on meanwhile.
    let Some(path) = search_path(program, &key.1) else {
        found().remove(&key);
        return None;
    };
    found().insert(key, path.clone());
    Some(Resolved {
        path,
        remembered: false,
    })
}

/// Whether [`resolve_on_path`] may answer from what it remembers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lookup {
    /// A program found before is not looked for again.
    Remembered,
    /// Search the `PATH` folders now (and remember what is found).
    Fresh,
}

/// A program found by [`resolve_on_path`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Resolved {
    /// Its file.
    pub(crate) path: PathBuf,
    /// Answered from memory, without checking the file again.
    pub(crate) remembered: bool,
}

/// The first folder of `path` holding an executable `program` (see [`resolve_on_path`]).
fn search_path(program: &std::ffi::OsStr, path: &std::ffi::OsStr) -> Option<PathBuf> {
    let dirs: Vec<std::path::PathBuf> = std::env::split_paths(path).collect();
    if dirs.iter().any(|d| !d.is_absolute()) {
        return None;
    }
    dirs.into_iter()
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

/// An existing regular file (after symlinks) that this process may execute.
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let executable = unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } == 0;
    executable && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The last [`TAIL_BYTES`] bytes of output.
#[derive(Default)]
pub(crate) struct Tail {
    pub(crate) bytes: VecDeque<u8>,
}

impl Tail {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
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
    pub(crate) fn render(&self) -> String {
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
    /// The group's leader.
    pub(crate) child: GroupLeader,
    /// While true, dropping the guard kills the group.
    pub(crate) armed: bool,
    /// The group id registered with the [`super::janitor`], unregistered on drop.
    registered: Option<u32>,
}

impl GroupGuard {
    /// Guards a freshly spawned group leader and registers its group with the janitor.
    pub(crate) fn new(child: impl Into<GroupLeader>) -> Self {
        let child = child.into();
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
/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The pipe readers of one attempt, polled by the supervising task itself
/// (a task per pipe cost a spawn, a join and a wake-up per agent).
struct Readers {
    all: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    done: bool,
}

impl Readers {
    fn new<F>(readers: Vec<F>) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let done = readers.is_empty();
        let all = Box::pin(async move {
            futures::future::join_all(readers).await;
        });
        Self { all, done }
    }

    /// Reads until every pipe has ended; pending forever after that (a
    /// `select!` branch that stays quiet once the pipes are done).
    async fn progress(&mut self) {
        if self.done {
            return std::future::pending().await;
        }
        (&mut self.all).await;
        self.done = true;
    }

    /// Reads until every pipe has ended, at most `within`; true when they all did.
    async fn drain(&mut self, within: Duration) -> bool {
        if self.done {
            return true;
        }
        if timeout(within, &mut self.all).await.is_ok() {
            self.done = true;
        }
        self.done
    }

    /// After the final SIGKILL: lets the readers take what is left in the
    /// pipes, then stops them (a process outside the group may still hold a
    /// pipe open).
    async fn finish(&mut self, stop: &CancellationToken) {
        if !self.drain(POST_KILL_DRAIN).await {
            stop.cancel();
            (&mut self.all).await;
            self.done = true;
        }
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

/// Reads a child's output pipe to its end on a task, handing each chunk to
/// `sink` (a bounded capture). Unreadable pipes end the task quietly.
pub(crate) fn collect_pipe(
    reader: std::io::PipeReader,
    mut sink: impl FnMut(&[u8]) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncReadExt;
    let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader));
    tokio::spawn(async move {
        let Ok(mut pipe) = pipe else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => sink(&buf[..n]),
            }
        }
    })
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
    sink: Box<dyn PipeSink>,
    /// Milliseconds after `base` of the last output on any pipe.
    last_output: Arc<AtomicU64>,
    base: Instant,
    stop: CancellationToken,
}

/// Reads a pipe to its end (or until told to stop): log, sink, watchdog.
async fn read_pipe(reader: Reader) {
    let Reader {
        mut pipe,
        log,
        mut sink,
        last_output,
        base,
        stop,
    } = reader;
    // Filled with `read_buf`, which appends to the spare capacity: no zeroing.
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF_BYTES);
    let mut log_tx: Option<mpsc::Sender<Vec<u8>>> = None;
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
        sink.chunk(chunk);
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
    sink.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{OsStr, OsString};
    use std::os::unix::fs::PermissionsExt;

    fn env_path(path: &str) -> Vec<(String, OsString)> {
        vec![("PATH".to_string(), OsString::from(path))]
    }

    #[test]
    fn a_program_is_found_in_the_first_folder_that_can_execute_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // In `a` but not executable; in `b` executable: `execvp` runs `b`'s.
        std::fs::write(a.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(
            found(OsStr::new("tool"), &env_path(&path), Lookup::Fresh),
            Some(b.join("tool"))
        );
        // A folder of that name is not a program.
        std::fs::create_dir_all(a.join("dir")).unwrap();
        assert_eq!(
            found(OsStr::new("dir"), &env_path(&path), Lookup::Fresh),
            None
        );
        assert_eq!(
            found(OsStr::new("missing"), &env_path(&path), Lookup::Fresh),
            None
        );
    }

    fn found(program: &OsStr, env: &[(String, OsString)], lookup: Lookup) -> Option<PathBuf> {
        resolve_on_path(program, env, lookup).map(|r| r.path)
    }

    #[test]
    fn a_program_is_remembered_until_a_fresh_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for folder in [&a, &b] {
            std::fs::create_dir_all(folder).unwrap();
            std::fs::write(folder.join("tool"), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(folder.join("tool"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let env = env_path(&format!("{}:{}", a.display(), b.display()));
        let first = resolve_on_path(OsStr::new("tool"), &env, Lookup::Remembered).unwrap();
        assert_eq!((first.path, first.remembered), (a.join("tool"), false));
        std::fs::remove_file(a.join("tool")).unwrap();
        let again = resolve_on_path(OsStr::new("tool"), &env, Lookup::Remembered).unwrap();
        assert_eq!(
            (again.path, again.remembered),
            (a.join("tool"), true),
            "no file system access for a remembered program"
        );
        assert_eq!(
            found(OsStr::new("tool"), &env, Lookup::Fresh),
            Some(b.join("tool"))
        );
        assert_eq!(
            found(OsStr::new("tool"), &env, Lookup::Remembered),
            Some(b.join("tool")),
            "the fresh lookup is remembered"
        );
        std::fs::remove_file(b.join("tool")).unwrap();
        assert_eq!(found(OsStr::new("tool"), &env, Lookup::Fresh), None);
        assert_eq!(
            found(OsStr::new("tool"), &env, Lookup::Remembered),
            None,
            "a program found nowhere is forgotten"
        );
    }

    #[test]
    fn paths_and_relative_path_entries_are_left_to_the_spawn() {
        let dir = tempfile::tempdir().unwrap();
        let abs = dir.path().display().to_string();
        let lookup = Lookup::Fresh;
        assert_eq!(found(OsStr::new("./tool"), &env_path(&abs), lookup), None);
        assert_eq!(found(OsStr::new("/bin/sh"), &env_path(&abs), lookup), None);
        assert_eq!(
            found(OsStr::new("sh"), &env_path(&format!("bin:{abs}")), lookup),
            None
        );
        assert_eq!(
            found(OsStr::new("sh"), &env_path(&format!("{abs}::/bin")), lookup),
            None
        );
    }
}
