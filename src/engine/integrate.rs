//! Runs with git workspaces: what happens to an agent's branch after it
//! finished (scope check, merge into the integration branch, conflicts, the
//! resolver agent) and landing the integration branch on the base branch.
//!
//! When merges happen: in `waves` (and `adaptive`) mode once every agent of
//! a parallel wave is finished, in dependency order, before the next wave
//! starts (so it starts from the merged work); in a sequential wave
//! (`parallel: false`) and in `continuous` mode as soon as an agent
//! completes, before the next agent or any dependant starts. Only completed
//! agents merge.
//!
//! Conflicts and `conflictHandling`:
//! - files changed outside the agent's scope: `pause-and-resolve` pauses the
//!   run (exit 3; on `resume` the branch is checked again, so a person can
//!   revert the files on the agent's branch, or merge the branch into the
//!   integration branch themselves to accept it); `fail`, `strict` and
//!   `resolve-with-agent` fail the attempt (retries apply, with the files as
//!   retry context);
//! - a merge conflict: `pause-and-resolve` leaves the merge in progress in
//!   the integration worktree and pauses (exit 3; fix the files, `git add`
//!   them, then `resume`: the merge is concluded there, or taken as is when
//!   a person committed it); `resolve-with-agent` runs a resolver agent in the
//!   integration worktree (same driver as the agent, a prompt naming both
//!   sides and the files with conflict markers) and concludes the merge when
//!   no marker is left, else pauses as above; `fail` and `strict` abort the
//!   merge and fail the agent (its dependants become blocked).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, Stop};
use crate::drivers::{AgentOutput, AgentTask, DriverResult};
use crate::journal::{AgentOutcome, AgentPhase, ConflictAction, ConflictKind, Event};
use crate::plan::{ConflictHandling, SuccessAction};
use crate::workspace::{Landing, MergeOutcome, Workspaces};

/// Position of each agent in a dependency order of the plan (Kahn's
/// algorithm, plan order among agents that are ready together): merges
/// happen in this order.
pub(super) fn merge_ranks(index: &super::ready::PlanIndex) -> Vec<usize> {
    let n = index.ids.len();
    let mut unmet: Vec<usize> = index.deps.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| unmet[i] == 0).collect();
    let mut rank = vec![usize::MAX; n];
    let mut next = 0;
    while let Some(i) = ready.pop_first() {
        rank[i] = next;
        next += 1;
        for &d in &index.dependants[i] {
            unmet[d] -= 1;
            if unmet[d] == 0 {
                ready.insert(d);
            }
        }
    }
    // A valid plan has no cycle; anything left keeps plan order at the end.
    for (i, r) in rank.iter_mut().enumerate() {
        if *r == usize::MAX {
            *r = n + i;
        }
    }
    rank
}

fn workspace_error(e: crate::workspace::WorkspaceError) -> EngineError {
    EngineError::Workspace(e.to_string())
}

impl Engine {
    /// Queues a completed agent's branch for merging.
    pub(super) fn queue_merge(&mut self, agent: &str) {
        if self.options.workspaces.is_none() {
            return;
        }
        if let Some(&i) = self.scheduler.index().position.get(agent) {
            self.to_merge
                .insert((self.merge_rank[i], agent.to_string()));
        }
    }

    /// On resume: completed agents whose branches are not merged yet.
    pub(super) fn queue_unmerged(&mut self) {
        let unmerged: Vec<String> = self
            .state
            .agents
            .values()
            .filter(|a| a.phase == AgentPhase::Completed)
            .filter(|a| a.git.as_ref().is_some_and(|g| g.merged.is_none()))
            .map(|a| a.id.clone())
            .collect();
        for id in unmerged {
            self.queue_merge(&id);
        }
    }

