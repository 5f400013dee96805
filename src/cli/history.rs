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

impl RunEnd {
    /// The run as the history's rows describe it.
    fn context<'a>(&self, plan: &'a Plan, plan_path: Option<&'a str>) -> record::RunContext<'a> {
        record::RunContext {
            plan,
            plan_path,
            mode: self.mode,
            concurrency: self.concurrency,
        }
    }
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
/// (`None` when the history is off). A failure is a warning on stderr: it
/// never changes how the run ended.
///
/// A task of its own (see [`write_history`]) opens the history file
/// (created and migrated if needed) as soon as the recorder exists, while
/// the run starts up. While the run goes on, it writes the rows of the
/// agents that have ended for good, as the engine tells them
/// ([`crate::engine::AtEnd::agents_ended`], every quarter second), and at
/// the end the run's own row with every agent row that is not already
/// written as it stands then. So the end of a large run writes the rows of
/// its last agents only (the whole upsert, 1,000 rows, was the last thing a
/// 1,000-agent run waited for; BENCHMARKS.md, eleventh session). The rows
/// at the end are made from the engine's final state and the plan it
/// followed last (an adaptive run's adapted plan): an agent that changed
/// after its row was written (a resumed run retrying it) is written again.
/// A run stopped before its end (a crash) leaves the rows of its agents
/// that had ended, and no run row, until `resume` ends it.
pub(super) fn recorder(end: RunEnd) -> Option<crate::engine::AtEnd> {
    let path = end.history.clone()?;
    let jobs = tokio::runtime::Handle::try_current().ok().map(|runtime| {
        let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(write_history(path.clone(), queue));
        jobs
    });
    let end = std::sync::Arc::new(end);
    let agents_ended = jobs.clone().map(|jobs| {
        let end = std::sync::Arc::clone(&end);
        let tell: std::sync::Arc<crate::engine::AgentsEndedFn> = std::sync::Arc::new(
            move |state: &crate::journal::RunState, plan: &Plan, agents: &[String]| {
                let plan_path = end.plan_path.as_ref().map(|p| p.display().to_string());
                let rows = record::rows_of_agents(
                    state,
                    end.context(plan, plan_path.as_deref()),
                    agents,
                    now_ms(),
                );
                let _ = jobs.send(Job::Agents(rows));
            },
        );
        tell
    });
    let at_end = move |state: &crate::journal::RunState,
                       plan: &Plan,
                       report: &crate::report::summary::RunReport| {
        let (predicted, basis) = end.predicted.clone();
        let plan_path = end.plan_path.as_ref().map(|p| p.display().to_string());
        let (mut run, rows) = record::rows_of_report(
            state,
            report,
            end.context(plan, plan_path.as_deref()),
            now_ms(),
        );
        run.predicted_secs = predicted;
        run.prediction_basis = basis;
        let (done, written) = tokio::sync::oneshot::channel();
        let job = Job::End {
            run: Box::new(run),
            rows,
            done,
        };
        let unsent = match &jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        let path = path.clone();
        let work: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let result = match unsent {
                // No writer task (no runtime when the recorder was made), or
                // it is gone: write everything here.
                Some(Job::End { run, rows, .. }) => write_all(&path, &run, &rows).await,
                _ => written.await.unwrap_or_else(|_| {
                    Err(HistoryError::Io {
                        path: path.clone(),
                        source: std::io::Error::other("the history writer stopped"),
                    })
                }),
            };
            if let Err(err) = result {
                eprintln!("warning: the run was not recorded in the history: {err}");
            }
        });
        work
    };
    Some(crate::engine::AtEnd {
        end: std::sync::Arc::new(at_end),
        agents_ended,
    })
}

/// What [`write_history`] is asked to write.
enum Job {
    /// Rows of agents that have ended, while the run goes on.
    Agents(Vec<crate::history::HistoryRow>),
    /// The run's row and every agent's row, at its end; answered once
    /// written and the file closed.
    End {
        run: Box<crate::history::RunRow>,
        rows: Vec<crate::history::HistoryRow>,
        done: tokio::sync::oneshot::Sender<Result<(), HistoryError>>,
    },
}

/// The history's writer task: opens the file at `path`, writes the jobs in
/// order, and at [`Job::End`] writes the run's row with the agent rows not
/// already written as they are, closes the file and stops. An early write
/// that fails is left to the end, which writes those rows again (and
/// reports the failure if it recurs).
async fn write_history(path: PathBuf, mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>) {
    let mut store = Some(HistoryStore::open(&path).await);
    let mut written: std::collections::HashMap<String, crate::history::HistoryRow> =
        std::collections::HashMap::new();
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Agents(rows) => {
                if let Some(Ok(open)) = &store
                    && open.upsert_agents(&rows).await.is_ok()
                {
                    written.extend(rows.into_iter().map(|r| (r.agent_id.clone(), r)));
                    // A failed checkpoint leaves the work to the close.
                    let _ = open.checkpoint().await;
                }
            }
            Job::End { run, rows, done } => {
                let left: Vec<crate::history::HistoryRow> = rows
                    .into_iter()
                    .filter(|row| written.get(&row.agent_id) != Some(row))
                    .collect();
                let result = match store.take() {
                    Some(Ok(open)) => {
                        let result = open.upsert_run(&run, &left).await;
                        open.close().await;
                        result
                    }
                    Some(Err(e)) => Err(e),
                    None => write_all(&path, &run, &left).await,
                };
                let _ = done.send(result);
                return;
            }
        }
    }
}

