//! Prediction: a plan's agents with calibrated durations and failure rates
//! ([`SimModel`]), a discrete-event simulation of a run ([`simulate`]), an SVG
//! Gantt chart of its timeline ([`gantt`]), the history-based analysis of
//! `analyze --history` ([`forecast`]) and live ETAs ([`eta`]).

pub mod eta;
pub mod forecast;
pub mod gantt;
pub mod rng;
pub mod simulate;

use std::time::Duration;

use serde::Serialize;

use crate::history::{Calibrated, Calibration};
use crate::plan::Plan;

/// One agent as the simulation sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimAgent {
    /// Agent id.
    pub id: String,
    /// Its wave (index in the plan).
    pub wave: usize,
    /// The agents it depends on (indices).
    pub deps: Vec<usize>,
    /// The plan's estimate in seconds (the default estimate when it has none).
    pub estimate: f64,
    /// Whether the plan gave an estimate.
    pub estimated: bool,
    /// Median duration of one attempt, in seconds (calibrated when the history has a basis).
    pub duration: f64,
    /// Spread of an attempt's duration: σ of a log-normal around `duration`.
    pub log_sigma: f64,
    /// Probability that an attempt fails.
    pub failure_rate: f64,
    /// Retries after a failed attempt (`maxRetries`).
    pub max_retries: u32,
    /// An attempt is stopped (and fails) after this many seconds: the agent's
    /// `timeout`, else its estimate × the timeout factor; `None` without either.
    pub timeout: Option<f64>,
    /// The calibration used, if any.
    pub calibration: Option<Calibrated>,
}

/// One wave as the simulation sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimWave {
    /// Wave id.
    pub id: String,
    /// Whether its agents run concurrently.
    pub parallel: bool,
    /// Its agents (indices, consecutive).
    pub members: Vec<usize>,
}

/// A plan ready to simulate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimModel {
    /// Agents in plan order.
    pub agents: Vec<SimAgent>,
    /// Waves in plan order.
    pub waves: Vec<SimWave>,
}

/// How agents' durations are chosen for a [`SimModel`].
#[derive(Debug, Clone, Copy)]
pub struct ModelOptions<'a> {
    /// Calibrated estimates; `None` uses the plan's estimates as they are.
    pub calibration: Option<&'a Calibration>,
    /// Estimate for agents without `estimatedDuration`.
    pub default_estimate: Duration,
    /// Timeout = estimate × this, for agents without `timeout` (the run's `--timeout-factor`).
    pub timeout_factor: f64,
}

impl SimModel {
    /// The agents and waves of a (valid) plan, with durations from the
    /// calibration when it has a basis for an agent, else from its estimate.
    pub fn from_plan(plan: &Plan, options: ModelOptions<'_>) -> Self {
        let calibrated = options
            .calibration
            .map(|c| c.for_plan(plan))
            .unwrap_or_else(|| vec![None; plan.agent_count()]);
        let index: std::collections::HashMap<&str, usize> = plan
            .agents()
            .enumerate()
            .map(|(i, (_, _, a))| (a.agent_id.as_str(), i))
            .collect();
        let mut agents = Vec::with_capacity(plan.agent_count());
        for ((w, _, agent), calibration) in plan.agents().zip(calibrated) {
            let estimate = agent
                .estimated_duration
                .map_or(options.default_estimate, |d| d.get());
            let duration = calibration
                .as_ref()
                .map_or(estimate, |c| c.duration(estimate))
                .as_secs_f64();
            let mut deps: Vec<usize> = agent
                .dependencies
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&d| d != agents.len())
                .collect();
            deps.sort_unstable();
            deps.dedup();
            let timeout = agent.timeout.map(|t| t.as_secs_f64()).or_else(|| {
                agent
                    .estimated_duration
                    .map(|d| d.as_secs_f64() * options.timeout_factor)
                    .filter(|t| t.is_finite() && *t > 0.0)
            });
            agents.push(SimAgent {
                id: agent.agent_id.clone(),
                wave: w,
                deps,
                estimate: estimate.as_secs_f64(),
                estimated: agent.estimated_duration.is_some(),
                duration,
                log_sigma: calibration.as_ref().map_or(0.0, Calibrated::log_sigma),
                failure_rate: calibration
                    .as_ref()
                    .map_or(0.0, |c| c.failure_rate.clamp(0.0, 1.0)),
                max_retries: agent.max_retries.unwrap_or(0),
                timeout,
                calibration,
            });
        }
        let mut next = 0;
        let waves = plan
            .waves
            .iter()
            .map(|w| {
                let members = (next..next + w.agents.len()).collect();
                next += w.agents.len();
                SimWave {
                    id: w.wave_id.clone(),
                    parallel: w.parallel,
                    members,
                }
            })
            .collect();
        Self { agents, waves }
    }

    /// The plan's graph with the model's (calibrated) durations, for the
    /// critical path, bottom levels and list scheduling of [`crate::graph`].
    pub fn dag(&self) -> crate::graph::Dag {
        let mut dependants = vec![Vec::new(); self.agents.len()];
        for (i, a) in self.agents.iter().enumerate() {
            for &d in &a.deps {
                dependants[d].push(i);
            }
        }
        crate::graph::Dag {
            ids: self.agents.iter().map(|a| a.id.clone()).collect(),
            wave: self.agents.iter().map(|a| a.wave).collect(),
            deps: self.agents.iter().map(|a| a.deps.clone()).collect(),
            dependants,
            duration: self.agents.iter().map(|a| a.duration).collect(),
            estimated: self.agents.iter().map(|a| a.estimated).collect(),
        }
    }

    /// Agents calibrated from history.
    pub fn calibrated_count(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.calibration.is_some())
            .count()
    }
}

/// A duration in seconds for reading, precise where it matters: `535ms`,
/// `1.5s`, `42s`, then [`format_duration`]'s `1m30s`, `2h5m`.
///
/// [`format_duration`]: crate::plan::duration::format_duration
pub fn human(seconds: f64) -> String {
    if !seconds.is_finite() || seconds <= 0.0 {
        return "0s".into();
    }
    if seconds < 1.0 {
        return format!("{:.0}ms", seconds * 1000.0);
    }
    if seconds < 10.0 {
        let text = format!("{seconds:.1}");
        return format!("{}s", text.trim_end_matches(".0"));
    }
    crate::plan::duration::format_duration(seconds_to_duration(seconds.round()))
}

/// Seconds as a [`Duration`], never panicking: negative and NaN → 0, too large → [`Duration::MAX`].
pub fn seconds_to_duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

/// The widest wave (at least 1): `analyze`'s and `simulate`'s default concurrency
/// when the plan sets none.
pub fn default_concurrency(plan: &Plan) -> usize {
    plan.concurrency.map_or_else(
        || {
            plan.waves
                .iter()
                .map(|w| w.agents.len())
                .max()
                .unwrap_or(1)
                .max(1)
        },
        |c| (c as usize).max(1),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_durations_keep_useful_precision() {
        use super::human;
        assert_eq!(human(0.535), "535ms");
        assert_eq!(human(1.5), "1.5s");
        assert_eq!(human(2.0), "2s");
        assert_eq!(human(42.4), "42s");
        assert_eq!(human(5400.0), "1h30m");
        assert_eq!(human(f64::NAN), "0s");
        assert_eq!(
            super::seconds_to_duration(f64::INFINITY),
            super::Duration::MAX
        );
        assert_eq!(super::seconds_to_duration(-1.0), super::Duration::ZERO);
    }
}