    /// The scope check of a finished attempt (its `WorktreeCommitted` event is
    /// already applied). Returns the events to journal before the attempt's
    /// own, and whether the run pauses; a failing verdict changes `result`.
    pub(super) fn scope_verdict(
        &self,
        agent: &str,
        result: &mut DriverResult,
    ) -> (Vec<Event>, Option<Stop>) {
        if self.options.workspaces.is_none() || !result.outcome.is_success() {
            return (Vec::new(), None);
        }
        let outside = self
            .state
            .agents
            .get(agent)
            .and_then(|a| a.git.as_ref())
            .map(|g| g.outside_scope.clone())
            .unwrap_or_default();
        if outside.is_empty() {
            return (Vec::new(), None);
        }
        let pause = self.options.conflict_handling == ConflictHandling::PauseAndResolve;
        let action = if pause {
            ConflictAction::Pause
        } else {
            ConflictAction::Fail
        };
        if !pause {
            result.outcome = AgentOutcome::Failed {
                reason: format!(
                    "{}: {} (its scope is {})",
                    ConflictKind::OutsideScope.describe(),
                    outside.join(", "),
                    self.agent_def(agent)
                        .map(|a| a.scope_paths().join(", "))
                        .unwrap_or_default()
                ),
            };
        }
        let event = Event::ConflictFound {
            agent: agent.to_string(),
            kind: ConflictKind::OutsideScope,
            files: outside,
            action,
        };
        (vec![event], pause.then_some(Stop::Pause))
    }

    /// Merges queued branches whose time has come (see the module docs).
    /// Returns `Some(Stop::Pause)` when a conflict needs a person.
    pub(super) async fn integrate(
        &mut self,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        let Some(ws) = self.options.workspaces.clone() else {
            return Ok(None);
        };
        let continuous = self.options.mode == crate::plan::ExecutionMode::Continuous;
        let due: Vec<(usize, String)> = self
            .to_merge
            .iter()
            .filter(|(_, id)| {
                let index = self.scheduler.index();
                continuous
                    || index.position.get(id).is_some_and(|&i| {
                        let w = index.wave[i];
                        !index.wave_parallel[w]
                            || (self.scheduler.wave_done(w) && self.wave_may_merge(w))
                    })
            })
            .cloned()
            .collect();
        for key in due {
            self.to_merge.remove(&key);
            let agent = key.1;
            let still_completed = self
                .state
                .agents
                .get(&agent)
                .is_some_and(|a| a.phase == AgentPhase::Completed);
            if !still_completed {
                continue;
            }
            if let Some(stop) = self.merge_one(&ws, &agent, interrupt).await? {
                // Keep it queued: `resume` tries again.
                self.to_merge.insert((key.0, agent));
                return Ok(Some(stop));
            }
        }
        Ok(None)
    }

    async fn merge_one(
        &mut self,
        ws: &Arc<Workspaces>,
        agent: &str,
        interrupt: &CancellationToken,
    ) -> Result<Option<Stop>, EngineError> {
        let Some(git) = self.state.agents.get(agent).and_then(|a| a.git.clone()) else {
            return Ok(None);
        };
        // A scope conflict left for a person: look at the branch again.
        if let Some(conflict) = &git.conflict
            && conflict.kind == ConflictKind::OutsideScope
        {
            let tip =
                crate::workspace::git::rev(&ws.info().repo, &format!("refs/heads/{}", git.branch))
                    .await
                    .map_err(|e| workspace_error(e.into()))?
                    .unwrap_or_default();
            let integration = ws.integration_tip().await.map_err(workspace_error)?;
            let accepted = crate::workspace::git::is_ancestor(&ws.info().repo, &tip, &integration)
                .await
                .map_err(|e| workspace_error(e.into()))?;
            if !accepted {
                let changed = ws
                    .changed_files(&git.start_commit, &tip)
                    .await
                    .map_err(workspace_error)?;
                let scope = self
                    .agent_def(agent)
                    .map(|a| a.scope_paths().to_vec())
                    .unwrap_or_default();
                let outside: Vec<String> = crate::workspace::scope::outside(&scope, &changed)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                if !outside.is_empty() {
                    self.record(vec![Event::ConflictFound {
                        agent: agent.to_string(),
                        kind: ConflictKind::OutsideScope,
                        files: outside,
                        action: ConflictAction::Pause,
                    }])
                    .await?;
                    return Ok(Some(Stop::Pause));
                }
            }
            self.stage(vec![Event::ConflictResolved {
                agent: agent.to_string(),
                by: "person".into(),
            }]);
        }
        // A merge a person (or an earlier run) left in progress.
        if ws.pending_merge().await.map_err(workspace_error)?.is_some() {
            return self.conclude(ws, agent, "person").await;
        }
        match ws
            .merge(agent, &git.branch)
            .await
            .map_err(workspace_error)?
        {
            MergeOutcome::Merged(commit) => self.merged(ws, agent, Some(commit)).await,
            MergeOutcome::AlreadyMerged => self.merged(ws, agent, None).await,
            MergeOutcome::Conflict(files) => match self.options.conflict_handling {
                ConflictHandling::Fail | ConflictHandling::Strict => {
                    ws.abort_merge().await.map_err(workspace_error)?;
                    self.stage(vec![Event::ConflictFound {
                        agent: agent.to_string(),
                        kind: ConflictKind::Merge,
                        files,
                        action: ConflictAction::Fail,
                    }]);
                    Ok(None)
                }
                ConflictHandling::PauseAndResolve => self.pause_on_merge(agent, files).await,
                ConflictHandling::ResolveWithAgent => {
                    self.record(vec![Event::ConflictFound {
                        agent: agent.to_string(),
                        kind: ConflictKind::Merge,
                        files: files.clone(),
                        action: ConflictAction::Resolve,
                    }])
                    .await?;
                    let resolved = self.run_resolver(ws, agent, &files, interrupt).await?;
                    if !resolved {
                        let files = ws.conclude_merge_preview().await.map_err(workspace_error)?;
                        return self.pause_on_merge(agent, files).await;
                    }
                    self.conclude(ws, agent, "resolver agent").await
                }
            },
        }
    }

