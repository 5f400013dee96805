//! `run` (and the seed's bare form), `resume` and `status`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{CliError, load_valid_plan_freeing_tree};
use crate::engine::progress::{JsonLines, PlainLines, Reporter, TerminalBars};
use crate::engine::{Engine, RunOptions, now_ms};
use crate::journal::{Journal, RunOutcome};
use crate::plan::duration::parse_duration;
use crate::plan::{ExecutionMode, FailureStrategy, LoadOptions, Plan, Platform};

/// Options shared by `run` and `resume`.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Folder holding the runs (each in `<run-id>/`).
    #[arg(long, default_value = ".llm-orchestrate/runs")]
    pub run_dir: PathBuf,
    /// Most agents at once (default: the plan's `concurrency`, else the widest wave, at most 2 × CPUs).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Agents without `timeout` are stopped after `estimatedDuration` × this factor.
    #[arg(long, default_value_t = 2.0)]
    pub timeout_factor: f64,
    /// Stop an agent that prints nothing for this long (STALLED), e.g. `10m`.
    #[arg(long, value_parser = parse_duration)]
    pub stall_timeout: Option<Duration>,
    /// After SIGTERM, wait this long before SIGKILL.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub kill_grace: Duration,
    /// Delay before the first retry (doubles each retry, with jitter).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Longest delay between retries.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// Stop the run once its agents have spent this many USD on model requests
    /// (with the plan's `budgetUsd`, the smaller one applies).
    #[arg(long)]
    pub max_budget_usd: Option<f64>,
    /// Gemini API agents: send their turns as Batch API jobs of at most N
    /// requests, keyed `<agentId>/<turn>` (needs `--correlation-mode enabled`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// A JSON file of model prices in USD per million tokens, added to (and
    /// overriding) the built-in table: `{"model-prefix": {"input": 3, "output": 15, "cachedInput": 0.3}}`.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Key batched requests by agent and turn so responses route back (the default).
    #[arg(long, value_enum, default_value = "enabled")]
    pub correlation_mode: CorrelationMode,
    /// Quality gates: `strict` (a gate whose tool is missing, or that
    /// cannot apply, fails), `normal` (such a gate is skipped with a warning),
    /// `off` (gates are recorded as skipped).
    #[arg(long, value_enum, default_value = "normal")]
    pub quality_gates: crate::gates::GateMode,
    /// How gate failure actions apply: `low` turns `continue` into
    /// `pause-wave` and makes gates strict; `high` turns `pause-wave` of wave
    /// stages into `continue`; `medium` as the plan says.
    #[arg(long, value_enum, default_value = "medium")]
    pub risk_tolerance: crate::engine::RiskTolerance,
    /// Which LLM suggests fixes for failed gates: `auto` (the plan's platform
    /// when its API key or server is configured), `off`, or a platform.
    #[arg(long, value_enum, default_value = "auto")]
    pub gate_advisor: super::drivers::AdvisorChoice,
    /// `--mode adaptive`: which LLM analyses waves and failures and proposes
    /// plan adaptations: `auto` (the plan's platform when its API key or
    /// server is configured), `off` (the built-in rules), or a platform.
    #[arg(long, value_enum, default_value = "auto")]
    pub analyzer_platform: super::drivers::AdvisorChoice,
    /// `--mode adaptive`: most plan adaptations in one run.
    #[arg(long, default_value_t = crate::engine::DEFAULT_MAX_ADAPTATIONS)]
    pub max_adaptations: u32,
    /// POST chosen events (see --notify-on) as JSON to this URL as they happen.
    #[arg(long, value_name = "URL")]
    pub notify_webhook: Option<String>,
    /// Run this command (`sh -c`) for each chosen event, with
    /// LLMO_EVENT_KIND, LLMO_EVENT_JSON, LLMO_EVENT_TEXT and LLMO_RUN_ID set.
    #[arg(long, value_name = "CMD")]
    pub on_event: Option<String>,
    /// Which events alert: comma-separated kinds (`AgentFinished,RunFinished`)
    /// or `all` (default: failures, blocks, conflicts, failed gate stages,
    /// budget, anomalies, adaptations waiting or refused, interruption, the end of the run).
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub notify_on: Option<Vec<String>>,
    /// Stream every event as a JSON line on stdout.
    #[arg(long)]
    pub json: bool,
    /// The run history: each agent of the run is recorded here when the run
    /// ends, and live ETAs come from it (default: $LLMO_HISTORY, else
    /// `history.sqlite` next to --run-dir; `off` records nothing).
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// The live web dashboard (`--dashboard [ADDR]`, `--token`).
    #[command(flatten)]
    pub dashboard: crate::dashboard::DashboardArgs,
    /// Keep the run's journal (and, with --workers-only, its queue) in this
    /// PostgreSQL database instead of `journal.sqlite` (see the README's
    /// "Scaling out with PostgreSQL").
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Coordinate only: queue every agent in the --store for `worker`
    /// processes and run none here (agents run in place on the workers: no
    /// git worktrees).
    #[arg(long, requires = "store")]
    pub workers_only: bool,
}

