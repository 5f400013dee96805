//! The janitor: makes sure no agent process group outlives the orchestrator,
//! even when the orchestrator is killed with SIGKILL (where no cleanup code runs).
//!
//! On the first registration the orchestrator starts a small helper process,
//! `llm-orchestrate __janitor`, in its own process group (so a terminal's
//! Ctrl-C does not reach it), with a pipe on its standard input. Drivers
//! register each agent's process group (`+pgid`) when it starts and unregister
//! it (`-pgid`) once it is gone. When the pipe reaches end of file, which the
//! kernel guarantees when the orchestrator exits for whatever reason, the
//! janitor sends SIGKILL to every group still registered, then exits.
//! The janitor does not wake for each line: it watches the orchestrator
//! through a pidfd and reads the pipe every 200 ms and once more when the
//! orchestrator is gone, so a registration costs the orchestrator one
//! `write` and no context switch (see [`janitor_main`]).
//!
//! Registration happens right after a spawn, so an orchestrator killed between
//! the two would leave that agent unknown to the janitor. To close that gap
//! every process the orchestrator starts carries this orchestrator process's
//! tag in its environment (`LLMO_ORCHESTRATOR`, see [`instance_tag`]), the
//! janitor is told the tag (`=<tag>`), and at end of file it also kills the
//! process group of every process whose environment holds exactly that entry
//! (found through `/proc/<pid>/environ`). The tag is unique per orchestrator
//! process, so the janitor of a killed run never touches the agents of the
//! `resume` that follows it.
//!
//! If the janitor cannot be started, runs go on without it (a warning is
//! printed once); a normal exit or Ctrl-C still stops every agent.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

struct Janitor {
    stdin: ChildStdin,
    _child: Child,
    /// Unregistrations not yet sent (see [`unregister`]).
    unsent: String,
    unsent_count: usize,
}

/// Unregistrations sent together (one write, one wake-up of the janitor).
const UNREGISTER_BATCH: usize = 64;

static JANITOR: Mutex<Option<Result<Janitor, ()>>> = Mutex::new(None);

fn spawn_janitor() -> Result<Janitor, ()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|_| ())?;
    // Only the real binary has the `__janitor` subcommand (not, e.g., a test harness).
    if !exe
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("llm-orchestrate"))
    {
        return Err(());
    }
    let mut child = Command::new(exe)
        .arg("__janitor")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|_| ())?;
    let mut stdin = child.stdin.take().ok_or(())?;
    // The tag first, whichever call started the janitor.
    let _ = writeln!(stdin, "={}", instance_tag());
    Ok(Janitor {
        stdin,
        _child: child,
        unsent: String::new(),
        unsent_count: 0,
    })
}

/// Sends a registration now, with the unregistrations still held back;
/// holds an unregistration back until [`UNREGISTER_BATCH`] are waiting.
fn send(line: &str, urgent: bool) {
    let Ok(mut guard) = JANITOR.lock() else {
        return;
    };
    ensure_started(&mut guard);
    if let Some(Ok(janitor)) = guard.as_mut() {
        janitor.unsent.push_str(line);
        janitor.unsent.push('\n');
        janitor.unsent_count += 1;
        if urgent || janitor.unsent_count >= UNREGISTER_BATCH {
            let _ = janitor.stdin.write_all(janitor.unsent.as_bytes());
            let _ = janitor.stdin.flush();
            janitor.unsent.clear();
            janitor.unsent_count = 0;
        }
    }
}

/// Starts the janitor unless it was started (or failed to start) before.
fn ensure_started(slot: &mut Option<Result<Janitor, ()>>) {
    if slot.is_some() {
        return;
    }
    let started = spawn_janitor();
    let is_binary = std::env::current_exe()
        .ok()
        .and_then(|e| {
            e.file_name()
                .map(|n| n.to_string_lossy().starts_with("llm-orchestrate"))
        })
        .unwrap_or(false);
    if started.is_err() && is_binary {
        eprintln!(
            "warning: cannot start the janitor process; agents may outlive a killed orchestrator"
        );
    }
    *slot = Some(started);
}

/// The environment variable holding [`instance_tag`] in every process the
/// orchestrator starts.
pub const TAG_VARIABLE: &str = "LLMO_ORCHESTRATOR";

/// This orchestrator process's tag: its pid and start time, unique among
/// the processes of this machine.
pub fn instance_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// Starts the janitor now (not at the first registration, so no agent is
/// spawned while it starts) and tells it this process's [`instance_tag`].
pub fn start() {
    let Ok(mut guard) = JANITOR.lock() else {
        return;
    };
    ensure_started(&mut guard);
}

