//! [`RunState`]: the state of a run, derived only by applying events in order.

use std::collections::BTreeMap;

use serde::Serialize;

use super::event::{AgentOutcome, ConflictAction, ConflictKind, Event, EventRecord, RunOutcome};
use crate::protocol::{ErrorReport, ReportedStatus};

/// Where an agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentPhase {
    /// Not started yet.
    Pending,
    /// An attempt is running.
    Running,
    /// Waiting to retry after a failed attempt.
    Retrying,
    /// Done.
    Completed,
    /// Failed for good.
    Failed,
    /// Cannot run: a dependency failed.
    Blocked,
    /// Its instructions wait for a person's LLM reply (`generic` platform; `ingest`).
    AwaitingInput,
}

impl AgentPhase {
    /// The phase's name as serialized (`pending`, `awaiting-input`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentPhase::Pending => "pending",
            AgentPhase::Running => "running",
            AgentPhase::Retrying => "retrying",
            AgentPhase::Completed => "completed",
            AgentPhase::Failed => "failed",
            AgentPhase::Blocked => "blocked",
            AgentPhase::AwaitingInput => "awaiting-input",
        }
    }

    /// Completed, failed or blocked: nothing more will happen.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            AgentPhase::Completed | AgentPhase::Failed | AgentPhase::Blocked
        )
    }
}

/// One agent's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    /// Agent id.
    pub id: String,
    /// Phase.
    pub phase: AgentPhase,
    /// Latest attempt number (0 before the first start).
    pub attempt: u32,
    /// Reported progress, 0–100.
    pub progress: u8,
    /// Latest STATUS marker.
    pub last_status: Option<ReportedStatus>,
    /// Text of the latest STATUS marker.
    pub last_status_text: String,
    /// Completed tasks from the latest progress report.
    pub completed_tasks: Vec<String>,
    /// Remaining tasks from the latest progress report.
    pub remaining_tasks: Vec<String>,
    /// Blockers (from reports, BLOCKED markers, or a failed dependency).
    pub blockers: Vec<String>,
    /// Estimated completion from the latest report.
    pub estimated_completion: Option<String>,
    /// `[ERROR: ...]` blocks and failure reasons.
    pub errors: Vec<ErrorReport>,
    /// Why the last attempt failed (given to the next one as retry context).
    pub last_failure: Option<String>,
    /// Outcome of the last finished attempt.
    pub outcome: Option<AgentOutcome>,
    /// Exit code of the last finished attempt.
    pub exit_code: Option<i32>,
    /// When the first attempt started (ms since epoch).
    pub started_at_ms: Option<i64>,
    /// When the agent reached a terminal phase.
    pub finished_at_ms: Option<i64>,
    /// Tokens used by all its attempts.
    pub usage: crate::providers::Usage,
    /// USD spent by all its attempts (requests to models with a known price).
    pub cost_usd: f64,
    /// Model requests whose price is unknown (their cost is not in `cost_usd`).
    pub unpriced_requests: u32,
    /// The last session id an agent CLI reported.
    pub session_id: Option<String>,
    /// Tool uses by all its attempts (agent CLIs).
    pub tool_uses: u32,
    /// Its git worktree and branch (runs with workspaces).
    pub git: Option<AgentGit>,
    /// Attempt bookkeeping for the run history (not part of any output).
    #[serde(skip)]
    pub attempts: AttemptStats,
}

/// How an agent's attempts went, as the run history records them: each
/// attempt from its `AgentStarted` to its `AgentFinished`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptStats {
    /// When the current attempt started.
    pub current_started_ms: Option<i64>,
    /// How long the attempt that completed the agent ran (ms).
    pub completing_ms: Option<i64>,
    /// Attempts that completed or failed (cancelled ones say nothing).
    pub counted: u32,
    /// Of those, failed ones.
    pub failed: u32,
    /// The model its requests last named.
    pub model: Option<String>,
}

