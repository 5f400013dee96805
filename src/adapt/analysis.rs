//! What an adaptation looks at: the results of a wave (or of one failed
//! agent) — failures with their gate results, blockers, durations against
//! estimates, changed files — the recommendations that follow from them, and
//! the built-in rules' own patch when no analyzer LLM is configured.

use serde::Serialize;

use super::patch::{PatchOp, PlanPatch};
use crate::journal::{AgentOutcome, AgentPhase, RunState};
use crate::plan::Plan;

/// An agent's duration over this multiple of its estimate is an overrun.
pub const OVERRUN_RATIO: f64 = 1.5;

/// How many times the built-in rules retry one agent with a revised description.
pub const RULE_RETRIES_PER_AGENT: usize = 2;

/// What set an analysis off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// An agent failed for good (its retries used up).
    AgentFailed {
        /// The agent.
        agent: String,
    },
    /// Every agent of a wave is done (completed, failed or blocked).
    WaveFinished {
        /// The wave id.
        wave: String,
    },
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::AgentFailed { agent } => write!(f, "agent {agent} failed"),
            Trigger::WaveFinished { wave } => write!(f, "wave {wave} finished"),
        }
    }
}

/// One agent's results, as the analysis sees them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Agent id.
    pub agent: String,
    /// Its wave.
    pub wave: String,
    /// Its phase (`completed`, `failed`, `blocked`, ...).
    pub phase: AgentPhase,
    /// Attempts made.
    pub attempts: u32,
    /// Seconds from first start to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// Its estimate in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate_secs: Option<f64>,
    /// Why it failed (the last failure, gate failures included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Its gates that failed on its latest work, with suggested fixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_gates: Vec<String>,
    /// What blocks it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
    /// Files its latest attempt changed (runs with workspaces).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_files: Vec<String>,
}

impl Finding {
    /// Actual duration over estimate, when both are known.
    pub fn ratio(&self) -> Option<f64> {
        match (self.duration_secs, self.estimate_secs) {
            (Some(d), Some(e)) if e > 0.0 => Some(d / e),
            _ => None,
        }
    }
}

/// An analysis of a run at one trigger.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// What set it off.
    pub trigger: Trigger,
    /// The agents looked at (the wave's, or the failed agent with its dependants).
    pub findings: Vec<Finding>,
    /// What should be done, in words.
    pub recommendations: Vec<String>,
}

impl Analysis {
    /// Looks at the run's state at `trigger`.
    pub fn of(plan: &Plan, state: &RunState, trigger: Trigger) -> Self {
        let members: Vec<(usize, &crate::plan::Agent)> = match &trigger {
            Trigger::WaveFinished { wave } => plan
                .agents()
                .filter(|(w, _, _)| plan.waves[*w].wave_id == *wave)
                .map(|(w, _, a)| (w, a))
                .collect(),
            Trigger::AgentFailed { agent } => plan
                .agents()
                .filter(|(_, _, a)| a.agent_id == *agent || a.dependencies.contains(agent))
                .map(|(w, _, a)| (w, a))
                .collect(),
        };
        let findings: Vec<Finding> = members
            .into_iter()
            .map(|(w, def)| finding(plan, state, w, def))
            .collect();
        let recommendations = recommend(&findings);
        Self {
            trigger,
            findings,
            recommendations,
        }
    }

    /// Whether anything went wrong (a failure, a block, an overrun): only
    /// then is an analyzer LLM asked for a patch.
    pub fn needs_attention(&self) -> bool {
        self.findings.iter().any(|f| {
            f.phase == AgentPhase::Failed
                || f.phase == AgentPhase::Blocked
                || f.ratio().is_some_and(|r| r > OVERRUN_RATIO)
        })
    }

