//! `llm-orchestrate simulate PLAN`: a discrete-event simulation of a run of
//! the plan, with durations and failure rates from history (or the plan's
//! estimates), printed as a timeline and drawn as an SVG Gantt chart.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::common::{CliError, load_valid_plan, write_output};
use crate::plan::duration::parse_duration;
use crate::plan::{ExecutionMode, LoadOptions};
use crate::predict::simulate::{
    MonteCarlo, Sampler, SimOptions, SimOutcome, Timeline, monte_carlo, simulate,
};
use crate::predict::{ModelOptions, SimModel, gantt};

/// Arguments of `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Take durations and failure rates from this history file (a bare
    /// `--history`: $LLMO_HISTORY, else .llm-orchestrate/history.sqlite);
    /// without it, each agent takes its estimate and never fails.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub history: Option<Option<PathBuf>>,
    /// Most agents at once (default: the plan's `concurrency`, else its widest wave).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Execution mode (default: the plan's; adaptive schedules like waves).
    #[arg(long)]
    pub mode: Option<ExecutionMode>,
    /// Simulated runs: 1 is the nominal run (median durations, no failures);
    /// more sample durations, failures and retry jitter and report p50/p90.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub runs: u32,
    /// Seed of the sampled runs (the same seed gives the same result).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the SVG Gantt chart of the (representative) timeline here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Estimate for agents without `estimatedDuration`.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub default_estimate: Duration,
    /// Attempts run past `estimatedDuration` × this fail as timed out (as in `run`).
    #[arg(long, default_value_t = 2.0)]
    pub timeout_factor: f64,
    /// Delay before the first retry (as in `run`).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Longest delay between retries (as in `run`).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// Treat unknown fields as errors.
    #[arg(long)]
    pub strict: bool,
}

/// One agent's line of the predicted timeline.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentLine {
    id: String,
    wave: String,
    start: Option<f64>,
    end: Option<f64>,
    attempts: usize,
    outcome: SimOutcome,
    duration: f64,
    basis: Option<String>,
    failure_rate: f64,
    critical: bool,
}

/// The JSON output of `simulate`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    plan: String,
    mode: String,
    concurrency: usize,
    history: Option<String>,
    calibrated_agents: usize,
    runs: usize,
    seed: u64,
    makespan: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success_rate: Option<f64>,
    critical_path: Vec<String>,
    agents: Vec<AgentLine>,
    timeline: Timeline,
}

use crate::predict::human;

