//! Live ETAs from history: each agent's calibrated duration, and the run's
//! remaining time by simulating the rest of the run from where it stands.
//!
//! [`LiveEta`] watches the journaled events (attempt starts, retry delays)
//! and, asked for the run's ETA, seeds a nominal simulation with every
//! agent's state: completed and failed agents as they are, running attempts
//! ending at their start + calibrated duration (or now, when they overran),
//! retries at their journaled time. [`EtaLines`] prints the ETA as a line
//! when an agent or a wave finishes (plain output); the terminal bars show
//! it through [`crate::engine::progress::TerminalBars::with_eta`].

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use super::simulate::{Initial, Sampler, SimOptions, simulate_from};
use super::{ModelOptions, SimModel};
use crate::engine::progress::Reporter;
use crate::history::Calibration;
use crate::journal::{AgentPhase, Event, EventRecord, RunState};
use crate::plan::Plan;
use crate::plan::duration::format_duration;

/// ETAs for a running plan.
#[derive(Debug, Clone)]
pub struct LiveEta {
    model: SimModel,
    options: SimOptions,
    index: HashMap<String, usize>,
    attempt_start: HashMap<String, i64>,
    retry_at: HashMap<String, i64>,
}

impl LiveEta {
    /// ETAs for `plan` with `calibration`; `None` when the history has no
    /// basis for any of its agents (the plan's estimates are all there is).
    pub fn new(
        plan: &Plan,
        calibration: &Calibration,
        options: SimOptions,
        timeout_factor: f64,
    ) -> Option<Self> {
        let model = SimModel::from_plan(
            plan,
            ModelOptions {
                calibration: Some(calibration),
                default_estimate: Duration::from_secs(1800),
                timeout_factor,
            },
        );
        if model.calibrated_count() == 0 {
            return None;
        }
        let index = model
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        Some(Self {
            model,
            options,
            index,
            attempt_start: HashMap::new(),
            retry_at: HashMap::new(),
        })
    }

    /// Notes what an event says about attempt starts and retry times.
    pub fn observe(&mut self, record: &EventRecord) {
        match &record.event {
            Event::AgentStarted { agent, .. } => {
                self.attempt_start.insert(agent.clone(), record.at_ms);
                self.retry_at.remove(agent);
            }
            Event::AgentRetrying {
                agent, delay_ms, ..
            } => {
                let delay = i64::try_from(*delay_ms).unwrap_or(i64::MAX);
                self.retry_at
                    .insert(agent.clone(), record.at_ms.saturating_add(delay));
            }
            _ => {}
        }
    }

    /// An agent's predicted duration and what it is based on (`None` for an
    /// agent the history does not know: then it is the plan's estimate).
    pub fn agent(&self, id: &str) -> Option<(Duration, Option<&str>)> {
        let agent = &self.model.agents[*self.index.get(id)?];
        Some((
            super::seconds_to_duration(agent.duration),
            agent.calibration.as_ref().map(|c| c.basis.as_str()),
        ))
    }

    /// Agents with a calibrated duration, and all agents.
    pub fn coverage(&self) -> (usize, usize) {
        (self.model.calibrated_count(), self.model.agents.len())
    }

    /// The time left until the run's predicted end, as it stands at `now_ms`.
    pub fn remaining(&self, state: &RunState, now_ms: i64) -> Duration {
        let origin = state
            .agents
            .values()
            .filter_map(|a| a.started_at_ms)
            .min()
            .unwrap_or(now_ms)
            .min(now_ms);
        let clock = |ms: i64| (ms - origin) as f64 / 1000.0;
        let now = clock(now_ms);
        let initial: Vec<Initial> = self
            .model
            .agents
            .iter()
            .map(|agent| {
                let Some(s) = state.agents.get(&agent.id) else {
                    return Initial::Pending;
                };
                match s.phase {
                    AgentPhase::Pending | AgentPhase::AwaitingInput => Initial::Pending,
                    AgentPhase::Completed => {
                        let end = s.finished_at_ms.map_or(now, clock);
                        Initial::Completed {
                            start: self
                                .attempt_start
                                .get(&agent.id)
                                .map_or(end, |&ms| clock(ms)),
                            end,
                        }
                    }
                    AgentPhase::Failed => Initial::Failed,
                    AgentPhase::Blocked => Initial::Blocked,
                    AgentPhase::Running => Initial::Running {
                        start: self
                            .attempt_start
                            .get(&agent.id)
                            .copied()
                            .or(s.started_at_ms)
                            .map_or(now, clock),
                        attempt: s.attempt.max(1),
                    },
                    AgentPhase::Retrying => Initial::Retrying {
                        at: self.retry_at.get(&agent.id).map_or(now, |&ms| clock(ms)),
                        attempt: s.attempt + 1,
                    },
                }
            })
            .collect();
        let timeline = simulate_from(&self.model, self.options, Sampler::Nominal, &initial, now);
        super::seconds_to_duration(timeline.makespan - now)
    }

