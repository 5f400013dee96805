//! `llm-orchestrate history`, and recording a run into the history when it ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::common::{CliError, write_output};
use crate::history::store::RowFilter;
use crate::history::{Calibration, HistoryError, HistoryStore, record, trends};
use crate::journal::now_ms;
use crate::plan::{ExecutionMode, FailureStrategy, Plan};
use crate::predict::simulate::{Sampler, SimOptions, simulate};
use crate::predict::{ModelOptions, SimModel};

/// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history file (default: $LLMO_HISTORY, else .llm-orchestrate/history.sqlite).
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// Only runs of this plan (its `orchestrationId`).
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// Only the last N runs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub last: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))
}

/// A history error as a command error (exit 2: the file named is unusable).
pub(super) fn history_error(err: HistoryError) -> CliError {
    CliError::Usage(err.to_string())
}

/// The history file a prediction command reads: `Some(None)` (a bare
/// `--history`) means the default file.
pub(super) fn chosen_path(flag: Option<&Option<PathBuf>>) -> Option<PathBuf> {
    let explicit = flag?;
    Some(
        crate::history::resolve_path(explicit.as_deref())
            .unwrap_or_else(|| PathBuf::from(crate::history::DEFAULT_HISTORY)),
    )
}

/// Reads the calibration of the history file at `path` (exit 2 when it cannot be read).
pub(super) fn load_calibration(path: &Path) -> Result<(Calibration, usize), CliError> {
    runtime()?.block_on(async {
        let calibration = Calibration::load(path).await.map_err(history_error)?;
        let rows = calibration.rows();
        Ok((calibration, rows))
    })
}

/// Runs `history`.
pub fn run(args: HistoryArgs) -> Result<u8, CliError> {
    let path = crate::history::resolve_path(args.history.as_deref())
        .ok_or_else(|| CliError::Usage("the history is switched off (LLMO_HISTORY=off)".into()))?;
    let (runs, rows) = runtime()?.block_on(async {
        let Some(store) = HistoryStore::open_existing(&path)
            .await
            .map_err(history_error)?
        else {
            return Ok::<_, CliError>((Vec::new(), Vec::new()));
        };
        let runs = store.runs(args.plan.as_deref()).await;
        let rows = store
            .rows(&RowFilter {
                plan: args.plan.clone(),
                exclude_run: None,
            })
            .await;
        store.close().await;
        Ok((runs.map_err(history_error)?, rows.map_err(history_error)?))
    })?;
    let report = trends::report(
        &path.display().to_string(),
        &runs,
        &rows,
        args.last.map(|n| n as usize),
    );
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
        s.push('\n');
        s
    } else {
        report.to_text()
    };
    write_output(None, &text)?;
    Ok(super::EXIT_OK)
}

/// How a run that just ended was carried out.
#[derive(Debug, Clone)]
pub(super) struct RunEnd {
    /// The plan file, when known.
    pub plan_path: Option<PathBuf>,
    /// The history file; `None` records nothing.
    pub history: Option<PathBuf>,
    /// Execution mode.
    pub mode: ExecutionMode,
    /// Concurrency.
    pub concurrency: usize,
    /// `--timeout-factor`.
    pub timeout_factor: f64,
    /// `--retry-base`.
    pub retry_base: Duration,
    /// `--retry-max`.
    pub retry_max: Duration,
    /// The failure strategy.
    pub failure_strategy: FailureStrategy,
    /// The makespan the history predicted for the run when it started, and
    /// what that rested on (see [`HistoryAtStart`]).
    pub predicted: (Option<f64>, String),
}

/// What a run reads from the history when it starts, once: the calibration
/// for its overrun anomalies and live ETA, and the makespan it predicts
/// (recorded with the run). Nothing is read when no agent of the plan has an
/// `estimatedDuration` (calibration scales estimates: there is nothing to scale).
#[derive(Debug, Default)]
pub(super) struct HistoryAtStart {
    /// The calibration, scoped to the plan (`None`: nothing read).
    pub calibration: Option<Calibration>,
}

impl HistoryAtStart {
    /// Reads the history at `history` for `plan`; an unreadable history reads as empty.
    pub async fn load(plan: &Plan, history: Option<&Path>) -> Self {
        let estimated = plan
            .agents()
            .any(|(_, _, a)| a.estimated_duration.is_some());
        let calibration = match history {
            Some(path) if estimated => Calibration::load(path)
                .await
                .ok()
                .map(|c| c.with_plan(&plan.orchestration_id)),
            _ => None,
        };
        Self { calibration }
    }

    /// The makespan predicted for `plan` before it runs.
    pub fn predict(&self, plan: &Plan, end: &RunEnd) -> (Option<f64>, String) {
        let empty = Calibration::default();
        predict_makespan(plan, self.calibration.as_ref().unwrap_or(&empty), end)
    }
}

