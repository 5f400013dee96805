//! The one event model of a run.

use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorReport, GateLine, ProgressReport, ReportedStatus};

/// How one attempt of an agent ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum AgentOutcome {
    /// The work is done.
    Completed {
        /// True when it ended without a COMPLETE marker (completed with a warning).
        without_marker: bool,
    },
    /// The attempt failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Killed at its time limit.
    TimedOut,
    /// Killed by the silence watchdog.
    Stalled,
    /// Cancelled by the orchestrator (stop-all, Ctrl-C).
    Cancelled,
    /// The agent's instructions were rendered for a person to give to an LLM
    /// (the `generic` platform); its reply comes back with `ingest`.
    AwaitingInput,
}

impl AgentOutcome {
    /// True for [`AgentOutcome::Completed`].
    pub fn is_success(&self) -> bool {
        matches!(self, AgentOutcome::Completed { .. })
    }

    /// True for outcomes that count against the agent (failed, timed out,
    /// stalled): not completed, cancelled, or waiting for a reply.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            AgentOutcome::Completed { .. } | AgentOutcome::Cancelled | AgentOutcome::AwaitingInput
        )
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Every agent completed and every gate passed.
    Succeeded,
    /// Some agents or gates failed.
    Failed,
    /// Waiting for a person.
    Paused,
    /// Stopped by Ctrl-C or a signal; resumable.
    Interrupted,
}

/// Something that happened in a run. Serialized with `type` set to the variant
/// name (`RunStarted`, …) and camelCase fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase", tag = "type")]
pub enum Event {
    /// The run began with this plan (the plan is stored as JSON).
    RunStarted {
        /// Run id.
        run_id: String,
        /// The plan as it will be executed.
        plan: serde_json::Value,
    },
    /// A resumed run continues.
    RunResumed,
    /// An agent attempt started.
    AgentStarted {
        /// Agent id.
        agent: String,
        /// 1-based attempt.
        attempt: u32,
    },
    /// A STATUS marker (or `report_status` call).
    AgentStatus {
        /// Agent id.
        agent: String,
        /// What it reported.
        status: ReportedStatus,
        /// Text after the marker.
        text: String,
    },
    /// A progress report.
    AgentReport {
        /// Agent id.
        agent: String,
        /// The report.
        report: ProgressReport,
    },
    /// An `[ERROR: ...]` block.
    AgentError {
        /// Agent id.
        agent: String,
        /// The block.
        report: ErrorReport,
    },
    /// A `[GATE: ...]` line written by an agent (a claim, not a gate result).
    AgentGateClaim {
        /// Agent id.
        agent: String,
        /// The line.
        line: GateLine,
    },
    /// Tokens (and their price) used by one model request of an agent.
    AgentUsage {
        /// Agent id.
        agent: String,
        /// The model that was called.
        model: String,
        /// Tokens.
        usage: crate::providers::Usage,
        /// Price in USD, when the model is in the price table.
        cost_usd: Option<f64>,
    },
    /// The run's budget (`budgetUsd` or `--max-budget-usd`) is spent: nothing
    /// new starts and running agents are stopped.
    RunBudgetExceeded {
        /// USD spent so far.
        spent_usd: f64,
        /// The budget.
        budget_usd: f64,
    },
    /// An attempt ended.
    AgentFinished {
        /// Agent id.
        agent: String,
        /// Attempt that ended.
        attempt: u32,
        /// How.
        outcome: AgentOutcome,
        /// Process exit code, when there was a process.
        exit_code: Option<i32>,
    },
    /// Another attempt will follow after a delay.
    AgentRetrying {
        /// Agent id.
        agent: String,
        /// The attempt that will run next.
        next_attempt: u32,
        /// Delay before it, in milliseconds.
        delay_ms: u64,
        /// The failure that causes the retry (given to the next attempt).
        reason: String,
    },
    /// The agent cannot run because a dependency failed.
    AgentBlocked {
        /// Agent id.
        agent: String,
        /// The failed dependency.
        by: String,
        /// Why.
        reason: String,
    },
    /// A wave started.
    WaveStarted {
        /// Wave id.
        wave: String,
    },
    /// A wave finished.
    WaveFinished {
        /// Wave id.
        wave: String,
        /// All its agents completed.
        ok: bool,
    },
    /// The run stopped before finishing (Ctrl-C, signal); resumable.
    RunInterrupted {
        /// Why.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// How.
        outcome: RunOutcome,
    },
    /// An agent CLI reported its session id (Claude Code, Codex, Gemini CLI),
    /// with which the conversation can be found or resumed.
    AgentSession {
        /// Agent id.
        agent: String,
        /// The attempt that reported it, when known.
        attempt: Option<u32>,
        /// The CLI's session (thread) id.
        session_id: String,
    },
    /// The tools an agent CLI used during one attempt, counted by name (one
    /// event per attempt, written when it ends).
    AgentTools {
        /// Agent id.
        agent: String,
        /// The attempt, when known.
        attempt: Option<u32>,
        /// Uses per tool name.
        uses: std::collections::BTreeMap<String, u32>,
    },
}

