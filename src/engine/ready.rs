//! Which agents may start now, and which can never start: the scheduling rules
//! of the execution modes, kept up to date incrementally.
//!
//! The [`Scheduler`] mirrors each agent's [`AgentPhase`] and is told of every
//! change ([`Scheduler::set`], [`Scheduler::sync_all`]). From those changes it
//! keeps, per agent, the number of dependencies not yet completed, the set of
//! agents that could start (pending, every dependency completed) and, per
//! wave, how many agents are unfinished and how many are running. A decision
//! then costs time in proportion to what it returns, not to the plan's size,
//! so a 10,000-agent run does not rescan the plan on every turn.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

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
    /// Agents that depend on each agent (indices).
    pub dependants: Vec<Vec<usize>>,
    /// Whether each wave is parallel.
    pub wave_parallel: Vec<bool>,
    /// Wave ids.
    pub wave_ids: Vec<String>,
    /// The agents of each wave (plan order keeps a wave's agents together).
    pub wave_members: Vec<Range<usize>>,
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
            dependants: Vec::new(),
            wave_parallel: plan.waves.iter().map(|w| w.parallel).collect(),
            wave_ids: plan.waves.iter().map(|w| w.wave_id.clone()).collect(),
            wave_members: Vec::with_capacity(plan.waves.len()),
            position: HashMap::new(),
        };
        for (w, wave) in plan.waves.iter().enumerate() {
            let first = index.ids.len();
            for agent in &wave.agents {
                index
                    .position
                    .insert(agent.agent_id.clone(), index.ids.len());
                index.ids.push(agent.agent_id.clone());
                index.wave.push(w);
            }
            index.wave_members.push(first..index.ids.len());
        }
        index.dependants = vec![Vec::new(); index.ids.len()];
        for (i, (_, _, agent)) in plan.agents().enumerate() {
            let mut deps: Vec<usize> = agent
                .dependencies
                .iter()
                .filter_map(|d| index.position.get(d).copied())
                .collect();
            deps.sort_unstable();
            deps.dedup();
            for &d in &deps {
                index.dependants[d].push(i);
            }
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
    /// Agents that may start now, in plan order (at most the number asked for).
    pub start: Vec<String>,
    /// The wave being worked on (waves/adaptive modes).
    pub current_wave: Option<usize>,
}

/// The scheduling rules of the execution modes over incrementally kept state.
///
/// Waves mode (and adaptive): only the first wave with unfinished agents is
/// considered; in a parallel wave every startable agent may start, in a
/// sequential wave only its first unfinished agent and only when nothing of
/// that wave is running or waiting for a retry. Continuous mode: any pending
/// agent whose dependencies all completed. In every mode an agent whose
/// dependency failed or was blocked is blocked, transitively.
#[derive(Debug, Clone)]
pub struct Scheduler {
    index: PlanIndex,
    mode: ExecutionMode,
    phase: Vec<AgentPhase>,
    /// Dependencies of each agent that have not completed.
    unmet: Vec<usize>,
    /// Pending agents whose dependencies all completed, in plan order.
    ready: BTreeSet<usize>,
    /// Agents blocked by the scheduler and not yet handed out: (agent, by).
    new_blocks: Vec<(usize, usize)>,
    /// Unfinished agents per wave.
    unfinished: Vec<usize>,
    /// Running or retrying agents per wave.
    active: Vec<usize>,
    /// No wave before this one has unfinished agents.
    first_open_wave: usize,
}

impl Scheduler {
    /// A scheduler for `plan` in `mode`, every agent pending.
    pub fn new(plan: &Plan, mode: ExecutionMode) -> Self {
        let index = PlanIndex::new(plan);
        let n = index.ids.len();
        let unmet: Vec<usize> = index.deps.iter().map(Vec::len).collect();
        let ready = (0..n).filter(|&i| unmet[i] == 0).collect();
        let unfinished = index.wave_members.iter().map(|r| r.len()).collect();
        let active = vec![0; index.wave_ids.len()];
        Self {
            index,
            mode,
            phase: vec![AgentPhase::Pending; n],
            unmet,
            ready,
            new_blocks: Vec::new(),
            unfinished,
            active,
            first_open_wave: 0,
        }
    }

    /// Whether every agent of wave `w` is finished (completed, failed or blocked).
    pub fn wave_done(&self, w: usize) -> bool {
        self.unfinished.get(w).is_none_or(|&n| n == 0)
    }

    /// The plan's index.
    pub fn index(&self) -> &PlanIndex {
        &self.index
    }

    /// Takes every agent's phase from `state` (at the start, and after events
    /// that change many agents at once).
    pub fn sync_all(&mut self, state: &RunState) {
        for i in 0..self.index.ids.len() {
            if let Some(agent) = state.agents.get(&self.index.ids[i]) {
                self.set(i, agent.phase);
            }
        }
    }

    /// Takes one agent's phase from `state`.
    pub fn sync(&mut self, state: &RunState, id: &str) {
        if let (Some(&i), Some(agent)) = (self.index.position.get(id), state.agents.get(id)) {
            self.set(i, agent.phase);
        }
    }

