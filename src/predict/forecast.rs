//! `analyze --history`: the plan under calibrated durations — predicted
//! makespan, critical path and bottlenecks, a suggested concurrency and wave
//! composition.

use serde::Serialize;
use std::fmt::Write as _;

use super::SimModel;
use super::simulate::{Sampler, SimOptions, simulate};
use crate::graph::analysis::Span;
use crate::graph::schedule::{auto_waves, list_schedule, waves_schedule};

/// A length of time as [`Span`] (seconds and words).
pub fn span(seconds: f64) -> Span {
    Span {
        seconds,
        human: super::human(seconds),
    }
}

/// One agent's calibrated duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentForecast {
    /// Agent id.
    pub id: String,
    /// The plan's estimate (or the default estimate).
    pub estimate: Span,
    /// The median duration the history predicts (the estimate without a basis).
    pub calibrated: Span,
    /// The 90th-percentile duration.
    pub p90: Span,
    /// Probability that an attempt fails.
    pub failure_rate: f64,
    /// What the calibration is based on; `None`: no history for this agent.
    pub basis: Option<String>,
}

/// An agent that sets the pace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bottleneck {
    /// Agent id.
    pub id: String,
    /// Its calibrated duration.
    pub duration: Span,
    /// Its share of the critical path, in [0, 1].
    pub share: f64,
    /// Why it matters, in words.
    pub reason: String,
}

/// A suggested wave composition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedWaves {
    /// Largest wave.
    pub batch_size: usize,
    /// Agent ids per wave.
    pub waves: Vec<Vec<String>>,
    /// Predicted makespan of these waves at the suggested concurrency.
    pub makespan: Span,
}

/// The prediction of `analyze --history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// The history file.
    pub history: String,
    /// Rows it holds.
    pub history_rows: usize,
    /// Agents the history calibrated.
    pub calibrated_agents: usize,
    /// Every agent, in plan order.
    pub agents: Vec<AgentForecast>,
    /// Concurrency of the prediction.
    pub concurrency: usize,
    /// The mode simulated (`waves` or `continuous`).
    pub mode: String,
    /// Predicted makespan: a nominal simulation (median durations, no failures).
    pub predicted_makespan: Span,
    /// Makespan of dependency-only list scheduling under calibrated durations.
    pub dependency_makespan: Span,
    /// The longest dependency chain under calibrated durations.
    pub critical_path: Vec<String>,
    /// Its length.
    pub critical_path_length: Span,
    /// The critical path's longest agents.
    pub bottlenecks: Vec<Bottleneck>,
    /// The smallest concurrency within 5% of the unlimited-concurrency makespan.
    pub suggested_concurrency: usize,
    /// The predicted makespan at that concurrency.
    pub suggested_makespan: Span,
    /// The predicted makespan with one slot per agent.
    pub unlimited_makespan: Span,
    /// Waves composed under calibrated durations (at most `batch_size` agents each).
    pub suggested_waves: SuggestedWaves,
}

/// What to forecast.
#[derive(Debug, Clone, Copy)]
pub struct ForecastOptions<'a> {
    /// Concurrency slots.
    pub concurrency: usize,
    /// How the simulated run schedules (mode, retries, failure strategy).
    pub sim: SimOptions,
    /// Largest suggested wave (default: the suggested concurrency).
    pub batch_size: Option<usize>,
    /// The history file's name, for the report.
    pub history: &'a str,
    /// Rows in the history.
    pub history_rows: usize,
}

