//! [`Appender`]: a connection of its own to a SQLite journal, for the one
//! thread that appends a run's events (`engine::writer`).
//!
//! The journal's sqlx pool runs every statement on a connection thread of
//! its own and answers through channels: for a run of a thousand short
//! agents (a commit per agent), that round trip and its bookkeeping cost
//! more CPU than SQLite's commit (BENCHMARKS.md, "Run engine", seventh
//! session). The appender talks to SQLite directly (rusqlite, linked to the
//! same SQLite library as sqlx), on the thread that calls it, with its insert
//! statement prepared once. It opens the file the pool has already created
//! and migrated, in the pool's durability setting (see [`super::store`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::event::EventRecord;
use super::store::JournalError;

/// How long a commit waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The insert of one event.
const INSERT: &str =
    "INSERT INTO events (seq, at_ms, kind, agent, body) VALUES (?1, ?2, ?3, ?4, ?5)";

/// A journal connection that appends records (see the module documentation).
pub struct Appender {
    connection: rusqlite::Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("path", &self.path)
            .finish()
    }
}

impl Appender {
    /// Opens the existing journal at `path`. With `sync_each_commit`, every
    /// commit is on disk when [`Self::write`] returns (`synchronous=FULL`);
    /// without, once the journal is synced (`synchronous=NORMAL`).
    pub fn open(path: &Path, sync_each_commit: bool) -> Result<Self, JournalError> {
        let failed = |source| JournalError::Append {
            path: path.to_path_buf(),
            source,
        };
        let connection = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        let synchronous = if sync_each_commit { "FULL" } else { "NORMAL" };
        connection
            .pragma_update(None, "synchronous", synchronous)
            .map_err(failed)?;
        // Prepared now: a journal without the events table fails here, not mid-run.
        connection.prepare_cached(INSERT).map_err(failed)?;
        connection.set_prepared_statement_cache_capacity(8);
        Ok(Self {
            connection,
            path: path.to_path_buf(),
        })
    }

    /// Writes `records` (sequence numbers assigned by the caller) in one
    /// transaction; a sequence number already taken fails the whole write.
    pub fn write(&mut self, records: &[EventRecord]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        let bodies = super::store::event_bodies(&self.path, records)?;
        let path = &self.path;
        let failed = |source| JournalError::Append {
            path: path.clone(),
            source,
        };
        // BEGIN and COMMIT are cached statements too: parsing them was a
        // tenth of a commit's CPU.
        let connection = &self.connection;
        let run = |sql: &str| {
            connection
                .prepare_cached(sql)
                .and_then(|mut statement| statement.execute([]))
        };
        run("BEGIN IMMEDIATE").map_err(failed)?;
        let inserted = connection.prepare_cached(INSERT).and_then(|mut insert| {
            for (record, body) in records.iter().zip(&bodies) {
                insert.execute(rusqlite::params![
                    record.seq,
                    record.at_ms,
                    record.event.kind(),
                    record.event.agent(),
                    body
                ])?;
            }
            Ok(())
        });
        match inserted.and_then(|()| run("COMMIT")) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Nothing of the group stays (a failed COMMIT may leave the
                // transaction open).
                if !connection.is_autocommit() {
                    let _ = run("ROLLBACK");
                }
                Err(failed(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Event, Journal};

    fn record(seq: i64, agent: &str) -> EventRecord {
        EventRecord {
            seq,
            at_ms: 1000 + seq,
            event: Event::AgentStarted {
                agent: agent.into(),
                attempt: 1,
            },
        }
    }

    #[tokio::test]
    async fn appended_records_replay_through_the_pool_and_a_taken_seq_fails_the_whole_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let journal = Journal::open_with_explicit_sync(&path).await.unwrap();
        let mut appender = Appender::open(&path, false).unwrap();
        appender.write(&[record(1, "A"), record(2, "B")]).unwrap();
        appender.write(&[record(3, "C")]).unwrap();
        let e = appender
            .write(&[record(4, "D"), record(2, "E")])
            .unwrap_err();
        assert!(e.to_string().contains("journal.sqlite"), "{e}");
        let read = journal.read_after(0).await.unwrap();
        let seqs: Vec<i64> = read.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3], "the failed write left nothing");
        assert_eq!(read[2], record(3, "C"));
        // The failed transaction was rolled back: the appender goes on.
        appender.write(&[record(4, "D")]).unwrap();
        let state = journal.replay().await.unwrap();
        assert_eq!(state.agents.len(), 4);
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sqlite");
        assert!(Appender::open(&missing, false).is_err(), "not created");
        let empty = dir.path().join("empty.sqlite");
        rusqlite::Connection::open(&empty).unwrap();
        let e = Appender::open(&empty, true).unwrap_err();
        assert!(e.to_string().contains("events"), "{e}");
    }
}