    async fn merged(
        &mut self,
        ws: &Arc<Workspaces>,
        agent: &str,
        commit: Option<String>,
    ) -> Result<Option<Stop>, EngineError> {
        let mut events = vec![Event::AgentMerged {
            agent: agent.to_string(),
            commit,
        }];
        // A completed, merged agent's worktree is not needed any more.
        if ws.remove_worktree(agent).await.is_ok() {
            events.push(Event::WorktreeRemoved {
                agent: agent.to_string(),
            });
        }
        self.stage(events);
        Ok(None)
    }

    async fn conclude(
        &mut self,
        ws: &Arc<Workspaces>,
        agent: &str,
        by: &str,
    ) -> Result<Option<Stop>, EngineError> {
        match ws.conclude_merge().await.map_err(workspace_error)? {
            Ok(commit) => {
                self.stage(vec![Event::ConflictResolved {
                    agent: agent.to_string(),
                    by: by.to_string(),
                }]);
                self.merged(ws, agent, Some(commit)).await
            }
            Err(files) => self.pause_on_merge(agent, files).await,
        }
    }

    /// Leaves the merge in progress for a person: journals the conflicting
    /// `files` and pauses the run.
    async fn pause_on_merge(
        &mut self,
        agent: &str,
        files: Vec<String>,
    ) -> Result<Option<Stop>, EngineError> {
        self.record(vec![Event::ConflictFound {
            agent: agent.to_string(),
            kind: ConflictKind::Merge,
            files,
            action: ConflictAction::Pause,
        }])
        .await?;
        Ok(Some(Stop::Pause))
    }