/// Forecasts `model` (built with a calibration).
pub fn forecast(model: &SimModel, options: ForecastOptions<'_>) -> Forecast {
    let dag = model.dag();
    let makespan_at = |concurrency: usize| {
        let sim = SimOptions {
            concurrency,
            ..options.sim
        };
        simulate(model, sim, Sampler::Nominal).makespan
    };
    let concurrency = options.concurrency.max(1);
    let predicted = makespan_at(concurrency);
    let unlimited_slots = model.agents.len().max(1);
    let unlimited = makespan_at(unlimited_slots);
    // Bisection: makespans shrink (nearly always) as slots grow.
    let (mut lo, mut hi) = (1usize, unlimited_slots);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if makespan_at(mid) <= unlimited * 1.05 + 1e-9 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let suggested = lo;
    let (critical, critical_length) = dag.critical_path();
    let mut bottlenecks: Vec<Bottleneck> = critical
        .iter()
        .map(|&i| {
            let agent = &model.agents[i];
            let share = if critical_length > 0.0 {
                agent.duration / critical_length
            } else {
                0.0
            };
            let reason = match &agent.calibration {
                Some(c) => format!(
                    "{:.0}% of the critical path; estimate {} × {:.2} ({})",
                    share * 100.0,
                    super::human(agent.estimate),
                    c.median_ratio,
                    c.basis
                ),
                None => format!(
                    "{:.0}% of the critical path; no history, estimate as planned",
                    share * 100.0
                ),
            };
            Bottleneck {
                id: agent.id.clone(),
                duration: span(agent.duration),
                share,
                reason,
            }
        })
        .collect();
    bottlenecks.sort_by(|a, b| b.duration.seconds.total_cmp(&a.duration.seconds));
    bottlenecks.truncate(5);
    let batch = options.batch_size.unwrap_or(suggested).max(1);
    let composed = auto_waves(&dag, batch);
    let as_waves: Vec<(Vec<usize>, bool)> = composed.iter().map(|w| (w.clone(), true)).collect();
    let timings = waves_schedule(&dag, &as_waves, suggested);
    let names = |ids: &[usize]| ids.iter().map(|&i| dag.ids[i].clone()).collect::<Vec<_>>();
    Forecast {
        history: options.history.to_string(),
        history_rows: options.history_rows,
        calibrated_agents: model.calibrated_count(),
        agents: model
            .agents
            .iter()
            .map(|a| AgentForecast {
                id: a.id.clone(),
                estimate: span(a.estimate),
                calibrated: span(a.duration),
                p90: span(
                    a.calibration
                        .as_ref()
                        .map_or(a.duration, |c| a.estimate * c.p90_ratio),
                ),
                failure_rate: a.failure_rate,
                basis: a.calibration.as_ref().map(|c| c.basis.clone()),
            })
            .collect(),
        concurrency,
        mode: options.sim.mode.as_str().to_string(),
        predicted_makespan: span(predicted),
        dependency_makespan: span(list_schedule(&dag, concurrency).makespan),
        critical_path: names(&critical),
        critical_path_length: span(critical_length),
        bottlenecks,
        suggested_concurrency: suggested,
        suggested_makespan: span(makespan_at(suggested)),
        unlimited_makespan: span(unlimited),
        suggested_waves: SuggestedWaves {
            batch_size: batch,
            waves: composed.iter().map(|w| names(w)).collect(),
            makespan: span(timings.last().map_or(0.0, |t| t.start + t.span)),
        },
    }
}

impl Forecast {
    /// The readable section appended to `analyze`'s report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nPrediction from history ({}: {} agent runs; {} of {} agents calibrated):",
            self.history,
            self.history_rows,
            self.calibrated_agents,
            self.agents.len()
        );
        let _ = writeln!(
            out,
            "  {:<20} {:>9} {:>10} {:>9} {:>6}  basis",
            "agent", "estimate", "predicted", "p90", "fail"
        );
        const SHOWN: usize = 40;
        for a in self.agents.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "  {:<20} {:>9} {:>10} {:>9} {:>5.0}%  {}",
                a.id,
                a.estimate.human,
                a.calibrated.human,
                a.p90.human,
                a.failure_rate * 100.0,
                a.basis.as_deref().unwrap_or("no history: the estimate")
            );
        }
        if self.agents.len() > SHOWN {
            let _ = writeln!(out, "  … ({} more)", self.agents.len() - SHOWN);
        }
        let _ = writeln!(
            out,
            "\nPredicted makespan ({} mode, concurrency {}): {}",
            self.mode, self.concurrency, self.predicted_makespan.human
        );
        let _ = writeln!(
            out,
            "  dependencies only:       {}",
            self.dependency_makespan.human
        );
        let _ = writeln!(
            out,
            "Critical path under calibrated durations ({}): {}",
            self.critical_path_length.human,
            chain(&self.critical_path)
        );
        if !self.bottlenecks.is_empty() {
            let _ = writeln!(out, "Bottlenecks:");
            for b in &self.bottlenecks {
                let _ = writeln!(out, "  {:<20} {:>9}  {}", b.id, b.duration.human, b.reason);
            }
        }
        let _ = writeln!(
            out,
            "Suggested concurrency: {} (predicted {}; unlimited {})",
            self.suggested_concurrency,
            self.suggested_makespan.human,
            self.unlimited_makespan.human
        );
        let _ = writeln!(
            out,
            "Suggested waves (at most {} agents each), predicted {}:",
            self.suggested_waves.batch_size, self.suggested_waves.makespan.human
        );
        for (i, w) in self.suggested_waves.waves.iter().enumerate().take(SHOWN) {
            let _ = writeln!(out, "  wave-{}: {}", i + 1, list(w));
        }
        out
    }
}

