use super::*;

fn parse_all(input: &[u8]) -> Vec<ProtocolEvent> {
    let mut parser = MarkerParser::new();
    let mut out = Vec::new();
    parser.feed(input, &mut out);
    parser.finish(&mut out);
    out
}

fn status(status: ReportedStatus, text: &str) -> ProtocolEvent {
    ProtocolEvent::Status {
        status,
        text: text.to_string(),
    }
}

const TRANSCRIPT: &str = "\
compiling things
[STATUS: STARTED] Agent beginning work
[STATUS: PROGRESS-25%] Initial implementation
noise [STATUS: COMPLETE] mid-sentence is not a marker
[STATUS: PROGRESS-50%] Core features complete
agentId: AUTH_IMPL
status: PROGRESS-50%
completedTasks:
  - OAuth2 provider implementation
  - JWT token generation
remainingTasks:
  - Integration tests
  - Documentation
blockers: none
estimatedCompletion: 1 hour

[STATUS: PROGRESS-75%] Testing in progress
[GATE: unit-tests] Service: AUTH - PASSED (45/45 tests)
[GATE: unit-tests] Service: LOG - FAILED (2/30 tests failed)
[ERROR: Agent AUTH_IMPL failed]
Cause: Database connection timeout
Impact: Blocks PROFILE_IMPL in wave 2
Recommendation: Fix connection and retry
[STATUS: BLOCKED] Waiting for dependency
[STATUS: FAILED] Error encountered
[COMPLETE] short form
[FAILED] short reason
[STATUS: COMPLETE] All tasks finished
";

fn expected() -> Vec<ProtocolEvent> {
    vec![
        status(ReportedStatus::Started, "Agent beginning work"),
        status(ReportedStatus::Progress(25), "Initial implementation"),
        status(ReportedStatus::Progress(50), "Core features complete"),
        ProtocolEvent::Report(ProgressReport {
            agent_id: "AUTH_IMPL".into(),
            status: Some(ReportedStatus::Progress(50)),
            status_text: "PROGRESS-50%".into(),
            completed_tasks: vec![
                "OAuth2 provider implementation".into(),
                "JWT token generation".into(),
            ],
            remaining_tasks: vec!["Integration tests".into(), "Documentation".into()],
            blockers: vec![],
            estimated_completion: Some("1 hour".into()),
        }),
        status(ReportedStatus::Progress(75), "Testing in progress"),
        ProtocolEvent::Gate(GateLine {
            gate: "unit-tests".into(),
            service: Some("AUTH".into()),
            outcome: GateOutcome::Passed,
            detail: Some("45/45 tests".into()),
        }),
        ProtocolEvent::Gate(GateLine {
            gate: "unit-tests".into(),
            service: Some("LOG".into()),
            outcome: GateOutcome::Failed,
            detail: Some("2/30 tests failed".into()),
        }),
        ProtocolEvent::Error(ErrorReport {
            title: "Agent AUTH_IMPL failed".into(),
            agent: Some("AUTH_IMPL".into()),
            cause: Some("Database connection timeout".into()),
            impact: Some("Blocks PROFILE_IMPL in wave 2".into()),
            recommendation: Some("Fix connection and retry".into()),
        }),
        status(ReportedStatus::Blocked, "Waiting for dependency"),
        status(ReportedStatus::Failed, "Error encountered"),
        status(ReportedStatus::Complete, "short form"),
        status(ReportedStatus::Failed, "short reason"),
        status(ReportedStatus::Complete, "All tasks finished"),
    ]
}

#[test]
fn parses_every_marker_of_the_seed() {
    assert_eq!(parse_all(TRANSCRIPT.as_bytes()), expected());
}

#[test]
fn byte_by_byte_feeding_gives_the_same_events() {
    let mut parser = MarkerParser::new();
    let mut out = Vec::new();
    for b in TRANSCRIPT.as_bytes() {
        parser.feed(std::slice::from_ref(b), &mut out);
    }
    parser.finish(&mut out);
    assert_eq!(out, expected());
}

#[test]
fn any_chunking_gives_the_same_events() {
    use proptest::prelude::*;
    proptest!(|(cuts in proptest::collection::vec(0usize..TRANSCRIPT.len(), 0..40))| {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let bytes = TRANSCRIPT.as_bytes();
        let mut parser = MarkerParser::new();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts {
            parser.feed(&bytes[start..cut], &mut out);
            start = cut;
        }
        parser.feed(&bytes[start..], &mut out);
        parser.finish(&mut out);
        prop_assert_eq!(out, expected());
    });
}

