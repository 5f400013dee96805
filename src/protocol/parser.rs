//! The streaming marker parser: feed it output chunks as they arrive, in any
//! sizes, and it returns the protocol events of every completed line.
//!
//! Speed comes from only looking closely at lines that can hold a marker:
//! `memchr` finds `[` bytes and `agentId` in the raw bytes, and every other
//! line is skipped without decoding. Lines end at `\n` or `\r` (so CRLF and
//! progress bars that redraw with `\r` both work); invalid UTF-8 is replaced;
//! a line longer than [`MAX_LINE_BYTES`] is cut there (memory stays bounded).

use std::sync::LazyLock;

use memchr::memmem;
use regex::Regex;

use super::{ErrorReport, GateLine, GateOutcome, ProgressReport, ProtocolEvent, ReportedStatus};
use crate::plan::tree::{Node, Value};

/// Longest line kept for parsing; the rest of a longer line is ignored.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most lines a progress report may span.
const MAX_REPORT_LINES: usize = 200;

static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\[\s*status\s*:\s*(started|progress[\s:-]*(\d{1,3})\s*%|completed?|failed|blocked)\s*\]\s*(.*)$")
        .expect("valid regex")
});
static SHORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\[\s*(completed?|failed)\s*\]\s*(.*)$").expect("valid regex")
});
static ERROR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\[\s*error\s*:\s*([^\]]*)\]\s*(.*)$").expect("valid regex"));
static ERROR_AGENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bagent\s+([A-Za-z0-9_.-]+)").expect("valid regex"));
static GATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\[\s*gate\s*:\s*([^\]]+?)\s*\]\s*(?:service\s*:\s*(.*?)\s*-\s*)?(passed|failed|skipped)\b\s*(?:\((.*)\))?")
        .expect("valid regex")
});
static ERROR_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(cause|impact|recommendation)\s*:\s*(.*)$").expect("valid regex")
});

enum Block {
    /// Collecting a YAML progress report written `indent` columns in.
    Report { lines: Vec<String>, indent: usize },
    /// Collecting the fields after an `[ERROR: ...]` line.
    Error(ErrorReport),
}

/// Streaming, chunk-boundary-safe parser of the STATUS protocol.
pub struct MarkerParser {
    partial: Vec<u8>,
    block: Option<Block>,
    agent_finder: memmem::Finder<'static>,
}

impl Default for MarkerParser {
    fn default() -> Self {
        Self::new()
    }
}