    /// Runs a resolver agent for a merge conflict of `agent` in the
    /// integration worktree; true when it ended successfully.
    async fn run_resolver(
        &mut self,
        ws: &Arc<Workspaces>,
        agent: &str,
        files: &[String],
        interrupt: &CancellationToken,
    ) -> Result<bool, EngineError> {
        let Some(mut def) = self.agent_def(agent).cloned() else {
            return Ok(false);
        };
        // The other side: merged agents that changed the same files.
        let others: Vec<(String, String)> = self
            .state
            .agents
            .values()
            .filter(|a| a.id != agent)
            .filter(|a| {
                a.git.as_ref().is_some_and(|g| {
                    g.merged.is_some() && g.changed_files.iter().any(|f| files.contains(f))
                })
            })
            .filter_map(|a| {
                self.agent_def(&a.id)
                    .map(|d| (a.id.clone(), d.work_description.clone()))
            })
            .collect();
        let description = resolver_description(&def, ws, files, &others);
        def.work_description = description.clone();
        def.env.insert("LLMO_RESOLVING".into(), "1".into());
        def.env
            .insert("LLMO_CONFLICT_FILES".into(), files.join("\n"));
        let attempt = 1;
        let task = AgentTask {
            run_id: self.options.run_id.clone(),
            workdir: ws.info().integration_path.clone(),
            run_dir: self.options.run_dir.clone(),
            agent_dir: super::agent_dir(&self.options.run_dir, agent).join("resolver"),
            prompt: if self.driver.uses_prompt() {
                description
            } else {
                String::new()
            },
            attempt,
            retry_context: None,
            timeout: self.timeout_for(agent),
            stall_timeout: self.options.stall_timeout,
            kill_grace: self.options.kill_grace,
            agent: def,
        };
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let token = CancellationToken::new();
        let run = self.driver.run(task, out_tx, token.clone());
        tokio::pin!(run);
        let result = tokio::select! {
            result = &mut run => result,
            () = interrupt.cancelled() => {
                token.cancel();
                run.await
            }
        };
        let mut usage = Vec::new();
        while let Ok(output) = out_rx.try_recv() {
            if let AgentOutput::Usage {
                model,
                usage: u,
                cost_usd,
            } = output
            {
                usage.push(Event::AgentUsage {
                    agent: agent.to_string(),
                    model,
                    usage: u,
                    cost_usd,
                });
            }
        }
        self.stage(usage);
        Ok(result.outcome.is_success() && !interrupt.is_cancelled())
    }

    /// After a successful run: lands the integration branch on the base
    /// branch when a gate stage asks for `merge-all`, then removes the
    /// integration worktree. Returns `false` when landing conflicts (the run
    /// then pauses: the base branch moved in a way that does not merge).
    pub(super) async fn land_if_asked(&mut self) -> Result<bool, EngineError> {
        let Some(ws) = self.options.workspaces.clone() else {
            return Ok(true);
        };
        let merge_all = self
            .plan
            .quality_gates
            .values()
            .any(|stage| stage.success_action == SuccessAction::MergeAll);
        if merge_all && self.state.landed.is_none() {
            match ws
                .land(&self.options.run_dir)
                .await
                .map_err(workspace_error)?
            {
                Landing::Landed {
                    commit,
                    fast_forward,
                } => {
                    self.record(vec![Event::BaseLanded {
                        base_branch: ws.info().base_branch.clone(),
                        commit,
                        fast_forward,
                    }])
                    .await?;
                }
                Landing::Conflict(files) => {
                    eprintln!(
                        "merge-all: merging {} into {} conflicts on {}; merge it by hand, or resolve and `resume`",
                        ws.info().integration_branch,
                        ws.info().base_branch,
                        files.join(", ")
                    );
                    return Ok(false);
                }
            }
        }
        ws.remove_integration_worktree()
            .await
            .map_err(workspace_error)?;
        Ok(true)
    }
}

/// The resolver's instructions.
fn resolver_description(
    agent: &crate::plan::Agent,
    ws: &Workspaces,
    files: &[String],
    others: &[(String, String)],
) -> String {
    // The resolver has its own name (`<agent>_RESOLVER`), so a scripted
    // provider can answer it apart from the agent.
    let mut text = format!(
        "# Agent {}_RESOLVER\n\nResolve a git merge conflict. You are in the worktree of the integration branch {} ({}), where merging the branch of agent {} stopped with conflicts.\n\n",
        agent.agent_id,
        ws.info().integration_branch,
        ws.info().integration_path.display(),
        agent.agent_id
    );
    text.push_str(&format!(
        "Incoming side: agent {}: {}\n",
        agent.agent_id, agent.work_description
    ));
    for (id, work) in others {
        text.push_str(&format!("Integration side: agent {id}: {work}\n"));
    }
    text.push_str("\nFiles with conflict markers (<<<<<<<, =======, >>>>>>>):\n");
    for file in files {
        text.push_str(&format!("- {file}\n"));
    }
    text.push_str(
        "\nEdit each file so it keeps the intent of both sides and no conflict marker is left. Do not commit and do not touch other files; the orchestrator concludes the merge. When done, print [STATUS: COMPLETE]; if you cannot, print [STATUS: FAILED] with the reason.\n",
    );
    text
}
