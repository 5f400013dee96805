//! What the dashboard shows, folded from journal events.
//!
//! A [`Tracker`] applies events in order: the run's [`RunState`] (the one fold
//! every reader shares) plus what only the dashboard keeps, each agent's
//! attempts (for the Gantt), status history and progress reports, and the
//! recent activity lines. From it come the views sent to browsers:
//! [`AgentView`] per agent, [`RunSummary`] for the run, [`RunView`] for both.
//!
//! Views never carry an agent's `command` or `env` (they may hold secrets).

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::timeline::{self, CriticalPath};
use crate::gates::GateStatus;
use crate::journal::{
    AgentGit, AgentOutcome, AgentPhase, AgentState, Event, EventRecord, GateLevel, GateRun, Landed,
    PhaseScope, RunOutcome, RunState, StageState,
};
use crate::plan::{Agent, Plan};
use crate::protocol::{ErrorReport, ProgressReport, ReportedStatus};
use crate::providers::Usage;

/// Status markers kept per agent (the latest ones).
pub const STATUS_HISTORY_LIMIT: usize = 200;
/// Progress reports kept per agent (the latest ones).
pub const REPORT_HISTORY_LIMIT: usize = 50;
/// Activity lines kept per run (the latest ones).
pub const ACTIVITY_LIMIT: usize = 200;

/// One attempt of an agent: a bar of the Gantt chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptSpan {
    /// 1-based attempt.
    pub attempt: u32,
    /// When it started (ms since the epoch).
    pub start_ms: i64,
    /// When it ended (`None` while it runs).
    pub end_ms: Option<i64>,
    /// How it ended: `completed`, `failed`, `timed-out`, `stalled`,
    /// `cancelled`, `awaiting-input` (`None` while it runs).
    pub outcome: Option<String>,
}

/// One STATUS marker as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The seed's spelling: `STARTED`, `PROGRESS-50%`, `COMPLETE`, …
    pub marker: String,
    /// The text after the marker.
    pub text: String,
}

/// One progress report, with its time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The report.
    #[serde(flatten)]
    pub report: ProgressReport,
}

/// One line of the run's activity feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityLine {
    /// The event's journal sequence number.
    pub seq: i64,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The agent it is about, if any.
    pub agent: Option<String>,
    /// What happened, as the progress lines print it.
    pub text: String,
}

/// The latest result of one gate on an agent's work.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateBadge {
    /// The gate's name.
    pub gate: String,
    /// Passed, failed or skipped.
    pub status: GateStatus,
    /// Tests passed.
    pub passed: u32,
    /// Tests failed.
    pub failed: u32,
}

/// One agent as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Its wave's id (`None` for an agent the plan does not name).
    pub wave: Option<String>,
    /// 1-based position of its wave.
    pub wave_number: Option<usize>,
    /// What it must do.
    pub work_description: String,
    /// Its scope folders.
    pub scope: Vec<String>,
    /// The agents it depends on.
    pub dependencies: Vec<String>,
    /// Its platform, driver and model, as the plan names them.
    pub runs_on: Option<String>,
    /// `pending`, `running`, `retrying`, `completed`, `completed-without-marker`,
    /// `failed`, `timed-out`, `stalled`, `blocked` or `awaiting-input`.
    pub status: &'static str,
    /// Reported progress, 0–100.
    pub progress: u8,
    /// Latest attempt (0 before the first).
    pub attempt: u32,
    /// The latest STATUS marker (`PROGRESS-50%`).
    pub last_status: Option<String>,
    /// The text after it.
    pub last_status_text: String,
    /// When its first attempt started.
    pub started_at_ms: Option<i64>,
    /// When it reached its end.
    pub finished_at_ms: Option<i64>,
    /// The plan's `estimatedDuration`, in ms.
    pub estimate_ms: Option<i64>,
    /// Tokens used.
    pub usage: Usage,
    /// USD spent (requests with a known price).
    pub cost_usd: f64,
    /// Requests whose price is unknown.
    pub unpriced_requests: u32,
    /// Tool uses its agent CLI reported.
    pub tool_uses: u32,
    /// The latest result of each gate run on its work.
    pub gate_badges: Vec<GateBadge>,
    /// Every gate run on its work, in order (failing tests included).
    pub gates: Vec<GateRun>,
    /// Its attempts, in order.
    pub attempts: Vec<AttemptSpan>,
    /// Its STATUS markers, oldest first (the latest [`STATUS_HISTORY_LIMIT`]).
    pub status_history: Vec<StatusEntry>,
    /// Its progress reports, oldest first (the latest [`REPORT_HISTORY_LIMIT`]).
    pub reports: Vec<ReportEntry>,
    /// Completed tasks from the latest report.
    pub completed_tasks: Vec<String>,
    /// Remaining tasks from the latest report.
    pub remaining_tasks: Vec<String>,
    /// Blockers.
    pub blockers: Vec<String>,
    /// Estimated completion from the latest report.
    pub estimated_completion: Option<String>,
    /// `[ERROR: ...]` blocks and conflicts.
    pub errors: Vec<ErrorReport>,
    /// Why the last failed attempt failed.
    pub last_failure: Option<String>,
    /// Exit code of the last finished attempt.
    pub exit_code: Option<i32>,
    /// For failed and blocked agents: the agents its failure blocks.
    pub impact: Option<String>,
    /// For failed and blocked agents: what to do.
    pub recommendation: Option<String>,
    /// Its git branch, commits and merge (runs in worktrees).
    pub git: Option<AgentGit>,
    /// The end of its output log (only in the HTML report; the server
    /// serves it on its own URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tail: Option<String>,
}