impl MarkerParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self {
            partial: Vec::new(),
            block: None,
            agent_finder: memmem::Finder::new(b"agentId"),
        }
    }

    /// Feeds the next chunk of output; events of completed lines go to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ProtocolEvent>) {
        let mut rest = chunk;
        if !self.partial.is_empty() {
            match memchr::memchr2(b'\n', b'\r', rest) {
                None => {
                    self.keep_partial(rest);
                    return;
                }
                Some(end) => {
                    self.keep_partial(&rest[..end]);
                    let line = std::mem::take(&mut self.partial);
                    self.line(&line, out);
                    rest = &rest[end + 1..];
                }
            }
        }
        let Some(last_break) = memchr::memrchr2(b'\n', b'\r', rest) else {
            self.keep_partial(rest);
            return;
        };
        let region = &rest[..=last_break];
        self.scan_complete_lines(region, out);
        self.keep_partial(&rest[last_break + 1..]);
    }

    /// Ends the stream: parses the last unterminated line and closes open blocks.
    pub fn finish(&mut self, out: &mut Vec<ProtocolEvent>) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out);
        }
        self.close_block(out);
    }

    fn keep_partial(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// `region` ends with a line break. Only candidate lines are parsed.
    fn scan_complete_lines(&mut self, region: &[u8], out: &mut Vec<ProtocolEvent>) {
        let mut pos = 0;
        let mut next_bracket: Option<usize> = None;
        let mut next_agent: Option<usize> = None;
        while pos < region.len() {
            if self.block.is_some() {
                let end = pos
                    + memchr::memchr2(b'\n', b'\r', &region[pos..]).unwrap_or(region.len() - pos);
                self.line(&region[pos..end], out);
                pos = end + 1;
                continue;
            }
            if next_bracket.is_none_or(|b| b < pos) {
                next_bracket = memchr::memchr(b'[', &region[pos..])
                    .map(|i| pos + i)
                    .or(Some(usize::MAX));
            }
            if next_agent.is_none_or(|a| a < pos) {
                next_agent = self
                    .agent_finder
                    .find(&region[pos..])
                    .map(|i| pos + i)
                    .or(Some(usize::MAX));
            }
            let candidate = next_bracket
                .unwrap_or(usize::MAX)
                .min(next_agent.unwrap_or(usize::MAX));
            if candidate == usize::MAX {
                return;
            }
            let start = memchr::memrchr2(b'\n', b'\r', &region[pos..candidate])
                .map_or(pos, |i| pos + i + 1);
            let end = candidate
                + memchr::memchr2(b'\n', b'\r', &region[candidate..])
                    .unwrap_or(region.len() - candidate);
            let line = &region[start..end.min(start + MAX_LINE_BYTES)];
            self.line(line, out);
            pos = end + 1;
        }
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<ProtocolEvent>) {
        if self.block.is_none() && !may_hold_marker(raw) {
            return;
        }
        let text = clean_line(raw);
        if self.continue_block(&text, out) {
            return;
        }
        let content = strip_decoration(&text);
        if content.starts_with('[') {
            self.marker(content, out);
        } else if content.len() > 8
            && content.is_char_boundary(8)
            && content[..8].eq_ignore_ascii_case("agentid:")
        {
            self.block = Some(Block::Report {
                lines: vec![content.trim_end().to_string()],
                indent: text.len() - text.trim_start().len(),
            });
        }
    }

    /// Feeds a line to the open block; returns true when the block consumed it.
    fn continue_block(&mut self, text: &str, out: &mut Vec<ProtocolEvent>) -> bool {
        match &mut self.block {
            None => false,
            Some(Block::Report { lines, indent }) => {
                let leading = text.len() - text.trim_start().len();
                let trimmed = if leading >= *indent {
                    text[*indent..].trim_end()
                } else {
                    ""
                };
                let is_yaml = !trimmed.is_empty()
                    && !trimmed.trim_start().starts_with("```")
                    && (trimmed.starts_with([' ', '\t', '-'])
                        || trimmed.split_once(':').is_some_and(|(k, _)| {
                            !k.is_empty()
                                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        }));
                if is_yaml && lines.len() < MAX_REPORT_LINES {
                    lines.push(trimmed.to_string());
                    true
                } else {
                    self.close_block(out);
                    false
                }
            }
            Some(Block::Error(report)) => match ERROR_FIELD.captures(strip_decoration(text)) {
                Some(c) => {
                    let value = Some(c[2].trim().to_string());
                    match c[1].to_ascii_lowercase().as_str() {
                        "cause" => report.cause = value,
                        "impact" => report.impact = value,
                        _ => report.recommendation = value,
                    }
                    if report.cause.is_some()
                        && report.impact.is_some()
                        && report.recommendation.is_some()
                    {
                        self.close_block(out);
                    }
                    true
                }
                None => {
                    self.close_block(out);
                    false
                }
            },
        }
    }

    fn close_block(&mut self, out: &mut Vec<ProtocolEvent>) {
        match self.block.take() {
            None => {}
            Some(Block::Error(report)) => out.push(ProtocolEvent::Error(report)),
            Some(Block::Report { lines, .. }) => {
                if let Some(report) = parse_report(&lines.join("\n")) {
                    out.push(ProtocolEvent::Report(report));
                }
            }
        }
    }

    fn marker(&mut self, content: &str, out: &mut Vec<ProtocolEvent>) {
        if let Some(c) = STATUS.captures(content) {
            let keyword = c[1].to_ascii_lowercase();
            let status = match keyword.as_str() {
                "started" => ReportedStatus::Started,
                "complete" | "completed" => ReportedStatus::Complete,
                "failed" => ReportedStatus::Failed,
                "blocked" => ReportedStatus::Blocked,
                _ => ReportedStatus::Progress(percent(c.get(2).map_or("0", |m| m.as_str()))),
            };
            out.push(ProtocolEvent::Status {
                status,
                text: tidy(&c[3]),
            });
        } else if let Some(c) = SHORT.captures(content) {
            let status = if c[1].eq_ignore_ascii_case("failed") {
                ReportedStatus::Failed
            } else {
                ReportedStatus::Complete
            };
            out.push(ProtocolEvent::Status {
                status,
                text: tidy(&c[2]),
            });
        } else if let Some(c) = ERROR.captures(content) {
            let title = c[1].trim().to_string();
            let agent = ERROR_AGENT.captures(&title).map(|a| a[1].to_string());
            self.block = Some(Block::Error(ErrorReport {
                title,
                agent,
                ..ErrorReport::default()
            }));
        } else if let Some(c) = GATE.captures(content) {
            let outcome = match c[3].to_ascii_lowercase().as_str() {
                "passed" => GateOutcome::Passed,
                "failed" => GateOutcome::Failed,
                _ => GateOutcome::Skipped,
            };
            out.push(ProtocolEvent::Gate(GateLine {
                gate: c[1].to_string(),
                service: c
                    .get(2)
                    .map(|m| m.as_str().to_string())
                    .filter(|s| !s.is_empty()),
                outcome,
                detail: c.get(4).map(|m| m.as_str().trim().to_string()),
            }));
        }
    }
}