    /// `ETA 3m20s (history: 5 of 8 agents calibrated)`.
    pub fn describe(&self, state: &RunState, now_ms: i64) -> String {
        let (calibrated, all) = self.coverage();
        format!(
            "ETA {} (history: {calibrated} of {all} agents calibrated)",
            format_duration(self.remaining(state, now_ms))
        )
    }
}

/// Prints the run's ETA from history when an agent or a wave finishes (plain output).
#[derive(Debug)]
pub struct EtaLines {
    eta: LiveEta,
    /// The last line printed (an unchanged ETA is not printed again).
    last: String,
}

impl EtaLines {
    /// Lines from `eta`.
    pub fn new(eta: LiveEta) -> Self {
        Self {
            eta,
            last: String::new(),
        }
    }
}

impl Reporter for EtaLines {
    fn event(&mut self, record: &EventRecord, state: &RunState, _plan: &Plan) {
        self.eta.observe(record);
        let due = match &record.event {
            Event::AgentFinished { agent, .. } => state
                .agents
                .get(agent)
                .is_some_and(|a| a.phase != AgentPhase::Retrying),
            Event::WaveStarted { .. } => true,
            _ => false,
        };
        if due && state.outcome.is_none() {
            let line = self.eta.describe(state, record.at_ms);
            if line == self.last {
                return;
            }
            self.last.clone_from(&line);
            let mut out = std::io::stdout().lock();
            let secs = (record.at_ms / 1000).rem_euclid(86_400);
            let _ = writeln!(
                out,
                "[{:02}:{:02}:{:02}] {line}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HistoryRow;
    use crate::history::tests::test_plan;
    use crate::plan::{ExecutionMode, FailureStrategy};

    #[test]
    fn the_eta_follows_calibrated_durations_and_the_run_as_it_goes() {
        let plan = test_plan(
            r#"{"orchestrationId":"e","waves":[
            {"waveId":"w1","agents":[{"agentId":"A","workDescription":"a","estimatedDuration":"10s","command":"true"}]},
            {"waveId":"w2","agents":[{"agentId":"B","workDescription":"b","estimatedDuration":"10s","command":"true"}]}]}"#,
        );
        let row = HistoryRow {
            run_id: "old".into(),
            plan: "other".into(),
            plan_path: None,
            agent_id: "X".into(),
            wave: None,
            platform: "shell".into(),
            model: None,
            scope: Vec::new(),
            estimate_secs: Some(10.0),
            actual_secs: None,
            attempt_secs: Some(20.0),
            attempts: 1,
            failed_attempts: 0,
            outcome: "completed".into(),
            gates_passed: 0,
            gates_failed: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            started_at_ms: None,
            finished_at_ms: 0,
        };
        let options = SimOptions {
            mode: ExecutionMode::Waves,
            concurrency: 1,
            retry_base: 2.0,
            retry_max: 120.0,
            failure_strategy: FailureStrategy::ContinueOthers,
        };
        assert!(LiveEta::new(&plan, &Calibration::default(), options, 2.0).is_none());
        let mut eta = LiveEta::new(&plan, &Calibration::from_rows(&[row]), options, 2.0).unwrap();
        assert_eq!(
            eta.agent("A"),
            Some((Duration::from_secs(20), Some("shell (1 runs)")))
        );
        let mut state = RunState::default();
        assert_eq!(eta.remaining(&state, 0), Duration::from_secs(40));
        fn feed(eta: &mut LiveEta, state: &mut RunState, at_ms: i64, event: Event) {
            let record = EventRecord {
                seq: 0,
                at_ms,
                event,
            };
            state.apply(&record);
            eta.observe(&record);
        }
        feed(
            &mut eta,
            &mut state,
            1_000,
            Event::AgentStarted {
                agent: "A".into(),
                attempt: 1,
            },
        );
        // 5 s into A (20 s): 15 s of A, then B's 20 s.
        assert_eq!(eta.remaining(&state, 6_000), Duration::from_secs(35));
        feed(
            &mut eta,
            &mut state,
            13_000,
            Event::AgentFinished {
                agent: "A".into(),
                attempt: 1,
                outcome: crate::journal::AgentOutcome::Completed {
                    without_marker: false,
                },
                exit_code: Some(0),
            },
        );
        // A finished early (12 s): B's 20 s are left.
        assert_eq!(eta.remaining(&state, 13_000), Duration::from_secs(20));
        assert!(
            eta.describe(&state, 13_000)
                .starts_with("ETA 20s (history: 2 of 2")
        );
    }
}
