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

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use super::process::OUTPUT_LOG;
use super::process::{Ended, PipeSink, ProcessSpec, Stop, Streams, Tail};
#[cfg(test)]
use super::process::{TAIL_BYTES, TAIL_LINES};
use super::{AgentOutput, AgentTask, Driver, DriverResult, StatusVerdict};
use crate::journal::AgentOutcome;
use crate::plan::CommandSpec;
use crate::protocol::{MarkerParser, ProtocolEvent};

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

/// What the reader saw.
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

/// Reads the combined output: markers, tail.
struct ShellSink {
    parser: MarkerParser,
    events: Vec<ProtocolEvent>,
    observed: Arc<Mutex<Observed>>,
    output: mpsc::UnboundedSender<AgentOutput>,
}

impl ShellSink {
    fn send(&mut self) {
        lock(&self.observed).note(&self.events);
        for event in self.events.drain(..) {
            let _ = self.output.send(AgentOutput::Protocol(event));
        }
    }
}

impl PipeSink for ShellSink {
    fn chunk(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes, &mut self.events);
        lock(&self.observed).tail.push(bytes);
        self.send();
    }

    fn end(&mut self) {
        self.parser.finish(&mut self.events);
        self.send();
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
    let observed = Arc::new(Mutex::new(Observed::default()));
    // stdout and stderr share one pipe, as with `2>&1`: one reader, and the
    // log shows the two streams interleaved as the agent wrote them.
    let sink = ShellSink {
        parser: MarkerParser::new(),
        events: Vec::new(),
        observed: Arc::clone(&observed),
        output: output.clone(),
    };
    let spec = ProcessSpec {
        program: program.into(),
        args: args.into_iter().map(Into::into).collect(),
        env: super::process::agent_environment(&task),
        display: command.display(),
    };
    let supervised = match super::process::supervise(
        &task,
        spec,
        Streams::Combined(Box::new(sink)),
        &output,
        &cancel,
    )
    .await
    {
        Ok(supervised) => supervised,
        Err(reason) => return failed_early(reason),
    };

    let observed = std::mem::take(&mut *lock(&observed));
    let mut tail = observed.tail.render();
    if let Some(e) = supervised.log_error {
        tail.push_str(&e);
    }
    let (outcome, exit_code) = match supervised.ended {
        Ended::Stopped(Stop::TimedOut) => (AgentOutcome::TimedOut, None),
        Ended::Stopped(Stop::Stalled) => (AgentOutcome::Stalled, None),
        Ended::Stopped(Stop::Cancelled) => (AgentOutcome::Cancelled, None),
        Ended::Exited(status) => reconcile(status, &observed),
        Ended::WaitFailed(e) => (
            AgentOutcome::Failed {
                reason: format!("could not wait for the process: {e}"),
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