/// An agent's git work: worktree, branch, commits, merge.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentGit {
    /// The worktree of the latest attempt (`None` once removed).
    pub worktree: Option<std::path::PathBuf>,
    /// The branch.
    pub branch: String,
    /// The commit the latest attempt started from.
    pub start_commit: String,
    /// The branch's tip after the latest attempt.
    pub commit: Option<String>,
    /// Files the latest attempt changed.
    pub changed_files: Vec<String>,
    /// Of those, files outside the scope.
    pub outside_scope: Vec<String>,
    /// Merged into the integration branch (the merge commit, or `already`).
    pub merged: Option<String>,
    /// An unresolved conflict.
    pub conflict: Option<GitConflict>,
}

/// A conflict waiting for resolution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConflict {
    /// Which kind.
    pub kind: ConflictKind,
    /// The files.
    pub files: Vec<String>,
    /// What was done.
    pub action: ConflictAction,
}

/// The integration branch landed on the base branch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Landed {
    /// The base branch.
    pub base_branch: String,
    /// Its new tip.
    pub commit: String,
    /// Whether it was a fast-forward.
    pub fast_forward: bool,
}

impl AgentState {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            phase: AgentPhase::Pending,
            attempt: 0,
            progress: 0,
            last_status: None,
            last_status_text: String::new(),
            completed_tasks: Vec::new(),
            remaining_tasks: Vec::new(),
            blockers: Vec::new(),
            estimated_completion: None,
            errors: Vec::new(),
            last_failure: None,
            outcome: None,
            exit_code: None,
            started_at_ms: None,
            finished_at_ms: None,
            usage: crate::providers::Usage::default(),
            cost_usd: 0.0,
            unpriced_requests: 0,
            session_id: None,
            tool_uses: 0,
            git: None,
            attempts: AttemptStats::default(),
        }
    }
}

/// The state of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    /// Run id.
    pub run_id: String,
    /// The plan, as started.
    pub plan: Option<serde_json::Value>,
    /// Agents by id.
    pub agents: BTreeMap<String, AgentState>,
    /// Waves started, in order.
    pub waves_started: Vec<String>,
    /// Waves finished, with success.
    pub waves_finished: Vec<(String, bool)>,
    /// How the run ended, if it did.
    pub outcome: Option<RunOutcome>,
    /// Interruptions so far.
    pub interruptions: u32,
    /// Last applied sequence number.
    pub last_seq: i64,
    /// The git workspace (runs with workspaces).
    pub workspace: Option<crate::workspace::WorkspaceInfo>,
    /// The integration branch landed on the base branch (`merge-all`).
    pub landed: Option<Landed>,
    /// Every gate run, in order.
    pub gate_runs: Vec<GateRun>,
    /// Gate stages by `qualityGates` key.
    pub stages: BTreeMap<String, StageState>,
    /// USD spent asking the gate advisor and the plan analyzer.
    pub advice_cost_usd: f64,
    /// Adaptive analyses, in order.
    pub analyses: Vec<AnalysisRecord>,
    /// Plan adaptations (proposed, applied, refused), in order.
    pub adaptations: Vec<Adaptation>,
    /// Agents taken out of the plan by an adaptation, as they were then.
    pub replaced: Vec<AgentState>,
    /// The concurrency an adaptation set, if any.
    pub adapted_concurrency: Option<u32>,
    /// Anomalies seen, in order.
    pub anomalies: Vec<AnomalyRecord>,
}

/// One adaptive analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRecord {
    /// What set it off.
    pub trigger: String,
    /// The wave, for a wave's analysis.
    pub wave: Option<String>,
    /// Who analysed.
    pub source: String,
    /// Its recommendations.
    pub recommendations: Vec<String>,
}

/// Where a plan adaptation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdaptationStatus {
    /// Waits for `resume --approve` / `--reject`.
    Proposed,
    /// Applied.
    Applied,
    /// Not applied: invalid, unsafe or over a limit.
    Refused,
    /// Rejected by a person.
    Declined,
}