/// Opens the history at `path`, writes a run's rows and closes it.
async fn write_all(
    path: &Path,
    run: &crate::history::RunRow,
    rows: &[crate::history::HistoryRow],
) -> Result<(), HistoryError> {
    let store = HistoryStore::open(path).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::store::tests::{row, run};

    /// Rows written while the run goes on stay as they are unless they
    /// changed; the end writes the run, what changed and what was not written.
    #[tokio::test]
    async fn the_history_writer_writes_ended_agents_early_and_the_rest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
        let writer = tokio::spawn(write_history(path.clone(), queue));
        let (a, b, c) = (row("r1", "A"), row("r1", "B"), row("r1", "C"));
        jobs.send(Job::Agents(vec![a.clone(), b.clone()]))
            .ok()
            .unwrap();
        let mut b_again = b.clone();
        b_again.outcome = "failed".into();
        b_again.attempts = 3;
        let (done, written) = tokio::sync::oneshot::channel();
        let end = Job::End {
            run: Box::new(run("r1", Some("plan.json"), None)),
            rows: vec![a.clone(), b_again.clone(), c.clone()],
            done,
        };
        jobs.send(end).ok().unwrap();
        written.await.unwrap().unwrap();
        writer.await.unwrap();
        let store = HistoryStore::open(&path).await.unwrap();
        let mut rows = store.rows(&RowFilter::default()).await.unwrap();
        rows.sort_by(|x, y| x.agent_id.cmp(&y.agent_id));
        assert_eq!(rows, vec![a, b_again, c]);
        assert_eq!(store.runs(None).await.unwrap().len(), 1);
    }

    /// The recorder tells the engine's agents as they end to the writer, and
    /// its end records the whole run.
    #[tokio::test]
    async fn a_recorder_records_the_whole_run_with_rows_written_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let plan = crate::history::tests::test_plan(
            r#"{"orchestrationId":"p","platform":"claude","waves":[{"waveId":"w1","agents":[
            {"agentId":"A","workDescription":"a"},{"agentId":"B","workDescription":"b"}]}]}"#,
        );
        let at_end = recorder(RunEnd {
            plan_path: Some(PathBuf::from("plan.json")),
            history: Some(path.clone()),
            mode: ExecutionMode::Continuous,
            concurrency: 2,
            timeout_factor: 1.0,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(1),
            failure_strategy: FailureStrategy::ContinueOthers,
            predicted: (None, String::new()),
        })
        .unwrap();
        let plan_json = serde_json::to_value(&plan).unwrap();
        let done = crate::journal::AgentOutcome::Completed {
            without_marker: false,
        };
        let mut state = crate::journal::RunState::default();
        let mut seq = 0;
        let mut apply = |state: &mut crate::journal::RunState, at_ms, event| {
            seq += 1;
            state.apply(&crate::journal::EventRecord { seq, at_ms, event });
        };
        use crate::journal::Event;
        apply(
            &mut state,
            0,
            Event::RunStarted {
                run_id: "r1".into(),
                plan: plan_json,
            },
        );
        for agent in ["A", "B"] {
            apply(
                &mut state,
                1_000,
                Event::AgentStarted {
                    agent: agent.into(),
                    attempt: 1,
                },
            );
        }
        apply(
            &mut state,
            2_000,
            Event::AgentFinished {
                agent: "A".into(),
                attempt: 1,
                outcome: done.clone(),
                exit_code: None,
            },
        );
        let tell = at_end.agents_ended.clone().expect("told of ended agents");
        tell(&state, &plan, &["A".to_string()]);
        apply(
            &mut state,
            3_000,
            Event::AgentFinished {
                agent: "B".into(),
                attempt: 1,
                outcome: done,
                exit_code: None,
            },
        );
        apply(
            &mut state,
            3_000,
            Event::RunFinished {
                outcome: crate::journal::RunOutcome::Succeeded,
            },
        );
        let report = crate::report::summary::run_report_for(&state, Some(&plan), 3_000);
        (at_end.end)(&state, &plan, &report).await;
        let store = HistoryStore::open(&path).await.unwrap();
        let rows = store.rows(&RowFilter::default()).await.unwrap();
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.agent_id.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(got, vec![("A", "completed"), ("B", "completed")]);
        let runs = store.runs(None).await.unwrap();
        assert_eq!((runs.len(), runs[0].outcome.as_str()), (1, "succeeded"));
    }
}
