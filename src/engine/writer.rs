//! The journal writer: commits the engine's event batches in order and only
//! then lets their effects happen.
//!
//! The loop hands each batch of staged events to this writer together with
//! the launches (agent attempts) those events announce. A SQLite journal is
//! committed at once, on the loop's own thread, through an [`Appender`] (a
//! connection of its own): appending to the WAL without waiting for the
//! disk takes tens of microseconds, less than handing the batch to another
//! thread and hearing back (two thread wake-ups per agent, measured in
//! BENCHMARKS.md, eighth session). A PostgreSQL journal (or a SQLite one
//! whose appender cannot open) is written by a task through the journal's
//! pool, which takes every batch waiting for it and commits them in one
//! transaction (group commit) while the loop goes on deciding. Either way the
//! journal was opened with [`Journal::open_with_explicit_sync`], the
//! batches' launches start after their commit, and the loop hears which
//! records are written. A syncer task beside it flushes the journal to disk
//! (`fdatasync`) after commits, coalescing requests and starting at most one
//! flush every [`SYNC_INTERVAL`] (at once when a batch waits for the disk),
//! and releases the barriers of batches that must be on disk before the
//! engine goes on (wave ends, the end of the run).
//!
//! So every event is in the journal file before it takes effect (an agent
//! process never starts before its `AgentStarted` is written, and a killed
//! orchestrator loses nothing it acted on), and on disk at most one sync
//! (and [`SYNC_INTERVAL`]) later. The disk's latency (milliseconds per
//! fsync here) overlaps with running agents instead of sitting between an
//! agent's end and the next agent's start. A power loss can cost the events
//! of that window, as a suffix: an agent that completed in that window runs again on resume,
//! and one that started in it restarts with the same attempt number.
//!
//! An inline commit blocks the loop's thread while SQLite waits for a lock
//! held by another connection (up to the appender's busy timeout). In WAL
//! mode only another writer holds one, and nothing else writes a running
//! run's journal; SQLite's automatic checkpoints (every 1,000 WAL pages) also
//! run inline, as they ran on the writer thread before, where they held up
//! the launches all the same.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};

use crate::journal::appender::Appender;
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
/// were 3 % of such a run's CPU at one per 5 ms; at one per 20 ms such a
/// run takes 6 % less CPU (the flushes and the thread switches around them).
/// A power loss can cost this much more (a crash of the process costs
/// nothing: commits are in the file). For comparison, PostgreSQL's
/// asynchronous commit flushes every 200 ms (`wal_writer_delay`).
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// The writer: where the engine sends its batches.
pub struct Writer {
    input: Input,
}

/// Where a [`Writer`]'s batches go.
enum Input {
    /// Committed on the caller's thread (a SQLite journal); `None` once a
    /// commit failed (the writer has stopped).
    Inline(Option<Box<Inline>>),
    /// Sent to the writer task, which tells `stopped` when it has ended.
    Task {
        batches: mpsc::UnboundedSender<Batch>,
        stopped: oneshot::Receiver<()>,
    },
}

/// An inline writer's connection and announcer.
struct Inline {
    appender: Appender,
    announcer: Announcer,
}

impl Writer {
    /// Commits `batch` (after every batch sent before), then starts its
    /// launches. An inline writer commits before returning; a task writer
    /// later. The result arrives on the `done` channel given to [`spawn`].
    /// `Err` gives the batch back when the writer has stopped (after a
    /// failure, which was sent to `done`).
    pub fn send(&mut self, batch: Batch) -> Result<(), Box<Batch>> {
        match &mut self.input {
            Input::Inline(slot) => {
                let Some(inline) = slot.as_mut() else {
                    return Err(Box::new(batch));
                };
                let group = gather(batch, None);
                match inline.appender.write(&group.records) {
                    Ok(()) => inline.announcer.committed(group),
                    Err(e) => {
                        inline.announcer.failed(group, e);
                        *slot = None;
                    }
                }
                Ok(())
            }
            Input::Task { batches, .. } => batches.send(batch).map_err(|e| Box::new(e.0)),
        }
    }

    /// Stops the writer: resolves once it has closed its own connection to
    /// the journal (the pool's is then the last one, and its close
    /// checkpoints the WAL into the file).
    pub fn stop(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stopped = match self.input {
            // Dropping the appender closes its connection now.
            Input::Inline(_) => None,
            // Dropping the sender ends the task.
            Input::Task { stopped, .. } => Some(stopped),
        };
        async move {
            if let Some(stopped) = stopped {
                let _ = stopped.await;
            }
        }
    }
}

