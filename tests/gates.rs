//! Quality gates against real test runners, on small projects made in temp
//! folders: cargo (through the built-in preset), pytest, `node --test`, a
//! JUnit XML file written by pytest, and a TAP stream from Perl's
//! Test::More. Under CI (`CI` set) a missing runner fails the test; elsewhere
//! the test is skipped with a message.
//!
//! pytest is looked up in `/work/main/.ci/venv/bin`, then this checkout's
//! `.ci/venv/bin` (`.ci/run` installs it there), then PATH.

use std::path::{Path, PathBuf};
use std::time::Duration;

use llm_orchestrate::gates::{
    GateMode, GateResult, GateSpec, GateStatus, gate_line, junit_xml, parsers, resolve, run_gate,
};
use llm_orchestrate::plan::{CommandSpec, GateParser, Plan};
use tokio_util::sync::CancellationToken;

/// A runner that is not there: a failure under CI, a skip elsewhere.
fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not installed (CI must have it: see .ci/run)");
    }
    eprintln!("skipped: {what} is not installed");
}

/// `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// pytest from a `.ci/venv`, else PATH.
fn pytest() -> Option<PathBuf> {
    [
        PathBuf::from("/work/main/.ci/venv/bin/pytest"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/pytest"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .or_else(|| on_path("pytest"))
}

/// A folder with these files, marked as a repository root.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    for (path, body) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

fn spec(dir: &Path, argv: &[&str], parser: GateParser) -> GateSpec {
    GateSpec {
        name: "unit-tests".into(),
        command: CommandSpec::Argv(argv.iter().map(|a| a.to_string()).collect()),
        working_directory: dir.to_path_buf(),
        timeout: Some(Duration::from_secs(300)),
        parser,
        junit_path: None,
    }
}

async fn run(spec: &GateSpec) -> GateResult {
    run_gate(spec, GateMode::Strict, CancellationToken::new()).await
}

fn empty_plan() -> Plan {
    serde_json::from_value(serde_json::json!({"orchestrationId": "gates-test", "waves": []}))
        .unwrap()
}

fn counts(r: &GateResult) -> (GateStatus, u32, u32, u32) {
    (r.status, r.passed, r.failed, r.skipped)
}

const CARGO_TOML: &str =
    "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";

const LIB_RS: &str = r#"pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(1, 2), 3);
    }

    #[test]
    fn adds_negatives() {
        assert_eq!(add(-1, -2), -3);
    }

    #[test]
    fn adds_wrong() {
        assert_eq!(add(2, 2), 5, "two and two");
    }
}
"#;

/// The built-in `unit-tests` preset on a crate: 3 tests, 1 failing; then the same crate fixed.
#[tokio::test]
async fn cargo_preset_on_a_crate_with_a_failing_test() {
    let dir = project(&[("Cargo.toml", CARGO_TOML), ("src/lib.rs", LIB_RS)]);
    let mut gate = resolve(&empty_plan(), "unit-tests", &dir.path().join("src")).unwrap();
    assert_eq!(gate.command.display(), "cargo test --lib --bins");
    assert_eq!(gate.working_directory, dir.path());
    assert_eq!(gate.parser, GateParser::Cargo);
    // Offline, and its own target folder inside the temp dir.
    let target = dir.path().join("target");
    gate.command = CommandSpec::Argv(
        [
            "env",
            &format!("CARGO_TARGET_DIR={}", target.display()),
            "cargo",
            "test",
            "--offline",
            "--lib",
            "--bins",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    let r = run(&gate).await;
    assert_eq!(
        counts(&r),
        (GateStatus::Failed, 2, 1, 0),
        "{}",
        r.failure_text()
    );
    assert_eq!(r.exit_code, Some(101));
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].name, "tests::adds_wrong");
    assert!(
        r.failures[0]
            .message
            .starts_with("assertion `left == right` failed: two and two\n  left: 4\n right: 5"),
        "{:?}",
        r.failures[0].message
    );
    assert_eq!(
        gate_line(&r, "AUTH"),
        "[GATE: unit-tests] Service: AUTH - FAILED (1/3 tests failed)"
    );

    std::fs::write(
        dir.path().join("src/lib.rs"),
        LIB_RS.replace("add(2, 2), 5", "add(2, 2), 4"),
    )
    .unwrap();
    let r = run(&gate).await;
    assert_eq!(
        counts(&r),
        (GateStatus::Passed, 3, 0, 0),
        "{}",
        r.failure_text()
    );
    assert_eq!(
        gate_line(&r, "AUTH"),
        "[GATE: unit-tests] Service: AUTH - PASSED (3/3 tests)"
    );
}

const PYTEST_FILE: &str = r#"import pytest

def test_one():
    assert 1 + 1 == 2

def test_two():
    assert 2 * 2 == 4

def test_bad():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="later")
def test_skipped():
    pass
"#;