/// One plan adaptation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adaptation {
    /// Its number (refusals of unnumbered proposals have none).
    pub id: Option<u32>,
    /// What set it off.
    pub trigger: String,
    /// Who proposed it.
    pub source: String,
    /// Where it is.
    pub status: AdaptationStatus,
    /// What it changes (empty for a refused, unreadable proposal).
    pub diff: String,
    /// Why it was refused or declined.
    pub reason: Option<String>,
    /// The patch (kept in memory while it waits for approval or once applied).
    #[serde(skip)]
    pub patch: Option<crate::adapt::PlanPatch>,
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyRecord {
    /// When (ms since epoch).
    pub at_ms: i64,
    /// Which kind.
    pub kind: super::event::AnomalyKind,
    /// The agent, if any.
    pub agent: Option<String>,
    /// What was seen.
    pub detail: String,
    /// What to do.
    pub recommendation: String,
}

/// One gate run, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateRun {
    /// Which kind of run.
    pub level: super::event::GateLevel,
    /// Its stage, if any.
    pub stage: Option<String>,
    /// What was checked (agent id or `integration`).
    pub service: String,
    /// What it found.
    pub result: crate::gates::GateResult,
}

/// Where a gate stage is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageState {
    /// Passed (or approved); it will not run again.
    pub passed: bool,
    /// Failed and its action was applied (latest failure).
    pub failed_action: Option<crate::plan::FailureAction>,
    /// Rollback-and-retry rounds used.
    pub rollbacks: u32,
    /// A person's decision on a manual review.
    pub review: Option<bool>,
}

