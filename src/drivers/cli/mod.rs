//! Drivers for coding-agent CLIs (Claude Code, Codex, Gemini CLI, …): one
//! generic runner, [`CliDriver`], and a small [`CliFlavor`] trait per CLI.
//!
//! # What a flavour provides
//!
//! A [`CliFlavor`] says which program to run ([`CliFlavor::program`], found
//! on PATH unless the variable [`CliFlavor::program_variable`] names another
//! one), how to call it for one attempt ([`CliFlavor::command`]: arguments and
//! extra environment, from an [`Attempt`]), and how to read what it prints
//! ([`CliFlavor::reader`]: an [`EventReader`] that turns each JSON line of
//! stdout into [`Observation`]s and, at exit, says whether the CLI itself
//! considers the work done).
//!
//! # What the runner does
//!
//! The process is supervised like a `shell` agent (see [`super::process`]):
//! own process group, janitor, `timeout`, the silence watchdog
//! (`stall_timeout` → [`AgentOutcome::Stalled`]), cancellation, SIGTERM →
//! `kill_grace` → SIGKILL, and all raw output (stdout and stderr) appended to
//! `agents/<id>/output.log` after a `==> attempt N: <command> <==` header in
//! which the prompt is shown as `<prompt>`. stdout is the CLI's event
//! stream, read line by line (a line longer than [`MAX_LINE_BYTES`] is
//! skipped and noted in the tail); a line that is not a JSON object is treated
//! as the agent's plain text. stderr goes to the log and the tail only.
//!
//! The agent's text ([`Observation::Text`]) goes through the one
//! [`MarkerParser`], so STATUS markers become [`AgentOutput::Protocol`] as they
//! stream; [`Observation::Usage`] becomes [`AgentOutput::Usage`] (priced with
//! the driver's price table when the CLI gives no USD amount);
//! [`Observation::Session`] becomes [`AgentOutput::Session`] (once per new
//! id); tool uses are counted and sent once, at the end, as
//! [`AgentOutput::Tools`].
//!
//! # Outcome
//!
//! | the attempt                                   | outcome |
//! |-----------------------------------------------|---------|
//! | killed by the runner                          | `TimedOut`, `Stalled` or `Cancelled` |
//! | the reader's [`EventReader::finish`] says `Err(reason)` | `Failed { reason }`, plus `: <text>` of the last FAILED marker |
//! | it says `Ok` and a FAILED marker was seen     | `Failed { reason: <its text> }` |
//! | it says `Ok` and COMPLETE was seen            | `Completed` |
//! | it says `Ok` and no COMPLETE was seen         | `Completed` with a warning |
//!
//! So each flavour decides from its final event (and the exit code) whether
//! the CLI ended normally; the STATUS markers decide the rest, exactly as for
//! the other drivers ([`StatusVerdict`]).
//!
//! # The prompt
//!
//! One text: the agent's rendered platform prompt, then what the API drivers
//! send as the first user message (the agent id, the work description, the
//! scope, the STATUS protocol reminder and, on a retry, why the previous
//! attempt failed). The model is the agent's `model`, else `LLMO_MODEL`, else
//! the CLI's own default.
//!
//! # Permissions
//!
//! The agent's `permissions` (default `workspace-write`) are mapped by each
//! flavour to the CLI's own mode (see [`claude`], [`codex`], [`gemini`]); the
//! agent's `cliArgs` are appended verbatim after the flavour's arguments.

pub mod aider;
pub mod claude;
pub mod codex;
pub mod gemini;
pub mod opencode;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{Ended, PipeSink, ProcessSpec, Stop, Streams, Tail};
use super::{AgentOutput, AgentTask, Driver, DriverResult, StatusVerdict};
use crate::journal::AgentOutcome;
use crate::plan::Permissions;
use crate::protocol::{MarkerParser, ProtocolEvent};
use crate::providers::{PriceTable, Usage};

/// Longest stdout line read as an event; longer lines are skipped.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;
/// Longest prompt passed on the command line (Linux allows 128 KiB per argument).
pub const MAX_PROMPT_BYTES: usize = 120 * 1024;

