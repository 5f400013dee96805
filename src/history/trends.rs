//! Quality and duration trends across runs (`llm-orchestrate history`).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::calibrate::{Calibration, percentile};
use super::{HistoryRow, RunRow};

/// One run, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// The plan's `orchestrationId`.
    pub plan: String,
    /// When it ended (ISO-8601 UTC).
    pub date: String,
    /// How it ended.
    pub outcome: String,
    /// Agents in the plan.
    pub agents: usize,
    /// Completed agents / agents.
    pub success_rate: f64,
    /// Passed gates / gates that passed or failed (`None` without gates).
    pub gate_pass_rate: Option<f64>,
    /// Median of the agents' actual / estimated duration (`None` without estimates).
    pub agent_ratio: Option<f64>,
    /// Wall time, seconds.
    pub wall_secs: Option<f64>,
    /// The makespan predicted before the run, seconds.
    pub predicted_secs: Option<f64>,
    /// What the prediction was based on.
    pub prediction_basis: String,
    /// `wall_secs / predicted_secs`.
    pub actual_vs_predicted: Option<f64>,
    /// USD spent.
    pub cost_usd: f64,
}

/// A metric over the runs, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    /// What is measured.
    pub metric: String,
    /// Its values (runs without a value are left out).
    pub values: Vec<f64>,
    /// The values as a one-line chart.
    pub sparkline: String,
    /// Least-squares change per run.
    pub slope_per_run: f64,
    /// `rising`, `falling` or `steady` (a change under 1% of the mean per run is steady).
    pub direction: String,
}

/// Calibration of one platform or platform/model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSummary {
    /// `claude` or `claude/sonnet-4`.
    pub key: String,
    /// Ratio samples.
    pub samples: usize,
    /// Median actual / estimated duration.
    pub median_ratio: f64,
    /// Its 10th percentile.
    pub p10_ratio: f64,
    /// Its 90th percentile.
    pub p90_ratio: f64,
    /// Failed attempts / attempts.
    pub failure_rate: f64,
}

/// What `llm-orchestrate history` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport {
    /// The history file.
    pub history: String,
    /// Runs shown, oldest first.
    pub runs: Vec<RunSummary>,
    /// Trends over those runs.
    pub trends: Vec<Trend>,
    /// Calibration per platform and platform/model over the rows shown.
    pub platforms: Vec<PlatformSummary>,
}

/// Summarises `runs` (oldest first; the last `last` of them when given) and their agent `rows`.
pub fn report(
    history: &str,
    runs: &[RunRow],
    rows: &[HistoryRow],
    last: Option<usize>,
) -> HistoryReport {
    let skip = last.map_or(0, |n| runs.len().saturating_sub(n));
    let runs = &runs[skip..];
    let mut by_run: HashMap<&str, Vec<&HistoryRow>> = HashMap::new();
    for row in rows {
        by_run.entry(row.run_id.as_str()).or_default().push(row);
    }
    let summaries: Vec<RunSummary> = runs
        .iter()
        .map(|run| {
            let agents = by_run.get(run.run_id.as_str()).cloned().unwrap_or_default();
            let completed = agents.iter().filter(|r| r.completed()).count();
            let passed: u32 = agents.iter().map(|r| r.gates_passed).sum();
            let failed: u32 = agents.iter().map(|r| r.gates_failed).sum();
            let mut ratios: Vec<f64> = agents.iter().filter_map(|r| r.ratio()).collect();
            ratios.sort_by(f64::total_cmp);
            RunSummary {
                run_id: run.run_id.clone(),
                plan: run.plan.clone(),
                date: crate::report::status::format_timestamp(run.finished_at_ms),
                outcome: run.outcome.clone(),
                agents: agents.len(),
                success_rate: if agents.is_empty() {
                    0.0
                } else {
                    completed as f64 / agents.len() as f64
                },
                gate_pass_rate: (passed + failed > 0)
                    .then(|| f64::from(passed) / f64::from(passed + failed)),
                agent_ratio: (!ratios.is_empty()).then(|| percentile(&ratios, 0.5)),
                wall_secs: run.wall_secs,
                predicted_secs: run.predicted_secs,
                prediction_basis: run.prediction_basis.clone(),
                actual_vs_predicted: match (run.wall_secs, run.predicted_secs) {
                    (Some(w), Some(p)) if p > 0.0 => Some(w / p),
                    _ => None,
                },
                cost_usd: run.cost_usd,
            }
        })
        .collect();
    let shown: std::collections::HashSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    let shown_rows: Vec<HistoryRow> = rows
        .iter()
        .filter(|r| shown.contains(r.run_id.as_str()))
        .cloned()
        .collect();
    let platforms = Calibration::from_rows(&shown_rows)
        .platform_groups()
        .into_iter()
        .map(|(key, c)| PlatformSummary {
            key,
            samples: c.samples,
            median_ratio: c.median_ratio,
            p10_ratio: c.p10_ratio,
            p90_ratio: c.p90_ratio,
            failure_rate: c.failure_rate,
        })
        .collect();
    let metric = |name: &str, f: &dyn Fn(&RunSummary) -> Option<f64>| {
        trend(name, summaries.iter().filter_map(f).collect())
    };
    let trends = vec![
        metric("success rate", &|s| Some(s.success_rate)),
        metric("gate pass rate", &|s| s.gate_pass_rate),
        metric("agent duration / estimate (median)", &|s| s.agent_ratio),
        metric("run time / predicted", &|s| s.actual_vs_predicted),
        metric("wall time (s)", &|s| s.wall_secs),
        metric("cost (USD)", &|s| Some(s.cost_usd)),
    ];
    HistoryReport {
        history: history.to_string(),
        runs: summaries,
        trends,
        platforms,
    }
}

