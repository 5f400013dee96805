//! The API driver: runs an agent on a model provider's HTTP API with the
//! built-in agent loop ([`crate::agent_loop`]).
//!
//! # The loop
//!
//! The system prompt is the agent's rendered platform prompt (the STATUS
//! protocol, gates and error-recovery rules included); the first user message
//! holds the work description, the scope and, on a retry, why the previous
//! attempt failed. Each turn sends the conversation with the tools
//! ([`crate::agent_loop::tool_specs`]), streams the reply (its text goes
//! through the one [`MarkerParser`], so markers become events as they
//! arrive), runs the tool calls of the turn concurrently inside the agent's
//! workspace, and sends their results back. The attempt ends when the model
//! answers without calling a tool, or fails at `maxTurns` (default
//! [`DEFAULT_MAX_TURNS`]).
//!
//! Models without native tool calling (the `open-source` platform) get the
//! same tools through the text protocol of [`crate::agent_loop::text_protocol`].
//!
//! # Outcome
//!
//! As for the shell driver: a FAILED status (marker or `report_status`) fails
//! the agent; a COMPLETE status completes it; an answer without either
//! completes it with a warning. Provider errors (after the client's own
//! retries) fail it with the error's kind (`auth`, `quota`, `rate-limit`, …).
//! An agent whose spending passes its `budgetUsd` is stopped and fails with
//! `budget: …`. `timeout` ends it as timed out; `cancel` as cancelled.
//!
//! # Files
//!
//! `agents/<id>/output.log` is the transcript: a header per attempt, the
//! system prompt, the model's text as it streams, each tool call and the
//! start of its result.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::transcript::Transcript;
use super::{AgentOutput, AgentTask, Driver, DriverResult, StatusVerdict};
use crate::agent_loop::{self, ToolLimits, Workspace};
use crate::journal::AgentOutcome;
use crate::protocol::{MarkerParser, ProtocolEvent};
use crate::providers::{
    ChatProvider, ChatRequest, Message, Part, PriceTable, ProviderError, Role, ToolResult,
};

/// Turns per attempt when the agent sets no `maxTurns`.
pub const DEFAULT_MAX_TURNS: u32 = 50;
/// Most tokens per model reply.
const MAX_TOKENS: u32 = 8192;
/// Characters of a tool result written to the transcript.
const LOGGED_RESULT_CHARS: usize = 400;
/// Bytes of assistant text kept for the tail.
const TAIL_BYTES: usize = 16 * 1024;

/// Runs agents on a provider's API with the built-in agent loop.
#[derive(Clone)]
pub struct ApiDriver {
    provider: Arc<dyn ChatProvider>,
    model: String,
    prices: Arc<PriceTable>,
    limits: ToolLimits,
    text_tools: bool,
}

impl ApiDriver {
    /// A driver calling `model` through `provider`; `text_tools` selects the
    /// text protocol instead of native tool calling.
    pub fn new(
        provider: Arc<dyn ChatProvider>,
        model: impl Into<String>,
        prices: Arc<PriceTable>,
        text_tools: bool,
    ) -> Self {
        Self {
            provider,
            model: model.into(),
            prices,
            limits: ToolLimits::default(),
            text_tools,
        }
    }

    /// The model this driver calls (an agent's `model` overrides it).
    pub fn model(&self) -> &str {
        &self.model
    }
}

