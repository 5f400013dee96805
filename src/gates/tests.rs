//! Tests of gate lines, JUnit output and running gates (with `sh`).

use std::time::{Duration, Instant};

use super::*;

fn spec(dir: &Path, script: &str, parser: GateParser) -> GateSpec {
    GateSpec {
        name: "unit-tests".into(),
        command: CommandSpec::Shell(script.into()),
        working_directory: dir.to_path_buf(),
        timeout: None,
        parser,
        junit_path: None,
    }
}

fn result(passed: u32, failed: u32, status: GateStatus) -> GateResult {
    let mut r = GateResult::skipped("unit-tests", "");
    r.detail = None;
    r.status = status;
    r.passed = passed;
    r.failed = failed;
    r
}

#[test]
fn gate_lines_have_the_seed_forms() {
    assert_eq!(
        gate_line(&result(45, 0, GateStatus::Passed), "AUTH"),
        "[GATE: unit-tests] Service: AUTH - PASSED (45/45 tests)"
    );
    assert_eq!(
        gate_line(&result(28, 2, GateStatus::Failed), "LOG"),
        "[GATE: unit-tests] Service: LOG - FAILED (2/30 tests failed)"
    );
    let mut failed = result(0, 0, GateStatus::Failed);
    failed.detail = Some("exit code 101".into());
    assert_eq!(
        gate_line(&failed, "CACHE"),
        "[GATE: unit-tests] Service: CACHE - FAILED (exit code 101)"
    );
    assert_eq!(
        gate_line(
            &GateResult::skipped("linting", "tool not installed: ruff"),
            "API"
        ),
        "[GATE: linting] Service: API - SKIPPED (tool not installed: ruff)"
    );
}

#[test]
fn junit_output_parses_back_with_the_same_counts() {
    let mut failing = result(2, 1, GateStatus::Failed);
    failing.failures.push(TestFailure {
        name: "tests::adds_wrong <&\"'>".into(),
        message: "assertion failed\n  left: 4\x1b[31m\x07".into(),
    });
    let mut timed_out = result(0, 0, GateStatus::Failed);
    timed_out.gate = "e2e-tests".into();
    timed_out.detail = Some("timed out after 5s".into());
    let skipped = GateResult::skipped("linting", "tool not installed: ruff");
    let xml = junit_xml(&[
        ("AUTH".into(), failing),
        ("LOG".into(), result(45, 0, GateStatus::Passed)),
        ("CACHE".into(), timed_out),
        ("API".into(), skipped),
    ]);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|s| {
            (
                s.attribute("name").unwrap().to_string(),
                s.attribute("tests").unwrap().to_string(),
                s.attribute("failures").unwrap().to_string(),
                s.attribute("skipped").unwrap().to_string(),
            )
        })
        .collect();
    let expect = |n: &str, t: &str, f: &str, s: &str| {
        (n.to_string(), t.to_string(), f.to_string(), s.to_string())
    };
    assert_eq!(
        suites,
        [
            expect("unit-tests:AUTH", "3", "1", "0"),
            expect("unit-tests:LOG", "45", "0", "0"),
            expect("e2e-tests:CACHE", "1", "1", "0"),
            expect("linting:API", "1", "0", "1"),
        ]
    );
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.parent().unwrap().attribute("name"),
        Some("tests::adds_wrong <&\"'>")
    );
    assert_eq!(
        failure.attribute("message"),
        Some("assertion failed\n  left: 4[31m")
    );
    // The file reads back through the gate's own JUnit reader.
    let parsed = parsers::parse_junit_xml(&xml).unwrap();
    // One failing test case for AUTH, one for the timed-out CACHE gate.
    assert_eq!((parsed.failed, parsed.skipped), (2, 1));
}

#[tokio::test]
async fn the_exit_code_and_the_parsed_tests_both_count() {
    let dir = tempfile::tempdir().unwrap();
    let pass = "echo 'test a ... ok'; echo 'test result: ok. 1 passed; 0 failed; 0 ignored'";
    let r = run_gate(
        &spec(dir.path(), pass, GateParser::Cargo),
        GateMode::Normal,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.passed, r.exit_code),
        (GateStatus::Passed, 1, Some(0))
    );
    // A non-zero exit with nothing failing is a failure, with its exit code.
    let r = run_gate(
        &spec(dir.path(), &format!("{pass}; exit 3"), GateParser::Cargo),
        GateMode::Normal,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.status, GateStatus::Failed);
    assert_eq!(r.detail.as_deref(), Some("exit code 3"));
    // A zero exit with a failing test is a failure too.
    let fail =
        "echo 'test b ... FAILED'; echo 'test result: FAILED. 0 passed; 1 failed; 0 ignored'";
    let r = run_gate(
        &spec(dir.path(), fail, GateParser::Auto),
        GateMode::Normal,
        CancellationToken::new(),
    )
    .await;
    assert_eq!((r.status, r.failed), (GateStatus::Failed, 1));
    assert_eq!(r.failures[0].name, "b");
    assert_eq!(r.detail, None);
    assert_eq!(
        gate_line(&r, "X"),
        "[GATE: unit-tests] Service: X - FAILED (1/1 tests failed)"
    );
    // exit-code: only the exit code counts.
    let r = run_gate(
        &spec(dir.path(), "echo 'test b ... FAILED'", GateParser::ExitCode),
        GateMode::Strict,
        CancellationToken::new(),
    )
    .await;
    assert_eq!((r.status, r.failed), (GateStatus::Passed, 0));
}

