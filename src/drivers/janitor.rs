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

fn start() -> Result<Janitor, ()> {
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
    let stdin = child.stdin.take().ok_or(())?;
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
    if guard.is_none() {
        let started = start();
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
        *guard = Some(started);
    }
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
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
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
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    0
}
