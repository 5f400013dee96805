//! The end-of-run report: per agent, per wave and totals, as JSON and markdown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::status::format_timestamp;
use super::{
    blocking_ids, entries, failure_detail, failure_recommendation, format_ms, marker_label,
    plan_of, run_id_of,
};
use crate::journal::{AgentOutcome, AgentPhase, AgentState, RunOutcome, RunState};
use crate::plan::Plan;
use crate::protocol::ErrorReport;
use crate::providers::Usage;

/// How one agent ended, as the report tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportOutcome {
    /// Completed with a COMPLETE marker.
    Completed,
    /// Completed, but without a COMPLETE marker (completed with a warning).
    CompletedWithoutMarker,
    /// The last attempt failed.
    Failed,
    /// The last attempt was killed at its time limit.
    TimedOut,
    /// The last attempt was killed by the silence watchdog.
    Stalled,
    /// Never ran because a dependency failed.
    Blocked,
    /// Still running or waiting to retry (a report made while the run goes on).
    Running,
    /// Never started, or returned to pending by an interruption.
    NotRun,
    /// Its instructions wait for a person's LLM reply (`generic` platform).
    AwaitingInput,
}

impl ReportOutcome {
    /// The kebab-case name used in JSON, e.g. `completed-without-marker`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportOutcome::Completed => "completed",
            ReportOutcome::CompletedWithoutMarker => "completed-without-marker",
            ReportOutcome::Failed => "failed",
            ReportOutcome::TimedOut => "timed-out",
            ReportOutcome::Stalled => "stalled",
            ReportOutcome::Blocked => "blocked",
            ReportOutcome::Running => "running",
            ReportOutcome::NotRun => "not-run",
            ReportOutcome::AwaitingInput => "awaiting-input",
        }
    }

    /// A readable label for tables and headings, e.g. `completed without marker`.
    pub fn label(self) -> &'static str {
        match self {
            ReportOutcome::CompletedWithoutMarker => "completed without marker",
            ReportOutcome::TimedOut => "timed out",
            ReportOutcome::NotRun => "not run",
            other => other.as_str(),
        }
    }

    /// Completed, with or without a marker.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            ReportOutcome::Completed | ReportOutcome::CompletedWithoutMarker
        )
    }

    /// Failed, timed out or stalled.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            ReportOutcome::Failed | ReportOutcome::TimedOut | ReportOutcome::Stalled
        )
    }

    /// The outcome of an agent in this state (`None`: never started).
    pub(crate) fn of(agent: Option<&AgentState>) -> Self {
        let Some(agent) = agent else {
            return ReportOutcome::NotRun;
        };
        match agent.phase {
            AgentPhase::Pending => ReportOutcome::NotRun,
            AgentPhase::Running | AgentPhase::Retrying => ReportOutcome::Running,
            AgentPhase::Blocked => ReportOutcome::Blocked,
            AgentPhase::AwaitingInput => ReportOutcome::AwaitingInput,
            AgentPhase::Completed => match agent.outcome {
                Some(AgentOutcome::Completed {
                    without_marker: true,
                }) => ReportOutcome::CompletedWithoutMarker,
                _ => ReportOutcome::Completed,
            },
            AgentPhase::Failed => match agent.outcome {
                Some(AgentOutcome::TimedOut) => ReportOutcome::TimedOut,
                Some(AgentOutcome::Stalled) => ReportOutcome::Stalled,
                _ => ReportOutcome::Failed,
            },
        }
    }
}

impl fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One agent in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentReport {
    /// Tokens used by model requests (omitted when none).
    #[serde(skip_serializing_if = "Usage::is_zero", default)]
    pub usage: Usage,
    /// USD spent on model requests with a known price (omitted when zero).
    #[serde(skip_serializing_if = "is_zero_cost", default)]
    pub cost_usd: f64,
    /// The last session id its agent CLI reported (omitted when none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_id: Option<String>,
    /// Tool uses its agent CLI reported (omitted when zero).
    #[serde(skip_serializing_if = "is_zero_count", default)]
    pub tool_uses: u32,
    /// Agent id.
    pub id: String,
    /// Its branch, commits, merge and conflicts (runs in worktrees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<crate::journal::AgentGit>,
    /// Id of the agent's wave (`None` for an agent the plan does not name).
    pub wave: Option<String>,
    /// 1-based position of the agent's wave in the plan.
    pub wave_number: Option<usize>,
    /// How it ended.
    pub outcome: ReportOutcome,
    /// Attempts started.
    pub attempts: u32,
    /// From the first start to the end (to `now_ms` while it still runs), in ms.
    pub duration_ms: Option<i64>,
    /// The plan's `estimatedDuration`, in ms.
    pub estimate_ms: Option<i64>,
    /// The last STATUS marker, e.g. `PROGRESS-50%`.
    pub last_status: Option<String>,
    /// The text after the last STATUS marker.
    pub last_status_text: String,
    /// Completed tasks from the last progress report.
    pub completed_tasks: Vec<String>,
    /// Remaining tasks from the last progress report.
    pub remaining_tasks: Vec<String>,
    /// Blockers (reported, or the failed dependency of a blocked agent).
    pub blockers: Vec<String>,
    /// `[ERROR: ...]` blocks the agent wrote.
    pub errors: Vec<ErrorReport>,
    /// Why the last failed attempt failed.
    pub last_failure: Option<String>,
    /// Exit code of the last finished attempt.
    pub exit_code: Option<i32>,
    /// For failed and blocked agents: what the failure blocks ([`impact_of`]).
    pub impact: Option<String>,
    /// For failed and blocked agents: what to do about it.
    pub recommendation: Option<String>,
}