/// Arguments of `run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The plan file.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Execution mode (default: the plan's `executionMode`).
    #[arg(long)]
    pub mode: Option<ExecutionMode>,
    /// Platform for agents that name none (default: the plan's). In this version
    /// only agents with a `command` (the `shell` driver) can run.
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Failure strategy (default: the plan's `coordinationRules.failureStrategy`).
    #[arg(long)]
    pub failure_strategy: Option<FailureStrategy>,
    /// Folder the agents' scopes are relative to (default: the plan file's folder).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Treat unknown plan fields as errors.
    #[arg(long)]
    pub strict: bool,
    /// Run agents in place, in their scope folders, instead of one git
    /// worktree and branch per agent (the default inside a git repository).
    #[arg(long)]
    pub no_worktrees: bool,
    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Whether batched requests carry correlation keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CorrelationMode {
    /// Requests are keyed `<agentId>/<turn>`.
    Enabled,
    /// No keys: batching is refused.
    Disabled,
}

/// Arguments of `resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id (or a unique prefix); default: the latest run.
    pub run: Option<String>,
    /// Folder the agents' scopes are relative to (default: the current folder).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Approve what waits for a person: the gate stage waiting for a manual
    /// review (it counts as passed), or the proposed plan adaptation (it is applied).
    #[arg(long, conflicts_with = "reject")]
    pub approve: bool,
    /// Reject what waits for a person: the gate stage waiting for a manual
    /// review (its agents fail), or the proposed plan adaptation (it is dropped).
    #[arg(long)]
    pub reject: bool,
    /// Run failed agents again (and the agents they blocked), with attempt+1.
    #[arg(long)]
    pub retry_failed: bool,
    /// Engine options.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Run id (or a unique prefix); default: the latest run.
    pub run: Option<String>,
    /// Print the seed's aggregate status JSON.
    #[arg(long)]
    pub json: bool,
    /// Folder holding the runs.
    #[arg(long, default_value = ".llm-orchestrate/runs")]
    pub run_dir: PathBuf,
    /// Read the run from this PostgreSQL store instead of the run folder.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))
}

/// A new run id: `<orchestrationId>-<YYYYMMDD>-<HHMMSS>-<4 hex>`.
pub fn new_run_id(orchestration_id: &str) -> String {
    let ms = now_ms();
    let secs = ms.div_euclid(1000);
    let (y, m, d) = crate::report::status::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let safe: String = orchestration_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    format!(
        "{safe}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{:04x}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        (ms.rem_euclid(1000) as u32 * 65 + std::process::id()) & 0xffff
    )
}

