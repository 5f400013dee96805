//! A finished run's journal → history rows.
//!
//! The report ([`crate::report::summary::run_report_for`]) gives each agent's
//! outcome, duration, tokens and cost; the journal's records give what the
//! report does not keep: how long each attempt ran (from its `AgentStarted`
//! to its `AgentFinished`), so that calibration compares the estimate with
//! one attempt's work and not with retries and their delays.

use std::collections::HashMap;

use super::{HistoryRow, RunRow, platform_key};
use crate::journal::{EventRecord, RunState};
use crate::plan::{ExecutionMode, Plan};

/// What a run was, besides its journal.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The plan it ran.
    pub plan: &'a Plan,
    /// The plan file, when known (`resume` does not know it).
    pub plan_path: Option<&'a str>,
    /// Its execution mode.
    pub mode: ExecutionMode,
    /// Its concurrency.
    pub concurrency: usize,
}

/// The rows of a run: one per agent of the plan, and one for the run.
/// `now_ms` ends what the journal leaves open (an interrupted run).
pub fn rows_of_run(
    records: &[EventRecord],
    context: RunContext<'_>,
    now_ms: i64,
) -> (RunRow, Vec<HistoryRow>) {
    rows_of_state(&RunState::replay(records), context, now_ms)
}

/// [`rows_of_run`] from a run's final state (the engine's, at the end of a
/// run: no journal to read back).
pub fn rows_of_state(
    state: &RunState,
    context: RunContext<'_>,
    now_ms: i64,
) -> (RunRow, Vec<HistoryRow>) {
    let report = crate::report::summary::run_report_for(state, Some(context.plan), now_ms);
    rows_of_report(state, &report, context, now_ms)
}

/// [`rows_of_state`] with the run's report already built from that state
/// (the engine builds it once for its report files and for the history).
pub fn rows_of_report(
    state: &RunState,
    report: &crate::report::summary::RunReport,
    context: RunContext<'_>,
    now_ms: i64,
) -> (RunRow, Vec<HistoryRow>) {
    let plan = context.plan;
    let gates = gate_counts(state);
    let agents: HashMap<&str, &crate::plan::Agent> = plan
        .agents()
        .map(|(_, _, a)| (a.agent_id.as_str(), a))
        .collect();
    let rows: Vec<HistoryRow> = report
        .agents
        .iter()
        .filter_map(|a| {
            let def = agents.get(a.id.as_str())?;
            Some(agent_row(
                state,
                context,
                AgentFacts {
                    def,
                    wave: a.wave.clone(),
                    outcome: a.outcome,
                    duration_ms: a.duration_ms,
                    usage: a.usage,
                    cost_usd: a.cost_usd,
                    gates: gates.get(a.id.as_str()).copied().unwrap_or_default(),
                },
                now_ms,
            ))
        })
        .collect();
    let started = rows.iter().filter_map(|r| r.started_at_ms).min();
    let run = RunRow {
        run_id: state.run_id.clone(),
        plan: plan.orchestration_id.clone(),
        plan_path: context.plan_path.map(str::to_string),
        mode: context.mode.as_str().to_string(),
        concurrency: u32::try_from(context.concurrency).unwrap_or(u32::MAX),
        agents: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        outcome: state
            .outcome
            .map_or("interrupted", |o| match o {
                crate::journal::RunOutcome::Succeeded => "succeeded",
                crate::journal::RunOutcome::Failed => "failed",
                crate::journal::RunOutcome::Paused => "paused",
                crate::journal::RunOutcome::Interrupted => "interrupted",
            })
            .to_string(),
        started_at_ms: started,
        finished_at_ms: rows
            .iter()
            .map(|r| r.finished_at_ms)
            .max()
            .unwrap_or(now_ms),
        wall_secs: report.totals.wall_time_ms.map(|ms| ms as f64 / 1000.0),
        predicted_secs: None,
        prediction_basis: String::new(),
        cost_usd: report.totals.cost_usd,
    };
    (run, rows)
}

