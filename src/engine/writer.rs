//! The journal writer: commits the engine's event batches in order, off the
//! engine's loop, and only then lets their effects happen.
//!
//! The loop hands each batch of staged events to this writer together with
//! the launches (agent attempts) those events announce, and goes on deciding.
//! The writer takes every batch waiting for it, commits them in one
//! transaction (group commit) to a journal opened with
//! [`Journal::open_with_explicit_sync`], then starts the batches' launches
//! and tells the loop which records are written. A syncer task beside it
//! flushes the journal to disk (`fdatasync`) after commits, coalescing
//! requests and starting at most one flush every [`SYNC_INTERVAL`] (at once
//! when a batch waits for the disk), and releases the barriers of batches
//! that must be on disk before the engine goes on (wave ends, the end of the
//! run).
//!
//! So every event is in the journal file before it takes effect (an agent
//! process never starts before its `AgentStarted` is written, and a killed
//! orchestrator loses nothing it acted on), and on disk at most one sync
//! (and [`SYNC_INTERVAL`]) later. The disk's latency (milliseconds per
//! fsync here) overlaps with running agents instead of sitting between an
//! agent's end and the next agent's start. A power loss can cost the events
//! of that window, as a suffix: an agent that completed in that window runs again on resume,
//! and one that started in it restarts with the same attempt number.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};

use crate::journal::{EventRecord, Journal, JournalError};

/// Work that may only start once its batch is durable.
pub type Launch = BoxFuture<'static, ()>;

/// One batch of staged events.
pub struct Batch {
    /// The events, in sequence order.
    pub records: Vec<EventRecord>,
    /// Started (with `tokio::spawn`) after the records are committed.
    pub launches: Vec<Launch>,
    /// Told when this batch (and every earlier one) is on disk, or why not.
    pub barrier: Option<oneshot::Sender<Result<(), Arc<JournalError>>>>,
}

/// What the writer tells the engine loop.
pub enum Committed {
    /// These records are written (in order; their launches have started).
    Records(Vec<EventRecord>),
    /// A commit or a sync failed; nothing after it was written or launched.
    Failed(Arc<JournalError>),
}

/// Most records committed in one transaction.
const MAX_GROUP_RECORDS: usize = 4096;

/// Least time between the starts of two flushes that no barrier waits for:
/// a thousand short agents asked for a flush every 1–2 ms, and the flushes
/// were 3 % of such a run's CPU. A power loss can cost this much more.
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

/// Starts the writer and syncer tasks. Batches sent on the returned channel
/// are committed in order; results arrive on `done`. The tasks end when the
/// channel closes or after a failure.
pub fn spawn(
    journal: Journal,
    done: mpsc::UnboundedSender<Committed>,
) -> mpsc::UnboundedSender<Batch> {
    spawn_with_interval(journal, done, SYNC_INTERVAL)
}

/// [`spawn`] with another least time between flushes.
fn spawn_with_interval(
    journal: Journal,
    done: mpsc::UnboundedSender<Committed>,
    sync_interval: std::time::Duration,
) -> mpsc::UnboundedSender<Batch> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Batch>();
    // Commit generations: written (by the writer) and synced (by the syncer).
    let (written_tx, written_rx) = watch::channel(0u64);
    let (synced_tx, synced_rx) = watch::channel(0u64);
    // The newest generation a barrier waits for: its flush does not wait for the interval.
    let (urgent_tx, urgent_rx) = watch::channel(0u64);
    tokio::spawn(sync_loop(
        journal.clone(),
        sync_interval,
        written_rx,
        urgent_rx,
        synced_tx,
        done.clone(),
    ));
    tokio::spawn(async move {
        let mut generation = 0u64;
        while let Some(first) = rx.recv().await {
            let mut group = vec![first];
            let mut count = group[0].records.len();
            while count < MAX_GROUP_RECORDS {
                match rx.try_recv() {
                    Ok(batch) => {
                        count += batch.records.len();
                        group.push(batch);
                    }
                    Err(_) => break,
                }
            }
            let mut records = Vec::with_capacity(count);
            let mut launches = Vec::new();
            let mut barriers = Vec::new();
            for batch in group {
                records.extend(batch.records);
                launches.extend(batch.launches);
                barriers.extend(batch.barrier);
            }
            if let Err(e) = journal.write(&records).await {
                let e = Arc::new(e);
                for barrier in barriers {
                    let _ = barrier.send(Err(Arc::clone(&e)));
                }
                let _ = done.send(Committed::Failed(e));
                return;
            }
            generation += 1;
            if !barriers.is_empty() {
                let _ = urgent_tx.send(generation);
            }
            let _ = written_tx.send(generation);
            for launch in launches {
                tokio::spawn(launch);
            }
            let _ = done.send(Committed::Records(records));
            for barrier in barriers {
                let mut synced = synced_rx.clone();
                tokio::spawn(async move {
                    // A failed sync drops the barrier (the failure goes to `done`).
                    if synced.wait_for(|g| *g >= generation).await.is_ok() {
                        let _ = barrier.send(Ok(()));
                    }
                });
            }
        }
    });
    tx
}

