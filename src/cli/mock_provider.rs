//! `llm-orchestrate mock-provider --script FILE [--addr 127.0.0.1:PORT]`: serve
//! a script over the providers' wire formats until Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::common::CliError;
use crate::mock_provider::{MockServer, Script};

/// Arguments of `mock-provider`.
#[derive(Debug, Args)]
pub struct MockProviderArgs {
    /// The script file (JSON): per agent, the turns to answer with and the faults to inject.
    #[arg(long)]
    pub script: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub addr: SocketAddr,
}

/// Runs `mock-provider`: prints `mock-provider listening on URL` and serves
/// until interrupted (exit 0); a bad script or address exits 2.
pub fn run(args: MockProviderArgs) -> Result<u8, CliError> {
    let script = Script::load(&args.script).map_err(|e| CliError::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let server = MockServer::start(script, args.addr)
            .await
            .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.addr)))?;
        let stop = interrupted()?;
        let line = format!("mock-provider listening on {}\n", server.base_url());
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|source| CliError::Write {
                path: PathBuf::from("<stdout>"),
                source,
            })?;
        drop(stdout);
        stop.await;
        server.shutdown().await;
        Ok(super::EXIT_OK)
    })
}

/// Resolves on the first Ctrl-C or SIGTERM. The handlers are installed at
/// once (before the listening line is printed), the waiting happens later.
pub(super) fn interrupted() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind| {
        signal(kind).map_err(|e| CliError::Usage(format!("cannot handle signals: {e}")))
    };
    let mut int = install(SignalKind::interrupt())?;
    let mut term = install(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