/// A trend of `values` (oldest first).
pub fn trend(metric: &str, values: Vec<f64>) -> Trend {
    let n = values.len() as f64;
    let slope = if values.len() < 2 {
        0.0
    } else {
        let mean_x = (n - 1.0) / 2.0;
        let mean_y = values.iter().sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for (i, y) in values.iter().enumerate() {
            let dx = i as f64 - mean_x;
            num += dx * (y - mean_y);
            den += dx * dx;
        }
        if den > 0.0 { num / den } else { 0.0 }
    };
    let mean = if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / n
    };
    let direction = if slope.abs() <= 0.01 * mean.abs().max(1e-9) || values.len() < 2 {
        "steady"
    } else if slope > 0.0 {
        "rising"
    } else {
        "falling"
    };
    Trend {
        metric: metric.to_string(),
        sparkline: sparkline(&values),
        values,
        slope_per_run: slope,
        direction: direction.to_string(),
    }
}

/// `▁▃▅█`: each value as one of eight bar heights between the minimum and the maximum.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if max - min <= f64::EPSILON {
                BARS[3]
            } else {
                let level = ((v - min) / (max - min) * 7.0).round() as usize;
                BARS[level.min(7)]
            }
        })
        .collect()
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), crate::predict::human)
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{:.0}%", v * 100.0))
}

impl HistoryReport {
    /// The readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.runs.is_empty() {
            let _ = writeln!(out, "No runs in {} yet.", self.history);
            return out;
        }
        let _ = writeln!(out, "History {}: {} run(s)", self.history, self.runs.len());
        let _ = writeln!(
            out,
            "\n  {:<16} {:<34} {:<11} {:>6} {:>8} {:>6} {:>9} {:>9} {:>7} {:>9}",
            "date",
            "run",
            "outcome",
            "agents",
            "success",
            "gates",
            "duration",
            "predicted",
            "ratio",
            "cost"
        );
        for r in &self.runs {
            let _ = writeln!(
                out,
                "  {:<16} {:<34} {:<11} {:>6} {:>8} {:>6} {:>9} {:>9} {:>7} {:>9}",
                r.date.get(..16).unwrap_or(&r.date).replace('T', " "),
                r.run_id,
                r.outcome,
                r.agents,
                percent(Some(r.success_rate)),
                percent(r.gate_pass_rate),
                secs(r.wall_secs),
                secs(r.predicted_secs),
                r.actual_vs_predicted
                    .map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
                format!("${:.2}", r.cost_usd)
            );
        }
        let _ = writeln!(out, "\nTrends (oldest → newest):");
        for t in self.trends.iter().filter(|t| !t.values.is_empty()) {
            let _ = writeln!(
                out,
                "  {:<36} {}  {} ({:+.3}/run), last {}",
                t.metric,
                t.sparkline,
                t.direction,
                t.slope_per_run,
                t.values
                    .last()
                    .map_or_else(String::new, |v| format!("{v:.2}"))
            );
        }
        if !self.platforms.is_empty() {
            let _ = writeln!(out, "\nDuration / estimate by platform and model:");
            let _ = writeln!(
                out,
                "  {:<32} {:>7} {:>7} {:>13} {:>6}",
                "platform/model", "samples", "median", "p10-p90", "fail"
            );
            for p in &self.platforms {
                let _ = writeln!(
                    out,
                    "  {:<32} {:>7} {:>7.2} {:>13} {:>5.0}%",
                    p.key,
                    p.samples,
                    p.median_ratio,
                    format!("{:.2}-{:.2}", p.p10_ratio, p.p90_ratio),
                    p.failure_rate * 100.0
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_have_a_direction_and_a_sparkline() {
        let t = trend("x", vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!((t.slope_per_run, t.direction.as_str()), (1.0, "rising"));
        assert_eq!(t.sparkline, "▁▃▆█");
        assert_eq!(trend("x", vec![2.0, 2.0]).direction, "steady");
        assert_eq!(trend("x", vec![3.0, 1.0]).direction, "falling");
        assert_eq!(trend("x", Vec::new()).sparkline, "");
    }

    #[test]
    fn runs_are_summarised_from_their_rows() {
        let mut a = crate::history::store::tests::row("r1", "A");
        a.gates_passed = 3;
        a.gates_failed = 1;
        let mut b = crate::history::store::tests::row("r1", "B");
        b.outcome = "failed".into();
        let run = RunRow {
            run_id: "r1".into(),
            plan: "p".into(),
            plan_path: None,
            mode: "waves".into(),
            concurrency: 2,
            agents: 2,
            outcome: "failed".into(),
            started_at_ms: Some(0),
            finished_at_ms: 86_400_000,
            wall_secs: Some(120.0),
            predicted_secs: Some(100.0),
            prediction_basis: "estimates".into(),
            cost_usd: 0.5,
        };
        let mut older = run.clone();
        older.run_id = "r0".into();
        let report = report("h.sqlite", &[older, run], &[a, b], Some(1));
        assert_eq!(report.runs.len(), 1);
        let r = &report.runs[0];
        assert_eq!((r.agents, r.success_rate), (2, 0.5));
        assert_eq!(r.gate_pass_rate, Some(0.8), "4 passed (3 + 1), 1 failed");
        assert_eq!(r.actual_vs_predicted, Some(1.2));
        assert_eq!(r.agent_ratio, Some(1.25));
        assert_eq!(r.date, "1970-01-02T00:00:00.000Z");
        assert_eq!(report.platforms[0].key, "shell");
        let text = report.to_text();
        assert!(text.contains("success rate"), "{text}");
        assert!(text.contains("1970-01-02 00:00"), "{text}");
    }
}
