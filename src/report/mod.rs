//! The run's written outputs, all derived from a [`RunState`] (and the plan
//! stored inside it by `RunStarted`).
//!
//! - [`status_json`]: the seed's aggregate status (`timestamp`,
//!   `overallProgress`, `agentStatus`, `risks`, `recommendations`) plus `runId`
//!   and `outcome`, rewritten while a run goes on.
//! - [`run_report`]: the end-of-run report ([`RunReport`]), rendered as JSON by
//!   [`report_json`] and as markdown by [`report_markdown`], with the seed's
//!   `[ERROR: ...]` blocks for every failed or blocked agent.
//! - [`impact_of`]: which agents a failure blocks, computed from the plan.
//! - [`write_atomically`]: writes a file so that readers never see it half written.
//!
//! Everything here except [`write_atomically`] is a pure function of its
//! arguments: the current time is passed in as `now_ms`, so outputs are
//! reproducible from the journal.

pub mod status;
pub mod summary;

#[cfg(test)]
mod fixtures;

pub use status::{format_timestamp, status_json, write_atomically};
pub use summary::{
    AgentReport, ReportOutcome, RunReport, Totals, WaveReport, impact_of, report_json,
    report_markdown, run_report,
};

use std::time::Duration;

use crate::journal::{AgentState, RunState};
use crate::plan::duration::format_duration;
use crate::plan::{Agent, Plan};
use crate::protocol::{ErrorReport, ReportedStatus};

/// One agent as the reports see it: its place in the plan (if the plan names
/// it) and its state (if the journal has one).
struct Entry<'a> {
    /// Agent id.
    id: &'a str,
    /// 0-based wave index and wave id, when the plan places the agent.
    wave: Option<(usize, &'a str)>,
    /// The plan's definition of the agent.
    agent: Option<&'a Agent>,
    /// The agent's state.
    state: Option<&'a AgentState>,
}

impl Entry<'_> {
    /// The plan's `estimatedDuration`, in milliseconds.
    fn estimate_ms(&self) -> Option<i64> {
        self.agent
            .and_then(|a| a.estimated_duration)
            .map(|d| i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX))
    }
}

/// The plan stored in the state, if there is one and it decodes.
fn plan_of(state: &RunState) -> Option<Plan> {
    let value = state.plan.as_ref()?;
    serde_json::from_value(value.clone()).ok()
}

/// Every agent in plan order, followed by agents the journal knows but the
/// plan does not name (in id order).
fn entries<'a>(state: &'a RunState, plan: Option<&'a Plan>) -> Vec<Entry<'a>> {
    let mut out: Vec<Entry<'a>> = Vec::new();
    let mut seen: std::collections::HashSet<&'a str> = std::collections::HashSet::new();
    if let Some(plan) = plan {
        for (w, _, agent) in plan.agents() {
            let id = agent.agent_id.as_str();
            if !seen.insert(id) {
                continue;
            }
            out.push(Entry {
                id,
                wave: Some((w, plan.waves[w].wave_id.as_str())),
                agent: Some(agent),
                state: state.agents.get(id),
            });
        }
    }
    for (id, agent_state) in &state.agents {
        if seen.insert(id.as_str()) {
            out.push(Entry {
                id,
                wave: None,
                agent: None,
                state: Some(agent_state),
            });
        }
    }
    out
}

/// The seed's spelling of a STATUS marker: `STARTED`, `PROGRESS-50%`, `COMPLETE`, …
fn marker_label(status: ReportedStatus) -> String {
    match status {
        ReportedStatus::Started => "STARTED".into(),
        ReportedStatus::Progress(p) => format!("PROGRESS-{p}%"),
        ReportedStatus::Complete => "COMPLETE".into(),
        ReportedStatus::Failed => "FAILED".into(),
        ReportedStatus::Blocked => "BLOCKED".into(),
    }
}

/// The run id, or a placeholder when the journal has no `RunStarted` yet.
fn run_id_of(state: &RunState) -> &str {
    if state.run_id.is_empty() {
        "<run-id>"
    } else {
        &state.run_id
    }
}

/// A short cause for a failed agent: `exit code 1`, `timed out`, or the reason.
fn short_cause(agent: &AgentState) -> String {
    match agent.exit_code {
        Some(code) if code != 0 => format!("exit code {code}"),
        _ => agent
            .last_failure
            .clone()
            .unwrap_or_else(|| "failed".into()),
    }
}

/// The failure reason with the exit code, e.g. `tests failed (exit code 1)`.
fn failure_detail(reason: Option<&str>, exit_code: Option<i32>) -> String {
    let reason = reason.unwrap_or("failed");
    match exit_code {
        Some(code) if code != 0 && reason != format!("exit code {code}") => {
            format!("{reason} (exit code {code})")
        }
        _ => reason.to_string(),
    }
}

/// The latest recommendation the agent wrote in an `[ERROR: ...]` block.
fn written_recommendation(agent: &AgentState) -> Option<&str> {
    agent
        .errors
        .iter()
        .rev()
        .filter_map(|e: &ErrorReport| e.recommendation.as_deref())
        .map(str::trim)
        .find(|r| !r.is_empty())
}

/// What to do about a failed agent: the agent's own recommendation when it
/// wrote one, otherwise "Fix X (cause)"; both end with the resume command.
pub(crate) fn failure_recommendation(agent: &AgentState, run_id: &str) -> String {
    match written_recommendation(agent) {
        Some(rec) => format!(
            "{}: {} (then run `llm-orchestrate resume {run_id}`)",
            agent.id,
            rec.trim_end_matches('.')
        ),
        None => format!(
            "Fix {} ({}) and run `llm-orchestrate resume {run_id}`",
            agent.id,
            short_cause(agent)
        ),
    }
}

/// The ids named by `by: reason` blocker entries (what `AgentBlocked` stores).
fn blocking_ids(agent: &AgentState) -> Vec<&str> {
    agent
        .blockers
        .iter()
        .map(|b| b.split_once(": ").map_or(b.as_str(), |(by, _)| by))
        .collect()
}

/// Milliseconds as a compact duration (`1h30m`, `45s`); negative counts as 0.
fn format_ms(ms: i64) -> String {
    format_duration(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}
