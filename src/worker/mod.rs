//! The worker: claims ready attempts from the PostgreSQL queue, runs them
//! with the local drivers, and streams what happens back (see
//! [`crate::store::queue`] for leases and fencing).
//!
//! One loop claims as many attempts as it has free slots (`capacity`),
//! whenever it is woken: by `NOTIFY llmo_ready`, by an attempt ending, or
//! every `idle_poll` (to take over attempts whose lease expired). Each claimed
//! attempt runs as its own task; a heartbeat task renews all the worker's
//! leases every `heartbeat`, and stops an attempt at once when its lease was
//! lost (the row moved on) or the coordinator asked to cancel it. Agents run
//! in place under the worker's `workdir` (no git worktrees).
//!
//! Stopping (`stop` fires): no new claims; running attempts finish and
//! report, then [`serve`] returns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::drivers::{AgentOutput, Driver, DriverResult};
use crate::journal::AgentOutcome;
use crate::plan::{Agent, Platform};
use crate::store::queue::{CANCEL_CHANNEL, Claimed, Queue, READY_CHANNEL};
use crate::store::wire::{WireOutput, WireResult, WireTask};
use crate::store::{PgStore, StoreError};

/// Builds the local driver for an agent.
pub trait DriverFactory: Send + Sync {
    /// The driver that runs `agent` (the plan's platform is `platform`), or why none can.
    fn driver(&self, agent: &Agent, platform: Platform) -> Result<Arc<dyn Driver>, String>;
}

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// This worker's id (unique among the store's workers).
    pub id: String,
    /// Most attempts at once.
    pub capacity: usize,
    /// Only attempts with these routing names (see
    /// [`crate::store::wire::routing_name`]); `None` takes every one.
    pub platforms: Option<Vec<String>>,
    /// Lease length.
    pub lease: Duration,
    /// Heartbeat interval (well under the lease).
    pub heartbeat: Duration,
    /// Where agents run.
    pub workdir: PathBuf,
    /// Without notifications, look for work this often.
    pub idle_poll: Duration,
    /// Exit after being idle this long.
    pub idle_exit: Option<Duration>,
    /// Print a line per attempt.
    pub verbose: bool,
}

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Attempts claimed.
    pub claimed: u64,
    /// Results the queue accepted.
    pub finished: u64,
    /// Results rejected because the lease had moved on.
    pub rejected: u64,
}

/// What stops a worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Key = (String, String, i32);

/// Attempts running here: their cancel tokens.
type Running = Arc<Mutex<HashMap<Key, CancellationToken>>>;

fn key(c: &Claimed) -> Key {
    (c.run_id.clone(), c.agent.clone(), c.attempt)
}

/// Serves attempts until `stop` fires (or `idle_exit` passes idle).
pub async fn serve(
    store: PgStore,
    options: WorkerOptions,
    factory: Arc<dyn DriverFactory>,
    stop: CancellationToken,
) -> Result<WorkerSummary, WorkerError> {
    // Before any claim: the janitor (which kills this worker's agents if the
    // worker dies, even by SIGKILL right after a spawn) runs and knows them
    // by their tag, as for `run`.
    crate::drivers::janitor::start();
    let queue = Queue::new(store);
    let running: Running = Arc::default();
    let wake = Arc::new(tokio::sync::Notify::new());
    let beat_now = Arc::new(tokio::sync::Notify::new());
    listen(&queue, &options, Arc::clone(&wake), Arc::clone(&beat_now));
    let heartbeat = tokio::spawn(heartbeat_loop(
        queue.clone(),
        options.clone(),
        Arc::clone(&running),
        beat_now,
    ));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<bool>();
    let mut summary = WorkerSummary::default();
    let mut idle_since = tokio::time::Instant::now();
    let mut store_errors = 0u32;
    while !stop.is_cancelled() {
        let busy = running.lock().map_or(0, |r| r.len());
        let free = options.capacity.saturating_sub(busy);
        let mut claimed_now = 0;
        if free > 0 {
            match queue
                .claim(
                    &options.id,
                    options.platforms.as_deref(),
                    free,
                    options.lease,
                )
                .await
            {
                Ok(claims) => {
                    store_errors = 0;
                    claimed_now = claims.len();
                    for claim in claims {
                        summary.claimed += 1;
                        let cancel = CancellationToken::new();
                        if let Ok(mut r) = running.lock() {
                            r.insert(key(&claim), cancel.clone());
                        }
                        tokio::spawn(run_claim(
                            queue.clone(),
                            options.clone(),
                            Arc::clone(&factory),
                            claim,
                            cancel,
                            Arc::clone(&running),
                            done_tx.clone(),
                        ));
                    }
                }
                Err(e) => {
                    store_errors += 1;
                    eprintln!("worker {}: cannot claim: {e}", options.id);
                    if store_errors > 30 {
                        return Err(e.into());
                    }
                }
            }
        }
        let busy = running.lock().map_or(0, |r| r.len());
        if busy > 0 || claimed_now > 0 {
            idle_since = tokio::time::Instant::now();
        } else if let Some(limit) = options.idle_exit
            && idle_since.elapsed() >= limit
        {
            break;
        }
        if claimed_now > 0 && busy < options.capacity {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            Some(accepted) = done_rx.recv() => {
                count(&mut summary, accepted);
                while let Ok(accepted) = done_rx.try_recv() {
                    count(&mut summary, accepted);
                }
            }
            _ = tokio::time::sleep(options.idle_poll) => {}
            _ = stop.cancelled() => {}
        }
    }
    // Let running attempts finish and report.
    drop(done_tx);
    while let Some(accepted) = done_rx.recv().await {
        count(&mut summary, accepted);
    }
    heartbeat.abort();
    crate::drivers::transcript::flush_all().await;
    Ok(summary)
}

