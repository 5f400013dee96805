//! Quality gates in a run: when and where they run, and what their results do.
//!
//! - **Agent gates** (an agent's `qualityGates`) run in the agent's working
//!   folder (its scope inside its worktree, or in place) right after the
//!   agent finished successfully. A failing gate fails the attempt with the
//!   gate's failure (failing tests, messages, output end) as its reason, so
//!   the agent's `maxRetries` apply and the next attempt, in a fresh
//!   worktree, gets the failure as `LLMO_RETRY_CONTEXT` / in its prompt.
//! - **Wave gates** (`qualityGates.<waveId>` or `wave<N>`) run once every agent
//!   of the wave finished: first on each completed agent's work that is not
//!   merged yet (its scope in its worktree, before merging; `Service:
//!   <agent>`), then, after the wave's branches merged, on the integration
//!   worktree (`Service: integration`). In `continuous` mode and sequential
//!   waves agents merge as they complete, so only the integration check runs.
//!   Without worktrees they run on each agent's scope in place.
//! - **Final gates** (`qualityGates.final`) run after the last wave, on the
//!   integration worktree (or the workspace folder), when every agent completed.
//!
//! A stage's `failureAction` (after `--risk-tolerance`: `low` turns
//! `continue` into `pause-wave`, `high` turns `pause-wave` of wave stages
//! into `continue`):
//! - `pause-wave`: stop scheduling, exit 3; `resume` runs the stage's gates
//!   again first.
//! - `rollback-and-retry`: each agent whose work failed a gate goes back for
//!   another attempt (a fresh worktree from the integration branch, the gate
//!   failure as retry context), at most the stage's `maxRetries` rounds
//!   (default 1), then the stage pauses. A failure on the merged integration
//!   branch or at the final stage cannot be pinned on one agent and pauses.
//! - `manual-review`: pause and write `review.md` (what failed, where the work
//!   is); `resume --approve` counts the stage as passed, `resume --reject`
//!   fails the stage's agents (their dependants become blocked).
//! - `continue`: record the failure and go on; the run then ends as failed (exit 1).
//!
//! `successAction`: `proceed` goes on with the next wave; `proceed-to-<waveId>`
//! skips the waves before that one (their agents are blocked as skipped);
//! `merge-all` lands the integration branch on the base branch when the run
//! succeeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, Stop};
use crate::gates::{GateMode, GateResult, GateStatus};
use crate::journal::{AgentPhase, Event, GateLevel};
use crate::plan::{Agent, FailureAction, GateStage, Plan, SuccessAction};

/// How much risk a run accepts (`--risk-tolerance`): how gate failure actions
/// are applied (see the module docs).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RiskTolerance {
    /// `continue` acts as `pause-wave`; a gate whose tool is missing fails (as with `--quality-gates strict`).
    Low,
    /// Failure actions as the plan writes them.
    #[default]
    Medium,
    /// `pause-wave` of a wave stage acts as `continue` (recorded, the run goes on).
    High,
}

/// A gate without a `timeout` (presets included) is stopped after this long.
pub(crate) const DEFAULT_GATE_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(30 * 60);

/// What agent gates need inside an attempt's task.
#[derive(Debug)]
pub(super) struct GateContext {
    /// The plan (gate definitions).
    pub plan: Arc<Plan>,
    /// `--quality-gates`, after `--risk-tolerance`.
    pub mode: GateMode,
    /// Suggests fixes for failed gates, when an LLM is configured.
    pub advisor: Option<Arc<crate::gates::advisor::GateAdvisor>>,
}

/// The gate mode after the risk tolerance (`low` is strict).
pub(super) fn effective_mode(mode: GateMode, risk: RiskTolerance) -> GateMode {
    match (mode, risk) {
        (GateMode::Normal, RiskTolerance::Low) => GateMode::Strict,
        (mode, _) => mode,
    }
}

