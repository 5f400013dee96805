//! Gemini CLI (`gemini -p … -o stream-json`).
//!
//! # Command
//!
//! `gemini [-m M] -p <prompt> -o stream-json --approval-mode <mode> <cliArgs>`
//! with `GEMINI_CLI_TRUST_WORKSPACE=true` (the agent's working directory is
//! the plan's workspace; an untrusted folder would exit 55).
//! `GEMINI_API_KEY`/`GOOGLE_API_KEY` and `GOOGLE_GEMINI_BASE_URL` come from the
//! environment. The program is `LLMO_GEMINI_BIN` when set, else `gemini` on
//! PATH. Without a model Gemini CLI picks one itself (with a routing request
//! first).
//!
//! Headless, Gemini CLI needs an auth type in its settings. When the user's
//! settings (`$GEMINI_CLI_HOME` or `$HOME`, then `.gemini/settings.json`) select
//! none and an API key is in the environment, the driver gives it a home of
//! its own, `agents/<id>/gemini-home/` (`GEMINI_CLI_HOME`), whose
//! `.gemini/settings.json` selects `gemini-api-key`. The key itself is never
//! written anywhere.
//!
//! # Permissions
//!
//! | `permissions`     | `--approval-mode` |
//! |-------------------|-------------------|
//! | `workspace-write` | `auto_edit`: edit tools run without asking; other tools (shell) that would ask are refused headless |
//! | `read-only`       | `plan`            |
//! | `full-access`     | `yolo`            |
//!
//! # Events and outcome
//!
//! `init` gives the session id and model; assistant `message` events give
//! text (streamed deltas); `tool_use` counts a tool use; the final `result`
//! gives usage (`stats.models`, tokens only) and decides: `status: success`
//! ended normally, `status: error` failed with its error message. Without a
//! `result` the exit code explains: 41 authentication, 42 invalid input, 44
//! sandbox error, 52 configuration error, 53 turn limit reached, 54 tool
//! execution error, 55 untrusted workspace, else `exit code N`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{
    Attempt, CliCommand, CliFlavor, EventReader, Exit, Observation, count_field, str_field,
};
use crate::plan::Permissions;
use crate::providers::Usage;

/// Settings selecting API-key authentication (no key in it).
const API_KEY_SETTINGS: &str = r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#;

/// The Gemini CLI flavour (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiCli;

