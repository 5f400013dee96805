//! Quality gates the orchestrator runs itself: a gate is a command (a test
//! runner, a linter) run in a folder, whose output is parsed into passed /
//! failed / skipped counts with the failing tests' names and messages.
//!
//! This module knows how to resolve a gate name to a command ([`resolve`]),
//! run it ([`run_gate`]), read its output, render the seed's
//! `[GATE: name] Service: X - PASSED (45/45 tests)` lines ([`gate_line`]) and
//! write JUnit XML ([`junit_xml`]). When and where gates run, and what their
//! results do, is the engine's business (`engine::gates`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::plan::{CommandSpec, GateParser, Plan};

/// How strictly gates are applied (`--quality-gates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// A gate whose tool is missing, or that found no tests, fails.
    Strict,
    /// A gate whose tool is missing is skipped with a warning (the default).
    #[default]
    Normal,
    /// Gates do not run (recorded as skipped).
    Off,
}

/// One gate, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    /// The gate's name (`unit-tests`).
    pub name: String,
    /// What to run.
    pub command: CommandSpec,
    /// Where (absolute).
    pub working_directory: PathBuf,
    /// Time limit.
    pub timeout: Option<Duration>,
    /// How to read the output.
    pub parser: GateParser,
    /// A JUnit XML file the command writes (absolute), for `junit-xml`.
    pub junit_path: Option<PathBuf>,
}

/// How a gate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateStatus {
    /// Everything passed.
    Passed,
    /// Tests failed, the command failed, or it timed out.
    Failed,
    /// Not run (`--quality-gates off`, or its tool is missing under `normal`).
    Skipped,
}

/// One failing test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestFailure {
    /// The test's name as the runner printed it.
    pub name: String,
    /// Its error message (first lines).
    pub message: String,
}

/// What a gate found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    /// The gate's name.
    pub gate: String,
    /// Passed, failed or skipped.
    pub status: GateStatus,
    /// Tests passed.
    pub passed: u32,
    /// Tests failed.
    pub failed: u32,
    /// Tests skipped or ignored.
    pub skipped: u32,
    /// The failing tests.
    pub failures: Vec<TestFailure>,
    /// The command's exit code (`None`: not run, killed, or timed out).
    pub exit_code: Option<i32>,
    /// How long it ran.
    pub duration_ms: u64,
    /// Why it failed or was skipped when no test says so (timeout, tool not installed…).
    pub detail: Option<String>,
    /// The end of its output (bounded).
    pub output_tail: String,
}

impl GateResult {
    /// A gate that did not run.
    pub fn skipped(gate: &str, detail: impl Into<String>) -> Self {
        Self {
            gate: gate.to_string(),
            status: GateStatus::Skipped,
            passed: 0,
            failed: 0,
            skipped: 0,
            failures: Vec::new(),
            exit_code: None,
            duration_ms: 0,
            detail: Some(detail.into()),
            output_tail: String::new(),
        }
    }

    /// Whether the gate let the work through (passed or skipped).
    pub fn ok(&self) -> bool {
        self.status != GateStatus::Failed
    }

    /// A summary for retry context and reports: the gate line's outcome, the
    /// failing tests with their messages, and the output's end.
    pub fn failure_text(&self) -> String {
        let mut text = format!("quality gate {} failed", self.gate);
        if let Some(detail) = &self.detail {
            text.push_str(&format!(": {detail}"));
        }
        if self.failed > 0 {
            text.push_str(&format!(
                " ({}/{} tests failed)",
                self.failed,
                self.passed + self.failed
            ));
        }
        for failure in &self.failures {
            text.push_str(&format!("\n- {}: {}", failure.name, failure.message));
        }
        if !self.output_tail.is_empty() {
            text.push_str("\n--- gate output (end) ---\n");
            text.push_str(&self.output_tail);
        }
        text
    }
}

/// Why a gate cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// The gate `name` for work in `scope_dir`: the plan's definition under
/// `gates`, else the built-in preset for the project found there.
pub fn resolve(plan: &Plan, name: &str, scope_dir: &Path) -> Result<GateSpec, ResolveError> {
    if let Some(def) = plan.gates.get(name) {
        let dir = match &def.working_directory {
            Some(d) => scope_dir.join(d),
            None => scope_dir.to_path_buf(),
        };
        return Ok(GateSpec {
            name: name.to_string(),
            command: def.command.clone(),
            working_directory: dir.clone(),
            timeout: def.timeout.map(|t| t.get()),
            parser: def.parser,
            junit_path: def.junit_path.as_ref().map(|p| dir.join(p)),
        });
    }
    Err(ResolveError(format!(
        "gate {name:?} has no definition under \"gates\" and no built-in preset fits {}",
        scope_dir.display()
    )))
}

