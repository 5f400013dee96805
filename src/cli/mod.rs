//! The command line: argument types, dispatch, and the mapping of errors to exit codes.
//!
//! Exit codes (documented in the README):
//! 0 success; 1 the run finished with failed agents or gates; 2 usage error,
//! unreadable or invalid plan; 3 paused, needs a person; 130 interrupted.

mod analyze;
mod common;
mod doctor;
mod render;
mod schema;
mod validate;

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
#[derive(Debug, Parser)]
#[command(name = "llm-orchestrate", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a plan and report every problem (exit 0 valid, 2 invalid).
    Validate(validate::ValidateArgs),
    /// Dependency levels, critical path, makespan estimates and wave composition.
    Analyze(analyze::AnalyzeArgs),
    /// Render the plan as a platform prompt (Claude, GPT, Gemini, open-source, generic).
    Render(render::RenderArgs),
    /// Print the plan format's JSON Schema.
    Schema(schema::SchemaArgs),
    /// Show what `--platform auto` would choose and why.
    Doctor(doctor::DoctorArgs),
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Render(args) => render::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Doctor(args) => doctor::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
