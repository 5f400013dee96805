//! aider against an OpenAI-compatible server (Ollama, vLLM, llama.cpp, the
//! scripted server).
//!
//! # Invocation
//!
//! `aider --message-file agents/<id>/aider-prompt.md --yes-always --no-stream --no-pretty
//! --no-fancy-input --no-detect-urls --no-check-update --no-show-release-notes
//! --no-show-model-warnings --model openai/<model> --openai-api-base <url>
//! --model-metadata-file agents/<id>/aider-model-metadata.json --no-analytics
//! --analytics-log agents/<id>/aider-analytics.jsonl --chat-history-file …
//! --input-history-file …`, plus `--no-git` when the working directory is in
//! no git repository (in one, aider commits its edits itself; `--no-gitignore`
//! keeps it from editing `.gitignore`). The key goes in `OPENAI_API_KEY`
//! (never on the command line); `LITELLM_LOCAL_MODEL_COST_MAP=True` and the
//! model metadata file (the model with no price: the runner prices it) keep
//! aider and litellm from fetching litellm's price list. The base URL is
//! [`super::opencode::base_url`]'s: `OPENAI_BASE_URL`, else `OLLAMA_HOST` +
//! `/v1`, else the local Ollama. A model without an `openai/` prefix gets one
//! (`qwen/qwen3-coder` → `openai/qwen/qwen3-coder`: litellm sends
//! `qwen/qwen3-coder` to the server).
//!
//! Permissions: `read-only` adds `--dry-run` (no file is changed),
//! `workspace-write` adds `--no-suggest-shell-commands`, `full-access` adds
//! nothing.
//!
//! # Output
//!
//! aider prints no JSON: every stdout line is the agent's text (STATUS markers
//! are read from it) and `Tokens: X sent, Y received. Cost: $a message, $b
//! session.` after each reply. Usage is taken from the analytics log's
//! `message_send` events (`prompt_tokens`, `completion_tokens`, `cost`), read
//! when the process has exited; the `Tokens:` lines are the fallback when the
//! log has none.
//!
//! # Outcome
//!
//! The process exit: a non-zero exit fails the attempt. aider also exits 0
//! when it never got a reply (the server unreachable: it retries, then gives
//! up); an attempt with no reply at all (no `message_send`, no `Tokens:` line)
//! fails with the last error line aider printed. Otherwise the STATUS markers
//! decide.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Attempt, CliCommand, CliFlavor, EventReader, Exit, Observation, str_field};
use crate::plan::Permissions;
use crate::providers::Usage;

/// The analytics log in the agent's directory.
pub const ANALYTICS_LOG: &str = "aider-analytics.jsonl";
/// The prompt file written in the agent's directory (`--message-file`).
pub const PROMPT_FILE: &str = "aider-prompt.md";
/// The model metadata file written in the agent's directory.
pub const MODEL_METADATA: &str = "aider-model-metadata.json";
/// The model used when the agent names none (and `LLMO_MODEL` is unset).
pub const DEFAULT_MODEL: &str = "llama3.1";

/// The aider flavour.
#[derive(Debug, Clone, Copy, Default)]
pub struct Aider;

/// aider's model name for `model`: `openai/` in front unless already there.
pub fn aider_model(model: &str) -> String {
    if model.starts_with("openai/") {
        model.to_string()
    } else {
        format!("openai/{model}")
    }
}

/// The model metadata aider reads instead of litellm's price list: a large
/// context window, no price.
pub fn model_metadata(aider_model: &str) -> Value {
    json!({aider_model: {
        "max_tokens": 8192,
        "max_input_tokens": 131072,
        "max_output_tokens": 8192,
        "input_cost_per_token": 0,
        "output_cost_per_token": 0,
        "litellm_provider": "openai",
        "mode": "chat",
    }})
}