impl Event {
    /// The agent the event is about, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::AgentStarted { agent, .. }
            | Event::AgentStatus { agent, .. }
            | Event::AgentReport { agent, .. }
            | Event::AgentError { agent, .. }
            | Event::AgentGateClaim { agent, .. }
            | Event::AgentUsage { agent, .. }
            | Event::AgentFinished { agent, .. }
            | Event::AgentRetrying { agent, .. }
            | Event::AgentBlocked { agent, .. }
            | Event::AgentSession { agent, .. }
            | Event::AgentTools { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// The event's type name, as stored in the journal's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "RunStarted",
            Event::RunResumed => "RunResumed",
            Event::AgentStarted { .. } => "AgentStarted",
            Event::AgentStatus { .. } => "AgentStatus",
            Event::AgentReport { .. } => "AgentReport",
            Event::AgentError { .. } => "AgentError",
            Event::AgentGateClaim { .. } => "AgentGateClaim",
            Event::AgentUsage { .. } => "AgentUsage",
            Event::RunBudgetExceeded { .. } => "RunBudgetExceeded",
            Event::AgentFinished { .. } => "AgentFinished",
            Event::AgentRetrying { .. } => "AgentRetrying",
            Event::AgentBlocked { .. } => "AgentBlocked",
            Event::WaveStarted { .. } => "WaveStarted",
            Event::WaveFinished { .. } => "WaveFinished",
            Event::RunInterrupted { .. } => "RunInterrupted",
            Event::RunFinished { .. } => "RunFinished",
            Event::AgentSession { .. } => "AgentSession",
            Event::AgentTools { .. } => "AgentTools",
        }
    }
}

/// An event as stored: its sequence number and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// 1-based position in the journal.
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The event.
    pub event: Event,
}

/// Which agents' phases an event can change (see [`Event::phase_scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseScope<'a> {
    /// No agent's phase.
    None,
    /// This agent's phase.
    Agent(&'a str),
    /// Possibly every agent's phase.
    All,
}

impl Event {
    /// Which agents' phases applying this event can change.
    pub fn phase_scope(&self) -> PhaseScope<'_> {
        match self {
            Event::RunStarted { .. } | Event::RunResumed | Event::RunInterrupted { .. } => {
                PhaseScope::All
            }
            Event::AgentStarted { agent, .. }
            | Event::AgentFinished { agent, .. }
            | Event::AgentRetrying { agent, .. }
            | Event::AgentBlocked { agent, .. } => PhaseScope::Agent(agent),
            Event::AgentStatus { .. }
            | Event::AgentReport { .. }
            | Event::AgentError { .. }
            | Event::AgentGateClaim { .. }
            | Event::AgentUsage { .. }
            | Event::RunBudgetExceeded { .. }
            | Event::WaveStarted { .. }
            | Event::WaveFinished { .. }
            | Event::RunFinished { .. }
            | Event::AgentSession { .. }
            | Event::AgentTools { .. } => PhaseScope::None,
        }
    }
}
