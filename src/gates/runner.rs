//! Running a gate's command: the leader of its own process group (registered
//! with the janitor, as agents are), stdin on `/dev/null`, stdout and stderr
//! on one pipe into a bounded [`Capture`], `LLMO_GATE=<name>` and
//! `NO_COLOR=1` in its environment. On timeout or cancel the group gets
//! SIGTERM, [`KILL_GRACE`] to exit, then SIGKILL; once the command is over
//! the group gets a final SIGKILL, so nothing it started outlives it.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use tokio_util::sync::CancellationToken;

use super::GateSpec;
use super::capture::{Capture, Captured};
use crate::drivers::process::{GroupGuard, SIGKILL, SIGTERM, output_pipe};
use crate::plan::CommandSpec;

/// After SIGTERM, how long the group may take to exit before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);
/// After the command exits, how long processes it left may keep the pipe open.
const EXIT_DRAIN: Duration = Duration::from_millis(500);
/// After the final SIGKILL, how long the reader may still drain the pipe.
const POST_KILL_DRAIN: Duration = Duration::from_millis(250);
/// After SIGKILL, how long to wait for the leader to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// How the command ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited by itself.
    Exited(ExitStatus),
    /// The time limit passed; it was killed.
    TimedOut,
    /// `cancel` fired; it was killed.
    Cancelled,
    /// The program does not exist (its name).
    NotFound(String),
    /// It could not be started or waited for.
    Failed(String),
}

/// The command's end and output.
#[derive(Debug)]
pub struct Run {
    /// How it ended.
    pub ended: Ended,
    /// Its output.
    pub output: Captured,
}

/// Runs `spec`'s command to its end, its time limit, or `cancel`.
pub async fn run(spec: &GateSpec, cancel: &CancellationToken) -> Run {
    let (program, args): (String, Vec<String>) = match &spec.command {
        CommandSpec::Shell(script) => ("sh".into(), vec!["-c".into(), script.clone()]),
        CommandSpec::Argv(argv) => match argv.split_first() {
            Some((p, rest)) if !p.is_empty() => (p.clone(), rest.to_vec()),
            _ => return failed("empty command"),
        },
    };
    if !spec.working_directory.is_dir() {
        return failed(&format!(
            "working directory {} does not exist",
            spec.working_directory.display()
        ));
    }
    let (pipe_reader, writers) = match output_pipe() {
        Ok(pipe) => pipe,
        Err(e) => return failed(&format!("cannot create the output pipe: {e}")),
    };
    let mut wrap = CommandWrap::with_new(&program, |c| {
        c.args(&args)
            .current_dir(&spec.working_directory)
            .env("LLMO_GATE", &spec.name)
            .env("NO_COLOR", "1")
            .env(
                crate::drivers::janitor::TAG_VARIABLE,
                crate::drivers::janitor::instance_tag(),
            )
            .stdin(Stdio::null())
            .stdout(writers.stdout)
            .stderr(writers.stderr);
    });
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let spawned = wrap.spawn();
    // Close our copies of the write end, or the reader never sees end of file.
    drop(wrap);
    let child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Run {
                ended: Ended::NotFound(program),
                output: Capture::default().finish(),
            };
        }
        Err(e) => return failed(&format!("cannot start `{program}`: {e}")),
    };
    let mut guard = GroupGuard::new(child);

    let capture = Arc::new(Mutex::new(Capture::default()));
    let mut reader = {
        let capture = Arc::clone(&capture);
        crate::drivers::process::collect_pipe(pipe_reader, move |chunk| {
            if let Ok(mut c) = capture.lock() {
                c.push(chunk);
            }
        })
    };

    let limit = async {
        match spec.timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        status = guard.child.wait() => match status {
            Ok(status) => Ended::Exited(status),
            Err(e) => Ended::Failed(format!("cannot wait for the command: {e}")),
        },
        () = limit => Ended::TimedOut,
        () = cancel.cancelled() => Ended::Cancelled,
    };
    match ended {
        Ended::Exited(_) | Ended::Failed(_) => {
            // Background processes holding the pipe get a short grace.
            let drained = tokio::time::timeout(EXIT_DRAIN, &mut reader).await.is_ok();
            guard.signal_group(SIGKILL);
            if !drained {
                let _ = tokio::time::timeout(POST_KILL_DRAIN, &mut reader).await;
            }
        }
        _ => {
            guard.signal_group(SIGTERM);
            let exited = tokio::time::timeout(KILL_GRACE, guard.child.wait())
                .await
                .is_ok();
            guard.signal_group(SIGKILL);
            if !exited {
                let _ = tokio::time::timeout(REAP_LIMIT, guard.child.wait()).await;
            }
            let _ = tokio::time::timeout(POST_KILL_DRAIN, &mut reader).await;
        }
    }
    reader.abort();
    guard.armed = false;
    drop(guard);
    let capture = match Arc::try_unwrap(capture) {
        Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => match shared.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        },
    };
    Run {
        ended,
        output: capture.finish(),
    }
}

/// A run that never started.
fn failed(reason: &str) -> Run {
    Run {
        ended: Ended::Failed(reason.to_string()),
        output: Capture::default().finish(),
    }
}
