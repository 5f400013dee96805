//! `llm-orchestrate validate PLAN [--json] [--strict] [--mode M]`.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::common::{CliError, write_output};
use crate::plan::{ExecutionMode, LoadOptions, LocatedDiagnostic, load_path};

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The plan file (JSON or YAML; `-` reads standard input).
    pub plan: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Treat unknown fields and duplicate keys as errors.
    #[arg(long)]
    pub strict: bool,
    /// Check for this execution mode instead of the plan's `executionMode`.
    #[arg(long)]
    pub mode: Option<ExecutionMode>,
}

#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    valid: bool,
    errors: usize,
    warnings: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    waves: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<usize>,
    diagnostics: Vec<LocatedDiagnostic>,
}

/// Runs `validate`: exit 0 when valid (warnings allowed), 2 when invalid.
pub fn run(args: ValidateArgs) -> Result<u8, CliError> {
    let loaded = load_path(
        &args.plan,
        LoadOptions {
            strict: args.strict,
            mode: args.mode,
        },
    )?;
    let errors = loaded.error_count();
    let report = Report {
        file: &loaded.source.name,
        valid: errors == 0,
        errors,
        warnings: loaded.warning_count(),
        waves: loaded.plan.as_ref().map(|p| p.waves.len()),
        agents: loaded.plan.as_ref().map(|p| p.agent_count()),
        diagnostics: loaded.located(),
    };
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
        s.push('\n');
        s
    } else {
        let mut s = String::new();
        for d in &report.diagnostics {
            s.push_str(&d.to_string());
            s.push('\n');
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        if report.valid {
            s.push_str(&format!(
                "{}: valid ({}, {}), {}\n",
                report.file,
                plural(report.waves.unwrap_or(0), "wave"),
                plural(report.agents.unwrap_or(0), "agent"),
                plural(report.warnings, "warning")
            ));
        } else {
            s.push_str(&format!(
                "{}: invalid, {}, {}\n",
                report.file,
                plural(report.errors, "error"),
                plural(report.warnings, "warning")
            ));
        }
        s
    };
    write_output(None, &text)?;
    Ok(if report.valid {
        super::EXIT_OK
    } else {
        super::EXIT_INVALID
    })
}