/// The failure action after the risk tolerance.
pub(super) fn effective_action(
    stage: &str,
    action: FailureAction,
    risk: RiskTolerance,
) -> FailureAction {
    match (risk, action) {
        (RiskTolerance::Low, FailureAction::Continue) => FailureAction::PauseWave,
        (RiskTolerance::High, FailureAction::PauseWave) if stage != "final" => {
            FailureAction::Continue
        }
        (_, action) => action,
    }
}

/// Runs the gates `names` in `dir` on `service`'s work; returns their
/// results in order (failures with the advisor's suggestions).
pub(super) async fn run_gates(
    ctx: &GateContext,
    service: &str,
    names: &[String],
    dir: &Path,
    cancel: &CancellationToken,
) -> Vec<GateResult> {
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let result = match crate::gates::resolve(&ctx.plan, name, dir) {
            Ok(mut spec) => {
                spec.timeout.get_or_insert(DEFAULT_GATE_TIMEOUT);
                crate::gates::run_gate(&spec, ctx.mode, cancel.clone()).await
            }
            Err(e) if ctx.mode == GateMode::Off => GateResult::skipped(name, e.to_string()),
            Err(e) => {
                let mut result = GateResult::skipped(name, e.to_string());
                if ctx.mode == GateMode::Strict {
                    result.status = GateStatus::Failed;
                }
                result
            }
        };
        let mut result = result;
        if let Some(advisor) = &ctx.advisor
            && result.status == GateStatus::Failed
        {
            advisor.advise(service, &mut result).await;
        }
        results.push(result);
    }
    results
}

/// An agent's own gates after a successful attempt: the events to journal,
/// and the failure (all failing gates' texts) when one failed.
pub(super) async fn agent_gates(
    ctx: &GateContext,
    agent: &Agent,
    dir: &Path,
    cancel: &CancellationToken,
) -> (Vec<Event>, Option<String>) {
    let results = run_gates(ctx, &agent.agent_id, &agent.quality_gates, dir, cancel).await;
    let failure = failure_of(&results);
    let events = results
        .into_iter()
        .map(|result| Event::GateFinished {
            level: GateLevel::Agent,
            stage: None,
            service: agent.agent_id.clone(),
            result,
        })
        .collect();
    (events, failure)
}

/// The failure texts of the failed results, if any failed.
fn failure_of(results: &[GateResult]) -> Option<String> {
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.ok())
        .map(GateResult::failure_text)
        .collect();
    (!failed.is_empty()).then(|| failed.join("\n\n"))
}

impl Engine {
    /// Runs the gate stages of waves that are finished, in order, before the
    /// scheduler moves on (see the module docs). Returns a stop when a stage
    /// pauses the run.
    pub(super) async fn checkpoint_waves(
        &mut self,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        while self.next_checkpoint < self.plan.waves.len()
            && self.scheduler.wave_done(self.next_checkpoint)
        {
            let w = self.next_checkpoint;
            if let Some(stop) = self.complete_wave(w, interrupt).await? {
                return Ok(Some(stop));
            }
            // A rollback sends agents back: the wave is not finished any more.
            if !self.scheduler.wave_done(w) {
                return Ok(None);
            }
            self.next_checkpoint += 1;
        }
        Ok(None)
    }

    /// Whether the agents of wave `w` may merge now (its stage's per-agent
    /// gates passed, or it has no stage).
    pub(super) fn wave_may_merge(&self, w: usize) -> bool {
        match self.plan.gate_stage_for_wave(w) {
            None => true,
            Some((key, _)) => {
                self.gated_waves.contains(&w)
                    || self.state.stages.get(key).is_some_and(|s| {
                        s.passed || s.failed_action == Some(FailureAction::Continue)
                    })
            }
        }
    }

