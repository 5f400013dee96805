//! The SQLite journal store: one file per run, in WAL mode.
//!
//! Two durability settings:
//!
//! - [`SqliteJournal::open`]: `synchronous=FULL`, every committed write is on disk
//!   (survives power loss) when [`SqliteJournal::write`] returns.
//! - [`SqliteJournal::open_with_explicit_sync`]: `synchronous=NORMAL`, a committed
//!   write is in the journal file (every reader sees it, and it survives the
//!   writing process being killed) when `write` returns, and on disk once a
//!   later [`SqliteJournal::sync`] returns. The run engine uses this to take the
//!   disk's latency off its critical path (see `engine::writer`). SQLite
//!   guarantees that WAL with `NORMAL` never corrupts the file; what power
//!   loss can cost is the writes after the last sync, and they are lost as a
//!   whole suffix (the WAL is replayed in order), never out of order.
//!
//! Several events can be appended in one transaction when they happen together.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::event::{Event, EventRecord};
use super::state::RunState;

/// What can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database could not be opened, migrated, read or written.
    #[error("journal {path}: {source}")]
    Database {
        /// The journal file.
        path: PathBuf,
        /// The database error.
        source: sqlx::Error,
    },
    /// A stored event could not be decoded.
    #[error("journal {path}: event {seq} is unreadable: {source}")]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// Its sequence number.
        seq: i64,
        /// Why.
        source: serde_json::Error,
    },
    /// The journal could not be flushed to disk.
    #[error("cannot sync {path} to disk: {source}")]
    Sync {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PostgreSQL store failed.
    #[error(transparent)]
    Store(crate::store::StoreError),
    /// The run's appender connection could not open or write the journal.
    #[error("journal {path}: {source}")]
    Append {
        /// The journal file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A new journal file could not be created with its schema.
    #[error("cannot create journal {path}: {source}")]
    Create {
        /// The journal file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The journal directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The schema migrations, in order; a file's `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_events.sql"),
    include_str!("../../migrations/sqlite/0002_events_lean.sql"),
];

/// Applies the migrations numbered after `version` (1-based, in order), each
/// in its own transaction that also sets SQLite's `user_version` to its
/// number. Shared by the journal and the run history.
pub(crate) async fn apply_migrations(
    pool: &SqlitePool,
    migrations: &[&str],
    version: i64,
) -> Result<(), sqlx::Error> {
    for (number, sql) in migrations.iter().enumerate() {
        let number = number as i64 + 1;
        if number <= version {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {number}"
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Rows per INSERT statement (5 parameters each, well under SQLite's limit of 32,766).
const ROWS_PER_INSERT: usize = 1000;

/// An open SQLite run journal (the engine uses it through [`super::Journal`]).
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pool: SqlitePool,
    path: PathBuf,
    /// Every commit is on disk when it returns (`synchronous=FULL`).
    sync_each_commit: bool,
    /// Set while the file this journal created is not yet flushed to disk
    /// (with explicit syncs, the first [`Self::sync`] flushes it); shared by clones.
    creation_unflushed: Arc<AtomicBool>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SqliteJournal {
    /// Opens (creating if needed) the journal at `path`; every write is durable when it returns.
    pub async fn open(path: &Path) -> Result<Self, JournalError> {
        Self::open_with(path, SqliteSynchronous::Full).await
    }

    /// Opens (creating if needed) the journal at `path`; writes are durable
    /// against power loss only after [`Self::sync`] (see the module docs).
    pub async fn open_with_explicit_sync(path: &Path) -> Result<Self, JournalError> {
        Self::open_with(path, SqliteSynchronous::Normal).await
    }

    /// Opens an existing journal for reading only (the dashboard, while the run
    /// may still be writing it): nothing is created or migrated, and the
    /// connection cannot write. WAL mode lets it read while the run appends.
    pub async fn open_read_only(path: &Path) -> Result<Self, JournalError> {
        let db = |source| JournalError::Database {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db)?
            .filename(path)
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            // A local file: a ping before every use is only a round trip to
            // the connection's thread (one per commit of the run's journal).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        Ok(Self {
            pool,
            path: path.to_path_buf(),
            sync_each_commit: false,
            creation_unflushed: Arc::default(),
        })
    }

    async fn open_with(path: &Path, synchronous: SqliteSynchronous) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = |source| JournalError::Database {
            path: path.to_path_buf(),
            source,
        };
        // A new journal is created with its whole schema at once. With
        // explicit syncs, its file is flushed by the first sync (the engine's
        // comes with its first agents' commit).
        let explicit_sync = !matches!(synchronous, SqliteSynchronous::Full);
        let flush = if explicit_sync {
            super::create::Flush::WithFirstSync
        } else {
            super::create::Flush::Now
        };
        let created = super::create::create_if_missing(path, MIGRATIONS, flush)?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            // A local file: a ping before every use is only a round trip to
            // the connection's thread (one per commit of the run's journal).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        let journal = Self {
            pool,
            path: path.to_path_buf(),
            sync_each_commit: !explicit_sync,
            creation_unflushed: Arc::new(AtomicBool::new(created && explicit_sync)),
        };
        if !created {
            journal.migrate().await?;
        }
        Ok(journal)
    }

    /// Applies the embedded migrations newer than the file's `user_version`, each in a transaction.
    async fn migrate(&self) -> Result<(), JournalError> {
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db(e))?
            .get(0);
        apply_migrations(&self.pool, MIGRATIONS, version)
            .await
            .map_err(|e| self.db(e))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection of its own for the one thread that appends the run's
    /// events, with this journal's durability (see [`super::appender`]).
    pub fn appender(&self) -> Result<super::appender::Appender, JournalError> {
        super::appender::Appender::open(&self.path, self.sync_each_commit)
    }

    fn db(&self, source: sqlx::Error) -> JournalError {
        JournalError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends events durably, in one transaction, and returns them with their sequence numbers.
    pub async fn append(&self, events: &[Event]) -> Result<Vec<EventRecord>, JournalError> {
        let at_ms = now_ms();
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let body = serde_json::to_string(event).map_err(|source| JournalError::Corrupt {
                path: self.path.clone(),
                seq: 0,
                source,
            })?;
            let seq: i64 = sqlx::query(
                "INSERT INTO events (at_ms, kind, agent, body) VALUES (?, ?, ?, ?) RETURNING seq",
            )
            .bind(at_ms)
            .bind(event.kind())
            .bind(event.agent())
            .bind(body)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.db(e))?
            .get(0);
            records.push(EventRecord {
                seq,
                at_ms,
                event: event.clone(),
            });
        }
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(records)
    }

    /// Writes records whose sequence numbers the caller assigned (the next ones
    /// after the journal's last), durably, in one transaction. A sequence number
    /// that is already taken fails the whole write: two processes can never
    /// both extend one run.
    pub async fn write(&self, records: &[EventRecord]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        // One multi-row INSERT per chunk: a single round trip to the database
        // thread for a typical batch (a single statement is its own atomic
        // transaction); larger batches share one explicit transaction.
        let chunks: Vec<&[EventRecord]> = records.chunks(ROWS_PER_INSERT).collect();
        if let [only] = chunks.as_slice() {
            let mut insert = self.insert_for(only)?;
            insert
                .build()
                .execute(&self.pool)
                .await
                .map_err(|e| self.db(e))?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        for chunk in chunks {
            let mut insert = self.insert_for(chunk)?;
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// `INSERT INTO events … VALUES (…), (…), …` for `records`.
    fn insert_for(
        &self,
        records: &[EventRecord],
    ) -> Result<sqlx::QueryBuilder<sqlx::Sqlite>, JournalError> {
        let bodies = event_bodies(&self.path, records)?;
        let mut insert =
            sqlx::QueryBuilder::new("INSERT INTO events (seq, at_ms, kind, agent, body) ");
        insert.push_values(records.iter().zip(bodies), |mut row, (record, body)| {
            row.push_bind(record.seq)
                .push_bind(record.at_ms)
                .push_bind(record.event.kind())
                .push_bind(record.event.agent())
                .push_bind(body);
        });
        Ok(insert)
    }

    /// Makes every write committed so far durable against power loss: flushes
    /// the write-ahead log to disk (`fdatasync`), and the first time, a file
    /// this journal created and left unflushed (see [`super::create`]).
    /// Checkpoints sync the main file themselves, and a missing log means
    /// everything is in the main file.
    pub async fn sync(&self) -> Result<(), JournalError> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let created = self
            .creation_unflushed
            .load(Ordering::Acquire)
            .then(|| self.path.clone());
        let synced = tokio::task::spawn_blocking(move || {
            if let Some(path) = created {
                super::create::flush_created(&path)?;
            }
            match std::fs::File::open(&wal) {
                Ok(file) => file.sync_data().map_err(|e| (wal, e)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err((wal, e)),
            }
        })
        .await;
        if matches!(synced, Ok(Ok(()))) {
            self.creation_unflushed.store(false, Ordering::Release);
        }
        match synced {
            Ok(Ok(())) => Ok(()),
            Ok(Err((path, source))) => Err(JournalError::Sync { path, source }),
            Err(join) => Err(JournalError::Sync {
                path: self.path.clone(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }

    /// Every event after `seq`, in order.
    pub async fn read_after(&self, seq: i64) -> Result<Vec<EventRecord>, JournalError> {
        let rows = sqlx::query("SELECT seq, at_ms, body FROM events WHERE seq > ? ORDER BY seq")
            .bind(seq)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        rows.into_iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let body: String = row.get(2);
                let event =
                    serde_json::from_str(&body).map_err(|source| JournalError::Corrupt {
                        path: self.path.clone(),
                        seq,
                        source,
                    })?;
                Ok(EventRecord {
                    seq,
                    at_ms: row.get(1),
                    event,
                })
            })
            .collect()
    }

    /// The run state: a replay of the whole journal.
    pub async fn replay(&self) -> Result<RunState, JournalError> {
        Ok(RunState::replay(&self.read_after(0).await?))
    }

    /// Closes the connections (waits for pending writes).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The stored JSON body of each record's event; `path` names the journal in errors.
pub(crate) fn event_bodies(
    path: &Path,
    records: &[EventRecord],
) -> Result<Vec<String>, JournalError> {
    records
        .iter()
        .map(|record| {
            serde_json::to_string(&record.event).map_err(|source| JournalError::Corrupt {
                path: path.to_path_buf(),
                seq: record.seq,
                source,
            })
        })
        .collect()
}

/// A PostgreSQL journal's errors are journal errors.
impl From<crate::store::StoreError> for JournalError {
    fn from(e: crate::store::StoreError) -> Self {
        JournalError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteJournal as Journal;
    use super::*;
    use crate::journal::{AgentOutcome, AgentPhase};

    /// A run's journal (explicit syncs) leaves its new file's flush to its
    /// first sync, shared by its clones; a journal that syncs every commit,
    /// and one that was already there, have nothing left to flush.
    #[tokio::test]
    async fn a_created_journal_is_flushed_by_its_first_sync_when_syncs_are_explicit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/journal.sqlite");
        let journal = Journal::open_with_explicit_sync(&path).await.unwrap();
        let clone = journal.clone();
        assert!(journal.creation_unflushed.load(Ordering::Acquire));
        clone.sync().await.unwrap();
        assert!(!journal.creation_unflushed.load(Ordering::Acquire));
        journal.close().await;
        let reopened = Journal::open_with_explicit_sync(&path).await.unwrap();
        assert!(!reopened.creation_unflushed.load(Ordering::Acquire));
        let each_commit = Journal::open(&dir.path().join("other/journal.sqlite"))
            .await
            .unwrap();
        assert!(!each_commit.creation_unflushed.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn appended_events_survive_reopening_and_replay_to_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/r1/journal.sqlite");
        let plan = serde_json::json!({"waves": [{"agents": [{"agentId": "A"}]}]});
        {
            let journal = Journal::open(&path).await.unwrap();
            let recs = journal
                .append(&[
                    Event::RunStarted {
                        run_id: "r1".into(),
                        plan,
                    },
                    Event::AgentStarted {
                        agent: "A".into(),
                        attempt: 1,
                    },
                ])
                .await
                .unwrap();
            assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
            journal
                .append(&[Event::AgentFinished {
                    agent: "A".into(),
                    attempt: 1,
                    outcome: AgentOutcome::Completed {
                        without_marker: false,
                    },
                    exit_code: Some(0),
                }])
                .await
                .unwrap();
            journal.close().await;
        }
        let journal = Journal::open(&path).await.unwrap();
        let state = journal.replay().await.unwrap();
        assert_eq!(state.run_id, "r1");
        assert_eq!(state.agents["A"].phase, AgentPhase::Completed);
        assert_eq!(state.last_seq, 3);
        assert_eq!(journal.read_after(2).await.unwrap().len(), 1);
        let next = EventRecord {
            seq: 4,
            at_ms: 5,
            event: Event::RunResumed,
        };
        journal.write(std::slice::from_ref(&next)).await.unwrap();
        assert!(
            journal.write(&[next]).await.is_err(),
            "a taken sequence number is refused"
        );
        assert_eq!(journal.replay().await.unwrap().last_seq, 4);
    }

    #[tokio::test]
    async fn a_version_1_journal_is_migrated_with_its_events_and_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        {
            // A journal as the first schema wrote it.
            let options = SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            apply_migrations(&pool, &MIGRATIONS[..1], 0).await.unwrap();
            sqlx::query(
                "INSERT INTO events (at_ms, kind, agent, body) VALUES (1, 'AgentStarted', 'A', ?)",
            )
            .bind(
                serde_json::json!({"type": "AgentStarted", "agent": "A", "attempt": 1}).to_string(),
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let journal = Journal::open(&path).await.unwrap();
        let schema: Vec<String> =
            sqlx::query("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
                .fetch_all(&journal.pool)
                .await
                .unwrap()
                .into_iter()
                .map(|row| row.get(0))
                .collect();
        assert!(
            schema
                .iter()
                .all(|sql| !sql.contains("AUTOINCREMENT") && !sql.contains("INDEX")),
            "{schema:?}"
        );
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&journal.pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, MIGRATIONS.len() as i64);
        let appended = journal
            .append(&[Event::AgentStarted {
                agent: "B".into(),
                attempt: 1,
            }])
            .await
            .unwrap();
        assert_eq!(appended[0].seq, 2);
        let state = journal.replay().await.unwrap();
        assert_eq!(state.agents["A"].phase, AgentPhase::Running);
        assert_eq!(state.last_seq, 2);
    }

    #[tokio::test]
    async fn a_read_only_journal_sees_later_writes_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        assert!(
            Journal::open_read_only(&path).await.is_err(),
            "never created"
        );
        assert!(!path.exists());
        let writer = Journal::open_with_explicit_sync(&path).await.unwrap();
        writer.append(&[Event::RunResumed]).await.unwrap();
        let reader = Journal::open_read_only(&path).await.unwrap();
        assert_eq!(reader.read_after(0).await.unwrap().len(), 1);
        writer.append(&[Event::RunResumed]).await.unwrap();
        assert_eq!(reader.read_after(1).await.unwrap().len(), 1);
        assert!(reader.append(&[Event::RunResumed]).await.is_err());
        reader.close().await;
        writer.close().await;
        // After the last connection closed, the WAL is checkpointed away; a
        // reader still opens the journal.
        assert!(!dir.path().join("journal.sqlite-wal").exists());
        let reader = Journal::open_read_only(&path).await.unwrap();
        assert_eq!(reader.replay().await.unwrap().last_seq, 2);
    }

    #[tokio::test]
    async fn a_large_batch_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.sqlite")).await.unwrap();
        let batch = |from: i64, count: i64| -> Vec<EventRecord> {
            (from..from + count)
                .map(|seq| EventRecord {
                    seq,
                    at_ms: seq,
                    event: Event::AgentStarted {
                        agent: format!("A{seq}"),
                        attempt: 1,
                    },
                })
                .collect()
        };
        // More rows than one INSERT takes: several statements, one transaction.
        journal.write(&batch(1, 2500)).await.unwrap();
        let read = journal.read_after(0).await.unwrap();
        assert_eq!(read.len(), 2500);
        assert!(read.iter().enumerate().all(|(i, r)| r.seq == i as i64 + 1));
        // A batch whose last chunk collides with a taken seq leaves nothing behind.
        let mut clash = batch(2501, 1500);
        clash.last_mut().unwrap().seq = 7;
        assert!(journal.write(&clash).await.is_err());
        assert_eq!(journal.read_after(2500).await.unwrap().len(), 0);
    }

    #[tokio::test]
    async fn a_corrupt_event_is_reported_with_its_sequence_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let journal = Journal::open(&path).await.unwrap();
        journal.append(&[Event::RunResumed]).await.unwrap();
        sqlx::query("INSERT INTO events (at_ms, kind, body) VALUES (0, 'X', '{not json')")
            .execute(&journal.pool)
            .await
            .unwrap();
        let err = journal.replay().await.unwrap_err().to_string();
        assert!(err.contains("event 2 is unreadable"), "{err}");
    }
}