/// A coding-agent CLI: how to call it and how to read it. Implement this (and
/// an [`EventReader`]) to add a CLI; [`CliDriver`] does the rest.
pub trait CliFlavor: Send + Sync + 'static {
    /// Name used in messages, e.g. `claude-code`.
    fn name(&self) -> &'static str;
    /// Program name looked up on PATH, e.g. `claude`.
    fn program(&self) -> &'static str;
    /// Environment variable that names another program (a path or a name on
    /// PATH), e.g. `LLMO_CLAUDE_BIN`.
    fn program_variable(&self) -> &'static str;
    /// Arguments and extra environment for one attempt. The runner puts the
    /// agent's `cliArgs` between [`CliCommand::args`] and
    /// [`CliCommand::trailing`], adds the `LLMO_*`
    /// variables and the agent's `env`, and runs it in [`Attempt::task`]'s
    /// working directory with stdin on `/dev/null`. `Err` fails the attempt
    /// before anything runs.
    fn command(&self, attempt: &Attempt<'_>) -> Result<CliCommand, String>;
    /// A fresh reader for one attempt's stdout events.
    fn reader(&self, attempt: &Attempt<'_>) -> Box<dyn EventReader>;
}

/// Reads one attempt's event stream.
pub trait EventReader: Send {
    /// Takes one JSON line of stdout (an object) and pushes what it says to `out`.
    fn event(&mut self, event: &serde_json::Value, out: &mut Vec<Observation>);
    /// The process exited by itself: `Ok` when the CLI ended its work
    /// normally (the STATUS markers then decide the outcome), else why it failed.
    fn finish(&mut self, exit: Exit) -> Result<(), String>;
    /// Takes one stdout line that is not a JSON object (without its newline;
    /// aider prints only such lines). The default treats it as the agent's
    /// plain text.
    fn plain(&mut self, line: &str, out: &mut Vec<Observation>) {
        out.push(Observation::Text(format!("{line}\n")));
    }
    /// Called once when the process exited by itself, just before
    /// [`EventReader::finish`]: the usage (and tool uses) that is left to
    /// report, e.g. what a CLI wrote to a file (aider's analytics log). Text
    /// given here goes to the tail but is not read for STATUS markers. The
    /// default reports nothing.
    fn drain(&mut self, _exit: Exit, _out: &mut Vec<Observation>) {}
}

/// Something an event said.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The agent's own text. It is a stream: end a complete message with `\n`
    /// so a marker in the next one starts a line.
    Text(String),
    /// The agent used a tool of this name.
    Tool(String),
    /// Tokens (and USD when the CLI reports it).
    Usage {
        /// The model.
        model: String,
        /// Tokens.
        usage: Usage,
        /// USD as reported by the CLI; `None` lets the runner price it.
        cost_usd: Option<f64>,
    },
    /// The CLI's session (thread) id.
    Session(String),
}

/// How the process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit code, when it exited with one.
    pub code: Option<i32>,
    /// The signal that killed it, otherwise.
    pub signal: Option<i32>,
}

impl Exit {
    /// `exit code N` or `killed by signal S`.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended without a status".into(),
        }
    }
}

/// One attempt, as a flavour sees it.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// The task.
    pub task: &'a AgentTask,
    /// The whole prompt (see the module documentation).
    pub prompt: &'a str,
    /// The model, when one was chosen (agent `model`, else `LLMO_MODEL`).
    pub model: Option<&'a str>,
    /// What the agent may do without asking.
    pub permissions: Permissions,
}

/// Arguments and environment for one attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CliCommand {
    /// Arguments after the program.
    pub args: Vec<OsString>,
    /// Arguments after the agent's `cliArgs` (e.g. `--` and a positional prompt).
    pub trailing: Vec<OsString>,
    /// Variables added to the environment (never logged).
    pub env: Vec<(String, OsString)>,
}

/// Finds a flavour's program: the override variable when set (a path, or a
/// name looked up on PATH), else its program name on PATH.
pub fn find_program(flavor: &dyn CliFlavor) -> Option<PathBuf> {
    super::detect::locate_program(flavor.program_variable(), flavor.program())
}

/// Runs agents with a coding-agent CLI (see the module documentation).
pub struct CliDriver {
    flavor: Arc<dyn CliFlavor>,
    program: PathBuf,
    prices: Option<Arc<PriceTable>>,
}

impl CliDriver {
    /// A driver running `program` as `flavor`; usage without a USD amount
    /// is priced with `prices` when given.
    pub fn new(
        flavor: Arc<dyn CliFlavor>,
        program: PathBuf,
        prices: Option<Arc<PriceTable>>,
    ) -> Self {
        Self {
            flavor,
            program,
            prices,
        }
    }

    /// The program this driver runs.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }
}

