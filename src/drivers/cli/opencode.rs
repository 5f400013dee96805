//! opencode (`opencode run --format json`) against an OpenAI-compatible
//! server (Ollama, vLLM, llama.cpp, the scripted server).
//!
//! # Invocation
//!
//! `opencode run --format json -m llmo/<model> --title <agent-id> --dir
//! <workdir> [cliArgs] -- <prompt>`, with the configuration in `OPENCODE_CONFIG_CONTENT`: one
//! provider `llmo` (`@ai-sdk/openai-compatible`, bundled in opencode) whose
//! `baseURL` is the OpenAI-compatible base URL ([`base_url`]: `OPENAI_BASE_URL`,
//! else `OLLAMA_HOST` + `/v1`, else the local Ollama), the agent's model, and
//! the permissions of the agent's `permissions`:
//!
//! | `permissions`     | `edit` | `bash` | `webfetch` | `external_directory` |
//! |-------------------|--------|--------|------------|----------------------|
//! | `workspace-write` | allow  | allow  | deny       | deny                 |
//! | `read-only`       | deny   | deny   | deny       | deny                 |
//! | `full-access`     | allow  | allow  | allow      | allow                |
//!
//! (In `run` mode a permission that would ask is rejected.) `--title` spares
//! the extra model request that makes up a session title; `--dir` is needed
//! because opencode takes its directory from `PWD`, not from its working
//! directory. Nothing phones home: `OPENCODE_DISABLE_AUTOUPDATE`,
//! `OPENCODE_DISABLE_MODELS_FETCH` (models.dev), `OPENCODE_DISABLE_SHARE`,
//! and `npm_config_offline=true` (its background install of
//! `@opencode-ai/plugin` into the config folder fails at once instead of
//! reaching the npm registry).
//!
//! # Events
//!
//! One JSON object per stdout line, each with `type`, `timestamp` and
//! `sessionID`: `step_start`, `text` (`part.text`, a whole text part),
//! `reasoning`, `tool_use` (`part.tool`, `part.state.status`), `step_finish`
//! (`part.tokens{input,output,reasoning,cache{read,write}}`, `part.cost` in
//! USD, 0 when opencode knows no price for the model) and `error`
//! (`error.name`, `error.data.message`).
//!
//! # Outcome
//!
//! The run ends when the session goes idle; an `error` event or a non-zero
//! exit fails the attempt, otherwise the STATUS markers of its text decide.

use std::ffi::OsString;

use serde_json::{Value, json};

use super::{Attempt, CliCommand, CliFlavor, EventReader, Exit, Observation, str_field};
use crate::plan::Permissions;
use crate::providers::{ProviderConfig, Usage};

/// The provider id the generated configuration declares.
pub const PROVIDER_ID: &str = "llmo";
/// The model used when the agent names none (and `LLMO_MODEL` is unset).
pub const DEFAULT_MODEL: &str = "llama3.1";

/// The opencode flavour.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opencode;

/// The OpenAI-compatible endpoint and key (see
/// [`ProviderConfig::openai_compatible_from_env`]): the agent's `baseUrl`
/// (with `OPENAI_COMPATIBLE_API_KEY` only), else `OPENAI_BASE_URL` (with
/// `OPENAI_COMPATIBLE_API_KEY` or `OPENAI_API_KEY`), else `OLLAMA_HOST` +
/// `/v1`, else `http://127.0.0.1:11434/v1`.
pub fn base_url(plan_base_url: Option<&str>) -> ProviderConfig {
    ProviderConfig::openai_compatible_from_env(plan_base_url)
}

/// opencode's `permission` configuration for `permissions`.
pub fn permission_config(permissions: Permissions) -> Value {
    let (edit, bash, outside) = match permissions {
        Permissions::WorkspaceWrite => ("allow", "allow", "deny"),
        Permissions::ReadOnly => ("deny", "deny", "deny"),
        Permissions::FullAccess => ("allow", "allow", "allow"),
    };
    json!({"edit": edit, "bash": bash, "webfetch": outside, "external_directory": outside})
}

/// The whole configuration (`OPENCODE_CONFIG_CONTENT`) for one attempt.
pub fn config(base_url: &str, api_key: &str, model: &str, permissions: Permissions) -> Value {
    json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "provider": {PROVIDER_ID: {
            "npm": "@ai-sdk/openai-compatible",
            "name": "llm-orchestrate",
            "options": {"baseURL": base_url, "apiKey": api_key},
            "models": {model: {"name": model}},
        }},
        "model": format!("{PROVIDER_ID}/{model}"),
        "permission": permission_config(permissions),
    })
}