/// Gate runs passed and failed, per agent (the gate's service).
fn gate_counts(state: &RunState) -> HashMap<&str, (u32, u32)> {
    let mut gates: HashMap<&str, (u32, u32)> = HashMap::new();
    for run in &state.gate_runs {
        let entry = gates.entry(run.service.as_str()).or_default();
        match run.result.status {
            crate::gates::GateStatus::Passed => entry.0 += 1,
            crate::gates::GateStatus::Failed => entry.1 += 1,
            crate::gates::GateStatus::Skipped => {}
        }
    }
    gates
}

/// What an agent's row is made of besides the run's state: its plan entry
/// and what the report says of it.
struct AgentFacts<'a> {
    def: &'a crate::plan::Agent,
    wave: Option<String>,
    outcome: crate::report::summary::ReportOutcome,
    duration_ms: Option<i64>,
    usage: crate::providers::Usage,
    cost_usd: f64,
    /// Gate runs passed and failed.
    gates: (u32, u32),
}

fn agent_row(
    state: &RunState,
    context: RunContext<'_>,
    facts: AgentFacts<'_>,
    now_ms: i64,
) -> HistoryRow {
    let plan = context.plan;
    let def = facts.def;
    let agent_state = state.agents.get(&def.agent_id);
    let tried = agent_state.map(|s| s.attempts.clone()).unwrap_or_default();
    HistoryRow {
        run_id: state.run_id.clone(),
        plan: plan.orchestration_id.clone(),
        plan_path: context.plan_path.map(str::to_string),
        agent_id: def.agent_id.clone(),
        wave: facts.wave,
        platform: platform_key(def, plan.platform),
        model: def.model.clone().or_else(|| tried.model.clone()),
        scope: def.scope_paths().to_vec(),
        estimate_secs: def.estimated_duration.map(|d| d.as_secs_f64()),
        actual_secs: facts.duration_ms.map(|ms| ms as f64 / 1000.0),
        attempt_secs: tried.completing_ms.map(|ms| ms as f64 / 1000.0),
        attempts: tried.counted,
        failed_attempts: tried.failed,
        outcome: facts.outcome.as_str().to_string(),
        gates_passed: facts.gates.0,
        gates_failed: facts.gates.1,
        input_tokens: facts.usage.input_tokens,
        output_tokens: facts.usage.output_tokens,
        cost_usd: facts.cost_usd,
        started_at_ms: agent_state.and_then(|s| s.started_at_ms),
        finished_at_ms: agent_state.and_then(|s| s.finished_at_ms).unwrap_or(now_ms),
    }
}