impl CliFlavor for GeminiCli {
    fn name(&self) -> &'static str {
        "gemini-cli"
    }

    fn program(&self) -> &'static str {
        "gemini"
    }

    fn program_variable(&self) -> &'static str {
        "LLMO_GEMINI_BIN"
    }

    fn command(&self, attempt: &Attempt<'_>) -> Result<CliCommand, String> {
        let mode = match attempt.permissions {
            Permissions::WorkspaceWrite => "auto_edit",
            Permissions::ReadOnly => "plan",
            Permissions::FullAccess => "yolo",
        };
        let mut args: Vec<OsString> = Vec::new();
        if let Some(model) = attempt.model {
            args.extend(["-m".into(), model.into()]);
        }
        args.extend([
            "-p".into(),
            attempt.prompt.into(),
            "-o".into(),
            "stream-json".into(),
            "--approval-mode".into(),
            mode.into(),
        ]);
        let mut env: Vec<(String, OsString)> =
            vec![("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into())];
        if let Some(home) = own_home(attempt)? {
            env.push(("GEMINI_CLI_HOME".into(), home.into_os_string()));
        }
        Ok(CliCommand {
            args,
            trailing: Vec::new(),
            env,
        })
    }

    fn reader(&self, attempt: &Attempt<'_>) -> Box<dyn EventReader> {
        Box::new(GeminiReader {
            model: attempt.model.unwrap_or("gemini").to_string(),
            in_message: false,
            result: None,
            last_error: None,
        })
    }
}

/// The home to give Gemini CLI, when the user's selects no auth type and a
/// key is in the environment (see the module documentation).
fn own_home(attempt: &Attempt<'_>) -> Result<Option<PathBuf>, String> {
    let env = |name: &str| {
        attempt
            .task
            .agent
            .env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    };
    if env("GEMINI_API_KEY").is_none() && env("GOOGLE_API_KEY").is_none() {
        return Ok(None);
    }
    let user_home = env("GEMINI_CLI_HOME").or_else(|| env("HOME"));
    if user_home.is_some_and(|home| selects_auth(&Path::new(&home).join(".gemini/settings.json"))) {
        return Ok(None);
    }
    // Absolute: the CLI runs in the agent's working directory, and the run
    // directory may be relative to ours.
    let home = std::path::absolute(attempt.task.agent_dir.join("gemini-home"))
        .map_err(|e| format!("cannot locate the agent's folder: {e}"))?;
    let settings = home.join(".gemini");
    std::fs::create_dir_all(&settings)
        .and_then(|()| std::fs::write(settings.join("settings.json"), API_KEY_SETTINGS))
        .map_err(|e| format!("cannot write {}: {e}", settings.display()))?;
    Ok(Some(home))
}

/// True when a settings file exists and selects an auth type.
fn selects_auth(settings: &Path) -> bool {
    std::fs::read_to_string(settings).is_ok_and(|text| text.contains("selectedType"))
}

/// Reads Gemini CLI's `stream-json` events.
#[derive(Debug)]
pub struct GeminiReader {
    model: String,
    /// Assistant deltas were read and the message has not ended yet.
    in_message: bool,
    /// The `result` event: `Ok` for success, else its error message.
    result: Option<Result<(), String>>,
    last_error: Option<String>,
}

impl EventReader for GeminiReader {
    fn event(&mut self, event: &Value, out: &mut Vec<Observation>) {
        let kind = str_field(event, "type");
        let delta = kind == Some("message")
            && str_field(event, "role") == Some("assistant")
            && event["delta"].as_bool() == Some(true);
        if self.in_message && !delta {
            // The streamed message ended: the next text starts a line.
            self.in_message = false;
            out.push(Observation::Text("\n".into()));
        }
        match kind {
            Some("init") => {
                if let Some(model) = str_field(event, "model") {
                    self.model = model.to_string();
                }
                if let Some(id) = str_field(event, "session_id") {
                    out.push(Observation::Session(id.to_string()));
                }
            }
            Some("message") if str_field(event, "role") == Some("assistant") => {
                if let Some(text) = str_field(event, "content") {
                    if delta {
                        self.in_message = true;
                        out.push(Observation::Text(text.to_string()));
                    } else {
                        out.push(Observation::Text(format!("{text}\n")));
                    }
                }
            }
            Some("tool_use") => {
                let name = str_field(event, "tool_name").unwrap_or("tool");
                out.push(Observation::Tool(name.to_string()));
            }
            Some("error") => {
                if let Some(message) = str_field(event, "message") {
                    self.last_error = Some(message.to_string());
                }
            }
            Some("result") => {
                self.usage(&event["stats"], out);
                self.result = Some(if str_field(event, "status") == Some("success") {
                    Ok(())
                } else {
                    let error = &event["error"];
                    let message = str_field(error, "message")
                        .or_else(|| error.as_str())
                        .map(str::to_string)
                        .or_else(|| self.last_error.clone())
                        .unwrap_or_else(|| "reported an error".into());
                    Err(message)
                });
            }
            _ => {}
        }
    }

    fn finish(&mut self, exit: Exit) -> Result<(), String> {
        match &self.result {
            Some(Ok(())) => Ok(()),
            Some(Err(message)) => Err(format!(
                "gemini reported an error: {}",
                super::claude::first_line(message)
            )),
            None => {
                let why = match exit.code {
                    Some(41) => "authentication failed (exit code 41)".to_string(),
                    Some(42) => "invalid input (exit code 42)".to_string(),
                    Some(44) => "sandbox error (exit code 44)".to_string(),
                    Some(52) => "configuration error (exit code 52)".to_string(),
                    Some(53) => "turn limit reached (exit code 53)".to_string(),
                    Some(54) => "tool execution error (exit code 54)".to_string(),
                    Some(55) => "untrusted workspace (exit code 55)".to_string(),
                    _ => format!("ended without a final result event ({})", exit.describe()),
                };
                let error = self
                    .last_error
                    .as_deref()
                    .map(|e| format!(": {}", super::claude::first_line(e)))
                    .unwrap_or_default();
                Err(format!("{why}{error}"))
            }
        }
    }
}

impl GeminiReader {
    /// Usage per model from `stats.models`, else the totals.
    fn usage(&self, stats: &Value, out: &mut Vec<Observation>) {
        let tokens = |u: &Value| Usage {
            input_tokens: count_field(u, "input_tokens"),
            output_tokens: count_field(u, "output_tokens"),
            cached_input_tokens: count_field(u, "cached"),
        };
        if let Some(models) = stats["models"].as_object().filter(|m| !m.is_empty()) {
            for (model, u) in models {
                out.push(Observation::Usage {
                    model: model.clone(),
                    usage: tokens(u),
                    cost_usd: None,
                });
            }
        } else if stats.is_object() {
            out.push(Observation::Usage {
                model: self.model.clone(),
                usage: tokens(stats),
                cost_usd: None,
            });
        }
    }
}

#[cfg(test)]
mod tests;
