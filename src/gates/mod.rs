//! Quality gates the orchestrator runs itself: a gate is a command (a test
//! runner, a linter) run in a folder, whose output is parsed into passed /
//! failed / skipped counts with the failing tests' names and messages.
//!
//! This module knows how to resolve a gate name to a command ([`resolve`]),
//! run it ([`run_gate`]), read its output, render the seed's
//! `[GATE: name] Service: X - PASSED (45/45 tests)` lines ([`gate_line`]) and
//! write JUnit XML ([`junit_xml`]). When and where gates run, and what their
//! results do, is the engine's business (`engine::gates`).

pub mod advisor;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::plan::{CommandSpec, GateParser, Plan};

pub mod capture;
pub mod parsers;
pub mod presets;
pub mod runner;
#[cfg(test)]
mod tests;

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
    /// Suggested fixes for a failure, from the gate advisor LLM (see [`advisor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// What asking the advisor cost (USD, when its price is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice_cost_usd: Option<f64>,
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
            suggestion: None,
            advice_cost_usd: None,
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
        if let Some(suggestion) = &self.suggestion {
            text.push_str("\n--- suggested fixes ---\n");
            text.push_str(suggestion);
        }
        text
    }
}

/// Why a gate cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// The gate `name` for work in `scope_dir`: the plan's definition under
/// `gates`, else the built-in preset for the project found there or in its
/// nearest parent up to the repository root ([`presets`]).
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
    let preset = presets::preset(name, scope_dir).map_err(|e| ResolveError(e.to_string()))?;
    Ok(GateSpec {
        name: name.to_string(),
        command: preset.command(),
        working_directory: preset.dir,
        timeout: None,
        parser: preset.parser,
        junit_path: None,
    })
}

/// Most bytes of output kept in [`GateResult::output_tail`].
const OUTPUT_TAIL_BYTES: usize = 4000;

/// The end of `text`, at most `max` bytes, on a character boundary.
fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Runs a gate and reads its result. `cancel` stops it (the result is then
/// failed). The command runs in its own process group, killed with it on
/// timeout or cancel ([`runner`]); its output is read with the gate's parser
/// ([`parsers`]) and the exit code is checked too: a non-zero exit without a
/// parsed failure fails (`exit code N`), and so do parsed failures with a
/// zero exit. Under [`GateMode::Strict`] a test gate that found no tests fails.
pub async fn run_gate(spec: &GateSpec, mode: GateMode, cancel: CancellationToken) -> GateResult {
    if mode == GateMode::Off {
        return GateResult::skipped(&spec.name, "quality gates are off");
    }
    let started = std::time::Instant::now();
    let run = runner::run(spec, &cancel).await;
    let mut result = GateResult::skipped(&spec.name, "");
    result.detail = None;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result.output_tail = tail(&run.output.tail, OUTPUT_TAIL_BYTES);
    let stopped = match run.ended {
        runner::Ended::NotFound(tool) => return tool_missing(result, &tool, mode),
        runner::Ended::Failed(why) => {
            result.status = GateStatus::Failed;
            result.detail = Some(format!("cannot run the gate: {why}"));
            return result;
        }
        runner::Ended::Exited(status) => {
            if let Some(tool) = missing_tool(spec, status.code(), &run.output.text) {
                return tool_missing(result, &tool, mode);
            }
            result.exit_code = status.code();
            match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(0), _) => None,
                (Some(c), _) => Some(format!("exit code {c}")),
                (None, Some(s)) => Some(format!("killed by signal {s}")),
                (None, None) => Some("exit status unknown".to_string()),
            }
        }
        runner::Ended::TimedOut => Some(format!(
            "timed out after {}",
            humanize(spec.timeout.unwrap_or_default())
        )),
        runner::Ended::Cancelled => Some("cancelled".to_string()),
    };
    let parsed = parsers::parse(
        spec.parser,
        &spec.command.display(),
        &run.output.text,
        spec.junit_path.as_deref(),
    );
    let mut problem = None;
    if let Some(p) = parsed {
        result.passed = p.passed;
        result.failed = p.failed.max(p.failures.len() as u32);
        result.skipped = p.skipped;
        result.failures = p.failures;
    } else if spec.parser == GateParser::JunitXml {
        let path = spec
            .junit_path
            .as_ref()
            .map_or_else(|| "(no junitPath)".to_string(), |p| p.display().to_string());
        problem = Some(format!("cannot read the JUnit XML file {path}"));
    }
    // pytest's exit code 5 means it collected no test: that is `no tests`, not a failure.
    let stopped = stopped.filter(|_| {
        !(result.exit_code == Some(5)
            && result.passed + result.failed == 0
            && run.output.text.contains("no tests ran"))
    });
    let killed = result.exit_code.is_none();
    let tests_failed = result.failed > 0;
    // An exit code is the reason only when no failing test explains it; a
    // timeout, a cancel or a signal is always said.
    result.detail = match (stopped, problem) {
        (Some(why), Some(p)) => Some(format!("{why}; {p}")),
        (Some(why), None) if killed || !tests_failed => Some(why),
        (_, p) => p,
    };
    let test_gate = spec.parser != GateParser::ExitCode;
    result.status = if result.detail.is_some() || tests_failed {
        GateStatus::Failed
    } else if mode == GateMode::Strict && test_gate && result.passed + result.failed == 0 {
        result.detail = Some("no tests found".to_string());
        GateStatus::Failed
    } else {
        GateStatus::Passed
    };
    result
}

