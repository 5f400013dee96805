//! The SQLite history store: versioned migrations, upserts, reads.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{HistoryError, HistoryRow, RunRow};

/// The schema migrations, in order; the file's `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/history/0001_history.sql"),
    include_str!("../../migrations/history/0002_drop_unused_index.sql"),
    include_str!("../../migrations/history/0003_plan_index_in_time_order.sql"),
];

/// An open history file.
#[derive(Debug, Clone)]
pub struct HistoryStore {
    pool: SqlitePool,
    path: PathBuf,
}

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// Only this plan (`orchestrationId`).
    pub plan: Option<String>,
    /// Leave this run out (the run being predicted).
    pub exclude_run: Option<String>,
}

/// The query of [`HistoryStore::rows`], in two forms so that a plan's rows
/// are found through `agent_runs_by_plan_in_time` (`?1 IS NULL OR plan = ?1` would
/// scan the whole table). `?1` is the plan, `?2` a run to leave out.
fn rows_query(for_a_plan: bool) -> &'static str {
    macro_rules! select_where {
        ($plan_test:literal) => {
            concat!(
                "SELECT run_id, agent_id, plan, plan_path, wave, platform, model, scope, ",
                "estimate_secs, actual_secs, attempt_secs, attempts, failed_attempts, outcome, ",
                "gates_passed, gates_failed, input_tokens, output_tokens, cost_usd, ",
                "started_at_ms, finished_at_ms FROM agent_runs WHERE ",
                $plan_test,
                " AND (?2 IS NULL OR run_id <> ?2) ORDER BY finished_at_ms, run_id, agent_id"
            )
        };
    }
    if for_a_plan {
        select_where!("plan = ?1")
    } else {
        select_where!("?1 IS NULL")
    }
}

/// Agent rows per INSERT statement (21 parameters each; SQLite allows 32,766).
const ROWS_PER_INSERT: usize = 200;