fn list(ids: &[String]) -> String {
    if ids.len() <= 12 {
        ids.join(", ")
    } else {
        format!("{}, … ({} more)", ids[..12].join(", "), ids.len() - 12)
    }
}

fn chain(ids: &[String]) -> String {
    if ids.len() <= 16 {
        ids.join(" -> ")
    } else {
        format!(
            "{} -> … ({} more) -> {}",
            ids[..8].join(" -> "),
            ids.len() - 16,
            ids[ids.len() - 8..].join(" -> ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::test_plan;
    use crate::history::{Calibration, HistoryRow};
    use crate::plan::{ExecutionMode, FailureStrategy};
    use crate::predict::ModelOptions;
    use std::time::Duration;

    #[test]
    fn calibrated_durations_move_the_critical_path_and_suggest_concurrency() {
        // A and B are estimated alike, but history says B's platform takes 3×.
        let plan = test_plan(
            r#"{"orchestrationId":"f","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"10m","platform":"claude"},
            {"agentId":"B","workDescription":"b","estimatedDuration":"10m","platform":"gpt"},
            {"agentId":"C","workDescription":"c","estimatedDuration":"5m","platform":"claude"},
            {"agentId":"D","workDescription":"d","estimatedDuration":"5m","platform":"claude"}]},
            {"waveId":"v","agents":[
            {"agentId":"E","workDescription":"e","estimatedDuration":"10m","platform":"claude","dependencies":["B"]}]}]}"#,
        );
        let row = |platform: &str, ratio: f64| HistoryRow {
            run_id: "r".into(),
            plan: "other".into(),
            plan_path: None,
            agent_id: "X".into(),
            wave: None,
            platform: platform.into(),
            model: None,
            scope: Vec::new(),
            estimate_secs: Some(100.0),
            actual_secs: None,
            attempt_secs: Some(100.0 * ratio),
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
        let calibration = Calibration::from_rows(&[row("claude", 1.0), row("gpt", 3.0)]);
        let model = SimModel::from_plan(
            &plan,
            ModelOptions {
                calibration: Some(&calibration),
                default_estimate: Duration::from_secs(1800),
                timeout_factor: 10.0,
            },
        );
        let f = forecast(
            &model,
            ForecastOptions {
                concurrency: 4,
                sim: SimOptions {
                    mode: ExecutionMode::Waves,
                    concurrency: 4,
                    retry_base: 2.0,
                    retry_max: 120.0,
                    failure_strategy: FailureStrategy::ContinueOthers,
                },
                batch_size: None,
                history: "h.sqlite",
                history_rows: 2,
            },
        );
        assert_eq!(f.agents[1].calibrated.seconds, 1800.0);
        assert_eq!(f.agents[1].basis.as_deref(), Some("gpt (1 runs)"));
        assert_eq!(f.critical_path, ["B", "E"]);
        assert_eq!(f.critical_path_length.seconds, 2400.0);
        assert_eq!(f.bottlenecks[0].id, "B");
        // Wave w is 30 m long (B) with 4 slots; 2 slots also fit A, C, D in B's 30 m.
        assert_eq!(f.predicted_makespan.seconds, 2400.0);
        assert_eq!(f.unlimited_makespan.seconds, 2400.0);
        assert_eq!(f.suggested_concurrency, 2);
        assert_eq!(f.suggested_waves.waves[0][0], "A");
        assert!(f.suggested_waves.waves.iter().flatten().count() == 5);
        let text = f.to_text();
        assert!(text.contains("Suggested concurrency: 2"), "{text}");
    }
}
