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
    /// A remote worker claimed an attempt of the agent from the PostgreSQL
    /// queue (`run --workers-only`). A lost lease means a later claim of the
    /// same engine attempt, with a higher queue attempt.
    AgentClaimed {
        /// Agent id.
        agent: String,
        /// The engine's attempt.
        attempt: u32,
        /// The worker's id.
        worker: String,
        /// The queue attempt (the fencing token; what the agent sees as `LLMO_ATTEMPT`).
        claim: u32,
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
    /// The run's git workspace: base and integration branches (journaled
    /// once, when the run starts; `resume` and `clean` find it here).
    WorkspaceOpened {
        /// Where everything lives.
        info: crate::workspace::WorkspaceInfo,
    },
    /// An attempt's worktree is ready (created from the integration branch).
    WorktreeReady {
        /// Agent id.
        agent: String,
        /// Attempt.
        attempt: u32,
        /// The worktree.
        path: std::path::PathBuf,
        /// Its branch.
        branch: String,
        /// The commit it started from.
        start_commit: String,
    },
    /// What an attempt left on its branch (after the snapshot commit).
    WorktreeCommitted {
        /// Agent id.
        agent: String,
        /// Attempt.
        attempt: u32,
        /// The branch's tip.
        commit: String,
        /// Files changed since the start commit.
        changed_files: Vec<String>,
        /// Those outside the agent's scope.
        outside_scope: Vec<String>,
    },
    /// An agent's branch is part of the integration branch.
    AgentMerged {
        /// Agent id.
        agent: String,
        /// The merge commit (`None`: it already was reachable, e.g. merged by a person).
        commit: Option<String>,
    },
    /// Files changed outside an agent's scope, or a merge conflict.
    ConflictFound {
        /// Agent id.
        agent: String,
        /// Which kind.
        kind: ConflictKind,
        /// The files.
        files: Vec<String>,
        /// What `conflictHandling` did about it.
        action: ConflictAction,
    },
    /// A conflict was resolved (by a resolver agent or a person).
    ConflictResolved {
        /// Agent id.
        agent: String,
        /// `resolver agent` or `person`.
        by: String,
    },
    /// The integration branch landed on the base branch (`merge-all`).
    BaseLanded {
        /// The base branch.
        base_branch: String,
        /// Its new tip.
        commit: String,
        /// Whether it was a fast-forward.
        fast_forward: bool,
    },
    /// An agent's worktree was removed (its branch stays).
    WorktreeRemoved {
        /// Agent id.
        agent: String,
    },
    /// A quality gate ran (or was skipped).
    GateFinished {
        /// Which kind of gate run.
        level: GateLevel,
        /// The gate stage (`qualityGates` key: a wave id, `wave<N>` or `final`); `None` for an agent's own gates.
        stage: Option<String>,
        /// What was checked: an agent id, or `integration`.
        service: String,
        /// What it found.
        result: crate::gates::GateResult,
    },
    /// Every gate of a stage passed (or a person approved the stage).
    GateStagePassed {
        /// The stage.
        stage: String,
    },
    /// A gate stage failed and its `failureAction` was applied.
    GateStageFailed {
        /// The stage.
        stage: String,
        /// The action taken (after `--risk-tolerance`).
        action: crate::plan::FailureAction,
        /// Agents whose gates failed (empty when the integration branch failed).
        agents: Vec<String>,
    },
    /// A completed agent goes back for another attempt because a gate
    /// stage's `rollback-and-retry` failed its work.
    AgentRolledBack {
        /// Agent id.
        agent: String,
        /// The stage.
        stage: String,
        /// The gate failure (the next attempt's retry context).
        reason: String,
    },
    /// A person decided a manual review (`resume --approve` / `--reject`).
    ReviewDecided {
        /// The stage.
        stage: String,
        /// Approved (the stage counts as passed) or rejected (its agents fail).
        approved: bool,
        /// The stage's agents (failed when rejected).
        agents: Vec<String>,
    },
    /// A failed or blocked agent goes back to pending (`resume --retry-failed`,
    /// or a plan adaptation).
    AgentReset {
        /// Agent id.
        agent: String,
    },
    /// An adaptive analysis ran (`--mode adaptive`: after a wave, or when an
    /// agent failed for good).
    PlanAnalyzed {
        /// What set it off, in words (`wave w1 finished`, `agent A failed`).
        trigger: String,
        /// The wave analysed, for a wave's analysis.
        wave: Option<String>,
        /// Who analysed: `rules`, or `analyzer <model>`.
        source: String,
        /// What should be done, in words.
        recommendations: Vec<String>,
        /// USD the analyzer's request cost.
        cost_usd: f64,
    },
    /// A plan adaptation waits for a person (`resume --approve` / `--reject`).
    AdaptationProposed {
        /// The adaptation's number in the run (1-based).
        id: u32,
        /// What set it off.
        trigger: String,
        /// Who proposed it.
        source: String,
        /// The patch.
        patch: crate::adapt::PlanPatch,
        /// What it would change.
        diff: String,
    },
    /// The plan was adapted: from now on the run follows `plan`.
    PlanAdapted {
        /// The adaptation's number in the run (1-based).
        id: u32,
        /// What set it off.
        trigger: String,
        /// Who proposed it.
        source: String,
        /// The patch.
        patch: crate::adapt::PlanPatch,
        /// What changed.
        diff: String,
        /// The adapted plan (JSON).
        plan: serde_json::Value,
        /// Agents taken out of the plan (split or skipped).
        removed: Vec<String>,
        /// Gate stages that run again (their waves changed).
        stages: Vec<String>,
    },
    /// A proposed adaptation was not applied: invalid, unsafe or over a
    /// limit (`declined: false`), or rejected by a person (`declined: true`).
    AdaptationRejected {
        /// The adaptation's number, when it had been proposed.
        id: Option<u32>,
        /// What set it off.
        trigger: String,
        /// Who proposed it.
        source: String,
        /// Why it was not applied.
        reason: String,
        /// A person rejected it.
        declined: bool,
    },
    /// Something unusual is happening in the run.
    Anomaly {
        /// Which kind.
        kind: AnomalyKind,
        /// The agent, when it is about one.
        agent: Option<String>,
        /// What was seen.
        detail: String,
        /// What to do about it.
        recommendation: String,
    },
}