/// One wave in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveReport {
    /// Wave id.
    pub id: String,
    /// 1-based position in the plan.
    pub number: usize,
    /// Its agents' ids, in plan order.
    pub agents: Vec<String>,
    /// Number of agents per outcome (outcomes with no agent are left out).
    pub counts: BTreeMap<ReportOutcome, usize>,
    /// Every agent completed and the wave did not finish failed (e.g. at a gate).
    pub ok: bool,
}

/// Totals over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Tokens used by every agent (omitted when none).
    #[serde(skip_serializing_if = "Usage::is_zero", default)]
    pub usage: Usage,
    /// USD spent by every agent (omitted when zero).
    #[serde(skip_serializing_if = "is_zero_cost", default)]
    pub cost_usd: f64,
    /// Agents in the report.
    pub agents: usize,
    /// Agents that completed (with or without a marker).
    pub completed: usize,
    /// Of those, agents that completed without a COMPLETE marker.
    pub completed_without_marker: usize,
    /// Agents that failed, timed out or stalled.
    pub failed: usize,
    /// Agents blocked by a failed dependency.
    pub blocked: usize,
    /// Agents still running or waiting to retry.
    pub running: usize,
    /// Agents that did not run.
    pub not_run: usize,
    /// Attempts over all agents.
    pub attempts: u32,
    /// From the first agent start to the last agent end (to `now_ms` while
    /// agents still run), in ms; `None` when no agent started.
    pub wall_time_ms: Option<i64>,
    /// How the run ended (`None` while it goes on).
    pub outcome: Option<RunOutcome>,
}

/// The report of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// The plan's `orchestrationId`, when the plan is known.
    pub orchestration_id: Option<String>,
    /// When the report was made (ISO-8601 UTC).
    pub generated_at: String,
    /// Totals.
    pub totals: Totals,
    /// Waves, in plan order.
    pub waves: Vec<WaveReport>,
    /// Agents, in plan order (agents the plan does not name follow, by id).
    pub agents: Vec<AgentReport>,
    /// The git workspace, for runs in worktrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspace::WorkspaceInfo>,
    /// Where `merge-all` landed the work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landed: Option<crate::journal::Landed>,
    /// Every quality-gate run, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::journal::GateRun>,
    /// Gate stages and where they stand.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gate_stages: BTreeMap<String, crate::journal::StageState>,
    /// Adaptive analyses (`--mode adaptive`), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<crate::journal::AnalysisRecord>,
    /// Plan adaptations, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adaptations: Vec<crate::journal::Adaptation>,
    /// Agents an adaptation took out of the plan (split or skipped),
    /// as they were then, in the order they were taken out. What they spent
    /// counts in the totals; they are not counted among `totals.agents`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<AgentReport>,
    /// Anomalies seen while the run went on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<crate::journal::AnomalyRecord>,
}

/// Builds the report of a run from its state. `now_ms` is the report time: it
/// stamps the report and ends the durations of agents still running.
pub fn run_report(state: &RunState, now_ms: i64) -> RunReport {
    run_report_for(state, plan_of(state).as_ref(), now_ms)
}