/// The rows of `agents` (ids of the plan's agents; others are skipped) as
/// they stand in `state`: for an agent that has ended, the row
/// [`rows_of_report`] makes for it at the run's end if nothing about it
/// changes in between (the history writes them while the run goes on).
pub fn rows_of_agents(
    state: &RunState,
    context: RunContext<'_>,
    agents: &[String],
    now_ms: i64,
) -> Vec<HistoryRow> {
    let plan = context.plan;
    let gates = gate_counts(state);
    let mut wanted: std::collections::HashSet<&str> = agents.iter().map(String::as_str).collect();
    plan.agents()
        // `remove`: each agent once, as in the report.
        .filter(|(_, _, def)| wanted.remove(def.agent_id.as_str()))
        .map(|(w, _, def)| {
            let agent_state = state.agents.get(&def.agent_id);
            agent_row(
                state,
                context,
                AgentFacts {
                    def,
                    wave: Some(plan.waves[w].wave_id.clone()),
                    outcome: crate::report::summary::ReportOutcome::of(agent_state),
                    duration_ms: agent_state
                        .and_then(|a| crate::report::summary::duration_ms(a, now_ms)),
                    usage: agent_state.map(|a| a.usage).unwrap_or_default(),
                    cost_usd: agent_state.map_or(0.0, |a| a.cost_usd),
                    gates: gates
                        .get(def.agent_id.as_str())
                        .copied()
                        .unwrap_or_default(),
                },
                now_ms,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::test_plan;
    use crate::journal::{AgentOutcome, Event};

    fn rec(seq: i64, at_ms: i64, event: Event) -> EventRecord {
        EventRecord { seq, at_ms, event }
    }

    #[test]
    fn attempts_durations_usage_and_outcomes_become_rows() {
        let plan = test_plan(
            r#"{"orchestrationId":"p","platform":"claude","waves":[{"waveId":"w1","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"10s","command":"true","scope":"svc/a"},
            {"agentId":"B","workDescription":"b","estimatedDuration":"20s"},
            {"agentId":"C","workDescription":"c","dependencies":["B"]}]}]}"#,
        );
        let plan_json = serde_json::to_value(&plan).unwrap();
        let failed = AgentOutcome::Failed {
            reason: "exit code 1".into(),
        };
        let done = AgentOutcome::Completed {
            without_marker: false,
        };
        let finished = |agent: &str, attempt, outcome: &AgentOutcome| Event::AgentFinished {
            agent: agent.into(),
            attempt,
            outcome: outcome.clone(),
            exit_code: None,
        };
        let started = |agent: &str, attempt| Event::AgentStarted {
            agent: agent.into(),
            attempt,
        };
        let records = vec![
            rec(
                1,
                0,
                Event::RunStarted {
                    run_id: "r1".into(),
                    plan: plan_json,
                },
            ),
            rec(2, 1_000, started("A", 1)),
            rec(3, 1_000, started("B", 1)),
            rec(4, 3_000, finished("A", 1, &failed)),
            rec(5, 5_000, started("A", 2)),
            rec(
                6,
                6_000,
                Event::AgentUsage {
                    agent: "B".into(),
                    model: "claude-x".into(),
                    usage: crate::providers::Usage {
                        input_tokens: 7,
                        output_tokens: 3,
                        cached_input_tokens: 0,
                    },
                    cost_usd: Some(0.5),
                },
            ),
            rec(7, 17_000, finished("A", 2, &done)),
            rec(8, 31_000, finished("B", 1, &failed)),
            rec(
                9,
                31_000,
                Event::AgentBlocked {
                    agent: "C".into(),
                    by: "B".into(),
                    reason: "dependency B failed".into(),
                },
            ),
            rec(
                10,
                31_000,
                Event::RunFinished {
                    outcome: crate::journal::RunOutcome::Failed,
                },
            ),
        ];
        let (run, rows) = rows_of_run(
            &records,
            RunContext {
                plan: &plan,
                plan_path: Some("plan.json"),
                mode: ExecutionMode::Waves,
                concurrency: 2,
            },
            40_000,
        );
        assert_eq!(rows.len(), 3);
        let a = &rows[0];
        assert_eq!(
            (a.platform.as_str(), a.attempts, a.failed_attempts),
            ("shell", 2, 1)
        );
        assert_eq!(a.attempt_secs, Some(12.0), "the completing attempt only");
        assert_eq!(a.actual_secs, Some(16.0), "first start to end");
        assert_eq!(a.ratio(), Some(1.2));
        assert_eq!(a.scope, vec!["svc/a".to_string()]);
        let b = &rows[1];
        assert_eq!(b.platform, "claude");
        assert_eq!(b.model.as_deref(), Some("claude-x"));
        assert_eq!((b.input_tokens, b.output_tokens, b.cost_usd), (7, 3, 0.5));
        assert_eq!((b.outcome.as_str(), b.attempt_secs), ("failed", None));
        let c = &rows[2];
        assert_eq!(
            (c.outcome.as_str(), c.attempts, c.estimate_secs),
            ("blocked", 0, None)
        );
        assert_eq!(run.outcome, "failed");
        assert_eq!(run.wall_secs, Some(30.0));
        assert_eq!(run.started_at_ms, Some(1_000));
        assert_eq!(run.agents, 3);
        // The rows written while a run goes on, for agents that have ended,
        // are the rows of its end: in plan order, each once, unknown ids skipped.
        let state = RunState::replay(&records);
        let context = RunContext {
            plan: &plan,
            plan_path: Some("plan.json"),
            mode: ExecutionMode::Waves,
            concurrency: 2,
        };
        let asked = ["C", "A", "B", "A", "Z"].map(String::from);
        assert_eq!(rows_of_agents(&state, context, &asked, 40_000), rows);
        let only_b = rows_of_agents(&state, context, &["B".to_string()], 40_000);
        assert_eq!(only_b, vec![rows[1].clone()]);
    }
}