    async fn complete_wave(
        &mut self,
        w: usize,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        let Some((key, stage)) = self
            .plan
            .gate_stage_for_wave(w)
            .map(|(k, s)| (k.to_string(), s.clone()))
        else {
            return Ok(None);
        };
        let done = self.state.stages.get(&key).cloned().unwrap_or_default();
        if done.passed || done.failed_action == Some(FailureAction::Continue) {
            return self.proceed(w, &key, &stage);
        }
        let agents: Vec<String> = self
            .wave_agents(w)
            .into_iter()
            .filter(|id| {
                self.state
                    .agents
                    .get(id)
                    .is_some_and(|a| a.phase == AgentPhase::Completed)
            })
            .collect();
        if done.failed_action == Some(FailureAction::ManualReview) {
            return self.decide_review(w, &key, &stage, agents, interrupt).await;
        }
        if agents.is_empty() {
            return Ok(None);
        }
        let Some(ctx) = self.gate_ctx.clone() else {
            return Ok(None);
        };
        // 1. Each agent's work, unless it is merged already (it passed
        // before merging, or merges came first: continuous mode, sequential waves).
        let unmerged: Vec<String> = agents
            .iter()
            .filter(|id| {
                self.options.workspaces.is_none()
                    || self
                        .state
                        .agents
                        .get(id.as_str())
                        .and_then(|a| a.git.as_ref())
                        .is_none_or(|g| g.merged.is_none())
            })
            .cloned()
            .collect();
        let mut failing: Vec<(String, String)> = Vec::new();
        for id in &unmerged {
            self.snapshot_before_gates(id).await?;
            let dir = self.work_dir_of(id);
            let results = run_gates(&ctx, id, &stage.gates, &dir, interrupt).await;
            if let Some(text) = failure_of(&results) {
                failing.push((id.clone(), text));
            }
            let events = results
                .into_iter()
                .map(|result| Event::GateFinished {
                    level: GateLevel::Wave,
                    stage: Some(key.clone()),
                    service: id.clone(),
                    result,
                })
                .collect();
            self.record(events).await?;
            if interrupt.is_cancelled() {
                return Ok(Some(Stop::Interrupted));
            }
        }
        if !failing.is_empty() {
            return self.stage_failed(w, &key, &stage, failing, true).await;
        }
        // 2. Merge the wave, 3. check the merged result.
        self.gated_waves.insert(w);
        if let Some(stop) = self.integrate(interrupt).await? {
            return Ok(Some(stop));
        }
        if let Some(ws) = self.options.workspaces.clone() {
            let dir = ws.info().integration_path.clone();
            let results = run_gates(&ctx, "integration", &stage.gates, &dir, interrupt).await;
            let failure = failure_of(&results);
            let events = results
                .into_iter()
                .map(|result| Event::GateFinished {
                    level: GateLevel::Integration,
                    stage: Some(key.clone()),
                    service: "integration".into(),
                    result,
                })
                .collect();
            self.record(events).await?;
            if let Some(text) = failure {
                return self
                    .stage_failed(w, &key, &stage, vec![("integration".into(), text)], false)
                    .await;
            }
        }
        self.record(vec![Event::GateStagePassed { stage: key.clone() }])
            .await?;
        self.proceed(w, &key, &stage)
    }

    /// Commits what a person changed in an agent's kept worktree (fixing it
    /// after a paused stage), so the gates check, and the merge takes, the
    /// same work.
    async fn snapshot_before_gates(&mut self, id: &str) -> Result<(), EngineError> {
        let (Some(ws), Some(def)) = (self.options.workspaces.clone(), self.agent_def(id).cloned())
        else {
            return Ok(());
        };
        let Some((path, start, attempt)) = self.state.agents.get(id).and_then(|a| {
            let git = a.git.as_ref()?;
            let path = git.worktree.clone().filter(|p| p.exists())?;
            (git.merged.is_none()).then(|| (path, git.start_commit.clone(), a.attempt))
        }) else {
            return Ok(());
        };
        let snapshot = ws
            .snapshot(&def, &path, &start, attempt)
            .await
            .map_err(|e| EngineError::Workspace(e.to_string()))?;
        self.record(vec![Event::WorktreeCommitted {
            agent: id.to_string(),
            attempt,
            commit: snapshot.commit,
            changed_files: snapshot.changed,
            outside_scope: snapshot.outside_scope,
        }])
        .await
    }

    /// The agents of wave `w`, in plan order.
    fn wave_agents(&self, w: usize) -> Vec<String> {
        let index = self.scheduler.index();
        index.wave_members[w]
            .clone()
            .map(|i| index.ids[i].clone())
            .collect()
    }

