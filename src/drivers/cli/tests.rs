//! Tests of the generic runner: line splitting, plain text, the outcome rules,
//! with a small test flavour that runs `sh` (not a stand-in for a real CLI:
//! the real CLIs run in `tests/agent_clis.rs`).

use std::time::Duration;

use super::*;
use crate::protocol::ReportedStatus;

/// Reads every line of `text` with `reader`.
pub(crate) fn observe_all(reader: &mut dyn EventReader, text: &str) -> Vec<Observation> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        reader.event(&event, &mut out);
    }
    out
}

/// The text observations joined.
pub(crate) fn text_of(observations: &[Observation]) -> String {
    observations
        .iter()
        .filter_map(|o| match o {
            Observation::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

pub(crate) const EXIT_0: Exit = Exit {
    code: Some(0),
    signal: None,
};

/// Runs `sh -c <script>`; each JSON line `{"say": T}` is text, `{"end": true}`
/// ends the work normally.
struct ShFlavor(&'static str);

struct ShReader {
    ended: bool,
}

impl EventReader for ShReader {
    fn event(&mut self, event: &serde_json::Value, out: &mut Vec<Observation>) {
        if let Some(text) = str_field(event, "say") {
            out.push(Observation::Text(format!("{text}\n")));
        }
        if let Some(id) = str_field(event, "session") {
            out.push(Observation::Session(id.into()));
        }
        if let Some(tool) = str_field(event, "tool") {
            out.push(Observation::Tool(tool.into()));
        }
        if event["end"].as_bool() == Some(true) {
            self.ended = true;
        }
    }

    fn finish(&mut self, exit: Exit) -> Result<(), String> {
        if self.ended {
            Ok(())
        } else {
            Err(format!("no end ({})", exit.describe()))
        }
    }
}

impl CliFlavor for ShFlavor {
    fn name(&self) -> &'static str {
        "sh-test"
    }
    fn program(&self) -> &'static str {
        "sh"
    }
    fn program_variable(&self) -> &'static str {
        "LLMO_SH_TEST_BIN"
    }
    fn command(&self, _: &Attempt<'_>) -> Result<CliCommand, String> {
        Ok(CliCommand {
            args: vec!["-c".into(), self.0.into()],
            trailing: vec![],
            env: vec![("SECRET_VALUE".into(), "hidden".into())],
        })
    }
    fn reader(&self, _: &Attempt<'_>) -> Box<dyn EventReader> {
        Box::new(ShReader { ended: false })
    }
}

struct Ran {
    result: DriverResult,
    outputs: Vec<AgentOutput>,
    log: String,
}

async fn run_sh(script: &'static str, stall: Option<Duration>) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let agent: crate::plan::Agent = serde_json::from_value(serde_json::json!({
        "agentId": "A1", "workDescription": "do it",
    }))
    .unwrap();
    let task = AgentTask {
        run_id: "r".into(),
        agent,
        workdir: dir.path().to_path_buf(),
        run_dir: dir.path().to_path_buf(),
        agent_dir: dir.path().join("agents/A1"),
        prompt: "PROMPT".into(),
        attempt: 1,
        retry_context: None,
        timeout: Some(Duration::from_secs(20)),
        stall_timeout: stall,
        kill_grace: Duration::from_millis(200),
    };
    let driver = CliDriver::new(Arc::new(ShFlavor(script)), "sh".into(), None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = driver.run(task, tx, CancellationToken::new()).await;
    let mut outputs = Vec::new();
    while let Ok(o) = rx.try_recv() {
        outputs.push(o);
    }
    let log = std::fs::read_to_string(dir.path().join("agents/A1/output.log")).unwrap_or_default();
    Ran {
        result,
        outputs,
        log,
    }
}

#[tokio::test]
async fn events_text_sessions_and_tools() {
    let ran = run_sh(
        r#"echo '{"session":"s-1"}'; echo '{"say":"[STATUS: STARTED] go"}'
echo '[STATUS: PROGRESS-50%] half, not json'; echo oops >&2
echo '{"tool":"Write"}'; echo '{"tool":"Write"}'; echo '{"session":"s-1"}'
printf '{"say":"[STATUS: COMPLETE] done"}\n{"end":true}'"#,
        None,
    )
    .await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Completed {
            without_marker: false
        }
    );
    assert_eq!(ran.result.exit_code, Some(0));
    let statuses: Vec<ReportedStatus> = ran
        .outputs
        .iter()
        .filter_map(|o| match o {
            AgentOutput::Protocol(ProtocolEvent::Status { status, .. }) => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ReportedStatus::Started,
            ReportedStatus::Progress(50),
            ReportedStatus::Complete
        ]
    );
    let sessions = ran
        .outputs
        .iter()
        .filter(|o| matches!(o, AgentOutput::Session { id } if id == "s-1"))
        .count();
    assert_eq!(sessions, 1, "a repeated session id is sent once");
    let tools = ran.outputs.iter().find_map(|o| match o {
        AgentOutput::Tools { uses } => Some(uses.clone()),
        _ => None,
    });
    assert_eq!(tools, Some(BTreeMap::from([("Write".to_string(), 2)])));
    assert!(ran.log.starts_with("==> attempt 1: sh -c "), "{}", ran.log);
    assert!(ran.log.contains("oops"), "stderr is logged: {}", ran.log);
    assert!(
        !ran.log.contains("hidden"),
        "no environment values in the log"
    );
    assert!(ran.result.tail.contains("oops"));
}

