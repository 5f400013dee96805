//! The STATUS protocol: what agents write to report progress, and the one
//! streaming parser every driver uses to read it.
//!
//! Recognised (each at the start of a line, after optional whitespace, ANSI
//! colour codes and markdown decoration such as `- `, `> `, `**` or backticks;
//! keywords are case-insensitive):
//!
//! - `[STATUS: STARTED|PROGRESS-NN%|COMPLETE|FAILED|BLOCKED] text`
//! - the short forms `[COMPLETE] text` and `[FAILED] reason`
//! - the YAML progress report: a block starting with `agentId:` and holding
//!   `status`, `completedTasks`, `remainingTasks`, `blockers`, `estimatedCompletion`
//! - `[ERROR: Agent X failed]` followed by `Cause:`, `Impact:`, `Recommendation:` lines
//! - `[GATE: name] Service: X - PASSED (45/45 tests)` lines
//!
//! A marker in the middle of a sentence is not a marker: "I will print
//! [STATUS: COMPLETE] at the end" does not complete an agent.

mod parser;

pub use parser::{MAX_LINE_BYTES, MarkerParser};

use serde::{Deserialize, Serialize};

/// A status an agent reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "percent")]
pub enum ReportedStatus {
    /// `[STATUS: STARTED]`.
    Started,
    /// `[STATUS: PROGRESS-NN%]`, clamped to 0–100.
    Progress(u8),
    /// `[STATUS: COMPLETE]` or `[COMPLETE]`.
    Complete,
    /// `[STATUS: FAILED]` or `[FAILED]`.
    Failed,
    /// `[STATUS: BLOCKED]`.
    Blocked,
}

/// The seed's YAML progress report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    /// `agentId`.
    pub agent_id: String,
    /// `status`, parsed when it is a STATUS keyword (`PROGRESS-50%`, `COMPLETE`, …).
    pub status: Option<ReportedStatus>,
    /// `status` as written.
    pub status_text: String,
    /// `completedTasks`.
    pub completed_tasks: Vec<String>,
    /// `remainingTasks`.
    pub remaining_tasks: Vec<String>,
    /// `blockers` (empty for `none`).
    pub blockers: Vec<String>,
    /// `estimatedCompletion`, as written.
    pub estimated_completion: Option<String>,
}

/// The seed's `[ERROR: ...]` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// The text inside the brackets, e.g. `Agent AUTH_IMPL failed`.
    pub title: String,
    /// The agent named in the title, if any.
    pub agent: Option<String>,
    /// `Cause:`.
    pub cause: Option<String>,
    /// `Impact:`.
    pub impact: Option<String>,
    /// `Recommendation:`.
    pub recommendation: Option<String>,
}

/// Outcome in a `[GATE: ...]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateOutcome {
    /// PASSED.
    Passed,
    /// FAILED.
    Failed,
    /// SKIPPED.
    Skipped,
}

/// A `[GATE: name] Service: X - PASSED (45/45 tests)` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateLine {
    /// Gate name.
    pub gate: String,
    /// Service, if given.
    pub service: Option<String>,
    /// Outcome.
    pub outcome: GateOutcome,
    /// The parenthesised detail, e.g. `45/45 tests`.
    pub detail: Option<String>,
}

/// Something the parser recognised in an agent's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ProtocolEvent {
    /// A STATUS marker and the text after it.
    Status {
        /// The status.
        status: ReportedStatus,
        /// Text after the marker (trimmed).
        text: String,
    },
    /// A YAML progress report.
    Report(ProgressReport),
    /// An `[ERROR: ...]` block.
    Error(ErrorReport),
    /// A `[GATE: ...]` line.
    Gate(GateLine),
}
