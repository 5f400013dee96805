//! `--mode adaptive` in a run: when analyses run, how their patches are
//! journaled and applied, and the pause for approval (see [`crate::adapt`]).
//!
//! - **When.** After each wave (once its gate stage, if any, is done) and
//!   whenever an agent fails for good. A wave whose agents all completed
//!   within 1.5× their estimates is analysed by the built-in rules only; the
//!   analyzer LLM is asked only when something went wrong (a failure, a
//!   block, an overrun). The engine waits for the analyzer (at most
//!   [`crate::adapt::analyzer::ANALYZER_TIMEOUT`]); running agents go on.
//!   An interrupt (Ctrl-C, SIGTERM) ends the wait at once: the run stops as
//!   interrupted without starting anything more, and the analysis leaves no
//!   record, so `resume` asks again.
//! - **Applying.** A patch is applied only if it passes
//!   [`crate::adapt::apply_patch`]; then `PlanAdapted` (with the whole
//!   adapted plan, so `resume` follows it) and an `AgentReset` per agent that
//!   runs again are journaled before anything acts on them. Gate stages of
//!   changed waves run again.
//! - **Approval.** Under `--risk-tolerance` (see
//!   [`crate::adapt::PlanPatch::needs_approval`]) a patch may wait for a
//!   person: `AdaptationProposed`, the run pauses (exit 3), and `resume
//!   --approve` applies it (checked again against the run as it is then) or
//!   `--reject` drops it.
//! - **Limits.** At most `--max-adaptations` patches per run (default 5);
//!   the built-in rules retry one agent at most twice. A refused patch is a
//!   warning (`AdaptationRejected`); the run goes on with the plan as it was.

use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, Stop};
use crate::adapt::{Analysis, PlanPatch, Trigger, apply_patch};
use crate::journal::{AdaptationStatus, Event};
use crate::plan::Plan;

/// Default `--max-adaptations`.
pub const DEFAULT_MAX_ADAPTATIONS: u32 = 5;

impl Engine {
    /// At the top of the run loop: decides an adaptation waiting for
    /// approval, then analyses every wave that finished since.
    pub(super) async fn adapt_between_waves(
        &mut self,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        if let Some(stop) = self.decide_pending_adaptation().await? {
            return Ok(Some(stop));
        }
        while self.next_analysis < self.plan.waves.len() && !interrupt.is_cancelled() {
            let w = self.next_analysis;
            let gates_done = self.gate_ctx.is_none() || self.next_checkpoint > w;
            if !self.scheduler.wave_done(w) || !gates_done {
                break;
            }
            self.next_analysis += 1;
            let wave = self.plan.waves[w].wave_id.clone();
            let analysed = self
                .state
                .analyses
                .iter()
                .any(|a| a.wave.as_deref() == Some(wave.as_str()));
            if analysed {
                continue;
            }
            if let Some(stop) = self
                .adapt(Trigger::WaveFinished { wave }, interrupt)
                .await?
            {
                return Ok(Some(stop));
            }
        }
        Ok(None)
    }

    /// An agent failed for good: analyse it (and what it blocks).
    pub(super) async fn adapt_after_failure(
        &mut self,
        agent: &str,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        self.adapt(
            Trigger::AgentFailed {
                agent: agent.to_string(),
            },
            interrupt,
        )
        .await
    }

    async fn adapt(
        &mut self,
        trigger: Trigger,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        let analysis = Analysis::of(&self.plan, &self.state, trigger.clone());
        let wave = match &trigger {
            Trigger::WaveFinished { wave } => Some(wave.clone()),
            Trigger::AgentFailed { .. } => None,
        };
        let mut recommendations = analysis.recommendations.clone();
        let analyzer = self
            .options
            .analyzer
            .clone()
            .filter(|_| analysis.needs_attention());
        let (source, patch, cost_usd, refused) = match analyzer {
            Some(analyzer) => {
                let source = format!("analyzer {}", analyzer.model());
                let proposed = tokio::select! {
                    proposed = analyzer.propose(&analysis, &self.plan, &self.state) => proposed,
                    // Nothing is journaled: the run loop stops the run, and
                    // `resume` analyses again.
                    () = interrupt.cancelled() => return Ok(None),
                };
                match proposed {
                    Ok(proposal) => {
                        recommendations.extend(proposal.recommendations);
                        (source, proposal.patch, proposal.cost_usd, None)
                    }
                    Err(e) => (source, None, 0.0, Some(e.to_string())),
                }
            }
            None => {
                let retries = |agent: &str| self.adaptive_retries_of(agent);
                let patch = analysis.rule_patch(&self.plan, self.options.concurrency, &retries);
                ("rules".to_string(), patch, 0.0, None)
            }
        };
        let trigger_text = trigger.to_string();
        let mut events = vec![Event::PlanAnalyzed {
            trigger: trigger_text.clone(),
            wave,
            source: source.clone(),
            recommendations,
            cost_usd,
        }];
        let reject = |reason: String| Event::AdaptationRejected {
            id: None,
            trigger: trigger_text.clone(),
            source: source.clone(),
            reason,
            declined: false,
        };
        if let Some(reason) = refused {
            events.push(reject(reason));
            self.record(events).await?;
            return Ok(None);
        }
        let Some(patch) = patch else {
            self.record(events).await?;
            return Ok(None);
        };
        let used = self
            .state
            .adaptations
            .iter()
            .filter(|a| a.id.is_some() && a.status != AdaptationStatus::Declined)
            .count() as u32;
        if used >= self.options.max_adaptations {
            events.push(reject(format!(
                "the run's limit of {} adaptations is reached (--max-adaptations)",
                self.options.max_adaptations
            )));
            self.record(events).await?;
            return Ok(None);
        }
        let id = self.next_adaptation_id();
        if patch.needs_approval(self.options.risk) {
            match self.check_patch(&patch) {
                Ok(applied) => {
                    events.push(Event::AdaptationProposed {
                        id,
                        trigger: trigger_text,
                        source,
                        patch,
                        diff: applied.diff,
                    });
                    self.record(events).await?;
                    eprintln!(
                        "plan adaptation {id} waits for approval: `llm-orchestrate resume {} --approve` or `--reject`",
                        self.options.run_id
                    );
                    return Ok(Some(Stop::Pause));
                }
                Err(e) => {
                    events.push(reject(e.to_string()));
                    self.record(events).await?;
                    return Ok(None);
                }
            }
        }
        self.stage(events);
        self.apply_adaptation(id, &trigger_text, &source, patch)
            .await?;
        Ok(None)
    }