/// The engine's end-of-run work that records the run into the history
/// (`None` when the history is off). The rows are made from the engine's
/// final state and the plan it followed last (an adaptive run's adapted
/// plan); they are written while the engine writes its final reports. A
/// failure is a warning on stderr: it never changes how the run ended.
///
/// The history file is opened (created and migrated if needed) in the
/// background as soon as the recorder exists, while the run starts up, so
/// the end of the run only writes its rows.
pub(super) fn recorder(end: RunEnd) -> Option<crate::engine::AtEnd> {
    let path = end.history.clone()?;
    let opening = tokio::runtime::Handle::try_current().ok().map(|runtime| {
        let path = path.clone();
        runtime.spawn(async move { HistoryStore::open(&path).await })
    });
    let opening = std::sync::Arc::new(std::sync::Mutex::new(opening));
    let end = std::sync::Arc::new(end);
    Some(crate::engine::AtEnd(std::sync::Arc::new(
        move |state: &crate::journal::RunState,
              plan: &Plan,
              report: &crate::report::summary::RunReport| {
            let (predicted, basis) = end.predicted.clone();
            let plan_path = end.plan_path.as_ref().map(|p| p.display().to_string());
            let (mut run, rows) = record::rows_of_report(
                state,
                report,
                record::RunContext {
                    plan,
                    plan_path: plan_path.as_deref(),
                    mode: end.mode,
                    concurrency: end.concurrency,
                },
                now_ms(),
            );
            run.predicted_secs = predicted;
            run.prediction_basis = basis;
            let path = path.clone();
            let opened = opening
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            Box::pin(async move {
                if let Err(err) = write_run(&path, opened, &run, &rows).await {
                    eprintln!("warning: the run was not recorded in the history: {err}");
                }
            })
        },
    )))
}

/// Writes a run's rows into the history at `path`, through the store
/// `opened` in the background if there is one (else it opens it now).
async fn write_run(
    path: &Path,
    opened: Option<tokio::task::JoinHandle<Result<HistoryStore, HistoryError>>>,
    run: &crate::history::RunRow,
    rows: &[crate::history::HistoryRow],
) -> Result<(), HistoryError> {
    let store = match opened {
        Some(opening) => match opening.await {
            Ok(store) => store?,
            // The opening task panicked or was cancelled: try again here.
            Err(_) => HistoryStore::open(path).await?,
        },
        None => HistoryStore::open(path).await?,
    };
    let result = store.upsert_run(run, rows).await;
    store.close().await;
    result
}

/// The makespan the history (before the run) predicts for `plan`: a nominal
/// simulation; `None` when no agent has an estimate or a calibration.
fn predict_makespan(plan: &Plan, calibration: &Calibration, end: &RunEnd) -> (Option<f64>, String) {
    let model = SimModel::from_plan(
        plan,
        ModelOptions {
            calibration: Some(calibration),
            default_estimate: Duration::from_secs(1800),
            timeout_factor: end.timeout_factor,
        },
    );
    let calibrated = model.calibrated_count();
    if calibrated == 0 && model.agents.iter().all(|a| !a.estimated) {
        return (None, "no estimates".into());
    }
    let timeline = simulate(
        &model,
        SimOptions {
            mode: end.mode,
            concurrency: end.concurrency,
            retry_base: end.retry_base.as_secs_f64(),
            retry_max: end.retry_max.as_secs_f64(),
            failure_strategy: end.failure_strategy,
        },
        Sampler::Nominal,
    );
    let basis = if calibrated == 0 {
        "estimates".to_string()
    } else {
        format!(
            "history ({calibrated} of {} agents calibrated)",
            model.agents.len()
        )
    };
    (Some(timeline.makespan), basis)
}

/// The live ETA of a run of `plan`, when the history has a basis for its agents.
pub(super) fn live_eta(
    plan: &Plan,
    start: &HistoryAtStart,
    sim: SimOptions,
    timeout_factor: f64,
) -> Option<crate::predict::eta::LiveEta> {
    crate::predict::eta::LiveEta::new(plan, start.calibration.as_ref()?, sim, timeout_factor)
}

/// Each agent's overrun ratio for anomaly detection: the history's 90th
/// percentile of actual over estimated duration for the agent (plan, then
/// platform/model, then platform), when it rests on at least three runs;
/// never below 1 (finishing within the estimate is no anomaly). Agents
/// without such a basis are left out (the engine uses its default).
pub(super) fn overrun_ratios(
    plan: &Plan,
    start: &HistoryAtStart,
) -> std::collections::HashMap<String, f64> {
    let Some(calibration) = &start.calibration else {
        return Default::default();
    };
    plan.agents()
        .map(|(_, _, a)| a.agent_id.clone())
        .zip(calibration.for_plan(plan))
        .filter_map(|(id, c)| {
            let c = c?;
            (c.samples >= 3 && c.p90_ratio.is_finite()).then(|| (id, c.p90_ratio.max(1.0)))
        })
        .collect()
}
