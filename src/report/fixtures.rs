//! Runs built from journal events, with fixed timestamps, for the report tests.

use crate::journal::{AgentOutcome, Event, EventRecord, RunOutcome, RunState};
use crate::protocol::{ErrorReport, ProgressReport, ReportedStatus};

/// 2024-05-01T12:00:00Z.
pub const T0: i64 = 1_714_564_800_000;
/// One minute in milliseconds.
pub const MINUTE: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR: i64 = 60 * MINUTE;

/// An event record at a fixed time.
pub fn rec(seq: i64, at_ms: i64, event: Event) -> EventRecord {
    EventRecord { seq, at_ms, event }
}

/// Builds a state from events, numbering them and starting the run with `plan`.
pub struct Run {
    records: Vec<EventRecord>,
}

impl Run {
    /// A run `run_id` of `plan`, started at [`T0`].
    pub fn new(run_id: &str, plan: serde_json::Value) -> Self {
        let mut run = Run {
            records: Vec::new(),
        };
        run.at(
            0,
            Event::RunStarted {
                run_id: run_id.into(),
                plan,
            },
        );
        run
    }

    /// Appends `event` at `T0 + offset_ms`.
    pub fn at(&mut self, offset_ms: i64, event: Event) -> &mut Self {
        let seq = self.records.len() as i64 + 1;
        self.records.push(rec(seq, T0 + offset_ms, event));
        self
    }

    /// `AgentStarted`.
    pub fn start(&mut self, offset_ms: i64, agent: &str, attempt: u32) -> &mut Self {
        self.at(
            offset_ms,
            Event::AgentStarted {
                agent: agent.into(),
                attempt,
            },
        )
    }

    /// `AgentStatus`.
    pub fn status(
        &mut self,
        offset_ms: i64,
        agent: &str,
        status: ReportedStatus,
        text: &str,
    ) -> &mut Self {
        self.at(
            offset_ms,
            Event::AgentStatus {
                agent: agent.into(),
                status,
                text: text.into(),
            },
        )
    }

    /// `AgentFinished`.
    pub fn finish(
        &mut self,
        offset_ms: i64,
        agent: &str,
        attempt: u32,
        outcome: AgentOutcome,
        exit_code: Option<i32>,
    ) -> &mut Self {
        self.at(
            offset_ms,
            Event::AgentFinished {
                agent: agent.into(),
                attempt,
                outcome,
                exit_code,
            },
        )
    }

    /// The folded state.
    pub fn state(&self) -> RunState {
        RunState::replay(&self.records)
    }
}

/// A completed outcome.
pub fn completed(without_marker: bool) -> AgentOutcome {
    AgentOutcome::Completed { without_marker }
}

/// A failed outcome.
pub fn failed(reason: &str) -> AgentOutcome {
    AgentOutcome::Failed {
        reason: reason.into(),
    }
}

/// An agent of a test plan: id, `estimatedDuration`, dependencies.
pub type AgentSpec<'a> = (&'a str, &'a str, &'a [&'a str]);

/// A wave of a test plan: id and agents.
pub type WaveSpec<'a> = (&'a str, &'a [AgentSpec<'a>]);

