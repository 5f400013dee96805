//! The aggregate status file (the seed's status format) and atomic file writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    Entry, entries, failure_detail, failure_recommendation, format_ms, marker_label, plan_of,
    run_id_of,
};
use crate::journal::{AgentOutcome, AgentPhase, AgentState, RunOutcome, RunState};
use crate::plan::Plan;

/// The seed's aggregate status of a run, as JSON:
///
/// ```json
/// {
///   "timestamp": "2024-05-01T12:00:00.000Z",
///   "runId": "demo-1",
///   "outcome": null,
///   "overallProgress": 42,
///   "agentStatus": [{"id": "AUTH_IMPL", "status": "PROGRESS-50%", "progress": 50, "blockers": []}],
///   "risks": ["..."],
///   "recommendations": ["..."]
/// }
/// ```
///
/// Agents are listed in plan order (agents the plan does not name follow, by
/// id). `status` is `PENDING`, `RUNNING`, `RETRYING`, `COMPLETE`, `FAILED` or
/// `BLOCKED`; a running agent shows its last `STARTED`, `PROGRESS-NN%` or
/// `BLOCKED` marker instead of `RUNNING` (a `COMPLETE` or `FAILED` marker of a
/// still-running attempt shows as `RUNNING`: the attempt decides when it ends).
/// `overallProgress` is the mean progress of the listed agents, rounded down.
/// `outcome` is `null` while the run goes on. `risks` name failed agents (with
/// the reason), blocked agents (with what blocks them), agents reporting
/// blockers, agents that completed without a COMPLETE marker and agents
/// running longer than their `estimatedDuration` (measured up to `now_ms`).
pub fn status_json(state: &RunState, now_ms: i64) -> Value {
    status_json_for(state, plan_of(state).as_ref(), now_ms)
}

/// [`status_json`] with the plan already at hand (the engine keeps it; decoding
/// it from the state on every rewrite would dominate a large run).
pub fn status_json_for(state: &RunState, plan: Option<&Plan>, now_ms: i64) -> Value {
    serde_json::to_value(StatusDoc::new(state, plan, now_ms)).unwrap_or(Value::Null)
}

/// Writes [`status_json_for`]'s document to `out` as pretty JSON, the same
/// bytes as `serde_json::to_vec_pretty` of it, without building the `Value`
/// tree in between (thousands of small maps for a large run, rebuilt at every
/// refresh of status.json).
pub fn write_status_json_for(
    state: &RunState,
    plan: Option<&Plan>,
    now_ms: i64,
    out: impl Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(out, &StatusDoc::new(state, plan, now_ms)).map_err(io::Error::from)
}

/// The status document, borrowing from the state. Fields are in alphabetical
/// order, as a `Value` (a sorted map) prints them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusDoc<'a> {
    agent_status: AgentList<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    outcome: Option<RunOutcome>,
    overall_progress: u64,
    recommendations: Vec<String>,
    risks: Vec<String>,
    run_id: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

/// `agentStatus`: one item per entry, made as it is written.
struct AgentList<'a>(Vec<Entry<'a>>);

/// One item of `agentStatus` (fields in alphabetical order, see [`StatusDoc`]).
#[derive(Serialize)]
struct AgentItem<'a> {
    blockers: &'a [String],
    #[serde(rename = "costUsd", skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    id: &'a str,
    progress: u8,
    #[serde(rename = "sessionId", skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

