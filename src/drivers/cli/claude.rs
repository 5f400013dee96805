//! Claude Code (`claude`), headless.
//!
//! # Command
//!
//! `claude -p <prompt> --output-format stream-json --verbose --permission-mode
//! <mode> [--model M] [--max-turns N] [--max-budget-usd X] <cliArgs>`, with
//! `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (no telemetry or update
//! checks) unless the environment sets it. `ANTHROPIC_BASE_URL`,
//! `ANTHROPIC_API_KEY` and Claude Code's own login come from the environment.
//! The program is `LLMO_CLAUDE_BIN` when set, else `claude` on PATH.
//!
//! # Permissions
//!
//! | `permissions`     | `--permission-mode`  |
//! |-------------------|----------------------|
//! | `workspace-write` | `acceptEdits`: file edits in the working directory are allowed; anything that would ask (shell commands, paths outside) is refused, since nobody can answer headless |
//! | `read-only`       | `plan`               |
//! | `full-access`     | `bypassPermissions`, plus `IS_SANDBOX=1` when running as root (Claude Code refuses this mode as root otherwise) |
//!
//! # Events and outcome
//!
//! `system/init` gives the session id; `assistant` messages give text (fed to
//! the STATUS parser; a subagent's text, with a `parent_tool_use_id`, is
//! not) and `tool_use` blocks; the final `result` event gives usage
//! (`modelUsage` per model with its `costUSD`, else `usage` and
//! `total_cost_usd`) and decides: `subtype: success` with `is_error: false`
//! ended normally; `success` with `is_error: true` failed with its `result`
//! text (an API error); `error_max_turns`, `error_max_budget_usd` and
//! `error_during_execution` failed with that reason. No `result` event fails
//! the attempt ("ended without a final result event") whatever the exit code.

use std::ffi::OsString;

use serde_json::Value;

use super::{
    Attempt, CliCommand, CliFlavor, EventReader, Exit, Observation, count_field, str_field,
};
use crate::plan::Permissions;
use crate::providers::Usage;

/// The Claude Code flavour (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaudeCode;

impl CliFlavor for ClaudeCode {
    fn name(&self) -> &'static str {
        "claude-code"
    }

    fn program(&self) -> &'static str {
        "claude"
    }

    fn program_variable(&self) -> &'static str {
        "LLMO_CLAUDE_BIN"
    }

    fn command(&self, attempt: &Attempt<'_>) -> Result<CliCommand, String> {
        let mode = match attempt.permissions {
            Permissions::WorkspaceWrite => "acceptEdits",
            Permissions::ReadOnly => "plan",
            Permissions::FullAccess => "bypassPermissions",
        };
        let mut args: Vec<OsString> = vec![
            "-p".into(),
            attempt.prompt.into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
            "--permission-mode".into(),
            mode.into(),
        ];
        if let Some(model) = attempt.model {
            args.extend(["--model".into(), model.into()]);
        }
        let agent = &attempt.task.agent;
        if let Some(turns) = agent.max_turns {
            args.extend(["--max-turns".into(), turns.to_string().into()]);
        }
        if let Some(budget) = agent.budget_usd {
            args.extend(["--max-budget-usd".into(), budget.to_string().into()]);
        }
        let mut env = Vec::new();
        if std::env::var_os("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC").is_none() {
            env.push((
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
                "1".into(),
            ));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if attempt.permissions == Permissions::FullAccess && root {
            env.push(("IS_SANDBOX".into(), "1".into()));
        }
        Ok(CliCommand {
            args,
            trailing: Vec::new(),
            env,
        })
    }

    fn reader(&self, attempt: &Attempt<'_>) -> Box<dyn EventReader> {
        Box::new(ClaudeReader {
            model: attempt.model.unwrap_or("claude").to_string(),
            result: None,
        })
    }
}

/// The final `result` event, as far as the outcome needs it.
#[derive(Debug, Clone, PartialEq)]
struct Final {
    subtype: String,
    is_error: bool,
    text: String,
}

