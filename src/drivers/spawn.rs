//! Starting an agent process cheaply: a `vfork`-style clone with a prepared
//! environment, and waiting for it through a pidfd.
//!
//! `std::process::Command` copies the orchestrator's whole environment into
//! a sorted map, applies the changes, and turns it back into C strings on
//! every spawn; `tokio::process` then builds its reaper around the child.
//! For a thousand short agents that bookkeeping cost more CPU than starting
//! the processes (BENCHMARKS.md, "Run engine", seventh session). Here:
//!
//! - the orchestrator's environment is read once, at the first spawn, and
//!   kept as `KEY=VALUE` C strings (nothing in the orchestrator changes its
//!   own environment after start-up; the agents' variables are given per
//!   spawn and override the inherited ones of the same name);
//! - the child is a `clone(CLONE_VM | CLONE_VFORK)` of the calling thread,
//!   running on a stack the thread keeps for its children, as the leader of
//!   a new process group, with stdin on `/dev/null` (opened once), stdout
//!   and stderr on the given pipes, in its working directory, the signal
//!   mask emptied and `SIGPIPE` back to its default (as `std` does). glibc's
//!   `posix_spawn`, used before, does the same but maps and unmaps a fresh
//!   stack for every child (the unmapping interrupts the orchestrator's other
//!   threads to flush their TLBs) and resets every signal's disposition in
//!   the child one by one (about 120 system calls per child, whose parent
//!   thread waits meanwhile); without them a 1,000-agent run took 9 % less
//!   CPU (BENCHMARKS.md, ninth session). How the child avoids running a
//!   handler of the orchestrator is explained in `child_main`;
//! - its exit is awaited on a pidfd registered with the tokio reactor, then
//!   collected with `waitpid`. Kernels without pidfds (before 5.3) wait on a
//!   blocking thread instead.
//!
//! A [`Leader`] dropped before its exit was collected is reaped by a thread
//! of its own once it exits (the caller kills its group first), so no zombie
//! is left behind.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::LazyLock;

use tokio::io::unix::AsyncFd;

/// The program, arguments, environment changes and file descriptors of one spawn.
pub(crate) struct SpawnRequest<'a> {
    /// Path of the executable (used as is: no `PATH` search).
    pub(crate) executable: &'a Path,
    /// `argv[0]` as the program sees it.
    pub(crate) arg0: &'a OsStr,
    /// The other arguments.
    pub(crate) args: &'a [OsString],
    /// Variables set on top of the orchestrator's environment (later ones win).
    pub(crate) env: &'a [(&'a str, &'a OsStr)],
    /// Working directory of the child.
    pub(crate) cwd: &'a Path,
    /// Becomes the child's stdout.
    pub(crate) stdout: RawFd,
    /// Becomes the child's stderr.
    pub(crate) stderr: RawFd,
}

/// The orchestrator's environment as `KEY=VALUE` strings, read at first use.
static INHERITED: LazyLock<Vec<CString>> = LazyLock::new(|| {
    std::env::vars_os()
        .filter_map(|(key, value)| {
            let mut entry = std::os::unix::ffi::OsStringExt::into_vec(key);
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            CString::new(entry).ok()
        })
        .collect()
});

/// `/dev/null`, opened once for every child's stdin (close-on-exec here; the
/// child gets a copy as its fd 0).
static DEV_NULL: LazyLock<io::Result<std::fs::File>> =
    LazyLock::new(|| std::fs::File::open("/dev/null"));

