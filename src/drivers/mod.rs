//! Drivers run one attempt of one agent on a platform and report what happens.
//!
//! A driver turns an [`AgentTask`] into a stream of [`AgentOutput`] and a final
//! [`DriverResult`]. It knows its platform's wire format and nothing about
//! scheduling; the engine knows scheduling and nothing about wire formats.
//! Every driver reads agent text with the one [`crate::protocol::MarkerParser`].

pub mod api;
pub mod cli;
pub mod detect;
pub mod generic;
pub mod janitor;
pub(crate) mod process;
pub mod remote;
pub mod router;
pub mod shell;
pub(crate) mod spawn;
pub mod transcript;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::journal::AgentOutcome;
use crate::plan::Agent;
use crate::protocol::ProtocolEvent;

/// Everything a driver needs to run one attempt of one agent.
#[derive(Debug, Clone)]
pub struct AgentTask {
    /// The run id.
    pub run_id: String,
    /// The agent, as in the plan.
    pub agent: Agent,
    /// Where the agent works (its scope inside the workspace).
    pub workdir: PathBuf,
    /// The run directory (`.llm-orchestrate/runs/<run-id>`).
    pub run_dir: PathBuf,
    /// The agent's directory in the run (`agents/<id>/`): output log, prompt.
    pub agent_dir: PathBuf,
    /// The agent's prompt (rendered from the platform pattern); empty for
    /// drivers that take no prompt (see [`Driver::uses_prompt`]).
    pub prompt: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Why the previous attempt failed, for a retry.
    pub retry_context: Option<String>,
    /// Hard time limit for the attempt.
    pub timeout: Option<Duration>,
    /// Silence watchdog: no output for this long means stalled.
    pub stall_timeout: Option<Duration>,
    /// After SIGTERM, how long to wait before SIGKILL.
    pub kill_grace: Duration,
}

/// Something a driver observed while the agent ran.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentOutput {
    /// A STATUS-protocol event parsed from the agent's text.
    Protocol(ProtocolEvent),
    /// One model request's tokens and price (API drivers).
    Usage {
        /// The model called.
        model: String,
        /// Tokens.
        usage: crate::providers::Usage,
        /// Price in USD, when known.
        cost_usd: Option<f64>,
    },
    /// The process started (its id, for diagnostics).
    Spawned {
        /// Process id of the agent's process (its process-group leader).
        pid: u32,
    },
    /// An agent CLI's session (thread) id.
    Session {
        /// The id.
        id: String,
    },
    /// A remote worker claimed the attempt (see [`remote`]): which worker, and
    /// the queue attempt (the fencing token) it runs it as.
    Claimed {
        /// The worker's id.
        worker: String,
        /// The queue attempt.
        attempt: u32,
    },
    /// The tools an agent CLI used in the attempt, counted by name (sent once,
    /// when the attempt ends).
    Tools {
        /// Uses per tool name.
        uses: std::collections::BTreeMap<String, u32>,
    },
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverResult {
    /// Outcome after reconciling markers and exit status (see the shell driver's docs).
    pub outcome: AgentOutcome,
    /// Exit code, when the process exited by itself.
    pub exit_code: Option<i32>,
    /// The last lines of output (bounded), for reports and retry context.
    pub tail: String,
}

/// A way of running agents.
pub trait Driver: Send + Sync {
    /// Runs one attempt. Sends observations to `output` as they happen and
    /// returns when the attempt is over. When `cancel` fires, the driver stops
    /// the agent (its whole process tree) and returns [`AgentOutcome::Cancelled`].
    fn run(
        &self,
        task: AgentTask,
        output: mpsc::UnboundedSender<AgentOutput>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult>;

    /// Whether this driver gives the agent a prompt. When it does, the engine
    /// renders the prompt into [`AgentTask::prompt`] before each attempt (the
    /// driver keeps it with the agent's files); when it does not (the shell
    /// driver runs a command), no prompt is rendered, which keeps thousands of
    /// short commands cheap.
    fn uses_prompt(&self) -> bool {
        true
    }
}

/// What an attempt's STATUS events said about its end: the one place the
/// COMPLETE / FAILED markers (and `report_status` calls) are tallied, for
/// every driver and for `ingest`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusVerdict {
    /// A COMPLETE status was seen.
    pub saw_complete: bool,
    /// A FAILED status was seen.
    pub saw_failed: bool,
    /// Text of the last FAILED status that had any.
    pub failed_text: Option<String>,
}

impl StatusVerdict {
    /// Takes one event into account.
    pub fn note(&mut self, event: &ProtocolEvent) {
        if let ProtocolEvent::Status { status, text } = event {
            match status {
                crate::protocol::ReportedStatus::Complete => self.saw_complete = true,
                crate::protocol::ReportedStatus::Failed => {
                    self.saw_failed = true;
                    if !text.is_empty() {
                        self.failed_text = Some(text.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// The outcome of an attempt that ended normally with no exit status of
    /// its own (a model's last answer, an ingested reply, or a process that
    /// exited 0): a FAILED status fails it, else it completes, with a warning
    /// when no COMPLETE status was seen.
    pub fn outcome(&self) -> AgentOutcome {
        if self.saw_failed {
            AgentOutcome::Failed {
                reason: self
                    .failed_text
                    .clone()
                    .unwrap_or_else(|| "reported FAILED".into()),
            }
        } else {
            AgentOutcome::Completed {
                without_marker: !self.saw_complete,
            }
        }
    }
}