/// Starts the writer and syncer. Batches sent with [`Writer::send`] are
/// committed in order; results arrive on `done`. The writer stops at
/// [`Writer::stop`] or after a failure.
///
/// A SQLite journal is written inline through an [`Appender`] (no round trip
/// to another thread per commit); a PostgreSQL journal (or a SQLite one
/// whose appender cannot open) by a task through the journal's pool.
pub fn spawn(journal: Journal, done: mpsc::UnboundedSender<Committed>) -> Writer {
    spawn_with_interval(journal, done, SYNC_INTERVAL)
}

/// [`spawn`] with another least time between flushes.
fn spawn_with_interval(
    journal: Journal,
    done: mpsc::UnboundedSender<Committed>,
    sync_interval: std::time::Duration,
) -> Writer {
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
    let announcer = Announcer {
        runtime: tokio::runtime::Handle::current(),
        generation: 0,
        written: written_tx,
        urgent: urgent_tx,
        synced: synced_rx,
        done,
    };
    if let Some(Ok(appender)) = journal.appender() {
        return Writer {
            input: Input::Inline(Some(Box::new(Inline {
                appender,
                announcer,
            }))),
        };
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Batch>();
    let (stopped_tx, stopped) = oneshot::channel();
    tokio::spawn(async move {
        let mut announcer = announcer;
        while let Some(first) = rx.recv().await {
            let group = gather(first, Some(&mut rx));
            match journal.write(&group.records).await {
                Ok(()) => announcer.committed(group),
                Err(e) => {
                    announcer.failed(group, e);
                    break;
                }
            }
        }
        let _ = stopped_tx.send(());
    });
    Writer {
        input: Input::Task {
            batches: tx,
            stopped,
        },
    }
}

/// Batches taken together for one commit (group commit).
struct Group {
    records: Vec<EventRecord>,
    launches: Vec<Launch>,
    barriers: Vec<oneshot::Sender<Result<(), Arc<JournalError>>>>,
}

/// `first` and every batch waiting behind it in `rx` (if any), up to
/// [`MAX_GROUP_RECORDS`] records.
fn gather(first: Batch, mut rx: Option<&mut mpsc::UnboundedReceiver<Batch>>) -> Group {
    let mut batches = vec![first];
    let mut count = batches[0].records.len();
    while count < MAX_GROUP_RECORDS {
        match rx.as_mut().map(|rx| rx.try_recv()) {
            Some(Ok(batch)) => {
                count += batch.records.len();
                batches.push(batch);
            }
            _ => break,
        }
    }
    let mut group = Group {
        records: Vec::with_capacity(count),
        launches: Vec::new(),
        barriers: Vec::new(),
    };
    for batch in batches {
        group.records.extend(batch.records);
        group.launches.extend(batch.launches);
        group.barriers.extend(batch.barrier);
    }
    group
}

/// Tells the syncer, the engine and the launches what was committed.
struct Announcer {
    /// Where launches and barrier waits are spawned (the writer may be a thread).
    runtime: tokio::runtime::Handle,
    generation: u64,
    written: watch::Sender<u64>,
    urgent: watch::Sender<u64>,
    synced: watch::Receiver<u64>,
    done: mpsc::UnboundedSender<Committed>,
}

impl Announcer {
    /// `group` is committed: start its launches, hand its records to the
    /// engine, and release its barriers once the syncer has flushed it.
    fn committed(&mut self, group: Group) {
        self.generation += 1;
        let generation = self.generation;
        if !group.barriers.is_empty() {
            let _ = self.urgent.send(generation);
        }
        let _ = self.written.send(generation);
        for launch in group.launches {
            self.runtime.spawn(launch);
        }
        let _ = self.done.send(Committed::Records(group.records));
        for barrier in group.barriers {
            let mut synced = self.synced.clone();
            self.runtime.spawn(async move {
                // A failed sync drops the barrier (the failure goes to `done`).
                if synced.wait_for(|g| *g >= generation).await.is_ok() {
                    let _ = barrier.send(Ok(()));
                }
            });
        }
    }

    /// `group` could not be committed: nothing of it is launched, its
    /// barriers and the engine hear why.
    fn failed(&self, group: Group, error: JournalError) {
        let error = Arc::new(error);
        for barrier in group.barriers {
            let _ = barrier.send(Err(Arc::clone(&error)));
        }
        let _ = self.done.send(Committed::Failed(error));
    }
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
        let mut writer = spawn(journal.clone(), done_tx);
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
        let mut writer = spawn_with_interval(journal, done_tx, std::time::Duration::from_secs(60));
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
        let mut writer = spawn(journal, done_tx);
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
