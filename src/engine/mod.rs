//! The engine: schedules agents by the plan's mode, drives them, handles
//! failures (strategies, retries with backoff, blocking of dependants), and
//! journals every state change before acting on it.
//!
//! One loop owns the run state. Agent attempts run as tasks that send their
//! observations back over a channel; the loop turns each into journal events
//! (appended in batches, one transaction per batch), applies them to
//! [`RunState`], and tells the reporters.

mod adaptive;
pub mod alerts;
pub mod anomaly;
mod gates;
mod integrate;
pub mod progress;
pub mod ready;
pub mod retry;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::drivers::{AgentOutput, AgentTask, Driver, DriverResult};
use crate::journal::{
    AgentOutcome, AgentPhase, Event, Journal, JournalError, PhaseScope, RunOutcome, RunState,
};
use crate::plan::{ConflictHandling, ExecutionMode, FailureStrategy, Plan};
use crate::protocol::ProtocolEvent;
use crate::report::summary::RunReport;
pub use adaptive::DEFAULT_MAX_ADAPTATIONS;
pub use gates::RiskTolerance;
use progress::Reporter;
use ready::Scheduler;

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run id.
    pub run_id: String,
    /// `.llm-orchestrate/runs/<run-id>`.
    pub run_dir: PathBuf,
    /// Folder that agents' scopes are relative to.
    pub workspace_root: PathBuf,
    /// Execution mode.
    pub mode: ExecutionMode,
    /// Most agents at once.
    pub concurrency: usize,
    /// Timeout = estimatedDuration × this, when the agent has no `timeout`.
    pub timeout_factor: f64,
    /// Silence watchdog.
    pub stall_timeout: Option<Duration>,
    /// Grace between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// First retry delay.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// What a failure does to the others.
    pub failure_strategy: FailureStrategy,
    /// status.json is also rewritten at this interval (the plan's `progressReporting`).
    pub status_interval: Option<Duration>,
    /// The run's budget in USD (the smaller of the plan's `budgetUsd` and
    /// `--max-budget-usd`): once spent, nothing new starts and running agents
    /// are stopped, as with `stop-all`.
    pub max_budget_usd: Option<f64>,
    /// Git workspaces: each agent in its own worktree and branch, merged into
    /// an integration branch (see [`crate::workspace`]); `None` runs agents in
    /// place, in their scope folders under `workspace_root`.
    pub workspaces: Option<Arc<crate::workspace::Workspaces>>,
    /// What conflicts do (the plan's `coordinationRules.conflictHandling`).
    pub conflict_handling: ConflictHandling,
    /// `--quality-gates`.
    pub gate_mode: crate::gates::GateMode,
    /// `--risk-tolerance`.
    pub risk: RiskTolerance,
    /// A person's decision on a stage waiting for a manual review
    /// (`resume --approve` / `--reject`).
    pub review: Option<bool>,
    /// Suggests fixes for failed gates (`--gate-advisor`).
    pub gate_advisor: Option<Arc<crate::gates::advisor::GateAdvisor>>,
    /// On resume: failed agents (and those they blocked) run again.
    pub retry_failed: bool,
    /// `--mode adaptive`: the LLM that proposes plan adaptations
    /// (`--analyzer-platform`); `None` uses the built-in rules.
    pub analyzer: Option<Arc<crate::adapt::PlanAnalyzer>>,
    /// Most plan adaptations in one run (`--max-adaptations`).
    pub max_adaptations: u32,
    /// Per agent: the ratio of actual to estimated duration beyond which a
    /// running attempt is an overrun anomaly (the history's 90th percentile;
    /// agents not named use [`anomaly::DEFAULT_OVERRUN_RATIO`]).
    pub overrun_ratio: HashMap<String, f64>,
    /// An open journal to write instead of `run_dir/journal.sqlite` (a
    /// PostgreSQL store's, with `--store`).
    pub journal: Option<Journal>,
    /// Work for the end of the run (recording it in the history), started
    /// once its last event is journaled and done alongside the final reports,
    /// and told of agents as they end for good while the run goes on.
    pub at_end: Option<AtEnd>,
}

/// Work started when a run has ended: given the final state, the plan
/// followed and the run's report (the one written to `report.json`), `end`
/// returns the work to do, which runs on its own task while the engine
/// writes its final files and closes its journal; the run returns once both
/// are done. Before that, while the run goes on, `agents_ended` (if any) is
/// told every [`STATUS_REFRESH`] which agents have ended for good since the
/// last time (completed, failed or blocked), with the state they are in, so
/// that the end has less left to do (the history writes their rows early).
/// An agent told may change again (a resumed run retrying it): `end` sees
/// the final state and must make up for it.
#[derive(Clone)]
pub struct AtEnd {
    /// The work at the end.
    pub end: Arc<AtEndFn>,
    /// Told of agents as they end for good.
    pub agents_ended: Option<Arc<AgentsEndedFn>>,
}

/// The function behind [`AtEnd::end`].
pub type AtEndFn = dyn Fn(&RunState, &Plan, &RunReport) -> BoxFuture<'static, ()> + Send + Sync;

/// The function behind [`AtEnd::agents_ended`]: the state, the plan, and the
/// agents that ended since it was last called.
pub type AgentsEndedFn = dyn Fn(&RunState, &Plan, &[String]) + Send + Sync;

impl std::fmt::Debug for AtEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtEnd")
    }
}

/// How a run ended, with the engine that ran it: its final state and the
/// plan it followed (the adapted one, in adaptive mode) are there to read,
/// and everything else it built is freed only when this is dropped (which
/// a command about to exit can skip; see `cli::run`).
pub struct Finished {
    /// The outcome.
    pub outcome: RunOutcome,
    engine: Engine,
}

impl Finished {
    /// The final state.
    pub fn state(&self) -> &RunState {
        &self.engine.state
    }

    /// The plan followed.
    pub fn plan(&self) -> &Plan {
        &self.engine.plan
    }
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finished")
            .field("outcome", &self.outcome)
            .field("run_id", &self.engine.state.run_id)
            .finish_non_exhaustive()
    }
}