impl RunState {
    /// Replays records in order.
    pub fn replay<'a>(records: impl IntoIterator<Item = &'a EventRecord>) -> Self {
        let mut state = RunState::default();
        for record in records {
            state.apply(record);
        }
        state
    }

    fn agent(&mut self, id: &str) -> &mut AgentState {
        self.agents
            .entry(id.to_string())
            .or_insert_with(|| AgentState::new(id))
    }

    /// Applies one event. The only place run state changes.
    pub fn apply(&mut self, record: &EventRecord) {
        self.apply_with(record, true);
    }

    /// [`Self::apply`] without keeping a copy of the plan's JSON
    /// (`RunStarted`, `PlanAdapted`): for the engine, which keeps the plan
    /// decoded. Copying a large plan's JSON only to drop it was 2 ms of a
    /// 1,000-agent run's start.
    pub fn apply_without_plan_copy(&mut self, record: &EventRecord) {
        self.apply_with(record, false);
    }

    fn apply_with(&mut self, record: &EventRecord, keep_plan: bool) {
        self.last_seq = record.seq;
        let at = record.at_ms;
        match &record.event {
            Event::RunStarted { run_id, plan } => {
                self.run_id = run_id.clone();
                self.plan = keep_plan.then(|| plan.clone());
                for id in plan_agent_ids(plan) {
                    self.agent(&id);
                }
            }
            Event::RunResumed => {
                // Whatever was running when the previous process stopped did not finish.
                self.outcome = None;
                for a in self.agents.values_mut() {
                    if matches!(a.phase, AgentPhase::Running | AgentPhase::Retrying) {
                        a.phase = AgentPhase::Pending;
                    }
                }
            }
            Event::AgentStarted { agent, attempt } => {
                let a = self.agent(agent);
                a.phase = AgentPhase::Running;
                a.attempt = *attempt;
                a.started_at_ms.get_or_insert(at);
                a.attempts.current_started_ms = Some(at);
            }
            Event::AgentStatus {
                agent,
                status,
                text,
            } => {
                let a = self.agent(agent);
                a.last_status = Some(*status);
                a.last_status_text = text.clone();
                match status {
                    ReportedStatus::Progress(p) => a.progress = *p,
                    ReportedStatus::Complete => a.progress = 100,
                    ReportedStatus::Blocked if !text.is_empty() && !a.blockers.contains(text) => {
                        a.blockers.push(text.clone());
                    }
                    _ => {}
                }
            }
            Event::AgentReport { agent, report } => {
                let a = self.agent(agent);
                a.completed_tasks = report.completed_tasks.clone();
                a.remaining_tasks = report.remaining_tasks.clone();
                a.blockers = report.blockers.clone();
                a.estimated_completion = report.estimated_completion.clone();
                if let Some(ReportedStatus::Progress(p)) = report.status {
                    a.progress = p;
                }
            }
            Event::AgentError { agent, report } => self.agent(agent).errors.push(report.clone()),
            Event::AgentGateClaim { .. } => {}
            Event::AgentUsage {
                agent,
                model,
                usage,
                cost_usd,
            } => {
                let a = self.agent(agent);
                a.usage.add(*usage);
                if a.attempts.model.as_deref() != Some(model.as_str()) {
                    a.attempts.model = Some(model.clone());
                }
                match cost_usd {
                    Some(cost) => a.cost_usd += cost,
                    None => a.unpriced_requests += 1,
                }
            }
            Event::RunBudgetExceeded { .. } => {}
            Event::AgentFinished {
                agent,
                attempt,
                outcome,
                exit_code,
            } => {
                let a = self.agent(agent);
                a.attempt = *attempt;
                a.exit_code = *exit_code;
                a.outcome = Some(outcome.clone());
                let ran_ms = a
                    .attempts
                    .current_started_ms
                    .take()
                    .map(|start| (at - start).max(0));
                if outcome.is_success() {
                    a.attempts.counted += 1;
                    a.attempts.completing_ms = ran_ms;
                } else if outcome.is_failure() {
                    a.attempts.counted += 1;
                    a.attempts.failed += 1;
                }
                match outcome {
                    AgentOutcome::Completed { .. } => {
                        a.phase = AgentPhase::Completed;
                        a.progress = 100;
                        a.finished_at_ms = Some(at);
                    }
                    AgentOutcome::Cancelled => a.phase = AgentPhase::Pending,
                    AgentOutcome::AwaitingInput => a.phase = AgentPhase::AwaitingInput,
                    AgentOutcome::Failed { reason } => {
                        a.phase = AgentPhase::Failed;
                        a.last_failure = Some(reason.clone());
                        a.finished_at_ms = Some(at);
                    }
                    AgentOutcome::TimedOut | AgentOutcome::Stalled => {
                        a.phase = AgentPhase::Failed;
                        a.last_failure = Some(if *outcome == AgentOutcome::TimedOut {
                            "timed out".into()
                        } else {
                            "stalled: no output for too long".into()
                        });
                        a.finished_at_ms = Some(at);
                    }
                }
            }
            Event::AgentRetrying { agent, reason, .. } => {
                let a = self.agent(agent);
                a.phase = AgentPhase::Retrying;
                a.last_failure = Some(reason.clone());
                a.finished_at_ms = None;
            }
            Event::AgentBlocked { agent, by, reason } => {
                let a = self.agent(agent);
                a.phase = AgentPhase::Blocked;
                a.blockers = vec![format!("{by}: {reason}")];
                a.finished_at_ms = Some(at);
            }
            Event::WaveStarted { wave } => self.waves_started.push(wave.clone()),
            Event::WaveFinished { wave, ok } => self.waves_finished.push((wave.clone(), *ok)),
            Event::RunInterrupted { .. } => {
                self.interruptions += 1;
                self.outcome = Some(RunOutcome::Interrupted);
                for a in self.agents.values_mut() {
                    if matches!(a.phase, AgentPhase::Running | AgentPhase::Retrying) {
                        a.phase = AgentPhase::Pending;
                    }
                }
            }
            Event::RunFinished { outcome } => self.outcome = Some(*outcome),
            Event::AgentSession {
                agent, session_id, ..
            } => self.agent(agent).session_id = Some(session_id.clone()),
            // Which remote worker runs an attempt changes nothing of its state.
            Event::AgentClaimed { .. } => {}
            Event::AgentTools { agent, uses, .. } => {
                let a = self.agent(agent);
                a.tool_uses = a.tool_uses.saturating_add(uses.values().sum());
            }
            Event::WorkspaceOpened { info } => self.workspace = Some(info.clone()),
            Event::WorktreeReady {
                agent,
                path,
                branch,
                start_commit,
                ..
            } => {
                let a = self.agent(agent);
                let conflict = a.git.take().and_then(|g| g.conflict);
                a.git = Some(AgentGit {
                    worktree: Some(path.clone()),
                    branch: branch.clone(),
                    start_commit: start_commit.clone(),
                    conflict: conflict.filter(|c| c.kind == ConflictKind::Merge),
                    ..AgentGit::default()
                });
            }
            Event::WorktreeCommitted {
                agent,
                commit,
                changed_files,
                outside_scope,
                ..
            } => {
                let git = self.agent(agent).git.get_or_insert_with(AgentGit::default);
                git.commit = Some(commit.clone());
                git.changed_files = changed_files.clone();
                git.outside_scope = outside_scope.clone();
            }
            Event::AgentMerged { agent, commit } => {
                let git = self.agent(agent).git.get_or_insert_with(AgentGit::default);
                git.merged = Some(commit.clone().unwrap_or_else(|| "already".into()));
                git.conflict = None;
            }
            Event::ConflictFound {
                agent,
                kind,
                files,
                action,
            } => {
                let a = self.agent(agent);
                let git = a.git.get_or_insert_with(AgentGit::default);
                git.conflict = Some(GitConflict {
                    kind: *kind,
                    files: files.clone(),
                    action: *action,
                });
                let text = format!("{}: {}", kind.describe(), files.join(", "));
                if *action == ConflictAction::Fail {
                    a.phase = AgentPhase::Failed;
                    a.last_failure = Some(text.clone());
                    a.outcome = Some(AgentOutcome::Failed {
                        reason: text.clone(),
                    });
                    a.finished_at_ms = Some(at);
                }
                a.errors.push(ErrorReport {
                    title: format!("Agent {agent} conflict"),
                    agent: Some(agent.clone()),
                    cause: Some(text),
                    impact: None,
                    recommendation: Some(match action {
                        ConflictAction::Fail => {
                            "fix the scopes or the work, then run it again".into()
                        }
                        ConflictAction::Pause => {
                            "resolve it by hand, then `llm-orchestrate resume`".into()
                        }
                        ConflictAction::Resolve => "a resolver agent is working on it".into(),
                    }),
                });
            }
            Event::ConflictResolved { agent, .. } => {
                if let Some(git) = &mut self.agent(agent).git {
                    git.conflict = None;
                }
            }
            Event::BaseLanded {
                base_branch,
                commit,
                fast_forward,
            } => {
                self.landed = Some(Landed {
                    base_branch: base_branch.clone(),
                    commit: commit.clone(),
                    fast_forward: *fast_forward,
                });
            }
            Event::WorktreeRemoved { agent } => {
                if let Some(git) = &mut self.agent(agent).git {
                    git.worktree = None;
                }
            }
            Event::GateFinished {
                level,
                stage,
                service,
                result,
            } => {
                self.advice_cost_usd += result.advice_cost_usd.unwrap_or(0.0);
                self.gate_runs.push(GateRun {
                    level: *level,
                    stage: stage.clone(),
                    service: service.clone(),
                    result: result.clone(),
                });
            }
            Event::GateStagePassed { stage } => {
                let s = self.stages.entry(stage.clone()).or_default();
                s.passed = true;
                s.failed_action = None;
            }
            Event::GateStageFailed { stage, action, .. } => {
                let s = self.stages.entry(stage.clone()).or_default();
                s.failed_action = Some(*action);
                if *action == crate::plan::FailureAction::RollbackAndRetry {
                    s.rollbacks += 1;
                }
            }
            Event::AgentRolledBack { agent, reason, .. } => {
                let a = self.agent(agent);
                a.phase = AgentPhase::Retrying;
                a.last_failure = Some(reason.clone());
                a.finished_at_ms = None;
                a.progress = 0;
            }
            Event::AgentReset { agent } => {
                let a = self.agent(agent);
                a.phase = AgentPhase::Pending;
                a.blockers.clear();
                a.finished_at_ms = None;
                a.progress = 0;
            }
            Event::PlanAnalyzed {
                trigger,
                wave,
                source,
                recommendations,
                cost_usd,
            } => {
                self.advice_cost_usd += cost_usd;
                self.analyses.push(AnalysisRecord {
                    trigger: trigger.clone(),
                    wave: wave.clone(),
                    source: source.clone(),
                    recommendations: recommendations.clone(),
                });
            }
            Event::AdaptationProposed {
                id,
                trigger,
                source,
                patch,
                diff,
            } => self.adaptations.push(Adaptation {
                id: Some(*id),
                trigger: trigger.clone(),
                source: source.clone(),
                status: AdaptationStatus::Proposed,
                diff: diff.clone(),
                reason: None,
                patch: Some(patch.clone()),
            }),
            Event::PlanAdapted {
                id,
                trigger,
                source,
                patch,
                diff,
                plan,
                removed,
                stages,
            } => {
                self.plan = keep_plan.then(|| plan.clone());
                for agent in removed {
                    if let Some(state) = self.agents.remove(agent) {
                        self.replaced.push(state);
                    }
                }
                for key in stages {
                    self.stages.remove(key);
                }
                if let Some(c) = patch.operations.iter().rev().find_map(|op| match op {
                    crate::adapt::PatchOp::Concurrency { value } => Some(*value),
                    _ => None,
                }) {
                    self.adapted_concurrency = Some(c);
                }
                let applied = Adaptation {
                    id: Some(*id),
                    trigger: trigger.clone(),
                    source: source.clone(),
                    status: AdaptationStatus::Applied,
                    diff: diff.clone(),
                    reason: None,
                    patch: Some(patch.clone()),
                };
                match self.adaptations.iter_mut().find(|a| a.id == Some(*id)) {
                    Some(a) => *a = applied,
                    None => self.adaptations.push(applied),
                }
            }
            Event::AdaptationRejected {
                id,
                trigger,
                source,
                reason,
                declined,
            } => {
                let status = if *declined {
                    AdaptationStatus::Declined
                } else {
                    AdaptationStatus::Refused
                };
                match self
                    .adaptations
                    .iter_mut()
                    .find(|a| id.is_some() && a.id == *id)
                {
                    Some(a) => {
                        a.status = status;
                        a.reason = Some(reason.clone());
                        a.patch = None;
                    }
                    None => self.adaptations.push(Adaptation {
                        id: *id,
                        trigger: trigger.clone(),
                        source: source.clone(),
                        status,
                        diff: String::new(),
                        reason: Some(reason.clone()),
                        patch: None,
                    }),
                }
            }
            Event::Anomaly {
                kind,
                agent,
                detail,
                recommendation,
            } => self.anomalies.push(AnomalyRecord {
                at_ms: at,
                kind: *kind,
                agent: agent.clone(),
                detail: detail.clone(),
                recommendation: recommendation.clone(),
            }),
            Event::ReviewDecided {
                stage,
                approved,
                agents,
            } => {
                let s = self.stages.entry(stage.clone()).or_default();
                s.review = Some(*approved);
                s.passed = *approved;
                s.failed_action = None;
                if !*approved {
                    let reason = format!("rejected in the manual review of gate stage {stage}");
                    for id in agents {
                        let a = self.agent(id);
                        a.phase = AgentPhase::Failed;
                        a.outcome = Some(AgentOutcome::Failed {
                            reason: reason.clone(),
                        });
                        a.last_failure = Some(reason.clone());
                        a.finished_at_ms = Some(at);
                    }
                }
            }
        }
    }

    /// The adaptation waiting for a person's approval, if any.
    pub fn pending_adaptation(&self) -> Option<&Adaptation> {
        self.adaptations
            .iter()
            .rev()
            .find(|a| a.status == AdaptationStatus::Proposed)
    }

    /// Agents that completed (never run again on resume).
    pub fn completed(&self) -> impl Iterator<Item = &AgentState> {
        self.agents
            .values()
            .filter(|a| a.phase == AgentPhase::Completed)
    }

    /// USD spent so far: by every agent, those an adaptation took out of
    /// the plan included (what they spent before is spent: it counts against
    /// the run's budget and in its totals), and on advice.
    pub fn cost_usd(&self) -> f64 {
        self.agents
            .values()
            .chain(&self.replaced)
            .map(|a| a.cost_usd)
            .sum::<f64>()
            + self.advice_cost_usd
    }

    /// Tokens used by every agent so far, those an adaptation took out of
    /// the plan included.
    pub fn usage(&self) -> crate::providers::Usage {
        let mut total = crate::providers::Usage::default();
        for agent in self.agents.values().chain(&self.replaced) {
            total.add(agent.usage);
        }
        total
    }

    /// Mean progress over all agents, 0–100.
    pub fn overall_progress(&self) -> u8 {
        if self.agents.is_empty() {
            return 0;
        }
        let sum: u32 = self.agents.values().map(|a| u32::from(a.progress)).sum();
        (sum / self.agents.len() as u32) as u8
    }
}

