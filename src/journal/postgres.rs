//! The PostgreSQL journal: a run's events in the shared store's `events`
//! table, keyed by run id, with the same JSON encoding as the SQLite journal.
//!
//! A committed write is durable when [`PgJournal::write`] returns (with the
//! server's default `synchronous_commit = on`), so [`PgJournal::sync`] has
//! nothing left to do. As with SQLite, the primary key (run, seq) refuses a
//! sequence number that is already taken: two coordinators can never both
//! extend one run.

use sqlx::Row;

use super::event::{Event, EventRecord};
use crate::store::{PgStore, StoreError};

/// Rows per INSERT statement (6 parameters each, under PostgreSQL's 65,535).
const ROWS_PER_INSERT: usize = 1000;

/// One run's journal in a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgJournal {
    store: PgStore,
    run_id: String,
}

impl PgJournal {
    /// Opens the journal of `run_id` in `store`, registering the run.
    pub async fn open(store: PgStore, run_id: &str) -> Result<Self, StoreError> {
        store.create_run(run_id).await?;
        Ok(Self {
            store,
            run_id: run_id.to_string(),
        })
    }

    /// The run.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The store.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    fn encode(&self, event: &Event, seq: i64) -> Result<String, StoreError> {
        serde_json::to_string(event).map_err(|e| {
            self.store
                .corrupt(format!("event {seq} of run {}", self.run_id), e)
        })
    }

    /// Appends events in one transaction, numbering them after the last one.
    pub async fn append(&self, events: &[Event]) -> Result<Vec<EventRecord>, StoreError> {
        let at_ms = super::now_ms();
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| self.store.db(e))?;
        let last: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events WHERE run_id = $1")
                .bind(&self.run_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.store.db(e))?
                .get(0);
        let records: Vec<EventRecord> = events
            .iter()
            .enumerate()
            .map(|(i, event)| EventRecord {
                seq: last + 1 + i as i64,
                at_ms,
                event: event.clone(),
            })
            .collect();
        for chunk in records.chunks(ROWS_PER_INSERT) {
            self.insert(chunk)?
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.store.db(e))?;
        }
        tx.commit().await.map_err(|e| self.store.db(e))?;
        Ok(records)
    }

    /// Writes records whose sequence numbers the caller assigned, in one
    /// transaction; a taken sequence number fails the whole write.
    pub async fn write(&self, records: &[EventRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| self.store.db(e))?;
        for chunk in records.chunks(ROWS_PER_INSERT) {
            self.insert(chunk)?
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.store.db(e))?;
        }
        tx.commit().await.map_err(|e| self.store.db(e))
    }

    fn insert(
        &self,
        records: &[EventRecord],
    ) -> Result<sqlx::QueryBuilder<sqlx::Postgres>, StoreError> {
        let mut bodies = Vec::with_capacity(records.len());
        for record in records {
            bodies.push(self.encode(&record.event, record.seq)?);
        }
        let mut insert =
            sqlx::QueryBuilder::new("INSERT INTO events (run_id, seq, at_ms, kind, agent, body) ");
        insert.push_values(records.iter().zip(bodies), |mut row, (record, body)| {
            row.push_bind(self.run_id.clone())
                .push_bind(record.seq)
                .push_bind(record.at_ms)
                .push_bind(record.event.kind())
                .push_bind(record.event.agent().map(str::to_string))
                .push_bind(body)
                .push_unseparated("::json");
        });
        Ok(insert)
    }

    /// Every event of the run after `seq`, in order.
    pub async fn read_after(&self, seq: i64) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, body::text FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(&self.run_id)
        .bind(seq)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| self.store.db(e))?;
        rows.into_iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let body: String = row.get(2);
                let event = serde_json::from_str(&body).map_err(|e| {
                    self.store
                        .corrupt(format!("event {seq} of run {}", self.run_id), e)
                })?;
                Ok(EventRecord {
                    seq,
                    at_ms: row.get(1),
                    event,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test server's URL; `None` (skipped, loudly) outside CI without one.
    fn test_url() -> Option<String> {
        match std::env::var("LLMO_TEST_PG_URL") {
            Ok(url) => Some(url),
            Err(_) if std::env::var_os("CI").is_some() => {
                panic!("LLMO_TEST_PG_URL is not set under CI")
            }
            Err(_) => {
                eprintln!("*** SKIPPED: set LLMO_TEST_PG_URL to test the PostgreSQL journal ***");
                None
            }
        }
    }

    #[tokio::test]
    async fn events_round_trip_and_a_taken_sequence_number_is_refused() {
        let Some(url) = test_url() else {
            return;
        };
        let store = PgStore::connect(&url, 2).await.unwrap();
        assert!(store.schema_version().await.unwrap() >= 2);
        let run_id = format!(
            "journal-test-{}-{}",
            std::process::id(),
            super::super::now_ms()
        );
        let journal = PgJournal::open(store.clone(), &run_id).await.unwrap();
        let records = journal
            .append(&[
                Event::RunStarted {
                    run_id: run_id.clone(),
                    plan: serde_json::json!({"waves": [{"agents": [{"agentId": "A"}]}]}),
                },
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 1,
                },
            ])
            .await
            .unwrap();
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let next = EventRecord {
            seq: 3,
            at_ms: 7,
            event: Event::RunResumed,
        };
        journal.write(std::slice::from_ref(&next)).await.unwrap();
        assert!(journal.write(&[next]).await.is_err(), "seq 3 is taken");
        let read = journal.read_after(0).await.unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[1].event, records[1].event);
        let state = crate::journal::RunState::replay(&read);
        assert_eq!(state.run_id, run_id);
        assert_eq!(
            store.find_run(Some(&run_id)).await.unwrap(),
            Some(run_id.clone())
        );
        store.close().await;
    }
}