impl Driver for ApiDriver {
    fn run(
        &self,
        task: AgentTask,
        output: mpsc::UnboundedSender<AgentOutput>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult> {
        let driver = self.clone();
        Box::pin(async move {
            let timeout = task.timeout;
            let attempt = run_loop(driver, task, output);
            tokio::select! {
                result = attempt => result,
                () = cancel.cancelled() => ended(AgentOutcome::Cancelled, String::new()),
                () = sleep_opt(timeout) => ended(AgentOutcome::TimedOut, String::new()),
            }
        })
    }
}

fn ended(outcome: AgentOutcome, tail: String) -> DriverResult {
    DriverResult {
        outcome,
        exit_code: None,
        tail,
    }
}

async fn sleep_opt(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// What the STATUS events of an attempt said, from text and from tools.
#[derive(Default)]
struct Observed {
    verdict: StatusVerdict,
    tail: String,
}

impl Observed {
    fn note(&mut self, event: &ProtocolEvent) {
        self.verdict.note(event);
    }

    fn keep_text(&mut self, text: &str) {
        self.tail.push_str(text);
        if self.tail.len() > TAIL_BYTES {
            let mut cut = self.tail.len() - TAIL_BYTES;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.tail.drain(..cut);
        }
    }
}

/// Shared between the streaming callback and the loop.
struct Shared {
    parser: MarkerParser,
    observed: Observed,
    /// Taken and closed when the attempt ends.
    log: Option<Transcript>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn log(&mut self, text: &str) {
        if let Some(log) = &self.log {
            log.write(text);
        }
    }

    /// Feeds streamed text to the parser; returns the events found.
    fn text(&mut self, text: &str) -> Vec<ProtocolEvent> {
        self.log(text);
        self.observed.keep_text(text);
        let mut events = Vec::new();
        self.parser.feed(text.as_bytes(), &mut events);
        for event in &events {
            self.observed.note(event);
        }
        events
    }

    /// Ends a reply: the parser's last partial line.
    fn end_of_reply(&mut self) -> Vec<ProtocolEvent> {
        let mut events = Vec::new();
        self.parser.finish(&mut events);
        for event in &events {
            self.observed.note(event);
        }
        self.parser = MarkerParser::new();
        events
    }
}

fn open_log(task: &AgentTask, model: &str) -> Transcript {
    Transcript::open(
        task.agent_dir.join(super::shell::OUTPUT_LOG),
        format!(
            "==> attempt {}: model {model} <==\n==> system prompt <==\n{}\n==> transcript <==\n",
            task.attempt, task.prompt
        ),
    )
}

/// The first user message: the work, the scope, the previous failure.
pub(crate) fn first_message(task: &AgentTask) -> String {
    let agent = &task.agent;
    let mut text = format!(
        "You are agent {}. Your task:\n\n{}\n",
        agent.agent_id, agent.work_description
    );
    if let Some(scope) = &agent.scope {
        let _ = write!(
            text,
            "\nYour scope (the folders you may change): {}",
            scope.paths().join(", ")
        );
    }
    let _ = write!(
        text,
        "\nYour workspace is the current folder; every path you use is relative to it.\n\
         Report progress with the STATUS markers (or the report_status tool) and finish with \
         [STATUS: COMPLETE] or [STATUS: FAILED] <reason>.\n"
    );
    if let Some(context) = &task.retry_context {
        let _ = write!(
            text,
            "\nThis is attempt {}. The previous attempt failed:\n{context}\n",
            task.attempt
        );
    }
    text
}

async fn run_loop(
    driver: ApiDriver,
    task: AgentTask,
    output: mpsc::UnboundedSender<AgentOutput>,
) -> DriverResult {
    let workspace = match Workspace::new(&task.workdir) {
        Ok(workspace) => workspace,
        Err(e) => {
            return ended(
                AgentOutcome::Failed {
                    reason: format!("workspace {} is not usable: {e}", task.workdir.display()),
                },
                String::new(),
            );
        }
    };
    let model = task
        .agent
        .model
        .clone()
        .unwrap_or_else(|| driver.model.clone());
    let specs = agent_loop::tool_specs();
    let mut system = task.prompt.clone();
    if driver.text_tools {
        system.push_str("\n\n");
        system.push_str(&agent_loop::text_protocol::tool_instructions(&specs));
    }
    let shared = Arc::new(Mutex::new(Shared {
        parser: MarkerParser::new(),
        observed: Observed::default(),
        log: Some(open_log(&task, &model)),
    }));
    let send = |events: Vec<ProtocolEvent>| {
        for event in events {
            let _ = output.send(AgentOutput::Protocol(event));
        }
    };
    let result = async {
        let mut messages = vec![Message::user_text(first_message(&task))];
        let max_turns = task.agent.max_turns.unwrap_or(DEFAULT_MAX_TURNS).max(1);
        let budget = task.agent.budget_usd;
        let mut spent = 0.0_f64;
        for turn in 0..max_turns {
            let request = ChatRequest {
                correlation: Some(format!("{}/{turn}", task.agent.agent_id)),
                model: model.clone(),
                system: system.clone(),
                messages: messages.clone(),
                tools: if driver.text_tools {
                    Vec::new().into()
                } else {
                    std::sync::Arc::clone(&specs)
                },
                max_tokens: MAX_TOKENS,
            };
            let on_text = {
                let shared = Arc::clone(&shared);
                let output = output.clone();
                move |text: &str| {
                    let events = lock(&shared).text(text);
                    for event in events {
                        let _ = output.send(AgentOutput::Protocol(event));
                    }
                }
            };
            let response = driver.provider.chat(&request, &on_text).await;
            send(lock(&shared).end_of_reply());
            let response = match response {
                Ok(response) => response,
                Err(e) => return provider_failure(&e, &shared),
            };
            let cost = driver.prices.cost_usd(&model, &response.usage);
            spent += cost.unwrap_or(0.0);
            let _ = output.send(AgentOutput::Usage {
                model: model.clone(),
                usage: response.usage,
                cost_usd: cost,
            });
            let mut reply = response.message;
            // A server may answer with native tool calls even in text mode: use them then.
            let text_mode = driver.text_tools && reply.tool_calls().next().is_none();
            let calls = if text_mode {
                let parsed = agent_loop::text_protocol::parse_tool_calls(&reply.text());
                let mut parts = vec![Part::Text { text: parsed.text }];
                parts.extend(parsed.calls.iter().cloned().map(Part::ToolCall));
                reply.parts = parts;
                (parsed.calls, parsed.errors)
            } else {
                (reply.tool_calls().cloned().collect(), Vec::new())
            };
            messages.push(reply);
            if let Some(budget) = budget
                && spent > budget
            {
                let reason = format!("budget: spent ${spent:.4} of its ${budget:.4} budgetUsd");
                lock(&shared).log(&format!("\n==> stopped: {reason} <==\n"));
                return failed(reason, &shared);
            }
            let (calls, call_errors) = calls;
            if calls.is_empty() && call_errors.is_empty() {
                return finished(&shared);
            }
            let outcomes = futures::future::join_all(
                calls
                    .iter()
                    .map(|call| agent_loop::execute(&workspace, call, &driver.limits)),
            )
            .await;
            let mut results: Vec<ToolResult> = Vec::with_capacity(outcomes.len());
            {
                let mut shared = lock(&shared);
                for (call, outcome) in calls.iter().zip(outcomes) {
                    for event in &outcome.events {
                        shared.observed.note(event);
                    }
                    let head: String = outcome
                        .result
                        .content
                        .chars()
                        .take(LOGGED_RESULT_CHARS)
                        .collect();
                    let mark = if outcome.result.is_error {
                        "error"
                    } else {
                        "ok"
                    };
                    shared.log(&format!(
                        "\n--> {} {}\n<-- {mark}: {head}\n",
                        call.name, call.arguments
                    ));
                    send(outcome.events);
                    results.push(outcome.result);
                }
            }
            if text_mode {
                let mut text = agent_loop::text_protocol::format_tool_results(&results);
                for error in call_errors {
                    let _ = write!(text, "\n{error}");
                }
                messages.push(Message::user_text(text));
            } else {
                messages.push(Message {
                    role: Role::User,
                    parts: results.into_iter().map(Part::ToolResult).collect(),
                });
            }
        }
        failed(
            format!("max turns ({max_turns}) reached while the model was still working"),
            &shared,
        )
    }
    .await;
    let transcript = lock(&shared).log.take();
    if let Some(transcript) = transcript {
        transcript.close();
    }
    result
}

fn failed(reason: String, shared: &Mutex<Shared>) -> DriverResult {
    let tail = lock(shared).observed.tail.clone();
    ended(AgentOutcome::Failed { reason }, tail)
}

fn provider_failure(error: &ProviderError, shared: &Mutex<Shared>) -> DriverResult {
    let reason = format!("{}: {error}", error.kind());
    lock(shared).log(&format!("\n==> {reason} <==\n"));
    failed(reason, shared)
}

fn finished(shared: &Mutex<Shared>) -> DriverResult {
    let shared = lock(shared);
    let observed = &shared.observed;
    ended(observed.verdict.outcome(), observed.tail.clone())
}
