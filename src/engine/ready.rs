//! Which agents may start now, and which can never start: the scheduling rules
//! of the execution modes, as a pure function of the plan and the run state.

use std::collections::{HashMap, HashSet};

use crate::journal::{AgentPhase, RunState};
use crate::plan::{ExecutionMode, Plan};

/// The plan's agents indexed for scheduling.
#[derive(Debug, Clone)]
pub struct PlanIndex {
    /// Agent ids in plan order.
    pub ids: Vec<String>,
    /// Wave index of each agent.
    pub wave: Vec<usize>,
    /// Dependencies of each agent (indices).
    pub deps: Vec<Vec<usize>>,
    /// Whether each wave is parallel.
    pub wave_parallel: Vec<bool>,
    /// Wave ids.
    pub wave_ids: Vec<String>,
    /// Index of each id.
    pub position: HashMap<String, usize>,
}

impl PlanIndex {
    /// Indexes a (valid) plan.
    pub fn new(plan: &Plan) -> Self {
        let mut index = PlanIndex {
            ids: Vec::new(),
            wave: Vec::new(),
            deps: Vec::new(),
            wave_parallel: plan.waves.iter().map(|w| w.parallel).collect(),
            wave_ids: plan.waves.iter().map(|w| w.wave_id.clone()).collect(),
            position: HashMap::new(),
        };
        for (w, _, agent) in plan.agents() {
            index
                .position
                .insert(agent.agent_id.clone(), index.ids.len());
            index.ids.push(agent.agent_id.clone());
            index.wave.push(w);
        }
        for (_, _, agent) in plan.agents() {
            let deps = agent
                .dependencies
                .iter()
                .filter_map(|d| index.position.get(d).copied())
                .collect();
            index.deps.push(deps);
        }
        index
    }
}

/// What the scheduler should do next.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Agents that can never run: (agent, failed dependency, reason).
    pub block: Vec<(String, String, String)>,
    /// Agents that may start now, in plan order (the caller applies concurrency).
    pub start: Vec<String>,
    /// The wave being worked on (waves/adaptive modes).
    pub current_wave: Option<usize>,
}

/// Decides which pending agents to block and which to start.
///
/// `busy` holds agents that are running or waiting for a retry timer.
/// Waves mode: only the first wave with unfinished agents is considered; in a
/// parallel wave every pending agent may start, in a sequential wave only the
/// first unfinished one and only when nothing of that wave is busy.
/// Continuous mode: any pending agent whose dependencies all completed.
/// In every mode an agent whose dependency failed or was blocked is blocked.
/// Linear in the number of agents and dependencies.
pub fn decide(
    index: &PlanIndex,
    state: &RunState,
    mode: ExecutionMode,
    busy: &HashSet<String>,
) -> Decision {
    decide_up_to(index, state, mode, busy, usize::MAX)
}