/// [`run_report`] with the plan already at hand (the engine keeps it decoded
/// and does not keep the copy inside the state).
pub fn run_report_for(state: &RunState, plan: Option<&Plan>, now_ms: i64) -> RunReport {
    let list = entries(state, plan);
    let run_id = run_id_of(state);

    let agents: Vec<AgentReport> = list
        .iter()
        .map(|entry| {
            let outcome = ReportOutcome::of(entry.state);
            let troubled = outcome.is_failure() || outcome == ReportOutcome::Blocked;
            let impact = match (&plan, troubled) {
                (Some(plan), true) => Some(impact_of(plan, entry.id)),
                _ => None,
            };
            let recommendation = match entry.state {
                Some(a) if outcome.is_failure() => Some(failure_recommendation(a, run_id)),
                Some(a) if outcome == ReportOutcome::Blocked => {
                    Some(blocked_recommendation(state, a, run_id))
                }
                _ => None,
            };
            AgentReport {
                wave: entry.wave.map(|(_, id)| id.to_string()),
                wave_number: entry.wave.map(|(w, _)| w + 1),
                estimate_ms: entry.estimate_ms(),
                impact,
                recommendation,
                ..agent_report(entry.id, entry.state, now_ms)
            }
        })
        .collect();
    let replaced = state
        .replaced
        .iter()
        .map(|a| agent_report(&a.id, Some(a), now_ms))
        .collect();

    let waves = plan
        .as_ref()
        .map(|plan| {
            plan.waves
                .iter()
                .enumerate()
                .map(|(w, wave)| {
                    let members: Vec<&AgentReport> = agents
                        .iter()
                        .filter(|a| a.wave_number == Some(w + 1))
                        .collect();
                    let mut counts = BTreeMap::new();
                    for a in &members {
                        *counts.entry(a.outcome).or_insert(0) += 1;
                    }
                    let recorded = state
                        .waves_finished
                        .iter()
                        .rev()
                        .find(|(id, _)| *id == wave.wave_id)
                        .map(|(_, ok)| *ok);
                    WaveReport {
                        id: wave.wave_id.clone(),
                        number: w + 1,
                        agents: members.iter().map(|a| a.id.clone()).collect(),
                        counts,
                        ok: members.iter().all(|a| a.outcome.is_completed())
                            && recorded != Some(false),
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    let count = |f: fn(ReportOutcome) -> bool| agents.iter().filter(|a| f(a.outcome)).count();
    let totals = Totals {
        usage: state.usage(),
        cost_usd: state.cost_usd(),
        agents: agents.len(),
        completed: count(ReportOutcome::is_completed),
        completed_without_marker: count(|o| o == ReportOutcome::CompletedWithoutMarker),
        failed: count(ReportOutcome::is_failure),
        blocked: count(|o| o == ReportOutcome::Blocked),
        running: count(|o| o == ReportOutcome::Running),
        not_run: count(|o| o == ReportOutcome::NotRun),
        attempts: agents.iter().map(|a| a.attempts).sum(),
        wall_time_ms: wall_time_ms(state, now_ms),
        outcome: state.outcome,
    };

    RunReport {
        run_id: state.run_id.clone(),
        orchestration_id: plan.map(|p| p.orchestration_id.clone()),
        generated_at: format_timestamp(now_ms),
        totals,
        waves,
        agents,
        workspace: state.workspace.clone(),
        landed: state.landed.clone(),
        gates: state.gate_runs.clone(),
        gate_stages: state.stages.clone(),
        analyses: state.analyses.clone(),
        adaptations: state.adaptations.clone(),
        replaced,
        anomalies: state.anomalies.clone(),
    }
}

/// An agent's report from its state alone: no wave, estimate, impact or
/// recommendation (those need the plan).
fn agent_report(id: &str, a: Option<&AgentState>, now_ms: i64) -> AgentReport {
    AgentReport {
        usage: a.map(|a| a.usage).unwrap_or_default(),
        cost_usd: a.map_or(0.0, |a| a.cost_usd),
        session_id: a.and_then(|a| a.session_id.clone()),
        tool_uses: a.map_or(0, |a| a.tool_uses),
        id: id.to_string(),
        git: a.and_then(|a| a.git.clone()),
        wave: None,
        wave_number: None,
        outcome: ReportOutcome::of(a),
        attempts: a.map_or(0, |a| a.attempt),
        duration_ms: a.and_then(|a| duration_ms(a, now_ms)),
        estimate_ms: None,
        last_status: a.and_then(|a| a.last_status).map(marker_label),
        last_status_text: a.map(|a| a.last_status_text.clone()).unwrap_or_default(),
        completed_tasks: a.map(|a| a.completed_tasks.clone()).unwrap_or_default(),
        remaining_tasks: a.map(|a| a.remaining_tasks.clone()).unwrap_or_default(),
        blockers: a.map(|a| a.blockers.clone()).unwrap_or_default(),
        errors: a.map(|a| a.errors.clone()).unwrap_or_default(),
        last_failure: a.and_then(|a| a.last_failure.clone()),
        exit_code: a.and_then(|a| a.exit_code),
        impact: None,
        recommendation: None,
    }
}

fn is_zero_count(count: &u32) -> bool {
    *count == 0
}

fn is_zero_cost(cost: &f64) -> bool {
    *cost == 0.0
}

/// How long an agent ran, from its first start to its end (or to `now_ms`
/// while it runs).
pub(crate) fn duration_ms(agent: &AgentState, now_ms: i64) -> Option<i64> {
    let started = agent.started_at_ms?;
    match (agent.finished_at_ms, agent.phase) {
        (Some(finished), _) => Some(finished.saturating_sub(started)),
        (None, AgentPhase::Running | AgentPhase::Retrying) => Some(now_ms.saturating_sub(started)),
        _ => None,
    }
}

fn wall_time_ms(state: &RunState, now_ms: i64) -> Option<i64> {
    let first = state
        .agents
        .values()
        .filter_map(|a| a.started_at_ms)
        .min()?;
    let still_running = state
        .agents
        .values()
        .any(|a| matches!(a.phase, AgentPhase::Running | AgentPhase::Retrying));
    let last = if still_running {
        Some(now_ms)
    } else {
        state.agents.values().filter_map(|a| a.finished_at_ms).max()
    };
    Some(last.unwrap_or(first).saturating_sub(first).max(0))
}

/// The agents at the root of a blocked agent's blockers: following "blocked
/// by" through other blocked agents to the ones that failed.
fn root_blockers<'a>(state: &'a RunState, agent: &'a AgentState) -> Vec<&'a str> {
    let mut roots: Vec<&str> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = blocking_ids(agent);
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        match state.agents.get(id) {
            Some(dep) if dep.phase == AgentPhase::Blocked => stack.extend(blocking_ids(dep)),
            _ => {
                if !roots.contains(&id) {
                    roots.push(id);
                }
            }
        }
    }
    roots.sort_unstable();
    roots
}

pub(crate) fn blocked_recommendation(state: &RunState, agent: &AgentState, run_id: &str) -> String {
    let roots = root_blockers(state, agent);
    if roots.is_empty() {
        format!(
            "Resolve what blocks {}, then run `llm-orchestrate resume {run_id}`",
            agent.id
        )
    } else {
        format!(
            "Fix {}, then run `llm-orchestrate resume {run_id}`: {} runs once its dependencies complete",
            roots.join(", "),
            agent.id
        )
    }
}

/// The agents that (transitively) depend on `agent_id`, with their wave
/// numbers, as the `Impact:` line of an `[ERROR: ...]` block:
/// `Blocks PROFILE_IMPL in wave 2, SETTINGS in wave 3`, or
/// `No other agent depends on it`. Agents are listed in plan order.
pub fn impact_of(plan: &Plan, agent_id: &str) -> String {
    let mut affected: BTreeSet<&str> = BTreeSet::from([agent_id]);
    loop {
        let before = affected.len();
        for (_, _, agent) in plan.agents() {
            if agent
                .dependencies
                .iter()
                .any(|d| affected.contains(d.as_str()))
            {
                affected.insert(agent.agent_id.as_str());
            }
        }
        if affected.len() == before {
            break;
        }
    }
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    let dependents: Vec<String> = plan
        .agents()
        .filter(|(_, _, a)| a.agent_id != agent_id && affected.contains(a.agent_id.as_str()))
        .filter(|(_, _, a)| listed.insert(a.agent_id.as_str()))
        .map(|(w, _, a)| format!("{} in wave {}", a.agent_id, w + 1))
        .collect();
    if dependents.is_empty() {
        "No other agent depends on it".into()
    } else {
        format!("Blocks {}", dependents.join(", "))
    }
}

/// The report as pretty-printed JSON.
pub fn report_json(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot serialize the report: {e}") }).to_string()
    })
}

/// Writes [`report_json`]'s text to `out` without holding it in memory.
pub fn write_report_json(report: &RunReport, out: impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(out, report).map_err(std::io::Error::from)
}

/// The "Usage and cost" section: only when models were called.
fn usage_section(out: &mut String, report: &RunReport) {
    let totals = &report.totals;
    if totals.usage.is_zero() && totals.cost_usd == 0.0 {
        return;
    }
    let _ = writeln!(
        out,
        "## Usage and cost
"
    );
    let _ = writeln!(
        out,
        "| agent | input tokens | cached | output tokens | cost (USD) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let listed = report.agents.iter().map(|a| (a, ""));
    let taken_out = report
        .replaced
        .iter()
        .map(|a| (a, " (taken out of the plan)"));
    for (agent, note) in listed.chain(taken_out).filter(|(a, _)| !a.usage.is_zero()) {
        let _ = writeln!(
            out,
            "| {}{note} | {} | {} | {} | {:.4} |",
            agent.id,
            agent.usage.input_tokens,
            agent.usage.cached_input_tokens,
            agent.usage.output_tokens,
            agent.cost_usd
        );
    }
    let _ = writeln!(
        out,
        "| **total** | {} | {} | {} | {:.4} |\n",
        totals.usage.input_tokens,
        totals.usage.cached_input_tokens,
        totals.usage.output_tokens,
        totals.cost_usd
    );
}

/// Adaptive analyses, plan adaptations (with their diffs) and anomalies.
fn adaptive_section(out: &mut String, report: &RunReport) {
    if !report.adaptations.is_empty() || !report.analyses.is_empty() {
        let _ = writeln!(out, "## Plan adaptations\n");
        for analysis in &report.analyses {
            let _ = writeln!(
                out,
                "- Analysis after {} ({}): {}",
                analysis.trigger,
                analysis.source,
                if analysis.recommendations.is_empty() {
                    "nothing to change".to_string()
                } else {
                    analysis.recommendations.join("; ")
                }
            );
        }
        for a in &report.adaptations {
            let id = a.id.map_or_else(String::new, |id| format!(" {id}"));
            let status = match a.status {
                crate::journal::AdaptationStatus::Proposed => "waiting for approval",
                crate::journal::AdaptationStatus::Applied => "applied",
                crate::journal::AdaptationStatus::Refused => "refused",
                crate::journal::AdaptationStatus::Declined => "rejected by a person",
            };
            let _ = write!(
                out,
                "- Adaptation{id} after {} by {}: **{status}**",
                a.trigger, a.source
            );
            if let Some(reason) = &a.reason {
                let _ = write!(out, " ({reason})");
            }
            let _ = writeln!(out);
            if !a.diff.is_empty() {
                let _ = writeln!(out, "\n  ```diff");
                for line in a.diff.lines() {
                    let _ = writeln!(out, "  {line}");
                }
                let _ = writeln!(out, "  ```");
            }
        }
        replaced_lines(out, &report.replaced);
        let _ = writeln!(out);
    }
    if !report.anomalies.is_empty() {
        let _ = writeln!(out, "## Anomalies\n");
        for a in &report.anomalies {
            let on = a
                .agent
                .as_deref()
                .map_or_else(String::new, |id| format!(" {id}"));
            let _ = writeln!(
                out,
                "- {}{on}: {}; {}",
                a.kind.as_str(),
                a.detail,
                a.recommendation
            );
        }
        let _ = writeln!(out);
    }
}

/// The agents adaptations took out of the plan: how far each got.
fn replaced_lines(out: &mut String, replaced: &[AgentReport]) {
    if replaced.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nTaken out of the plan by an adaptation:\n");
    for agent in replaced {
        let attempts = match agent.attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        let _ = write!(
            out,
            "- `{}`: {} after {attempts}",
            agent.id,
            agent.outcome.label()
        );
        if agent.cost_usd > 0.0 {
            let _ = write!(out, ", ${:.4} spent", agent.cost_usd);
        }
        if let Some(failure) = &agent.last_failure {
            let _ = write!(out, " ({failure})");
        }
        let _ = writeln!(out);
    }
}

/// Quality gates: the seed's gate lines with failing tests, and the stages.
fn gates_section(out: &mut String, report: &RunReport) {
    if report.gates.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Quality gates\n");
    for (stage, state) in &report.gate_stages {
        let verdict = match (state.passed, state.review, state.failed_action) {
            (true, Some(true), _) => "approved in manual review".to_string(),
            (true, _, _) => "passed".to_string(),
            (false, Some(false), _) => "rejected in manual review".to_string(),
            (false, _, Some(action)) => format!("failed ({action})"),
            (false, _, None) => "not finished".to_string(),
        };
        let _ = writeln!(out, "- stage `{stage}`: {verdict}");
    }
    if !report.gate_stages.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "```");
    for run in &report.gates {
        let _ = writeln!(
            out,
            "{}",
            crate::gates::gate_line(&run.result, &run.service)
        );
        for failure in &run.result.failures {
            let message = failure.message.lines().next().unwrap_or("");
            let _ = writeln!(out, "  - {}: {message}", failure.name);
        }
        if let Some(suggestion) = &run.result.suggestion {
            let _ = writeln!(out, "  Suggested fixes:");
            for line in suggestion.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    let _ = writeln!(out, "```\n");
}

/// Branches, merges and conflicts of a run in worktrees.
fn git_section(out: &mut String, report: &RunReport) {
    let Some(ws) = &report.workspace else {
        return;
    };
    let _ = writeln!(out, "## Git\n");
    let _ = writeln!(
        out,
        "Base `{}` at `{}`; integration branch `{}`.",
        ws.base_branch,
        crate::engine::progress::short(&ws.base_commit),
        ws.integration_branch
    );
    match &report.landed {
        Some(l) => {
            let _ = writeln!(
                out,
                "All work landed on `{}` at `{}`{}.\n",
                l.base_branch,
                crate::engine::progress::short(&l.commit),
                if l.fast_forward {
                    " (fast-forward)"
                } else {
                    ""
                }
            );
        }
        None => out.push('\n'),
    }
    let _ = writeln!(
        out,
        "| agent | branch | files changed | merged | conflict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for agent in &report.agents {
        let Some(git) = &agent.git else {
            continue;
        };
        let merged = git.merged.as_deref().map_or("no".to_string(), |m| {
            format!("`{}`", crate::engine::progress::short(m))
        });
        let conflict = git.conflict.as_ref().map_or(String::new(), |c| {
            format!("{}: {}", c.kind.describe(), c.files.join(", "))
        });
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {merged} | {conflict} |",
            agent.id,
            git.branch,
            git.changed_files.len()
        );
    }
    out.push('\n');
}

/// The report as markdown: a title with the run id and outcome, a totals line,
/// a table per wave (agent | outcome | attempts | duration / estimate | last
/// status), a section per failed or blocked agent with its errors as the
/// seed's `[ERROR: ...]` blocks (`Impact:` computed from the plan), warnings
/// (retries, completions without a marker) next steps, and token usage and cost when models were called, and
/// the git branches, merges and conflicts of a run in worktrees.
pub fn report_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let totals = &report.totals;
    let outcome = totals.outcome.map_or("in progress", |o| match o {
        RunOutcome::Succeeded => "succeeded",
        RunOutcome::Failed => "failed",
        RunOutcome::Paused => "paused",
        RunOutcome::Interrupted => "interrupted",
    });
    let _ = writeln!(out, "# Run {}: {outcome}\n", report.run_id);
    match &report.orchestration_id {
        Some(id) => {
            let _ = writeln!(out, "Plan `{id}` · report of {}\n", report.generated_at);
        }
        None => {
            let _ = writeln!(out, "Report of {}\n", report.generated_at);
        }
    }
    let _ = writeln!(out, "**{}**\n", totals_line(totals));

    for wave in &report.waves {
        let members: Vec<&AgentReport> = report
            .agents
            .iter()
            .filter(|a| a.wave_number == Some(wave.number))
            .collect();
        let _ = writeln!(
            out,
            "## Wave {}: {} ({})\n",
            wave.number,
            wave.id,
            wave_label(wave, &members)
        );
        agent_table(&mut out, &members);
    }
    let outside: Vec<&AgentReport> = report
        .agents
        .iter()
        .filter(|a| a.wave_number.is_none())
        .collect();
    if !outside.is_empty() {
        let title = if report.waves.is_empty() {
            "## Agents"
        } else {
            "## Agents outside the plan"
        };
        let _ = writeln!(out, "{title}\n");
        agent_table(&mut out, &outside);
    }

    usage_section(&mut out, report);
    gates_section(&mut out, report);
    git_section(&mut out, report);
    adaptive_section(&mut out, report);

    let troubled: Vec<&AgentReport> = report
        .agents
        .iter()
        .filter(|a| a.outcome.is_failure() || a.outcome == ReportOutcome::Blocked)
        .collect();
    if !troubled.is_empty() {
        let _ = writeln!(out, "## Failed and blocked agents\n");
        for agent in troubled {
            problem_section(&mut out, agent);
        }
    }

    let mut warnings: Vec<String> = Vec::new();
    for a in &report.agents {
        if a.outcome.is_completed() && a.attempts > 1 {
            let earlier = a
                .last_failure
                .as_deref()
                .map(|f| format!(" (earlier failure: {f})"))
                .unwrap_or_default();
            warnings.push(format!(
                "{} completed on attempt {}{earlier}",
                a.id, a.attempts
            ));
        }
        if a.outcome == ReportOutcome::CompletedWithoutMarker {
            warnings.push(format!(
                "{} completed without a COMPLETE marker: review its work",
                a.id
            ));
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in warnings {
            let _ = writeln!(out, "- {w}");
        }
        out.push('\n');
    }

    let steps: Vec<&str> = report
        .agents
        .iter()
        .filter(|a| a.outcome.is_failure())
        .filter_map(|a| a.recommendation.as_deref())
        .collect();
    if !steps.is_empty() {
        let _ = writeln!(out, "## Next steps\n");
        for s in steps {
            let _ = writeln!(out, "- {s}");
        }
        out.push('\n');
    }

    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn totals_line(t: &Totals) -> String {
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut line = format!(
        "{}: {} completed",
        plural(t.agents, "agent", "agents"),
        t.completed
    );
    if t.completed_without_marker > 0 {
        let _ = write!(line, " ({} without marker)", t.completed_without_marker);
    }
    let _ = write!(line, ", {} failed, {} blocked", t.failed, t.blocked);
    if t.running > 0 {
        let _ = write!(line, ", {} running", t.running);
    }
    let _ = write!(
        line,
        ", {} not run · {} · wall time {}",
        t.not_run,
        plural(t.attempts as usize, "attempt", "attempts"),
        t.wall_time_ms.map_or_else(|| "—".to_string(), format_ms)
    );
    line
}

fn wave_label(wave: &WaveReport, members: &[&AgentReport]) -> &'static str {
    if wave.ok {
        "ok"
    } else if members.iter().any(|a| a.outcome == ReportOutcome::Running) {
        "in progress"
    } else if !members.is_empty() && members.iter().all(|a| a.outcome == ReportOutcome::NotRun) {
        "not run"
    } else if !members.is_empty() && members.iter().all(|a| a.outcome == ReportOutcome::Blocked) {
        "blocked"
    } else {
        "failed"
    }
}

fn agent_table(out: &mut String, agents: &[&AgentReport]) {
    let _ = writeln!(
        out,
        "| Agent | Outcome | Attempts | Duration / estimate | Last status |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | --- | --- |");
    for a in agents {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} / {} | {} |",
            cell(&a.id),
            a.outcome.label(),
            a.attempts,
            a.duration_ms.map_or_else(|| "—".to_string(), format_ms),
            a.estimate_ms.map_or_else(|| "—".to_string(), format_ms),
            cell(&last_status(a)),
        );
    }
    out.push('\n');
}

fn last_status(a: &AgentReport) -> String {
    let text = a.last_status_text.trim();
    match (&a.last_status, text.is_empty()) {
        (Some(marker), true) => marker.clone(),
        (Some(marker), false) => format!("{marker} {text}"),
        (None, false) => text.to_string(),
        (None, true) => "—".into(),
    }
}

/// Text safe in a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// One line of an `[ERROR: ...]` block (no line breaks inside).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn problem_section(out: &mut String, a: &AgentReport) {
    let _ = writeln!(out, "### {}: {}\n", a.id, a.outcome.label());
    if let (Some(number), Some(wave)) = (a.wave_number, &a.wave) {
        let _ = writeln!(out, "- Wave: {number} ({wave})");
    }
    if a.attempts > 0 {
        let _ = writeln!(out, "- Attempts: {}", a.attempts);
    }
    match (a.duration_ms, a.estimate_ms) {
        (Some(d), Some(e)) => {
            let _ = writeln!(
                out,
                "- Duration: {} (estimate {})",
                format_ms(d),
                format_ms(e)
            );
        }
        (Some(d), None) => {
            let _ = writeln!(out, "- Duration: {}", format_ms(d));
        }
        _ => {}
    }
    let failure = a.outcome.is_failure().then(|| failure_text(a));
    if let Some(failure) = &failure {
        let _ = writeln!(out, "- Last failure: {failure}");
    }
    if a.outcome == ReportOutcome::Blocked && !a.blockers.is_empty() {
        let _ = writeln!(out, "- Blocked by: {}", blocked_by_text(a));
    }
    if !a.completed_tasks.is_empty() {
        let _ = writeln!(out, "- Completed tasks: {}", a.completed_tasks.join(", "));
    }
    if !a.remaining_tasks.is_empty() {
        let _ = writeln!(out, "- Remaining tasks: {}", a.remaining_tasks.join(", "));
    }
    out.push('\n');

    let impact = a.impact.as_deref();
    let recommendation = a.recommendation.as_deref().unwrap_or("");
    let mut blocks: Vec<[String; 4]> = Vec::new();
    if a.outcome.is_failure() {
        for e in &a.errors {
            let title = if e.title.trim().is_empty() {
                format!("Agent {} failed", a.id)
            } else {
                e.title.clone()
            };
            blocks.push([
                title,
                e.cause
                    .clone()
                    .or_else(|| failure.clone())
                    .unwrap_or_else(|| "unknown".into()),
                impact
                    .map(str::to_string)
                    .or_else(|| e.impact.clone())
                    .unwrap_or_else(|| "unknown".into()),
                e.recommendation
                    .clone()
                    .unwrap_or_else(|| recommendation.to_string()),
            ]);
        }
        if blocks.is_empty() {
            blocks.push([
                format!("Agent {} failed", a.id),
                failure.clone().unwrap_or_else(|| "unknown".into()),
                impact.unwrap_or("unknown").to_string(),
                recommendation.to_string(),
            ]);
        }
    } else {
        let cause = if a.blockers.is_empty() {
            "a dependency did not complete".to_string()
        } else {
            format!("Blocked by {}", blocked_by_text(a))
        };
        blocks.push([
            format!("Agent {} blocked", a.id),
            cause,
            impact.unwrap_or("unknown").to_string(),
            recommendation.to_string(),
        ]);
    }
    for [title, cause, impact, recommendation] in blocks {
        let _ = writeln!(out, "```text");
        let _ = writeln!(out, "[ERROR: {}]", one_line(&title));
        let _ = writeln!(out, "Cause: {}", one_line(&cause));
        let _ = writeln!(out, "Impact: {}", one_line(&impact));
        let _ = writeln!(out, "Recommendation: {}", one_line(&recommendation));
        let _ = writeln!(out, "```\n");
    }
}

