//! The history of runs, and what it predicts.
//!
//! Every run that ends (succeeded, failed, paused or interrupted) adds one row
//! per agent to a SQLite store ([`HistoryStore`], by default
//! `.llm-orchestrate/history.sqlite`, next to the runs folder), plus one row for
//! the run itself. A resumed run replaces its own rows when it ends (upsert by
//! run id and agent id), so it is never counted twice. Nothing secret is stored:
//! ids, plan names, platforms, models, scopes, durations, counts and costs.
//!
//! - [`record`]: a run's journal → rows.
//! - [`calibrate`]: rows → [`Calibration`]: per plan agent, platform/model,
//!   platform or overall, the median ratio of actual to estimated duration
//!   with its spread, and the failure rate of attempts.
//! - [`trends`]: rows → per-run summaries and trend lines (`llm-orchestrate history`).

pub mod calibrate;
pub mod record;
pub mod store;
pub mod trends;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use calibrate::{Calibrated, Calibration, CalibrationLevel};
pub use store::HistoryStore;

/// The environment variable naming the history file (`off` records nothing).
pub const HISTORY_ENV: &str = "LLMO_HISTORY";

/// The history file used when nothing names one: `.llm-orchestrate/history.sqlite`.
pub const DEFAULT_HISTORY: &str = ".llm-orchestrate/history.sqlite";

/// What can go wrong with the history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database could not be opened, migrated, read or written.
    #[error("history {path}: {source}")]
    Database {
        /// The history file.
        path: PathBuf,
        /// The database error.
        source: sqlx::Error,
    },
    /// The folder of the history file could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was written by a newer version of llm-orchestrate.
    #[error(
        "history {path}: schema version {found} is newer than this program knows ({known}); upgrade llm-orchestrate"
    )]
    TooNew {
        /// The history file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this program knows.
        known: i64,
    },
}

/// One agent of one finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    /// The run.
    pub run_id: String,
    /// The plan's `orchestrationId`.
    pub plan: String,
    /// The plan file, when known.
    pub plan_path: Option<String>,
    /// Agent id.
    pub agent_id: String,
    /// Its wave id.
    pub wave: Option<String>,
    /// Platform key (see [`platform_key`]): `shell`, `claude`, `gpt`, …
    pub platform: String,
    /// The model: the agent's `model`, else the one its requests named.
    pub model: Option<String>,
    /// The agent's scope folders.
    pub scope: Vec<String>,
    /// The plan's `estimatedDuration`, in seconds.
    pub estimate_secs: Option<f64>,
    /// From its first start to its end (retries and their delays included), in seconds.
    pub actual_secs: Option<f64>,
    /// How long its completing attempt ran, in seconds (what calibration compares with the estimate).
    pub attempt_secs: Option<f64>,
    /// Attempts that ended completed or failed (cancelled ones are not counted).
    pub attempts: u32,
    /// Of those, attempts that failed (failed, timed out, stalled).
    pub failed_attempts: u32,
    /// How it ended (the report's outcome: `completed`, `failed`, `blocked`, …).
    pub outcome: String,
    /// Its own quality gates that passed.
    pub gates_passed: u32,
    /// Its own quality gates that failed.
    pub gates_failed: u32,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// USD spent.
    pub cost_usd: f64,
    /// When its first attempt started (ms since the epoch).
    pub started_at_ms: Option<i64>,
    /// When it ended, or the run ended (ms since the epoch).
    pub finished_at_ms: i64,
}

impl HistoryRow {
    /// `attempt_secs / estimate_secs`, when both are known and positive.
    pub fn ratio(&self) -> Option<f64> {
        match (self.attempt_secs, self.estimate_secs) {
            (Some(actual), Some(estimate)) if estimate > 0.0 && actual.is_finite() => {
                Some(actual.max(0.0) / estimate)
            }
            _ => None,
        }
    }