fn count(summary: &mut WorkerSummary, accepted: bool) {
    if accepted {
        summary.finished += 1;
    } else {
        summary.rejected += 1;
    }
}

/// Wakes the loop on `llmo_ready` and the heartbeat on `llmo_cancel` (for
/// this worker). Without a listener, the worker polls.
fn listen(
    queue: &Queue,
    options: &WorkerOptions,
    wake: Arc<tokio::sync::Notify>,
    beat_now: Arc<tokio::sync::Notify>,
) {
    let url = queue.store().url().to_string();
    let place = queue.store().place().to_string();
    let id = options.id.clone();
    tokio::spawn(async move {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen_all([READY_CHANNEL, CANCEL_CHANNEL]).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "worker {id}: store {place}: cannot LISTEN ({}); polling",
                    crate::store::url::scrub(&e.to_string(), &url)
                );
                return;
            }
        };
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == CANCEL_CHANNEL => {
                    if n.payload() == id {
                        beat_now.notify_one();
                    }
                }
                Ok(_) => wake.notify_one(),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
}

/// Renews the worker's leases; stops attempts whose lease is lost or whose
/// cancellation was asked for.
async fn heartbeat_loop(
    queue: Queue,
    options: WorkerOptions,
    running: Running,
    beat_now: Arc<tokio::sync::Notify>,
) {
    let mut tick = tokio::time::interval(options.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = beat_now.notified() => {}
        }
        let held: Vec<(Key, CancellationToken)> = match running.lock() {
            Ok(r) => r.iter().map(|(k, c)| (k.clone(), c.clone())).collect(),
            Err(_) => continue,
        };
        if held.is_empty() {
            continue;
        }
        let renewed = match queue.heartbeat(&options.id, options.lease).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("worker {}: heartbeat failed: {e}", options.id);
                continue;
            }
        };
        let renewed: HashMap<Key, bool> = renewed
            .into_iter()
            .map(|r| ((r.run_id, r.agent, r.attempt), r.cancel_requested))
            .collect();
        for (key, cancel) in held {
            match renewed.get(&key) {
                Some(false) => {}
                Some(true) => {
                    if !cancel.is_cancelled() {
                        eprintln!(
                            "worker {}: {} attempt {} of run {}: cancelled by the coordinator",
                            options.id, key.1, key.2, key.0
                        );
                        cancel.cancel();
                    }
                }
                None => {
                    // The lease expired or moved on: the result would be rejected.
                    // An attempt that ended meanwhile is not in `running` any more;
                    // re-check to avoid stopping what was just claimed again.
                    let still = running.lock().is_ok_and(|r| r.contains_key(&key));
                    if still && !cancel.is_cancelled() {
                        eprintln!(
                            "worker {}: {} attempt {} of run {}: lease lost, stopping the agent",
                            options.id, key.1, key.2, key.0
                        );
                        cancel.cancel();
                    }
                }
            }
        }
    }
}