/// Cheap byte-level test run before any decoding: after leading whitespace,
/// decoration and ANSI escapes, does the line start with `[status`, `[complete`,
/// `[failed`, `[error`, `[gate` or `agentId`?
fn may_hold_marker(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b' ' | b'\t' | b'-' | b'*' | b'>' | b'`' | b'#' => i += 1,
            0x1b => {
                i += 1;
                match raw.get(i) {
                    Some(b'[') => {
                        i += 1;
                        while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                            i += 1;
                        }
                        i += 1;
                    }
                    Some(b']') => {
                        while i < raw.len() && raw[i] != 0x07 && raw[i] != b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    _ => i += 1,
                }
            }
            0xe2 => i += 3, // a "•" bullet (or another 3-byte symbol)
            _ => break,
        }
    }
    let rest = &raw[i.min(raw.len())..];
    let starts = |s: &[u8], prefix: &[u8]| {
        s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if starts(rest, b"agentid") {
        return true;
    }
    let Some(inner) = rest.strip_prefix(b"[") else {
        return false;
    };
    let start = inner.iter().position(|b| *b != b' ').unwrap_or(inner.len());
    let inner = &inner[start..];
    [&b"status"[..], b"complete", b"failed", b"error", b"gate"]
        .iter()
        .any(|p| starts(inner, p))
}

fn percent(digits: &str) -> u8 {
    digits.parse::<u32>().map_or(0, |p| p.min(100) as u8)
}

/// Trailing markdown emphasis and whitespace removed.
fn tidy(text: &str) -> String {
    text.trim().trim_matches(['*', '`']).trim().to_string()
}

/// Decodes a line lossily and removes ANSI escape sequences.
fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if !text.contains('\u{1b}') {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // CSI: parameters and intermediates, then a final byte @..~
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: until BEL or ESC \
                while let Some(n) = chars.next() {
                    if n == '\u{7}' {
                        break;
                    }
                    if n == '\u{1b}' {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Leading whitespace and markdown decoration (`- `, `* `, `> `, `**`, backticks, `#`) removed.
fn strip_decoration(text: &str) -> &str {
    text.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '-' | '*' | '>' | '`' | '#' | '•')
    })
}

fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_list(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
        Value::Null => Vec::new(),
        _ => scalar_text(node)
            .filter(|s| {
                !matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "none" | "" | "n/a" | "-"
                )
            })
            .map(|s| vec![s])
            .unwrap_or_default(),
    }
}

/// Parses a progress report block (YAML); `None` when it is not one.
fn parse_report(text: &str) -> Option<ProgressReport> {
    let node = crate::plan::yaml::parse(text).ok()?;
    let Value::Object(members) = &node.value else {
        return None;
    };
    let mut report = ProgressReport::default();
    for (key, value) in members {
        match key.name.to_ascii_lowercase().as_str() {
            "agentid" => report.agent_id = scalar_text(value).unwrap_or_default(),
            "status" => {
                report.status_text = scalar_text(value).unwrap_or_default();
                let mut probe = MarkerParser::new();
                let mut events = Vec::new();
                probe.feed(
                    format!("[STATUS: {}]\n", report.status_text).as_bytes(),
                    &mut events,
                );
                report.status = events.into_iter().find_map(|e| match e {
                    ProtocolEvent::Status { status, .. } => Some(status),
                    _ => None,
                });
            }
            "completedtasks" => report.completed_tasks = text_list(value),
            "remainingtasks" => report.remaining_tasks = text_list(value),
            "blockers" => report.blockers = text_list(value),
            "estimatedcompletion" => report.estimated_completion = scalar_text(value),
            _ => {}
        }
    }
    (!report.agent_id.is_empty()).then_some(report)
}

#[cfg(test)]
mod tests;