    /// Records that agent `i` is now in `phase`, and what follows from it.
    pub fn set(&mut self, i: usize, phase: AgentPhase) {
        let old = std::mem::replace(&mut self.phase[i], phase);
        if old == phase {
            return;
        }
        let w = self.index.wave[i];
        let is_active = |p: AgentPhase| matches!(p, AgentPhase::Running | AgentPhase::Retrying);
        match (is_active(old), is_active(phase)) {
            (false, true) => self.active[w] += 1,
            (true, false) => self.active[w] -= 1,
            _ => {}
        }
        match (old.is_terminal(), phase.is_terminal()) {
            (false, true) => self.unfinished[w] -= 1,
            (true, false) => {
                self.unfinished[w] += 1;
                self.first_open_wave = self.first_open_wave.min(w);
            }
            _ => {}
        }
        if phase == AgentPhase::Pending && self.unmet[i] == 0 {
            self.ready.insert(i);
        } else {
            self.ready.remove(&i);
        }
        if old == AgentPhase::Completed {
            for k in 0..self.index.dependants[i].len() {
                let d = self.index.dependants[i][k];
                self.unmet[d] += 1;
                self.ready.remove(&d);
            }
        }
        match phase {
            AgentPhase::Completed => {
                for k in 0..self.index.dependants[i].len() {
                    let d = self.index.dependants[i][k];
                    self.unmet[d] -= 1;
                    if self.unmet[d] == 0 && self.phase[d] == AgentPhase::Pending {
                        self.ready.insert(d);
                    }
                }
            }
            AgentPhase::Failed | AgentPhase::Blocked => {
                for k in 0..self.index.dependants[i].len() {
                    let d = self.index.dependants[i][k];
                    if self.phase[d] == AgentPhase::Pending {
                        self.new_blocks.push((d, i));
                        self.set(d, AgentPhase::Blocked);
                    }
                }
            }
            AgentPhase::Pending => {
                // A pending agent with a failed or blocked dependency can never run.
                let doomed = self.index.deps[i]
                    .iter()
                    .copied()
                    .find(|&d| matches!(self.phase[d], AgentPhase::Failed | AgentPhase::Blocked));
                if let Some(by) = doomed {
                    self.new_blocks.push((i, by));
                    self.set(i, AgentPhase::Blocked);
                }
            }
            AgentPhase::Running | AgentPhase::Retrying | AgentPhase::AwaitingInput => {}
        }
    }

    /// The first wave with unfinished agents.
    fn current_wave(&mut self) -> Option<usize> {
        while self.first_open_wave < self.unfinished.len()
            && self.unfinished[self.first_open_wave] == 0
        {
            self.first_open_wave += 1;
        }
        (self.first_open_wave < self.unfinished.len()).then_some(self.first_open_wave)
    }

    /// Hands out the agents blocked since the last call, and lists at most
    /// `max_start` agents that may start now. Blocked agents are already
    /// marked blocked here; the caller journals them.
    pub fn decide(&mut self, max_start: usize) -> Decision {
        let mut decision = Decision {
            block: std::mem::take(&mut self.new_blocks)
                .into_iter()
                // A block that no longer holds (the agent and its dependency
                // were reset by `resume --retry-failed`) is dropped.
                .filter(|&(i, by)| {
                    self.phase[i] == AgentPhase::Blocked
                        && matches!(self.phase[by], AgentPhase::Failed | AgentPhase::Blocked)
                })
                .map(|(i, by)| {
                    let dep = self.index.ids[by].clone();
                    let reason = if self.phase[by] == AgentPhase::Blocked {
                        format!("dependency {dep} is blocked")
                    } else {
                        format!("dependency {dep} failed")
                    };
                    (self.index.ids[i].clone(), dep, reason)
                })
                .collect(),
            ..Decision::default()
        };
        let (wave, starts) = self.startable(max_start);
        decision.current_wave = wave;
        decision.start = starts
            .into_iter()
            .map(|i| self.index.ids[i].clone())
            .collect();
        decision
    }

