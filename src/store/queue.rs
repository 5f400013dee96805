//! The ready queue: how a coordinator hands agent attempts to workers, and
//! how their results come back, with leases and fencing.
//!
//! One row per agent of a run (`queue`), holding its current attempt:
//!
//! - the coordinator [`Queue::enqueue`]s an attempt (`ready`) and sends
//!   `NOTIFY llmo_ready`;
//! - a worker [`Queue::claim`]s ready rows with `SELECT … FOR UPDATE SKIP
//!   LOCKED` (so two workers never claim one row), taking a lease
//!   (`lease_until`, on the database's clock) that its heartbeats
//!   ([`Queue::heartbeat`]) renew;
//! - a row whose lease expired is queued again with `attempt + 1`, by the
//!   coordinator's [`Queue::reap`] or by the next claim that finds it;
//! - the worker streams outputs ([`Queue::post_outputs`]) and finally the
//!   result ([`Queue::finish`]). Both are fenced: they apply only while the
//!   row is still `claimed` by this worker, at this attempt, under an
//!   unexpired lease. A worker that was partitioned away (or stopped) past
//!   its lease has its late writes rejected.
//!
//! `NOTIFY llmo_agent, '<run>\n<agent>'` tells the coordinator that a row
//! changed (claimed, output, done); `NOTIFY llmo_cancel` tells workers to
//! look for cancellation requests at once. Notifications only wake
//! sleepers: every decision reads the rows, so a lost notification costs a
//! poll interval, never correctness.

use std::time::Duration;

use sqlx::Row;

use super::{PgStore, StoreError};

/// Channel: a run has ready attempts (payload: the run id).
pub const READY_CHANNEL: &str = "llmo_ready";
/// Channel: an agent's row changed (payload: `<run>\n<agent>`).
pub const AGENT_CHANNEL: &str = "llmo_agent";
/// Channel: a cancellation was requested (payload: the worker id).
pub const CANCEL_CHANNEL: &str = "llmo_cancel";

/// Where a queue row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Waiting for a worker.
    Ready,
    /// A worker holds it under a lease.
    Claimed,
    /// A result was accepted.
    Done,
    /// Cancelled before a result.
    Cancelled,
}

impl RowState {
    fn parse(text: &str) -> Self {
        match text {
            "claimed" => Self::Claimed,
            "done" => Self::Done,
            "cancelled" => Self::Cancelled,
            _ => Self::Ready,
        }
    }
}

/// An agent's queue row, as the coordinator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSnapshot {
    /// The current attempt (the fencing token).
    pub attempt: i32,
    /// Where it is.
    pub state: RowState,
    /// The worker holding (or that last held) it.
    pub worker: Option<String>,
    /// The accepted result (JSON of [`super::wire::WireResult`]), when done.
    pub result: Option<String>,
}

/// An attempt a worker claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Its run.
    pub run_id: String,
    /// The agent.
    pub agent: String,
    /// The attempt (fencing token) every write must name.
    pub attempt: i32,
    /// The task (JSON of [`super::wire::WireTask`]).
    pub task: String,
}

/// A lease the heartbeat renewed.
#[derive(Debug, Clone, PartialEq)]
pub struct Renewed {
    /// Its run.
    pub run_id: String,
    /// The agent.
    pub agent: String,
    /// The attempt.
    pub attempt: i32,
    /// The coordinator asked for the attempt to stop.
    pub cancel_requested: bool,
}

/// The queue operations, on a store.
#[derive(Debug, Clone)]
pub struct Queue {
    store: PgStore,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Queue {
    /// The queue of `store`.
    pub fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// The store.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    fn db(&self, e: sqlx::Error) -> StoreError {
        self.store.db(e)
    }

