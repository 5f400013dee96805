//! The command line: argument types, dispatch, and the mapping of errors to exit codes.
//!
//! Exit codes (documented in the README):
//! 0 success; 1 the run finished with failed agents or gates; 2 usage error,
//! unreadable or invalid plan; 3 paused, needs a person; 130 interrupted.

mod analyze;
mod common;
mod doctor;
mod drivers;
mod history;
mod ingest;
mod mock_provider;
mod render;
mod report;
mod run;
mod schema;
mod serve;
mod simulate;
mod store;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use common::CliError;

/// Exit code: all agents complete and gates passed (or the command succeeded).
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished with failed agents or gates.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage error, unreadable or invalid plan.
pub const EXIT_INVALID: u8 = 2;
/// Exit code: paused, a person is needed (pause-wave, manual-review, pause-and-resolve).
pub const EXIT_PAUSED: u8 = 3;
/// Exit code: interrupted (Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Run many LLM agents in parallel on real software work, and keep them honest.
///
/// `llm-orchestrate --plan P [options]` (the seed's form) is the same as `llm-orchestrate run --plan P [options]`.
#[derive(Debug, Parser)]
#[command(name = "llm-orchestrate", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The seed's bare form: run a plan.
    #[command(flatten)]
    pub run: run::RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan: schedule, drive and journal its agents.
    Run(run::RunArgs),
    /// Continue an interrupted or paused run; completed agents never run again.
    Resume(run::ResumeArgs),
    /// Show a run's state (works while it runs, from another terminal).
    Status(run::StatusArgs),
    /// Remove a run's git worktrees (its branches and commits stay).
    Clean(run::CleanArgs),
    /// Serve the web dashboard of runs (live ones too) until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Print a run's report, or write it as one self-contained HTML file (`--html`).
    Report(report::ReportArgs),
    /// Feed an LLM's reply to a `generic` agent back into its run, and continue the run.
    Ingest(ingest::IngestArgs),
    /// Check a plan and report every problem (exit 0 valid, 2 invalid).
    Validate(validate::ValidateArgs),
    /// Dependency levels, critical path, makespan estimates and wave composition.
    Analyze(analyze::AnalyzeArgs),
    /// Simulate a run of the plan (durations and failure rates from history) and draw its Gantt chart.
    Simulate(simulate::SimulateArgs),
    /// Show quality and duration trends across recorded runs.
    History(history::HistoryArgs),
    /// Render the plan as a platform prompt (Claude, GPT, Gemini, open-source, generic).
    Render(render::RenderArgs),
    /// Print the plan format's JSON Schema.
    Schema(schema::SchemaArgs),
    /// Show what `--platform auto` would choose and why.
    Doctor(doctor::DoctorArgs),
    /// Serve a script over the LLM providers' wire formats, for offline tests.
    MockProvider(mock_provider::MockProviderArgs),
    /// Serve a PostgreSQL store's queue: claim agents of runs started with
    /// `--store … --workers-only` and run them on this machine.
    Worker(worker::WorkerArgs),
    /// Internal: the janitor process that kills agents left by a killed orchestrator.
    #[command(name = "__janitor", hide = true)]
    Janitor,
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None if cli.run.plan.is_none() => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            return ExitCode::from(EXIT_INVALID);
        }
        None => run::run(cli.run),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Resume(args)) => run::resume(args),
        Some(Command::Status(args)) => run::status(args),
        Some(Command::Clean(args)) => run::clean(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Report(args)) => report::run(args),
        Some(Command::Ingest(args)) => ingest::run(args),
        Some(Command::Validate(args)) => validate::run(args),
        Some(Command::Analyze(args)) => analyze::run(args),
        Some(Command::Simulate(args)) => simulate::run(args),
        Some(Command::History(args)) => history::run(args),
        Some(Command::Render(args)) => render::run(args),
        Some(Command::Schema(args)) => schema::run(args),
        Some(Command::Doctor(args)) => doctor::run(args),
        Some(Command::MockProvider(args)) => mock_provider::run(args),
        Some(Command::Worker(args)) => worker::run(args),
        Some(Command::Janitor) => Ok(crate::drivers::janitor::janitor_main()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
