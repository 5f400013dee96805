//! Starting an agent process cheaply: `posix_spawn` with a prepared
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
//! - the child is started by `posix_spawn` (a `vfork`-style clone in glibc)
//!   as the leader of a new process group, with stdin on `/dev/null` (opened
//!   once), stdout and stderr on the given pipes, the signal mask emptied and
//!   `SIGPIPE` back to its default (as `std` does), in its working directory
//!   (`posix_spawn_file_actions_addchdir_np`);
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

/// Turns a `posix_spawn*` return code into a result.
fn check(code: libc::c_int) -> io::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// `posix_spawn_file_actions_t` destroyed on drop.
struct FileActions(libc::posix_spawn_file_actions_t);

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised by `posix_spawn_file_actions_init` in `spawn`.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// `posix_spawnattr_t` destroyed on drop.
struct Attributes(libc::posix_spawnattr_t);

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised by `posix_spawnattr_init` in `spawn`.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
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

    // SAFETY: every pointer handed to libc below points into values that live
    // until the end of this function (`executable`, `cwd`, `argv_owned`,
    // `_env_owned`, `INHERITED`); the attribute and file-action objects are
    // initialised before use and destroyed by their guards.
    unsafe {
        let mut actions = FileActions(std::mem::zeroed());
        check(libc::posix_spawn_file_actions_init(&mut actions.0))?;
        let mut attributes = Attributes(std::mem::zeroed());
        check(libc::posix_spawnattr_init(&mut attributes.0))?;

        check(libc::posix_spawn_file_actions_adddup2(
            &mut actions.0,
            dev_null.as_raw_fd(),
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut actions.0,
            request.stdout,
            1,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut actions.0,
            request.stderr,
            2,
        ))?;
        check(libc::posix_spawn_file_actions_addchdir_np(
            &mut actions.0,
            cwd.as_ptr(),
        ))?;

        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(libc::posix_spawnattr_setsigmask(&mut attributes.0, &empty))?;
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut defaults);
        libc::sigaddset(&mut defaults, libc::SIGPIPE);
        check(libc::posix_spawnattr_setsigdefault(
            &mut attributes.0,
            &defaults,
        ))?;
        check(libc::posix_spawnattr_setpgroup(&mut attributes.0, 0))?;
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        check(libc::posix_spawnattr_setflags(
            &mut attributes.0,
            flags as libc::c_short,
        ))?;

        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            executable.as_ptr(),
            &actions.0,
            &attributes.0,
            argv.as_ptr().cast(),
            envp.as_ptr().cast(),
        ))?;
        Ok(Leader::watch(pid))
    }
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
}
