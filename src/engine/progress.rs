//! Live progress: reporters receive every journaled event with the state after it.
//!
//! - [`JsonLines`]: every event as one JSON line on stdout (`--json`).
//! - [`PlainLines`]: timestamped readable lines, for CI logs and pipes.
//! - [`TerminalBars`]: on a terminal, a bar per running agent (latest status
//!   text, elapsed vs estimated time) and an overall bar with ETA.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use crate::journal::{AgentOutcome, Event, EventRecord, RunState};
use crate::plan::Plan;
use crate::protocol::ReportedStatus;

/// Something that shows a run as it happens.
pub trait Reporter: Send {
    /// Called after each event was journaled and applied.
    fn event(&mut self, record: &EventRecord, state: &RunState, plan: &Plan);
    /// Called once at the end of the run.
    fn finish(&mut self, _state: &RunState, _plan: &Plan) {}
}

/// Every event as a JSON line on stdout.
#[derive(Debug, Default)]
pub struct JsonLines;

impl Reporter for JsonLines {
    fn event(&mut self, record: &EventRecord, _state: &RunState, _plan: &Plan) {
        if let Ok(line) = serde_json::to_string(record) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The first line of a message.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// A commit id shortened for reading.
pub(crate) fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

fn clock(ms: i64) -> String {
    let secs = (ms / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The one-line text of an event, or `None` for events not worth a line.
pub fn describe(record: &EventRecord, state: &RunState, plan: &Plan) -> Option<String> {
    Some(match &record.event {
        Event::RunStarted { run_id, .. } => {
            format!("run {run_id} started ({} agents)", plan.agent_count())
        }
        Event::RunResumed => format!("run {} resumed", state.run_id),
        Event::AgentUsage { .. } | Event::AgentTools { .. } => return None,
        Event::AgentClaimed {
            agent,
            attempt,
            worker,
            claim,
        } => {
            if claim <= attempt {
                return None;
            }
            format!(
                "{agent} queued again after a lost lease: worker {worker} runs it as attempt {claim}"
            )
        }
        Event::AgentSession {
            agent, session_id, ..
        } => format!("{agent} session {session_id}"),
        Event::RunBudgetExceeded {
            spent_usd,
            budget_usd,
        } => format!(
            "run budget exceeded: spent ${spent_usd:.4} of ${budget_usd:.4}; stopping every agent"
        ),
        Event::WaveStarted { wave } => format!("WAVE {wave} started"),
        Event::WaveFinished { wave, ok } => {
            format!(
                "WAVE {wave} finished{}",
                if *ok { "" } else { " with failures" }
            )
        }
        Event::AgentStarted { agent, attempt } => {
            if *attempt > 1 {
                format!("{agent} started (attempt {attempt})")
            } else {
                format!("{agent} started")
            }
        }
        Event::AgentStatus {
            agent,
            status,
            text,
        } => {
            let marker = match status {
                ReportedStatus::Started => "STARTED".to_string(),
                ReportedStatus::Progress(p) => format!("PROGRESS-{p}%"),
                ReportedStatus::Complete => "COMPLETE".to_string(),
                ReportedStatus::Failed => "FAILED".to_string(),
                ReportedStatus::Blocked => "BLOCKED".to_string(),
            };
            format!("{agent} [STATUS: {marker}] {text}")
                .trim_end()
                .to_string()
        }
        Event::AgentReport { agent, report } => format!(
            "{agent} progress report: {} done, {} remaining{}",
            report.completed_tasks.len(),
            report.remaining_tasks.len(),
            report
                .estimated_completion
                .as_ref()
                .map(|e| format!(", done in {e}"))
                .unwrap_or_default()
        ),
        Event::AgentError { agent, report } => {
            format!("{agent} reported [ERROR: {}]", report.title)
        }
        Event::AgentGateClaim { .. } => return None,
        Event::AgentFinished { agent, outcome, .. } => match outcome {
            AgentOutcome::Completed {
                without_marker: false,
            } => format!("{agent} COMPLETE"),
            AgentOutcome::Completed {
                without_marker: true,
            } => {
                format!("{agent} COMPLETE (warning: exited 0 without a [STATUS: COMPLETE] marker)")
            }
            AgentOutcome::Cancelled => format!("{agent} cancelled"),
            AgentOutcome::AwaitingInput => format!(
                "{agent} AWAITING-INPUT: give agents/{agent}/prompt.md to your LLM, then `llm-orchestrate ingest {} --agent {agent} REPLY`",
                state.run_id
            ),
            other => {
                let cause = match other {
                    AgentOutcome::Failed { reason } => reason.clone(),
                    AgentOutcome::TimedOut => "timed out".into(),
                    _ => "stalled: no output for too long".into(),
                };
                let retrying = state
                    .agents
                    .get(agent)
                    .is_some_and(|a| a.phase == crate::journal::AgentPhase::Retrying);
                if retrying {
                    format!("{agent} FAILED: {cause}")
                } else {
                    let recommendation = state
                        .agents
                        .get(agent)
                        .and_then(|a| a.errors.iter().rev().find_map(|e| e.recommendation.clone()))
                        .unwrap_or_else(|| {
                            format!(
                                "Fix {agent} and run `llm-orchestrate resume {}`",
                                state.run_id
                            )
                        });
                    format!(
                        "[ERROR: Agent {agent} failed]\nCause: {cause}\nImpact: {}\nRecommendation: {recommendation}",
                        crate::report::summary::impact_of(plan, agent)
                    )
                }
            }
        },
        Event::AgentRetrying {
            agent,
            next_attempt,
            delay_ms,
            ..
        } => format!(
            "{agent} will retry (attempt {next_attempt}) in {:.1}s",
            *delay_ms as f64 / 1000.0
        ),
        Event::AgentBlocked { agent, reason, .. } => format!("{agent} BLOCKED: {reason}"),
        Event::RunInterrupted { reason } => format!(
            "run interrupted: {reason}; resume with `llm-orchestrate resume {}`",
            state.run_id
        ),
        Event::RunFinished { outcome } => format!("run finished: {outcome:?}"),
        Event::WorkspaceOpened { info } => format!(
            "workspace: branch {} from {} ({}), integration worktree {}",
            info.integration_branch,
            info.base_branch,
            short(&info.base_commit),
            info.integration_path.display()
        ),
        Event::WorktreeReady {
            agent,
            path,
            branch,
            start_commit,
            ..
        } => format!(
            "{agent} works in {} on {branch} (from {})",
            path.display(),
            short(start_commit)
        ),
        Event::WorktreeCommitted {
            agent,
            commit,
            changed_files,
            ..
        } => format!(
            "{agent} changed {} file(s), branch at {}",
            changed_files.len(),
            short(commit)
        ),
        Event::AgentMerged { agent, commit } => match commit {
            Some(c) => format!("{agent} merged into the integration branch ({})", short(c)),
            None => format!("{agent} is already part of the integration branch"),
        },
        Event::ConflictFound {
            agent,
            kind,
            files,
            action,
        } => {
            let integration = state.workspace.as_ref().map_or_else(
                || "the integration worktree".to_string(),
                |w| w.integration_path.display().to_string(),
            );
            let what = match (action, kind) {
                (crate::journal::ConflictAction::Fail, _) => "the agent fails".to_string(),
                (crate::journal::ConflictAction::Resolve, _) => {
                    "a resolver agent takes it".to_string()
                }
                (crate::journal::ConflictAction::Pause, crate::journal::ConflictKind::Merge) => {
                    format!(
                        "paused: fix the files in {integration}, `git add` them, then run `llm-orchestrate resume {}`",
                        state.run_id
                    )
                }
                (crate::journal::ConflictAction::Pause, _) => {
                    let branch = state
                        .agents
                        .get(agent)
                        .and_then(|a| a.git.as_ref())
                        .map_or("its branch", |g| g.branch.as_str());
                    format!(
                        "paused: revert those files on {branch} (or merge {branch} into the integration branch yourself to accept them), then run `llm-orchestrate resume {}`",
                        state.run_id
                    )
                }
            };
            format!(
                "CONFLICT {agent}: {} ({}); {what}",
                kind.describe(),
                files.join(", ")
            )
        }
        Event::ConflictResolved { agent, by } => format!("{agent}: conflict resolved by {by}"),
        Event::BaseLanded {
            base_branch,
            commit,
            fast_forward,
        } => format!(
            "merged all work into {base_branch} ({}{})",
            short(commit),
            if *fast_forward { ", fast-forward" } else { "" }
        ),
        Event::WorktreeRemoved { .. } => return None,
        Event::GateFinished {
            service, result, ..
        } => {
            let mut text = crate::gates::gate_line(result, service);
            for failure in result.failures.iter().take(10) {
                text.push_str(&format!(
                    "\n  - {}: {}",
                    failure.name,
                    first_line(&failure.message)
                ));
            }
            if result.failures.len() > 10 {
                text.push_str(&format!("\n  … and {} more", result.failures.len() - 10));
            }
            if let Some(suggestion) = &result.suggestion {
                text.push_str("\n  Suggested fixes:");
                for line in suggestion.lines() {
                    text.push_str(&format!("\n    {line}"));
                }
            }
            text
        }
        Event::GateStagePassed { stage } => format!("GATES {stage} passed"),
        Event::GateStageFailed {
            stage,
            action,
            agents,
        } => {
            let on = if agents.is_empty() {
                String::new()
            } else {
                format!(" ({})", agents.join(", "))
            };
            let next = match action {
                crate::plan::FailureAction::PauseWave => format!(
                    "paused: fix the work, then `llm-orchestrate resume {}` runs the gates again",
                    state.run_id
                ),
                crate::plan::FailureAction::RollbackAndRetry => {
                    "the failing agents run again from a clean worktree".to_string()
                }
                crate::plan::FailureAction::ManualReview => format!(
                    "paused for a manual review: read review.md, then `llm-orchestrate resume {} --approve` or `--reject`",
                    state.run_id
                ),
                crate::plan::FailureAction::Continue => "recorded; the run goes on".to_string(),
            };
            format!("GATES {stage} FAILED{on}: {next}")
        }
        Event::AgentRolledBack { agent, stage, .. } => {
            format!(
                "{agent} rolled back by gate stage {stage}; it runs again with the gate failure as context"
            )
        }
        Event::AgentReset { agent } => format!("{agent} will run again"),
        Event::PlanAnalyzed {
            trigger,
            source,
            recommendations,
            ..
        } => {
            let mut text = format!("ANALYSIS ({source}) after {trigger}");
            if recommendations.is_empty() {
                text.push_str(": nothing to change");
            }
            for r in recommendations {
                text.push_str(&format!("\n  - {r}"));
            }
            text
        }
        Event::AdaptationProposed {
            id, source, diff, ..
        } => format!(
            "ADAPTATION {id} proposed by {source}, waiting for approval: `llm-orchestrate resume {} --approve` or `--reject`\n{}",
            state.run_id,
            indent(diff)
        ),
        Event::PlanAdapted {
            id,
            source,
            diff,
            patch,
            ..
        } => format!(
            "PLAN ADAPTED ({id}, by {source}): {}\n{}",
            first_line(&patch.reason),
            indent(diff)
        ),
        Event::AdaptationRejected {
            id,
            source,
            reason,
            declined,
            ..
        } => {
            let which = id.map_or_else(String::new, |id| format!(" {id}"));
            if *declined {
                format!("ADAPTATION{which} rejected by a person; the plan stays as it was")
            } else {
                format!(
                    "WARNING: adaptation{which} by {source} refused: {reason}; the run goes on with the plan as it was"
                )
            }
        }
        Event::Anomaly {
            kind,
            agent,
            detail,
            recommendation,
        } => {
            let on = agent
                .as_deref()
                .map_or_else(String::new, |a| format!(" {a}"));
            format!("ANOMALY {}{on}: {detail}; {recommendation}", kind.as_str())
        }
        Event::ReviewDecided {
            stage, approved, ..
        } => format!(
            "manual review of {stage}: {}",
            if *approved { "approved" } else { "rejected" }
        ),
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Timestamped readable lines on stdout.
#[derive(Debug, Default)]
pub struct PlainLines;

impl Reporter for PlainLines {
    fn event(&mut self, record: &EventRecord, state: &RunState, plan: &Plan) {
        if let Some(text) = describe(record, state, plan) {
            let mut out = std::io::stdout().lock();
            let stamp = clock(record.at_ms);
            for (i, line) in text.lines().enumerate() {
                if i == 0 {
                    let _ = writeln!(out, "[{stamp}] {line}");
                } else {
                    let _ = writeln!(out, "           {line}");
                }
            }
        }
    }

    fn finish(&mut self, state: &RunState, _plan: &Plan) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", summary_line(state));
    }
}

/// "3 agents: 2 complete, 1 failed, 0 blocked".
pub fn summary_line(state: &RunState) -> String {
    use crate::journal::AgentPhase::*;
    let count = |p| state.agents.values().filter(|a| a.phase == p).count();
    format!(
        "{} agents: {} complete, {} failed, {} blocked, {} not finished",
        state.agents.len(),
        count(Completed),
        count(Failed),
        count(Blocked),
        state.agents.len() - count(Completed) - count(Failed) - count(Blocked)
    )
}

/// Progress bars on a terminal (indicatif).
pub struct TerminalBars {
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    bars: HashMap<String, indicatif::ProgressBar>,
    /// Each agent's estimate, formatted (filled on first use).
    estimates: HashMap<String, String>,
    /// When the overall bar was last recomputed (it costs a pass over all agents).
    overall_at: Option<std::time::Instant>,
    /// ETAs from the run history (see [`Self::with_eta`]).
    eta: Option<crate::predict::eta::LiveEta>,
}

/// How often the overall bar is recomputed at most.
const OVERALL_REFRESH: Duration = Duration::from_millis(100);

impl Default for TerminalBars {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalBars {
    /// Bars drawn on stderr.
    pub fn new() -> Self {
        Self::drawn_to(indicatif::ProgressDrawTarget::stderr())
    }

    /// Bars drawn to `target` (tests draw to a hidden target).
    pub fn drawn_to(target: indicatif::ProgressDrawTarget) -> Self {
        let multi = indicatif::MultiProgress::with_draw_target(target);
        let overall = multi.add(indicatif::ProgressBar::new(100));
        overall.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos:>3}% {msg} (ETA {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("overall");
        Self {
            multi,
            overall,
            bars: HashMap::new(),
            estimates: HashMap::new(),
            overall_at: None,
            eta: None,
        }
    }

    /// Shows each agent's duration predicted from history (`~12m (history)`)
    /// instead of its estimate, and the run's ETA from a simulation of the
    /// rest of the run in the overall bar.
    pub fn with_eta(mut self, eta: crate::predict::eta::LiveEta) -> Self {
        // The message carries the ETA; indicatif's rate-based one would contradict it.
        self.overall.set_style(
            indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos:>3}% {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.eta = Some(eta);
        self
    }

    fn bar(&mut self, agent: &str, plan: &Plan) -> &indicatif::ProgressBar {
        if self.estimates.is_empty() {
            self.estimates = plan
                .agents()
                .map(|(_, _, a)| {
                    let predicted =
                        self.eta
                            .as_ref()
                            .and_then(|eta| match eta.agent(&a.agent_id) {
                                Some((d, Some(_))) => Some(format!(
                                    "~{} (history)",
                                    crate::plan::duration::format_duration(d)
                                )),
                                _ => None,
                            });
                    let estimate = predicted.unwrap_or_else(|| {
                        a.estimated_duration
                            .map(|d| crate::plan::duration::format_duration(d.get()))
                            .unwrap_or_else(|| "?".into())
                    });
                    (a.agent_id.clone(), estimate)
                })
                .collect();
        }
        let estimate = self
            .estimates
            .get(agent)
            .cloned()
            .unwrap_or_else(|| "?".into());
        let multi = &self.multi;
        self.bars.entry(agent.to_string()).or_insert_with(|| {
            let bar = multi.insert_from_back(1, indicatif::ProgressBar::new(100));
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{prefix:>14}} [{{bar:30}}] {{pos:>3}}% {{elapsed}}/{estimate} {{wide_msg}}"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(agent.chars().take(14).collect::<String>());
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        })
    }
}

impl Reporter for TerminalBars {
    fn event(&mut self, record: &EventRecord, state: &RunState, plan: &Plan) {
        if let Some(eta) = &mut self.eta {
            eta.observe(record);
        }
        if let Some(agent) = record.event.agent().map(str::to_string) {
            let progress = state.agents.get(&agent).map_or(0, |a| a.progress);
            let text = state
                .agents
                .get(&agent)
                .map(|a| a.last_status_text.clone())
                .unwrap_or_default();
            let finished = matches!(
                record.event,
                Event::AgentFinished { .. } | Event::AgentBlocked { .. }
            );
            let bar = self.bar(&agent, plan).clone();
            bar.set_position(u64::from(progress));
            bar.set_message(text);
            if finished {
                bar.finish_and_clear();
                self.bars.remove(&agent);
            }
        }
        if let Some(text) = describe(record, state, plan)
            && !matches!(
                record.event,
                Event::AgentStatus { .. } | Event::AgentReport { .. }
            )
        {
            let _ = self.multi.println(text);
        }
        let due = self
            .overall_at
            .is_none_or(|at| at.elapsed() >= OVERALL_REFRESH);
        if due || matches!(record.event, Event::RunFinished { .. }) {
            self.overall_at = Some(std::time::Instant::now());
            self.overall
                .set_position(u64::from(state.overall_progress()));
            let mut message = summary_line(state);
            if let Some(eta) = &self.eta {
                message.push_str(" · ");
                message.push_str(&eta.describe(state, record.at_ms));
            }
            self.overall.set_message(message);
        }
    }

    fn finish(&mut self, state: &RunState, _plan: &Plan) {
        self.overall.finish_and_clear();
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        eprintln!("{}", summary_line(state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{AgentOutcome, EventRecord};
    use crate::protocol::ReportedStatus;

    fn plan() -> Plan {
        let json = r#"{"orchestrationId":"t","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"90s"},
            {"agentId":"B","workDescription":"b"}]}]}"#;
        crate::plan::load_str("p.json", json, Default::default())
            .plan
            .unwrap()
    }

    fn feed(bars: &mut TerminalBars, state: &mut RunState, plan: &Plan, seq: i64, event: Event) {
        let record = EventRecord {
            seq,
            at_ms: seq,
            event,
        };
        state.apply(&record);
        bars.event(&record, state, plan);
    }

    #[test]
    fn terminal_bars_follow_each_running_agent_and_the_whole_run() {
        let plan = plan();
        let mut state = RunState::default();
        let mut bars = TerminalBars::drawn_to(indicatif::ProgressDrawTarget::hidden());
        let plan_json = serde_json::to_value(&plan).unwrap();
        feed(
            &mut bars,
            &mut state,
            &plan,
            1,
            Event::RunStarted {
                run_id: "r".into(),
                plan: plan_json,
            },
        );
        feed(
            &mut bars,
            &mut state,
            &plan,
            2,
            Event::AgentStarted {
                agent: "A".into(),
                attempt: 1,
            },
        );
        feed(
            &mut bars,
            &mut state,
            &plan,
            3,
            Event::AgentStatus {
                agent: "A".into(),
                status: ReportedStatus::Progress(40),
                text: "halfway-ish".into(),
            },
        );
        let bar = bars.bars.get("A").expect("a bar for the running agent");
        assert_eq!(bar.position(), 40);
        assert_eq!(bar.message(), "halfway-ish");
        assert_eq!(bars.estimates["A"], "1m30s");
        feed(
            &mut bars,
            &mut state,
            &plan,
            4,
            Event::AgentFinished {
                agent: "A".into(),
                attempt: 1,
                outcome: AgentOutcome::Completed {
                    without_marker: false,
                },
                exit_code: Some(0),
            },
        );
        assert!(
            !bars.bars.contains_key("A"),
            "a finished agent's bar is removed"
        );
        feed(
            &mut bars,
            &mut state,
            &plan,
            5,
            Event::RunFinished {
                outcome: crate::journal::RunOutcome::Failed,
            },
        );
        assert_eq!(bars.overall.position(), 50, "A done, B not started");
        assert!(
            bars.overall.message().contains("1 complete"),
            "{}",
            bars.overall.message()
        );
    }
}