fn reporters(
    args: &EngineArgs,
    eta: Option<crate::predict::eta::LiveEta>,
) -> Vec<Box<dyn Reporter>> {
    let mut reporters = output_reporters(args.json, eta);
    let alerts = crate::engine::alerts::AlertConfig {
        webhook: args.notify_webhook.clone(),
        command: args.on_event.clone(),
        kinds: args.notify_on.clone(),
    };
    if alerts.is_active() {
        reporters.push(Box::new(crate::engine::alerts::Alerts::new(alerts)));
    }
    reporters
}

fn output_reporters(
    json: bool,
    eta: Option<crate::predict::eta::LiveEta>,
) -> Vec<Box<dyn Reporter>> {
    use std::io::IsTerminal;
    if stdout_is_null_device() && !std::io::stderr().is_terminal() {
        // Nobody reads the lines (or JSON lines): do not format and write them.
        Vec::new()
    } else if json {
        vec![Box::new(JsonLines)]
    } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
        let bars = TerminalBars::new();
        vec![Box::new(match eta {
            Some(eta) => bars.with_eta(eta),
            None => bars,
        })]
    } else {
        let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(PlainLines)];
        if let Some(eta) = eta {
            reporters.push(Box::new(crate::predict::eta::EtaLines::new(eta)));
        }
        reporters
    }
}

/// What [`super::history::recorder`] needs once the run ended.
fn run_end(
    options: &RunOptions,
    plan_path: Option<&Path>,
    args: &EngineArgs,
) -> super::history::RunEnd {
    super::history::RunEnd {
        plan_path: plan_path.map(Path::to_path_buf),
        // Runs journaled in a PostgreSQL store are not recorded in the local
        // history (see the README's "Scaling out with PostgreSQL").
        history: match args.store {
            Some(_) => None,
            None => crate::history::path_for_runs(args.history.as_deref(), &args.run_dir),
        },
        mode: options.mode,
        concurrency: options.concurrency,
        timeout_factor: options.timeout_factor,
        retry_base: options.retry_base,
        retry_max: options.retry_max,
        failure_strategy: options.failure_strategy,
        predicted: (None, String::new()),
    }
}

/// The simulation settings of a run (for live ETAs).
fn sim_options(options: &RunOptions) -> crate::predict::simulate::SimOptions {
    crate::predict::simulate::SimOptions {
        mode: options.mode,
        concurrency: options.concurrency,
        retry_base: options.retry_base.as_secs_f64(),
        retry_max: options.retry_max.as_secs_f64(),
        failure_strategy: options.failure_strategy,
    }
}

/// Standard output is `/dev/null` (as in `run > /dev/null`).
fn stdout_is_null_device() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(stdout) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    let (Ok(out), Ok(null)) = (
        std::fs::File::from(stdout).metadata(),
        std::fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    out.file_type().is_char_device()
        && null.file_type().is_char_device()
        && out.rdev() == null.rdev()
}

/// Refuses plans with agents no available driver can run.
fn default_concurrency(plan: &Plan) -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let widest = plan
        .waves
        .iter()
        .map(|w| w.agents.len())
        .max()
        .unwrap_or(1)
        .max(1);
    plan.concurrency
        .map_or(widest.min(cpus * 2), |c| c as usize)
}

fn options(
    plan: &Plan,
    run_id: String,
    run_dir: PathBuf,
    workdir: PathBuf,
    mode: ExecutionMode,
    strategy: FailureStrategy,
    args: &EngineArgs,
) -> RunOptions {
    RunOptions {
        run_id,
        run_dir,
        workspace_root: workdir,
        mode,
        concurrency: args
            .concurrency
            .unwrap_or_else(|| default_concurrency(plan))
            .max(1),
        timeout_factor: args.timeout_factor,
        stall_timeout: args.stall_timeout,
        kill_grace: args.kill_grace,
        retry_base: args.retry_base,
        retry_max: args.retry_max,
        failure_strategy: strategy,
        status_interval: plan.coordination_rules.progress_reporting.interval,
        max_budget_usd: match (plan.budget_usd, args.max_budget_usd) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        workspaces: None,
        conflict_handling: plan.coordination_rules.conflict_handling,
        gate_mode: args.quality_gates,
        risk: args.risk_tolerance,
        review: None,
        gate_advisor: None,
        retry_failed: false,
        analyzer: None,
        max_adaptations: args.max_adaptations,
        overrun_ratio: std::collections::HashMap::new(),
        journal: None,
        at_end: None,
    }
}

