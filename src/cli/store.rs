//! `--store postgres://…` for `run`, `resume` and `status`: opening a run's
//! journal in the PostgreSQL store, and the coordinator's remote driver
//! (`--workers-only`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::common::CliError;
use crate::drivers::Driver;
use crate::drivers::remote::RemoteDriver;
use crate::journal::{Journal, RunState};
use crate::plan::{DriverKind, Plan};
use crate::store::PgStore;
use crate::store::queue::Queue;

/// Connections a coordinator keeps to the store.
const COORDINATOR_CONNECTIONS: u32 = 10;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Connects to the store.
pub async fn connect(url: &str) -> Result<PgStore, CliError> {
    PgStore::connect(url, COORDINATOR_CONNECTIONS)
        .await
        .map_err(usage)
}

/// The local folder of a run (status.json, logs, reports), created.
fn local_folder(run_dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(run_dir)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", run_dir.display())))
}

/// The journal of a new run in the store (its local folder is `run_dir`).
pub async fn new_run_journal(
    store: &PgStore,
    run_id: &str,
    run_dir: &Path,
) -> Result<Journal, CliError> {
    local_folder(run_dir)?;
    Journal::open_postgres(store.clone(), run_id)
        .await
        .map_err(usage)
}

/// Finds a run in the store (id, unique prefix, or the latest): its journal,
/// its replayed state, and its local run folder under `runs`.
pub async fn open_run(
    store: &PgStore,
    id: Option<&str>,
    runs: &Path,
) -> Result<(PathBuf, RunState, Journal), CliError> {
    let run_id = store.find_run(id).await.map_err(usage)?.ok_or_else(|| {
        CliError::Usage(format!(
            "no run {} in the store {}",
            id.unwrap_or("at all"),
            store.place()
        ))
    })?;
    let journal = Journal::open_postgres(store.clone(), &run_id)
        .await
        .map_err(usage)?;
    let state = journal.replay().await.map_err(usage)?;
    Ok((runs.join(&run_id), state, journal))
}

/// [`open_run`], for a run that goes on here: its local folder is created.
pub async fn reopen_run(
    store: &PgStore,
    id: Option<&str>,
    runs: &Path,
) -> Result<(PathBuf, RunState, Journal), CliError> {
    let opened = open_run(store, id, runs).await?;
    local_folder(&opened.0)?;
    Ok(opened)
}

/// The state of a run in the store.
pub async fn replay(url: &str, id: Option<&str>) -> Result<RunState, CliError> {
    let store = connect(url).await?;
    let (_, state, _) = open_run(&store, id, Path::new(".")).await?;
    store.close().await;
    Ok(state)
}

/// The coordinator's driver with `--workers-only`: every attempt goes to the
/// store's queue. Agents are checked as a local run would check them
/// (unknown drivers, a shell agent without a command), except that agent
/// CLIs and keys are the workers' business.
pub fn remote_driver(
    store: &PgStore,
    run_id: &str,
    plan: &Plan,
) -> Result<Arc<dyn Driver>, CliError> {
    let mut uses_prompt = false;
    let mut refused = Vec::new();
    for (_, _, agent) in plan.agents() {
        if agent.driver == Some(DriverKind::Shell) && agent.command.is_none() {
            refused.push((
                agent.agent_id.clone(),
                super::drivers::SHELL_NEEDS_COMMAND.to_string(),
            ));
        }
        if agent.command.is_none() || agent.driver.is_some_and(|d| d != DriverKind::Shell) {
            uses_prompt = true;
        }
    }
    if !refused.is_empty() {
        return Err(CliError::Usage(super::drivers::cannot_run_message(
            &refused,
        )));
    }
    Ok(Arc::new(RemoteDriver::new(
        Queue::new(store.clone()),
        run_id.to_string(),
        plan.platform,
        uses_prompt,
    )))
}
