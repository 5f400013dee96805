//! `llm-orchestrate analyze PLAN`: levels, critical path, makespans, idle slots,
//! optimized waves, and graph drawings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::common::{CliError, load_valid_plan, write_output};
use crate::graph::analysis::{AnalysisOptions, analyze};
use crate::graph::draw;
use crate::plan::duration::parse_duration;
use crate::plan::{ExecutionMode, LoadOptions};

/// Output formats of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// The readable report (default).
    Text,
    /// The report as JSON (same as `--json`).
    Json,
    /// A Mermaid flowchart of the dependency graph.
    Mermaid,
    /// A Graphviz DOT digraph.
    Dot,
}

/// Arguments of `analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Concurrency slots for the estimates (default: the plan's `concurrency`, else its widest wave).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also compute an optimized wave composition.
    #[arg(long)]
    pub auto_waves: bool,
    /// Largest wave for `--auto-waves` (default: the concurrency).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
    /// Estimate for agents without `estimatedDuration`.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub default_estimate: Duration,
    /// Treat unknown fields as errors.
    #[arg(long)]
    pub strict: bool,
    /// Validate for this execution mode instead of the plan's.
    #[arg(long)]
    pub mode: Option<ExecutionMode>,
    /// Also predict from run history: calibrated durations, predicted
    /// makespan, critical path and bottlenecks under them, a suggested
    /// concurrency and wave composition. A bare `--history` reads
    /// $LLMO_HISTORY, else .llm-orchestrate/history.sqlite.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub history: Option<Option<std::path::PathBuf>>,
}

/// `analyze --json` with `--history`: the analysis and the prediction.
#[derive(serde::Serialize)]
struct WithForecast<'a> {
    #[serde(flatten)]
    analysis: &'a crate::graph::analysis::Analysis,
    prediction: &'a crate::predict::forecast::Forecast,
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<u8, CliError> {
    if args.concurrency == Some(0) || args.batch_size == Some(0) {
        return Err(CliError::Usage(
            "--concurrency and --batch-size must be at least 1".into(),
        ));
    }
    let plan = load_valid_plan(
        &args.plan,
        LoadOptions {
            strict: args.strict,
            mode: args.mode,
        },
    )?;
    let widest = plan
        .waves
        .iter()
        .map(|w| w.agents.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let concurrency = args
        .concurrency
        .or(plan.concurrency.map(|c| c as usize))
        .unwrap_or(widest);
    let batch = (args.auto_waves || args.batch_size.is_some())
        .then(|| args.batch_size.unwrap_or(concurrency));
    let (analysis, dag) = analyze(
        &plan,
        AnalysisOptions {
            concurrency,
            default_estimate: args.default_estimate,
            auto_waves_batch: batch,
        },
    );
    let format = if args.json {
        GraphFormat::Json
    } else {
        args.format
    };
    let forecast = match super::history::chosen_path(args.history.as_ref()) {
        Some(path) => Some(forecast(&plan, &args, &path, concurrency, args.batch_size)?),
        None => None,
    };
    let text = match format {
        GraphFormat::Text => {
            let mut text = analysis.to_text();
            if let Some(f) = &forecast {
                text.push_str(&f.to_text());
            }
            text
        }
        GraphFormat::Json => {
            let mut s = match &forecast {
                Some(prediction) => serde_json::to_string_pretty(&WithForecast {
                    analysis: &analysis,
                    prediction,
                }),
                None => serde_json::to_string_pretty(&analysis),
            }
            .unwrap_or_default();
            s.push('\n');
            s
        }
        GraphFormat::Mermaid | GraphFormat::Dot => {
            let (critical, _) = dag.critical_path();
            if format == GraphFormat::Mermaid {
                draw::mermaid(&plan, &dag, &critical)
            } else {
                draw::dot(&plan, &dag, &critical)
            }
        }
    };
    write_output(None, &text)?;
    Ok(super::EXIT_OK)
}

/// The `--history` section: the plan under calibrated durations.
fn forecast(
    plan: &crate::plan::Plan,
    args: &AnalyzeArgs,
    path: &std::path::Path,
    concurrency: usize,
    batch: Option<usize>,
) -> Result<crate::predict::forecast::Forecast, CliError> {
    let (calibration, rows) = super::history::load_calibration(path)?;
    let model = crate::predict::SimModel::from_plan(
        plan,
        crate::predict::ModelOptions {
            calibration: Some(&calibration),
            default_estimate: args.default_estimate,
            timeout_factor: 2.0,
        },
    );
    Ok(crate::predict::forecast::forecast(
        &model,
        crate::predict::forecast::ForecastOptions {
            concurrency,
            sim: crate::predict::simulate::SimOptions {
                mode: args.mode.unwrap_or(plan.execution_mode),
                concurrency,
                retry_base: 2.0,
                retry_max: 120.0,
                failure_strategy: plan.coordination_rules.failure_strategy,
            },
            batch_size: batch,
            history: &path.display().to_string(),
            history_rows: rows,
        },
    ))
}