/// One wave as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveView {
    /// Wave id.
    pub id: String,
    /// 1-based position.
    pub number: usize,
    /// Agents run concurrently.
    pub parallel: bool,
    /// Free text.
    pub description: Option<String>,
    /// Its agents, in plan order.
    pub agents: Vec<String>,
    /// `pending`, `running`, `passed` or `failed`.
    pub state: &'static str,
}

/// The run as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Run id (empty before `RunStarted`).
    pub run_id: String,
    /// The plan's `orchestrationId`.
    pub orchestration_id: Option<String>,
    /// The plan's description.
    pub description: Option<String>,
    /// `waves`, `continuous` or `adaptive`.
    pub mode: Option<String>,
    /// How it ended (`None` while it goes on, or before it ended).
    pub outcome: Option<RunOutcome>,
    /// Its first event.
    pub started_at_ms: Option<i64>,
    /// When it finished or was interrupted (`None` while it goes on).
    pub finished_at_ms: Option<i64>,
    /// The latest journal sequence number applied.
    pub last_seq: i64,
    /// The server's clock when this was made (browsers correct their clock by it).
    pub now_ms: i64,
    /// Mean progress of all agents.
    pub overall_progress: u8,
    /// Agents.
    pub agent_count: usize,
    /// Agents per status (see [`AgentView::status`]).
    pub counts: BTreeMap<&'static str, usize>,
    /// Tokens used by every agent.
    pub usage: Usage,
    /// USD spent (agents and the gate advisor).
    pub cost_usd: f64,
    /// Attempts over all agents.
    pub attempts: u32,
    /// Waves in plan order.
    pub waves: Vec<WaveView>,
    /// The critical path by actual and estimated durations.
    pub critical_path: CriticalPath,
    /// Gate runs on the merged integration branch and the final stage.
    pub gates: Vec<GateRun>,
    /// Gate stages and where they stand.
    pub stages: BTreeMap<String, StageState>,
    /// Where `merge-all` landed the work.
    pub landed: Option<Landed>,
    /// Interruptions so far.
    pub interruptions: u32,
}

/// Everything about one run: what a page loads first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// The run.
    pub run: RunSummary,
    /// Its agents, in plan order.
    pub agents: Vec<AgentView>,
    /// The latest activity lines, oldest first.
    pub activity: Vec<ActivityLine>,
}

/// Which agents an event changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// No agent (the run summary may have changed).
    None,
    /// These agents.
    Agents(Vec<String>),
    /// Possibly every agent.
    All,
}

/// What applying one event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The agents it changed.
    pub touched: Touched,
    /// Its activity line, if it is worth one.
    pub line: Option<ActivityLine>,
}

#[derive(Debug, Default)]
struct AgentHistory {
    attempts: Vec<AttemptSpan>,
    statuses: VecDeque<StatusEntry>,
    reports: VecDeque<ReportEntry>,
}