/// A plan from `(wave id, [(agent id, estimate, dependencies)])`.
pub fn plan(waves: &[WaveSpec<'_>]) -> serde_json::Value {
    let waves: Vec<serde_json::Value> = waves
        .iter()
        .map(|(wave_id, agents)| {
            let agents: Vec<serde_json::Value> = agents
                .iter()
                .map(|(id, estimate, deps)| {
                    serde_json::json!({
                        "agentId": id,
                        "workDescription": format!("work of {id}"),
                        "estimatedDuration": estimate,
                        "dependencies": deps,
                    })
                })
                .collect();
            serde_json::json!({"waveId": wave_id, "agents": agents})
        })
        .collect();
    serde_json::json!({"orchestrationId": "demo", "waves": waves})
}

/// A run in progress, observed at about `T0 + 2h`:
/// wave `backend`: API running at 50% (estimate 1h, started at T0+1m),
/// DB failed with exit code 1; wave `frontend`: UI blocked by DB, DOCS
/// completed without a marker; wave `later`: LATER pending.
pub fn mid_run_state() -> RunState {
    let mut run = Run::new(
        "demo-1",
        plan(&[
            ("backend", &[("API", "1h", &[]), ("DB", "30m", &[])]),
            ("frontend", &[("UI", "1h", &["DB"]), ("DOCS", "20m", &[])]),
            ("later", &[("LATER", "10m", &["UI"])]),
        ]),
    );
    run.start(MINUTE, "API", 1)
        .status(10 * MINUTE, "API", ReportedStatus::Progress(50), "half")
        .start(MINUTE, "DB", 1)
        .status(5 * MINUTE, "DB", ReportedStatus::Progress(20), "schema")
        .finish(20 * MINUTE, "DB", 1, failed("migration failed"), Some(1))
        .at(
            21 * MINUTE,
            Event::AgentBlocked {
                agent: "UI".into(),
                by: "DB".into(),
                reason: "dependency DB failed".into(),
            },
        )
        .start(2 * MINUTE, "DOCS", 1)
        .finish(12 * MINUTE, "DOCS", 1, completed(true), Some(0));
    run.state()
}

/// A finished, failed run with every kind of agent, for the markdown snapshot:
///
/// - wave `core`: DB_SCHEMA completed; AUTH_IMPL failed on its only attempt
///   with an `[ERROR: ...]` block; CACHE_LAYER failed once, was retried and
///   completed on attempt 2.
/// - wave `features`: PROFILE_IMPL blocked by AUTH_IMPL; DOCS completed
///   without a COMPLETE marker.
/// - wave `polish`: SETTINGS blocked by PROFILE_IMPL.
pub fn finished_state() -> RunState {
    let mut run = Run::new(
        "demo-20240501-120000",
        plan(&[
            (
                "core",
                &[
                    ("DB_SCHEMA", "1h", &[]),
                    ("AUTH_IMPL", "2h", &["DB_SCHEMA"]),
                    ("CACHE_LAYER", "30m", &[]),
                ],
            ),
            (
                "features",
                &[
                    ("PROFILE_IMPL", "1h30m", &["AUTH_IMPL"]),
                    ("DOCS", "45m", &["DB_SCHEMA"]),
                ],
            ),
            ("polish", &[("SETTINGS", "1h", &["PROFILE_IMPL"])]),
        ]),
    );
    run.at(
        0,
        Event::WaveStarted {
            wave: "core".into(),
        },
    )
    .start(0, "DB_SCHEMA", 1)
    .start(0, "CACHE_LAYER", 1)
    .status(0, "DB_SCHEMA", ReportedStatus::Started, "designing tables")
    .status(
        10 * MINUTE,
        "CACHE_LAYER",
        ReportedStatus::Progress(40),
        "redis client",
    )
    .finish(
        15 * MINUTE,
        "CACHE_LAYER",
        1,
        failed("exit code 2"),
        Some(2),
    )
    .at(
        15 * MINUTE,
        Event::AgentRetrying {
            agent: "CACHE_LAYER".into(),
            next_attempt: 2,
            delay_ms: 30_000,
            reason: "exit code 2".into(),
        },
    )
    .start(16 * MINUTE, "CACHE_LAYER", 2)
    .status(
        40 * MINUTE,
        "CACHE_LAYER",
        ReportedStatus::Complete,
        "cache wired | tests green",
    )
    .finish(41 * MINUTE, "CACHE_LAYER", 2, completed(false), Some(0))
    .status(
        50 * MINUTE,
        "DB_SCHEMA",
        ReportedStatus::Complete,
        "schema migrated",
    )
    .finish(52 * MINUTE, "DB_SCHEMA", 1, completed(false), Some(0))
    .start(53 * MINUTE, "AUTH_IMPL", 1)
    .at(
        HOUR,
        Event::AgentReport {
            agent: "AUTH_IMPL".into(),
            report: ProgressReport {
                agent_id: "AUTH_IMPL".into(),
                status: Some(ReportedStatus::Progress(60)),
                status_text: "PROGRESS-60%".into(),
                completed_tasks: vec!["login endpoint".into(), "password hashing".into()],
                remaining_tasks: vec!["token refresh".into()],
                blockers: vec![],
                estimated_completion: Some("1h".into()),
            },
        },
    )
    .status(
        HOUR + 30 * MINUTE,
        "AUTH_IMPL",
        ReportedStatus::Failed,
        "integration tests fail",
    )
    .at(
        HOUR + 30 * MINUTE,
        Event::AgentError {
            agent: "AUTH_IMPL".into(),
            report: ErrorReport {
                title: "Agent AUTH_IMPL failed".into(),
                agent: Some("AUTH_IMPL".into()),
                cause: Some("Token refresh tests fail against the new schema".into()),
                impact: Some("Profile work cannot start".into()),
                recommendation: Some(
                    "Add the refresh_tokens table to DB_SCHEMA and retry AUTH_IMPL".into(),
                ),
            },
        },
    )
    .finish(
        HOUR + 31 * MINUTE,
        "AUTH_IMPL",
        1,
        failed("exit code 1"),
        Some(1),
    )
    .at(
        HOUR + 31 * MINUTE,
        Event::WaveFinished {
            wave: "core".into(),
            ok: false,
        },
    )
    .at(
        HOUR + 31 * MINUTE,
        Event::WaveStarted {
            wave: "features".into(),
        },
    )
    .at(
        HOUR + 31 * MINUTE,
        Event::AgentBlocked {
            agent: "PROFILE_IMPL".into(),
            by: "AUTH_IMPL".into(),
            reason: "AUTH_IMPL failed".into(),
        },
    )
    .start(HOUR + 31 * MINUTE, "DOCS", 1)
    .status(
        HOUR + 40 * MINUTE,
        "DOCS",
        ReportedStatus::Progress(80),
        "API reference written",
    )
    .finish(HOUR + 58 * MINUTE, "DOCS", 1, completed(true), Some(0))
    .at(
        HOUR + 58 * MINUTE,
        Event::WaveFinished {
            wave: "features".into(),
            ok: false,
        },
    )
    .at(
        HOUR + 58 * MINUTE,
        Event::AgentBlocked {
            agent: "SETTINGS".into(),
            by: "PROFILE_IMPL".into(),
            reason: "PROFILE_IMPL is blocked".into(),
        },
    )
    .at(
        HOUR + 58 * MINUTE,
        Event::RunFinished {
            outcome: RunOutcome::Failed,
        },
    );
    run.state()
}