impl Driver for CliDriver {
    fn run(
        &self,
        task: AgentTask,
        output: mpsc::UnboundedSender<AgentOutput>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult> {
        let flavor = Arc::clone(&self.flavor);
        let program = self.program.clone();
        let prices = self.prices.clone();
        Box::pin(async move { run_attempt(flavor, program, prices, task, output, cancel).await })
    }
}

fn failed_early(reason: String) -> DriverResult {
    DriverResult {
        outcome: AgentOutcome::Failed { reason },
        exit_code: None,
        tail: String::new(),
    }
}

/// The prompt of one attempt: the rendered platform prompt and the task.
pub fn prompt_text(task: &AgentTask) -> String {
    let first = super::api::first_message(task);
    if task.prompt.trim().is_empty() {
        first
    } else {
        format!("{}\n\n{first}", task.prompt.trim_end())
    }
}

/// The model of an attempt: the agent's `model`, else `LLMO_MODEL`.
fn chosen_model(task: &AgentTask) -> Option<String> {
    task.agent.model.clone().or_else(|| {
        std::env::var("LLMO_MODEL")
            .ok()
            .filter(|m| !m.trim().is_empty())
    })
}

async fn run_attempt(
    flavor: Arc<dyn CliFlavor>,
    program: PathBuf,
    prices: Option<Arc<PriceTable>>,
    task: AgentTask,
    output: mpsc::UnboundedSender<AgentOutput>,
    cancel: CancellationToken,
) -> DriverResult {
    let prompt = prompt_text(&task);
    if prompt.len() > MAX_PROMPT_BYTES {
        return failed_early(format!(
            "the prompt of agent {} is {} bytes, more than the {MAX_PROMPT_BYTES} a command-line argument may hold",
            task.agent.agent_id,
            prompt.len()
        ));
    }
    let model = chosen_model(&task);
    let attempt = Attempt {
        task: &task,
        prompt: &prompt,
        model: model.as_deref(),
        permissions: task.agent.permissions.unwrap_or_default(),
    };
    if let Err(reason) = super::process::check_workdir(&task) {
        return failed_early(reason);
    }
    let command = match flavor.command(&attempt) {
        Ok(command) => command,
        Err(reason) => return failed_early(format!("{}: {reason}", flavor.name())),
    };
    let reader = flavor.reader(&attempt);
    let mut args = command.args;
    args.extend(task.agent.cli_args.iter().map(OsString::from));
    args.extend(command.trailing);
    let display = display_command(&program, &args, &prompt);
    let mut env = super::process::agent_environment(&task);
    env.extend(command.env);

    let shared = Arc::new(Mutex::new(Shared {
        parser: MarkerParser::new(),
        reader,
        verdict: StatusVerdict::default(),
        tail: Tail::default(),
        tools: BTreeMap::new(),
        session: None,
        skipped_lines: 0,
        output: output.clone(),
        prices,
    }));
    let streams = Streams::Separate {
        stdout: Box::new(EventSink {
            shared: Arc::clone(&shared),
            line: Vec::new(),
            overlong: false,
        }),
        stderr: Box::new(StderrSink {
            shared: Arc::clone(&shared),
        }),
    };
    let spec = ProcessSpec {
        program: program.into_os_string(),
        args,
        env,
        display,
    };
    let supervised = match super::process::supervise(&task, spec, streams, &output, &cancel).await {
        Ok(supervised) => supervised,
        Err(reason) => return failed_early(reason),
    };

    let mut shared = lock(&shared);
    let mut events = Vec::new();
    shared.parser.finish(&mut events);
    shared.send(events);
    if !shared.tools.is_empty() {
        let uses = std::mem::take(&mut shared.tools);
        let _ = output.send(AgentOutput::Tools { uses });
    }
    let mut tail = shared.tail.render();
    if shared.skipped_lines > 0 {
        tail.push_str(&format!(
            "\n({} output lines longer than {MAX_LINE_BYTES} bytes were skipped)\n",
            shared.skipped_lines
        ));
    }
    if let Some(e) = supervised.log_error {
        tail.push_str(&e);
    }
    let (outcome, exit_code) = match supervised.ended {
        Ended::Stopped(Stop::TimedOut) => (AgentOutcome::TimedOut, None),
        Ended::Stopped(Stop::Stalled) => (AgentOutcome::Stalled, None),
        Ended::Stopped(Stop::Cancelled) => (AgentOutcome::Cancelled, None),
        Ended::WaitFailed(e) => (
            AgentOutcome::Failed {
                reason: format!("could not wait for the process: {e}"),
            },
            None,
        ),
        Ended::Exited(status) => {
            use std::os::unix::process::ExitStatusExt;
            let exit = Exit {
                code: status.code(),
                signal: status.signal(),
            };
            let mut last = Vec::new();
            shared.reader.drain(exit, &mut last);
            for observation in last {
                shared.observe(observation);
            }
            let outcome = match shared.reader.finish(exit) {
                Ok(()) => shared.verdict.outcome(),
                Err(reason) => {
                    let suffix = shared
                        .verdict
                        .failed_text
                        .as_deref()
                        .map(|text| format!(": {text}"))
                        .unwrap_or_default();
                    AgentOutcome::Failed {
                        reason: format!("{reason}{suffix}"),
                    }
                }
            };
            (outcome, exit.code)
        }
    };
    DriverResult {
        outcome,
        exit_code,
        tail,
    }
}

/// The command for the log header: the prompt shown as `<prompt>`, arguments
/// quoted when needed. Environment values are never shown.
fn display_command(program: &std::path::Path, args: &[OsString], prompt: &str) -> String {
    let mut words = vec![program.display().to_string()];
    for arg in args {
        let arg = arg.to_string_lossy();
        if arg == prompt {
            words.push("<prompt>".into());
        } else if arg.is_empty()
            || arg
                .chars()
                .any(|c| c.is_whitespace() || "'\"\\$`;&|<>*?()[]{}#~".contains(c))
        {
            words.push(format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            words.push(arg.into_owned());
        }
    }
    words.join(" ")
}

/// State shared by the two pipe readers and the end of the attempt.
struct Shared {
    parser: MarkerParser,
    reader: Box<dyn EventReader>,
    verdict: StatusVerdict,
    /// The agent's text and stderr, for the report and the retry context.
    tail: Tail,
    tools: BTreeMap<String, u32>,
    session: Option<String>,
    skipped_lines: u64,
    output: mpsc::UnboundedSender<AgentOutput>,
    prices: Option<Arc<PriceTable>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn send(&mut self, events: Vec<ProtocolEvent>) {
        for event in events {
            self.verdict.note(&event);
            let _ = self.output.send(AgentOutput::Protocol(event));
        }
    }

    fn text(&mut self, text: &str) {
        self.tail.push(text.as_bytes());
        let mut events = Vec::new();
        self.parser.feed(text.as_bytes(), &mut events);
        self.send(events);
    }

    /// One complete stdout line (without its newline).
    fn line(&mut self, line: &[u8]) {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        let event = match serde_json::from_slice::<serde_json::Value>(trimmed) {
            Ok(event) if event.is_object() => event,
            // Not an event: the agent's plain text (it is in the log as it is).
            _ => {
                let mut observations = Vec::new();
                self.reader
                    .plain(&String::from_utf8_lossy(line), &mut observations);
                for observation in observations {
                    self.observe(observation);
                }
                return;
            }
        };
        let mut observations = Vec::new();
        self.reader.event(&event, &mut observations);
        for observation in observations {
            self.observe(observation);
        }
    }

    fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Text(text) => self.text(&text),
            Observation::Tool(name) => {
                let count = self.tools.entry(name).or_insert(0);
                *count = count.saturating_add(1);
            }
            Observation::Usage {
                model,
                usage,
                cost_usd,
            } => {
                let cost_usd = cost_usd.or_else(|| {
                    self.prices
                        .as_ref()
                        .and_then(|prices| prices.cost_usd(&model, &usage))
                });
                let _ = self.output.send(AgentOutput::Usage {
                    model,
                    usage,
                    cost_usd,
                });
            }
            Observation::Session(id) => {
                if self.session.as_deref() != Some(id.as_str()) {
                    self.session = Some(id.clone());
                    let _ = self.output.send(AgentOutput::Session { id });
                }
            }
        }
    }
}