    /// Where an agent's work is: its scope in its worktree while that
    /// exists, else in the integration worktree, else in place.
    fn work_dir_of(&self, id: &str) -> PathBuf {
        let scope = self
            .agent_def(id)
            .map(|a| a.working_directory().to_string())
            .unwrap_or_else(|| ".".into());
        if let Some(ws) = &self.options.workspaces {
            let worktree = self
                .state
                .agents
                .get(id)
                .and_then(|a| a.git.as_ref())
                .and_then(|g| g.worktree.clone())
                .filter(|p| p.exists());
            return worktree
                .unwrap_or_else(|| ws.info().integration_path.clone())
                .join(scope);
        }
        self.options.workspace_root.join(scope)
    }

    /// Applies a stage's failure action. `per_agent`: the failures are
    /// pinned on agents (before merging), so a rollback can retry them.
    async fn stage_failed(
        &mut self,
        w: usize,
        key: &str,
        stage: &GateStage,
        failing: Vec<(String, String)>,
        per_agent: bool,
    ) -> Result<Option<Stop>, EngineError> {
        let mut action = effective_action(key, stage.failure_action, self.options.risk);
        let rounds = self.state.stages.get(key).map_or(0, |s| s.rollbacks);
        if action == FailureAction::RollbackAndRetry
            && (!per_agent || rounds >= stage.max_retries.unwrap_or(1))
        {
            action = FailureAction::PauseWave;
        }
        let agents: Vec<String> = if per_agent {
            failing.iter().map(|(id, _)| id.clone()).collect()
        } else {
            Vec::new()
        };
        let mut events = vec![Event::GateStageFailed {
            stage: key.to_string(),
            action,
            agents: agents.clone(),
        }];
        match action {
            FailureAction::RollbackAndRetry => {
                for (id, text) in failing {
                    events.push(Event::AgentRolledBack {
                        agent: id.clone(),
                        stage: key.to_string(),
                        reason: text,
                    });
                    self.retry_at.insert(id, tokio::time::Instant::now());
                }
                self.record(events).await?;
                Ok(None)
            }
            FailureAction::PauseWave => {
                self.record(events).await?;
                Ok(Some(Stop::Pause))
            }
            FailureAction::ManualReview => {
                self.record(events).await?;
                self.write_review(key, &failing)?;
                Ok(Some(Stop::Pause))
            }
            FailureAction::Continue => {
                self.record(events).await?;
                self.gated_waves.insert(w);
                Ok(None)
            }
        }
    }

    /// A stage waiting for a person: `resume --approve` or `--reject` decides it.
    async fn decide_review(
        &mut self,
        w: usize,
        key: &str,
        stage: &GateStage,
        agents: Vec<String>,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        let Some(approved) = self.options.review.take() else {
            eprintln!(
                "gate stage {key} waits for a manual review (see {}): `llm-orchestrate resume {} --approve` or `--reject`",
                self.options.run_dir.join("review.md").display(),
                self.options.run_id
            );
            return Ok(Some(Stop::Pause));
        };
        self.record(vec![Event::ReviewDecided {
            stage: key.to_string(),
            approved,
            agents,
        }])
        .await?;
        if !approved {
            return Ok(None);
        }
        self.gated_waves.insert(w);
        if let Some(stop) = self.integrate(interrupt).await? {
            return Ok(Some(stop));
        }
        self.proceed(w, key, stage)
    }