    /// The built-in rules' patch: a failed agent (not retried this way
    /// [`RULE_RETRIES_PER_AGENT`] times yet) is retried with its work
    /// description revised to say what failed and what the gates suggest;
    /// when two or more agents of the analysis timed out or stalled, the
    /// concurrency is halved (they were likely starved of the machine).
    /// `retries_so_far(agent)` counts earlier adaptive retries.
    pub fn rule_patch(
        &self,
        plan: &Plan,
        concurrency: usize,
        retries_so_far: &dyn Fn(&str) -> usize,
    ) -> Option<PlanPatch> {
        let mut operations = Vec::new();
        let mut reasons = Vec::new();
        for f in self
            .findings
            .iter()
            .filter(|f| f.phase == AgentPhase::Failed)
        {
            if retries_so_far(&f.agent) >= RULE_RETRIES_PER_AGENT {
                continue;
            }
            let Some(def) = plan.agents().find(|(_, _, a)| a.agent_id == f.agent) else {
                continue;
            };
            let base = def
                .2
                .work_description
                .split("\n\nA previous attempt failed")
                .next()
                .unwrap_or_default();
            let mut revised = format!(
                "{base}\n\nA previous attempt failed: {}",
                clip(f.failure.as_deref().unwrap_or("no reason given"), 1500)
            );
            for gate in &f.failed_gates {
                revised.push_str("\n- ");
                revised.push_str(&clip(gate, 600));
            }
            revised.push_str("\nFix that first, then finish the work.");
            operations.push(PatchOp::Retry {
                agent: f.agent.clone(),
                work_description: Some(revised),
                add_dependencies: Vec::new(),
                rerun_completed: false,
            });
            reasons.push(format!("retry {} with what failed", f.agent));
        }
        let starved = self
            .findings
            .iter()
            .filter(|f| {
                f.failure
                    .as_deref()
                    .is_some_and(|r| r.starts_with("timed out") || r.starts_with("stalled"))
            })
            .count();
        if starved >= 2 && concurrency > 1 {
            let value = (concurrency / 2).max(1) as u32;
            operations.push(PatchOp::Concurrency { value });
            reasons.push(format!(
                "{starved} agents timed out or stalled: halve the concurrency"
            ));
        }
        (!operations.is_empty()).then(|| PlanPatch {
            reason: format!("built-in rules: {}", reasons.join("; ")),
            operations,
        })
    }
}

fn finding(plan: &Plan, state: &RunState, w: usize, def: &crate::plan::Agent) -> Finding {
    let agent = state.agents.get(&def.agent_id);
    let phase = agent.map_or(AgentPhase::Pending, |a| a.phase);
    let duration_secs = agent.and_then(|a| match (a.started_at_ms, a.finished_at_ms) {
        (Some(s), Some(e)) if e >= s => Some((e - s) as f64 / 1000.0),
        _ => None,
    });
    let failure = agent.and_then(|a| match &a.outcome {
        Some(AgentOutcome::TimedOut) => Some("timed out".to_string()),
        Some(AgentOutcome::Stalled) => Some("stalled: no output for too long".to_string()),
        _ if a.phase == AgentPhase::Failed => a.last_failure.clone(),
        _ => None,
    });
    // The gates of its latest work: runs after the last start.
    let failed_gates = state
        .gate_runs
        .iter()
        .filter(|g| g.service == def.agent_id && !g.result.ok())
        .map(|g| match &g.result.suggestion {
            Some(s) => format!("gate {} failed; suggested fix: {s}", g.result.gate),
            None => format!("gate {} failed", g.result.gate),
        })
        .collect::<Vec<_>>();
    Finding {
        agent: def.agent_id.clone(),
        wave: plan.waves[w].wave_id.clone(),
        phase,
        attempts: agent.map_or(0, |a| a.attempt),
        duration_secs,
        estimate_secs: def.estimated_duration.map(|d| d.get().as_secs_f64()),
        failure,
        failed_gates: failed_gates.into_iter().rev().take(3).collect(),
        blockers: agent.map(|a| a.blockers.clone()).unwrap_or_default(),
        changed_files: agent
            .and_then(|a| a.git.as_ref())
            .map(|g| g.changed_files.iter().take(50).cloned().collect())
            .unwrap_or_default(),
    }
}