/// Starts the janitor in the background, so that starting it overlaps the
/// rest of a run's start-up ([`start`] then finds it running).
pub fn start_in_background() {
    let _ = std::thread::Builder::new()
        .name("llmo-janitor-start".into())
        .spawn(start);
}

/// Registers an agent's process group (its leader's pid). Sent at once.
pub fn register(pgid: u32) {
    send(&format!("+{pgid}"), true);
}

/// Unregisters a process group that is gone. Sent with the next registration
/// or in a batch: until then the janitor would send SIGKILL to a group that no
/// longer exists (harmless), unless its number had been reused by a new
/// group leader in the meantime, which takes the whole pid space wrapping
/// around while the unregistration waits.
pub fn unregister(pgid: u32) {
    send(&format!("-{pgid}"), false);
}

/// How long the janitor sleeps between two readings of its pipe while the
/// orchestrator lives: registrations wait in the pipe meanwhile (and are all
/// read once the orchestrator is gone), so the orchestrator's writes wake
/// nobody.
const READ_INTERVAL_MS: i32 = 200;

/// What the janitor has been told: the live process groups and the tags.
#[derive(Default)]
struct Registry {
    groups: std::collections::BTreeSet<i32>,
    tags: Vec<String>,
}

impl Registry {
    /// Applies one line of the protocol (`=tag`, `+pgid`, `-pgid`); others are ignored.
    fn apply(&mut self, line: &str) {
        if let Some(tag) = line.strip_prefix('=') {
            self.tags.push(tag.to_string());
            return;
        }
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(pgid) = number.trim().parse::<i32>() else {
            return;
        };
        if pgid <= 1 {
            return;
        }
        match sign {
            "+" => {
                self.groups.insert(pgid);
            }
            "-" => {
                self.groups.remove(&pgid);
            }
            _ => {}
        }
    }

    /// Applies every complete line of `pending` and keeps the unfinished rest.
    fn apply_lines(&mut self, pending: &mut Vec<u8>) {
        let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        for line in pending[..end].split(|&b| b == b'\n') {
            self.apply(&String::from_utf8_lossy(line));
        }
        pending.drain(..=end);
    }

    /// Sends SIGKILL to every registered group and to every process tagged
    /// with one of the tags (and its group).
    fn kill_all(self) {
        for pgid in self.groups {
            kill_group(pgid);
        }
        for (pid, pgid) in processes_tagged(&self.tags) {
            kill_group(pgid);
            // SAFETY: kill(2) on one pid; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The janitor process itself: collects registrations from its standard
/// input until the orchestrator is gone, then kills every group still
/// registered. Returns the exit code.
///
/// The orchestrator is watched through a pidfd of the parent whose pid the
/// first tag names: the pipe is then read every [`READ_INTERVAL_MS`] and
/// once more, to its end, when the orchestrator exits (whatever the
/// orchestrator wrote before it died is still in the pipe). Without a pidfd
/// (an old kernel) the janitor blocks on the pipe and reads each line as it
/// comes, until end of file.
pub fn janitor_main() -> u8 {
    let mut registry = Registry::default();
    let mut pending = Vec::new();
    // The first line is the orchestrator's tag, written when it started us.
    let mut at_end = false;
    while registry.tags.is_empty() && !at_end {
        at_end = read_some(&mut registry, &mut pending) != Read::More;
    }
    if !at_end {
        match registry.tags.first().and_then(|tag| watch_parent(tag)) {
            Some(pidfd) => read_until_the_parent_exits(&pidfd, &mut registry, &mut pending),
            None => read_to_end(&mut registry, &mut pending),
        }
    }
    registry.kill_all();
    0
}

/// A pidfd of this process's parent if the tag names it (`<pid>-<nanos>`, see
/// [`instance_tag`]) and the kernel has pidfds.
fn watch_parent(tag: &str) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid: libc::pid_t = tag.split('-').next()?.parse().ok()?;
    // SAFETY: plain system call; the returned descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // Still our parent once the pidfd is open: then it is that process (had
    // it exited, we would have been given to another parent).
    // SAFETY: getppid(2) cannot fail and touches no memory.
    (unsafe { libc::getppid() } == pid).then_some(pidfd)
}

/// Reads the pipe every [`READ_INTERVAL_MS`] until `pidfd` tells that the
/// parent exited, then reads what is left in the pipe.
fn read_until_the_parent_exits(
    pidfd: &std::os::fd::OwnedFd,
    registry: &mut Registry,
    pending: &mut Vec<u8>,
) {
    use std::os::fd::AsRawFd;
    if !set_stdin_nonblocking(true) {
        read_to_end(registry, pending);
        return;
    }
    loop {
        let mut watched = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut watched, 1, READ_INTERVAL_MS) };
        let exited = ready > 0 && watched.revents != 0;
        let mut read = Read::More;
        while read == Read::More {
            read = read_some(registry, pending);
        }
        if exited || read == Read::End {
            return;
        }
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // poll itself fails: read each line as it comes, until end of file.
            set_stdin_nonblocking(false);
            read_to_end(registry, pending);
            return;
        }
    }
}

