//! Anomaly detection while a run goes on: each finding is journaled as an
//! [`Event::Anomaly`] with a recommendation (and so reaches `status.json`,
//! the report and the alerts).
//!
//! - **Stalled**: an agent that reported progress at least three times has
//!   not reported any for [`STALL_FACTOR`] times its usual (median)
//!   interval, and at least [`MIN_STALL`]. Once per silence.
//! - **Progress backwards**: a `PROGRESS-NN%` lower than the one before in
//!   the same attempt.
//! - **Overrun**: an attempt running longer than its estimate times the
//!   agent's overrun ratio: the run history's 90th percentile of actual over
//!   estimated duration for the agent's platform and model when known, else
//!   [`DEFAULT_OVERRUN_RATIO`]. Once per attempt.
//! - **Repeated gate failure**: the same gate failed a second time on the
//!   same work (agent or integration).
//! - **Cost burn**: with a budget, spending has run ahead of the budget's
//!   pace (spent more than 125% of `budget × elapsed / expected duration`,
//!   and over 10% of the budget), where the expected duration is the sum of
//!   each wave's longest estimate. Once per run.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::journal::{AnomalyKind, Event, RunState};
use crate::plan::Plan;
use crate::protocol::ReportedStatus;

/// A silence this many times the usual progress interval is a stall.
pub const STALL_FACTOR: f64 = 3.0;
/// The shortest silence reported as a stall.
pub const MIN_STALL: Duration = Duration::from_secs(2);
/// Overrun ratio (actual / estimate) without history.
pub const DEFAULT_OVERRUN_RATIO: f64 = 1.5;

/// One running attempt, as watched.
#[derive(Debug)]
struct Watch {
    started: Instant,
    last_signal: Instant,
    last_progress: Option<u8>,
    intervals: Vec<f64>,
    stall_reported: bool,
    overrun_reported: bool,
}

impl Watch {
    /// The agent reported something (a marker or a progress report).
    fn signal(&mut self, now: Instant) {
        let gap = now.duration_since(self.last_signal).as_secs_f64();
        self.intervals.push(gap);
        self.last_signal = now;
        self.stall_reported = false;
    }
}

/// Watches a run's events and time for anomalies.
#[derive(Debug)]
pub struct AnomalyDetector {
    running: HashMap<String, Watch>,
    found: Vec<Event>,
    gate_failures: HashMap<(String, String), u32>,
    estimates: HashMap<String, Duration>,
    overrun_ratio: HashMap<String, f64>,
    budget_usd: Option<f64>,
    expected_run: Option<Duration>,
    run_start: Instant,
    burn_reported: bool,
    reported_gates: HashSet<(String, String)>,
}

impl AnomalyDetector {
    /// A detector for `plan`; `overrun_ratio` holds each agent's ratio from
    /// history (others use [`DEFAULT_OVERRUN_RATIO`]).
    pub fn new(plan: &Plan, overrun_ratio: HashMap<String, f64>, budget_usd: Option<f64>) -> Self {
        let (estimates, expected_run) = expectations(plan);
        Self {
            running: HashMap::new(),
            found: Vec::new(),
            gate_failures: HashMap::new(),
            estimates,
            overrun_ratio,
            budget_usd,
            expected_run,
            run_start: Instant::now(),
            burn_reported: false,
            reported_gates: HashSet::new(),
        }
    }

    /// Follows an adapted plan (new estimates).
    pub fn replan(&mut self, plan: &Plan) {
        (self.estimates, self.expected_run) = expectations(plan);
    }