/// True when `dir` is inside a git work tree (a `.git` here or above).
pub fn in_git_repo(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

impl CliFlavor for Aider {
    fn name(&self) -> &'static str {
        "aider"
    }

    fn program(&self) -> &'static str {
        "aider"
    }

    fn program_variable(&self) -> &'static str {
        "LLMO_AIDER_BIN"
    }

    fn command(&self, attempt: &Attempt<'_>) -> Result<CliCommand, String> {
        let task = attempt.task;
        let provider = super::opencode::base_url(task.agent.base_url.as_deref());
        let model = aider_model(attempt.model.unwrap_or(DEFAULT_MODEL));
        // aider runs in the working directory: the agent's files by absolute path.
        let agent_dir = std::path::absolute(&task.agent_dir)
            .map_err(|e| format!("{}: {e}", task.agent_dir.display()))?;
        let metadata = agent_dir.join(MODEL_METADATA);
        let prompt = agent_dir.join(PROMPT_FILE);
        std::fs::create_dir_all(&agent_dir)
            .and_then(|()| std::fs::write(&metadata, model_metadata(&model).to_string()))
            .map_err(|e| format!("cannot write {}: {e}", metadata.display()))?;
        std::fs::write(&prompt, attempt.prompt)
            .map_err(|e| format!("cannot write {}: {e}", prompt.display()))?;
        let mut args: Vec<OsString> = vec!["--message-file".into(), prompt.into_os_string()];
        for flag in [
            "--yes-always",
            "--no-stream",
            "--no-pretty",
            "--no-fancy-input",
            "--no-detect-urls",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-show-model-warnings",
            "--no-analytics",
            "--no-gitignore",
        ] {
            args.push(flag.into());
        }
        let path_arg = |flag: &str, path: PathBuf| [OsString::from(flag), path.into_os_string()];
        args.extend(["--model".into(), model.into()]);
        args.extend(["--openai-api-base".into(), provider.base_url.into()]);
        args.extend(path_arg("--model-metadata-file", metadata));
        args.extend(path_arg("--analytics-log", agent_dir.join(ANALYTICS_LOG)));
        args.extend(path_arg(
            "--chat-history-file",
            agent_dir.join("aider.chat.history.md"),
        ));
        args.extend(path_arg(
            "--input-history-file",
            agent_dir.join("aider.input.history"),
        ));
        if !in_git_repo(&task.workdir) {
            args.push("--no-git".into());
        }
        match attempt.permissions {
            Permissions::ReadOnly => args.push("--dry-run".into()),
            Permissions::WorkspaceWrite => args.push("--no-suggest-shell-commands".into()),
            Permissions::FullAccess => {}
        }
        let key = provider.api_key.unwrap_or_else(|| "local".into());
        let env = vec![
            ("OPENAI_API_KEY".to_string(), key.into()),
            ("LITELLM_LOCAL_MODEL_COST_MAP".to_string(), "True".into()),
        ];
        Ok(CliCommand {
            args,
            trailing: Vec::new(),
            env,
        })
    }

    fn reader(&self, attempt: &Attempt<'_>) -> Box<dyn EventReader> {
        let model = attempt.model.unwrap_or(DEFAULT_MODEL);
        Box::new(AiderReader::new(
            model,
            attempt.task.agent_dir.join(ANALYTICS_LOG),
        ))
    }
}

/// One `Tokens: …` line: tokens sent (cache hits included), received, and
/// the message's cost when shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokensLine {
    /// Tokens sent.
    pub sent: u64,
    /// Cache hit tokens.
    pub cache_hit: u64,
    /// Tokens received.
    pub received: u64,
    /// USD of this message.
    pub cost_usd: Option<f64>,
}

/// `621`, `1.2k`, `12k` (aider's `format_tokens`).
fn parse_count(word: &str) -> Option<u64> {
    match word.strip_suffix('k') {
        Some(thousands) => thousands
            .parse::<f64>()
            .ok()
            .map(|k| (k * 1000.0).round() as u64),
        None => word.parse().ok(),
    }
}

/// Parses `Tokens: 621 sent, 300 cache hit, 22 received. Cost: $0.00067
/// message, $0.00067 session.` (the cache and cost parts are optional).
pub fn parse_tokens_line(line: &str) -> Option<TokensLine> {
    let rest = line.trim().strip_prefix("Tokens: ")?;
    let (counts, cost) = match rest.split_once(" received.") {
        Some((counts, cost)) => (counts, cost),
        None => return None,
    };
    let mut parsed = TokensLine {
        sent: 0,
        cache_hit: 0,
        received: 0,
        cost_usd: None,
    };
    // The last item has no ", …" label after its number: "22" (received).
    let mut items: Vec<&str> = counts.split(", ").collect();
    let received = items.pop()?;
    parsed.received = parse_count(received.trim())?;
    for item in items {
        let (number, label) = item.trim().split_once(' ')?;
        let number = parse_count(number)?;
        match label {
            "sent" => parsed.sent = number,
            "cache hit" => parsed.cache_hit = number,
            _ => {}
        }
    }
    parsed.cost_usd = cost
        .trim()
        .strip_prefix("Cost: $")
        .and_then(|c| c.split_once(' '))
        .and_then(|(number, _)| number.parse::<f64>().ok());
    Some(parsed)
}