/// Switches standard input (the janitor's pipe) to non-blocking reads or back.
fn set_stdin_nonblocking(on: bool) -> bool {
    // SAFETY: fcntl(2) on standard input; no memory is involved.
    unsafe {
        let flags = libc::fcntl(0, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        flags >= 0 && libc::fcntl(0, libc::F_SETFL, flags) == 0
    }
}

/// What one read of the pipe found.
#[derive(PartialEq, Eq)]
enum Read {
    /// Bytes (applied): there may be more.
    More,
    /// Nothing for now (non-blocking).
    Empty,
    /// End of file, or the pipe cannot be read.
    End,
}

/// Reads standard input (blocking) line by line until end of file.
fn read_to_end(registry: &mut Registry, pending: &mut Vec<u8>) {
    while read_some(registry, pending) == Read::More {}
}

/// Reads standard input once and applies the complete lines read.
fn read_some(registry: &mut Registry, pending: &mut Vec<u8>) -> Read {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        // SAFETY: reads into a buffer we own, at most its length.
        let n = unsafe { libc::read(0, buffer.as_mut_ptr().cast(), buffer.len()) };
        if let Ok(n) = usize::try_from(n) {
            if n == 0 {
                // A last line without its newline still counts.
                pending.push(b'\n');
                registry.apply_lines(pending);
                return Read::End;
            }
            pending.extend_from_slice(&buffer[..n]);
            registry.apply_lines(pending);
            return Read::More;
        }
        match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock => return Read::Empty,
            _ => return Read::End,
        }
    }
}

fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// (pid, process group) of every process whose environment holds
/// `LLMO_ORCHESTRATOR=<tag>` for one of `tags`.
fn processes_tagged(tags: &[String]) -> Vec<(i32, i32)> {
    if tags.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<Vec<u8>> = tags
        .iter()
        .map(|t| format!("{TAG_VARIABLE}={t}").into_bytes())
        .collect();
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ
            .split(|&b| b == 0)
            .any(|var| wanted.iter().any(|w| var == w.as_slice()))
        {
            continue;
        }
        if let Some(pgid) = process_group_of(pid) {
            found.push((pid, pgid));
        }
    }
    found
}

/// Field 5 of `/proc/<pid>/stat` (after the parenthesised command name).
fn process_group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_applies_complete_lines_and_keeps_the_unfinished_one() {
        let mut registry = Registry::default();
        let mut pending = b"=123-456\n+10\n+11\n-10\n+1".to_vec();
        registry.apply_lines(&mut pending);
        assert_eq!(registry.tags, vec!["123-456".to_string()]);
        assert_eq!(
            registry.groups.iter().copied().collect::<Vec<_>>(),
            vec![11]
        );
        assert_eq!(pending, b"+1", "the unfinished line waits for its end");
        pending.extend_from_slice(b"2\n+0\n+1\nnonsense\n");
        registry.apply_lines(&mut pending);
        assert!(pending.is_empty());
        assert_eq!(
            registry.groups.iter().copied().collect::<Vec<_>>(),
            vec![11, 12],
            "groups 0 and 1 and bad lines are ignored"
        );
    }

    #[test]
    fn watches_only_a_parent_named_by_the_tag() {
        // SAFETY: getppid(2) cannot fail.
        let parent = unsafe { libc::getppid() };
        assert!(watch_parent(&format!("{parent}-1")).is_some());
        assert!(watch_parent(&format!("{}-1", std::process::id())).is_none());
        assert!(watch_parent("not-a-pid").is_none());
    }

    #[test]
    fn finds_processes_by_their_tag_and_reads_their_group() {
        let dir = format!("test-{}", instance_tag());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(TAG_VARIABLE, &dir)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // The environment is readable once the child has exec'd.
        let mut found = Vec::new();
        for _ in 0..100 {
            found = processes_tagged(std::slice::from_ref(&dir));
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let other = processes_tagged(&[format!("{dir}-other")]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, pid);
        // The child stayed in the test's process group.
        assert_eq!(
            Some(found[0].1),
            process_group_of(std::process::id() as i32),
            "the group is read from /proc/<pid>/stat"
        );
        assert!(other.is_empty(), "only the exact tag matches");
    }
}