/// The end of `text`, at most `max` bytes, on a character boundary.
fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Runs a gate and reads its result. `cancel` stops it (the result is then failed).
pub async fn run_gate(spec: &GateSpec, mode: GateMode, cancel: CancellationToken) -> GateResult {
    if mode == GateMode::Off {
        return GateResult::skipped(&spec.name, "quality gates are off");
    }
    let started = std::time::Instant::now();
    let mut command = match &spec.command {
        CommandSpec::Shell(script) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(script);
            c
        }
        CommandSpec::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return GateResult::skipped(&spec.name, "empty command");
            };
            let mut c = tokio::process::Command::new(program);
            c.args(args);
            c
        }
    };
    command
        .current_dir(&spec.working_directory)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let run = command.output();
    let output = tokio::select! {
        out = run => out,
        () = cancel.cancelled() => {
            let mut result = GateResult::skipped(&spec.name, "cancelled");
            result.status = GateStatus::Failed;
            return result;
        }
        () = sleep_opt(spec.timeout) => {
            let mut result = GateResult::skipped(&spec.name, format!("timed out after {:?}", spec.timeout.unwrap_or_default()));
            result.status = GateStatus::Failed;
            result.duration_ms = started.elapsed().as_millis() as u64;
            return result;
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tool = match &spec.command {
                CommandSpec::Argv(argv) => argv.first().cloned().unwrap_or_default(),
                CommandSpec::Shell(_) => "sh".into(),
            };
            let mut result = GateResult::skipped(&spec.name, format!("tool not installed: {tool}"));
            if mode == GateMode::Strict {
                result.status = GateStatus::Failed;
            }
            result
        }
        Err(e) => {
            let mut result = GateResult::skipped(&spec.name, format!("cannot run the gate: {e}"));
            result.status = GateStatus::Failed;
            result
        }
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let code = out.status.code();
            let passed = out.status.success();
            GateResult {
                gate: spec.name.clone(),
                status: if passed {
                    GateStatus::Passed
                } else {
                    GateStatus::Failed
                },
                passed: 0,
                failed: 0,
                skipped: 0,
                failures: Vec::new(),
                exit_code: code,
                duration_ms,
                detail: (!passed).then(|| {
                    code.map_or_else(
                        || "killed by a signal".to_string(),
                        |c| format!("exit code {c}"),
                    )
                }),
                output_tail: tail(&text, 4000),
            }
        }
    }
}

async fn sleep_opt(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The seed's gate line: `[GATE: unit-tests] Service: AUTH - PASSED (45/45 tests)`,
/// `- FAILED (2/30 tests failed)`, or `- SKIPPED (why)`.
pub fn gate_line(result: &GateResult, service: &str) -> String {
    let total = result.passed + result.failed;
    let outcome = match result.status {
        GateStatus::Passed if total > 0 => format!("PASSED ({}/{} tests)", result.passed, total),
        GateStatus::Passed => "PASSED".to_string(),
        GateStatus::Failed if result.failed > 0 => {
            format!("FAILED ({}/{} tests failed)", result.failed, total)
        }
        GateStatus::Failed => format!(
            "FAILED ({})",
            result.detail.as_deref().unwrap_or("the command failed")
        ),
        GateStatus::Skipped => format!(
            "SKIPPED ({})",
            result.detail.as_deref().unwrap_or("not run")
        ),
    };
    format!("[GATE: {}] Service: {service} - {outcome}", result.gate)
}

/// JUnit XML of gate results: one `<testsuite>` per (service, gate).
pub fn junit_xml(results: &[(String, GateResult)]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (service, r) in results {
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
            escape(&format!("{}:{}", r.gate, service)),
            r.passed + r.failed + r.skipped,
            r.failed,
            r.skipped,
            r.duration_ms as f64 / 1000.0
        ));
        for f in &r.failures {
            xml.push_str(&format!(
                "    <testcase name=\"{}\"><failure message=\"{}\"/></testcase>\n",
                escape(&f.name),
                escape(&f.message)
            ));
        }
        if r.status == GateStatus::Failed && r.failures.is_empty() {
            xml.push_str(&format!(
                "    <testcase name=\"{}\"><failure message=\"{}\"/></testcase>\n",
                escape(&r.gate),
                escape(r.detail.as_deref().unwrap_or("failed"))
            ));
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