fn exit_code(outcome: RunOutcome) -> u8 {
    match outcome {
        RunOutcome::Succeeded => super::EXIT_OK,
        RunOutcome::Failed => super::EXIT_FAILED,
        RunOutcome::Paused => super::EXIT_PAUSED,
        RunOutcome::Interrupted => super::EXIT_INTERRUPTED,
    }
}

/// Cancels the token on the first Ctrl-C or SIGTERM; a second one exits at once.
fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let next = async {
            match &mut term {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = t.recv() => {}
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        next.await;
        eprintln!("interrupt: stopping agents cleanly (press Ctrl-C again to exit at once)");
        trigger.cancel();
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(i32::from(super::EXIT_INTERRUPTED));
    });
    token
}

/// Runs `run`.
pub fn run(args: RunArgs) -> Result<u8, CliError> {
    let plan_path = args
        .plan
        .clone()
        .ok_or_else(|| CliError::Usage("--plan is required".into()))?;
    let plan = load_valid_plan_freeing_tree(
        &plan_path,
        LoadOptions {
            strict: args.strict,
            mode: args.mode,
        },
    )?;
    let mut plan = plan;
    if let Some(platform) = args.platform {
        // Recorded in the journaled plan, so `resume` runs on the same platform.
        plan.platform = platform;
    }
    let run_id = new_run_id(&plan.orchestration_id);
    let run_dir = args.engine.run_dir.join(&run_id);
    let workdir = match &args.workdir {
        Some(w) => w.clone(),
        None => plan_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let mode = args.mode.unwrap_or(plan.execution_mode);
    let strategy = args
        .failure_strategy
        .unwrap_or(plan.coordination_rules.failure_strategy);
    let mut options = options(
        &plan,
        run_id,
        run_dir,
        workdir,
        mode,
        strategy,
        &args.engine,
    );
    let local = if args.engine.workers_only {
        None
    } else {
        Some(super::drivers::build(
            &plan,
            None,
            options.concurrency,
            &args.engine,
        )?)
    };
    options.gate_advisor = super::drivers::gate_advisor(&plan, &args.engine)?;
    if mode == ExecutionMode::Adaptive {
        options.analyzer = super::drivers::plan_analyzer(&plan, &args.engine)?;
    }
    // The journal keeps the mode the run follows, so `resume` follows it too.
    plan.execution_mode = mode;
    crate::drivers::janitor::start_in_background();
    let mut end = run_end(&options, Some(&plan_path), &args.engine);
    let runtime = runtime()?;
    let start = runtime.block_on(super::history::HistoryAtStart::load(
        &plan,
        end.history.as_deref(),
    ));
    end.predicted = start.predict(&plan, &end);
    options.overrun_ratio = super::history::overrun_ratios(&plan, &start);
    let eta =
        super::history::live_eta(&plan, &start, sim_options(&options), options.timeout_factor);
    let reporters = reporters(&args.engine, eta);
    let no_worktrees = args.no_worktrees || args.engine.workers_only;
    let store_url = args.engine.store.clone();
    let _dashboard = args
        .engine
        .dashboard
        .start_live(&args.engine.run_dir, &options.run_id, &options.run_dir)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let r = runtime.block_on(async move {
        let mut store = None;
        if let Some(url) = &store_url {
            let pg = super::store::connect(url).await?;
            options.journal =
                Some(super::store::new_run_journal(&pg, &options.run_id, &options.run_dir).await?);
            store = Some(pg);
        }
        let driver = match (local, &store) {
            (Some(driver), _) => driver,
            (None, Some(pg)) => super::store::remote_driver(pg, &options.run_id, &plan)?,
            (None, None) => return Err(CliError::Usage("--workers-only needs --store".into())),
        };
        if !no_worktrees {
            options.workspaces = open_workspaces(&plan, &options).await?;
        }
        options.at_end = super::history::recorder(end);
        let outcome = drive_to_end(Engine::start(plan, options, driver, reporters).await).await?;
        Ok(exit_code(outcome))
    });
    drop(_dashboard);
    leave_to_exit(runtime);
    r
}

/// Leaves a runtime whose run has ended to the process's exit, which comes
/// next: the journal is closed and the run's files and history are written
/// by then, and what is left (idle workers, pooled connections, blocking
/// threads, their memory) has nothing more to do. Shutting it down first
/// dropped each of those one by one (2–3 ms of a 1,000-agent run, and
/// 4–7 ms when it also waited for the blocking threads; BENCHMARKS.md,
/// eleventh session); the exit releases them all at once.
fn leave_to_exit(runtime: tokio::runtime::Runtime) {
    std::mem::forget(runtime);
}

/// The run's git workspaces: inside a git repository, one worktree per agent
/// (see [`crate::workspace`]); outside one, agents run in place, and a plan
/// with `scope`s is refused (its agents would share one folder unchecked).
async fn open_workspaces(
    plan: &Plan,
    options: &RunOptions,
) -> Result<Option<std::sync::Arc<crate::workspace::Workspaces>>, CliError> {
    let root = &options.workspace_root;
    let in_repo = crate::workspace::git::toplevel(root)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?
        .is_some();
    if !in_repo {
        let scoped = plan.agents().any(|(_, _, a)| !a.scope_paths().is_empty());
        if scoped {
            return Err(CliError::Usage(format!(
                "the plan gives agents a `scope`, but {} is not inside a git repository: agents work in git worktrees and their changes are checked against their scopes. Run `git init` and commit, or pass --no-worktrees to run every agent in place",
                root.display()
            )));
        }
        return Ok(None);
    }
    let workspaces = crate::workspace::Workspaces::open(
        root,
        &options.run_id,
        &options.run_dir,
        plan.workspace.as_ref(),
    )
    .await
    .map_err(|e| CliError::Usage(format!("cannot prepare the git workspace: {e}")))?;
    Ok(Some(std::sync::Arc::new(workspaces)))
}

/// A resumed run's workspaces, from its journal.
async fn reopen_workspaces(
    plan: &Plan,
    state: &crate::journal::RunState,
) -> Result<Option<std::sync::Arc<crate::workspace::Workspaces>>, CliError> {
    let Some(info) = state.workspace.clone() else {
        return Ok(None);
    };
    let workspaces = crate::workspace::Workspaces::reopen(
        info,
        &state.run_id,
        plan.workspace.as_ref().and_then(|w| w.setup.clone()),
    );
    workspaces
        .ensure_integration()
        .await
        .map_err(|e| CliError::Usage(format!("cannot reopen the git workspace: {e}")))?;
    Ok(Some(std::sync::Arc::new(workspaces)))
}

/// Runs a started (or resumed) engine to its end and returns its outcome.
///
/// The engine (its final state, plan, scheduler, prompts...) is not freed:
/// the command ends right after (its report and history are written by
/// then), and freeing a large run's state, every agent's record with the
/// heap returning its pages at once, took 2–5 ms of a 1,000-agent run's end
/// (BENCHMARKS.md, tenth session), and the rest of the engine another
/// ~2 ms (eleventh session). The process's exit releases the memory.
async fn drive_to_end(
    engine: Result<Engine, crate::engine::EngineError>,
) -> Result<RunOutcome, CliError> {
    let engine = engine.map_err(|e| CliError::Usage(e.to_string()))?;
    // The loop runs as a task on the runtime's workers (not on the thread
    // that blocks on it), so waking it for each agent's completion is a
    // local wake-up on a worker instead of a cross-thread one.
    let interrupt = interrupt_token();
    let finished = tokio::spawn(engine.finish(interrupt))
        .await
        .map_err(|e| CliError::Usage(format!("the run engine stopped: {e}")))?
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let outcome = finished.outcome;
    std::mem::forget(finished);
    Ok(outcome)
}

/// Finds a run folder by id, unique prefix, or the latest.
pub fn find_run(runs: &Path, id: Option<&str>) -> Result<PathBuf, CliError> {
    let entries = std::fs::read_dir(runs)
        .map_err(|e| CliError::Usage(format!("no runs in {}: {e}", runs.display())))?;
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("journal.sqlite").is_file())
        .filter(|e| id.is_none_or(|id| e.file_name().to_string_lossy().starts_with(id)))
        .filter_map(|e| {
            let modified = e
                .path()
                .join("journal.sqlite")
                .metadata()
                .and_then(|m| m.modified())
                .ok()?;
            Some((modified, e.path()))
        })
        .collect();
    if let Some(id) = id {
        if let Some((_, exact)) = candidates
            .iter()
            .find(|(_, p)| p.file_name().is_some_and(|n| n == id))
        {
            return Ok(exact.clone());
        }
        if candidates.len() > 1 {
            return Err(CliError::Usage(format!(
                "run id prefix {id:?} matches {} runs",
                candidates.len()
            )));
        }
    }
    candidates.sort();
    candidates.pop().map(|(_, p)| p).ok_or_else(|| {
        CliError::Usage(format!(
            "no run {} in {}",
            id.unwrap_or("at all"),
            runs.display()
        ))
    })
}

