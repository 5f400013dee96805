//! `llm-orchestrate report [RUN] [--html FILE] [--json]`: a run's report,
//! made from its journal at any time (while it runs too).

use std::path::PathBuf;

use clap::Args;

use super::common::{CliError, write_output};

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id, unique id prefix, or run folder; default: the latest run.
    pub run: Option<String>,
    /// Folder holding the runs.
    #[arg(long, default_value = ".llm-orchestrate/runs")]
    pub run_dir: PathBuf,
    /// Write the dashboard's views as one self-contained HTML file (inline
    /// CSS, JS and data; no external references); `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print report.json's content instead of the markdown report.
    #[arg(long, conflicts_with = "html")]
    pub json: bool,
}

/// Runs `report`: the markdown report (or `--json`) on standard output, or
/// the HTML file with `--html`. An unknown run exits 2; a file that cannot be
/// written exits 1.
pub fn run(args: ReportArgs) -> Result<u8, CliError> {
    let run_dir = match &args.run {
        Some(run) => super::serve::locate_run(&args.run_dir, run)?,
        None => super::run::find_run(&args.run_dir, None)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    let now = crate::journal::now_ms();
    let usage = |e: crate::dashboard::DashboardError| CliError::Usage(e.to_string());
    match &args.html {
        Some(out) => {
            let html = runtime
                .block_on(crate::dashboard::page::report_html(&run_dir, now))
                .map_err(usage)?;
            if out.as_os_str() == "-" {
                write_output(None, &html)?;
            } else {
                write_output(Some(out), &html)?;
                eprintln!("wrote {}", out.display());
            }
        }
        None => {
            let state = runtime.block_on(async {
                let journal =
                    crate::journal::Journal::open_read_only(&run_dir.join("journal.sqlite"))
                        .await
                        .map_err(|e| CliError::Usage(e.to_string()))?;
                let state = journal
                    .replay()
                    .await
                    .map_err(|e| CliError::Usage(e.to_string()));
                journal.close().await;
                state
            })?;
            let report = crate::report::run_report(&state, now);
            let mut text = if args.json {
                crate::report::report_json(&report)
            } else {
                crate::report::report_markdown(&report)
            };
            text.push('\n');
            write_output(None, &text)?;
        }
    }
    Ok(super::EXIT_OK)
}