/// The dashboard's fold over a run's events.
#[derive(Debug, Default)]
pub struct Tracker {
    state: RunState,
    plan: Option<Plan>,
    /// Agent id → (wave index, index in the wave).
    places: HashMap<String, (usize, usize)>,
    /// Agents in plan order, then the others by first appearance.
    order: Vec<String>,
    history: HashMap<String, AgentHistory>,
    activity: VecDeque<ActivityLine>,
    first_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
    critical: timeline::CriticalPathCache,
}

impl Tracker {
    /// An empty tracker (no event yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker with `records` applied.
    pub fn replay<'a>(records: impl IntoIterator<Item = &'a EventRecord>) -> Self {
        let mut tracker = Self::new();
        for record in records {
            tracker.apply(record);
        }
        tracker
    }

    /// The latest sequence number applied (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.state.last_seq
    }

    /// The run state.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The plan, once `RunStarted` was applied.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// Agent ids in plan order (agents the plan does not name follow).
    pub fn agent_ids(&self) -> &[String] {
        &self.order
    }

    /// Applies one event (in journal order).
    pub fn apply(&mut self, record: &EventRecord) -> Applied {
        self.state.apply(record);
        self.first_at_ms.get_or_insert(record.at_ms);
        let at = record.at_ms;
        // `RunStarted` (or any event that replaces the plan, such as an
        // adaptation) leaves the plan in the state: it moves to `self.plan`.
        if let Some(plan) = self.state.plan.take() {
            self.set_plan(&plan);
        }
        match &record.event {
            Event::RunResumed => self.finished_at_ms = None,
            Event::RunFinished { .. } | Event::RunInterrupted { .. } => {
                self.finished_at_ms = Some(at);
            }
            Event::AgentStarted { agent, attempt } => {
                self.history_of(agent).attempts.push(AttemptSpan {
                    attempt: *attempt,
                    start_ms: at,
                    end_ms: None,
                    outcome: None,
                });
            }
            Event::AgentFinished {
                agent,
                attempt,
                outcome,
                ..
            } => {
                let history = self.history_of(agent);
                if let Some(span) = history
                    .attempts
                    .iter_mut()
                    .rev()
                    .find(|s| s.attempt == *attempt && s.end_ms.is_none())
                {
                    span.end_ms = Some(at);
                    span.outcome = Some(outcome_label(outcome).to_string());
                }
            }
            Event::AgentStatus {
                agent,
                status,
                text,
            } => {
                let statuses = &mut self.history_of(agent).statuses;
                statuses.push_back(StatusEntry {
                    at_ms: at,
                    marker: marker_label(*status),
                    text: text.clone(),
                });
                if statuses.len() > STATUS_HISTORY_LIMIT {
                    statuses.pop_front();
                }
            }
            Event::AgentReport { agent, report } => {
                let reports = &mut self.history_of(agent).reports;
                reports.push_back(ReportEntry {
                    at_ms: at,
                    report: report.clone(),
                });
                if reports.len() > REPORT_HISTORY_LIMIT {
                    reports.pop_front();
                }
            }
            _ => {}
        }
        // Any other interruption of a running attempt (resume after a crash,
        // Ctrl-C) ends its bar where the run stopped.
        if matches!(
            record.event,
            Event::RunInterrupted { .. } | Event::RunResumed
        ) {
            for history in self.history.values_mut() {
                for span in history.attempts.iter_mut().filter(|s| s.end_ms.is_none()) {
                    span.end_ms = Some(at);
                    span.outcome = Some("cancelled".into());
                }
            }
        }
        for id in record.event.agent().into_iter() {
            if !self.places.contains_key(id) && !self.order.iter().any(|o| o == id) {
                self.order.push(id.to_string());
            }
        }
        let touched = self.touched_by(&record.event);
        let line = self.plan.as_ref().and_then(|plan| {
            crate::engine::progress::describe(record, &self.state, plan).map(|text| ActivityLine {
                seq: record.seq,
                at_ms: at,
                agent: record.event.agent().map(str::to_string),
                text,
            })
        });
        if let Some(line) = &line {
            self.activity.push_back(line.clone());
            if self.activity.len() > ACTIVITY_LIMIT {
                self.activity.pop_front();
            }
        }
        Applied { touched, line }
    }

    /// Takes a (new) plan: agents in its order, then the others the run knows.
    fn set_plan(&mut self, value: &serde_json::Value) {
        let Ok(plan) = serde_json::from_value::<Plan>(value.clone()) else {
            return;
        };
        self.places.clear();
        self.order.clear();
        for (w, a, agent) in plan.agents() {
            if self.places.insert(agent.agent_id.clone(), (w, a)).is_none() {
                self.order.push(agent.agent_id.clone());
            }
        }
        for id in self.state.agents.keys() {
            if !self.places.contains_key(id) {
                self.order.push(id.clone());
            }
        }
        self.critical = timeline::CriticalPathCache::new(&plan);
        self.plan = Some(plan);
    }

    fn history_of(&mut self, agent: &str) -> &mut AgentHistory {
        self.history.entry(agent.to_string()).or_default()
    }

    fn touched_by(&self, event: &Event) -> Touched {
        if let PhaseScope::All = event.phase_scope() {
            return Touched::All;
        }
        if let Event::GateFinished { service, .. } = event {
            return if self.state.agents.contains_key(service) {
                Touched::Agents(vec![service.clone()])
            } else {
                Touched::None
            };
        }
        match event.agent() {
            Some(agent) => Touched::Agents(vec![agent.to_string()]),
            None => Touched::None,
        }
    }

    /// The views of the agents an event touched.
    pub fn views_of(&self, touched: &Touched) -> Vec<AgentView> {
        match touched {
            Touched::None => Vec::new(),
            Touched::Agents(ids) => ids.iter().filter_map(|id| self.agent_view(id)).collect(),
            Touched::All => self
                .order
                .iter()
                .filter_map(|id| self.agent_view(id))
                .collect(),
        }
    }

    /// One agent's view (`None` for an agent the run does not know).
    pub fn agent_view(&self, id: &str) -> Option<AgentView> {
        let state = self.state.agents.get(id);
        let place = self.places.get(id).copied();
        if state.is_none() && place.is_none() {
            return None;
        }
        let planned: Option<&Agent> =
            place.and_then(|(w, a)| self.plan.as_ref()?.waves.get(w)?.agents.get(a));
        let wave = place.and_then(|(w, _)| self.plan.as_ref()?.waves.get(w));
        let history = self.history.get(id);
        let status = status_of(state);
        let troubled = matches!(status, "failed" | "timed-out" | "stalled" | "blocked");
        let gates: Vec<GateRun> = self
            .state
            .gate_runs
            .iter()
            .filter(|g| g.service == id && matches!(g.level, GateLevel::Agent | GateLevel::Wave))
            .cloned()
            .collect();
        let mut badges: Vec<GateBadge> = Vec::new();
        for run in &gates {
            let badge = GateBadge {
                gate: run.result.gate.clone(),
                status: run.result.status,
                passed: run.result.passed,
                failed: run.result.failed,
            };
            match badges.iter_mut().find(|b| b.gate == badge.gate) {
                Some(existing) => *existing = badge,
                None => badges.push(badge),
            }
        }
        let recommendation = match (state, troubled) {
            (Some(a), true) if status == "blocked" => Some(
                crate::report::summary::blocked_recommendation(&self.state, a, self.run_id()),
            ),
            (Some(a), true) => Some(crate::report::failure_recommendation(a, self.run_id())),
            _ => None,
        };
        Some(AgentView {
            id: id.to_string(),
            wave: wave.map(|w| w.wave_id.clone()),
            wave_number: place.map(|(w, _)| w + 1),
            work_description: planned
                .map(|a| a.work_description.clone())
                .unwrap_or_default(),
            scope: planned
                .map(|a| a.scope_paths().to_vec())
                .unwrap_or_default(),
            dependencies: planned.map(|a| a.dependencies.clone()).unwrap_or_default(),
            runs_on: planned.and_then(runs_on),
            status,
            progress: state.map_or(0, |a| a.progress),
            attempt: state.map_or(0, |a| a.attempt),
            last_status: state.and_then(|a| a.last_status).map(marker_label),
            last_status_text: state
                .map(|a| a.last_status_text.clone())
                .unwrap_or_default(),
            started_at_ms: state.and_then(|a| a.started_at_ms),
            finished_at_ms: state.and_then(|a| a.finished_at_ms),
            estimate_ms: planned.and_then(estimate_ms),
            usage: state.map(|a| a.usage).unwrap_or_default(),
            cost_usd: state.map_or(0.0, |a| a.cost_usd),
            unpriced_requests: state.map_or(0, |a| a.unpriced_requests),
            tool_uses: state.map_or(0, |a| a.tool_uses),
            gate_badges: badges,
            gates,
            attempts: history.map(|h| h.attempts.clone()).unwrap_or_default(),
            status_history: history
                .map(|h| h.statuses.iter().cloned().collect())
                .unwrap_or_default(),
            reports: history
                .map(|h| h.reports.iter().cloned().collect())
                .unwrap_or_default(),
            completed_tasks: state.map(|a| a.completed_tasks.clone()).unwrap_or_default(),
            remaining_tasks: state.map(|a| a.remaining_tasks.clone()).unwrap_or_default(),
            blockers: state.map(|a| a.blockers.clone()).unwrap_or_default(),
            estimated_completion: state.and_then(|a| a.estimated_completion.clone()),
            errors: state.map(|a| a.errors.clone()).unwrap_or_default(),
            last_failure: state.and_then(|a| a.last_failure.clone()),
            exit_code: state.and_then(|a| a.exit_code),
            impact: match (&self.plan, troubled) {
                (Some(plan), true) => Some(crate::report::impact_of(plan, id)),
                _ => None,
            },
            recommendation,
            git: state.and_then(|a| a.git.clone()),
            output_tail: None,
        })
    }

    fn run_id(&self) -> &str {
        if self.state.run_id.is_empty() {
            "<run-id>"
        } else {
            &self.state.run_id
        }
    }

    /// The run summary at `now_ms` (running agents' durations count to now).
    pub fn summary(&mut self, now_ms: i64) -> RunSummary {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for id in &self.order {
            *counts
                .entry(status_of(self.state.agents.get(id)))
                .or_insert(0) += 1;
        }
        let waves = self
            .plan
            .as_ref()
            .map(|plan| {
                plan.waves
                    .iter()
                    .enumerate()
                    .map(|(w, wave)| WaveView {
                        id: wave.wave_id.clone(),
                        number: w + 1,
                        parallel: wave.parallel,
                        description: wave.description.clone(),
                        agents: wave.agents.iter().map(|a| a.agent_id.clone()).collect(),
                        state: wave_state(&self.state, &wave.wave_id),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let critical_path = self.critical.compute(&self.state, now_ms);
        RunSummary {
            run_id: self.state.run_id.clone(),
            orchestration_id: self.plan.as_ref().map(|p| p.orchestration_id.clone()),
            description: self.plan.as_ref().and_then(|p| p.description.clone()),
            mode: self
                .plan
                .as_ref()
                .and_then(|p| serde_json::to_value(p.execution_mode).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            outcome: self.state.outcome,
            started_at_ms: self.first_at_ms,
            finished_at_ms: self.state.outcome.and(self.finished_at_ms),
            last_seq: self.state.last_seq,
            now_ms,
            overall_progress: self.state.overall_progress(),
            agent_count: self.order.len(),
            counts,
            usage: self.state.usage(),
            cost_usd: self.state.cost_usd(),
            attempts: self.state.agents.values().map(|a| a.attempt).sum(),
            waves,
            critical_path,
            gates: self
                .state
                .gate_runs
                .iter()
                .filter(|g| matches!(g.level, GateLevel::Integration | GateLevel::Final))
                .cloned()
                .collect(),
            stages: self.state.stages.clone(),
            landed: self.state.landed.clone(),
            interruptions: self.state.interruptions,
        }
    }

    /// The whole view at `now_ms`.
    pub fn view(&mut self, now_ms: i64) -> RunView {
        RunView {
            run: self.summary(now_ms),
            agents: self.views_of(&Touched::All),
            activity: self.activity.iter().cloned().collect(),
        }
    }
}

/// The seed's spelling of a STATUS marker.
fn marker_label(status: ReportedStatus) -> String {
    match status {
        ReportedStatus::Started => "STARTED".into(),
        ReportedStatus::Progress(p) => format!("PROGRESS-{p}%"),
        ReportedStatus::Complete => "COMPLETE".into(),
        ReportedStatus::Failed => "FAILED".into(),
        ReportedStatus::Blocked => "BLOCKED".into(),
    }
}

fn outcome_label(outcome: &AgentOutcome) -> &'static str {
    match outcome {
        AgentOutcome::Completed { .. } => "completed",
        AgentOutcome::Failed { .. } => "failed",
        AgentOutcome::TimedOut => "timed-out",
        AgentOutcome::Stalled => "stalled",
        AgentOutcome::Cancelled => "cancelled",
        AgentOutcome::AwaitingInput => "awaiting-input",
    }
}

/// An agent's status word (see [`AgentView::status`]).
pub fn status_of(agent: Option<&AgentState>) -> &'static str {
    let Some(agent) = agent else {
        return "pending";
    };
    match agent.phase {
        AgentPhase::Pending => "pending",
        AgentPhase::Running => "running",
        AgentPhase::Retrying => "retrying",
        AgentPhase::Blocked => "blocked",
        AgentPhase::AwaitingInput => "awaiting-input",
        AgentPhase::Completed => match agent.outcome {
            Some(AgentOutcome::Completed {
                without_marker: true,
            }) => "completed-without-marker",
            _ => "completed",
        },
        AgentPhase::Failed => match agent.outcome {
            Some(AgentOutcome::TimedOut) => "timed-out",
            Some(AgentOutcome::Stalled) => "stalled",
            _ => "failed",
        },
    }
}

fn wave_state(state: &RunState, wave: &str) -> &'static str {
    match state.waves_finished.iter().rev().find(|(id, _)| id == wave) {
        Some((_, true)) => "passed",
        Some((_, false)) => "failed",
        None if state.waves_started.iter().any(|w| w == wave) => "running",
        None => "pending",
    }
}

/// The plan's `estimatedDuration` in ms.
pub fn estimate_ms(agent: &Agent) -> Option<i64> {
    agent
        .estimated_duration
        .map(|d| i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX))
}

