//! Which scripted agent and turn answer a request: the agent is the longest
//! script id found as a whole word in the request's text, the turn is the
//! number of assistant messages already in the conversation after the first
//! mention of that id (see [`super::wire::Inbound::turn_of`]).

use serde_json::Value;

use super::script::{Script, WILDCARD};

/// Object keys whose string values are identifiers or encodings, not text.
const NOT_TEXT: &[&str] = &[
    "type",
    "role",
    "id",
    "tool_use_id",
    "tool_call_id",
    "call_id",
    "signature",
    "data",
    "media_type",
    "mimeType",
    "mime_type",
    "cache_control",
    "status",
];

/// Appends every text string inside `value` to `out` (one per line), skipping
/// identifiers, types and encoded data.
pub fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                if !NOT_TEXT.contains(&key.as_str()) {
                    collect_text(v, out);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// True when `id` occurs in `text` not preceded or followed by `[A-Za-z0-9_-]`.
pub fn contains_word(text: &str, id: &str) -> bool {
    first_word_at(text, id).is_some()
}

/// Where `id` first occurs in `text` as a whole word (a byte offset).
pub fn first_word_at(text: &str, id: &str) -> Option<usize> {
    if id.is_empty() {
        return None;
    }
    text.match_indices(id).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    })
}

/// The script agent answering a request with this text: the longest id found
/// as a whole word (ties: the first in id order), else `"*"` when scripted.
pub fn match_agent<'s>(script: &'s Script, text: &str) -> Option<&'s str> {
    let mut best: Option<&str> = None;
    for id in script.agents.keys() {
        if id == WILDCARD || !contains_word(text, id) {
            continue;
        }
        if best.is_none_or(|b| id.len() > b.len()) {
            best = Some(id);
        }
    }
    best.or_else(|| {
        script
            .agents
            .get_key_value(WILDCARD)
            .map(|(k, _)| k.as_str())
    })
}