/// The state of the run in `run_dir`, replayed from its journal.
async fn replay_run(run_dir: &Path) -> Result<crate::journal::RunState, CliError> {
    let journal = Journal::open(&run_dir.join("journal.sqlite"))
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let state = journal
        .replay()
        .await
        .map_err(|e| CliError::Usage(e.to_string()));
    journal.close().await;
    state
}

/// Runs `resume`.
pub fn resume(args: ResumeArgs) -> Result<u8, CliError> {
    let local_run = match &args.engine.store {
        None => Some(find_run(&args.engine.run_dir, args.run.as_deref())?),
        Some(_) => None,
    };
    let reporters = reporters(&args.engine, None);
    // The dashboard reads a local journal; it is not offered with --store.
    let _dashboard = match &local_run {
        Some(run_dir) => {
            let run_id = run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            Some(
                args.engine
                    .dashboard
                    .start_live(
                        &args.engine.run_dir,
                        run_id.as_deref().unwrap_or(""),
                        run_dir,
                    )
                    .map_err(|e| CliError::Usage(e.to_string()))?,
            )
        }
        None => None,
    };
    let runtime = runtime()?;
    let r = runtime.block_on(async move {
        let (run_dir, state, journal, store) = match (local_run, &args.engine.store) {
            (Some(run_dir), _) => {
                let state = replay_run(&run_dir).await?;
                (run_dir, state, None, None)
            }
            (None, url) => {
                let url = url.as_deref().unwrap_or_default();
                let pg = super::store::connect(url).await?;
                let (run_dir, state, journal) =
                    super::store::reopen_run(&pg, args.run.as_deref(), &args.engine.run_dir).await?;
                (run_dir, state, Some(journal), Some(pg))
            }
        };
        let plan: Plan = state
            .plan
            .clone()
            .and_then(|p| serde_json::from_value(p).ok())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{} holds no readable plan: the run's start was never journaled (it was stopped at once, or a power loss came before the journal's first flush to disk); start it again with `run`",
                    run_dir.display()
                ))
            })?;
        let workdir = args.workdir.clone().unwrap_or_else(|| PathBuf::from("."));
        let mode = plan.execution_mode;
        let strategy = plan.coordination_rules.failure_strategy;
        let mut options = options(
            &plan,
            state.run_id.clone(),
            run_dir,
            workdir,
            mode,
            strategy,
            &args.engine,
        );
        options.journal = journal;
        options.workspaces = reopen_workspaces(&plan, &state).await?;
        options.gate_advisor = super::drivers::gate_advisor(&plan, &args.engine)?;
        if mode == ExecutionMode::Adaptive {
            options.analyzer = super::drivers::plan_analyzer(&plan, &args.engine)?;
        }
        options.retry_failed = args.retry_failed;
        options.review = match (args.approve, args.reject) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        let driver = match &store {
            Some(pg) if args.engine.workers_only => {
                super::store::remote_driver(pg, &options.run_id, &plan)?
            }
            _ => super::drivers::build(&plan, None, options.concurrency, &args.engine)?,
        };
        crate::drivers::janitor::start_in_background();
        let mut end = run_end(&options, None, &args.engine);
        let start = super::history::HistoryAtStart::load(&plan, end.history.as_deref()).await;
        end.predicted = start.predict(&plan, &end);
        options.overrun_ratio = super::history::overrun_ratios(&plan, &start);
        options.at_end = super::history::recorder(end);
        let outcome = drive_to_end(Engine::resume(options, driver, reporters).await).await?;
        Ok(exit_code(outcome))
    });
    leave_to_exit(runtime);
    r
}