impl Serialize for AgentList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for entry in &self.0 {
            let item = match entry.state {
                None => AgentItem {
                    blockers: &[],
                    cost_usd: None,
                    id: entry.id,
                    progress: 0,
                    session_id: None,
                    status: "PENDING".into(),
                    usage: None,
                },
                Some(agent) => {
                    let priced = !agent.usage.is_zero();
                    AgentItem {
                        blockers: &agent.blockers,
                        cost_usd: priced.then_some(agent.cost_usd),
                        id: entry.id,
                        progress: agent.progress,
                        session_id: agent.session_id.as_deref(),
                        status: status_label(agent),
                        usage: priced.then(|| json!(agent.usage)),
                    }
                }
            };
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

impl<'a> StatusDoc<'a> {
    fn new(state: &'a RunState, plan: Option<&'a Plan>, now_ms: i64) -> Self {
        let list = entries(state, plan);
        let run_id = run_id_of(state);

        let mut risks: Vec<String> = Vec::new();
        let mut recommendations = Recommendations::default();
        let mut progress_sum: u64 = 0;

        for entry in &list {
            let Some(agent) = entry.state else {
                continue;
            };
            progress_sum += u64::from(agent.progress);
            assess(
                entry,
                agent,
                run_id,
                now_ms,
                &mut risks,
                &mut recommendations,
            );
        }

        git_and_gate_risks(state, run_id, &mut risks, &mut recommendations);

        if state.outcome == Some(RunOutcome::Interrupted) {
            push_unique(
                &mut recommendations,
                format!("Run `llm-orchestrate resume {run_id}` to continue the interrupted run"),
            );
        }

        let overall = if list.is_empty() {
            0
        } else {
            progress_sum / list.len() as u64
        };
        let usage = state.usage();
        let priced = !usage.is_zero();
        Self {
            agent_status: AgentList(list),
            cost_usd: priced.then(|| state.cost_usd()),
            outcome: state.outcome,
            overall_progress: overall,
            recommendations: recommendations.list,
            risks,
            run_id: &state.run_id,
            timestamp: format_timestamp(now_ms),
            usage: priced.then(|| json!(usage)),
        }
    }
}

/// Risks and recommendations from unresolved conflicts and failed gate stages.
fn git_and_gate_risks(
    state: &RunState,
    run_id: &str,
    risks: &mut Vec<String>,
    recommendations: &mut Recommendations,
) {
    use crate::journal::{ConflictAction, ConflictKind};
    for agent in state.agents.values() {
        let Some(conflict) = agent.git.as_ref().and_then(|g| g.conflict.as_ref()) else {
            continue;
        };
        risks.push(format!(
            "{}: {} ({})",
            agent.id,
            conflict.kind.describe(),
            conflict.files.join(", ")
        ));
        if conflict.action == ConflictAction::Pause {
            let how = match (conflict.kind, &state.workspace) {
                (ConflictKind::Merge, Some(ws)) => format!(
                    "Fix the conflicting files in {}, `git add` them, then run `llm-orchestrate resume {run_id}`",
                    ws.integration_path.display()
                ),
                _ => format!(
                    "Revert the files outside {}'s scope on its branch (or merge it by hand to accept them), then run `llm-orchestrate resume {run_id}`",
                    agent.id
                ),
            };
            push_unique(recommendations, how);
        }
    }
    if let Some(pending) = state.pending_adaptation() {
        let id = pending.id.unwrap_or_default();
        risks.push(format!(
            "plan adaptation {id} ({}) waits for approval",
            pending.diff.lines().collect::<Vec<_>>().join("; ")
        ));
        push_unique(
            recommendations,
            format!(
                "Review plan adaptation {id}, then run `llm-orchestrate resume {run_id} --approve` or `--reject`"
            ),
        );
    }
    // Anomalies still current: about a running agent, or the run while it runs.
    let current = state.anomalies.iter().rev().filter(|a| match &a.agent {
        Some(id) => state
            .agents
            .get(id)
            .is_some_and(|s| s.phase == AgentPhase::Running),
        None => state.outcome.is_none(),
    });
    for anomaly in current.take(5) {
        let on = anomaly
            .agent
            .as_deref()
            .map_or_else(String::new, |a| format!("{a}: "));
        risks.push(format!(
            "{on}{} ({})",
            anomaly.detail,
            anomaly.kind.as_str()
        ));
        push_unique(recommendations, anomaly.recommendation.clone());
    }
    for (stage, stage_state) in &state.stages {
        if stage_state.passed {
            continue;
        }
        let Some(action) = stage_state.failed_action else {
            continue;
        };
        risks.push(format!("quality gate stage {stage} failed ({action})"));
        let next = match action {
            crate::plan::FailureAction::ManualReview => format!(
                "Review review.md, then run `llm-orchestrate resume {run_id} --approve` or `--reject`"
            ),
            crate::plan::FailureAction::Continue => {
                format!("Fix what gate stage {stage} found; the run went on without it")
            }
            _ => format!(
                "Fix what gate stage {stage} found, then run `llm-orchestrate resume {run_id}` (its gates run again first)"
            ),
        };
        push_unique(recommendations, next);
    }
}

/// The `status` string of one agent.
fn status_label(agent: &AgentState) -> String {
    use crate::protocol::ReportedStatus as R;
    match agent.phase {
        AgentPhase::Pending => "PENDING".into(),
        AgentPhase::Running => match agent.last_status {
            Some(s @ (R::Started | R::Progress(_) | R::Blocked)) => marker_label(s),
            _ => "RUNNING".into(),
        },
        AgentPhase::Retrying => "RETRYING".into(),
        AgentPhase::Completed => "COMPLETE".into(),
        AgentPhase::Failed => "FAILED".into(),
        AgentPhase::Blocked => "BLOCKED".into(),
        AgentPhase::AwaitingInput => "AWAITING-INPUT".into(),
    }
}

/// Adds the risks and recommendations one agent gives rise to.
fn assess(
    entry: &Entry<'_>,
    agent: &AgentState,
    run_id: &str,
    now_ms: i64,
    risks: &mut Vec<String>,
    recommendations: &mut Recommendations,
) {
    let id = entry.id;
    match agent.phase {
        AgentPhase::Failed => {
            risks.push(format!(
                "{id} failed: {}",
                failure_detail(agent.last_failure.as_deref(), agent.exit_code)
            ));
            push_unique(recommendations, failure_recommendation(agent, run_id));
        }
        AgentPhase::Blocked => {
            if agent.blockers.is_empty() {
                risks.push(format!("{id} is blocked"));
            } else {
                risks.push(format!("{id} blocked by {}", agent.blockers.join("; ")));
            }
        }
        AgentPhase::Completed => {
            if matches!(
                agent.outcome,
                Some(AgentOutcome::Completed {
                    without_marker: true
                })
            ) {
                risks.push(format!(
                    "{id} completed without a COMPLETE marker: its work is unconfirmed"
                ));
                push_unique(
                    recommendations,
                    format!("Review {id}'s work: it ended without a COMPLETE marker"),
                );
            }
        }
        AgentPhase::Running | AgentPhase::Retrying => {
            if !agent.blockers.is_empty() {
                risks.push(format!(
                    "{id} reports blockers: {}",
                    agent.blockers.join("; ")
                ));
            }
            if let (Some(started), Some(estimate)) = (agent.started_at_ms, entry.estimate_ms()) {
                let elapsed = now_ms.saturating_sub(started);
                if elapsed > estimate {
                    risks.push(format!(
                        "{id} has been running for {}, longer than its estimate of {}",
                        format_ms(elapsed),
                        format_ms(estimate)
                    ));
                    push_unique(
                        recommendations,
                        format!(
                            "Check on {id}: it is past its {} estimate (raise estimatedDuration or timeout if the work is larger)",
                            format_ms(estimate)
                        ),
                    );
                }
            }
        }
        AgentPhase::AwaitingInput => push_unique(
            recommendations,
            format!(
                "Give agents/{id}/prompt.md to an LLM, then run `llm-orchestrate ingest {run_id} --agent {id} REPLY_FILE`"
            ),
        ),
        AgentPhase::Pending => {}
    }
}

/// Recommendations in first-seen order, each once (checked by hashing, so a
/// 10,000-agent run does not compare every pair).
#[derive(Default)]
struct Recommendations {
    list: Vec<String>,
    seen: std::collections::HashSet<String>,
}

fn push_unique(recommendations: &mut Recommendations, item: String) {
    if recommendations.seen.insert(item.clone()) {
        recommendations.list.push(item);
    }
}

/// Formats milliseconds since the Unix epoch as ISO-8601 UTC with
/// milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
pub fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `bytes` to `path` so that readers see either the old file or the
/// complete new one, never a partial write: the bytes go to a temporary file
/// in the same directory, which is flushed to disk (`fsync`) and then renamed
/// over `path`. The temporary file is removed if anything fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, |out| out.write_all(bytes))
}