/// A C string of `bytes`, or `InvalidInput` when it holds a NUL byte.
fn c_string(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// The child's environment: the inherited entries not overridden by `env`,
/// then `env` (the last of several same-named variables wins).
fn environment(env: &[(&str, &OsStr)]) -> io::Result<(Vec<CString>, Vec<*const libc::c_char>)> {
    let mut own: Vec<CString> = Vec::with_capacity(env.len());
    for (i, (key, value)) in env.iter().enumerate() {
        if env[i + 1..].iter().any(|(later, _)| later == key) {
            continue;
        }
        let mut entry = Vec::with_capacity(key.len() + 1 + value.len());
        entry.extend_from_slice(key.as_bytes());
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        own.push(c_string(&entry, "an environment variable")?);
    }
    let overridden = |entry: &CString| {
        let bytes = entry.as_bytes();
        let key = bytes
            .iter()
            .position(|b| *b == b'=')
            .map_or(bytes, |i| &bytes[..i]);
        env.iter().any(|(k, _)| k.as_bytes() == key)
    };
    let mut pointers: Vec<*const libc::c_char> = INHERITED
        .iter()
        .filter(|entry| !overridden(entry))
        .map(|entry| entry.as_ptr())
        .collect();
    pointers.extend(own.iter().map(|entry| entry.as_ptr()));
    pointers.push(std::ptr::null());
    Ok((own, pointers))
}

/// What the child reads before it becomes the program, prepared by the
/// parent; the child writes `error` (the parent reads it once the child has
/// exec'd or exited).
#[repr(C)]
struct ChildPlan {
    executable: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: libc::c_int,
    stdout: libc::c_int,
    stderr: libc::c_int,
    /// The `errno` of the step that failed; 0 when the program started.
    error: libc::c_int,
}

/// Bytes of the stack the child runs on before `execve`. Its frames are a
/// few system-call wrappers (glibc's `posix_spawn` sizes its child's stack
/// at 32 KiB plus the arguments).
const CHILD_STACK_BYTES: usize = 64 * 1024;

thread_local! {
    /// This thread's stack for its children. A thread starts one child at a
    /// time and is suspended until that child has exec'd or exited
    /// (`CLONE_VFORK`), so the stack is free again when `clone` returns.
    static CHILD_STACK: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0; CHILD_STACK_BYTES]);
}

/// The child side of [`spawn`]: from a `CLONE_VM | CLONE_VFORK` clone, with
/// every signal blocked, it sets itself up and execs the program. It shares
/// the parent's memory (the parent's thread is suspended meanwhile, its other
/// threads go on), so it only calls async-signal-safe system-call wrappers,
/// allocates nothing and cannot panic.
extern "C" fn child_main(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `plan` points to the `ChildPlan` on the suspended parent
    // thread's stack, valid until this child execs or exits; every pointer
    // in it is valid (see `spawn`); the calls below are plain system calls.
    unsafe {
        let plan = &mut *plan.cast::<ChildPlan>();
        let fail = |plan: &mut ChildPlan| -> ! {
            plan.error = *libc::__errno_location();
            libc::_exit(127)
        };
        // A group of its own first: from now on only signals sent to this
        // new process (or group) by id can reach it.
        if libc::setpgid(0, 0) != 0 {
            fail(plan);
        }
        let mut stdin = plan.stdin;
        let mut stdout = plan.stdout;
        let mut stderr = plan.stderr;
        // A source among 0–2 would be overwritten by an earlier `dup2`: move
        // it above 2 first (std makes sure 0–2 are open, so this does not
        // happen in the binary).
        for fd in [&mut stdin, &mut stdout, &mut stderr] {
            if *fd < 3 {
                *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3);
                if *fd < 0 {
                    fail(plan);
                }
            }
        }
        for (fd, target) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
            if libc::dup2(fd, target) < 0 {
                fail(plan);
            }
        }
        if libc::chdir(plan.cwd) != 0 {
            fail(plan);
        }
        // `execve` resets caught signals to their defaults and keeps ignored
        // ones ignored, as the program expects; but a signal unblocked before
        // it would run one of the parent's handlers here, in the parent's
        // memory. A signal already pending (sent to the orchestrator's group
        // before `setpgid`) gets its default first: each handled signal is
        // reset, as glibc's `posix_spawn` always does (about 120 system
        // calls per child, measured). Otherwise only a signal sent to this
        // new process by id in the next few microseconds could run a handler
        // here; the orchestrator's handlers (tokio's, std's) are
        // async-signal-safe and only note the signal for the process.
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pending);
        libc::sigpending(&mut pending);
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        if (1..=libc::SIGRTMAX()).any(|signal| libc::sigismember(&pending, signal) == 1) {
            for signal in 1..=libc::SIGRTMAX() {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                    && current.sa_sigaction != libc::SIG_DFL
                    && current.sa_sigaction != libc::SIG_IGN
                {
                    libc::sigaction(signal, &default, std::ptr::null_mut());
                }
            }
        }
        // The orchestrator ignores SIGPIPE (as every Rust program does); its
        // agents get the default back, as `std::process::Command` gives it.
        libc::sigaction(libc::SIGPIPE, &default, std::ptr::null_mut());
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(plan.executable, plan.argv, plan.envp);
        fail(plan)
    }
}