/// Arguments of `clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Run id (or a unique prefix); default: the latest run.
    pub run: Option<String>,
    /// Folder holding the runs.
    #[arg(long, default_value = ".llm-orchestrate/runs")]
    pub run_dir: PathBuf,
}

/// Runs `clean`: removes a run's git worktrees (agents', integration);
/// branches and commits stay.
pub fn clean(args: CleanArgs) -> Result<u8, CliError> {
    let run_dir = find_run(&args.run_dir, args.run.as_deref())?;
    runtime()?.block_on(async {
        let state = replay_run(&run_dir).await?;
        let Some(info) = state.workspace.clone() else {
            println!("run {} ran in place: it has no worktrees", state.run_id);
            return Ok(super::EXIT_OK);
        };
        let workspaces = crate::workspace::Workspaces::reopen(info, &state.run_id, None);
        let removed = workspaces
            .clean()
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        for path in &removed {
            println!("removed worktree {}", path.display());
        }
        println!(
            "run {}: {} worktree(s) removed; its branches are kept",
            state.run_id,
            removed.len()
        );
        Ok(super::EXIT_OK)
    })
}

/// Runs `status`.
pub fn status(args: StatusArgs) -> Result<u8, CliError> {
    let state = match &args.store {
        Some(url) => runtime()?.block_on(super::store::replay(url, args.run.as_deref()))?,
        None => {
            let run_dir = find_run(&args.run_dir, args.run.as_deref())?;
            runtime()?.block_on(replay_run(&run_dir))?
        }
    };
    let json = crate::report::status::status_json(&state, now_ms());
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
        s.push('\n');
        s
    } else {
        let mut s = format!(
            "run {} ({}): {}% overall, {}\n",
            state.run_id,
            state
                .outcome
                .map_or("running or stopped".to_string(), |o| format!("{o:?}")
                    .to_lowercase()),
            state.overall_progress(),
            crate::engine::progress::summary_line(&state)
        );
        for agent in json["agentStatus"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "  {:<24} {:<14} {:>3}%  {}\n",
                agent["id"].as_str().unwrap_or(""),
                agent["status"].as_str().unwrap_or(""),
                agent["progress"].as_u64().unwrap_or(0),
                agent["blockers"]
                    .as_array()
                    .map(|b| b
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            ));
        }
        s
    };
    super::common::write_output(None, &text)?;
    Ok(super::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        use crate::report::status::civil_from_days;
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn run_ids_are_safe_folder_names() {
        let id = new_run_id("my plan/with:odd chars");
        assert!(id.starts_with("my-plan-with-odd-chars-"));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