    /// Completed, with or without a marker.
    pub fn completed(&self) -> bool {
        self.outcome == "completed" || self.outcome == "completed-without-marker"
    }
}

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRow {
    /// The run.
    pub run_id: String,
    /// The plan's `orchestrationId`.
    pub plan: String,
    /// The plan file, when known.
    pub plan_path: Option<String>,
    /// Execution mode it ran in.
    pub mode: String,
    /// Its concurrency.
    pub concurrency: u32,
    /// Agents in the plan.
    pub agents: u32,
    /// How it ended: `succeeded`, `failed`, `paused`, `interrupted`.
    pub outcome: String,
    /// First agent start (ms since the epoch).
    pub started_at_ms: Option<i64>,
    /// When it ended (ms since the epoch).
    pub finished_at_ms: i64,
    /// From the first agent start to the last agent end, in seconds.
    pub wall_secs: Option<f64>,
    /// The makespan the history before this run predicted for it (a simulation
    /// with median durations and no failures), in seconds.
    pub predicted_secs: Option<f64>,
    /// What the prediction was based on, e.g. `history (12 agent runs)` or `estimates`.
    pub prediction_basis: String,
    /// USD spent.
    pub cost_usd: f64,
}

/// The history file: `explicit` (a `--history` flag), else `$LLMO_HISTORY`,
/// else [`DEFAULT_HISTORY`]. `None` when the choice is `off`.
pub fn resolve_path(explicit: Option<&Path>) -> Option<PathBuf> {
    let chosen = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(HISTORY_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HISTORY));
    (chosen.as_os_str() != "off").then_some(chosen)
}

/// The history file of runs kept in `runs_dir`: `explicit`, else
/// `$LLMO_HISTORY`, else `history.sqlite` next to `runs_dir` (so
/// `.llm-orchestrate/runs` → `.llm-orchestrate/history.sqlite`). `None` when
/// the choice is `off`.
pub fn path_for_runs(explicit: Option<&Path>, runs_dir: &Path) -> Option<PathBuf> {
    if explicit.is_some() || std::env::var_os(HISTORY_ENV).is_some() {
        return resolve_path(explicit);
    }
    let parent = runs_dir.parent().unwrap_or(Path::new(""));
    Some(parent.join("history.sqlite"))
}

/// The platform an agent counts under in the history: `shell` for a `command`
/// (or `driver: shell`), the platform of an explicit `driver`, else the
/// agent's `platform`, else the plan's (`auto` when it is auto-detected).
pub fn platform_key(agent: &crate::plan::Agent, plan_platform: crate::plan::Platform) -> String {
    use crate::plan::DriverKind as D;
    let by_driver = agent.driver.map(|kind| match kind {
        D::Shell => "shell",
        D::ClaudeCode | D::Anthropic => "claude",
        D::Codex | D::Openai => "gpt",
        D::GeminiCli | D::GeminiApi => "gemini",
        D::Aider | D::Opencode | D::OpenaiCompatible => "open-source",
        D::Generic => "generic",
    });
    if let Some(platform) = by_driver {
        return platform.to_string();
    }
    if agent.command.is_some() {
        return "shell".to_string();
    }
    agent.platform.unwrap_or(plan_platform).as_str().to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plan from JSON text (tests only).
    pub(crate) fn test_plan(json: &str) -> crate::plan::Plan {
        crate::plan::load_str("t.json", json, Default::default())
            .plan
            .expect("plan parses")
    }

    #[test]
    fn history_sits_next_to_the_runs_folder() {
        if std::env::var_os(HISTORY_ENV).is_some() {
            return; // the environment chooses; nothing to check here
        }
        assert_eq!(
            path_for_runs(None, Path::new(".llm-orchestrate/runs")),
            Some(PathBuf::from(".llm-orchestrate/history.sqlite"))
        );
        assert_eq!(
            path_for_runs(Some(Path::new("h.sqlite")), Path::new("x/runs")),
            Some(PathBuf::from("h.sqlite"))
        );
        assert_eq!(
            path_for_runs(Some(Path::new("off")), Path::new("runs")),
            None
        );
    }

    #[test]
    fn platform_keys_follow_driver_command_and_platform() {
        let plan = test_plan(
            r#"{"orchestrationId":"p","platform":"gemini","waves":[{"waveId":"w","agents":[
            {"agentId":"S","workDescription":"s","command":"true"},
            {"agentId":"C","workDescription":"c","driver":"claude-code"},
            {"agentId":"G","workDescription":"g","platform":"gpt"},
            {"agentId":"D","workDescription":"d"}]}]}"#,
        );
        let keys: Vec<String> = plan
            .agents()
            .map(|(_, _, a)| platform_key(a, plan.platform))
            .collect();
        assert_eq!(keys, ["shell", "claude", "gpt", "gemini"]);
    }
}
