//! `llm-orchestrate serve [RUN...]`: the web dashboard of finished or running
//! runs, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::CliError;
use crate::dashboard::runs::Catalog;
use crate::dashboard::server::{Bound, DEFAULT_ADDR, parse_addr};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Runs to serve: ids, unique id prefixes, or run folders (default:
    /// every run in --run-dir, found again on each page load).
    pub runs: Vec<String>,
    /// Folder holding the runs.
    #[arg(long, default_value = ".llm-orchestrate/runs")]
    pub run_dir: PathBuf,
    /// Address to listen on (a bare port means 127.0.0.1:PORT; port 0 picks
    /// a free one). Any address but 127.0.0.1 or [::1] needs --token.
    #[arg(long, default_value = DEFAULT_ADDR, value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Access token: every request must carry it (`Authorization: Bearer T`
    /// or `?token=T`).
    #[arg(
        long,
        env = "LLMO_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "T"
    )]
    pub token: Option<String>,
}

/// A run given on the command line: a run folder (holding `journal.sqlite`),
/// else a run id or unique prefix in `runs`.
pub fn locate_run(runs: &Path, run: &str) -> Result<PathBuf, CliError> {
    let path = Path::new(run);
    if path.join("journal.sqlite").is_file() {
        return Ok(path.to_path_buf());
    }
    super::run::find_run(runs, Some(run))
}

/// Runs `serve`: prints `dashboard: URL` on stderr and serves until
/// interrupted (exit 0); an unknown run, a bad address or a missing token
/// exits 2.
pub fn run(args: ServeArgs) -> Result<u8, CliError> {
    let pinned = args
        .runs
        .iter()
        .map(|r| locate_run(&args.run_dir, r))
        .collect::<Result<Vec<_>, _>>()?;
    let catalog = if pinned.is_empty() {
        Catalog::new(Some(args.run_dir.clone()), Vec::new(), None)
    } else {
        Catalog::new(None, pinned, None)
    };
    let bound = Bound::bind(args.addr, args.token.as_deref())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let stop = super::mock_provider::interrupted()?;
        eprintln!("dashboard: {}", bound.url());
        if args.token.is_some() {
            eprintln!(
                "dashboard: requests need the token (Authorization: Bearer <token>, or ?token=<token> in the URL)"
            );
        }
        bound
            .serve(catalog, stop)
            .await
            .map_err(|e| CliError::Usage(format!("the dashboard stopped: {e}")))?;
        Ok(super::EXIT_OK)
    })
}