/// Errors that stop the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal failed; the run cannot go on safely.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal writer could not commit; the run cannot go on safely.
    #[error(transparent)]
    JournalWrite(Arc<JournalError>),
    /// A file of the run directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The journal holds no run.
    #[error("{0}")]
    NotARun(String),
    /// A git workspace operation failed.
    #[error("git workspace: {0}")]
    Workspace(String),
}

/// How often status.json catches up with the state while a run is busy
/// (the first time one interval after the run loop starts).
pub const STATUS_REFRESH: Duration = Duration::from_millis(250);

enum Message {
    Output(String, AgentOutput),
    /// Something the attempt's workspace did (worktree ready, work committed).
    Event(Event),
    Done(String, u32, DriverResult),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `stop-all`: cancel everything, finish as failed.
    Everything,
    /// `pause-wave`: start nothing new, let running agents finish, pause.
    Pause,
    /// Ctrl-C / SIGTERM: cancel everything, resumable.
    Interrupted,
}

/// A run in progress.
pub struct Engine {
    plan: Plan,
    /// Which agents may start, kept up to date by [`Self::stage`].
    scheduler: Scheduler,
    options: RunOptions,
    journal: Journal,
    state: RunState,
    driver: Arc<dyn Driver>,
    reporters: Vec<Box<dyn Reporter>>,
    /// status.json is behind the state.
    status_dirty: bool,
    /// Events applied to `state` but not yet handed to the journal.
    pending: Vec<crate::journal::EventRecord>,
    /// Agent attempts announced by `pending`, started once it is durable.
    launches: Vec<writer::Launch>,
    /// The journal writer, while [`Self::run`] runs (before that, writes are direct).
    writer: Option<writer::Writer>,
    /// What the writer has committed.
    committed: Option<mpsc::UnboundedReceiver<writer::Committed>>,
    /// Agent id → (wave, position) in the plan.
    positions: HashMap<String, (usize, usize)>,
    /// Prompt renderer, built once (only for drivers that use prompts).
    prompts: Option<crate::render::AgentPrompts>,
    /// Working directories already created in this process.
    created_workdirs: HashSet<PathBuf>,
    /// Completed agents whose branches wait to be merged: (merge rank, id).
    to_merge: BTreeSet<(usize, String)>,
    /// Each agent's place in the merge order (by plan index).
    merge_rank: Vec<usize>,
    /// What gates need (`None` when the plan names no gate).
    gate_ctx: Option<Arc<gates::GateContext>>,
    /// Waves whose per-agent stage gates passed in this process (they may merge).
    gated_waves: HashSet<usize>,
    /// The first wave whose gate stage has not been checked yet.
    next_checkpoint: usize,
    /// Agents waiting to retry, and when.
    retry_at: BTreeMap<String, Instant>,
    /// The first wave not analysed yet (`--mode adaptive`).
    next_analysis: usize,
    /// Watches for anomalies.
    anomalies: anomaly::AnomalyDetector,
    /// Agents already handed to [`AtEnd::agents_ended`].
    ended_told: HashSet<String>,
}

/// The run's journal: the one handed over in `options` (a PostgreSQL
/// store's), else `journal.sqlite` in the run folder.
async fn open_journal(options: &mut RunOptions) -> Result<Journal, EngineError> {
    match options.journal.take() {
        Some(journal) => Ok(journal),
        None => {
            Ok(Journal::open_with_explicit_sync(&options.run_dir.join("journal.sqlite")).await?)
        }
    }
}

/// Writes the run's `status.json` from `state`, atomically; flushed to disk
/// when `durable` (the last one of a run, whose folder the caller flushes
/// with the other final files), else left to the page cache (the periodic
/// rewrites while the run goes on: the journal is the record).
fn write_status_file(
    run_dir: &Path,
    state: &RunState,
    plan: &Plan,
    durable: bool,
) -> Result<(), EngineError> {
    let path = run_dir.join("status.json");
    let write = |out: &mut std::io::BufWriter<&mut std::fs::File>| {
        crate::report::status::write_status_json_for(state, Some(plan), now_ms(), out)
    };
    let written = if durable {
        crate::report::status::write_atomically_leaving_dir(&path, write)
    } else {
        crate::report::status::write_atomically_cached_with(&path, write)
    };
    written.map_err(|source| EngineError::Io { path, source })
}