#[test]
fn crlf_ansi_colours_and_invalid_utf8_are_tolerated() {
    let mut input = Vec::new();
    input.extend_from_slice(b"\x1b[32m[STATUS: STARTED]\x1b[0m go\r\n");
    input.extend_from_slice(b"\xff\xfe garbage \x80\r\n");
    input.extend_from_slice(
        b"\x1b]0;title\x07\x1b[1;33m[STATUS: PROGRESS-40%] caf\xc3\xa9 \xff\r\n",
    );
    input.extend_from_slice(b"  - **[STATUS: COMPLETE]** done**\r\n");
    let events = parse_all(&input);
    assert_eq!(
        events,
        vec![
            status(ReportedStatus::Started, "go"),
            status(ReportedStatus::Progress(40), "café \u{fffd}"),
            status(ReportedStatus::Complete, "done"),
        ]
    );
}

#[test]
fn progress_bars_redrawn_with_carriage_returns_are_split() {
    let events = parse_all(b"10%\r50%\r[STATUS: PROGRESS-50%] half\rmore\n");
    assert_eq!(events, vec![status(ReportedStatus::Progress(50), "half")]);
}

#[test]
fn keywords_are_case_insensitive_and_progress_is_clamped() {
    let events =
        parse_all(b"[status: complete] ok\n[Status: Progress 250%] over\n[STATUS: COMPLETED]\n");
    assert_eq!(
        events,
        vec![
            status(ReportedStatus::Complete, "ok"),
            status(ReportedStatus::Progress(100), "over"),
            status(ReportedStatus::Complete, ""),
        ]
    );
}

#[test]
fn indented_and_fenced_progress_reports_are_read() {
    let input = "Progress Report Format:\n  agentId: LOG\n  status: COMPLETE\n  completedTasks: [a, b]\n  remainingTasks: []\n  blockers:\n    - waiting on CACHE\n```yaml\nagentId: CACHE\nstatus: BLOCKED\n```\n";
    let events = parse_all(input.as_bytes());
    assert_eq!(events.len(), 2, "{events:?}");
    let ProtocolEvent::Report(first) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(first.agent_id, "LOG");
    assert_eq!(first.status, Some(ReportedStatus::Complete));
    assert_eq!(first.completed_tasks, vec!["a", "b"]);
    assert_eq!(first.blockers, vec!["waiting on CACHE"]);
    let ProtocolEvent::Report(second) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(second.status, Some(ReportedStatus::Blocked));
}

#[test]
fn an_error_block_ends_at_an_unrelated_line_and_that_line_still_counts() {
    let events = parse_all(b"[ERROR: disk full]\nCause: no space\n[STATUS: FAILED] out of disk\n");
    assert_eq!(
        events,
        vec![
            ProtocolEvent::Error(ErrorReport {
                title: "disk full".into(),
                agent: None,
                cause: Some("no space".into()),
                impact: None,
                recommendation: None,
            }),
            status(ReportedStatus::Failed, "out of disk"),
        ]
    );
}

#[test]
fn huge_lines_are_cut_and_memory_stays_bounded() {
    let mut parser = MarkerParser::new();
    let mut out = Vec::new();
    parser.feed(b"[STATUS: PROGRESS-10%] ", &mut out);
    let block = vec![b'x'; 1 << 20];
    for _ in 0..8 {
        parser.feed(&block, &mut out);
        assert!(parser.partial.len() <= MAX_LINE_BYTES);
    }
    parser.feed(b"\n[STATUS: COMPLETE] after\n", &mut out);
    parser.finish(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1], status(ReportedStatus::Complete, "after"));
    let ProtocolEvent::Status { text, .. } = &out[0] else {
        panic!()
    };
    assert!(text.len() < MAX_LINE_BYTES);
}

#[test]
fn brackets_that_are_not_markers_are_ignored() {
    let events = parse_all(
        b"[INFO] building\n[2026-11-26] log\narray[0] = 1\n[STATUS: nonsense]\n[GATE: x] maybe\n",
    );
    assert!(events.is_empty(), "{events:?}");
}