/// [`write_atomically`] with the contents written by `write` (through a
/// buffer), so a large file needs no copy of itself in memory.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
) -> io::Result<()> {
    replace_file(path, Durability::Synced, write)
}

/// [`write_atomically_with`] that flushes the file but leaves its folder's
/// entry (the rename) to the caller's [`sync_dir`]: several files written
/// together into one folder then share that folder's flush.
pub fn write_atomically_leaving_dir(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
) -> io::Result<()> {
    replace_file(path, Durability::FileSynced, write)
}

/// [`write_atomically_with`] without the two `fsync`s: readers still see
/// the old file or the complete new one, but after a power loss (not after a
/// crash of the process) the file may be the old one, or empty. For files
/// rewritten several times a second and rebuilt from the journal anyway,
/// such as a running run's `status.json`.
pub fn write_atomically_cached_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
) -> io::Result<()> {
    replace_file(path, Durability::Cached, write)
}

/// Whether [`replace_file`] flushes the file and its directory to disk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The file and its directory.
    Synced,
    /// The file; the directory is the caller's ([`sync_dir`]).
    FileSynced,
    /// Neither.
    Cached,
}

fn replace_file(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut io::BufWriter<&mut File>) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;

    let (tmp, mut file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp: PathBuf = dir.join(format!(
            ".{}.{}.{n}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };

    let written = {
        let mut out = io::BufWriter::with_capacity(64 * 1024, &mut file);
        write(&mut out).and_then(|()| out.flush())
    };
    let written = written
        .and_then(|()| match durability {
            Durability::Synced | Durability::FileSynced => file.sync_all(),
            Durability::Cached => Ok(()),
        })
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if durability == Durability::Synced {
        sync_dir(dir);
    }
    Ok(())
}

/// Flushes the directory entry of a rename to disk (best effort: some
/// platforms and file systems cannot open or sync directories).
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = (dir, File::open);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;
    use crate::report::fixtures::*;

    #[test]
    fn formats_timestamps_as_iso_8601_utc() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_timestamp(T0), "2024-05-01T12:00:00.000Z");
        assert_eq!(
            format_timestamp(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_timestamp(4_107_542_399_999),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn status_json_has_the_seed_shape_in_plan_order() {
        let state = mid_run_state();
        let status = status_json(&state, T0 + 2 * HOUR);
        let keys: Vec<&str> = status
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "timestamp",
            "runId",
            "outcome",
            "overallProgress",
            "agentStatus",
            "risks",
            "recommendations",
        ] {
            assert!(keys.contains(&key), "missing {key}: {keys:?}");
        }
        assert_eq!(status["timestamp"], "2024-05-01T14:00:00.000Z");
        assert_eq!(status["runId"], "demo-1");
        assert_eq!(status["outcome"], Value::Null);
        let agents = status["agentStatus"].as_array().unwrap();
        let ids: Vec<&str> = agents.iter().map(|a| a["id"].as_str().unwrap()).collect();
        // Plan order, not id order.
        assert_eq!(ids, ["API", "DB", "UI", "DOCS", "LATER"]);
        for a in agents {
            let obj = a.as_object().unwrap();
            assert_eq!(obj.len(), 4, "{a}");
            assert!(a["progress"].is_u64() && a["blockers"].is_array());
        }
    }

    #[test]
    fn status_json_reports_statuses_progress_risks_and_recommendations() {
        let state = mid_run_state();
        let status = status_json(&state, T0 + 2 * HOUR);
        let by_id = |id: &str| {
            status["agentStatus"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["id"] == id)
                .cloned()
                .unwrap()
        };
        assert_eq!(by_id("API")["status"], "PROGRESS-50%");
        assert_eq!(by_id("API")["progress"], 50);
        assert_eq!(by_id("DB")["status"], "FAILED");
        assert_eq!(by_id("DB")["progress"], 20);
        assert_eq!(by_id("UI")["status"], "BLOCKED");
        assert_eq!(by_id("UI")["blockers"], json!(["DB: dependency DB failed"]));
        assert_eq!(by_id("DOCS")["status"], "COMPLETE");
        assert_eq!(by_id("LATER")["status"], "PENDING");
        // (50 + 20 + 0 + 100 + 0) / 5 = 34, the same as the fold's own figure.
        assert_eq!(status["overallProgress"], 34);
        assert_eq!(
            status["overallProgress"],
            u64::from(state.overall_progress())
        );

        let risks: Vec<&str> = status["risks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            risks,
            [
                "API has been running for 1h59m, longer than its estimate of 1h",
                "DB failed: migration failed (exit code 1)",
                "UI blocked by DB: dependency DB failed",
                "DOCS completed without a COMPLETE marker: its work is unconfirmed",
            ]
        );
        let recommendations: Vec<&str> = status["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            recommendations,
            [
                "Check on API: it is past its 1h estimate (raise estimatedDuration or timeout if the work is larger)",
                "Fix DB (exit code 1) and run `llm-orchestrate resume demo-1`",
                "Review DOCS's work: it ended without a COMPLETE marker",
            ]
        );
    }

    #[test]
    fn no_overrun_risk_within_the_estimate() {
        let state = mid_run_state();
        let status = status_json(&state, T0 + 30 * MINUTE);
        assert!(
            !status["risks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("longer than its estimate")),
            "{status}"
        );
    }

    #[test]
    fn the_agents_own_recommendation_is_used_and_an_interrupted_run_is_resumable() {
        let mut state = mid_run_state();
        state.apply(&rec(
            100,
            T0 + HOUR,
            crate::journal::Event::AgentError {
                agent: "DB".into(),
                report: crate::protocol::ErrorReport {
                    title: "Agent DB failed".into(),
                    agent: Some("DB".into()),
                    cause: Some("users table exists".into()),
                    impact: None,
                    recommendation: Some("Drop the stale users table.".into()),
                },
            },
        ));
        state.apply(&rec(
            101,
            T0 + HOUR,
            crate::journal::Event::RunInterrupted {
                reason: "SIGINT".into(),
            },
        ));
        let status = status_json(&state, T0 + HOUR);
        assert_eq!(status["outcome"], "interrupted");
        let recs = status["recommendations"].as_array().unwrap();
        assert!(recs.contains(&json!(
            "DB: Drop the stale users table (then run `llm-orchestrate resume demo-1`)"
        )));
        assert!(recs.contains(&json!(
            "Run `llm-orchestrate resume demo-1` to continue the interrupted run"
        )));
        // The interruption returned the running agent to PENDING.
        assert_eq!(status["agentStatus"][0]["status"], "PENDING");
    }

    #[test]
    fn the_streamed_status_is_the_bytes_of_the_json_value() {
        let mut run = Run::new(
            "demo-2",
            plan(&[("w", &[("API", "1h", &[]), ("NEXT", "1h", &[])])]),
        );
        run.start(MINUTE, "API", 1)
            .at(
                10,
                Event::AgentUsage {
                    agent: "API".into(),
                    model: "m".into(),
                    usage: crate::providers::Usage {
                        input_tokens: 10,
                        output_tokens: 5,
                        cached_input_tokens: 1,
                    },
                    cost_usd: Some(0.25),
                },
            )
            .at(
                11,
                Event::AgentSession {
                    agent: "API".into(),
                    attempt: Some(1),
                    session_id: "s-1".into(),
                },
            );
        for state in [
            mid_run_state(),
            finished_state(),
            run.state(),
            RunState::default(),
        ] {
            let now = T0 + 2 * HOUR;
            let mut streamed = Vec::new();
            write_status_json_for(&state, plan_of(&state).as_ref(), now, &mut streamed).unwrap();
            let value = serde_json::to_vec_pretty(&status_json(&state, now)).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(value).unwrap()
            );
        }
    }

    #[test]
    fn status_json_of_an_empty_state_is_well_formed() {
        let status = status_json(&RunState::default(), 0);
        assert_eq!(status["overallProgress"], 0);
        assert_eq!(status["agentStatus"], json!([]));
        assert_eq!(status["risks"], json!([]));
    }

    #[test]
    fn write_atomically_replaces_the_file_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        write_atomically(&path, b"old").unwrap();
        let big = "x".repeat(1 << 20);
        write_atomically(&path, big.as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), big);
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["status.json"]);
    }

    #[test]
    fn cached_replacement_also_replaces_whole_and_cleans_up_after_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        write_atomically_cached_with(&path, |out| out.write_all(b"old")).unwrap();
        write_atomically_cached_with(&path, |out| out.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let failed = write_atomically_cached_with(&path, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("serializer failed"))
        });
        assert!(failed.is_err());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "new",
            "the old file stays"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    /// Files that leave their folder's flush to the caller are replaced as
    /// whole as the others, and a failed one keeps the old file.
    #[test]
    fn replacement_leaving_the_folder_replaces_whole_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.md");
        write_atomically_leaving_dir(&path, |out| out.write_all(b"old")).unwrap();
        write_atomically_leaving_dir(&path, |out| out.write_all(b"new")).unwrap();
        let failed = write_atomically_leaving_dir(&path, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("renderer failed"))
        });
        assert!(failed.is_err());
        sync_dir(dir.path());
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_atomically_fails_cleanly_without_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("status.json");
        assert!(write_atomically(&path, b"x").is_err());
        assert!(write_atomically(Path::new("/"), b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