    /// Looks at one event as it is staged.
    pub fn observe(&mut self, event: &Event, now: Instant) {
        match event {
            Event::AgentStarted { agent, .. } => {
                self.running.insert(
                    agent.clone(),
                    Watch {
                        started: now,
                        last_signal: now,
                        last_progress: None,
                        intervals: Vec::new(),
                        stall_reported: false,
                        overrun_reported: false,
                    },
                );
            }
            Event::AgentFinished { agent, .. } => {
                self.running.remove(agent);
            }
            Event::AgentStatus { agent, status, .. } => {
                let Some(watch) = self.running.get_mut(agent) else {
                    return;
                };
                watch.signal(now);
                if let ReportedStatus::Progress(p) = status {
                    if let Some(before) = watch.last_progress
                        && *p < before
                    {
                        self.found.push(Event::Anomaly {
                            kind: AnomalyKind::ProgressBackwards,
                            agent: Some(agent.clone()),
                            detail: format!("progress went back from {before}% to {p}%"),
                            recommendation: format!(
                                "Check {agent}'s output.log: it may have started over or lost work"
                            ),
                        });
                    }
                    watch.last_progress = Some(*p);
                }
            }
            Event::AgentReport { agent, .. } => {
                if let Some(watch) = self.running.get_mut(agent) {
                    watch.signal(now);
                }
            }
            Event::GateFinished {
                service, result, ..
            } if !result.ok() => {
                let key = (service.clone(), result.gate.clone());
                let count = self.gate_failures.entry(key.clone()).or_insert(0);
                *count += 1;
                if *count >= 2 && self.reported_gates.insert(key) {
                    self.found.push(Event::Anomaly {
                        kind: AnomalyKind::RepeatedGateFailure,
                        agent: Some(service.clone()),
                        detail: format!("gate {} failed {} times", result.gate, count),
                        recommendation: format!(
                            "{service}'s work is not converging on gate {}: revise its work description or fix it by hand (--mode adaptive can revise it)",
                            result.gate
                        ),
                    });
                }
            }
            _ => {}
        }
    }

    /// Checks the time-based anomalies and returns everything found since the last call.
    pub fn check(&mut self, now: Instant, state: &RunState) -> Vec<Event> {
        for (agent, watch) in &mut self.running {
            if !watch.stall_reported && watch.intervals.len() >= 3 {
                let usual = median(&watch.intervals);
                let limit = Duration::from_secs_f64(usual * STALL_FACTOR).max(MIN_STALL);
                let silent = now.duration_since(watch.last_signal);
                if silent > limit {
                    watch.stall_reported = true;
                    self.found.push(Event::Anomaly {
                        kind: AnomalyKind::Stalled,
                        agent: Some(agent.clone()),
                        detail: format!(
                            "no progress for {} (it usually reports every {})",
                            seconds(silent.as_secs_f64()),
                            seconds(usual)
                        ),
                        recommendation: format!(
                            "Look at {agent}'s output.log; if it is stuck, stop it (--stall-timeout kills agents silent that long)"
                        ),
                    });
                }
            }
            if let Some(estimate) = self.estimates.get(agent)
                && !watch.overrun_reported
            {
                let ratio = self
                    .overrun_ratio
                    .get(agent)
                    .copied()
                    .unwrap_or(DEFAULT_OVERRUN_RATIO);
                let limit = estimate.mul_f64(ratio);
                let elapsed = now.duration_since(watch.started);
                if elapsed > limit {
                    watch.overrun_reported = true;
                    self.found.push(Event::Anomaly {
                        kind: AnomalyKind::Overrun,
                        agent: Some(agent.clone()),
                        detail: format!(
                            "running for {}, over {ratio:.1}× its estimate of {}",
                            seconds(elapsed.as_secs_f64()),
                            seconds(estimate.as_secs_f64())
                        ),
                        recommendation: format!(
                            "Check whether {agent} is progressing; raise its estimatedDuration or split its work"
                        ),
                    });
                }
            }
        }
        if let (Some(budget), Some(expected), false) =
            (self.budget_usd, self.expected_run, self.burn_reported)
        {
            let spent = state.cost_usd();
            let elapsed = now.duration_since(self.run_start).as_secs_f64();
            let pace = budget * (elapsed / expected.as_secs_f64().max(1.0)).min(1.0);
            if spent > budget * 0.1 && spent > pace * 1.25 {
                self.burn_reported = true;
                self.found.push(Event::Anomaly {
                    kind: AnomalyKind::CostBurn,
                    agent: None,
                    detail: format!(
                        "spent ${spent:.2} of ${budget:.2} after {} of an expected {}",
                        seconds(elapsed),
                        seconds(expected.as_secs_f64())
                    ),
                    recommendation: "Spending runs ahead of the budget: lower the concurrency, use a cheaper model, or raise the budget".into(),
                });
            }
        }
        std::mem::take(&mut self.found)
    }
}