fn plan_agent_ids(plan: &serde_json::Value) -> Vec<String> {
    plan["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["agents"].as_array().into_iter().flatten())
        .filter_map(|a| a["agentId"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64, event: Event) -> EventRecord {
        EventRecord {
            seq,
            at_ms: seq * 1000,
            event,
        }
    }

    #[test]
    fn applying_without_a_plan_copy_differs_only_in_the_plan() {
        let plan = serde_json::json!({"waves": [{"waveId": "w", "agents": [
            {"agentId": "A"}, {"agentId": "B"}]}]});
        let records = [
            rec(
                1,
                Event::RunStarted {
                    run_id: "r".into(),
                    plan: plan.clone(),
                },
            ),
            rec(
                2,
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 1,
                },
            ),
        ];
        let mut kept = RunState::default();
        let mut lean = RunState::default();
        for record in &records {
            kept.apply(record);
            lean.apply_without_plan_copy(record);
        }
        assert_eq!(kept.plan, Some(plan));
        assert_eq!(lean.plan, None);
        assert_eq!(
            lean.agents.len(),
            2,
            "the plan's agents are known all the same"
        );
        kept.plan = None;
        assert_eq!(kept, lean);
    }

    #[test]
    fn usage_and_cost_add_up_per_agent_and_per_run() {
        let usage = |i, o| crate::providers::Usage {
            input_tokens: i,
            output_tokens: o,
            cached_input_tokens: 0,
        };
        let event = |agent: &str, u, cost| Event::AgentUsage {
            agent: agent.into(),
            model: "m".into(),
            usage: u,
            cost_usd: cost,
        };
        let state = RunState::replay(&[
            rec(1, event("A", usage(100, 10), Some(0.5))),
            rec(2, event("A", usage(50, 5), Some(0.25))),
            rec(3, event("B", usage(7, 3), None)),
        ]);
        assert_eq!(state.agents["A"].usage, usage(150, 15));
        assert_eq!(state.agents["A"].cost_usd, 0.75);
        assert_eq!(state.agents["B"].unpriced_requests, 1);
        assert_eq!(state.usage(), usage(157, 18));
        assert_eq!(state.cost_usd(), 0.75);
    }

    /// What an agent spent before an adaptation took it out of the plan
    /// stays spent: in the run's totals and against its budget.
    #[test]
    fn an_agent_taken_out_by_an_adaptation_still_counts_in_usage_and_cost() {
        let usage = crate::providers::Usage {
            input_tokens: 100,
            output_tokens: 10,
            cached_input_tokens: 0,
        };
        let spent = |agent: &str| Event::AgentUsage {
            agent: agent.into(),
            model: "m".into(),
            usage,
            cost_usd: Some(0.5),
        };
        let patch: crate::adapt::PlanPatch = serde_json::from_value(serde_json::json!({
            "reason": "split it",
            "operations": [{"op": "skip", "agent": "A"}]
        }))
        .unwrap();
        let state = RunState::replay(&[
            rec(1, spent("A")),
            rec(2, spent("B")),
            rec(
                3,
                Event::PlanAdapted {
                    id: 1,
                    trigger: "A failed".into(),
                    source: "rules".into(),
                    patch,
                    diff: String::new(),
                    plan: serde_json::json!({}),
                    removed: vec!["A".into()],
                    stages: Vec::new(),
                },
            ),
        ]);
        assert!(!state.agents.contains_key("A"));
        assert_eq!(state.replaced.len(), 1);
        assert_eq!(state.cost_usd(), 1.0);
        assert_eq!(state.usage().input_tokens, 200);
    }

    #[test]
    fn keeps_the_last_session_id_and_counts_tool_uses() {
        let session = |id: &str, attempt| Event::AgentSession {
            agent: "A".into(),
            attempt: Some(attempt),
            session_id: id.into(),
        };
        let tools = |n| Event::AgentTools {
            agent: "A".into(),
            attempt: None,
            uses: [("Write".to_string(), n), ("Bash".to_string(), 1)].into(),
        };
        let state = RunState::replay(&[
            rec(1, session("s-1", 1)),
            rec(2, tools(2)),
            rec(3, session("s-2", 2)),
            rec(4, tools(1)),
        ]);
        assert_eq!(state.agents["A"].session_id.as_deref(), Some("s-2"));
        assert_eq!(state.agents["A"].tool_uses, 5);
        // Stored as JSON with `type` and camelCase fields, like every event.
        let json = serde_json::to_value(session("s-1", 1)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "AgentSession", "agent": "A", "attempt": 1, "sessionId": "s-1"})
        );
    }

    #[test]
    fn folds_a_run_with_a_retry_and_a_blocked_dependant() {
        let plan = serde_json::json!({"waves": [{"agents": [{"agentId": "A"}, {"agentId": "B"}]}]});
        let events = vec![
            rec(
                1,
                Event::RunStarted {
                    run_id: "r1".into(),
                    plan,
                },
            ),
            rec(
                2,
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 1,
                },
            ),
            rec(
                3,
                Event::AgentStatus {
                    agent: "A".into(),
                    status: ReportedStatus::Progress(50),
                    text: "half".into(),
                },
            ),
            rec(
                4,
                Event::AgentFinished {
                    agent: "A".into(),
                    attempt: 1,
                    outcome: AgentOutcome::Failed {
                        reason: "exit 1".into(),
                    },
                    exit_code: Some(1),
                },
            ),
            rec(
                5,
                Event::AgentRetrying {
                    agent: "A".into(),
                    next_attempt: 2,
                    delay_ms: 100,
                    reason: "exit 1".into(),
                },
            ),
            rec(
                6,
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 2,
                },
            ),
            rec(
                7,
                Event::AgentFinished {
                    agent: "A".into(),
                    attempt: 2,
                    outcome: AgentOutcome::TimedOut,
                    exit_code: None,
                },
            ),
            rec(
                8,
                Event::AgentBlocked {
                    agent: "B".into(),
                    by: "A".into(),
                    reason: "A timed out".into(),
                },
            ),
            rec(
                9,
                Event::RunFinished {
                    outcome: RunOutcome::Failed,
                },
            ),
        ];
        let state = RunState::replay(&events);
        assert_eq!(state.run_id, "r1");
        let a = &state.agents["A"];
        assert_eq!(a.phase, AgentPhase::Failed);
        assert_eq!(a.attempt, 2);
        assert_eq!(a.progress, 50);
        assert_eq!(a.last_failure.as_deref(), Some("timed out"));
        assert_eq!(state.agents["B"].phase, AgentPhase::Blocked);
        assert_eq!(state.agents["B"].blockers, vec!["A: A timed out"]);
        assert_eq!(state.outcome, Some(RunOutcome::Failed));
        assert_eq!(state.last_seq, 9);
        assert_eq!(state.overall_progress(), 25);
    }

    #[test]
    fn an_interruption_returns_running_agents_to_pending_but_keeps_completed_ones() {
        let plan = serde_json::json!({"waves": [{"agents": [{"agentId": "A"}, {"agentId": "B"}]}]});
        let events = vec![
            rec(
                1,
                Event::RunStarted {
                    run_id: "r".into(),
                    plan,
                },
            ),
            rec(
                2,
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 1,
                },
            ),
            rec(
                3,
                Event::AgentStarted {
                    agent: "B".into(),
                    attempt: 1,
                },
            ),
            rec(
                4,
                Event::AgentFinished {
                    agent: "A".into(),
                    attempt: 1,
                    outcome: AgentOutcome::Completed {
                        without_marker: false,
                    },
                    exit_code: Some(0),
                },
            ),
            rec(
                5,
                Event::RunInterrupted {
                    reason: "SIGINT".into(),
                },
            ),
        ];
        let state = RunState::replay(&events);
        assert_eq!(state.agents["A"].phase, AgentPhase::Completed);
        assert_eq!(state.agents["B"].phase, AgentPhase::Pending);
        assert_eq!(state.agents["B"].attempt, 1);
        assert_eq!(state.outcome, Some(RunOutcome::Interrupted));
        assert_eq!(state.completed().count(), 1);
    }
}
