//! The `analyze` report: graph shape, levels, critical path, makespans, idle
//! slots and an optional optimized wave composition.

use std::time::Duration;

use serde::Serialize;

use super::Dag;
use super::schedule::{auto_waves, list_schedule, waves_schedule};
use crate::plan::Plan;
use crate::plan::duration::format_duration;

/// Settings for an analysis.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisOptions {
    /// Concurrency slots.
    pub concurrency: usize,
    /// Estimate for agents without `estimatedDuration`.
    pub default_estimate: Duration,
    /// Largest wave for `--auto-waves`; `None` skips the optimization.
    pub auto_waves_batch: Option<usize>,
}

/// A length of time, in seconds and in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// Seconds.
    pub seconds: f64,
    /// Compact text, e.g. `4h30m`.
    pub human: String,
}

impl Span {
    fn of(seconds: f64) -> Self {
        Self {
            seconds,
            human: format_duration(Duration::from_secs_f64(seconds.max(0.0))),
        }
    }
}

/// One wave's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveReport {
    /// Wave id.
    pub wave_id: String,
    /// Agent count.
    pub agents: usize,
    /// Whether the agents run concurrently.
    pub parallel: bool,
    /// Start, from the run start.
    pub start: Span,
    /// Length.
    pub span: Span,
    /// Concurrency slots never used by the wave.
    pub idle_slots: usize,
    /// Slot time left idle (concurrency × span − work).
    pub idle_slot_time: Span,
}

/// The full analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// The plan's id.
    pub orchestration_id: String,
    /// Agent count.
    pub agents: usize,
    /// Dependency edge count.
    pub edges: usize,
    /// Concurrency used for the estimates.
    pub concurrency: usize,
    /// Agents without an estimate (the default was used).
    pub unestimated_agents: Vec<String>,
    /// Minimal waves allowed by the dependencies.
    pub levels: Vec<Vec<String>>,
    /// Longest chain of dependencies by estimated duration.
    pub critical_path: Vec<String>,
    /// Its length.
    pub critical_path_length: Span,
    /// Total estimated work.
    pub total_work: Span,
    /// Estimated makespan running the plan's waves in order.
    pub waves_makespan: Span,
    /// Per-wave estimates.
    pub waves: Vec<WaveReport>,
    /// Estimated makespan scheduling by dependencies only (list scheduling).
    pub dependency_makespan: Span,
    /// No schedule can be shorter: max(critical path, work / concurrency).
    pub lower_bound: Span,
    /// Optimized waves, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_waves: Option<AutoWaves>,
}

/// An optimized wave composition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoWaves {
    /// Largest wave allowed.
    pub batch_size: usize,
    /// Agent ids per wave.
    pub waves: Vec<Vec<String>>,
    /// Estimated makespan of these waves.
    pub makespan: Span,
}