/// Kinds of [`Event::Anomaly`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// No progress for several times the agent's usual interval.
    Stalled,
    /// Reported progress went down.
    ProgressBackwards,
    /// Running longer than its estimate allows (beyond the history's spread).
    Overrun,
    /// The same gate failed again.
    RepeatedGateFailure,
    /// Spending faster than the budget's pace.
    CostBurn,
}

impl AnomalyKind {
    /// The kind's name, as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Stalled => "stalled",
            AnomalyKind::ProgressBackwards => "progress-backwards",
            AnomalyKind::Overrun => "overrun",
            AnomalyKind::RepeatedGateFailure => "repeated-gate-failure",
            AnomalyKind::CostBurn => "cost-burn",
        }
    }
}

/// Where a gate ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateLevel {
    /// An agent's own `qualityGates`, after it finished.
    Agent,
    /// A wave's stage, on one agent's work.
    Wave,
    /// A wave's stage, on the merged integration branch.
    Integration,
    /// The `final` stage.
    Final,
}

/// What kind of conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// The agent changed files outside its scope.
    OutsideScope,
    /// Its branch does not merge cleanly into the integration branch.
    Merge,
}

/// What was done about a conflict (from `conflictHandling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictAction {
    /// The agent failed (`fail`, `strict`; or an attempt outside its scope).
    Fail,
    /// The run paused for a person (`pause-and-resolve`, or a resolver that did not resolve).
    Pause,
    /// A resolver agent works on it (`resolve-with-agent`).
    Resolve,
}

impl ConflictKind {
    /// Words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ConflictKind::OutsideScope => "changed files outside its scope",
            ConflictKind::Merge => "merge conflict with the integration branch",
        }
    }
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
            | Event::AgentClaimed { agent, .. }
            | Event::AgentTools { agent, .. }
            | Event::WorktreeReady { agent, .. }
            | Event::WorktreeCommitted { agent, .. }
            | Event::AgentMerged { agent, .. }
            | Event::ConflictFound { agent, .. }
            | Event::ConflictResolved { agent, .. }
            | Event::WorktreeRemoved { agent }
            | Event::AgentRolledBack { agent, .. }
            | Event::AgentReset { agent } => Some(agent),
            Event::Anomaly { agent, .. } => agent.as_deref(),
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
            Event::AgentClaimed { .. } => "AgentClaimed",
            Event::AgentTools { .. } => "AgentTools",
            Event::WorkspaceOpened { .. } => "WorkspaceOpened",
            Event::WorktreeReady { .. } => "WorktreeReady",
            Event::WorktreeCommitted { .. } => "WorktreeCommitted",
            Event::AgentMerged { .. } => "AgentMerged",
            Event::ConflictFound { .. } => "ConflictFound",
            Event::ConflictResolved { .. } => "ConflictResolved",
            Event::BaseLanded { .. } => "BaseLanded",
            Event::WorktreeRemoved { .. } => "WorktreeRemoved",
            Event::GateFinished { .. } => "GateFinished",
            Event::GateStagePassed { .. } => "GateStagePassed",
            Event::GateStageFailed { .. } => "GateStageFailed",
            Event::AgentRolledBack { .. } => "AgentRolledBack",
            Event::ReviewDecided { .. } => "ReviewDecided",
            Event::AgentReset { .. } => "AgentReset",
            Event::PlanAnalyzed { .. } => "PlanAnalyzed",
            Event::AdaptationProposed { .. } => "AdaptationProposed",
            Event::PlanAdapted { .. } => "PlanAdapted",
            Event::AdaptationRejected { .. } => "AdaptationRejected",
            Event::Anomaly { .. } => "Anomaly",
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
            Event::ConflictFound {
                agent,
                action: ConflictAction::Fail,
                ..
            } => PhaseScope::Agent(agent),
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
            | Event::AgentClaimed { .. }
            | Event::AgentTools { .. }
            | Event::WorkspaceOpened { .. }
            | Event::WorktreeReady { .. }
            | Event::WorktreeCommitted { .. }
            | Event::AgentMerged { .. }
            | Event::ConflictFound { .. }
            | Event::ConflictResolved { .. }
            | Event::BaseLanded { .. }
            | Event::WorktreeRemoved { .. }
            | Event::GateFinished { .. }
            | Event::GateStagePassed { .. }
            | Event::GateStageFailed { .. }
            | Event::PlanAnalyzed { .. }
            | Event::AdaptationProposed { .. }
            | Event::AdaptationRejected { .. }
            | Event::Anomaly { .. } => PhaseScope::None,
            // Agents leave the plan.
            Event::PlanAdapted { .. } => PhaseScope::All,
            Event::AgentRolledBack { agent, .. } => PhaseScope::Agent(agent),
            // Dependants are reset with the agents they depend on: the
            // scheduler must see the whole batch, not one reset at a time.
            Event::AgentReset { .. } => PhaseScope::All,
            // A rejection fails the stage's agents.
            Event::ReviewDecided { .. } => PhaseScope::All,
        }
    }
}