/// [`decide`], listing at most `max_start` agents to start (the free
/// concurrency slots), so a large plan does not pay for every waiting agent.
pub fn decide_up_to(
    index: &PlanIndex,
    state: &RunState,
    mode: ExecutionMode,
    busy: &HashSet<String>,
    max_start: usize,
) -> Decision {
    let n = index.ids.len();
    let mut phase: Vec<AgentPhase> = vec![AgentPhase::Pending; n];
    for (id, agent) in &state.agents {
        if let Some(&i) = index.position.get(id) {
            phase[i] = agent.phase;
        }
    }
    let is_busy: Vec<bool> = index.ids.iter().map(|id| busy.contains(id)).collect();
    let mut decision = Decision::default();
    // Blocking propagates through chains: repeat until nothing changes (plan
    // order makes one pass enough for backward dependencies).
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if phase[i] != AgentPhase::Pending || is_busy[i] {
                continue;
            }
            let failed = index.deps[i]
                .iter()
                .copied()
                .find(|&d| matches!(phase[d], AgentPhase::Failed | AgentPhase::Blocked));
            if let Some(d) = failed {
                let dep = &index.ids[d];
                let reason = if phase[d] == AgentPhase::Blocked {
                    format!("dependency {dep} is blocked")
                } else {
                    format!("dependency {dep} failed")
                };
                decision
                    .block
                    .push((index.ids[i].clone(), dep.clone(), reason));
                phase[i] = AgentPhase::Blocked;
                changed = true;
            }
        }
    }
    let startable = |i: usize| -> bool {
        phase[i] == AgentPhase::Pending
            && !is_busy[i]
            && index.deps[i]
                .iter()
                .all(|&d| phase[d] == AgentPhase::Completed)
    };
    match mode {
        ExecutionMode::Continuous => {
            decision.start = (0..n)
                .filter(|&i| startable(i))
                .take(max_start)
                .map(|i| index.ids[i].clone())
                .collect();
        }
        ExecutionMode::Waves | ExecutionMode::Adaptive => {
            let Some(wave) = (0..n)
                .filter(|&i| !phase[i].is_terminal())
                .map(|i| index.wave[i])
                .min()
            else {
                return decision;
            };
            decision.current_wave = Some(wave);
            let members: Vec<usize> = (0..n).filter(|&i| index.wave[i] == wave).collect();
            if index.wave_parallel[wave] {
                decision.start = members
                    .into_iter()
                    .filter(|&i| startable(i))
                    .take(max_start)
                    .map(|i| index.ids[i].clone())
                    .collect();
            } else if !members.iter().any(|&i| is_busy[i])
                && let Some(&first) = members.iter().find(|&&i| !phase[i].is_terminal())
                && startable(first)
            {
                decision.start.push(index.ids[first].clone());
            }
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{AgentOutcome, Event, EventRecord};

    fn plan(mode: &str, second_parallel: bool) -> Plan {
        let json = format!(
            r#"{{"orchestrationId":"t","executionMode":"{mode}","waves":[
            {{"waveId":"w1","agents":[{{"agentId":"A","workDescription":"a"}},{{"agentId":"B","workDescription":"b"}}]}},
            {{"waveId":"w2","parallel":{second_parallel},"agents":[{{"agentId":"C","workDescription":"c","dependencies":["A"]}},{{"agentId":"D","workDescription":"d","dependencies":["B"]}}]}},
            {{"waveId":"w3","agents":[{{"agentId":"E","workDescription":"e","dependencies":["C"]}}]}}]}}"#
        );
        let loaded = crate::plan::load_str("p.json", &json, Default::default());
        assert_eq!(loaded.error_count(), 0, "{:?}", loaded.located());
        loaded.plan.unwrap()
    }

    fn finish(state: &mut RunState, seq: &mut i64, id: &str, ok: bool) {
        *seq += 1;
        let outcome = if ok {
            AgentOutcome::Completed {
                without_marker: false,
            }
        } else {
            AgentOutcome::Failed { reason: "x".into() }
        };
        state.apply(&EventRecord {
            seq: *seq,
            at_ms: 0,
            event: Event::AgentFinished {
                agent: id.into(),
                attempt: 1,
                outcome,
                exit_code: None,
            },
        });
    }

    #[test]
    fn waves_mode_starts_one_wave_at_a_time() {
        let p = plan("waves", true);
        let index = PlanIndex::new(&p);
        let mut state = RunState::default();
        let none = HashSet::new();
        assert_eq!(
            decide(&index, &state, ExecutionMode::Waves, &none).start,
            vec!["A", "B"]
        );
        let mut seq = 0;
        finish(&mut state, &mut seq, "A", true);
        let busy: HashSet<String> = ["B".to_string()].into();
        // C only depends on A, but wave 2 waits for all of wave 1.
        assert!(
            decide(&index, &state, ExecutionMode::Waves, &busy)
                .start
                .is_empty()
        );
        assert_eq!(
            decide(&index, &state, ExecutionMode::Continuous, &busy).start,
            vec!["C"]
        );
        finish(&mut state, &mut seq, "B", true);
        assert_eq!(
            decide(&index, &state, ExecutionMode::Waves, &none).start,
            vec!["C", "D"]
        );
    }

    #[test]
    fn sequential_waves_start_agents_one_after_another() {
        let p = plan("waves", false);
        let index = PlanIndex::new(&p);
        let mut state = RunState::default();
        let mut seq = 0;
        finish(&mut state, &mut seq, "A", true);
        finish(&mut state, &mut seq, "B", true);
        let none = HashSet::new();
        assert_eq!(
            decide(&index, &state, ExecutionMode::Waves, &none).start,
            vec!["C"]
        );
        let busy: HashSet<String> = ["C".to_string()].into();
        assert!(
            decide(&index, &state, ExecutionMode::Waves, &busy)
                .start
                .is_empty()
        );
    }

    #[test]
    fn a_failure_blocks_exactly_its_transitive_dependants() {
        let p = plan("continuous", true);
        let index = PlanIndex::new(&p);
        let mut state = RunState::default();
        let mut seq = 0;
        finish(&mut state, &mut seq, "A", false);
        finish(&mut state, &mut seq, "B", true);
        let d = decide(&index, &state, ExecutionMode::Continuous, &HashSet::new());
        let blocked: Vec<&str> = d.block.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(blocked, vec!["C", "E"]);
        assert_eq!(d.block[0].2, "dependency A failed");
        assert_eq!(d.block[1].2, "dependency C is blocked");
        assert_eq!(d.start, vec!["D"]);
    }
}
