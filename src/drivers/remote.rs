//! The `remote` driver: a coordinator (`run --store postgres://… --workers-only`)
//! runs no agent itself; each attempt is queued in the PostgreSQL store for
//! workers on other machines (see [`crate::store::queue`] and
//! [`crate::worker`]).
//!
//! [`Driver::run`] queues the attempt, then follows its row: it reports the
//! worker that claims it ([`AgentOutput::Claimed`], journaled as
//! `AgentClaimed`), forwards the outputs the worker streams back as if the
//! agent ran here, and returns the result the queue accepted. Waiting is
//! driven by one `LISTEN llmo_agent` connection per coordinator (a
//! [`Hub`] waking the attempt concerned), with a poll as the safety net. The
//! hub also reaps the run's expired leases every [`REAP_INTERVAL`], so an
//! attempt whose worker died is queued again with attempt + 1 even when no
//! worker is idle to find it.
//!
//! Cancellation (`cancel` fires): the row is flagged, a ready attempt ends at
//! once, a claimed one when its worker reports `cancelled` or, if the worker
//! is gone, when its lease expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{AgentOutput, AgentTask, Driver, DriverResult};
use crate::journal::AgentOutcome;
use crate::plan::Platform;
use crate::store::queue::{AGENT_CHANNEL, Queue, RowState};
use crate::store::wire::{WireOutput, WireResult, WireTask, routing_name};

/// How often a waiting attempt reads its row without being woken.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the coordinator re-queues the run's expired leases.
pub const REAP_INTERVAL: Duration = Duration::from_millis(500);
/// How long store errors may go on before an attempt gives up.
const STORE_PATIENCE: Duration = Duration::from_secs(60);

type Key = (String, String);

/// Wakes the attempts of one coordinator when their rows change.
#[derive(Default)]
struct Hub {
    waiters: Mutex<HashMap<Key, Arc<Notify>>>,
}

impl Hub {
    fn register(&self, key: Key) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(key, Arc::clone(&notify));
        }
        notify
    }

    fn unregister(&self, key: &Key) {
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(key);
        }
    }

    fn wake(&self, payload: &str) {
        let Some((run, agent)) = payload.split_once('\n') else {
            return;
        };
        let key = (run.to_string(), agent.to_string());
        if let Ok(w) = self.waiters.lock()
            && let Some(n) = w.get(&key)
        {
            n.notify_one();
        }
    }
}

/// Runs every agent on remote workers through the queue.
pub struct RemoteDriver {
    queue: Queue,
    run_id: String,
    platform: Platform,
    uses_prompt: bool,
    hub: Arc<Hub>,
    started: OnceLock<()>,
}

impl RemoteDriver {
    /// A driver queuing the attempts of run `run_id` (the plan's platform is
    /// `platform`); `uses_prompt` when some agent's driver takes a prompt.
    pub fn new(queue: Queue, run_id: String, platform: Platform, uses_prompt: bool) -> Self {
        Self {
            queue,
            run_id,
            platform,
            uses_prompt,
            hub: Arc::new(Hub::default()),
            started: OnceLock::new(),
        }
    }

    /// Starts the listener and the reaper (once, on the first attempt, inside the runtime).
    fn start_background(&self) {
        if self.started.set(()).is_err() {
            return;
        }
        let hub = Arc::clone(&self.hub);
        let url = self.queue.store().url().to_string();
        let place = self.queue.store().place().to_string();
        tokio::spawn(async move {
            let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!(
                        "warning: store {place}: cannot LISTEN ({}); polling every {}s",
                        crate::store::url::scrub(&e.to_string(), &url),
                        POLL_INTERVAL.as_secs()
                    );
                    return;
                }
            };
            if let Err(e) = listener.listen(AGENT_CHANNEL).await {
                eprintln!(
                    "warning: store {place}: cannot LISTEN ({}); polling",
                    crate::store::url::scrub(&e.to_string(), &url)
                );
                return;
            }
            loop {
                match listener.recv().await {
                    Ok(n) => hub.wake(n.payload()),
                    Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
                }
            }
        });
        let queue = self.queue.clone();
        let run_id = self.run_id.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = queue.reap(&run_id).await {
                    eprintln!("warning: cannot re-queue expired leases: {e}");
                }
            }
        });
    }
}

fn failed(reason: String) -> DriverResult {
    DriverResult {
        outcome: AgentOutcome::Failed { reason },
        exit_code: None,
        tail: String::new(),
    }
}

/// Unregisters an attempt from the hub when it ends (or is dropped).
struct Registration {
    hub: Arc<Hub>,
    key: Key,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(&self.key);
    }
}