/// Analyzes a (valid) plan.
pub fn analyze(plan: &Plan, options: AnalysisOptions) -> (Analysis, Dag) {
    let dag = Dag::from_plan(plan, options.default_estimate);
    let slots = options.concurrency.max(1);
    let names = |ids: &[usize]| ids.iter().map(|&i| dag.ids[i].clone()).collect::<Vec<_>>();

    let mut offset = 0;
    let waves: Vec<(Vec<usize>, bool)> = plan
        .waves
        .iter()
        .map(|w| {
            let members = (offset..offset + w.agents.len()).collect();
            offset += w.agents.len();
            (members, w.parallel)
        })
        .collect();
    let timings = waves_schedule(&dag, &waves, slots);
    let waves_makespan = timings.last().map_or(0.0, |t| t.start + t.span);
    let (critical, critical_length) = dag.critical_path();
    let total: f64 = dag.duration.iter().sum();
    let auto = options.auto_waves_batch.map(|batch| {
        let composed = auto_waves(&dag, batch);
        let as_waves: Vec<(Vec<usize>, bool)> =
            composed.iter().map(|w| (w.clone(), true)).collect();
        let t = waves_schedule(&dag, &as_waves, slots);
        AutoWaves {
            batch_size: batch,
            waves: composed.iter().map(|w| names(w)).collect(),
            makespan: Span::of(t.last().map_or(0.0, |t| t.start + t.span)),
        }
    });
    let analysis = Analysis {
        orchestration_id: plan.orchestration_id.clone(),
        agents: dag.len(),
        edges: dag.edge_count(),
        concurrency: slots,
        unestimated_agents: (0..dag.len())
            .filter(|&i| !dag.estimated[i])
            .map(|i| dag.ids[i].clone())
            .collect(),
        levels: dag.levels().iter().map(|l| names(l)).collect(),
        critical_path: names(&critical),
        critical_path_length: Span::of(critical_length),
        total_work: Span::of(total),
        waves_makespan: Span::of(waves_makespan),
        waves: plan
            .waves
            .iter()
            .zip(&timings)
            .map(|(w, t)| WaveReport {
                wave_id: w.wave_id.clone(),
                agents: w.agents.len(),
                parallel: w.parallel,
                start: Span::of(t.start),
                span: Span::of(t.span),
                idle_slots: t.idle_slots,
                idle_slot_time: Span::of(t.idle_slot_seconds),
            })
            .collect(),
        dependency_makespan: Span::of(list_schedule(&dag, slots).makespan),
        lower_bound: Span::of(critical_length.max(total / slots as f64)),
        auto_waves: auto,
    };
    (analysis, dag)
}

impl Analysis {
    /// The human-readable report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Plan {}: {} agents, {} dependencies, {} waves, concurrency {}",
            self.orchestration_id,
            self.agents,
            self.edges,
            self.waves.len(),
            self.concurrency
        );
        if !self.unestimated_agents.is_empty() {
            let _ = writeln!(
                out,
                "Note: {} agent(s) have no estimatedDuration and use the default estimate: {}",
                self.unestimated_agents.len(),
                preview(&self.unestimated_agents)
            );
        }
        let _ = writeln!(
            out,
            "\nDependency levels (the minimal waves the dependencies allow):"
        );
        for (i, level) in self.levels.iter().enumerate() {
            let _ = writeln!(out, "  level {}: {}", i + 1, preview(level));
        }
        let _ = writeln!(
            out,
            "\nCritical path ({}): {}",
            self.critical_path_length.human,
            preview_chain(&self.critical_path)
        );
        let _ = writeln!(out, "Total work: {}", self.total_work.human);
        let _ = writeln!(out, "\nPlan waves at concurrency {}:", self.concurrency);
        let _ = writeln!(
            out,
            "  {:<20} {:>6} {:>9} {:>9} {:>9} {:>10}",
            "wave", "agents", "start", "length", "idle", "idle time"
        );
        for w in &self.waves {
            let _ = writeln!(
                out,
                "  {:<20} {:>6} {:>9} {:>9} {:>9} {:>10}{}",
                w.wave_id,
                w.agents,
                w.start.human,
                w.span.human,
                w.idle_slots,
                w.idle_slot_time.human,
                if w.parallel { "" } else { "  (sequential)" }
            );
        }
        let _ = writeln!(out, "\nEstimated makespan:");
        let _ = writeln!(
            out,
            "  plan waves:              {}",
            self.waves_makespan.human
        );
        let _ = writeln!(
            out,
            "  dependencies only:       {}",
            self.dependency_makespan.human
        );
        let _ = writeln!(out, "  lower bound:             {}", self.lower_bound.human);
        if let Some(auto) = &self.auto_waves {
            let _ = writeln!(
                out,
                "\nOptimized waves (at most {} agents each), makespan {}:",
                auto.batch_size, auto.makespan.human
            );
            for (i, w) in auto.waves.iter().enumerate() {
                let _ = writeln!(out, "  wave-{}: {}", i + 1, preview(w));
            }
        }
        out
    }
}

fn preview(ids: &[String]) -> String {
    const SHOWN: usize = 12;
    if ids.len() <= SHOWN {
        ids.join(", ")
    } else {
        format!(
            "{}, … ({} more)",
            ids[..SHOWN].join(", "),
            ids.len() - SHOWN
        )
    }
}

fn preview_chain(ids: &[String]) -> String {
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