    /// The current wave (waves modes) and at most `max_start` agents that may start now.
    fn startable(&mut self, max_start: usize) -> (Option<usize>, Vec<usize>) {
        if self.mode == ExecutionMode::Continuous {
            return (None, self.ready.iter().copied().take(max_start).collect());
        }
        let Some(wave) = self.current_wave() else {
            return (None, Vec::new());
        };
        let members = self.index.wave_members[wave].clone();
        let starts = if self.index.wave_parallel[wave] {
            self.ready.range(members).copied().take(max_start).collect()
        } else if self.active[wave] == 0 && max_start > 0 {
            members
                .into_iter()
                .find(|&i| !self.phase[i].is_terminal())
                .filter(|i| self.ready.contains(i))
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        (Some(wave), starts)
    }

    /// True when deciding now would change nothing: no new blocks, nothing
    /// startable, and the current wave is still `current_wave`.
    pub fn is_idle(&mut self, current_wave: Option<usize>) -> bool {
        if !self.new_blocks.is_empty() {
            return false;
        }
        let (wave, starts) = self.startable(1);
        wave == current_wave && starts.is_empty()
    }
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

    fn start(s: &mut Scheduler, id: &str) {
        let i = s.index().position[id];
        s.set(i, AgentPhase::Running);
    }

    fn finished(s: &mut Scheduler, state: &mut RunState, seq: &mut i64, id: &str, ok: bool) {
        finish(state, seq, id, ok);
        s.sync(state, id);
    }

    #[test]
    fn waves_mode_starts_one_wave_at_a_time() {
        let p = plan("waves", true);
        let mut waves = Scheduler::new(&p, ExecutionMode::Waves);
        let mut continuous = Scheduler::new(&p, ExecutionMode::Continuous);
        let mut state = RunState::default();
        let d = waves.decide(usize::MAX);
        assert_eq!(d.start, vec!["A", "B"]);
        assert_eq!(d.current_wave, Some(0));
        assert_eq!(waves.decide(1).start, vec!["A"], "max_start is respected");
        for s in [&mut waves, &mut continuous] {
            start(s, "A");
            start(s, "B");
        }
        let mut seq = 0;
        finish(&mut state, &mut seq, "A", true);
        waves.sync(&state, "A");
        continuous.sync(&state, "A");
        // C only depends on A, but wave 2 waits for all of wave 1.
        assert!(waves.decide(usize::MAX).start.is_empty());
        assert_eq!(continuous.decide(usize::MAX).start, vec!["C"]);
        finished(&mut waves, &mut state, &mut seq, "B", true);
        let d = waves.decide(usize::MAX);
        assert_eq!(d.start, vec!["C", "D"]);
        assert_eq!(d.current_wave, Some(1));
    }

    #[test]
    fn sequential_waves_start_agents_one_after_another() {
        let p = plan("waves", false);
        let mut s = Scheduler::new(&p, ExecutionMode::Waves);
        let mut state = RunState::default();
        let mut seq = 0;
        finished(&mut s, &mut state, &mut seq, "A", true);
        finished(&mut s, &mut state, &mut seq, "B", true);
        assert_eq!(s.decide(usize::MAX).start, vec!["C"]);
        start(&mut s, "C");
        assert!(s.decide(usize::MAX).start.is_empty());
        assert!(s.is_idle(Some(1)));
        finished(&mut s, &mut state, &mut seq, "C", true);
        assert!(!s.is_idle(Some(1)));
        assert_eq!(s.decide(usize::MAX).start, vec!["D"]);
    }

    #[test]
    fn a_failure_blocks_exactly_its_transitive_dependants() {
        let p = plan("continuous", true);
        let mut s = Scheduler::new(&p, ExecutionMode::Continuous);
        let mut state = RunState::default();
        let mut seq = 0;
        finished(&mut s, &mut state, &mut seq, "A", false);
        finished(&mut s, &mut state, &mut seq, "B", true);
        let d = s.decide(usize::MAX);
        let blocked: Vec<&str> = d.block.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(blocked, vec!["C", "E"]);
        assert_eq!(d.block[0].2, "dependency A failed");
        assert_eq!(d.block[1].2, "dependency C is blocked");
        assert_eq!(d.start, vec!["D"]);
        assert!(
            s.decide(usize::MAX).block.is_empty(),
            "blocks are handed out once"
        );
    }

    #[test]
    fn a_retry_does_not_block_dependants_and_a_resume_restores_readiness() {
        let p = plan("continuous", true);
        let mut s = Scheduler::new(&p, ExecutionMode::Continuous);
        let mut state = RunState::default();
        let mut seq = 0;
        finish(&mut state, &mut seq, "A", false);
        seq += 1;
        state.apply(&EventRecord {
            seq,
            at_ms: 0,
            event: Event::AgentRetrying {
                agent: "A".into(),
                next_attempt: 2,
                delay_ms: 10,
                reason: "x".into(),
            },
        });
        s.sync(&state, "A");
        let d = s.decide(usize::MAX);
        assert!(d.block.is_empty());
        assert_eq!(d.start, vec!["B"]);
        // A fresh scheduler synced from the journal's state sees the same.
        let mut fresh = Scheduler::new(&p, ExecutionMode::Continuous);
        fresh.sync_all(&state);
        assert_eq!(fresh.decide(usize::MAX), d);
    }

    #[test]
    fn syncing_a_state_with_a_failed_dependency_blocks_on_resume() {
        let p = plan("continuous", true);
        let mut state = RunState::default();
        let mut seq = 0;
        finish(&mut state, &mut seq, "A", false);
        let mut s = Scheduler::new(&p, ExecutionMode::Continuous);
        s.sync_all(&state);
        let d = s.decide(usize::MAX);
        assert_eq!(d.block.len(), 2);
        assert_eq!(d.start, vec!["B"]);
    }
}