    /// After a stage passed: `proceed-to-<waveId>` skips the waves before the target.
    fn proceed(
        &mut self,
        w: usize,
        key: &str,
        stage: &GateStage,
    ) -> Result<Option<Stop>, EngineError> {
        let SuccessAction::ProceedTo(target) = &stage.success_action else {
            return Ok(None);
        };
        let Some(t) = self
            .plan
            .waves
            .iter()
            .position(|wave| &wave.wave_id == target)
            .or_else(|| {
                target
                    .strip_prefix("wave")
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| n.checked_sub(1))
                    .filter(|&n| n < self.plan.waves.len())
            })
        else {
            return Ok(None);
        };
        let mut events = Vec::new();
        for skipped in (w + 1)..t {
            for id in self.wave_agents(skipped) {
                let pending = self
                    .state
                    .agents
                    .get(&id)
                    .is_some_and(|a| a.phase == AgentPhase::Pending);
                if pending {
                    events.push(Event::AgentBlocked {
                        agent: id,
                        by: key.to_string(),
                        reason: format!("skipped: gate stage {key} proceeds to {target}"),
                    });
                }
            }
        }
        self.stage(events);
        Ok(None)
    }

    /// The `final` stage, after the last wave, when every agent completed.
    pub(super) async fn final_checkpoint(
        &mut self,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        let Some(stage) = self.plan.final_gate_stage().cloned() else {
            return Ok(None);
        };
        let key = "final";
        let done = self.state.stages.get(key).cloned().unwrap_or_default();
        if done.passed || done.failed_action == Some(FailureAction::Continue) {
            return Ok(None);
        }
        if done.failed_action == Some(FailureAction::ManualReview) {
            let Some(approved) = self.options.review.take() else {
                eprintln!(
                    "the final gate stage waits for a manual review (see {}): `llm-orchestrate resume {} --approve` or `--reject`",
                    self.options.run_dir.join("review.md").display(),
                    self.options.run_id
                );
                return Ok(Some(Stop::Pause));
            };
            let agents = if approved {
                Vec::new()
            } else {
                self.state.agents.keys().cloned().collect()
            };
            self.record(vec![Event::ReviewDecided {
                stage: key.into(),
                approved,
                agents,
            }])
            .await?;
            return Ok(None);
        }
        let Some(ctx) = self.gate_ctx.clone() else {
            return Ok(None);
        };
        let dir = match &self.options.workspaces {
            Some(ws) => ws.info().integration_path.clone(),
            None => self.options.workspace_root.clone(),
        };
        let results = run_gates(&ctx, "integration", &stage.gates, &dir, interrupt).await;
        let failure = failure_of(&results);
        let events = results
            .into_iter()
            .map(|result| Event::GateFinished {
                level: GateLevel::Final,
                stage: Some(key.into()),
                service: "integration".into(),
                result,
            })
            .collect();
        self.record(events).await?;
        match failure {
            None => {
                self.record(vec![Event::GateStagePassed { stage: key.into() }])
                    .await?;
                Ok(None)
            }
            Some(text) => {
                let w = self.plan.waves.len().saturating_sub(1);
                self.stage_failed(w, key, &stage, vec![("integration".into(), text)], false)
                    .await
            }
        }
    }

    /// `review.md`: what a person should look at before `--approve` / `--reject`.
    fn write_review(&self, key: &str, failing: &[(String, String)]) -> Result<(), EngineError> {
        let mut text = format!(
            "# Manual review: gate stage `{key}` of run {}\n\nThe gates below failed. Look at the work, then run\n`llm-orchestrate resume {} --approve` to accept it and go on, or\n`llm-orchestrate resume {} --reject` to fail the stage's agents.\n\n",
            self.options.run_id, self.options.run_id, self.options.run_id
        );
        for (service, failure) in failing {
            text.push_str(&format!("## {service}\n\n"));
            if let Some(git) = self.state.agents.get(service).and_then(|a| a.git.as_ref()) {
                text.push_str(&format!("- branch: `{}`\n", git.branch));
                if let Some(worktree) = &git.worktree {
                    text.push_str(&format!("- worktree: `{}`\n", worktree.display()));
                }
            } else if let Some(ws) = &self.options.workspaces {
                text.push_str(&format!(
                    "- integration worktree: `{}` (branch `{}`)\n",
                    ws.info().integration_path.display(),
                    ws.info().integration_branch
                ));
            }
            text.push_str("\n```\n");
            text.push_str(failure);
            text.push_str("\n```\n\n");
        }
        let path = self.options.run_dir.join("review.md");
        crate::report::status::write_atomically(&path, text.as_bytes())
            .map_err(|source| EngineError::Io { path, source })
    }
}