/// Starts `request` as the leader of a new process group (see the module documentation).
pub(crate) fn spawn(request: &SpawnRequest<'_>) -> io::Result<Leader> {
    let dev_null = DEV_NULL
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open /dev/null: {e}")))?;
    let executable = c_string(request.executable.as_os_str().as_bytes(), "the program")?;
    let cwd = c_string(request.cwd.as_os_str().as_bytes(), "the working directory")?;
    let mut argv_owned = Vec::with_capacity(request.args.len() + 1);
    argv_owned.push(c_string(request.arg0.as_bytes(), "the program")?);
    for arg in request.args {
        argv_owned.push(c_string(arg.as_bytes(), "an argument")?);
    }
    let mut argv: Vec<*const libc::c_char> = argv_owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let (_env_owned, envp) = environment(request.env)?;
    let mut plan = ChildPlan {
        executable: executable.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdin: dev_null.as_raw_fd(),
        stdout: request.stdout,
        stderr: request.stderr,
        error: 0,
    };
    let (pid, clone_error) = CHILD_STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        let range = stack.as_mut_ptr_range();
        // The stack grows down from its 16-byte aligned top.
        let top = range.end.wrapping_sub(range.end as usize % 16);
        // SAFETY: the child runs `child_main` on `stack` (ours alone until
        // `clone` returns: this thread is suspended until the child execs or
        // exits) with `plan`, whose pointers into `executable`, `argv`,
        // `envp` (`_env_owned`, `INHERITED`) and `cwd` outlive the call.
        // Blocking every signal first keeps the parent's handlers from
        // running in the child before it has set itself up.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
            let pid = libc::clone(
                child_main,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&raw mut plan).cast(),
            );
            let clone_error = *libc::__errno_location();
            libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            (pid, clone_error)
        }
    });
    if pid < 0 {
        return Err(io::Error::from_raw_os_error(clone_error));
    }
    // SAFETY: the child has exec'd or exited (`CLONE_VFORK`); nothing writes
    // `plan` any more, but the compiler does not know the child wrote it.
    let error = unsafe { std::ptr::read_volatile(&raw const plan.error) };
    if error != 0 {
        // It exited with 127 without becoming the program.
        let _ = reap(pid);
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(Leader::watch(pid))
}

/// How the exit of a [`Leader`] is awaited.
enum Exit {
    /// A pidfd that becomes readable when the process exits.
    Pidfd(AsyncFd<OwnedFd>),
    /// No pidfd: a blocking `waitpid` on a thread, started at the first wait.
    Blocking(Option<tokio::task::JoinHandle<io::Result<ExitStatus>>>),
    /// Collected.
    Done(ExitStatus),
}

/// A spawned process group leader, ours to wait for.
pub(crate) struct Leader {
    pid: libc::pid_t,
    exit: Exit,
}