    /// `resume --approve` / `--reject` on a waiting adaptation; without
    /// either, the run stays paused.
    async fn decide_pending_adaptation(&mut self) -> Result<Option<Stop>, EngineError> {
        let Some(pending) = self.state.pending_adaptation().cloned() else {
            return Ok(None);
        };
        let (Some(id), Some(patch)) = (pending.id, pending.patch) else {
            return Ok(None);
        };
        match self.options.review.take() {
            None => {
                eprintln!(
                    "plan adaptation {id} waits for approval: `llm-orchestrate resume {} --approve` or `--reject`",
                    self.options.run_id
                );
                Ok(Some(Stop::Pause))
            }
            Some(false) => {
                self.record(vec![Event::AdaptationRejected {
                    id: Some(id),
                    trigger: pending.trigger,
                    source: pending.source,
                    reason: "rejected by a person (resume --reject)".into(),
                    declined: true,
                }])
                .await?;
                Ok(None)
            }
            Some(true) => {
                self.apply_adaptation(id, &pending.trigger, &pending.source, patch)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Checks `patch` against the plan and the run as they are now.
    fn check_patch(
        &self,
        patch: &PlanPatch,
    ) -> Result<crate::adapt::Applied, crate::adapt::PatchError> {
        let phase = |id: &str| self.state.agents.get(id).map(|a| a.phase);
        apply_patch(&self.plan, &phase, self.options.concurrency, patch)
    }

    /// Applies a patch (refusing it, with the reason, when it does not fit
    /// the run any more) and journals the result.
    async fn apply_adaptation(
        &mut self,
        id: u32,
        trigger: &str,
        source: &str,
        patch: PlanPatch,
    ) -> Result<(), EngineError> {
        let applied = match self.check_patch(&patch) {
            Ok(applied) => applied,
            Err(e) => {
                return self
                    .record(vec![Event::AdaptationRejected {
                        id: Some(id),
                        trigger: trigger.to_string(),
                        source: source.to_string(),
                        reason: e.to_string(),
                        declined: false,
                    }])
                    .await;
            }
        };
        let stages: Vec<String> = applied
            .touched_waves
            .iter()
            .filter_map(|&w| {
                applied
                    .plan
                    .gate_stage_for_wave(w)
                    .map(|(k, _)| k.to_string())
            })
            .collect();
        let mut events = vec![Event::PlanAdapted {
            id,
            trigger: trigger.to_string(),
            source: source.to_string(),
            patch,
            diff: applied.diff.clone(),
            plan: serde_json::to_value(&applied.plan).unwrap_or_default(),
            removed: applied.removed.clone(),
            stages,
        }];
        events.extend(applied.reset.iter().map(|agent| Event::AgentReset {
            agent: agent.clone(),
        }));
        let first_touched = applied.touched_waves.first().copied();
        self.replan(applied.plan, applied.concurrency.map(|c| c as usize));
        if let Some(w) = first_touched {
            self.next_checkpoint = self.next_checkpoint.min(w);
            self.next_analysis = self.next_analysis.min(w);
            self.gated_waves.retain(|&g| g < w);
        }
        for agent in &applied.removed {
            self.retry_at.remove(agent);
        }
        self.stage(events);
        self.flush().await
    }

    /// Follows an adapted plan from now on.
    fn replan(&mut self, plan: Plan, concurrency: Option<usize>) {
        self.scheduler = super::ready::Scheduler::new(&plan, self.options.mode);
        self.plan = plan;
        self.anomalies.replan(&self.plan);
        if let Some(c) = concurrency {
            self.options.concurrency = c;
        }
        self.reindex();
    }

    /// How many times applied adaptations retried `agent` so far.
    fn adaptive_retries_of(&self, agent: &str) -> usize {
        self.state
            .adaptations
            .iter()
            .filter(|a| a.status == AdaptationStatus::Applied)
            .flat_map(|a| a.patch.iter().flat_map(|p| &p.operations))
            .filter(|op| matches!(op, crate::adapt::PatchOp::Retry { agent: a, .. } if a == agent))
            .count()
    }

    fn next_adaptation_id(&self) -> u32 {
        self.state
            .adaptations
            .iter()
            .filter_map(|a| a.id)
            .max()
            .unwrap_or(0)
            + 1
    }
}