/// Reads Claude Code's `stream-json` events.
#[derive(Debug)]
pub struct ClaudeReader {
    model: String,
    result: Option<Final>,
}

impl EventReader for ClaudeReader {
    fn event(&mut self, event: &Value, out: &mut Vec<Observation>) {
        match str_field(event, "type") {
            Some("system") if str_field(event, "subtype") == Some("init") => {
                if let Some(model) = str_field(event, "model") {
                    self.model = model.to_string();
                }
                if let Some(id) = str_field(event, "session_id") {
                    out.push(Observation::Session(id.to_string()));
                }
            }
            Some("assistant") => {
                let subagent = event
                    .get("parent_tool_use_id")
                    .is_some_and(|p| !p.is_null());
                let blocks = event["message"]["content"].as_array();
                for block in blocks.into_iter().flatten() {
                    match str_field(block, "type") {
                        Some("text") if !subagent => {
                            if let Some(text) = str_field(block, "text") {
                                out.push(Observation::Text(format!("{text}\n")));
                            }
                        }
                        Some("tool_use") => {
                            if let Some(name) = str_field(block, "name") {
                                out.push(Observation::Tool(name.to_string()));
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some("result") => {
                if let Some(id) = str_field(event, "session_id") {
                    out.push(Observation::Session(id.to_string()));
                }
                self.usage(event, out);
                let errors: Vec<&str> = event["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let text = str_field(event, "result")
                    .map(str::to_string)
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| errors.join("; "));
                self.result = Some(Final {
                    subtype: str_field(event, "subtype").unwrap_or("").to_string(),
                    is_error: event["is_error"].as_bool().unwrap_or(false),
                    text,
                });
            }
            _ => {}
        }
    }

    fn finish(&mut self, exit: Exit) -> Result<(), String> {
        let Some(result) = &self.result else {
            return Err(format!(
                "ended without a final result event ({})",
                exit.describe()
            ));
        };
        let detail = if result.text.is_empty() {
            String::new()
        } else {
            format!(": {}", first_line(&result.text))
        };
        match (result.subtype.as_str(), result.is_error) {
            ("success", false) => Ok(()),
            ("success", true) => Err(format!("claude reported an error{detail}")),
            ("error_max_turns", _) => Err("max turns reached (error_max_turns)".into()),
            ("error_max_budget_usd", _) => {
                Err("budget: max budget reached (error_max_budget_usd)".into())
            }
            ("error_during_execution", _) => Err(format!(
                "error during execution (error_during_execution){detail}"
            )),
            (other, _) => Err(format!("ended with result {other:?}{detail}")),
        }
    }
}

impl ClaudeReader {
    /// Usage of the `result` event: per model from `modelUsage`, else the
    /// totals. Claude's `input_tokens` exclude cache reads and writes; ours include them.
    fn usage(&self, event: &Value, out: &mut Vec<Observation>) {
        if let Some(models) = event["modelUsage"].as_object().filter(|m| !m.is_empty()) {
            for (model, u) in models {
                let cached = count_field(u, "cacheReadInputTokens");
                out.push(Observation::Usage {
                    model: model.clone(),
                    usage: Usage {
                        input_tokens: count_field(u, "inputTokens")
                            + cached
                            + count_field(u, "cacheCreationInputTokens"),
                        output_tokens: count_field(u, "outputTokens"),
                        cached_input_tokens: cached,
                    },
                    cost_usd: u["costUSD"].as_f64(),
                });
            }
            return;
        }
        let u = &event["usage"];
        if u.is_object() {
            let cached = count_field(u, "cache_read_input_tokens");
            out.push(Observation::Usage {
                model: self.model.clone(),
                usage: Usage {
                    input_tokens: count_field(u, "input_tokens")
                        + cached
                        + count_field(u, "cache_creation_input_tokens"),
                    output_tokens: count_field(u, "output_tokens"),
                    cached_input_tokens: cached,
                },
                cost_usd: event["total_cost_usd"].as_f64(),
            });
        }
    }
}

/// The first line of a text, at most 300 characters.
pub(crate) fn first_line(text: &str) -> String {
    text.trim()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests;