#[tokio::test]
async fn the_gate_gets_its_name_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_gate(
        &spec(
            dir.path(),
            "echo \"$LLMO_GATE in $(pwd)\"",
            GateParser::ExitCode,
        ),
        GateMode::Normal,
        CancellationToken::new(),
    )
    .await;
    let here = dir.path().canonicalize().unwrap();
    assert_eq!(r.output_tail, format!("unit-tests in {}\n", here.display()));
}

#[tokio::test]
async fn a_missing_tool_is_skipped_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "", GateParser::Auto);
    s.command = CommandSpec::Argv(vec!["llmo-no-such-tool-xyz".into(), "run".into()]);
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert_eq!(r.status, GateStatus::Skipped);
    assert_eq!(
        r.detail.as_deref(),
        Some("tool not installed: llmo-no-such-tool-xyz")
    );
    let r = run_gate(&s, GateMode::Strict, CancellationToken::new()).await;
    assert_eq!(r.status, GateStatus::Failed);
    // Through a shell: exit code 127 and `not found`.
    let s = spec(
        dir.path(),
        "llmo-no-such-tool-xyz --check",
        GateParser::Auto,
    );
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert_eq!(
        (r.status, r.detail.as_deref()),
        (
            GateStatus::Skipped,
            Some("tool not installed: llmo-no-such-tool-xyz")
        )
    );
    // A cargo subcommand that is not installed.
    let s = spec(
        dir.path(),
        "echo 'error: no such command: `audit`' >&2; exit 101",
        GateParser::ExitCode,
    );
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert_eq!(r.detail.as_deref(), Some("tool not installed: cargo-audit"));
    let r = run_gate(&s, GateMode::Off, CancellationToken::new()).await;
    assert_eq!(r.status, GateStatus::Skipped);
}

#[tokio::test]
async fn strict_mode_fails_a_test_gate_without_tests() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "echo 'test result: ok. 0 passed; 0 failed; 0 ignored'",
        GateParser::Cargo,
    );
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert_eq!(r.status, GateStatus::Passed);
    let r = run_gate(&s, GateMode::Strict, CancellationToken::new()).await;
    assert_eq!(
        (r.status, r.detail.as_deref()),
        (GateStatus::Failed, Some("no tests found"))
    );
    // pytest says so with exit code 5.
    let s = spec(
        dir.path(),
        "echo '===== no tests ran in 0.01s ====='; exit 5",
        GateParser::Pytest,
    );
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert_eq!(r.status, GateStatus::Passed);
    let r = run_gate(&s, GateMode::Strict, CancellationToken::new()).await;
    assert_eq!(
        (r.status, r.detail.as_deref()),
        (GateStatus::Failed, Some("no tests found"))
    );
}

fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

async fn wait_dead(pid: i32) -> bool {
    for _ in 0..50 {
        if !process_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group_and_keeps_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(
        dir.path(),
        "sleep 60 & echo $! > bg.pid; echo 'test early ... ok'; sleep 60",
        GateParser::Cargo,
    );
    s.timeout = Some(Duration::from_millis(700));
    let started = Instant::now();
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(r.status, GateStatus::Failed);
    assert_eq!(r.detail.as_deref(), Some("timed out after 700ms"));
    assert_eq!((r.passed, r.exit_code), (1, None));
    let pid: i32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_dead(pid).await, "background process {pid} survived");
}

#[tokio::test]
async fn cancel_stops_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "sleep 60", GateParser::Auto);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let r = run_gate(&s, GateMode::Normal, cancel).await;
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(
        (r.status, r.detail.as_deref()),
        (GateStatus::Failed, Some("cancelled"))
    );
}

#[tokio::test]
async fn background_children_do_not_outlive_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "sleep 60 & echo $! > bg.pid; echo done",
        GateParser::ExitCode,
    );
    let started = Instant::now();
    let r = run_gate(&s, GateMode::Normal, CancellationToken::new()).await;
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(r.status, GateStatus::Passed);
    let pid: i32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_dead(pid).await, "background process {pid} survived");
}

#[tokio::test]
async fn huge_output_is_read_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // About 20 MB of noise around 300 test lines, then the summary.
    let script = "i=0; while [ $i -lt 300 ]; do head -c 65536 /dev/zero | tr '\\0' 'x'; echo; echo \"test t$i ... ok\"; i=$((i+1)); done; echo 'test result: ok. 300 passed; 0 failed; 0 ignored'";
    let r = run_gate(
        &spec(dir.path(), script, GateParser::Auto),
        GateMode::Normal,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.passed),
        (GateStatus::Passed, 300),
        "{:?}",
        r.detail
    );
    assert!(r.output_tail.len() <= 4000);
    assert!(r.output_tail.ends_with("0 ignored\n"));
}

#[test]
fn plan_definitions_come_before_presets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
    let plan: Plan = serde_json::from_value(serde_json::json!({
        "orchestrationId": "p",
        "waves": [],
        "gates": {"unit-tests": {"command": ["make", "check"], "parser": "tap"}}
    }))
    .unwrap();
    let s = resolve(&plan, "unit-tests", dir.path()).unwrap();
    assert_eq!(
        s.command,
        CommandSpec::Argv(vec!["make".into(), "check".into()])
    );
    assert_eq!(s.parser, GateParser::Tap);
    let s = resolve(&plan, "linting", dir.path()).unwrap();
    assert_eq!(
        s.command.display(),
        "cargo clippy --all-targets -- -D warnings"
    );
    assert_eq!(s.working_directory, dir.path());
    let err = resolve(&plan, "e2e-tests", dir.path()).unwrap_err();
    assert!(
        err.0.contains("\"e2e-tests\"") && err.0.contains(&dir.path().display().to_string()),
        "{err}"
    );
}
