//! The critical path of a run as it goes: the longest chain of dependencies,
//! measured with what is known at the time.
//!
//! An agent counts with its actual duration once it ended (from its first
//! start to its end, retries included), with the larger of its elapsed time
//! and its estimate while it runs, with its estimate before it starts (the
//! plan's `estimatedDuration`, else [`DEFAULT_ESTIMATE`]), and with zero when
//! it is blocked (it will not run). The chain is
//! [`Dag::critical_path`](crate::graph::Dag::critical_path) over those durations.

use std::time::Duration;

use serde::Serialize;

use crate::graph::Dag;
use crate::journal::{AgentPhase, RunState};
use crate::plan::Plan;

/// The estimate of agents without `estimatedDuration` (as `analyze` assumes).
pub const DEFAULT_ESTIMATE: Duration = Duration::from_secs(30 * 60);

/// The critical path at some moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalPath {
    /// Its agents, first to last.
    pub agents: Vec<String>,
    /// Its length in ms.
    pub length_ms: i64,
}

/// The plan's graph, kept to compute the critical path again as durations change.
#[derive(Debug, Clone, Default)]
pub struct CriticalPathCache {
    dag: Option<Dag>,
    estimates: Vec<f64>,
}

impl CriticalPathCache {
    /// The graph of `plan`.
    pub fn new(plan: &Plan) -> Self {
        let dag = Dag::from_plan(plan, DEFAULT_ESTIMATE);
        let estimates = dag.duration.clone();
        Self {
            dag: Some(dag),
            estimates,
        }
    }

    /// The critical path of the run in `state` at `now_ms`.
    pub fn compute(&mut self, state: &RunState, now_ms: i64) -> CriticalPath {
        let Some(dag) = &mut self.dag else {
            return CriticalPath::default();
        };
        for (i, id) in dag.ids.iter().enumerate() {
            let estimate = self.estimates[i];
            dag.duration[i] = match state.agents.get(id) {
                None => estimate,
                Some(agent) => {
                    let secs =
                        |from: i64, to: i64| (to.saturating_sub(from)).max(0) as f64 / 1000.0;
                    match (agent.phase, agent.started_at_ms, agent.finished_at_ms) {
                        (AgentPhase::Blocked, _, _) => 0.0,
                        (_, Some(start), Some(end)) => secs(start, end),
                        (AgentPhase::Running | AgentPhase::Retrying, Some(start), None) => {
                            secs(start, now_ms).max(estimate)
                        }
                        _ => estimate,
                    }
                }
            };
        }
        let (path, length) = dag.critical_path();
        CriticalPath {
            agents: path.iter().map(|&i| dag.ids[i].clone()).collect(),
            length_ms: (length * 1000.0).round() as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{AgentOutcome, Event, EventRecord};

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "orchestrationId": "p",
            "waves": [
                {"waveId": "w1", "agents": [
                    {"agentId": "A", "workDescription": "a", "estimatedDuration": "10s"},
                    {"agentId": "B", "workDescription": "b", "estimatedDuration": "30s"}]},
                {"waveId": "w2", "agents": [
                    {"agentId": "C", "workDescription": "c", "estimatedDuration": "10s", "dependencies": ["A"]},
                    {"agentId": "D", "workDescription": "d", "estimatedDuration": "5s", "dependencies": ["B"]}]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn estimates_first_then_actual_durations() {
        let plan = plan();
        let mut cache = CriticalPathCache::new(&plan);
        let state = RunState::default();
        let path = cache.compute(&state, 0);
        assert_eq!(path.agents, ["B", "D"]);
        assert_eq!(path.length_ms, 35_000);

        // A ran for 60 s: now A → C is the longest chain.
        let rec = |seq, at_ms, event| EventRecord { seq, at_ms, event };
        let state = RunState::replay(&[
            rec(
                1,
                0,
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 1,
                },
            ),
            rec(
                2,
                60_000,
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
                3,
                60_000,
                Event::AgentStarted {
                    agent: "C".into(),
                    attempt: 1,
                },
            ),
        ]);
        let path = cache.compute(&state, 61_000);
        assert_eq!(path.agents, ["A", "C"]);
        assert_eq!(
            path.length_ms, 70_000,
            "C counts its estimate while it is short of it"
        );
        let path = cache.compute(&state, 100_000);
        assert_eq!(
            path.length_ms, 100_000,
            "C's elapsed time once it passed it"
        );
    }

    #[test]
    fn no_plan_no_path() {
        assert_eq!(
            CriticalPathCache::default().compute(&RunState::default(), 0),
            CriticalPath::default()
        );
    }
}
