//! `llm-orchestrate doctor`: what `--platform auto` would choose and why.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::common::{CliError, write_output};
use crate::drivers::detect::{Choice, Evidence, gather};

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each CLI's `--version` and each server probe.
    #[arg(long, default_value = "5s", value_parser = crate::plan::duration::parse_duration)]
    pub timeout: Duration,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    evidence: Evidence,
    choice: Choice,
}

/// Runs `doctor`. Always exits 0: it reports, it does not judge.
pub fn run(args: DoctorArgs) -> Result<u8, CliError> {
    let evidence = gather(args.timeout);
    let choice = evidence.choose();
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&Report { evidence, choice }).unwrap_or_default();
        s.push('\n');
        s
    } else {
        let mut s = String::from("API keys (names only):\n");
        for k in &evidence.keys {
            s.push_str(&format!(
                "  {:<20} {}\n",
                k.name,
                if k.present { "set" } else { "not set" }
            ));
        }
        s.push_str("Agent CLIs on PATH:\n");
        for c in &evidence.clis {
            match &c.path {
                Some(path) => s.push_str(&format!(
                    "  {:<20} {} ({})\n",
                    c.name,
                    path.display(),
                    c.version.as_deref().unwrap_or("version unknown")
                )),
                None => s.push_str(&format!("  {:<20} not found\n", c.name)),
            }
        }
        s.push_str("Local OpenAI-compatible servers:\n");
        if evidence.servers.is_empty() {
            s.push_str("  none configured (set OLLAMA_HOST or OPENAI_BASE_URL)\n");
        }
        for v in &evidence.servers {
            s.push_str(&format!(
                "  {:<20} {} {} ({})\n",
                v.source,
                v.url,
                if v.reachable {
                    "reachable"
                } else {
                    "unreachable"
                },
                v.detail
            ));
        }
        s.push_str(&format!(
            "\n--platform auto chooses: {}\n  because {}\n",
            choice.platform, choice.reason
        ));
        s
    };
    write_output(None, &text)?;
    Ok(super::EXIT_OK)
}
