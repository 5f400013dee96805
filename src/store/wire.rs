//! What travels through the queue, as JSON: an attempt's task, what the
//! worker observed while it ran, and how it ended.
//!
//! Only what a worker needs goes in: the agent as in the plan, its prompt and
//! limits. Paths are the worker's own (its `--workdir`), and no secret is
//! ever added: API keys come from each worker's environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::drivers::{AgentOutput, AgentTask, DriverResult};
use crate::journal::AgentOutcome;
use crate::plan::{Agent, Platform};
use crate::protocol::ProtocolEvent;

/// One attempt of one agent, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireTask {
    /// The run id.
    pub run_id: String,
    /// The agent, as in the plan.
    pub agent: Agent,
    /// The plan's platform, for an agent that names none.
    pub platform: Platform,
    /// The rendered prompt (empty for drivers without one).
    pub prompt: String,
    /// The engine's attempt number (the journal's).
    pub engine_attempt: u32,
    /// Why the previous attempt failed.
    pub retry_context: Option<String>,
    /// Hard time limit, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Silence watchdog, in milliseconds.
    pub stall_timeout_ms: Option<u64>,
    /// Grace between SIGTERM and SIGKILL, in milliseconds.
    pub kill_grace_ms: u64,
}

impl WireTask {
    /// The queued form of `task` (the plan's platform is `platform`).
    pub fn from_task(task: &AgentTask, platform: Platform) -> Self {
        Self {
            run_id: task.run_id.clone(),
            agent: task.agent.clone(),
            platform,
            prompt: task.prompt.clone(),
            engine_attempt: task.attempt,
            retry_context: task.retry_context.clone(),
            timeout_ms: task.timeout.map(|d| d.as_millis() as u64),
            stall_timeout_ms: task.stall_timeout.map(|d| d.as_millis() as u64),
            kill_grace_ms: task.kill_grace.as_millis() as u64,
        }
    }

    /// The task a worker runs: in its agent's working directory under
    /// `workdir`, with its run files under `workdir/.llm-orchestrate/runs/`,
    /// as queue attempt `attempt` (what the agent sees as `LLMO_ATTEMPT`).
    pub fn into_task(self, workdir: &Path, attempt: u32) -> AgentTask {
        let run_dir = workdir
            .join(".llm-orchestrate")
            .join("runs")
            .join(&self.run_id);
        AgentTask {
            agent_dir: run_dir.join("agents").join(&self.agent.agent_id),
            workdir: workdir.join(self.agent.working_directory()),
            run_dir,
            run_id: self.run_id,
            agent: self.agent,
            prompt: self.prompt,
            attempt,
            retry_context: self.retry_context,
            timeout: self.timeout_ms.map(Duration::from_millis),
            stall_timeout: self.stall_timeout_ms.map(Duration::from_millis),
            kill_grace: Duration::from_millis(self.kill_grace_ms),
        }
    }
}

/// The queue's routing name of an agent: its `driver` when set, `shell`
/// when it has a `command`, else its platform (the agent's, else the
/// plan's). Workers' `--platforms` filter on it.
pub fn routing_name(agent: &Agent, plan_platform: Platform) -> String {
    if let Some(kind) = agent.driver {
        return kind.to_string();
    }
    if agent.command.is_some() {
        return "shell".into();
    }
    agent.platform.unwrap_or(plan_platform).to_string()
}

/// An observation streamed back from a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum WireOutput {
    /// A STATUS-protocol event.
    Protocol {
        /// The event.
        event: ProtocolEvent,
    },
    /// One model request's usage.
    Usage {
        /// The model.
        model: String,
        /// Tokens.
        usage: crate::providers::Usage,
        /// Price in USD.
        cost_usd: Option<f64>,
    },
    /// An agent CLI's session id.
    Session {
        /// The id.
        id: String,
    },
    /// Tools used in the attempt.
    Tools {
        /// Uses per tool name.
        uses: BTreeMap<String, u32>,
    },
}

impl WireOutput {
    /// The wire form of an output; `None` for what only makes sense on the
    /// worker's machine (a process id).
    pub fn from_output(output: AgentOutput) -> Option<Self> {
        match output {
            AgentOutput::Protocol(event) => Some(Self::Protocol { event }),
            AgentOutput::Usage {
                model,
                usage,
                cost_usd,
            } => Some(Self::Usage {
                model,
                usage,
                cost_usd,
            }),
            AgentOutput::Session { id } => Some(Self::Session { id }),
            AgentOutput::Tools { uses } => Some(Self::Tools { uses }),
            AgentOutput::Spawned { .. } | AgentOutput::Claimed { .. } => None,
        }
    }

    /// The output it stands for.
    pub fn into_output(self) -> AgentOutput {
        match self {
            Self::Protocol { event } => AgentOutput::Protocol(event),
            Self::Usage {
                model,
                usage,
                cost_usd,
            } => AgentOutput::Usage {
                model,
                usage,
                cost_usd,
            },
            Self::Session { id } => AgentOutput::Session { id },
            Self::Tools { uses } => AgentOutput::Tools { uses },
        }
    }
}

/// How an attempt ended, as stored in its queue row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireResult {
    /// The outcome.
    pub outcome: AgentOutcome,
    /// Exit code, when the process exited by itself.
    pub exit_code: Option<i32>,
    /// The last lines of output.
    pub tail: String,
}

impl From<DriverResult> for WireResult {
    fn from(r: DriverResult) -> Self {
        Self {
            outcome: r.outcome,
            exit_code: r.exit_code,
            tail: r.tail,
        }
    }
}

impl From<WireResult> for DriverResult {
    fn from(r: WireResult) -> Self {
        Self {
            outcome: r.outcome,
            exit_code: r.exit_code,
            tail: r.tail,
        }
    }
}