/// Runs one claimed attempt and reports it.
async fn run_claim(
    queue: Queue,
    options: WorkerOptions,
    factory: Arc<dyn DriverFactory>,
    claim: Claimed,
    cancel: CancellationToken,
    running: Running,
    done: mpsc::UnboundedSender<bool>,
) {
    let result = execute(&queue, &options, factory.as_ref(), &claim, cancel).await;
    let accepted = report(&queue, &options, &claim, result).await;
    if let Ok(mut r) = running.lock() {
        r.remove(&key(&claim));
    }
    let _ = done.send(accepted);
}

async fn execute(
    queue: &Queue,
    options: &WorkerOptions,
    factory: &dyn DriverFactory,
    claim: &Claimed,
    cancel: CancellationToken,
) -> DriverResult {
    let wire: WireTask = match serde_json::from_str(&claim.task) {
        Ok(t) => t,
        Err(e) => {
            return failed(format!(
                "worker {}: the queued task is unreadable: {e}",
                options.id
            ));
        }
    };
    let driver = match factory.driver(&wire.agent, wire.platform) {
        Ok(d) => d,
        Err(e) => return failed(format!("worker {}: {e}", options.id)),
    };
    let task = wire.into_task(&options.workdir, claim.attempt.max(1) as u32);
    if let Err(e) = std::fs::create_dir_all(&task.workdir) {
        return failed(format!(
            "worker {}: cannot create {}: {e}",
            options.id,
            task.workdir.display()
        ));
    }
    if options.verbose {
        eprintln!(
            "worker {}: running {} attempt {} of run {}",
            options.id, claim.agent, claim.attempt, claim.run_id
        );
    }
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<AgentOutput>();
    let mut handle = tokio::spawn(driver.run(task, out_tx, cancel.clone()));
    let mut fenced = false;
    let result = loop {
        tokio::select! {
            joined = &mut handle => break joined.unwrap_or_else(|e| failed(format!("the driver stopped: {e}"))),
            Some(first) = out_rx.recv() => {
                let mut batch = vec![first];
                while let Ok(more) = out_rx.try_recv() {
                    batch.push(more);
                }
                if !fenced && !post(queue, options, claim, batch).await {
                    fenced = true;
                    cancel.cancel();
                }
            }
        }
    };
    let rest: Vec<AgentOutput> = std::iter::from_fn(|| out_rx.try_recv().ok()).collect();
    if !fenced && !rest.is_empty() {
        post(queue, options, claim, rest).await;
    }
    result
}

/// Streams outputs back; false when the lease moved on.
async fn post(
    queue: &Queue,
    options: &WorkerOptions,
    claim: &Claimed,
    outputs: Vec<AgentOutput>,
) -> bool {
    let bodies: Vec<String> = outputs
        .into_iter()
        .filter_map(WireOutput::from_output)
        .filter_map(|o| serde_json::to_string(&o).ok())
        .collect();
    if bodies.is_empty() {
        return true;
    }
    match queue.post_outputs(&options.id, claim, &bodies).await {
        Ok(held) => held,
        Err(e) => {
            eprintln!(
                "worker {}: cannot stream output of {}: {e}",
                options.id, claim.agent
            );
            true
        }
    }
}

/// Reports the result; true when the queue accepted it.
async fn report(
    queue: &Queue,
    options: &WorkerOptions,
    claim: &Claimed,
    result: DriverResult,
) -> bool {
    let body = match serde_json::to_string(&WireResult::from(result)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "worker {}: cannot encode the result of {}: {e}",
                options.id, claim.agent
            );
            return false;
        }
    };
    for _ in 0..5 {
        match queue.finish(&options.id, claim, &body).await {
            Ok(true) => {
                if options.verbose {
                    eprintln!(
                        "worker {}: finished {} attempt {} of run {}",
                        options.id, claim.agent, claim.attempt, claim.run_id
                    );
                }
                return true;
            }
            Ok(false) => {
                eprintln!(
                    "worker {}: late result of {} attempt {} of run {} rejected: its lease moved on",
                    options.id, claim.agent, claim.attempt, claim.run_id
                );
                return false;
            }
            Err(e) => {
                eprintln!("worker {}: cannot report {}: {e}", options.id, claim.agent);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    false
}

fn failed(reason: String) -> DriverResult {
    DriverResult {
        outcome: AgentOutcome::Failed { reason },
        exit_code: None,
        tail: String::new(),
    }
}
