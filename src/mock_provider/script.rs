//! The script a mock server plays: per agent, the turns the "model" answers
//! with, and the faults it injects. JSON, camelCase, unknown fields rejected.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The agent id that answers requests naming no scripted agent.
pub const WILDCARD: &str = "*";

/// A whole script: the scripted agents by id (`"*"` is the fallback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Script {
    /// The agents, by id. A request is matched to the longest id that occurs
    /// in its text as a whole word, else to `"*"`.
    pub agents: BTreeMap<String, AgentScript>,
}

/// What one agent answers, turn by turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentScript {
    /// The turns; turn `n` answers a request whose conversation already holds
    /// `n` assistant messages. At least one.
    pub turns: Vec<Turn>,
}

/// One model response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Turn {
    /// The text the model says (streamed in a few chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Tool calls, all in this one response (parallel calls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ScriptToolCall>,
    /// Wait this long before responding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Wait this long before each streamed chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_delay_ms: Option<u64>,
    /// Token counts to report (default: text length / 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ScriptUsage>,
    /// A fault injected on the first requests of this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

/// A tool call the model makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptToolCall {
    /// The tool's name.
    pub name: String,
    /// Its arguments (a JSON object).
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Token counts reported for a turn; a missing count is estimated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptUsage {
    /// Prompt tokens (default: request text length / 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Completion tokens (default: response text length / 4, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

/// A fault: the first `times` requests of the turn fail this way, later ones
/// are served normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// The `Retry-After` header of `rate-limit` (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// How many requests fail (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl Fault {
    /// How many requests this fault hits.
    pub fn times(&self) -> u32 {
        self.times.unwrap_or(1)
    }
}

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// HTTP 429 with `Retry-After` and the provider's rate-limit error body.
    RateLimit,
    /// HTTP 500 with the provider's server error body.
    ServerError,
    /// Anthropic: HTTP 529 `overloaded_error`; the others: HTTP 503.
    Overloaded,
    /// A 200 event stream that ends abruptly before its final event.
    CutStream,
    /// A 200 event stream with a `data:` line that is not valid JSON.
    MalformedJson,
    /// Chunks trickle out slowly (1 s apart unless `chunkDelayMs` says otherwise).
    SlowTrickle,
}

impl FaultKind {
    /// The kebab-case name used in scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::RateLimit => "rate-limit",
            FaultKind::ServerError => "server-error",
            FaultKind::Overloaded => "overloaded",
            FaultKind::CutStream => "cut-stream",
            FaultKind::MalformedJson => "malformed-json",
            FaultKind::SlowTrickle => "slow-trickle",
        }
    }
}

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {file}: {source}")]
    Read {
        /// The script file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a valid script (bad JSON, unknown field, wrong type).
    #[error("{file}:{line}:{column}: invalid script: {message}")]
    Parse {
        /// The script file (`<script>` for text).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The script parses but makes no sense.
    #[error("{file}: {path}: {message}")]
    Invalid {
        /// The script file (`<script>` for text).
        file: String,
        /// The JSON path of the bad value, e.g. `agents.A.turns`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Script {
    /// Parses and checks a script given as JSON text.
    pub fn from_json(text: &str) -> Result<Script, ScriptError> {
        Self::parse_named(text, "<script>")
    }

    /// Reads, parses and checks a script file (JSON).
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse_named(&text, &file)
    }

    fn parse_named(text: &str, file: &str) -> Result<Script, ScriptError> {
        let script: Script = serde_json::from_str(text).map_err(|e| ScriptError::Parse {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        script.check(file)?;
        Ok(script)
    }

    fn check(&self, file: &str) -> Result<(), ScriptError> {
        let invalid = |path: String, message: &str| ScriptError::Invalid {
            file: file.to_string(),
            path,
            message: message.to_string(),
        };
        if self.agents.is_empty() {
            return Err(invalid(
                "agents".into(),
                "no agents: add at least one (or \"*\")",
            ));
        }
        for (id, agent) in &self.agents {
            if id.is_empty() {
                return Err(invalid("agents".into(), "an agent id is empty"));
            }
            if agent.turns.is_empty() {
                return Err(invalid(
                    format!("agents.{id}.turns"),
                    "no turns: add at least one",
                ));
            }
            for (t, turn) in agent.turns.iter().enumerate() {
                for (i, call) in turn.tool_calls.iter().enumerate() {
                    let at = format!("agents.{id}.turns[{t}].toolCalls[{i}]");
                    if call.name.is_empty() {
                        return Err(invalid(format!("{at}.name"), "the tool name is empty"));
                    }
                    if !call.arguments.is_object() {
                        return Err(invalid(
                            format!("{at}.arguments"),
                            "arguments must be a JSON object",
                        ));
                    }
                }
                if let Some(fault) = &turn.fault
                    && fault.times == Some(0)
                {
                    return Err(invalid(
                        format!("agents.{id}.turns[{t}].fault.times"),
                        "times must be at least 1",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// serde_json appends " at line L column C"; the error already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}
