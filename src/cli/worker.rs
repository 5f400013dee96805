//! `worker`: serve a PostgreSQL store's queue on this machine (see [`crate::worker`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::CliError;
use crate::drivers::Driver;
use crate::plan::duration::parse_duration;
use crate::plan::{Agent, Platform};
use crate::worker::{DriverFactory, WorkerOptions};

/// Arguments of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The PostgreSQL store the coordinator uses (`postgres://USER:PASSWORD@HOST:PORT/DB`).
    #[arg(long, env = "LLMO_STORE", value_name = "URL")]
    pub store: String,
    /// Most agents this worker runs at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: u32,
    /// Only claim agents of these kinds (comma-separated): a driver name
    /// (`shell`, `claude-code`, `anthropic`, …) for agents that name their
    /// driver or have a `command` (`shell`), else a platform (`claude`, `gpt`,
    /// `gemini`, `open-source`, `generic`, `auto`). Default: every kind.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub platforms: Option<Vec<String>>,
    /// How long a claim lasts without a heartbeat; after that the agent is
    /// queued again (attempt + 1) and this worker's late result is rejected.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How often the worker renews its leases (must be shorter than --lease).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Folder agents run in (each in its scope folder under it); run files
    /// go to `<workdir>/.llm-orchestrate/runs/<run-id>/`.
    #[arg(long, default_value = ".")]
    pub workdir: PathBuf,
    /// This worker's id in the queue (default: `<host>-<pid>-<random>`).
    #[arg(long)]
    pub id: Option<String>,
    /// Exit after finding no work for this long (default: serve until stopped).
    #[arg(long, value_parser = parse_duration)]
    pub idle_exit: Option<Duration>,
    /// Print a line for each attempt started and finished.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Builds and caches local drivers by kind.
struct LocalDrivers {
    capacity: usize,
    built: Mutex<HashMap<String, Arc<dyn Driver>>>,
}

impl DriverFactory for LocalDrivers {
    fn driver(&self, agent: &Agent, platform: Platform) -> Result<Arc<dyn Driver>, String> {
        let key = format!(
            "{}|{}|{}",
            crate::store::wire::routing_name(agent, platform),
            agent.base_url.as_deref().unwrap_or(""),
            agent.command.is_some()
        );
        if let Ok(built) = self.built.lock()
            && let Some(d) = built.get(&key)
        {
            return Ok(Arc::clone(d));
        }
        let driver = super::drivers::driver_for(agent, platform, self.capacity)?;
        if let Ok(mut built) = self.built.lock() {
            built.insert(key, Arc::clone(&driver));
        }
        Ok(driver)
    }
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{:04x}", std::process::id(), nanos & 0xffff)
}

/// Runs `worker`.
pub fn run(args: WorkerArgs) -> Result<u8, CliError> {
    if args.heartbeat >= args.lease {
        return Err(CliError::Usage(format!(
            "--heartbeat ({:?}) must be shorter than --lease ({:?}), or every lease would expire",
            args.heartbeat, args.lease
        )));
    }
    std::fs::create_dir_all(&args.workdir).map_err(|e| {
        CliError::Usage(format!(
            "cannot create --workdir {}: {e}",
            args.workdir.display()
        ))
    })?;
    let workdir = std::fs::canonicalize(&args.workdir).unwrap_or_else(|_| args.workdir.clone());
    let capacity = args.capacity as usize;
    let options = WorkerOptions {
        id: args.id.clone().unwrap_or_else(default_id),
        capacity,
        platforms: args.platforms.clone(),
        lease: args.lease,
        heartbeat: args.heartbeat,
        workdir,
        idle_poll: (args.lease / 2).clamp(Duration::from_millis(100), Duration::from_secs(1)),
        idle_exit: args.idle_exit,
        verbose: args.verbose,
    };
    let factory = Arc::new(LocalDrivers {
        capacity,
        built: Mutex::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        // A pool big enough for the attempts' writes, the heartbeat and claims.
        let connections = (capacity as u32).clamp(2, 16) + 2;
        let store = crate::store::PgStore::connect(&args.store, connections)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        eprintln!(
            "worker {}: serving {} (capacity {capacity}, lease {:?}, heartbeat {:?})",
            options.id,
            store.place(),
            options.lease,
            options.heartbeat
        );
        let stop = CancellationToken::new();
        stop_on_signal(stop.clone(), options.id.clone());
        let id = options.id.clone();
        let summary = crate::worker::serve(store, options, factory, stop)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        eprintln!(
            "worker {id}: stopped after {} claim(s): {} result(s) accepted, {} rejected (lease lost)",
            summary.claimed, summary.finished, summary.rejected
        );
        Ok(super::EXIT_OK)
    })
}

/// First Ctrl-C / SIGTERM: claim nothing more, finish what runs; second: exit at once
/// (the leases expire and the agents are queued again elsewhere).
fn stop_on_signal(stop: CancellationToken, id: String) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for round in 0..2 {
            match &mut term {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = t.recv() => {}
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            if round == 0 {
                eprintln!(
                    "worker {id}: stopping: finishing running agents (signal again to exit at once)"
                );
                stop.cancel();
            } else {
                std::process::exit(i32::from(super::EXIT_INTERRUPTED));
            }
        }
    });
}