impl Leader {
    /// Watches `pid` (a child of this process, not yet waited for).
    fn watch(pid: libc::pid_t) -> Self {
        if tokio::runtime::Handle::try_current().is_err() {
            // No reactor to register a pidfd with.
            return Self {
                pid,
                exit: Exit::Blocking(None),
            };
        }
        // SAFETY: plain system call; the returned descriptor is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let exit = match RawFd::try_from(fd) {
            Ok(fd) if fd >= 0 => {
                // SAFETY: `fd` is a fresh descriptor nobody else owns.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged
                // for as long as it lives.
                match unsafe {
                    AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)
                } {
                    Ok(fd) => Exit::Pidfd(fd),
                    Err(_) => Exit::Blocking(None),
                }
            }
            _ => Exit::Blocking(None),
        };
        Self { pid, exit }
    }

    /// The process id (also the group id).
    pub(crate) fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Sends `signal` to the whole group.
    pub(crate) fn signal_group(&self, signal: i32) -> io::Result<()> {
        // SAFETY: plain system call.
        if unsafe { libc::killpg(self.pid, signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits for the leader to exit and collects its status (again and again
    /// after the first time).
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            match &mut self.exit {
                Exit::Done(status) => return Ok(*status),
                Exit::Pidfd(fd) => {
                    let mut ready = fd.readable().await?;
                    match try_reap(self.pid)? {
                        Some(status) => self.exit = Exit::Done(status),
                        None => ready.clear_ready(),
                    }
                }
                Exit::Blocking(slot) => {
                    let pid = self.pid;
                    let joined = slot
                        .get_or_insert_with(|| tokio::task::spawn_blocking(move || reap(pid)))
                        .await;
                    // A finished handle must not be polled again: a later
                    // wait after an error starts a new `waitpid` instead.
                    *slot = None;
                    let status = joined.map_err(io::Error::other)??;
                    self.exit = Exit::Done(status);
                }
            }
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Collected already, or a blocking thread waits for it and reaps it.
        if matches!(self.exit, Exit::Done(_) | Exit::Blocking(Some(_))) {
            return;
        }
        if let Ok(Some(_)) = try_reap(self.pid) {
            return;
        }
        // Still running (its group was sent SIGKILL by the caller): reap it
        // when it exits, so it does not stay a zombie.
        let pid = self.pid;
        let _ = std::thread::Builder::new()
            .name("llmo-reaper".into())
            .spawn(move || reap(pid));
    }
}

/// The status of `pid` if it has exited, without blocking.
fn try_reap(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: plain system call writing into `status`.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if got == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Blocks until `pid` exits and returns its status.
fn reap(pid: libc::pid_t) -> io::Result<ExitStatus> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: plain system call writing into `status`.
        let got = unsafe { libc::waitpid(pid, &mut status, 0) };
        if got == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn run(
        executable: &str,
        args: &[&str],
        env: &[(&str, &OsStr)],
        cwd: &Path,
    ) -> (ExitStatus, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let (mut reader, writer) = std::io::pipe().unwrap();
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let request = SpawnRequest {
            executable: Path::new(executable),
            arg0: OsStr::new(executable),
            args: &args,
            env,
            cwd,
            stdout: writer.as_raw_fd(),
            stderr: writer.as_raw_fd(),
        };
        let mut leader = spawn(&request).unwrap();
        assert!(matches!(leader.exit, Exit::Pidfd(_)));
        drop(writer);
        let status = runtime.block_on(leader.wait()).unwrap();
        // Waiting again gives the same status.
        assert_eq!(runtime.block_on(leader.wait()).unwrap(), status);
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        (status, out)
    }

    #[test]
    fn the_child_gets_arguments_environment_directory_and_its_own_group() {
        let dir = tempfile::tempdir().unwrap();
        let script = "printf '%s|%s|%s|' \"$1\" \"$LLMO_X\" \"$(pwd)\"; \
                      test \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" && echo leader; \
                      echo err >&2; read line || echo stdin-empty; exit 3";
        let (status, out) = run(
            "/bin/sh",
            &["-c", script, "sh", "first arg"],
            &[
                ("LLMO_X", OsStr::new("old")),
                ("LLMO_X", OsStr::new("new value")),
            ],
            dir.path(),
        );
        assert_eq!(status.code(), Some(3));
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            out,
            format!(
                "first arg|new value|{}|leader\nerr\nstdin-empty\n",
                cwd.display()
            )
        );
    }

    #[test]
    fn inherited_variables_pass_through_and_can_be_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::var("PATH").unwrap();
        let (_, out) = run(
            "/bin/sh",
            &["-c", "printf '%s|%s' \"$PATH\" \"$HOME\""],
            &[("HOME", OsStr::new("/nowhere"))],
            dir.path(),
        );
        assert_eq!(out, format!("{path}|/nowhere"));
    }

    #[test]
    fn a_signal_ends_the_group_and_the_status_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (reader, writer) = std::io::pipe().unwrap();
        let args = vec![OsString::from("-c"), OsString::from("sleep 30 & wait")];
        let request = SpawnRequest {
            executable: Path::new("/bin/sh"),
            arg0: OsStr::new("sh"),
            args: &args,
            env: &[],
            cwd: dir.path(),
            stdout: writer.as_raw_fd(),
            stderr: writer.as_raw_fd(),
        };
        // Outside a runtime: the exit is awaited on a blocking thread.
        let mut leader = spawn(&request).unwrap();
        assert!(matches!(leader.exit, Exit::Blocking(None)));
        drop(writer);
        leader.signal_group(libc::SIGKILL).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let status = runtime.block_on(leader.wait()).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // The background `sleep` died with the group: the pipe reaches its end.
        let mut rest = Vec::new();
        let mut reader = reader;
        reader.read_to_end(&mut rest).unwrap();
    }

    #[test]
    fn a_missing_program_or_folder_is_an_error_not_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let request = SpawnRequest {
            executable: Path::new("/nonexistent/program"),
            arg0: OsStr::new("program"),
            args: &[],
            env: &[],
            cwd: dir.path(),
            stdout: 1,
            stderr: 2,
        };
        let e = spawn(&request).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let missing = dir.path().join("gone");
        let request = SpawnRequest {
            executable: Path::new("/bin/true"),
            cwd: &missing,
            ..request
        };
        let e = spawn(&request).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = spawn(&SpawnRequest {
            env: &[("A", OsStr::from_bytes(b"x\0y"))],
            ..request
        })
        .err()
        .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn waiting_again_after_a_failed_wait_is_an_error_not_a_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // This process is not its own child: `waitpid` fails with ECHILD.
        let mut leader = Leader {
            pid: libc::pid_t::try_from(std::process::id()).unwrap(),
            exit: Exit::Blocking(None),
        };
        assert!(runtime.block_on(leader.wait()).is_err());
        assert!(runtime.block_on(leader.wait()).is_err());
    }

    #[test]
    fn a_dropped_leader_is_reaped_once_it_exits() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![OsString::from("-c"), OsString::from("sleep 0.2")];
        let request = SpawnRequest {
            executable: Path::new("/bin/sh"),
            arg0: OsStr::new("sh"),
            args: &args,
            env: &[],
            cwd: dir.path(),
            stdout: 1,
            stderr: 2,
        };
        let pid = {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            let leader = spawn(&request).unwrap();
            leader.id()
        };
        let stat = format!("/proc/{pid}/stat");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::path::Path::new(&stat).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{pid} was never reaped"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The mask of `field` (`SigIgn`, `SigBlk`) in a `/proc/<pid>/status` text.
    fn signal_mask(status: &str, field: &str) -> u64 {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap();
        u64::from_str_radix(line.trim(), 16).unwrap()
    }

    #[test]
    fn the_program_starts_unblocked_with_sigpipe_default_and_inherited_ignores_kept() {
        // SAFETY: SIGUSR2 is not used by the test harness; ignoring it for
        // a moment only changes what children inherit.
        let previous = unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        let dir = tempfile::tempdir().unwrap();
        let (status, out) = run("/bin/cat", &["/proc/self/status"], &[], dir.path());
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGUSR2, previous) };
        assert!(status.success(), "{out}");
        let bit = |signal: i32| 1u64 << (signal - 1);
        // The test process ignores SIGPIPE (as every Rust program does).
        let ignored = signal_mask(&out, "SigIgn");
        assert_eq!(
            ignored & bit(libc::SIGPIPE),
            0,
            "SIGPIPE is back to its default"
        );
        assert_ne!(ignored & bit(libc::SIGUSR2), 0, "an inherited ignore stays");
        assert_eq!(signal_mask(&out, "SigBlk"), 0, "no signal stays blocked");
    }

    #[test]
    fn pipes_on_the_standard_descriptors_still_reach_the_child() {
        // A pipe whose write end is this process's fd 0 (as when the
        // orchestrator was started with stdin closed): the `dup2` onto the
        // child's stdin must not overwrite it before it becomes stdout.
        let (mut reader, writer) = std::io::pipe().unwrap();
        // SAFETY: fd 0 is saved and put back below; no other test reads stdin.
        let saved = unsafe { libc::dup(0) };
        assert!(saved >= 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::dup2(writer.as_raw_fd(), 0) }, 0);
        drop(writer);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let dir = tempfile::tempdir().unwrap();
        let args = [
            OsString::from("-c"),
            OsString::from("echo out; echo err >&2"),
        ];
        let spawned = spawn(&SpawnRequest {
            executable: Path::new("/bin/sh"),
            arg0: OsStr::new("sh"),
            args: &args,
            env: &[],
            cwd: dir.path(),
            stdout: 0,
            stderr: 0,
        });
        // SAFETY: puts fd 0 back as it was.
        unsafe {
            libc::dup2(saved, 0);
            libc::close(saved);
        }
        let status = runtime.block_on(spawned.unwrap().wait()).unwrap();
        assert!(status.success());
        let mut out = [0u8; 8];
        reader.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"out\nerr\n");
    }
}