fn failure_text(a: &AgentReport) -> String {
    failure_detail(
        Some(a.last_failure.as_deref().unwrap_or(a.outcome.label())),
        a.exit_code,
    )
}

fn blocked_by_text(a: &AgentReport) -> String {
    a.blockers
        .iter()
        .map(|b| match b.split_once(": ") {
            Some((by, why)) => format!("{by} ({why})"),
            None => b.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;
    use crate::report::fixtures::*;

    fn three_wave_plan() -> Plan {
        let value = plan(&[
            ("w1", &[("A", "1h", &[]), ("X", "1h", &[])]),
            ("w2", &[("B", "1h", &["A"]), ("Y", "1h", &["X"])]),
            ("w3", &[("C", "1h", &["B"]), ("D", "1h", &["B", "A"])]),
        ]);
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn impact_lists_transitive_dependents_with_wave_numbers_in_plan_order() {
        let plan = three_wave_plan();
        assert_eq!(
            impact_of(&plan, "A"),
            "Blocks B in wave 2, C in wave 3, D in wave 3"
        );
        assert_eq!(impact_of(&plan, "B"), "Blocks C in wave 3, D in wave 3");
        assert_eq!(impact_of(&plan, "X"), "Blocks Y in wave 2");
        assert_eq!(impact_of(&plan, "C"), "No other agent depends on it");
        assert_eq!(impact_of(&plan, "NOPE"), "No other agent depends on it");
    }

    /// An agent an adaptation took out of the plan is listed as it was then,
    /// with what it spent, in the JSON and the Markdown; a run without one
    /// has no `replaced` key.
    #[test]
    fn agents_taken_out_by_an_adaptation_are_listed_with_their_spending() {
        let value = plan(&[("w1", &[("A", "1h", &[]), ("B", "1h", &[])])]);
        let mut run = Run::new("run-1", value.clone());
        run.start(MINUTE, "A", 1)
            .at(
                2 * MINUTE,
                Event::AgentUsage {
                    agent: "A".into(),
                    model: "m".into(),
                    usage: Usage {
                        input_tokens: 100,
                        output_tokens: 10,
                        cached_input_tokens: 0,
                    },
                    cost_usd: Some(0.5),
                },
            )
            .finish(3 * MINUTE, "A", 1, failed("exit 1"), Some(1));
        let without = run_report(&run.state(), T0 + HOUR);
        assert!(without.replaced.is_empty());
        assert!(!report_json(&without).contains("\"replaced\""));

        let patch: crate::adapt::PlanPatch = serde_json::from_value(serde_json::json!({
            "reason": "split it",
            "operations": [{"op": "skip", "agent": "A"}]
        }))
        .unwrap();
        run.at(
            4 * MINUTE,
            Event::PlanAdapted {
                id: 1,
                trigger: "A failed".into(),
                source: "rules".into(),
                patch,
                diff: "- A".into(),
                plan: value,
                removed: vec!["A".into()],
                stages: Vec::new(),
            },
        );
        let report = run_report(&run.state(), T0 + HOUR);
        assert_eq!(report.replaced.len(), 1);
        let a = &report.replaced[0];
        assert_eq!(
            (a.id.as_str(), a.outcome, a.attempts, a.cost_usd),
            ("A", ReportOutcome::Failed, 1, 0.5)
        );
        assert_eq!(report.totals.cost_usd, 0.5);
        let json: serde_json::Value = serde_json::from_str(&report_json(&report)).unwrap();
        assert_eq!(json["replaced"][0]["id"], "A");
        assert_eq!(json["replaced"][0]["costUsd"], 0.5);
        let markdown = report_markdown(&report);
        assert!(
            markdown.contains(
                "Taken out of the plan by an adaptation:\n\n- `A`: failed after 1 attempt, $0.5000 spent (exit 1)"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("| A (taken out of the plan) | 100 | 0 | 10 | 0.5000 |"),
            "{markdown}"
        );
    }

    #[test]
    fn report_classifies_every_agent_and_counts_waves_and_totals() {
        let report = run_report(&finished_state(), T0 + 2 * HOUR);
        let outcome = |id: &str| {
            report
                .agents
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.outcome)
                .unwrap()
        };
        assert_eq!(outcome("DB_SCHEMA"), ReportOutcome::Completed);
        assert_eq!(outcome("AUTH_IMPL"), ReportOutcome::Failed);
        assert_eq!(outcome("CACHE_LAYER"), ReportOutcome::Completed);
        assert_eq!(outcome("PROFILE_IMPL"), ReportOutcome::Blocked);
        assert_eq!(outcome("DOCS"), ReportOutcome::CompletedWithoutMarker);
        assert_eq!(outcome("SETTINGS"), ReportOutcome::Blocked);

        let ids: Vec<&str> = report.agents.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "DB_SCHEMA",
                "AUTH_IMPL",
                "CACHE_LAYER",
                "PROFILE_IMPL",
                "DOCS",
                "SETTINGS"
            ]
        );

        let cache = &report.agents[2];
        assert_eq!(cache.attempts, 2);
        assert_eq!(cache.duration_ms, Some(41 * MINUTE));
        assert_eq!(cache.estimate_ms, Some(30 * MINUTE));
        assert_eq!(cache.last_status.as_deref(), Some("COMPLETE"));

        let auth = &report.agents[1];
        assert_eq!(auth.wave.as_deref(), Some("core"));
        assert_eq!(auth.wave_number, Some(1));
        assert_eq!(auth.duration_ms, Some(38 * MINUTE));
        assert_eq!(auth.remaining_tasks, ["token refresh"]);
        assert_eq!(auth.errors.len(), 1);
        assert_eq!(
            auth.impact.as_deref(),
            Some("Blocks PROFILE_IMPL in wave 2, SETTINGS in wave 3")
        );

        let settings = &report.agents[5];
        assert_eq!(
            settings.recommendation.as_deref(),
            Some(
                "Fix AUTH_IMPL, then run `llm-orchestrate resume demo-20240501-120000`: SETTINGS runs once its dependencies complete"
            )
        );

        assert_eq!(report.waves.len(), 3);
        assert!(!report.waves[0].ok);
        assert_eq!(
            report.waves[0].counts,
            BTreeMap::from([(ReportOutcome::Completed, 2), (ReportOutcome::Failed, 1)])
        );
        assert_eq!(report.waves[2].agents, ["SETTINGS"]);

        let t = &report.totals;
        assert_eq!(
            (t.agents, t.completed, t.completed_without_marker, t.failed),
            (6, 3, 1, 1)
        );
        assert_eq!((t.blocked, t.running, t.not_run, t.attempts), (2, 0, 0, 5));
        assert_eq!(t.wall_time_ms, Some(HOUR + 58 * MINUTE));
        assert_eq!(t.outcome, Some(RunOutcome::Failed));
    }

    #[test]
    fn report_json_is_camel_case_with_kebab_case_outcomes() {
        let json = report_json(&run_report(&finished_state(), T0 + 2 * HOUR));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["runId"], "demo-20240501-120000");
        assert_eq!(value["orchestrationId"], "demo");
        assert_eq!(value["generatedAt"], "2024-05-01T14:00:00.000Z");
        assert_eq!(value["totals"]["wallTimeMs"], 7_080_000);
        assert_eq!(value["totals"]["outcome"], "failed");
        assert_eq!(value["agents"][4]["outcome"], "completed-without-marker");
        assert_eq!(value["agents"][1]["lastStatus"], "FAILED");
        assert_eq!(value["waves"][1]["counts"]["completed-without-marker"], 1);
        assert_eq!(value["waves"][1]["counts"]["blocked"], 1);
        assert!(json.contains('\n'), "pretty-printed");
    }

    #[test]
    fn a_running_agent_is_measured_to_now() {
        let state = mid_run_state();
        let report = run_report(&state, T0 + 2 * HOUR);
        let api = &report.agents[0];
        assert_eq!(api.outcome, ReportOutcome::Running);
        assert_eq!(api.duration_ms, Some(2 * HOUR - MINUTE));
        assert_eq!(report.totals.running, 1);
        assert_eq!(report.totals.not_run, 1);
        assert_eq!(report.totals.wall_time_ms, Some(2 * HOUR - MINUTE));
        assert!(report_markdown(&report).starts_with("# Run demo-1: in progress\n"));
    }

    #[test]
    fn markdown_report_of_a_failed_run() {
        let markdown = report_markdown(&run_report(&finished_state(), T0 + 2 * HOUR));
        assert!(markdown.contains(
            "[ERROR: Agent AUTH_IMPL failed]\nCause: Token refresh tests fail against the new schema\nImpact: Blocks PROFILE_IMPL in wave 2, SETTINGS in wave 3\n"
        ));
        insta::assert_snapshot!(markdown);
    }

    #[test]
    fn markdown_report_of_a_failure_without_an_error_block() {
        let markdown = report_markdown(&run_report(&mid_run_state(), T0 + 2 * HOUR));
        insta::assert_snapshot!(markdown);
    }
}