/// Splits stdout into lines (bounded) and hands them to [`Shared::line`].
struct EventSink {
    shared: Arc<Mutex<Shared>>,
    line: Vec<u8>,
    /// The current line passed [`MAX_LINE_BYTES`]: skip to its end.
    overlong: bool,
}

impl PipeSink for EventSink {
    fn chunk(&mut self, mut bytes: &[u8]) {
        let mut shared = lock(&self.shared);
        while !bytes.is_empty() {
            let (part, rest, complete) = match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.overlong {
                if self.line.len() + part.len() > MAX_LINE_BYTES {
                    self.overlong = true;
                    self.line = Vec::new();
                    shared.skipped_lines += 1;
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            if complete {
                if !self.overlong {
                    let line = std::mem::take(&mut self.line);
                    shared.line(&line);
                }
                self.overlong = false;
            }
        }
    }

    fn end(&mut self) {
        if !self.overlong && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            lock(&self.shared).line(&line);
        }
    }
}

/// stderr: the log (written by the supervisor) and the tail only.
struct StderrSink {
    shared: Arc<Mutex<Shared>>,
}

impl PipeSink for StderrSink {
    fn chunk(&mut self, bytes: &[u8]) {
        lock(&self.shared).tail.push(bytes);
    }

    fn end(&mut self) {}
}

/// A string field of a JSON object.
pub(crate) fn str_field<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(serde_json::Value::as_str)
}

/// A token count field of a JSON object (0 when missing).
pub(crate) fn count_field(value: &serde_json::Value, key: &str) -> u64 {
    value
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
