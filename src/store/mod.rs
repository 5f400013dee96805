//! The PostgreSQL store: one database shared by a run's coordinator and its
//! workers on other machines.
//!
//! It holds the run journals (the same events, in the same JSON encoding, as
//! the SQLite journal; see [`crate::journal`]) and the ready queue through
//! which the coordinator hands agent attempts to workers ([`queue`]). The
//! schema is versioned: the embedded migrations under `migrations/postgres/`
//! are applied in order, each once, under an advisory lock so that several
//! processes starting together migrate it once.
//!
//! The store URL may carry a password; it is never printed: every error and
//! log line names the store by [`redact`]ed URL.

pub mod queue;
pub mod url;
pub mod wire;

use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use url::{is_postgres_url, redact};

/// What can go wrong with the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, migrated, read or written.
    #[error("store {place}: {message}")]
    Database {
        /// The store (its URL without the password).
        place: String,
        /// The database error, with any password removed.
        message: String,
    },
    /// Something stored could not be decoded (or encoded).
    #[error("store {place}: {what} is unreadable: {source}")]
    Corrupt {
        /// The store.
        place: String,
        /// What could not be read.
        what: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The URL is not a PostgreSQL URL.
    #[error(
        "--store {0}: not a PostgreSQL URL (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
    )]
    Url(String),
}

/// The versioned schema migrations, in order (version = position + 1).
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_journal.sql"),
    include_str!("../../migrations/postgres/0002_queue.sql"),
];

/// The advisory lock key that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6c6c_6d6f_0001;

/// A connection pool to the store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    url: String,
    place: String,
}

impl PgStore {
    /// Connects (at most `max_connections` at once) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if !is_postgres_url(url) {
            return Err(StoreError::Url(redact(url)));
        }
        let place = redact(url);
        let db = |e: sqlx::Error| StoreError::Database {
            place: place.clone(),
            message: url::scrub(&e.to_string(), url),
        };
        let options: PgConnectOptions = url.parse().map_err(db)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(db)?;
        let store = Self {
            pool,
            url: url.to_string(),
            place,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The store's URL with its password removed, for messages.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// The full URL (with its password), for opening listener connections.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A database error, attributed to this store, with the password removed.
    pub fn db(&self, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            place: self.place.clone(),
            message: url::scrub(&source.to_string(), &self.url),
        }
    }

    /// A decoding error about `what`.
    pub fn corrupt(&self, what: impl Into<String>, source: serde_json::Error) -> StoreError {
        StoreError::Corrupt {
            place: self.place.clone(),
            what: what.into(),
            source,
        }
    }

    /// Applies the migrations newer than the store's `schema_version`, in one
    /// transaction holding an advisory lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS llmo_schema_version (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        let current: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0)::BIGINT FROM llmo_schema_version")
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.db(e))?
                .get(0);
        for (index, sql) in MIGRATIONS.iter().enumerate() {
            let version = index as i64 + 1;
            if version <= current {
                continue;
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
            sqlx::query("INSERT INTO llmo_schema_version (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// The schema version the store is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0)::BIGINT FROM llmo_schema_version")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        Ok(row.get(0))
    }

    /// Registers a run (idempotent).
    pub async fn create_run(&self, run_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (run_id, created_ms) VALUES ($1, $2) ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(run_id)
        .bind(crate::journal::now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Finds a run by id or unique prefix; `None` finds the latest.
    pub async fn find_run(&self, id: Option<&str>) -> Result<Option<String>, StoreError> {
        let rows = match id {
            Some(id) => {
                let exact = sqlx::query("SELECT run_id FROM runs WHERE run_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?;
                if let Some(row) = exact {
                    return Ok(Some(row.get(0)));
                }
                sqlx::query(
                    "SELECT run_id FROM runs WHERE left(run_id, length($1)) = $1 ORDER BY created_ms DESC LIMIT 2",
                )
                .bind(id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.db(e))?
            }
            None => sqlx::query("SELECT run_id FROM runs ORDER BY created_ms DESC LIMIT 1")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db(e))?,
        };
        match rows.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.get(0))),
            _ => Err(StoreError::Database {
                place: self.place.clone(),
                message: format!("run id prefix {:?} matches several runs", id.unwrap_or("")),
            }),
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
