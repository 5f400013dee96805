//! Alerts: chosen journal events sent out as they happen, to a webhook
//! (`--notify-webhook URL`: a JSON `POST` per event) and/or a command
//! (`--on-event 'CMD'`: run with `sh -c`, the event in its environment).
//!
//! Which events (`--notify-on`, comma-separated event kinds, or `all`): by
//! default the ones a person may need to act on: an agent that failed, timed
//! out or stalled (`AgentFinished` with such an outcome), `AgentBlocked`,
//! `ConflictFound`, `GateStageFailed`, `RunBudgetExceeded`, `RunInterrupted`
//! and `RunFinished`.
//!
//! Delivery never slows the run: events go to one background thread that
//! posts them in order (10 s timeout each, failures reported once on stderr)
//! and runs the command (`LLMO_EVENT_KIND`, `LLMO_EVENT_JSON`, `LLMO_RUN_ID`
//! and `LLMO_EVENT_TEXT` set; 30 s limit). At the end of the run what is
//! queued is delivered (for at most 10 s) before the process exits.
//!
//! The JSON body: `{"runId", "kind", "seq", "atMs", "text", "event"}`, where
//! `event` is the journal's event and `text` the line the progress output shows.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::progress::{Reporter, describe};
use crate::journal::{AgentOutcome, Event, EventRecord, RunState};
use crate::plan::Plan;

/// Where and which alerts go.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {
    /// Webhook URL for JSON `POST`s.
    pub webhook: Option<String>,
    /// Command run with `sh -c` per alert.
    pub command: Option<String>,
    /// Event kinds to send (`None`: the default set; `all` in the list: every event).
    pub kinds: Option<Vec<String>>,
}

impl AlertConfig {
    /// Whether any alert goes anywhere.
    pub fn is_active(&self) -> bool {
        self.webhook.is_some() || self.command.is_some()
    }

    /// Whether `event` is sent.
    pub fn wants(&self, event: &Event) -> bool {
        match &self.kinds {
            Some(kinds) => kinds.iter().any(|k| k == "all" || k == event.kind()),
            None => match event {
                Event::AgentFinished { outcome, .. } => matches!(
                    outcome,
                    AgentOutcome::Failed { .. } | AgentOutcome::TimedOut | AgentOutcome::Stalled
                ),
                Event::AgentBlocked { .. }
                | Event::ConflictFound { .. }
                | Event::GateStageFailed { .. }
                | Event::RunBudgetExceeded { .. }
                | Event::Anomaly { .. }
                | Event::AdaptationProposed { .. }
                | Event::AdaptationRejected { .. }
                | Event::RunInterrupted { .. }
                | Event::RunFinished { .. } => true,
                _ => false,
            },
        }
    }
}

/// One alert on its way.
struct Alert {
    kind: &'static str,
    body: serde_json::Value,
    text: String,
    run_id: String,
}

/// The reporter that sends alerts (see the module docs).
pub struct Alerts {
    config: AlertConfig,
    queue: Option<mpsc::Sender<Alert>>,
    worker: Option<JoinHandle<()>>,
}

impl Alerts {
    /// Starts the delivery thread.
    pub fn new(config: AlertConfig) -> Self {
        let (queue, inbox) = mpsc::channel::<Alert>();
        let webhook = config.webhook.clone();
        let command = config.command.clone();
        let worker = std::thread::Builder::new()
            .name("llmo-alerts".into())
            .spawn(move || deliver(inbox, webhook, command))
            .ok();
        Self {
            config,
            queue: Some(queue),
            worker,
        }
    }
}

impl Reporter for Alerts {
    fn event(&mut self, record: &EventRecord, state: &RunState, plan: &Plan) {
        if !self.config.wants(&record.event) {
            return;
        }
        let text = describe(record, state, plan).unwrap_or_default();
        let body = serde_json::json!({
            "runId": state.run_id,
            "kind": record.event.kind(),
            "seq": record.seq,
            "atMs": record.at_ms,
            "text": text,
            "event": record.event,
        });
        if let Some(queue) = &self.queue {
            let _ = queue.send(Alert {
                kind: record.event.kind(),
                body,
                text,
                run_id: state.run_id.clone(),
            });
        }
    }

    fn finish(&mut self, _state: &RunState, _plan: &Plan) {
        // Closing the queue lets the thread deliver what is left and end.
        self.queue = None;
        if let Some(worker) = self.worker.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if worker.is_finished() {
                let _ = worker.join();
            } else {
                eprintln!("alerts: some alerts were not delivered within 10 s");
            }
        }
    }
}

/// The delivery thread: posts and runs each alert in order.
fn deliver(inbox: mpsc::Receiver<Alert>, webhook: Option<String>, command: Option<String>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("alerts: cannot start: {e}");
            return;
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok();
    let mut warned = false;
    while let Ok(alert) = inbox.recv() {
        if let (Some(url), Some(client)) = (&webhook, &client) {
            // The request is built inside the runtime (its timeout needs the timer).
            let sent = runtime.block_on(async { client.post(url).json(&alert.body).send().await });
            let failure = match sent {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("HTTP {}", response.status())),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failure
                && !warned
            {
                eprintln!(
                    "alerts: the webhook did not take an alert ({why}); later failures are not reported"
                );
                warned = true;
            }
        }
        if let Some(command) = &command {
            run_hook(command, &alert);
        }
    }
}

/// Runs the `--on-event` command for one alert (30 s at most).
fn run_hook(command: &str, alert: &Alert) {
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("LLMO_EVENT_KIND", alert.kind)
        .env("LLMO_EVENT_JSON", alert.body.to_string())
        .env("LLMO_EVENT_TEXT", &alert.text)
        .env("LLMO_RUN_ID", &alert.run_id)
        .stdin(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("alerts: cannot run the --on-event command");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("alerts: the --on-event command took over 30 s and was stopped");
                return;
            }
        }
    }
}