/// `claude · claude-code · sonnet`, from what the plan names (never the command).
fn runs_on(agent: &Agent) -> Option<String> {
    let word = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_string));
    let mut parts: Vec<String> = Vec::new();
    if agent.command.is_some() && agent.driver.is_none() {
        parts.push("shell".into());
    }
    parts.extend(word(
        agent.platform.and_then(|p| serde_json::to_value(p).ok()),
    ));
    parts.extend(word(
        agent.driver.and_then(|d| serde_json::to_value(d).ok()),
    ));
    parts.extend(agent.model.clone());
    (!parts.is_empty()).then(|| parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64, event: Event) -> EventRecord {
        EventRecord {
            seq,
            at_ms: 1_000_000 + seq * 1000,
            event,
        }
    }

    fn plan() -> serde_json::Value {
        serde_json::json!({
            "orchestrationId": "demo",
            "waves": [
                {"waveId": "w1", "agents": [
                    {"agentId": "A", "workDescription": "a", "estimatedDuration": "10s",
                     "command": ["sh", "-c", "echo secret"], "env": {"TOKEN": "hush"}},
                    {"agentId": "B", "workDescription": "b", "estimatedDuration": "20s"}]},
                {"waveId": "w2", "agents": [
                    {"agentId": "C", "workDescription": "c", "estimatedDuration": "5s", "dependencies": ["A"]}]}
            ]
        })
    }

    fn events() -> Vec<EventRecord> {
        let started = |a: &str, n| Event::AgentStarted {
            agent: a.into(),
            attempt: n,
        };
        vec![
            rec(
                1,
                Event::RunStarted {
                    run_id: "r1".into(),
                    plan: plan(),
                },
            ),
            rec(2, Event::WaveStarted { wave: "w1".into() }),
            rec(3, started("A", 1)),
            rec(4, started("B", 1)),
            rec(
                5,
                Event::AgentStatus {
                    agent: "A".into(),
                    status: ReportedStatus::Progress(40),
                    text: "parsing".into(),
                },
            ),
            rec(
                6,
                Event::AgentFinished {
                    agent: "A".into(),
                    attempt: 1,
                    outcome: AgentOutcome::Failed {
                        reason: "exit code 1".into(),
                    },
                    exit_code: Some(1),
                },
            ),
            rec(
                7,
                Event::AgentBlocked {
                    agent: "C".into(),
                    by: "A".into(),
                    reason: "A failed".into(),
                },
            ),
        ]
    }

    #[test]
    fn agents_keep_attempts_status_history_impact_and_plan_order() {
        let mut tracker = Tracker::replay(&events());
        assert_eq!(tracker.agent_ids(), ["A", "B", "C"]);
        let a = tracker.agent_view("A").unwrap();
        assert_eq!(a.status, "failed");
        assert_eq!(a.progress, 40);
        assert_eq!(a.estimate_ms, Some(10_000));
        assert_eq!(a.runs_on.as_deref(), Some("shell"));
        assert_eq!(
            a.attempts,
            vec![AttemptSpan {
                attempt: 1,
                start_ms: 1_003_000,
                end_ms: Some(1_006_000),
                outcome: Some("failed".into())
            }]
        );
        assert_eq!(a.status_history[0].marker, "PROGRESS-40%");
        assert_eq!(a.impact.as_deref(), Some("Blocks C in wave 2"));
        assert!(a.recommendation.unwrap().contains("resume r1"));
        let c = tracker.agent_view("C").unwrap();
        assert_eq!(c.status, "blocked");
        assert!(c.recommendation.unwrap().starts_with("Fix A"));
        let b = tracker.agent_view("B").unwrap();
        assert_eq!(b.attempts[0].end_ms, None);
        let summary = tracker.summary(1_010_000);
        assert_eq!(summary.run_id, "r1");
        assert_eq!(summary.counts["failed"], 1);
        assert_eq!(summary.counts["running"], 1);
        assert_eq!(summary.waves[0].state, "running");
        assert_eq!(summary.waves[1].state, "pending");
        assert_eq!(summary.last_seq, 7);
        assert!(tracker.agent_view("nobody").is_none());
    }

    #[test]
    fn views_never_carry_commands_or_environment() {
        let mut tracker = Tracker::replay(&events());
        let json = serde_json::to_string(&tracker.view(2_000_000)).unwrap();
        assert!(!json.contains("echo secret"), "{json}");
        assert!(!json.contains("hush"), "{json}");
    }

    #[test]
    fn events_touch_their_agent_or_everyone() {
        let mut tracker = Tracker::new();
        let all = events();
        assert_eq!(tracker.apply(&all[0]).touched, Touched::All);
        assert_eq!(tracker.apply(&all[1]).touched, Touched::None);
        let started = tracker.apply(&all[2]);
        assert_eq!(started.touched, Touched::Agents(vec!["A".into()]));
        assert_eq!(started.line.unwrap().text, "A started");
    }

    #[test]
    fn a_new_plan_reorders_the_agents_and_keeps_the_ones_it_dropped() {
        let mut records = events();
        let adapted = serde_json::json!({
            "orchestrationId": "demo",
            "waves": [{"waveId": "w9", "agents": [
                {"agentId": "C", "workDescription": "c"},
                {"agentId": "E", "workDescription": "e", "estimatedDuration": "1m"}]}]
        });
        records.push(rec(
            8,
            Event::RunStarted {
                run_id: "r1".into(),
                plan: adapted,
            },
        ));
        let mut tracker = Tracker::replay(&records);
        assert_eq!(tracker.agent_ids(), ["C", "E", "A", "B"]);
        assert_eq!(tracker.agent_view("E").unwrap().estimate_ms, Some(60_000));
        assert_eq!(tracker.agent_view("A").unwrap().wave, None);
        assert_eq!(tracker.summary(0).waves[0].id, "w9");
        assert!(tracker.state().plan.is_none(), "one copy of the plan");
    }

    #[test]
    fn an_interruption_ends_running_bars() {
        let mut records = events();
        records.push(rec(
            8,
            Event::RunInterrupted {
                reason: "SIGINT".into(),
            },
        ));
        let mut tracker = Tracker::replay(&records);
        let b = tracker.agent_view("B").unwrap();
        assert_eq!(b.attempts[0].end_ms, Some(1_008_000));
        assert_eq!(b.attempts[0].outcome.as_deref(), Some("cancelled"));
        let summary = tracker.summary(0);
        assert_eq!(summary.outcome, Some(RunOutcome::Interrupted));
        assert_eq!(summary.finished_at_ms, Some(1_008_000));
    }
}