impl CliFlavor for Opencode {
    fn name(&self) -> &'static str {
        "opencode"
    }

    fn program(&self) -> &'static str {
        "opencode"
    }

    fn program_variable(&self) -> &'static str {
        "LLMO_OPENCODE_BIN"
    }

    fn command(&self, attempt: &Attempt<'_>) -> Result<CliCommand, String> {
        let provider = base_url(attempt.task.agent.base_url.as_deref());
        let model = attempt.model.unwrap_or(DEFAULT_MODEL);
        // Local servers take any key; opencode wants one.
        let key = provider.api_key.as_deref().unwrap_or("local");
        let config = config(&provider.base_url, key, model, attempt.permissions);
        let workdir = std::path::absolute(&attempt.task.workdir)
            .map_err(|e| format!("{}: {e}", attempt.task.workdir.display()))?
            .into_os_string();
        let args: Vec<OsString> = vec![
            "run".into(),
            "--format".into(),
            "json".into(),
            "-m".into(),
            format!("{PROVIDER_ID}/{model}").into(),
            "--title".into(),
            attempt.task.agent.agent_id.as_str().into(),
            "--dir".into(),
            workdir.clone(),
        ];
        let env = vec![
            (
                "OPENCODE_CONFIG_CONTENT".to_string(),
                config.to_string().into(),
            ),
            ("OPENCODE_DISABLE_AUTOUPDATE".to_string(), "1".into()),
            ("OPENCODE_DISABLE_MODELS_FETCH".to_string(), "1".into()),
            ("OPENCODE_DISABLE_SHARE".to_string(), "1".into()),
            ("npm_config_offline".to_string(), "true".into()),
            ("PWD".to_string(), workdir),
        ];
        Ok(CliCommand {
            args,
            // After the agent's `cliArgs`; `--` so a prompt starting with `-`
            // is not read as an option.
            trailing: vec!["--".into(), attempt.prompt.into()],
            env,
        })
    }

    fn reader(&self, attempt: &Attempt<'_>) -> Box<dyn EventReader> {
        Box::new(OpencodeReader::new(attempt.model.unwrap_or(DEFAULT_MODEL)))
    }
}

/// Reads `opencode run --format json` events.
#[derive(Debug, Clone, Default)]
pub struct OpencodeReader {
    model: String,
    /// The first `error` event's message.
    error: Option<String>,
    /// `step_finish` events seen.
    steps: u32,
}

impl OpencodeReader {
    /// A reader for an attempt with `model`.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            ..Self::default()
        }
    }
}

/// The message of an `error` event: `error.data.message`, else
/// `error.message`, else `error.name`.
pub fn error_message(event: &Value) -> String {
    let error = event.get("error").unwrap_or(&Value::Null);
    let message = error
        .pointer("/data/message")
        .and_then(Value::as_str)
        .or_else(|| str_field(error, "message"))
        .or_else(|| error.as_str());
    let name = str_field(error, "name");
    match (name, message) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (None, Some(message)) => message.to_string(),
        (Some(name), None) => name.to_string(),
        (None, None) => "opencode reported an error".into(),
    }
}

/// Tokens and USD of a `step_finish` part (`None` for a zero cost: opencode
/// knows no price for the model, so the runner prices it).
pub fn step_usage(part: &Value) -> (Usage, Option<f64>) {
    let tokens = part.get("tokens").unwrap_or(&Value::Null);
    let count = |pointer: &str| tokens.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    let cached = count("/cache/read");
    let usage = Usage {
        // opencode counts cache reads apart from `input`.
        input_tokens: count("/input") + cached,
        output_tokens: count("/output") + count("/reasoning"),
        cached_input_tokens: cached,
    };
    let cost = part
        .get("cost")
        .and_then(Value::as_f64)
        .filter(|c| *c > 0.0);
    (usage, cost)
}

impl EventReader for OpencodeReader {
    fn event(&mut self, event: &Value, out: &mut Vec<Observation>) {
        if let Some(session) = str_field(event, "sessionID") {
            out.push(Observation::Session(session.to_string()));
        }
        let part = event.get("part").unwrap_or(&Value::Null);
        match str_field(event, "type") {
            Some("text") => {
                if let Some(text) = str_field(part, "text") {
                    let mut text = text.to_string();
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    out.push(Observation::Text(text));
                }
            }
            Some("tool_use") => {
                if let Some(tool) = str_field(part, "tool") {
                    out.push(Observation::Tool(tool.to_string()));
                }
            }
            Some("step_finish") => {
                self.steps = self.steps.saturating_add(1);
                let (usage, cost_usd) = step_usage(part);
                if !usage.is_zero() || cost_usd.is_some() {
                    out.push(Observation::Usage {
                        model: self.model.clone(),
                        usage,
                        cost_usd,
                    });
                }
            }
            Some("error") if self.error.is_none() => {
                self.error = Some(error_message(event));
            }
            _ => {}
        }
    }

    fn finish(&mut self, exit: Exit) -> Result<(), String> {
        match (&self.error, exit.code) {
            (Some(error), _) => Err(format!("opencode: {error}")),
            (None, Some(0)) => Ok(()),
            (None, _) => Err(format!("opencode: {}", exit.describe())),
        }
    }
}

#[cfg(test)]
#[path = "opencode_tests.rs"]
mod tests;
