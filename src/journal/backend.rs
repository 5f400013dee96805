//! [`Journal`]: the run journal the engine writes, in SQLite (a file per
//! run, the default) or in a PostgreSQL store shared with workers on other
//! machines (`--store postgres://…`). Both keep the same events in the same
//! JSON encoding, and both refuse a taken sequence number.

use std::path::{Path, PathBuf};

use super::event::{Event, EventRecord};
use super::postgres::PgJournal;
use super::state::RunState;
use super::store::{JournalError, SqliteJournal};

/// An open run journal.
#[derive(Debug, Clone)]
pub struct Journal(Backend);

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteJournal),
    Postgres(PgJournal),
}

impl Journal {
    /// Opens (creating if needed) the SQLite journal at `path`; every write
    /// is durable when it returns.
    pub async fn open(path: &Path) -> Result<Self, JournalError> {
        Ok(Self(Backend::Sqlite(SqliteJournal::open(path).await?)))
    }

    /// Opens (creating if needed) the SQLite journal at `path`; writes are
    /// durable against power loss only after [`Self::sync`] (see
    /// [`SqliteJournal::open_with_explicit_sync`]).
    pub async fn open_with_explicit_sync(path: &Path) -> Result<Self, JournalError> {
        Ok(Self(Backend::Sqlite(
            SqliteJournal::open_with_explicit_sync(path).await?,
        )))
    }

    /// Opens an existing SQLite journal for reading only (see
    /// [`SqliteJournal::open_read_only`]).
    pub async fn open_read_only(path: &Path) -> Result<Self, JournalError> {
        Ok(Self(Backend::Sqlite(
            SqliteJournal::open_read_only(path).await?,
        )))
    }

    /// The journal of `run_id` in a PostgreSQL store.
    pub async fn open_postgres(
        store: crate::store::PgStore,
        run_id: &str,
    ) -> Result<Self, JournalError> {
        Ok(Self(Backend::Postgres(
            PgJournal::open(store, run_id).await?,
        )))
    }

    /// Where the journal is: its file, or the store's URL (without its
    /// password) and the run id.
    pub fn path(&self) -> PathBuf {
        match &self.0 {
            Backend::Sqlite(j) => j.path().to_path_buf(),
            Backend::Postgres(j) => PathBuf::from(format!("{}#{}", j.store().place(), j.run_id())),
        }
    }

    /// The PostgreSQL store holding the journal, if it is there.
    pub fn postgres(&self) -> Option<&PgJournal> {
        match &self.0 {
            Backend::Sqlite(_) => None,
            Backend::Postgres(j) => Some(j),
        }
    }

    /// Appends events durably, in one transaction, and returns them with their sequence numbers.
    pub async fn append(&self, events: &[Event]) -> Result<Vec<EventRecord>, JournalError> {
        match &self.0 {
            Backend::Sqlite(j) => j.append(events).await,
            Backend::Postgres(j) => Ok(j.append(events).await?),
        }
    }

    /// Writes records whose sequence numbers the caller assigned, in one
    /// transaction; a taken sequence number fails the whole write.
    pub async fn write(&self, records: &[EventRecord]) -> Result<(), JournalError> {
        match &self.0 {
            Backend::Sqlite(j) => j.write(records).await,
            Backend::Postgres(j) => Ok(j.write(records).await?),
        }
    }

    /// A connection of its own for the thread that appends the run's events
    /// (SQLite only; `None` for PostgreSQL, written through its pool).
    pub fn appender(&self) -> Option<Result<super::appender::Appender, JournalError>> {
        match &self.0 {
            Backend::Sqlite(j) => Some(j.appender()),
            Backend::Postgres(_) => None,
        }
    }

    /// Makes every write so far durable against power loss (PostgreSQL
    /// commits are already).
    pub async fn sync(&self) -> Result<(), JournalError> {
        match &self.0 {
            Backend::Sqlite(j) => j.sync().await,
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Every event after `seq`, in order.
    pub async fn read_after(&self, seq: i64) -> Result<Vec<EventRecord>, JournalError> {
        match &self.0 {
            Backend::Sqlite(j) => j.read_after(seq).await,
            Backend::Postgres(j) => Ok(j.read_after(seq).await?),
        }
    }

    /// The run state: a replay of the whole journal.
    pub async fn replay(&self) -> Result<RunState, JournalError> {
        Ok(RunState::replay(&self.read_after(0).await?))
    }

    /// Closes the connections (waits for pending writes). A PostgreSQL
    /// journal leaves its store's pool open for its other users.
    pub async fn close(&self) {
        match &self.0 {
            Backend::Sqlite(j) => j.close().await,
            Backend::Postgres(_) => {}
        }
    }
}
