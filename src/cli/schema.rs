//! `llm-orchestrate schema`: the plan's JSON Schema, generated from the Rust types.

use std::path::PathBuf;

use clap::Args;

use super::common::{CliError, write_output};

/// Arguments of `schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write the schema to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The JSON Schema of the plan format.
pub fn plan_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(crate::plan::Plan).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), "llm-orchestrate execution plan".into());
    }
    schema
}

/// Prints the schema.
pub fn run(args: SchemaArgs) -> Result<u8, CliError> {
    let mut text = serde_json::to_string_pretty(&plan_schema()).unwrap_or_default();
    text.push('\n');
    write_output(args.out.as_deref(), &text)?;
    Ok(super::EXIT_OK)
}