/// The `message_send` events of an analytics log text: (tokens, USD when
/// above 0).
pub fn message_sends(log: &str) -> Vec<(Usage, Option<f64>)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| str_field(event, "event") == Some("message_send"))
        .map(|event| {
            let properties = event.get("properties").unwrap_or(&Value::Null);
            let count = |key: &str| properties.get(key).and_then(Value::as_u64).unwrap_or(0);
            let usage = Usage {
                input_tokens: count("prompt_tokens"),
                output_tokens: count("completion_tokens"),
                cached_input_tokens: 0,
            };
            let cost = properties
                .get("cost")
                .and_then(Value::as_f64)
                .filter(|c| *c > 0.0);
            (usage, cost)
        })
        .collect()
}

/// Reads aider's stdout text and, at the end, its analytics log.
#[derive(Debug, Clone)]
pub struct AiderReader {
    model: String,
    analytics: PathBuf,
    /// The log's length before the attempt: older events are not this attempt's.
    offset: u64,
    /// `Tokens:` lines seen.
    tokens_lines: Vec<TokensLine>,
    /// `message_send` events read at the end.
    replies: usize,
    /// The last line that looked like an error.
    last_error: Option<String>,
}

impl AiderReader {
    /// A reader for an attempt with `model` whose analytics log is `analytics`.
    pub fn new(model: &str, analytics: PathBuf) -> Self {
        let offset = std::fs::metadata(&analytics).map(|m| m.len()).unwrap_or(0);
        Self {
            model: model.to_string(),
            analytics,
            offset,
            tokens_lines: Vec::new(),
            replies: 0,
            last_error: None,
        }
    }

    /// This attempt's part of the analytics log (empty when missing).
    fn analytics_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.analytics)
            && file.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn note_line(&mut self, line: &str) {
        if let Some(tokens) = parse_tokens_line(line) {
            self.tokens_lines.push(tokens);
        }
        let trimmed = line.trim();
        if trimmed.starts_with("litellm.")
            || trimmed.contains("Error:")
            || trimmed.starts_with("The API provider")
        {
            self.last_error = Some(trimmed.to_string());
        }
    }
}

impl EventReader for AiderReader {
    fn event(&mut self, event: &Value, out: &mut Vec<Observation>) {
        // aider prints no events: a JSON line is the model's text.
        let line = event.to_string();
        self.note_line(&line);
        out.push(Observation::Text(format!("{line}\n")));
    }

    fn plain(&mut self, line: &str, out: &mut Vec<Observation>) {
        self.note_line(line);
        out.push(Observation::Text(format!("{line}\n")));
    }

    fn drain(&mut self, _exit: Exit, out: &mut Vec<Observation>) {
        let sends = message_sends(&self.analytics_text());
        self.replies = sends.len().max(self.tokens_lines.len());
        let usages: Vec<(Usage, Option<f64>)> = if sends.is_empty() {
            self.tokens_lines
                .iter()
                .map(|t| {
                    let usage = Usage {
                        input_tokens: t.sent,
                        output_tokens: t.received,
                        cached_input_tokens: t.cache_hit,
                    };
                    (usage, t.cost_usd.filter(|c| *c > 0.0))
                })
                .collect()
        } else {
            sends
        };
        for (usage, cost_usd) in usages {
            out.push(Observation::Usage {
                model: self.model.clone(),
                usage,
                cost_usd,
            });
        }
    }

    fn finish(&mut self, exit: Exit) -> Result<(), String> {
        if exit.code != Some(0) {
            return Err(format!("aider: {}", exit.describe()));
        }
        if self.replies == 0 {
            let why = self
                .last_error
                .as_deref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            return Err(format!("aider got no reply from the model{why}"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "aider_tests.rs"]
mod tests;