/// Each agent's estimate, and the run's expected duration: the sum of each
/// wave's longest estimate (of all its estimates, for a sequential wave);
/// `None` when no agent has an estimate.
fn expectations(plan: &Plan) -> (HashMap<String, Duration>, Option<Duration>) {
    let estimates: HashMap<String, Duration> = plan
        .agents()
        .filter_map(|(_, _, a)| a.estimated_duration.map(|d| (a.agent_id.clone(), d.get())))
        .collect();
    let expected_run = (!estimates.is_empty()).then(|| {
        plan.waves
            .iter()
            .map(|w| {
                let each = w
                    .agents
                    .iter()
                    .filter_map(|a| a.estimated_duration.map(|d| d.get()));
                if w.parallel {
                    each.max().unwrap_or_default()
                } else {
                    each.sum()
                }
            })
            .sum()
    });
    (estimates, expected_run)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn seconds(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.1}s")
    } else if secs < 5400.0 {
        format!("{:.1}m", secs / 60.0)
    } else {
        format!("{:.1}h", secs / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::AgentOutcome;

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "orchestrationId": "p",
            "waves": [{"waveId": "w", "agents": [
                {"agentId": "A", "workDescription": "a", "estimatedDuration": "10s"}]}]
        }))
        .unwrap()
    }

    fn status(p: u8) -> Event {
        Event::AgentStatus {
            agent: "A".into(),
            status: ReportedStatus::Progress(p),
            text: String::new(),
        }
    }

    fn kinds(events: &[Event]) -> Vec<AnomalyKind> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Anomaly { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_silence_three_times_the_usual_interval_is_a_stall_once() {
        let mut d = AnomalyDetector::new(&plan(), HashMap::new(), None);
        let t0 = Instant::now();
        d.observe(
            &Event::AgentStarted {
                agent: "A".into(),
                attempt: 1,
            },
            t0,
        );
        for i in 1..=4u64 {
            d.observe(&status(i as u8 * 10), t0 + Duration::from_secs(i));
        }
        let state = RunState::default();
        assert!(d.check(t0 + Duration::from_secs(6), &state).is_empty());
        let found = d.check(t0 + Duration::from_secs(8), &state);
        assert_eq!(kinds(&found), [AnomalyKind::Stalled]);
        assert!(d.check(t0 + Duration::from_secs(9), &state).is_empty());
        // Progress again, then silence again: reported again.
        d.observe(&status(50), t0 + Duration::from_secs(9));
        assert_eq!(
            kinds(&d.check(t0 + Duration::from_secs(14), &state))[0],
            AnomalyKind::Stalled
        );
    }

    #[test]
    fn backwards_progress_overruns_and_repeated_gate_failures() {
        let mut ratios = HashMap::new();
        ratios.insert("A".to_string(), 1.2);
        let mut d = AnomalyDetector::new(&plan(), ratios, None);
        let t0 = Instant::now();
        d.observe(
            &Event::AgentStarted {
                agent: "A".into(),
                attempt: 1,
            },
            t0,
        );
        d.observe(&status(60), t0);
        d.observe(&status(20), t0);
        let state = RunState::default();
        assert_eq!(
            kinds(&d.check(t0, &state)),
            [AnomalyKind::ProgressBackwards]
        );
        // 12 s = 1.2 × 10 s: not yet; 13 s: over.
        assert!(kinds(&d.check(t0 + Duration::from_secs(12), &state)).is_empty());
        assert_eq!(
            kinds(&d.check(t0 + Duration::from_secs(13), &state)),
            [AnomalyKind::Overrun]
        );
        assert!(d.check(t0 + Duration::from_secs(20), &state).is_empty());
        let mut failed = crate::gates::GateResult::skipped("unit-tests", "x");
        failed.status = crate::gates::GateStatus::Failed;
        let gate = Event::GateFinished {
            level: crate::journal::GateLevel::Agent,
            stage: None,
            service: "A".into(),
            result: failed,
        };
        d.observe(&gate, t0);
        assert!(d.check(t0, &state).is_empty());
        d.observe(&gate, t0);
        d.observe(&gate, t0);
        assert_eq!(
            kinds(&d.check(t0, &state)),
            [AnomalyKind::RepeatedGateFailure]
        );
        d.observe(
            &Event::AgentFinished {
                agent: "A".into(),
                attempt: 1,
                outcome: AgentOutcome::TimedOut,
                exit_code: None,
            },
            t0,
        );
        assert!(d.check(t0 + Duration::from_secs(100), &state).is_empty());
    }
}