fn recommend(findings: &[Finding]) -> Vec<String> {
    let mut out = Vec::new();
    for f in findings {
        match f.phase {
            AgentPhase::Failed => out.push(format!(
                "{} failed after {} attempt(s): {}; retry it with a revised description, split it, or add a fix-up agent",
                f.agent,
                f.attempts,
                clip(f.failure.as_deref().unwrap_or("no reason given"), 200)
            )),
            AgentPhase::Blocked => out.push(format!(
                "{} is blocked ({}); it runs once what blocks it is fixed",
                f.agent,
                f.blockers.join("; ")
            )),
            _ => {}
        }
        if let Some(r) = f.ratio() {
            if r > OVERRUN_RATIO {
                out.push(format!(
                    "{} took {r:.1}× its estimate; raise its estimatedDuration or split it",
                    f.agent
                ));
            } else if r < 0.5 && f.phase == AgentPhase::Completed {
                out.push(format!(
                    "{} took {r:.1}× its estimate; its estimate could be lower",
                    f.agent
                ));
            }
        }
    }
    out
}

/// At most `max` characters of `text`, marked when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Event, EventRecord};

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "orchestrationId": "p",
            "waves": [
                {"waveId": "w1", "agents": [
                    {"agentId": "A", "workDescription": "build a", "estimatedDuration": "10s"},
                    {"agentId": "S", "workDescription": "side", "estimatedDuration": "10s"}]},
                {"waveId": "w2", "agents": [
                    {"agentId": "B", "workDescription": "build b", "dependencies": ["A"]}]}
            ]
        }))
        .unwrap()
    }

    fn state() -> RunState {
        let events = [
            (
                0,
                Event::AgentStarted {
                    agent: "A".into(),
                    attempt: 1,
                },
            ),
            (
                0,
                Event::AgentStarted {
                    agent: "S".into(),
                    attempt: 1,
                },
            ),
            (
                5_000,
                Event::AgentFinished {
                    agent: "A".into(),
                    attempt: 1,
                    outcome: AgentOutcome::Failed {
                        reason: "test auth::login ... FAILED".into(),
                    },
                    exit_code: Some(1),
                },
            ),
            (
                30_000,
                Event::AgentFinished {
                    agent: "S".into(),
                    attempt: 1,
                    outcome: AgentOutcome::Completed {
                        without_marker: false,
                    },
                    exit_code: Some(0),
                },
            ),
        ];
        let records: Vec<EventRecord> = events
            .into_iter()
            .enumerate()
            .map(|(i, (at_ms, event))| EventRecord {
                seq: i as i64 + 1,
                at_ms,
                event,
            })
            .collect();
        RunState::replay(&records)
    }

    #[test]
    fn a_wave_analysis_finds_failures_and_overruns() {
        let analysis = Analysis::of(
            &plan(),
            &state(),
            Trigger::WaveFinished { wave: "w1".into() },
        );
        assert_eq!(analysis.findings.len(), 2);
        assert!(analysis.needs_attention());
        let text = analysis.recommendations.join("\n");
        assert!(
            text.contains("A failed after 1 attempt(s): test auth::login ... FAILED"),
            "{text}"
        );
        assert!(text.contains("S took 3.0× its estimate"), "{text}");
    }

    #[test]
    fn the_rules_retry_a_failed_agent_with_what_failed_until_their_limit() {
        let analysis = Analysis::of(
            &plan(),
            &state(),
            Trigger::AgentFailed { agent: "A".into() },
        );
        let patch = analysis.rule_patch(&plan(), 4, &|_| 0).unwrap();
        let PatchOp::Retry {
            agent,
            work_description: Some(text),
            ..
        } = &patch.operations[0]
        else {
            panic!("{patch:?}");
        };
        assert_eq!(agent, "A");
        assert!(
            text.starts_with("build a\n\nA previous attempt failed: test auth::login ... FAILED"),
            "{text}"
        );
        assert!(
            analysis
                .rule_patch(&plan(), 4, &|_| RULE_RETRIES_PER_AGENT)
                .is_none()
        );
    }
}