/// Runs blocking work from a task on a multi-thread runtime without holding
/// up the tasks queued behind it on the same worker (`block_in_place` hands
/// them to another thread); elsewhere (a current-thread runtime, tests) it
/// simply runs `work`. A task spawned just before, such as the end of a run's
/// journal close, otherwise waits in this worker's queue until `work` ends.
fn off_the_workers<R>(work: impl FnOnce() -> R) -> R {
    let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
    match flavor {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

fn agent_dir(run_dir: &Path, agent: &str) -> PathBuf {
    run_dir.join("agents").join(agent)
}

impl Engine {
    /// Starts a new run: creates the run directory and journals `RunStarted`.
    pub async fn start(
        plan: Plan,
        mut options: RunOptions,
        driver: Arc<dyn Driver>,
        reporters: Vec<Box<dyn Reporter>>,
    ) -> Result<Self, EngineError> {
        let journal = open_journal(&mut options).await?;
        let plan_json = serde_json::to_value(&plan).unwrap_or_default();
        let mut engine = Self::with(
            plan,
            options,
            journal,
            RunState::default(),
            driver,
            reporters,
        );
        engine.stage(vec![Event::RunStarted {
            run_id: engine.options.run_id.clone(),
            plan: plan_json,
        }]);
        // Written, and flushed to disk (with the journal's new file) by the
        // first sync, which comes with the first agents' commit: no flush
        // stands between the command and its first agents. A power loss
        // before that sync loses the run's start as a whole, like any
        // suffix of the sync interval (see `writer`).
        engine.write_unflushed().await?;
        if let Some(ws) = &engine.options.workspaces {
            let info = ws.info().clone();
            engine.record(vec![Event::WorkspaceOpened { info }]).await?;
        }
        Ok(engine)
    }

    /// Reopens a run from its journal (the plan is the one it started with) and journals `RunResumed`.
    pub async fn resume(
        mut options: RunOptions,
        driver: Arc<dyn Driver>,
        reporters: Vec<Box<dyn Reporter>>,
    ) -> Result<Self, EngineError> {
        let journal = open_journal(&mut options).await?;
        let state = journal.replay().await?;
        let plan_json = state.plan.clone().ok_or_else(|| {
            EngineError::NotARun(format!("{} holds no run", options.run_dir.display()))
        })?;
        let plan: Plan = serde_json::from_value(plan_json)
            .map_err(|e| EngineError::NotARun(format!("the journal's plan is unreadable: {e}")))?;
        options.run_id = state.run_id.clone();
        if let Some(c) = state.adapted_concurrency {
            options.concurrency = c as usize;
        }
        let retry_failed = options.retry_failed;
        let mut engine = Self::with(plan, options, journal, state, driver, reporters);
        let mut events = vec![Event::RunResumed];
        if retry_failed {
            // Failed agents, and those blocked because of them, run again.
            events.extend(
                engine
                    .state
                    .agents
                    .values()
                    .filter(|a| matches!(a.phase, AgentPhase::Failed | AgentPhase::Blocked))
                    .map(|a| Event::AgentReset {
                        agent: a.id.clone(),
                    }),
            );
        }
        engine.record(events).await?;
        engine.queue_unmerged();
        Ok(engine)
    }

    fn with(
        plan: Plan,
        options: RunOptions,
        journal: Journal,
        state: RunState,
        driver: Arc<dyn Driver>,
        reporters: Vec<Box<dyn Reporter>>,
    ) -> Self {
        Self {
            anomalies: anomaly::AnomalyDetector::new(
                &plan,
                options.overrun_ratio.clone(),
                options.max_budget_usd,
            ),
            scheduler: Scheduler::new(&plan, options.mode),
            plan,
            options,
            journal,
            state,
            driver,
            reporters,
            status_dirty: true,
            pending: Vec::new(),
            launches: Vec::new(),
            writer: None,
            committed: None,
            positions: HashMap::new(),
            prompts: None,
            created_workdirs: HashSet::new(),
            to_merge: BTreeSet::new(),
            merge_rank: Vec::new(),
            gate_ctx: None,
            gated_waves: HashSet::new(),
            next_checkpoint: 0,
            retry_at: BTreeMap::new(),
            next_analysis: 0,
            ended_told: HashSet::new(),
        }
        .indexed()
    }

    fn indexed(mut self) -> Self {
        self.reindex();
        self
    }

    /// Indexes the plan: scheduler phases, positions, prompts, merge ranks, gates.
    fn reindex(&mut self) {
        // The engine keeps the plan decoded; the state's JSON copy of it would
        // only double the memory of a large run.
        self.state.plan = None;
        self.scheduler.sync_all(&self.state);
        self.positions = self
            .plan
            .agents()
            .map(|(w, a, agent)| (agent.agent_id.clone(), (w, a)))
            .collect();
        if self.driver.uses_prompt() {
            self.prompts = crate::render::AgentPrompts::new(&self.plan).ok();
        }
        if self.options.workspaces.is_some() {
            self.merge_rank = integrate::merge_ranks(self.scheduler.index());
        }
        let has_gates = !self.plan.quality_gates.is_empty()
            || self
                .plan
                .agents()
                .any(|(_, _, a)| !a.quality_gates.is_empty());
        if has_gates {
            self.gate_ctx = Some(Arc::new(gates::GateContext {
                plan: Arc::new(self.plan.clone()),
                mode: gates::effective_mode(self.options.gate_mode, self.options.risk),
                advisor: self.options.gate_advisor.clone(),
            }));
        } else {
            self.gate_ctx = None;
        }
    }

    fn agent_def(&self, id: &str) -> Option<&crate::plan::Agent> {
        let &(w, a) = self.positions.get(id)?;
        self.plan.waves.get(w)?.agents.get(a)
    }

    /// The current state.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// Stages events: numbers them, applies them to the state, and keeps them
    /// until [`Self::flush`] writes them. Nothing outside the engine acts on a
    /// staged event (no process starts, no file or reporter sees it) before the
    /// flush, so "journaled before it takes effect" holds, and events that
    /// happen together cost one transaction. The state keeps no copy of a
    /// plan's JSON (`RunStarted`, `PlanAdapted`): the engine keeps the plan
    /// decoded.
    fn stage(&mut self, events: Vec<Event>) {
        let count = events.len();
        let at_ms = now_ms();
        let now = Instant::now();
        for event in events {
            self.anomalies.observe(&event, now);
            let record = crate::journal::EventRecord {
                seq: self.state.last_seq + 1,
                at_ms,
                event,
            };
            self.state.apply_without_plan_copy(&record);
            self.pending.push(record);
        }
        // Only the final phases of this batch count (a failed attempt that will
        // be retried is `Retrying`, not a failure that blocks its dependants).
        let first_new = self.pending.len() - count;
        let mut all = false;
        for record in &self.pending[first_new..] {
            match record.event.phase_scope() {
                PhaseScope::None => {}
                PhaseScope::Agent(id) => self.scheduler.sync(&self.state, id),
                PhaseScope::All => all = true,
            }
        }
        if all {
            self.scheduler.sync_all(&self.state);
        }
    }

    /// Hands the staged events (and their launches) to the journal writer
    /// without waiting for the disk; see [`writer`]. Before [`Self::run`]
    /// starts the writer, this writes directly, as [`Self::flush`] does.
    async fn commit_later(&mut self) -> Result<(), EngineError> {
        if self.writer.is_none() {
            return self.flush().await;
        }
        if self.pending.is_empty() && self.launches.is_empty() {
            return Ok(());
        }
        let batch = writer::Batch {
            records: std::mem::take(&mut self.pending),
            launches: std::mem::take(&mut self.launches),
            barrier: None,
        };
        self.send_to_writer(batch)
    }

    fn send_to_writer(&mut self, batch: writer::Batch) -> Result<(), EngineError> {
        let sent = self.writer.as_mut().is_some_and(|w| w.send(batch).is_ok());
        if sent {
            Ok(())
        } else {
            self.drain_committed()?;
            Err(EngineError::NotARun("the journal writer stopped".into()))
        }
    }

    /// Writes the staged events and waits until they (and everything handed
    /// to the writer before) are on disk, then tells the reporters.
    async fn flush(&mut self) -> Result<(), EngineError> {
        if self.pending.is_empty() && self.launches.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        let launches = std::mem::take(&mut self.launches);
        if self.writer.is_some() {
            let (barrier, done) = tokio::sync::oneshot::channel();
            self.send_to_writer(writer::Batch {
                records,
                launches,
                barrier: Some(barrier),
            })?;
            match done.await {
                Ok(Ok(())) => return self.drain_committed(),
                Ok(Err(e)) => return Err(EngineError::JournalWrite(e)),
                Err(_) => {
                    // The writer or syncer failed; its error is on the way.
                    self.drain_committed()?;
                    return Err(EngineError::NotARun("the journal writer stopped".into()));
                }
            }
        }
        self.journal.write(&records).await?;
        self.journal.sync().await?;
        for launch in launches {
            tokio::spawn(launch);
        }
        self.durable(&records);
        Ok(())
    }

    /// Writes the staged events without waiting for the disk, before the
    /// writer runs (the writer's syncer flushes them with the first batch it
    /// syncs); with launches staged, [`Self::flush`]es instead.
    async fn write_unflushed(&mut self) -> Result<(), EngineError> {
        if !self.launches.is_empty() || self.writer.is_some() {
            return self.flush().await;
        }
        let records = std::mem::take(&mut self.pending);
        self.journal.write(&records).await?;
        self.durable(&records);
        Ok(())
    }

    /// Tells the at-end work which agents have ended for good since the last
    /// time (see [`AtEnd`]).
    fn tell_agents_ended(&mut self) {
        let Some(tell) = self
            .options
            .at_end
            .as_ref()
            .and_then(|work| work.agents_ended.clone())
        else {
            return;
        };
        let ended: Vec<String> = self
            .state
            .agents
            .values()
            .filter(|a| {
                matches!(
                    a.phase,
                    AgentPhase::Completed | AgentPhase::Failed | AgentPhase::Blocked
                ) && !self.ended_told.contains(&a.id)
            })
            .map(|a| a.id.clone())
            .collect();
        if ended.is_empty() {
            return;
        }
        self.ended_told.extend(ended.iter().cloned());
        tell(&self.state, &self.plan, &ended);
    }

    /// Tells the reporters about records that are durable.
    fn durable(&mut self, records: &[crate::journal::EventRecord]) {
        for record in records {
            for reporter in &mut self.reporters {
                reporter.event(record, &self.state, &self.plan);
            }
        }
        self.status_dirty = true;
    }

    /// Takes what the writer has committed so far.
    fn drain_committed(&mut self) -> Result<(), EngineError> {
        while let Some(committed) = self.committed.as_mut().and_then(|c| c.try_recv().ok()) {
            self.on_committed(committed)?;
        }
        Ok(())
    }

    fn on_committed(&mut self, committed: writer::Committed) -> Result<(), EngineError> {
        match committed {
            writer::Committed::Records(records) => {
                self.durable(&records);
                Ok(())
            }
            writer::Committed::Failed(e) => Err(EngineError::JournalWrite(e)),
        }
    }

    /// Stages and flushes.
    async fn record(&mut self, events: Vec<Event>) -> Result<(), EngineError> {
        self.stage(events);
        self.flush().await
    }

    /// Rewrites status.json atomically when it is behind the state (or always, with `force`).
    /// The run loop calls this every [`STATUS_REFRESH`] and at the plan's
    /// `progressReporting` interval; the end of the run forces it.
    fn write_status(&mut self, force: bool) -> Result<(), EngineError> {
        if !force && !self.status_dirty {
            return Ok(());
        }
        self.status_dirty = false;
        write_status_file(&self.options.run_dir, &self.state, &self.plan, false)
    }

    fn timeout_for(&self, id: &str) -> Option<Duration> {
        let agent = self.agent_def(id)?;
        agent.timeout.map(|t| t.get()).or_else(|| {
            agent
                .estimated_duration
                .map(|d| d.get().mul_f64(self.options.timeout_factor))
        })
    }

    fn task_for(&mut self, id: &str, attempt: u32) -> Result<AgentTask, EngineError> {
        let agent = self
            .agent_def(id)
            .cloned()
            .ok_or_else(|| EngineError::NotARun(format!("agent {id} is not in the plan")))?;
        let dir = agent_dir(&self.options.run_dir, id);
        let workdir = self.options.workspace_root.join(agent.working_directory());
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EngineError::Io { path, source }
        };
        // With workspaces the attempt's worktree is made when it launches.
        if self.options.workspaces.is_none() && !self.created_workdirs.contains(&workdir) {
            std::fs::create_dir_all(&workdir).map_err(io(&workdir))?;
            self.created_workdirs.insert(workdir.clone());
        }
        // The driver keeps the prompt with the agent's files (the API driver
        // writes it at the top of the attempt's transcript).
        let prompt = self
            .prompts
            .as_ref()
            .and_then(|p| p.prompt(id).ok().flatten())
            .unwrap_or_default();
        let retry_context = (attempt > 1)
            .then(|| {
                self.state
                    .agents
                    .get(id)
                    .and_then(|a| a.last_failure.clone())
            })
            .flatten();
        Ok(AgentTask {
            run_id: self.options.run_id.clone(),
            agent,
            workdir,
            run_dir: self.options.run_dir.clone(),
            agent_dir: dir,
            prompt,
            attempt,
            retry_context,
            timeout: self.timeout_for(id),
            stall_timeout: self.options.stall_timeout,
            kill_grace: self.options.kill_grace,
        })
    }

    /// Starts agents: prepares their tasks, journals all their `AgentStarted`
    /// events in one transaction, then launches the attempts.
    async fn start_agents(
        &mut self,
        ids: &[String],
        tx: &mpsc::UnboundedSender<Message>,
        running: &mut HashMap<String, CancellationToken>,
        tails: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let attempt = self.state.agents.get(id).map_or(0, |a| a.attempt) + 1;
            let mut task = self.task_for(id, attempt)?;
            if let (Some(context), Some(tail)) = (&mut task.retry_context, tails.get(id))
                && !tail.is_empty()
            {
                context.push_str("\n--- last output ---\n");
                context.push_str(tail);
            }
            tasks.push(task);
        }
        let started = tasks
            .iter()
            .map(|t| Event::AgentStarted {
                agent: t.agent.agent_id.clone(),
                attempt: t.attempt,
            })
            .collect();
        self.stage(started);
        for task in tasks {
            let id = task.agent.agent_id.clone();
            let attempt = task.attempt;
            let token = CancellationToken::new();
            running.insert(id.clone(), token.clone());
            let forward = tx.clone();
            let gates = self
                .gate_ctx
                .clone()
                .filter(|_| !task.agent.quality_gates.is_empty());
            match self.options.workspaces.clone() {
                None if gates.is_none() => {
                    let (out_tx, out_rx) = mpsc::unbounded_channel();
                    let run = self.driver.run(task, out_tx, token);
                    self.launches.push(Box::pin(async move {
                        let result = forward_until_done(&id, run, out_rx, &forward).await;
                        let _ = forward.send(Message::Done(id, attempt, result));
                    }));
                }
                None => {
                    let driver = Arc::clone(&self.driver);
                    self.launches.push(Box::pin(async move {
                        let agent = task.agent.clone();
                        let dir = task.workdir.clone();
                        let (out_tx, out_rx) = mpsc::unbounded_channel();
                        let run = driver.run(task, out_tx, token.clone());
                        let mut result = forward_until_done(&id, run, out_rx, &forward).await;
                        if let Some(gates) = gates {
                            gate_attempt(&gates, &agent, &dir, &token, &forward, &mut result).await;
                        }
                        let _ = forward.send(Message::Done(id, attempt, result));
                    }));
                }
                Some(ws) => {
                    let driver = Arc::clone(&self.driver);
                    self.launches.push(Box::pin(async move {
                        let result =
                            run_in_worktree(&ws, driver, task, token, gates, &forward).await;
                        let _ = forward.send(Message::Done(id, attempt, result));
                    }));
                }
            }
        }
        // The attempts start once their `AgentStarted` events are durable.
        self.commit_later().await
    }

    fn protocol_event(agent: &str, event: ProtocolEvent) -> Event {
        agent_event(agent, event)
    }

    /// Runs until every agent is finished, the run pauses, or `interrupt` fires.
    pub async fn run(self, interrupt: CancellationToken) -> Result<RunOutcome, EngineError> {
        self.finish(interrupt).await.map(|f| f.outcome)
    }

    /// [`Self::run`], handing back the engine (its final state and plan,
    /// and all it built for the run) instead of freeing it: the caller
    /// decides when it goes (the `run` and `resume` commands, about to exit,
    /// never free it; see `cli::run`). The run history is recorded before
    /// this returns, by `RunOptions::at_end`.
    pub async fn finish(mut self, interrupt: CancellationToken) -> Result<Finished, EngineError> {
        // Before any agent starts: the janitor (which kills agents if this
        // process dies) runs and knows this process's agents by their tag.
        crate::drivers::janitor::start();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let (committed_tx, committed_rx) = mpsc::unbounded_channel();
        self.writer = Some(writer::spawn(self.journal.clone(), committed_tx));
        self.committed = Some(committed_rx);
        let mut running: HashMap<String, CancellationToken> = HashMap::new();
        let mut tails: HashMap<String, String> = HashMap::new();
        let mut stop: Option<Stop> = None;
        let mut current_wave: Option<usize> = None;
        let waves_mode = self.options.mode != ExecutionMode::Continuous;
        let mut status_tick = self.options.status_interval.map(tokio::time::interval);
        if let Some(tick) = &mut status_tick {
            tick.tick().await;
        }
        // The first refresh comes one interval in, not at once: rewriting a
        // large run's status.json right as its first agents start held the
        // loop up ~3 ms while they finished (the first one is written
        // 250 ms into the run, or at its end if that comes first).
        let mut refresh = tokio::time::interval_at(Instant::now() + STATUS_REFRESH, STATUS_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            stop_if_interrupted(&mut stop, &interrupt, &running);
            if stop.is_none() && self.gate_ctx.is_some() {
                stop = self.checkpoint_waves(&interrupt).await?;
            }
            if stop.is_none() && self.options.mode == ExecutionMode::Adaptive {
                stop = self.adapt_between_waves(&interrupt).await?;
            }
            if stop.is_none() && !self.to_merge.is_empty() {
                stop = self.integrate(&interrupt).await?;
            }
            stop_if_interrupted(&mut stop, &interrupt, &running);
            if stop.is_none() {
                let free = self
                    .options
                    .concurrency
                    .max(1)
                    .saturating_sub(running.len());
                let decision = self.scheduler.decide(free);
                let blocks: Vec<Event> = decision
                    .block
                    .into_iter()
                    .map(|(agent, by, reason)| Event::AgentBlocked { agent, by, reason })
                    .collect();
                self.stage(blocks);
                if waves_mode && decision.current_wave != current_wave {
                    let mut events = Vec::new();
                    if let Some(w) = current_wave {
                        events.push(self.wave_finished(w));
                    }
                    if let Some(w) = decision.current_wave {
                        events.push(Event::WaveStarted {
                            wave: self.scheduler.index().wave_ids[w].clone(),
                        });
                    }
                    current_wave = decision.current_wave;
                    self.stage(events);
                }
                let due: Vec<String> = self
                    .retry_at
                    .iter()
                    .filter(|(_, at)| **at <= Instant::now())
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut batch: Vec<String> = Vec::new();
                for id in due.into_iter().chain(decision.start) {
                    if running.len() + batch.len() >= self.options.concurrency.max(1) {
                        break;
                    }
                    if running.contains_key(&id) || batch.contains(&id) {
                        continue;
                    }
                    if let Some(at) = self.retry_at.get(&id) {
                        if *at > Instant::now() {
                            continue;
                        }
                        self.retry_at.remove(&id);
                    }
                    batch.push(id);
                }
                self.start_agents(&batch, &tx, &mut running, &tails).await?;
            }
            if running.is_empty() && (self.retry_at.is_empty() || stop.is_some()) {
                if stop.is_some() || self.scheduler.is_idle(current_wave) {
                    break;
                }
                continue;
            }
            let next_retry = self.retry_at.values().min().copied();
            tokio::select! {
                Some(message) = rx.recv() => {
                    let mut batch = vec![message];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    let mut events = Vec::new();
                    let mut finished = Vec::new();
                    for message in batch {
                        match message {
                            Message::Output(agent, AgentOutput::Protocol(p)) => events.push(Self::protocol_event(&agent, p)),
                            Message::Output(_, AgentOutput::Spawned { .. }) => {}
                            Message::Event(event) => events.push(event),
                            Message::Output(agent, AgentOutput::Usage { model, usage, cost_usd }) => {
                                events.push(Event::AgentUsage { agent, model, usage, cost_usd });
                            }
                            Message::Output(agent, AgentOutput::Session { id }) => {
                                let attempt = self.state.agents.get(&agent).map(|a| a.attempt);
                                events.push(Event::AgentSession { agent, attempt, session_id: id });
                            }
                            Message::Output(agent, AgentOutput::Claimed { worker, attempt: claim }) => {
                                let attempt = self.state.agents.get(&agent).map_or(0, |a| a.attempt);
                                events.push(Event::AgentClaimed { agent, attempt, worker, claim });
                            }
                            Message::Output(agent, AgentOutput::Tools { uses }) => {
                                let attempt = self.state.agents.get(&agent).map(|a| a.attempt);
                                events.push(Event::AgentTools { agent, attempt, uses });
                            }
                            Message::Done(agent, attempt, result) => finished.push((agent, attempt, result)),
                        }
                    }
                    self.stage(events);
                    if let Some(budget) = self.options.max_budget_usd
                        && stop.is_none()
                        && self.state.cost_usd() > budget
                    {
                        let spent_usd = self.state.cost_usd();
                        self.stage(vec![Event::RunBudgetExceeded { spent_usd, budget_usd: budget }]);
                        stop = Some(Stop::Everything);
                        running.values().for_each(CancellationToken::cancel);
                    }
                    for (agent, attempt, mut result) in finished {
                        running.remove(&agent);
                        let (conflicts, pause) = self.scope_verdict(&agent, &mut result);
                        self.stage(conflicts);
                        if pause.is_some() && stop.is_none() {
                            stop = pause;
                        }
                        // Only a failed attempt's tail is needed (as retry context); keeping
                        // every agent's would grow with the plan.
                        if result.outcome.is_success() {
                            tails.remove(&agent);
                        } else {
                            tails.insert(agent.clone(), result.tail.clone());
                        }
                        let events = self.finish_events(&agent, attempt, &result, stop);
                        self.stage(events);
                        if self.state.agents.get(&agent).is_some_and(|a| a.phase == AgentPhase::Completed) {
                            self.queue_merge(&agent);
                        }
                        let mut failed_for_good = !result.outcome.is_success()
                            && result.outcome.is_failure()
                            && !self.retry_at.contains_key(&agent);
                        if failed_for_good && stop.is_none() && self.options.mode == ExecutionMode::Adaptive {
                            stop = self.adapt_after_failure(&agent, &interrupt).await?;
                            // An adaptation may have sent it back (or out of the plan).
                            failed_for_good = self.state.agents.get(&agent).is_some_and(|a| a.phase == AgentPhase::Failed);
                        }
                        if failed_for_good && stop.is_none() {
                            match self.options.failure_strategy {
                                FailureStrategy::ContinueOthers => {}
                                FailureStrategy::StopAll => {
                                    stop = Some(Stop::Everything);
                                    running.values().for_each(CancellationToken::cancel);
                                }
                                FailureStrategy::PauseWave => stop = Some(Stop::Pause),
                            }
                        }
                    }
                }
                Some(committed) = recv_opt(&mut self.committed) => self.on_committed(committed)?,
                () = sleep_until_opt(next_retry) => {}
                () = interrupt.cancelled(), if stop != Some(Stop::Interrupted) => {
                    stop = Some(Stop::Interrupted);
                    running.values().for_each(CancellationToken::cancel);
                }
                _ = tick_opt(&mut status_tick) => self.write_status(true)?,
                _ = refresh.tick() => {
                    let found = self.anomalies.check(Instant::now(), &self.state);
                    self.stage(found);
                    self.write_status(false)?;
                    self.tell_agents_ended();
                }
            }
            if stop.is_some() {
                self.flush().await?;
            }
        }
        if waves_mode
            && stop.is_none()
            && let Some(w) = current_wave
        {
            let event = self.wave_finished(w);
            self.record(vec![event]).await?;
        }
        let all_completed = || {
            self.state
                .agents
                .values()
                .all(|a| a.phase == AgentPhase::Completed)
        };
        if stop.is_none() && self.gate_ctx.is_some() && all_completed() {
            stop = self.final_checkpoint(&interrupt).await?;
        }
        // A gate stage that failed and was let through (`continue`) fails the run.
        let gates_failed = self
            .state
            .stages
            .values()
            .any(|s| !s.passed && s.failed_action.is_some());
        let outcome = match stop {
            Some(Stop::Interrupted) => {
                self.record(vec![Event::RunInterrupted {
                    reason: "interrupted (Ctrl-C or SIGTERM)".into(),
                }])
                .await?;
                RunOutcome::Interrupted
            }
            Some(Stop::Pause) => RunOutcome::Paused,
            Some(Stop::Everything) => RunOutcome::Failed,
            // Waiting for `ingest`: a person has to act.
            None if self
                .state
                .agents
                .values()
                .any(|a| a.phase == AgentPhase::AwaitingInput) =>
            {
                RunOutcome::Paused
            }
            None if !gates_failed
                && self
                    .state
                    .agents
                    .values()
                    .all(|a| a.phase == AgentPhase::Completed) =>
            {
                RunOutcome::Succeeded
            }
            None => RunOutcome::Failed,
        };
        let outcome = if outcome == RunOutcome::Succeeded && !self.land_if_asked().await? {
            RunOutcome::Paused
        } else {
            outcome
        };
        if outcome != RunOutcome::Interrupted {
            self.record(vec![Event::RunFinished { outcome }]).await?;
        }
        // Nothing is journaled after `RunFinished`. Three things finish the
        // run side by side: the journal closes (a checkpoint of its WAL) once
        // the agents' logs, written in the background (see
        // `drivers::transcript`), are complete; the final files are written;
        // and the at-end work (the run history) is prepared and started.
        // Stopping the writer closes its connection.
        let writer_stopped = self.writer.take().map(writer::Writer::stop);
        let journal = self.journal.clone();
        let closing = tokio::spawn(async move {
            crate::drivers::transcript::flush_all().await;
            if let Some(stopped) = writer_stopped {
                // Its connection closes first: the pool's is then the last
                // one, and its close checkpoints the WAL into the file.
                stopped.await;
            }
            journal.close().await;
        });
        self.status_dirty = false;
        let at_end_work = self.options.at_end.take();
        let runtime = tokio::runtime::Handle::current();
        let (written, at_end) = off_the_workers(|| {
            let report =
                crate::report::summary::run_report_for(&self.state, Some(&self.plan), now_ms());
            std::thread::scope(|scope| {
                let at_end = at_end_work.map(|work| {
                    let (state, plan, report) = (&self.state, &self.plan, &report);
                    scope.spawn(move || runtime.spawn((work.end)(state, plan, report)))
                });
                let written = self.write_final_files(&report);
                (written, at_end.map(std::thread::ScopedJoinHandle::join))
            })
        });
        let _ = closing.await;
        written?;
        for reporter in &mut self.reporters {
            reporter.finish(&self.state, &self.plan);
        }
        match at_end {
            Some(Ok(task)) => {
                let _ = task.await;
            }
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => {}
        }
        Ok(Finished {
            outcome,
            engine: self,
        })
    }

    fn wave_finished(&self, w: usize) -> Event {
        let index = self.scheduler.index();
        let ok = index.wave_members[w].clone().all(|i| {
            self.state
                .agents
                .get(&index.ids[i])
                .is_some_and(|a| a.phase == AgentPhase::Completed)
        });
        Event::WaveFinished {
            wave: index.wave_ids[w].clone(),
            ok,
        }
    }

    fn finish_events(
        &mut self,
        agent: &str,
        attempt: u32,
        result: &DriverResult,
        stop: Option<Stop>,
    ) -> Vec<Event> {
        let mut events = vec![Event::AgentFinished {
            agent: agent.to_string(),
            attempt,
            outcome: result.outcome.clone(),
            exit_code: result.exit_code,
        }];
        let failed = result.outcome.is_failure();
        let max_retries = self
            .agent_def(agent)
            .and_then(|a| a.max_retries)
            .unwrap_or(0);
        if failed && stop.is_none() && attempt <= max_retries {
            let delay =
                retry::backoff(self.options.retry_base, self.options.retry_max, attempt + 1);
            let reason = match &result.outcome {
                AgentOutcome::Failed { reason } => reason.clone(),
                AgentOutcome::TimedOut => "timed out".into(),
                AgentOutcome::Stalled => "stalled: no output for too long".into(),
                _ => "failed".into(),
            };
            self.retry_at
                .insert(agent.to_string(), Instant::now() + delay);
            events.push(Event::AgentRetrying {
                agent: agent.to_string(),
                next_attempt: attempt + 1,
                delay_ms: delay.as_millis() as u64,
                reason,
            });
        }
        events
    }

    /// The run's last `status.json`, `report.json`, `report.md` (and
    /// `gates.junit.xml`), written side by side: each waits for its own
    /// `fsync`, which on a disk takes longer than writing the bytes; then
    /// one flush of the run folder makes all their renames durable (a flush
    /// of the folder per file cost up to two more flushes of the disk).
    fn write_final_files(&self, report: &RunReport) -> Result<(), EngineError> {
        let (run_dir, state, plan) = (&self.options.run_dir, &self.state, &self.plan);
        let (status, reports) = std::thread::scope(|scope| {
            let status = scope.spawn(|| write_status_file(run_dir, state, plan, true));
            let reports = self.write_reports(report);
            (status.join(), reports)
        });
        match status {
            Ok(written) => written?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
        reports?;
        // One flush of the folder for every file renamed into it.
        crate::report::status::sync_dir(run_dir);
        Ok(())
    }

    /// Writes the report files, each flushed to disk; their folder's entries
    /// are flushed by the caller ([`Self::write_final_files`]).
    fn write_reports(&self, report: &RunReport) -> Result<(), EngineError> {
        use std::io::Write;
        let io = |path: PathBuf| move |source| EngineError::Io { path, source };
        // report.json goes straight to its file: a large run's is megabytes.
        let json_path = self.options.run_dir.join("report.json");
        std::thread::scope(|scope| {
            let json = scope.spawn(|| {
                crate::report::status::write_atomically_leaving_dir(&json_path, |out| {
                    crate::report::summary::write_report_json(report, out)
                })
            });
            let path = self.options.run_dir.join("report.md");
            let markdown = crate::report::summary::report_markdown(report);
            crate::report::status::write_atomically_leaving_dir(&path, |out| {
                out.write_all(markdown.as_bytes())
            })
            .map_err(io(path.clone()))?;
            if !self.state.gate_runs.is_empty() {
                let results: Vec<(String, crate::gates::GateResult)> = self
                    .state
                    .gate_runs
                    .iter()
                    .map(|run| (run.service.clone(), run.result.clone()))
                    .collect();
                let path = self.options.run_dir.join("gates.junit.xml");
                let xml = crate::gates::junit_xml(&results);
                crate::report::status::write_atomically_leaving_dir(&path, |out| {
                    out.write_all(xml.as_bytes())
                })
                .map_err(io(path.clone()))?;
            }
            match json.join() {
                Ok(written) => written.map_err(io(json_path.clone())),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

/// Stops the run (and its running attempts) when an interrupt came while the
/// loop was not listening for one: while it waited for the analyzer, say. The
/// loop checks before it starts anything.
fn stop_if_interrupted(
    stop: &mut Option<Stop>,
    interrupt: &CancellationToken,
    running: &HashMap<String, CancellationToken>,
) {
    if stop.is_none() && interrupt.is_cancelled() {
        *stop = Some(Stop::Interrupted);
        running.values().for_each(CancellationToken::cancel);
    }
}

/// Forwards what a running attempt observes to the loop until it ends, so
/// every observation reaches the loop before the attempt's `Done` (nothing
/// said just before exiting is lost).
async fn forward_until_done(
    id: &str,
    run: futures::future::BoxFuture<'static, DriverResult>,
    mut out_rx: mpsc::UnboundedReceiver<AgentOutput>,
    forward: &mpsc::UnboundedSender<Message>,
) -> DriverResult {
    let mut run = run;
    let result = loop {
        tokio::select! {
            biased;
            Some(output) = out_rx.recv() => {
                let _ = forward.send(Message::Output(id.to_string(), output));
            }
            result = &mut run => break result,
        }
    };
    while let Ok(output) = out_rx.try_recv() {
        let _ = forward.send(Message::Output(id.to_string(), output));
    }
    result
}

/// One attempt in its own worktree: prepares the worktree (from the
/// integration branch's tip), runs the driver there, then commits what the
/// agent left and reports the changed files.
async fn run_in_worktree(
    ws: &crate::workspace::Workspaces,
    driver: Arc<dyn Driver>,
    mut task: AgentTask,
    token: CancellationToken,
    gates: Option<Arc<gates::GateContext>>,
    forward: &mpsc::UnboundedSender<Message>,
) -> DriverResult {
    let id = task.agent.agent_id.clone();
    let attempt = task.attempt;
    let failed = |reason: String| DriverResult {
        outcome: crate::journal::AgentOutcome::Failed { reason },
        exit_code: None,
        tail: String::new(),
    };
    let prepared = tokio::select! {
        prepared = ws.prepare(&task.agent, attempt) => prepared,
        () = token.cancelled() => return DriverResult {
            outcome: crate::journal::AgentOutcome::Cancelled,
            exit_code: None,
            tail: String::new(),
        },
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot prepare the agent's worktree: {e}")),
    };
    let _ = forward.send(Message::Event(Event::WorktreeReady {
        agent: id.clone(),
        attempt,
        path: prepared.path.clone(),
        branch: prepared.branch.clone(),
        start_commit: prepared.start_commit.clone(),
    }));
    task.workdir = prepared.path.join(task.agent.working_directory());
    if let Err(e) = std::fs::create_dir_all(&task.workdir) {
        return failed(format!("cannot create {}: {e}", task.workdir.display()));
    }
    let agent = task.agent.clone();
    let workdir = task.workdir.clone();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let run = driver.run(task, out_tx, token.clone());
    let mut result = forward_until_done(&id, run, out_rx, forward).await;
    match ws
        .snapshot(&agent, &prepared.path, &prepared.start_commit, attempt)
        .await
    {
        Ok(snapshot) => {
            let _ = forward.send(Message::Event(Event::WorktreeCommitted {
                agent: id,
                attempt,
                commit: snapshot.commit,
                changed_files: snapshot.changed,
                outside_scope: snapshot.outside_scope,
            }));
        }
        Err(e) if result.outcome.is_success() => {
            result.outcome = crate::journal::AgentOutcome::Failed {
                reason: format!("cannot commit the agent's work: {e}"),
            };
        }
        Err(_) => {}
    }
    if let Some(gates) = gates {
        gate_attempt(&gates, &agent, &workdir, &token, forward, &mut result).await;
        // What the gates built or changed is not the agent's work.
        let _ = ws.restore(&prepared.path).await;
    }
    result
}

/// An agent's own gates after a successful attempt (see [`gates`]): their
/// results are journaled, and a failing gate fails the attempt.
async fn gate_attempt(
    ctx: &gates::GateContext,
    agent: &crate::plan::Agent,
    dir: &Path,
    token: &CancellationToken,
    forward: &mpsc::UnboundedSender<Message>,
    result: &mut DriverResult,
) {
    if !result.outcome.is_success() {
        return;
    }
    let (events, failure) = gates::agent_gates(ctx, agent, dir, token).await;
    for event in events {
        let _ = forward.send(Message::Event(event));
    }
    if let Some(reason) = failure {
        result.outcome = crate::journal::AgentOutcome::Failed { reason };
    }
}

/// The journal event of a STATUS-protocol event of `agent`.
pub fn agent_event(agent: &str, event: ProtocolEvent) -> Event {
    let agent = agent.to_string();
    match event {
        ProtocolEvent::Status { status, text } => Event::AgentStatus {
            agent,
            status,
            text,
        },
        ProtocolEvent::Report(report) => Event::AgentReport { agent, report },
        ProtocolEvent::Error(report) => Event::AgentError { agent, report },
        ProtocolEvent::Gate(line) => Event::AgentGateClaim { agent, line },
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn tick_opt(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

pub use crate::journal::now_ms;