impl Driver for RemoteDriver {
    fn run(
        &self,
        task: AgentTask,
        output: mpsc::UnboundedSender<AgentOutput>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult> {
        self.start_background();
        let queue = self.queue.clone();
        let hub = Arc::clone(&self.hub);
        let platform = self.platform;
        Box::pin(async move {
            let key = (task.run_id.clone(), task.agent.agent_id.clone());
            let notify = hub.register(key.clone());
            let _registration = Registration {
                hub,
                key: key.clone(),
            };
            let routing = routing_name(&task.agent, platform);
            let wire = WireTask::from_task(&task, platform);
            let body = match serde_json::to_string(&wire) {
                Ok(b) => b,
                Err(e) => return failed(format!("cannot encode the task for the queue: {e}")),
            };
            let (run, agent) = (&key.0, &key.1);
            let mut attempt = match queue
                .enqueue(run, agent, task.attempt, &routing, &body)
                .await
            {
                Ok(a) => a,
                Err(e) => return failed(format!("cannot queue the attempt: {e}")),
            };
            follow(&queue, run, agent, &mut attempt, &notify, &output, &cancel).await
        })
    }

    fn uses_prompt(&self) -> bool {
        self.uses_prompt
    }
}

/// Follows the row until the queue holds the attempt's end.
async fn follow(
    queue: &Queue,
    run: &str,
    agent: &str,
    attempt: &mut i32,
    notify: &Notify,
    output: &mpsc::UnboundedSender<AgentOutput>,
    cancel: &CancellationToken,
) -> DriverResult {
    let mut last_output = 0i64;
    let mut announced: Option<(i32, String)> = None;
    let mut cancel_sent = false;
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        match step(
            queue,
            run,
            agent,
            attempt,
            &mut last_output,
            &mut announced,
            output,
        )
        .await
        {
            Ok(Some(result)) => return result,
            Ok(None) => failing_since = None,
            Err(e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > STORE_PATIENCE {
                    return failed(format!(
                        "lost the store for over {}s: {e}",
                        STORE_PATIENCE.as_secs()
                    ));
                }
            }
        }
        if cancel.is_cancelled() && !cancel_sent {
            match queue.request_cancel(run, agent, *attempt).await {
                Ok(()) => cancel_sent = true,
                Err(e) => eprintln!("warning: cannot cancel {agent}: {e}"),
            }
            continue;
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = cancel.cancelled(), if !cancel_sent => {}
        }
    }
}

/// Reads the row once: announces a new claim, forwards new outputs, and
/// returns the result once there is one.
async fn step(
    queue: &Queue,
    run: &str,
    agent: &str,
    attempt: &mut i32,
    last_output: &mut i64,
    announced: &mut Option<(i32, String)>,
    output: &mpsc::UnboundedSender<AgentOutput>,
) -> Result<Option<DriverResult>, crate::store::StoreError> {
    let Some(row) = queue.snapshot(run, agent).await? else {
        return Ok(Some(failed(format!(
            "the queue row of {agent} in run {run} disappeared"
        ))));
    };
    if row.attempt != *attempt {
        *attempt = row.attempt;
        *last_output = 0;
    }
    if matches!(row.state, RowState::Claimed | RowState::Done)
        && let Some(worker) = &row.worker
        && announced.as_ref() != Some(&(row.attempt, worker.clone()))
    {
        *announced = Some((row.attempt, worker.clone()));
        let _ = output.send(AgentOutput::Claimed {
            worker: worker.clone(),
            attempt: row.attempt.max(0) as u32,
        });
    }
    if matches!(row.state, RowState::Claimed | RowState::Done) {
        for (id, body) in queue
            .outputs_after(run, agent, row.attempt, *last_output)
            .await?
        {
            *last_output = id;
            match serde_json::from_str::<WireOutput>(&body) {
                Ok(o) => {
                    let _ = output.send(o.into_output());
                }
                Err(e) => eprintln!("warning: output {id} of {agent} is unreadable: {e}"),
            }
        }
    }
    Ok(match row.state {
        RowState::Done => Some(
            match row
                .result
                .as_deref()
                .map(serde_json::from_str::<WireResult>)
            {
                Some(Ok(r)) => r.into(),
                Some(Err(e)) => failed(format!("the worker's result is unreadable: {e}")),
                None => failed("the queue holds no result".into()),
            },
        ),
        RowState::Cancelled => Some(DriverResult {
            outcome: AgentOutcome::Cancelled,
            exit_code: None,
            tail: String::new(),
        }),
        RowState::Ready | RowState::Claimed => None,
    })
}