/// A result for a gate whose tool is missing: skipped, or failed under `strict`.
fn tool_missing(mut result: GateResult, tool: &str, mode: GateMode) -> GateResult {
    result.detail = Some(format!("tool not installed: {tool}"));
    result.status = if mode == GateMode::Strict {
        GateStatus::Failed
    } else {
        GateStatus::Skipped
    };
    result
}

/// The tool a command lacked, from how it failed: cargo's `no such command:
/// audit` (→ `cargo-audit`), a shell's exit code 127 with `x: not found`, or
/// `python -m x` saying `No module named x`.
fn missing_tool(spec: &GateSpec, code: Option<i32>, output: &str) -> Option<String> {
    let code = code.filter(|c| *c != 0)?;
    let first_lines = || output.lines().take(20);
    if let Some(sub) = first_lines().find_map(|l| l.split("no such command: ").nth(1)) {
        return Some(format!(
            "cargo-{}",
            sub.trim().trim_matches(['`', '\'', '"'])
        ));
    }
    // `/usr/bin/python3: No module named pytest` (not a test's ModuleNotFoundError).
    if let Some(module) = first_lines().find_map(|l| {
        l.split_once(": No module named ")
            .filter(|(program, _)| program.contains("python") && !program.contains(' '))
            .map(|(_, m)| m)
    }) {
        return Some(module.trim().trim_matches(['\'', '"']).to_string());
    }
    if code == 127 && matches!(spec.command, CommandSpec::Shell(_)) {
        // `sh: 1: cargo: not found` / `sh: line 1: cargo: command not found`
        return first_lines().find_map(|l| {
            let l = l.trim_end();
            let l = l
                .strip_suffix(": command not found")
                .or_else(|| l.strip_suffix(": not found"))?;
            l.rsplit(": ").next().map(str::to_string)
        });
    }
    None
}

/// `1m 30s`, `45s`, `250ms`.
fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs >= 60 && !secs.is_multiple_of(60) {
        format!("{}m {}s", secs / 60, secs % 60)
    } else if secs >= 60 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
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

/// JUnit XML of gate results: one `<testsuite>` per (service, gate), a
/// `<testcase>` per failing test; a gate that failed without a failing test
/// (exit code, timeout) is one failing `<testcase>` named after the gate, and
/// a skipped gate one skipped `<testcase>`.
pub fn junit_xml(results: &[(String, GateResult)]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (service, r) in results {
        let whole_gate_failed = r.status == GateStatus::Failed && r.failures.is_empty();
        let whole_gate_skipped =
            r.status == GateStatus::Skipped && r.passed + r.failed + r.skipped == 0;
        let failures = r
            .failed
            .max(r.failures.len() as u32 + u32::from(whole_gate_failed));
        let skipped = r.skipped + u32::from(whole_gate_skipped);
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">\n",
            escape(&format!("{}:{}", r.gate, service)),
            r.passed + failures + skipped,
            failures,
            skipped,
            r.duration_ms as f64 / 1000.0
        ));
        for f in &r.failures {
            xml.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\"><failure message=\"{}\"/></testcase>\n",
                escape(&f.name),
                escape(&r.gate),
                escape(&f.message)
            ));
        }
        if whole_gate_failed {
            xml.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\"><failure message=\"{}\"/></testcase>\n",
                escape(&r.gate),
                escape(&r.gate),
                escape(r.detail.as_deref().unwrap_or("failed"))
            ));
        }
        if whole_gate_skipped {
            xml.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\"><skipped message=\"{}\"/></testcase>\n",
                escape(&r.gate),
                escape(&r.gate),
                escape(r.detail.as_deref().unwrap_or("not run"))
            ));
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// `text` for an XML attribute: markup characters escaped, line breaks and
/// tabs as character references, characters XML 1.0 forbids (control codes,
/// U+FFFE, U+FFFF) dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