/// Syncs the journal after commits, one fsync for however many commits
/// happened while the previous one ran, starting at most one every
/// `interval` ([`SYNC_INTERVAL`]) unless a barrier waits for a written generation.
async fn sync_loop(
    journal: Journal,
    interval: std::time::Duration,
    mut written: watch::Receiver<u64>,
    mut urgent: watch::Receiver<u64>,
    synced: watch::Sender<u64>,
    done: mpsc::UnboundedSender<Committed>,
) {
    let mut last_start: Option<tokio::time::Instant> = None;
    let mut last_synced = 0u64;
    while written.changed().await.is_ok() {
        if let Some(due) = last_start.map(|start| start + interval)
            && tokio::time::Instant::now() < due
        {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                _ = urgent.wait_for(|g| *g > last_synced) => {}
            }
        }
        let generation = *written.borrow_and_update();
        last_start = Some(tokio::time::Instant::now());
        if let Err(e) = journal.sync().await {
            let _ = done.send(Committed::Failed(Arc::new(e)));
            return;
        }
        last_synced = generation;
        let _ = synced.send(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn record(seq: i64) -> EventRecord {
        EventRecord {
            seq,
            at_ms: seq,
            event: Event::RunResumed,
        }
    }

    #[tokio::test]
    async fn batches_are_committed_in_order_before_their_launches_run() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open_with_explicit_sync(&dir.path().join("j.sqlite"))
            .await
            .unwrap();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let writer = spawn(journal.clone(), done_tx);
        let (seen_tx, seen_rx) = oneshot::channel();
        let probe = journal.clone();
        let launch: Launch = Box::pin(async move {
            // By the time a launch runs, its batch is readable.
            let n = probe.read_after(0).await.unwrap().len();
            let _ = seen_tx.send(n);
        });
        let (barrier_tx, barrier_rx) = oneshot::channel();
        writer
            .send(Batch {
                records: vec![record(1), record(2)],
                launches: vec![launch],
                barrier: None,
            })
            .ok()
            .unwrap();
        writer
            .send(Batch {
                records: vec![record(3)],
                launches: Vec::new(),
                barrier: Some(barrier_tx),
            })
            .ok()
            .unwrap();
        barrier_rx.await.unwrap().unwrap();
        assert!(seen_rx.await.unwrap() >= 2);
        let mut seqs = Vec::new();
        while let Ok(Committed::Records(records)) = done_rx.try_recv() {
            seqs.extend(records.iter().map(|r| r.seq));
        }
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    /// With a minute between flushes, barriers still resolve at once: a
    /// barrier that waited for the interval would time the test out.
    #[tokio::test]
    async fn a_barrier_does_not_wait_for_the_sync_interval() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open_with_explicit_sync(&dir.path().join("j.sqlite"))
            .await
            .unwrap();
        let (done_tx, _done_rx) = mpsc::unbounded_channel();
        let writer = spawn_with_interval(journal, done_tx, std::time::Duration::from_secs(60));
        for seq in 1..=3 {
            let (barrier_tx, barrier_rx) = oneshot::channel();
            writer
                .send(Batch {
                    records: vec![record(seq)],
                    launches: Vec::new(),
                    barrier: None,
                })
                .ok()
                .unwrap();
            writer
                .send(Batch {
                    records: vec![record(seq + 100)],
                    launches: Vec::new(),
                    barrier: Some(barrier_tx),
                })
                .ok()
                .unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(20), barrier_rx)
                .await
                .expect("the barrier did not wait for the interval")
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_failed_commit_launches_nothing_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.sqlite")).await.unwrap();
        journal.write(&[record(1)]).await.unwrap();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let writer = spawn(journal, done_tx);
        let launched = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&launched);
        let (barrier_tx, barrier_rx) = oneshot::channel();
        writer
            .send(Batch {
                // seq 1 is taken: the commit fails.
                records: vec![record(1)],
                launches: vec![Box::pin(async move { flag.store(true, Ordering::SeqCst) })],
                barrier: Some(barrier_tx),
            })
            .ok()
            .unwrap();
        assert!(
            barrier_rx.await.unwrap().is_err(),
            "the barrier hears of the failure"
        );
        assert!(matches!(done_rx.recv().await, Some(Committed::Failed(_))));
        tokio::task::yield_now().await;
        assert!(!launched.load(Ordering::SeqCst));
    }
}