    /// Queues an attempt of `agent` for the engine's attempt `engine_attempt`
    /// and wakes idle workers; returns the queue attempt (at least
    /// `engine_attempt`, and above any earlier attempt of the agent).
    ///
    /// When the row already holds this engine attempt and was not cancelled
    /// (a resumed coordinator asking again for what its predecessor had
    /// queued), the row is adopted as it is: a running or finished attempt
    /// is never started twice.
    pub async fn enqueue(
        &self,
        run_id: &str,
        agent: &str,
        engine_attempt: u32,
        platform: &str,
        task: &str,
    ) -> Result<i32, StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(|e| self.db(e))?;
        let inserted = sqlx::query(
            "INSERT INTO queue (run_id, agent, attempt, engine_attempt, platform, task, state)
             VALUES ($1, $2, $3, $3, $4, $5::json, 'ready')
             ON CONFLICT (run_id, agent) DO UPDATE SET
               attempt = GREATEST(queue.attempt + 1, EXCLUDED.engine_attempt),
               engine_attempt = EXCLUDED.engine_attempt,
               platform = EXCLUDED.platform,
               task = EXCLUDED.task,
               state = 'ready', cancel_requested = FALSE, worker = NULL,
               lease_until = NULL, enqueued_at = now(), claimed_at = NULL,
               finished_at = NULL, result = NULL
             WHERE NOT (queue.engine_attempt = EXCLUDED.engine_attempt
                        AND queue.state <> 'cancelled')
             RETURNING attempt",
        )
        .bind(run_id)
        .bind(agent)
        .bind(engine_attempt as i32)
        .bind(platform)
        .bind(task)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        let attempt = match inserted {
            Some(row) => row.get(0),
            None => sqlx::query("SELECT attempt FROM queue WHERE run_id = $1 AND agent = $2")
                .bind(run_id)
                .bind(agent)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.db(e))?
                .get(0),
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(READY_CHANNEL)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(attempt)
    }

    /// The agent's row.
    pub async fn snapshot(
        &self,
        run_id: &str,
        agent: &str,
    ) -> Result<Option<RowSnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT attempt, state, worker, result::text FROM queue WHERE run_id = $1 AND agent = $2",
        )
        .bind(run_id)
        .bind(agent)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(row.map(|row| RowSnapshot {
            attempt: row.get(0),
            state: RowState::parse(row.get::<&str, _>(1)),
            worker: row.get(2),
            result: row.get(3),
        }))
    }

    /// Outputs of an attempt after output `after` (ids and JSON bodies, in order).
    pub async fn outputs_after(
        &self,
        run_id: &str,
        agent: &str,
        attempt: i32,
        after: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body::text FROM outputs
             WHERE run_id = $1 AND agent = $2 AND attempt = $3 AND id > $4 ORDER BY id",
        )
        .bind(run_id)
        .bind(agent)
        .bind(attempt)
        .bind(after)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Asks for an attempt to stop: a ready row is cancelled at once, a
    /// claimed one is flagged (its worker stops it at its next heartbeat, or
    /// at once when it hears `llmo_cancel`, and reports `cancelled`).
    pub async fn request_cancel(
        &self,
        run_id: &str,
        agent: &str,
        attempt: i32,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(|e| self.db(e))?;
        let worker: Option<Option<String>> = sqlx::query(
            "UPDATE queue SET cancel_requested = TRUE,
               finished_at = CASE WHEN state = 'ready' THEN now() ELSE finished_at END,
               state = CASE WHEN state = 'ready' THEN 'cancelled' ELSE state END
             WHERE run_id = $1 AND agent = $2 AND attempt = $3 AND state IN ('ready', 'claimed')
             RETURNING worker",
        )
        .bind(run_id)
        .bind(agent)
        .bind(attempt)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.db(e))?
        .map(|r| r.get(0));
        if let Some(Some(worker)) = worker {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CANCEL_CHANNEL)
                .bind(worker)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// Handles the expired leases of a run: a claimed row whose lease
    /// expired is queued again with `attempt + 1` (or cancelled, when that
    /// was asked for). Returns how many rows were queued again.
    pub async fn reap(&self, run_id: &str) -> Result<u64, StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(|e| self.db(e))?;
        sqlx::query(
            "WITH gone AS (
               UPDATE queue SET state = 'cancelled', finished_at = now(), lease_until = NULL
               WHERE run_id = $1 AND state = 'claimed' AND cancel_requested AND lease_until < now()
               RETURNING agent, attempt)
             UPDATE claims c SET ended_at = now(), ending = 'lost'
             FROM gone WHERE c.run_id = $1 AND c.agent = gone.agent
               AND c.attempt = gone.attempt AND c.ending IS NULL",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        let requeued: Vec<String> = sqlx::query(
            "WITH expired AS (
               SELECT agent, attempt FROM queue
               WHERE run_id = $1 AND state = 'claimed' AND NOT cancel_requested
                 AND lease_until < now()
               FOR UPDATE SKIP LOCKED),
             lost AS (
               UPDATE claims c SET ended_at = now(), ending = 'lost'
               FROM expired e WHERE c.run_id = $1 AND c.agent = e.agent
                 AND c.attempt = e.attempt AND c.ending IS NULL)
             UPDATE queue q SET state = 'ready', attempt = q.attempt + 1, worker = NULL,
               lease_until = NULL, claimed_at = NULL
             FROM expired e WHERE q.run_id = $1 AND q.agent = e.agent
             RETURNING q.agent",
        )
        .bind(run_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.db(e))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
        if !requeued.is_empty() {
            self.notify_agents(&mut tx, run_id, &requeued).await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(READY_CHANNEL)
                .bind(run_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(requeued.len() as u64)
    }

    async fn notify_agents(
        &self,
        tx: &mut sqlx::PgConnection,
        run_id: &str,
        agents: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2 || E'\\n' || a) FROM unnest($3::text[]) AS a")
            .bind(AGENT_CHANNEL)
            .bind(run_id)
            .bind(agents)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Claims up to `limit` attempts for `worker` (only of the routing names
    /// in `platforms`, when given), each under a lease of `lease`. A row
    /// whose lease expired is taken over with `attempt + 1`.
    pub async fn claim(
        &self,
        worker: &str,
        platforms: Option<&[String]>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.store.pool().begin().await.map_err(|e| self.db(e))?;
        let rows = sqlx::query(
            "WITH picked AS (
               SELECT run_id, agent, attempt, state FROM queue
               WHERE (state = 'ready' OR (state = 'claimed' AND lease_until < now()))
                 AND NOT cancel_requested
                 AND ($2::text[] IS NULL OR platform = ANY($2))
               ORDER BY enqueued_at
               LIMIT $3
               FOR UPDATE SKIP LOCKED),
             lost AS (
               UPDATE claims c SET ended_at = now(), ending = 'lost'
               FROM picked p WHERE p.state = 'claimed' AND c.run_id = p.run_id
                 AND c.agent = p.agent AND c.attempt = p.attempt AND c.ending IS NULL),
             moved AS (
               UPDATE queue q SET
                 attempt = CASE WHEN p.state = 'claimed' THEN q.attempt + 1 ELSE q.attempt END,
                 state = 'claimed', worker = $1,
                 lease_until = now() + make_interval(secs => $4), claimed_at = now()
               FROM picked p WHERE q.run_id = p.run_id AND q.agent = p.agent
               RETURNING q.run_id, q.agent, q.attempt, q.task::text AS task),
             noted AS (
               INSERT INTO claims (run_id, agent, attempt, worker)
               SELECT run_id, agent, attempt, $1 FROM moved
               ON CONFLICT (run_id, agent, attempt) DO UPDATE
                 SET worker = EXCLUDED.worker, claimed_at = now(), ended_at = NULL, ending = NULL)
             SELECT run_id, agent, attempt, task FROM moved",
        )
        .bind(worker)
        .bind(platforms)
        .bind(limit as i64)
        .bind(secs(lease))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        let claimed: Vec<Claimed> = rows
            .into_iter()
            .map(|r| Claimed {
                run_id: r.get(0),
                agent: r.get(1),
                attempt: r.get(2),
                task: r.get(3),
            })
            .collect();
        if !claimed.is_empty() {
            let keys: Vec<String> = claimed
                .iter()
                .map(|c| format!("{}\n{}", c.run_id, c.agent))
                .collect();
            sqlx::query("SELECT pg_notify($1, k) FROM unnest($2::text[]) AS k")
                .bind(AGENT_CHANNEL)
                .bind(&keys)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(claimed)
    }

    /// Renews every unexpired lease `worker` holds; returns them. A lease
    /// the worker thinks it holds and that is not returned is lost.
    pub async fn heartbeat(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<Renewed>, StoreError> {
        let rows = sqlx::query(
            "UPDATE queue SET lease_until = now() + make_interval(secs => $2)
             WHERE worker = $1 AND state = 'claimed' AND lease_until > now()
             RETURNING run_id, agent, attempt, cancel_requested",
        )
        .bind(worker)
        .bind(secs(lease))
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(rows
            .into_iter()
            .map(|r| Renewed {
                run_id: r.get(0),
                agent: r.get(1),
                attempt: r.get(2),
                cancel_requested: r.get(3),
            })
            .collect())
    }

    /// Appends outputs (JSON bodies of [`super::wire::WireOutput`]) of an
    /// attempt, fenced: returns false, writing nothing, when `worker` no
    /// longer holds the attempt under an unexpired lease.
    pub async fn post_outputs(
        &self,
        worker: &str,
        claim: &Claimed,
        bodies: &[String],
    ) -> Result<bool, StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(|e| self.db(e))?;
        let held = sqlx::query(
            "SELECT 1 FROM queue WHERE run_id = $1 AND agent = $2 AND attempt = $3
               AND worker = $4 AND state = 'claimed' AND lease_until > now()
             FOR SHARE",
        )
        .bind(&claim.run_id)
        .bind(&claim.agent)
        .bind(claim.attempt)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.db(e))?
        .is_some();
        if !held {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO outputs (run_id, agent, attempt, body)
             SELECT $1, $2, $3, b.body::json FROM unnest($4::text[]) WITH ORDINALITY AS b(body, n)
             ORDER BY b.n",
        )
        .bind(&claim.run_id)
        .bind(&claim.agent)
        .bind(claim.attempt)
        .bind(bodies)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        self.notify_agents(&mut tx, &claim.run_id, std::slice::from_ref(&claim.agent))
            .await?;
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(true)
    }

    /// Records the attempt's result (JSON of [`super::wire::WireResult`]),
    /// fenced as [`Self::post_outputs`]: returns false, and the result is
    /// rejected, when the lease moved on.
    pub async fn finish(
        &self,
        worker: &str,
        claim: &Claimed,
        result: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(|e| self.db(e))?;
        let accepted = sqlx::query(
            "UPDATE queue SET state = 'done', result = $5::json, finished_at = now(), lease_until = NULL
             WHERE run_id = $1 AND agent = $2 AND attempt = $3 AND worker = $4
               AND state = 'claimed' AND lease_until > now()",
        )
        .bind(&claim.run_id)
        .bind(&claim.agent)
        .bind(claim.attempt)
        .bind(worker)
        .bind(result)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?
        .rows_affected()
            == 1;
        sqlx::query(
            "UPDATE claims SET ended_at = now(), ending = $5
             WHERE run_id = $1 AND agent = $2 AND attempt = $3 AND worker = $4",
        )
        .bind(&claim.run_id)
        .bind(&claim.agent)
        .bind(claim.attempt)
        .bind(worker)
        .bind(if accepted { "finished" } else { "rejected" })
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        if accepted {
            self.notify_agents(&mut tx, &claim.run_id, std::slice::from_ref(&claim.agent))
                .await?;
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(accepted)
    }
}
