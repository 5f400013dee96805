//! Codex CLI (`codex exec --json`).
//!
//! # Command
//!
//! `codex exec --json --skip-git-repo-check --sandbox <mode> [-m M]
//! [-c model_providers.local…] <cliArgs> -- <prompt>`. Codex ignores
//! `OPENAI_BASE_URL`, so when it is set the driver adds a `local` model
//! provider with that base URL (`wire_api = "responses"`, and `env_key =
//! "OPENAI_API_KEY"` when that variable is set: Codex reads the key from the
//! environment, it is never on the command line). Without it Codex uses its
//! own configuration and login. The program is `LLMO_CODEX_BIN` when set, else
//! `codex` on PATH.
//!
//! # Permissions
//!
//! | `permissions`     | `--sandbox`          |
//! |-------------------|----------------------|
//! | `workspace-write` | `workspace-write`: writes in the working directory, commands sandboxed |
//! | `read-only`       | `read-only`          |
//! | `full-access`     | `danger-full-access` |
//!
//! # Events and outcome
//!
//! `thread.started` gives the session (thread) id; completed `agent_message`
//! items give text; completed `command_execution`, `file_change`,
//! `mcp_tool_call` and `web_search` items count as tool uses;
//! `turn.completed` gives usage (tokens only: priced with the price table).
//! The events decide, not the exit code (Codex has exited 0 after a failed
//! turn): a `turn.failed` fails the attempt with its message; a
//! `turn.completed` (and no failure) ended normally; neither fails it
//! ("ended without turn.completed", with the last `error` message). `error`
//! events saying `Reconnecting…` are transient and ignored.

use std::ffi::OsString;

use serde_json::Value;

use super::{
    Attempt, CliCommand, CliFlavor, EventReader, Exit, Observation, count_field, str_field,
};
use crate::plan::Permissions;
use crate::providers::Usage;

/// The Codex flavour (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Codex;

impl CliFlavor for Codex {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn program(&self) -> &'static str {
        "codex"
    }

    fn program_variable(&self) -> &'static str {
        "LLMO_CODEX_BIN"
    }

    fn command(&self, attempt: &Attempt<'_>) -> Result<CliCommand, String> {
        let sandbox = match attempt.permissions {
            Permissions::WorkspaceWrite => "workspace-write",
            Permissions::ReadOnly => "read-only",
            Permissions::FullAccess => "danger-full-access",
        };
        let mut args: Vec<OsString> = vec![
            "exec".into(),
            "--json".into(),
            "--skip-git-repo-check".into(),
            "--sandbox".into(),
            sandbox.into(),
        ];
        if let Some(model) = attempt.model {
            args.extend(["-m".into(), model.into()]);
        }
        let base_url = std::env::var("OPENAI_BASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        let has_key = std::env::var_os("OPENAI_API_KEY").is_some_and(|k| !k.is_empty());
        args.extend(
            provider_overrides(base_url.as_deref(), has_key)
                .into_iter()
                .flat_map(|value| [OsString::from("-c"), OsString::from(value)]),
        );
        Ok(CliCommand {
            args,
            trailing: vec!["--".into(), attempt.prompt.into()],
            env: Vec::new(),
        })
    }

    fn reader(&self, attempt: &Attempt<'_>) -> Box<dyn EventReader> {
        Box::new(CodexReader {
            model: attempt.model.unwrap_or("codex").to_string(),
            completed: false,
            failed: None,
            last_error: None,
        })
    }
}

/// The `-c` values selecting a `local` provider at `base_url` (TOML strings).
fn provider_overrides(base_url: Option<&str>, has_key: bool) -> Vec<String> {
    let Some(base_url) = base_url else {
        return Vec::new();
    };
    let toml = |s: &str| serde_json::Value::from(s).to_string();
    let mut values = vec![
        "model_provider=local".to_string(),
        format!("model_providers.local.name={}", toml("local")),
        format!(
            "model_providers.local.base_url={}",
            toml(base_url.trim_end_matches('/'))
        ),
        format!("model_providers.local.wire_api={}", toml("responses")),
    ];
    if has_key {
        values.push(format!(
            "model_providers.local.env_key={}",
            toml("OPENAI_API_KEY")
        ));
    }
    values
}

/// Reads Codex's `exec --json` events.
#[derive(Debug)]
pub struct CodexReader {
    model: String,
    completed: bool,
    failed: Option<String>,
    last_error: Option<String>,
}

impl EventReader for CodexReader {
    fn event(&mut self, event: &Value, out: &mut Vec<Observation>) {
        match str_field(event, "type") {
            Some("thread.started") => {
                if let Some(id) = str_field(event, "thread_id") {
                    out.push(Observation::Session(id.to_string()));
                }
            }
            Some("item.completed") => {
                let item = &event["item"];
                match str_field(item, "type") {
                    Some("agent_message") => {
                        if let Some(text) = str_field(item, "text") {
                            out.push(Observation::Text(format!("{text}\n")));
                        }
                    }
                    Some(kind @ ("command_execution" | "file_change" | "web_search")) => {
                        out.push(Observation::Tool(kind.to_string()));
                    }
                    Some("mcp_tool_call") => {
                        let name = str_field(item, "tool").unwrap_or("mcp_tool_call");
                        out.push(Observation::Tool(name.to_string()));
                    }
                    _ => {}
                }
            }
            Some("turn.completed") => {
                self.completed = true;
                let u = &event["usage"];
                out.push(Observation::Usage {
                    model: self.model.clone(),
                    usage: Usage {
                        input_tokens: count_field(u, "input_tokens"),
                        output_tokens: count_field(u, "output_tokens"),
                        cached_input_tokens: count_field(u, "cached_input_tokens"),
                    },
                    cost_usd: None,
                });
            }
            Some("turn.failed") => {
                let message = str_field(&event["error"], "message")
                    .unwrap_or("no message")
                    .to_string();
                self.failed = Some(message);
            }
            Some("error") => {
                if let Some(message) = str_field(event, "message")
                    && !message.trim_start().starts_with("Reconnecting")
                {
                    self.last_error = Some(message.to_string());
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, exit: Exit) -> Result<(), String> {
        if let Some(message) = &self.failed {
            return Err(format!(
                "turn failed: {}",
                super::claude::first_line(message)
            ));
        }
        if self.completed {
            return Ok(());
        }
        let error = self
            .last_error
            .as_deref()
            .map(|e| format!(": {}", super::claude::first_line(e)))
            .unwrap_or_default();
        Err(format!(
            "ended without turn.completed ({}){error}",
            exit.describe()
        ))
    }
}

#[cfg(test)]
mod tests;