#[tokio::test]
async fn failed_marker_and_missing_final_event() {
    let ran = run_sh(
        r#"echo '{"say":"[STATUS: FAILED] tests broke"}'; echo '{"end":true}'"#,
        None,
    )
    .await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Failed {
            reason: "tests broke".into()
        }
    );
    let ran = run_sh(r#"echo '{"say":"[STATUS: COMPLETE] sure"}'; exit 3"#, None).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Failed {
            reason: "no end (exit code 3)".into()
        }
    );
    let ran = run_sh(r#"echo '{"say":"[FAILED] nope"}'"#, None).await;
    assert_eq!(
        ran.result.outcome,
        AgentOutcome::Failed {
            reason: "no end (exit code 0): nope".into()
        }
    );
}

#[tokio::test]
async fn a_silent_cli_is_stopped_by_the_watchdog() {
    let ran = run_sh(
        r#"echo '{"say":"[STATUS: STARTED] thinking"}'; sleep 30"#,
        Some(Duration::from_millis(500)),
    )
    .await;
    assert_eq!(ran.result.outcome, AgentOutcome::Stalled);
}

#[test]
fn overlong_lines_are_skipped_and_partial_lines_joined() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Mutex::new(Shared {
        parser: MarkerParser::new(),
        reader: Box::new(ShReader { ended: false }),
        verdict: StatusVerdict::default(),
        tail: Tail::default(),
        tools: BTreeMap::new(),
        session: None,
        skipped_lines: 0,
        output: tx,
        prices: None,
    }));
    let mut sink = EventSink {
        shared: Arc::clone(&shared),
        line: Vec::new(),
        overlong: false,
    };
    sink.chunk(br#"{"tool":"#);
    sink.chunk(b"\"A\"}\n");
    let big = vec![b'x'; MAX_LINE_BYTES + 10];
    sink.chunk(&big);
    sink.chunk(b"\n{\"tool\":\"B\"}");
    sink.end();
    let shared = lock(&shared);
    assert_eq!(shared.skipped_lines, 1);
    assert_eq!(
        shared.tools,
        BTreeMap::from([("A".to_string(), 1), ("B".to_string(), 1)])
    );
}

#[test]
fn the_prompt_is_not_shown_in_the_command() {
    let shown = display_command(
        std::path::Path::new("/bin/claude"),
        &[
            "-p".into(),
            "long prompt".into(),
            "--model".into(),
            "m 1".into(),
        ],
        "long prompt",
    );
    assert_eq!(shown, "/bin/claude -p <prompt> --model 'm 1'");
}

/// The plan's `permissions` and `cliArgs`, decoded and mapped per CLI.
#[test]
fn permissions_and_cli_args_from_the_plan() {
    let loaded = crate::plan::load_str(
        "plan.json",
        r#"{"orchestrationId": "p", "waves": [{"waveId": "w", "agents": [
            {"agentId": "A", "workDescription": "x", "permissions": "read-only", "cliArgs": ["--add-dir", "a b"]},
            {"agentId": "B", "workDescription": "x", "permissions": "full-access"},
            {"agentId": "C", "workDescription": "x"}
        ]}]}"#,
        crate::plan::LoadOptions::default(),
    );
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let plan = loaded.plan.unwrap();
    let agents: Vec<&crate::plan::Agent> = plan.agents().map(|(_, _, a)| a).collect();
    assert_eq!(agents[0].permissions, Some(Permissions::ReadOnly));
    assert_eq!(agents[0].cli_args, ["--add-dir", "a b"]);
    let mode = |flavor: &dyn CliFlavor, agent: &crate::plan::Agent, flag: &str| {
        let dir = tempfile::tempdir().unwrap();
        let task = AgentTask {
            run_id: "r".into(),
            agent: agent.clone(),
            workdir: dir.path().into(),
            run_dir: dir.path().into(),
            agent_dir: dir.path().join("agents/A"),
            prompt: String::new(),
            attempt: 1,
            retry_context: None,
            timeout: None,
            stall_timeout: None,
            kill_grace: Duration::from_secs(1),
        };
        let attempt = Attempt {
            task: &task,
            prompt: "P",
            model: None,
            permissions: agent.permissions.unwrap_or_default(),
        };
        let args = flavor.command(&attempt).unwrap().args;
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1].to_string_lossy().into_owned()
    };
    let claude = super::claude::ClaudeCode;
    let codex = super::codex::Codex;
    let gemini = super::gemini::GeminiCli;
    let modes = |flavor: &dyn CliFlavor, flag: &str| -> Vec<String> {
        agents.iter().map(|a| mode(flavor, a, flag)).collect()
    };
    assert_eq!(
        modes(&claude, "--permission-mode"),
        ["plan", "bypassPermissions", "acceptEdits"]
    );
    assert_eq!(
        modes(&codex, "--sandbox"),
        ["read-only", "danger-full-access", "workspace-write"]
    );
    assert_eq!(
        modes(&gemini, "--approval-mode"),
        ["plan", "yolo", "auto_edit"]
    );

    let loaded = crate::plan::load_str(
        "plan.json",
        r#"{"orchestrationId": "p", "waves": [{"waveId": "w", "agents": [
            {"agentId": "A", "workDescription": "x", "permissions": "read-onyl"}]}]}"#,
        crate::plan::LoadOptions::default(),
    );
    let text = format!("{:?}", loaded.diagnostics);
    assert!(text.contains("did you mean \\\"read-only\\\""), "{text}");
}