#[tokio::test]
async fn pytest_counts_names_and_messages() {
    let Some(pytest) = pytest() else {
        return missing("pytest");
    };
    let dir = project(&[
        ("pyproject.toml", ""),
        ("tests/test_sample.py", PYTEST_FILE),
    ]);
    let pytest = pytest.display().to_string();
    let r = run(&spec(
        dir.path(),
        &[&pytest, "-p", "no:cacheprovider"],
        GateParser::Auto,
    ))
    .await;
    assert_eq!(
        counts(&r),
        (GateStatus::Failed, 2, 1, 1),
        "{}",
        r.failure_text()
    );
    assert_eq!(r.failures[0].name, "tests/test_sample.py::test_bad");
    assert_eq!(r.failures[0].message, "AssertionError: one is not two");
    assert_eq!(r.exit_code, Some(1));

    // The same run read from the JUnit XML file pytest writes.
    let mut junit = spec(
        dir.path(),
        &[
            &pytest,
            "-p",
            "no:cacheprovider",
            "--junitxml=reports/junit.xml",
        ],
        GateParser::JunitXml,
    );
    junit.junit_path = Some(dir.path().join("reports/junit.xml"));
    let r = run(&junit).await;
    assert_eq!(
        counts(&r),
        (GateStatus::Failed, 2, 1, 1),
        "{}",
        r.failure_text()
    );
    assert_eq!(r.failures[0].name, "tests.test_sample::test_bad");
    assert!(
        r.failures[0]
            .message
            .starts_with("AssertionError: one is not two"),
        "{:?}",
        r.failures[0]
    );
    // `auto` prefers the JUnit file when the gate has one.
    junit.parser = GateParser::Auto;
    assert_eq!(counts(&run(&junit).await), (GateStatus::Failed, 2, 1, 1));
}

const NODE_TEST: &str = r#"const test = require('node:test');
const assert = require('node:assert');
test('adds', () => { assert.strictEqual(1 + 1, 2); });
test('fails', () => { assert.strictEqual(1, 2, 'one is not two'); });
test('skipped one', { skip: 'later' }, () => {});
test.describe('suite', () => {
  test.it('inner ok', () => {});
  test.it('inner bad', () => { throw new Error('inner boom'); });
});
"#;

#[tokio::test]
async fn node_test_runner() {
    if on_path("node").is_none() {
        return missing("node");
    }
    let dir = project(&[("sample.test.js", NODE_TEST)]);
    let r = run(&spec(dir.path(), &["node", "--test"], GateParser::Auto)).await;
    assert_eq!(
        counts(&r),
        (GateStatus::Failed, 2, 2, 1),
        "{}",
        r.failure_text()
    );
    let failures: Vec<(&str, &str)> = r
        .failures
        .iter()
        .map(|f| (f.name.as_str(), f.message.lines().next().unwrap_or("")))
        .collect();
    assert_eq!(
        failures,
        [("fails", "one is not two"), ("inner bad", "inner boom")]
    );
    // The spec reporter gives the same result.
    let r = run(&spec(
        dir.path(),
        &["node", "--test", "--test-reporter=spec"],
        GateParser::NodeTest,
    ))
    .await;
    assert_eq!(
        counts(&r),
        (GateStatus::Failed, 2, 2, 1),
        "{}",
        r.failure_text()
    );
    assert_eq!(r.failures.len(), 2);
    assert!(
        r.failures[1].message.contains("inner boom"),
        "{:?}",
        r.failures
    );
}

const PERL_TAP: &str = r#"use Test::More;
ok(1, 'parses');
is(1 + 1, 3, 'adds');
SKIP: { skip 'no database', 1; ok(1, 'queries') }
done_testing;
"#;

#[tokio::test]
async fn a_tap_stream_from_perl() {
    if on_path("perl").is_none() {
        return missing("perl");
    }
    let dir = project(&[("t.pl", PERL_TAP)]);
    let r = run(&spec(dir.path(), &["perl", "t.pl"], GateParser::Tap)).await;
    assert_eq!(
        counts(&r),
        (GateStatus::Failed, 1, 1, 1),
        "{}",
        r.failure_text()
    );
    assert_eq!(r.failures[0].name, "adds");
    assert!(
        r.failures[0].message.starts_with("Failed test 'adds'"),
        "{:?}",
        r.failures[0]
    );
    // An unknown command: `auto` recognises TAP by its shape.
    let r = run(&spec(
        dir.path(),
        &["sh", "-c", "perl t.pl"],
        GateParser::Auto,
    ))
    .await;
    assert_eq!(counts(&r), (GateStatus::Failed, 1, 1, 1));
}

#[tokio::test]
async fn a_junit_file_written_by_a_script() {
    let dir = project(&[]);
    let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="s"><testcase classname="api" name="get"/><testcase classname="api" name="post"><failure message="500 &lt;Internal&gt;"/></testcase><testcase classname="api" name="put"><skipped/></testcase></testsuite></testsuites>"#;
    std::fs::write(dir.path().join("expected.xml"), xml).unwrap();
    let mut gate = spec(
        dir.path(),
        &["cp", "expected.xml", "out.xml"],
        GateParser::JunitXml,
    );
    gate.junit_path = Some(dir.path().join("out.xml"));
    let r = run(&gate).await;
    assert_eq!(counts(&r), (GateStatus::Failed, 1, 1, 1));
    assert_eq!(r.failures[0].name, "api::post");
    assert_eq!(r.failures[0].message, "500 <Internal>");
    assert_eq!(r.exit_code, Some(0));
    // No file: the gate fails and says why.
    gate.command = CommandSpec::Argv(vec!["true".into()]);
    gate.junit_path = Some(dir.path().join("missing.xml"));
    let r = run(&gate).await;
    assert_eq!(r.status, GateStatus::Failed);
    assert!(
        r.detail.as_deref().unwrap_or("").contains("missing.xml"),
        "{:?}",
        r.detail
    );
    // Our own JUnit output reads back.
    let out = junit_xml(&[("AUTH".to_string(), r)]);
    let parsed = parsers::parse_junit_xml(&out).unwrap();
    assert_eq!(parsed.failed, 1);
}
