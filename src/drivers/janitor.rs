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

use std::io::{BufRead, Write};
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

/// The janitor process itself: reads registrations until end of file, then
/// kills every group still registered. Returns the exit code.
pub fn janitor_main() -> u8 {
    let mut groups: std::collections::BTreeSet<i32> = std::collections::BTreeSet::new();
    let mut tags: Vec<String> = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if let Some(tag) = line.strip_prefix('=') {
            tags.push(tag.to_string());
            continue;
        }
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(pgid) = number.trim().parse::<i32>() else {
            continue;
        };
        if pgid <= 1 {
            continue;
        }
        match sign {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        kill_group(pgid);
    }
    for (pid, pgid) in processes_tagged(&tags) {
        kill_group(pgid);
        // SAFETY: kill(2) on one pid; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    0
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
