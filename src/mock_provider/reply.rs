//! A resolved answer: the scripted turn for one request, with its ids, token
//! counts and pacing worked out, ready to be written in any wire format.

use std::time::Duration;

use serde_json::Value;

use super::script::{Fault, FaultKind, Script, Turn};

/// How many pieces a text is streamed in (at most).
const TEXT_PIECES: usize = 4;
/// How many pieces tool call arguments are streamed in (at most).
const ARGUMENT_PIECES: usize = 2;
/// The chunk delay of `slow-trickle` when the turn gives none.
const TRICKLE_DELAY: Duration = Duration::from_millis(1000);

/// One tool call of the answer.
#[derive(Debug, Clone)]
pub struct ReplyCall {
    /// The tool's name.
    pub name: String,
    /// The arguments (an object).
    pub arguments: Value,
    /// The arguments as JSON text.
    pub arguments_json: String,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The matched agent id (`*` for the fallback).
    pub agent: String,
    /// The turn index (may be past the script's last turn).
    pub turn: usize,
    /// The model name to report (the request's).
    pub model: String,
    /// The text (may be empty).
    pub text: String,
    /// The tool calls.
    pub calls: Vec<ReplyCall>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Wait before responding.
    pub latency: Duration,
    /// Wait before each streamed chunk.
    pub chunk_delay: Duration,
    /// The fault of the scripted turn (applied or not by the server's counters).
    pub fault: Option<Fault>,
}

impl Reply {
    /// The answer of `agent`'s turn `turn` to a request with `request_chars`
    /// characters of text. Past the last turn: the last turn's text, no tools,
    /// no fault.
    pub fn resolve(
        script: &Script,
        agent: &str,
        turn: usize,
        request_chars: usize,
        model: &str,
    ) -> Reply {
        let turns = script
            .agents
            .get(agent)
            .map(|a| a.turns.as_slice())
            .unwrap_or_default();
        let past_end = turns.len() <= turn;
        let scripted: Turn = match turns.get(turn) {
            Some(t) => t.clone(),
            None => Turn {
                text: turns.last().and_then(|t| t.text.clone()),
                ..Turn::default()
            },
        };
        let calls: Vec<ReplyCall> = scripted
            .tool_calls
            .iter()
            .map(|c| ReplyCall {
                name: c.name.clone(),
                arguments: c.arguments.clone(),
                arguments_json: serde_json::to_string(&c.arguments).unwrap_or_default(),
            })
            .collect();
        let text = scripted.text.clone().unwrap_or_default();
        let answer_chars = text.chars().count()
            + calls
                .iter()
                .map(|c| c.name.chars().count() + c.arguments_json.chars().count())
                .sum::<usize>();
        let usage = scripted.usage.unwrap_or_default();
        Reply {
            agent: agent.to_string(),
            turn,
            model: if model.is_empty() {
                "mock-model"
            } else {
                model
            }
            .to_string(),
            text,
            calls,
            input_tokens: usage
                .input_tokens
                .unwrap_or_else(|| (request_chars / 4).max(1) as u64),
            output_tokens: usage
                .output_tokens
                .unwrap_or_else(|| (answer_chars / 4).max(1) as u64),
            latency: Duration::from_millis(scripted.latency_ms.unwrap_or(0)),
            chunk_delay: Duration::from_millis(scripted.chunk_delay_ms.unwrap_or(0)),
            fault: if past_end { None } else { scripted.fault },
        }
    }

    /// Applies `slow-trickle`: 1 s between chunks unless the turn set a delay.
    pub fn trickle(&mut self, turn_delay_set: bool) {
        if !turn_delay_set {
            self.chunk_delay = TRICKLE_DELAY;
        }
    }

    /// True when the fault is of this kind.
    pub fn fault_is(&self, kind: FaultKind) -> bool {
        self.fault.is_some_and(|f| f.kind == kind)
    }

    /// True when the response ends with tool calls.
    pub fn uses_tools(&self) -> bool {
        !self.calls.is_empty()
    }

    /// True when the response has a text block: it has text, or nothing at all.
    pub fn has_text(&self) -> bool {
        !self.text.is_empty() || self.calls.is_empty()
    }

    /// `<agent>_<turn>` with characters unsafe in ids replaced by `_`.
    pub fn id_stem(&self) -> String {
        let agent: String = if self.agent == super::script::WILDCARD {
            "default".to_string()
        } else {
            self.agent
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{agent}_{}", self.turn)
    }

    /// A deterministic id: `<prefix>_<agent>_<turn>`.
    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.id_stem())
    }

    /// The id of tool call `i`: `<prefix>_<agent>_<turn>_<i>`.
    pub fn call_id(&self, prefix: &str, i: usize) -> String {
        format!("{prefix}_{}_{i}", self.id_stem())
    }

    /// The text in streaming pieces.
    pub fn text_pieces(&self) -> Vec<String> {
        split_chars(&self.text, TEXT_PIECES)
    }

    /// Tool call `i`'s arguments in streaming pieces.
    pub fn argument_pieces(&self, i: usize) -> Vec<String> {
        self.calls
            .get(i)
            .map(|c| split_chars(&c.arguments_json, ARGUMENT_PIECES))
            .unwrap_or_default()
    }

    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Splits `text` into at most `pieces` non-empty parts of about equal length,
/// on character boundaries. An empty text gives no parts.
pub fn split_chars(text: &str, pieces: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() || pieces == 0 {
        return Vec::new();
    }
    let size = chars.len().div_ceil(pieces);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}