/// Runs `simulate`.
pub fn run(args: SimulateArgs) -> Result<u8, CliError> {
    if !(args.timeout_factor.is_finite() && args.timeout_factor > 0.0) {
        return Err(CliError::Usage(
            "--timeout-factor must be a positive number".into(),
        ));
    }
    let plan = load_valid_plan(
        &args.plan,
        LoadOptions {
            strict: args.strict,
            mode: args.mode,
        },
    )?;
    let history = super::history::chosen_path(args.history.as_ref());
    let calibration = match &history {
        Some(path) => Some(super::history::load_calibration(path)?.0),
        None => None,
    };
    let model = SimModel::from_plan(
        &plan,
        ModelOptions {
            calibration: calibration.as_ref(),
            default_estimate: args.default_estimate,
            timeout_factor: args.timeout_factor,
        },
    );
    let concurrency = args.concurrency.map_or_else(
        || crate::predict::default_concurrency(&plan),
        |c| c as usize,
    );
    let mode = args.mode.unwrap_or(plan.execution_mode);
    let options = SimOptions {
        mode,
        concurrency,
        retry_base: args.retry_base.as_secs_f64(),
        retry_max: args.retry_max.as_secs_f64(),
        failure_strategy: plan.coordination_rules.failure_strategy,
    };
    let (timeline, sampled): (Timeline, Option<MonteCarlo>) = if args.runs <= 1 {
        (simulate(&model, options, Sampler::Nominal), None)
    } else {
        let mc = monte_carlo(&model, options, args.runs as usize, args.seed);
        (mc.representative.clone(), Some(mc))
    };
    if let Some(path) = &args.svg {
        let svg = gantt::render(&model, &timeline, &plan.orchestration_id);
        write_output(Some(path), &svg)?;
    }
    let critical: std::collections::HashSet<usize> = timeline.critical.iter().copied().collect();
    let agents: Vec<AgentLine> = model
        .agents
        .iter()
        .zip(&timeline.agents)
        .enumerate()
        .map(|(i, (a, t))| AgentLine {
            id: a.id.clone(),
            wave: model
                .waves
                .get(a.wave)
                .map(|w| w.id.clone())
                .unwrap_or_default(),
            start: t.start(),
            end: t.end(),
            attempts: t.attempts.len(),
            outcome: t.outcome,
            duration: a.duration,
            basis: a.calibration.as_ref().map(|c| c.basis.clone()),
            failure_rate: a.failure_rate,
            critical: critical.contains(&i),
        })
        .collect();
    let output = Output {
        plan: plan.orchestration_id.clone(),
        mode: mode.as_str().to_string(),
        concurrency,
        history: history.as_ref().map(|p| p.display().to_string()),
        calibrated_agents: model.calibrated_count(),
        runs: args.runs as usize,
        seed: args.seed,
        makespan: timeline.makespan,
        p50: sampled.as_ref().map(|m| m.p50),
        p90: sampled.as_ref().map(|m| m.p90),
        success_rate: sampled.as_ref().map(|m| m.success_rate),
        critical_path: timeline
            .critical
            .iter()
            .map(|&i| model.agents[i].id.clone())
            .collect(),
        agents,
        timeline,
    };
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&output).unwrap_or_default();
        s.push('\n');
        s
    } else {
        to_text(&output, args.svg.as_deref())
    };
    write_output(None, &text)?;
    Ok(super::EXIT_OK)
}

fn to_text(o: &Output, svg: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let source = match &o.history {
        Some(path) => format!(
            "history {path} ({} of {} agents calibrated)",
            o.calibrated_agents,
            o.agents.len()
        ),
        None => "the plan's estimates".to_string(),
    };
    let _ = writeln!(
        out,
        "Simulated run of {} ({} mode, concurrency {}), durations from {source}",
        o.plan, o.mode, o.concurrency
    );
    match (o.p50, o.p90) {
        (Some(p50), Some(p90)) => {
            let _ = writeln!(
                out,
                "Predicted makespan over {} runs (seed {}): p50 {}, p90 {}; every agent completed in {:.0}% of runs",
                o.runs,
                o.seed,
                human(p50),
                human(p90),
                o.success_rate.unwrap_or(0.0) * 100.0
            );
            let _ = writeln!(
                out,
                "Timeline of the run closest to p50 ({}):",
                human(o.makespan)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "Predicted makespan: {} (nominal: median durations, no failures)",
                human(o.makespan)
            );
            let _ = writeln!(out, "Timeline:");
        }
    }
    let _ = writeln!(
        out,
        "  {:<20} {:<12} {:>9} {:>9} {:>8}  {:<9} basis",
        "agent", "wave", "start", "end", "attempts", "outcome"
    );
    for a in &o.agents {
        let when = |t: Option<f64>| t.map_or_else(|| "-".to_string(), human);
        let outcome = match a.outcome {
            SimOutcome::Completed => "completed",
            SimOutcome::Failed => "failed",
            SimOutcome::Blocked => "blocked",
            SimOutcome::NotRun => "not run",
        };
        let _ = writeln!(
            out,
            "  {:<20} {:<12} {:>9} {:>9} {:>8}  {:<9} {}{}",
            a.id,
            a.wave,
            when(a.start),
            when(a.end),
            a.attempts,
            outcome,
            a.basis.as_deref().unwrap_or("estimate"),
            if a.critical { "  *critical" } else { "" }
        );
    }
    let _ = writeln!(out, "Critical path: {}", o.critical_path.join(" -> "));
    if let Some(path) = svg {
        let _ = writeln!(out, "Gantt chart written to {}", path.display());
    }
    out
}
