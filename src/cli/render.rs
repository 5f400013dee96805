//! `llm-orchestrate render --plan PLAN --platform P [--out FILE] [--template FILE]`.

use std::path::PathBuf;

use clap::Args;

use super::common::{CliError, load_valid_plan, write_output};
use crate::plan::LoadOptions;
use crate::render::{RenderPlatform, render};

/// Arguments of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The plan file.
    #[arg(long)]
    pub plan: PathBuf,
    /// The platform pattern to render.
    #[arg(long, value_enum)]
    pub platform: RenderPlatform,
    /// Write to this file instead of standard output. For `gemini` this is the
    /// batch request file (JSONL) and the instructions go beside it with `.md`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use this template file instead of the built-in one (it can include
    /// `partials/status-protocol.md`, `partials/quality-gates.md`, `partials/error-recovery.md`).
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Treat unknown fields as errors.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `render`.
pub fn run(args: RenderArgs) -> Result<u8, CliError> {
    let plan = load_valid_plan(
        &args.plan,
        LoadOptions {
            strict: args.strict,
            mode: None,
        },
    )?;
    let template = match &args.template {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!("cannot read template {}: {e}", path.display()))
        })?),
        None => None,
    };
    let rendered = render(&plan, args.platform, template.as_deref())
        .map_err(|e| CliError::Template(e.to_string()))?;
    match (&rendered.batch_jsonl, &args.out) {
        (Some(jsonl), Some(out)) => {
            write_output(Some(out), jsonl)?;
            let instructions = out.with_extension("md");
            write_output(Some(&instructions), &rendered.document)?;
            eprintln!(
                "wrote {} (batch requests) and {} (instructions)",
                out.display(),
                instructions.display()
            );
        }
        (Some(jsonl), None) => {
            let text = format!(
                "{}\n### Batch Request File (JSONL)\n\n```jsonl\n{jsonl}```\n",
                rendered.document
            );
            write_output(None, &text)?;
        }
        (None, out) => write_output(out.as_deref(), &rendered.document)?,
    }
    Ok(super::EXIT_OK)
}