impl HistoryStore {
    /// Opens (creating it and its folder if needed) the history file at `path`
    /// and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            // The default place, `.llm-orchestrate/`, must not show up as
            // untracked files in the user's repository (nor be committed by
            // an agent working at its root).
            let ignore = dir.join(".gitignore");
            if dir.file_name().is_some_and(|n| n == ".llm-orchestrate") && !ignore.exists() {
                std::fs::write(
                    &ignore,
                    "# llm-orchestrate's own files (run history, runs)\n*\n",
                )
                .map_err(|source| HistoryError::Io {
                    path: ignore.clone(),
                    source,
                })?;
            }
        }
        Self::connect(path, true).await
    }

    /// Opens an existing history file for reading; a missing file reads as an empty history.
    pub async fn open_existing(path: &Path) -> Result<Option<Self>, HistoryError> {
        if !path.exists() {
            return Ok(None);
        }
        Self::connect(path, false).await.map(Some)
    }

    async fn connect(path: &Path, create: bool) -> Result<Self, HistoryError> {
        let db = |source| HistoryError::Database {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db)?
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            // A run's rows are written by one transaction and the store is
            // closed right after, and closing checkpoints the log into the
            // file and syncs it: a sync of the log at the commit as well
            // (`FULL`) only added a flush to the end of every run.
            .synchronous(SqliteSynchronous::Normal)
            // The multi-row upserts' statement journal stays in memory
            // instead of spilling into a temporary file.
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // A local file: no ping before every use.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        let store = Self {
            pool,
            path: path.to_path_buf(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self, source: sqlx::Error) -> HistoryError {
        HistoryError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Applies the embedded migrations newer than the file's `user_version`, each in a transaction.
    async fn migrate(&self) -> Result<(), HistoryError> {
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db(e))?
            .get(0);
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(HistoryError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        crate::journal::store::apply_migrations(&self.pool, MIGRATIONS, version)
            .await
            .map_err(|e| self.db(e))
    }

    /// Writes a run and its agents in one transaction, replacing what an
    /// earlier end of the same run (before a resume) wrote.
    pub async fn upsert_run(&self, run: &RunRow, rows: &[HistoryRow]) -> Result<(), HistoryError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        sqlx::query(
            "INSERT INTO runs (run_id, plan, plan_path, mode, concurrency, agents, outcome, started_at_ms, \
             finished_at_ms, wall_secs, predicted_secs, prediction_basis, cost_usd) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (run_id) DO UPDATE SET plan = excluded.plan, \
             plan_path = COALESCE(excluded.plan_path, runs.plan_path), mode = excluded.mode, \
             concurrency = excluded.concurrency, agents = excluded.agents, outcome = excluded.outcome, \
             started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms, \
             wall_secs = excluded.wall_secs, \
             predicted_secs = COALESCE(runs.predicted_secs, excluded.predicted_secs), \
             prediction_basis = CASE WHEN runs.predicted_secs IS NULL THEN excluded.prediction_basis \
             ELSE runs.prediction_basis END, cost_usd = excluded.cost_usd",
        )
        .bind(&run.run_id)
        .bind(&run.plan)
        .bind(&run.plan_path)
        .bind(&run.mode)
        .bind(i64::from(run.concurrency))
        .bind(i64::from(run.agents))
        .bind(&run.outcome)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .bind(run.wall_secs)
        .bind(run.predicted_secs)
        .bind(&run.prediction_basis)
        .bind(run.cost_usd)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        self.insert_agent_rows(&mut tx, rows).await?;
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// Writes agents' rows of a run still going on, in one transaction,
    /// replacing earlier ones (the run's own row comes with its end, through
    /// [`Self::upsert_run`]).
    pub async fn upsert_agents(&self, rows: &[HistoryRow]) -> Result<(), HistoryError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.db(e))?;
        self.insert_agent_rows(&mut tx, rows).await?;
        tx.commit().await.map_err(|e| self.db(e))
    }

    /// Upserts agent rows within `tx`.
    async fn insert_agent_rows(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        rows: &[HistoryRow],
    ) -> Result<(), HistoryError> {
        // Many rows per statement: one statement per row costs a round trip
        // to SQLite's thread each (a 10,000-agent run took a second).
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO agent_runs (run_id, agent_id, plan, plan_path, wave, platform, model, scope, \
                 estimate_secs, actual_secs, attempt_secs, attempts, failed_attempts, outcome, gates_passed, \
                 gates_failed, input_tokens, output_tokens, cost_usd, started_at_ms, finished_at_ms) ",
            );
            insert.push_values(chunk, |mut values, row| {
                let scope = serde_json::to_string(&row.scope).unwrap_or_else(|_| "[]".into());
                values
                    .push_bind(row.run_id.clone())
                    .push_bind(row.agent_id.clone())
                    .push_bind(row.plan.clone())
                    .push_bind(row.plan_path.clone())
                    .push_bind(row.wave.clone())
                    .push_bind(row.platform.clone())
                    .push_bind(row.model.clone())
                    .push_bind(scope)
                    .push_bind(row.estimate_secs)
                    .push_bind(row.actual_secs)
                    .push_bind(row.attempt_secs)
                    .push_bind(i64::from(row.attempts))
                    .push_bind(i64::from(row.failed_attempts))
                    .push_bind(row.outcome.clone())
                    .push_bind(i64::from(row.gates_passed))
                    .push_bind(i64::from(row.gates_failed))
                    .push_bind(clamp_i64(row.input_tokens))
                    .push_bind(clamp_i64(row.output_tokens))
                    .push_bind(row.cost_usd)
                    .push_bind(row.started_at_ms)
                    .push_bind(row.finished_at_ms);
            });
            insert.push(
                " ON CONFLICT (run_id, agent_id) DO UPDATE SET plan = excluded.plan, \
                 plan_path = COALESCE(excluded.plan_path, agent_runs.plan_path), wave = excluded.wave, \
                 platform = excluded.platform, model = excluded.model, scope = excluded.scope, \
                 estimate_secs = excluded.estimate_secs, actual_secs = excluded.actual_secs, \
                 attempt_secs = excluded.attempt_secs, attempts = excluded.attempts, \
                 failed_attempts = excluded.failed_attempts, outcome = excluded.outcome, \
                 gates_passed = excluded.gates_passed, gates_failed = excluded.gates_failed, \
                 input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
                 cost_usd = excluded.cost_usd, started_at_ms = excluded.started_at_ms, \
                 finished_at_ms = excluded.finished_at_ms",
            );
            insert
                .build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    /// Agent rows, oldest first.
    pub async fn rows(&self, filter: &RowFilter) -> Result<Vec<HistoryRow>, HistoryError> {
        let records = sqlx::query(rows_query(filter.plan.is_some()))
            .bind(&filter.plan)
            .bind(&filter.exclude_run)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db(e))?;
        Ok(records
            .into_iter()
            .map(|r| {
                let scope: String = r.get(7);
                HistoryRow {
                    run_id: r.get(0),
                    agent_id: r.get(1),
                    plan: r.get(2),
                    plan_path: r.get(3),
                    wave: r.get(4),
                    platform: r.get(5),
                    model: r.get(6),
                    scope: serde_json::from_str(&scope).unwrap_or_default(),
                    estimate_secs: r.get(8),
                    actual_secs: r.get(9),
                    attempt_secs: r.get(10),
                    attempts: to_u32(r.get(11)),
                    failed_attempts: to_u32(r.get(12)),
                    outcome: r.get(13),
                    gates_passed: to_u32(r.get(14)),
                    gates_failed: to_u32(r.get(15)),
                    input_tokens: to_u64(r.get(16)),
                    output_tokens: to_u64(r.get(17)),
                    cost_usd: r.get(18),
                    started_at_ms: r.get(19),
                    finished_at_ms: r.get(20),
                }
            })
            .collect())
    }

    /// Run rows, oldest first.
    pub async fn runs(&self, plan: Option<&str>) -> Result<Vec<RunRow>, HistoryError> {
        let records = sqlx::query(
            "SELECT run_id, plan, plan_path, mode, concurrency, agents, outcome, started_at_ms, \
             finished_at_ms, wall_secs, predicted_secs, prediction_basis, cost_usd FROM runs \
             WHERE (?1 IS NULL OR plan = ?1) ORDER BY finished_at_ms, run_id",
        )
        .bind(plan)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db(e))?;
        Ok(records
            .into_iter()
            .map(|r| RunRow {
                run_id: r.get(0),
                plan: r.get(1),
                plan_path: r.get(2),
                mode: r.get(3),
                concurrency: to_u32(r.get(4)),
                agents: to_u32(r.get(5)),
                outcome: r.get(6),
                started_at_ms: r.get(7),
                finished_at_ms: r.get(8),
                wall_secs: r.get(9),
                predicted_secs: r.get(10),
                prediction_basis: r.get(11),
                cost_usd: r.get(12),
            })
            .collect())
    }

    /// Copies what the write-ahead log holds into the file, without waiting
    /// for readers (a passive checkpoint): a run checkpoints after each early
    /// write of its agents' rows, so that closing the store at its end, which
    /// checkpoints too, has only the end's rows left to copy.
    pub async fn checkpoint(&self) -> Result<(), HistoryError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.db(e))
    }

    /// Closes the connection (waits for pending writes).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value.max(0)).unwrap_or(0)
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(run: &str, agent: &str) -> HistoryRow {
        HistoryRow {
            run_id: run.into(),
            plan: "p".into(),
            plan_path: Some("plan.json".into()),
            agent_id: agent.into(),
            wave: Some("w1".into()),
            platform: "shell".into(),
            model: None,
            scope: vec!["svc/a".into()],
            estimate_secs: Some(60.0),
            actual_secs: Some(90.0),
            attempt_secs: Some(75.0),
            attempts: 2,
            failed_attempts: 1,
            outcome: "completed".into(),
            gates_passed: 1,
            gates_failed: 0,
            input_tokens: 10,
            output_tokens: 5,
            cost_usd: 0.25,
            started_at_ms: Some(1_000),
            finished_at_ms: 91_000,
        }
    }

    pub(crate) fn run(id: &str, plan_path: Option<&str>, predicted: Option<f64>) -> RunRow {
        RunRow {
            run_id: id.into(),
            plan: "p".into(),
            plan_path: plan_path.map(str::to_string),
            mode: "waves".into(),
            concurrency: 2,
            agents: 1,
            outcome: "failed".into(),
            started_at_ms: Some(1_000),
            finished_at_ms: 91_000,
            wall_secs: Some(90.0),
            predicted_secs: predicted,
            prediction_basis: "estimates".into(),
            cost_usd: 0.25,
        }
    }

    #[tokio::test]
    async fn a_resumed_run_replaces_its_rows_and_keeps_its_first_prediction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/history.sqlite");
        let store = HistoryStore::open(&path).await.unwrap();
        store
            .upsert_run(&run("r1", Some("plan.json"), Some(60.0)), &[row("r1", "A")])
            .await
            .unwrap();
        let mut again = row("r1", "A");
        again.outcome = "failed".into();
        again.plan_path = None;
        let mut resumed = run("r1", None, Some(10.0));
        resumed.outcome = "succeeded".into();
        store.upsert_run(&resumed, &[again]).await.unwrap();
        store
            .upsert_run(&run("r2", None, None), &[row("r2", "A")])
            .await
            .unwrap();
        store.close().await;

        let store = HistoryStore::open_existing(&path).await.unwrap().unwrap();
        let rows = store.rows(&RowFilter::default()).await.unwrap();
        assert_eq!(rows.len(), 2, "one row per run and agent");
        assert_eq!(rows[0].outcome, "failed");
        assert_eq!(rows[0].plan_path.as_deref(), Some("plan.json"));
        assert_eq!(rows[0].scope, vec!["svc/a".to_string()]);
        let runs = store.runs(Some("p")).await.unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].outcome, "succeeded");
        assert_eq!(runs[0].predicted_secs, Some(60.0));
        let others = store
            .rows(&RowFilter {
                plan: Some("p".into()),
                exclude_run: Some("r1".into()),
            })
            .await
            .unwrap();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].run_id, "r2");
    }

    #[tokio::test]
    async fn agent_rows_have_only_the_index_a_query_uses() {
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::open(&dir.path().join("history.sqlite"))
            .await
            .unwrap();
        let indexes: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'agent_runs' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
        assert_eq!(indexes, vec!["agent_runs_by_plan_in_time".to_string()]);
        let explain = format!("EXPLAIN QUERY PLAN {}", rows_query(true));
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(explain))
            .bind("p")
            .bind(None::<String>)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("agent_runs_by_plan_in_time")),
            "{plan:?}"
        );
        store.close().await;
    }

    /// Pages a run's upsert wrote: the frames in the write-ahead log, which
    /// each close empties (it checkpoints the log into the file).
    async fn pages_written_by(path: &Path, run_id: &str, finished_at_ms: i64) -> i64 {
        let store = HistoryStore::open(path).await.unwrap();
        let rows: Vec<HistoryRow> = (0..300)
            .map(|i| HistoryRow {
                finished_at_ms: finished_at_ms + i,
                ..row(run_id, &format!("AGENT-{i:04}"))
            })
            .collect();
        store
            .upsert_run(&run(run_id, None, None), &rows)
            .await
            .unwrap();
        let frames: i64 = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get(1);
        store.close().await;
        frames
    }

    #[tokio::test]
    async fn a_new_run_of_a_long_recorded_plan_writes_as_few_pages_as_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let first = pages_written_by(&path, "run-000", 1_000_000).await;
        for n in 1..30 {
            pages_written_by(&path, &format!("run-{n:03}"), 1_000_000 + n * 10_000).await;
        }
        let last = pages_written_by(&path, "run-030", 2_000_000).await;
        // Indexed by agent, the 31st run added an entry beside each agent's
        // 30 earlier ones: all over the index (more than twice the pages).
        assert!(
            last <= first + 4,
            "the first run wrote {first} pages, the 31st {last}"
        );
    }

    #[tokio::test]
    async fn a_missing_file_is_an_empty_history_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        assert!(HistoryStore::open_existing(&path).await.unwrap().is_none());
        let store = HistoryStore::open(&path).await.unwrap();
        sqlx::raw_sql("PRAGMA user_version = 99")
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let err = HistoryStore::open(&path).await.unwrap_err().to_string();
        assert!(err.contains("schema version 99 is newer"), "{err}");
    }
}
