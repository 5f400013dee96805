//! Git workspaces: one worktree and branch per agent, an integration branch
//! that collects each wave's work, and landing it on the base branch.
//!
//! The shape of a run's git state:
//! - the **base branch** (`workspace.baseBranch`, else the branch checked out
//!   where the run starts) is where the run begins and where `merge-all` lands;
//! - the **integration branch** (`workspace.integrationBranch`, else
//!   `llmo/<run-id>/integration`) starts at the base branch's tip and has its
//!   own worktree at `<run-dir>/integration`; agents' branches merge into it
//!   (always with a merge commit, so each agent's work stays one unit);
//! - each agent works in `<run-dir>/worktrees/<agent-id>` on its own branch
//!   (the agent's `branch`, else `llmo/<run-id>/<agent-id>`), created from the
//!   integration branch's tip when the attempt starts. After the attempt the
//!   orchestrator commits whatever the agent left uncommitted (a snapshot), so
//!   the branch holds all of its work.
//!
//! Nothing is ever lost: a branch is only moved when its tip is already
//! reachable from where it moves to; otherwise the old tip is first kept under
//! `refs/llmo/<run-id>/saved/<agent-id>/<n>`. Worktrees of merged agents are
//! removed; failed agents' worktrees stay for inspection until
//! `llm-orchestrate clean RUN`, which removes worktrees and never branches.

pub mod git;
pub mod scope;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use git::GitError;

use crate::plan::{Agent, CommandSpec};

/// Errors of workspace operations.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The folder is not inside a git repository.
    #[error("{0} is not inside a git repository")]
    NotARepository(PathBuf),
    /// The repository cannot host a run.
    #[error("{0}")]
    Unusable(String),
    /// The `workspace.setup` command failed in a new worktree.
    #[error("workspace.setup failed in {path}: {detail}")]
    Setup {
        /// The worktree.
        path: PathBuf,
        /// Exit status and the end of its output.
        detail: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where a run's git state lives (journaled when the run starts, so `resume`
/// and `clean` find it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceInfo {
    /// The repository's top folder.
    pub repo: PathBuf,
    /// Branch the run started from and `merge-all` lands on.
    pub base_branch: String,
    /// The base branch's commit when the run started.
    pub base_commit: String,
    /// The branch collecting merged work.
    pub integration_branch: String,
    /// The integration branch's worktree.
    pub integration_path: PathBuf,
    /// Folder holding the agents' worktrees.
    pub worktrees: PathBuf,
}

/// An agent's worktree, ready for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The worktree.
    pub path: PathBuf,
    /// Its branch.
    pub branch: String,
    /// The commit it started from (the integration branch's tip).
    pub start_commit: String,
}

/// What an attempt left on its branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The branch's tip after the snapshot commit.
    pub commit: String,
    /// Files changed since the start commit.
    pub changed: Vec<String>,
    /// Those outside the agent's scope.
    pub outside_scope: Vec<String>,
}

/// How merging a branch into the integration branch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Merged; the integration branch's new tip.
    Merged(String),
    /// The branch was already reachable from the integration branch.
    AlreadyMerged,
    /// Conflicts; the merge is left in progress in the integration worktree.
    Conflict(Vec<String>),
}

/// How landing the integration branch on the base branch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// The base branch now points at this commit.
    Landed {
        /// The base branch's new tip.
        commit: String,
        /// Whether it was a fast-forward.
        fast_forward: bool,
    },
    /// The base branch moved and merging it conflicts; nothing changed.
    Conflict(Vec<String>),
}

/// A run's git workspaces. Operations that move shared refs or add and
/// remove worktrees are serialized; snapshots of different worktrees run
/// side by side.
#[derive(Debug)]
pub struct Workspaces {
    info: WorkspaceInfo,
    run_id: String,
    setup: Option<CommandSpec>,
    lock: Mutex<()>,
}

impl Workspaces {
    /// Opens the repository holding `dir` for a new run: finds the base
    /// branch, creates the integration branch and its worktree.
    pub async fn open(
        dir: &Path,
        run_id: &str,
        run_dir: &Path,
        settings: Option<&crate::plan::model::Workspace>,
    ) -> Result<Self, WorkspaceError> {
        let repo = git::toplevel(dir)
            .await?
            .ok_or_else(|| WorkspaceError::NotARepository(dir.to_path_buf()))?;
        let base_branch = match settings.and_then(|s| s.base_branch.clone()) {
            Some(branch) => branch,
            None => {
                let head =
                    git::output(&repo, ["symbolic-ref", "--quiet", "--short", "HEAD"]).await?;
                if !head.ok() {
                    return Err(WorkspaceError::Unusable(format!(
                        "HEAD of {} is detached: check out a branch or set workspace.baseBranch in the plan",
                        repo.display()
                    )));
                }
                head.trimmed().to_string()
            }
        };
        let base_commit = git::rev(&repo, &format!("refs/heads/{base_branch}"))
            .await?
            .ok_or_else(|| {
                WorkspaceError::Unusable(format!(
                    "base branch {base_branch:?} has no commit in {} (commit something first)",
                    repo.display()
                ))
            })?;
        let integration_branch = settings
            .and_then(|s| s.integration_branch.clone())
            .unwrap_or_else(|| format!("llmo/{run_id}/integration"));
        let run_dir = absolute(run_dir);
        ignore_run_folders(&repo, &run_dir)?;
        let info = WorkspaceInfo {
            repo,
            base_branch,
            base_commit,
            integration_branch,
            integration_path: run_dir.join("integration"),
            worktrees: run_dir.join("worktrees"),
        };
        let workspaces = Self::reopen(info, run_id, settings.and_then(|s| s.setup.clone()));
        workspaces.ensure_integration().await?;
        Ok(workspaces)
    }

    /// The workspaces of a run that already started (from its journal).
    pub fn reopen(info: WorkspaceInfo, run_id: &str, setup: Option<CommandSpec>) -> Self {
        Self {
            info,
            run_id: run_id.to_string(),
            setup,
            lock: Mutex::new(()),
        }
    }

    /// Where everything lives.
    pub fn info(&self) -> &WorkspaceInfo {
        &self.info
    }

    /// The branch an agent works on.
    pub fn branch_of(&self, agent: &Agent) -> String {
        agent
            .branch
            .clone()
            .unwrap_or_else(|| format!("llmo/{}/{}", self.run_id, agent.agent_id))
    }

    /// The worktree of an agent.
    pub fn worktree_of(&self, agent_id: &str) -> PathBuf {
        self.info.worktrees.join(agent_id)
    }

    /// Creates the integration branch (at the base commit) and its worktree
    /// when they are missing; a resumed run whose integration worktree was
    /// removed gets it back.
    pub async fn ensure_integration(&self) -> Result<(), WorkspaceError> {
        let _guard = self.lock.lock().await;
        let repo = &self.info.repo;
        let branch = &self.info.integration_branch;
        if git::rev(repo, &format!("refs/heads/{branch}"))
            .await?
            .is_none()
        {
            git::run(
                repo,
                ["branch", branch.as_str(), self.info.base_commit.as_str()],
            )
            .await?;
        }
        if !self.info.integration_path.join(".git").exists() {
            let _ = git::output(repo, ["worktree", "prune"]).await?;
            let path = self.info.integration_path.to_string_lossy().into_owned();
            git::run(
                repo,
                ["worktree", "add", "--quiet", path.as_str(), branch.as_str()],
            )
            .await?;
        }
        Ok(())
    }

    /// The integration branch's tip.
    pub async fn integration_tip(&self) -> Result<String, WorkspaceError> {
        let branch = format!("refs/heads/{}", self.info.integration_branch);
        git::rev(&self.info.repo, &branch).await?.ok_or_else(|| {
            WorkspaceError::Unusable(format!(
                "the integration branch {} is gone",
                self.info.integration_branch
            ))
        })
    }

    /// A fresh worktree for an attempt of `agent`, on its branch, at the
    /// integration branch's tip; `workspace.setup` runs in it. A previous
    /// attempt's worktree is replaced (its commits stay on the branch or,
    /// when the branch moves back, under a saved ref).
    pub async fn prepare(&self, agent: &Agent, attempt: u32) -> Result<Prepared, WorkspaceError> {
        let path = self.worktree_of(&agent.agent_id);
        let branch = self.branch_of(agent);
        let _guard = self.lock.lock().await;
        let repo = &self.info.repo;
        let start = self.integration_tip().await?;
        if path.exists() {
            // Work an interrupted attempt left uncommitted (the orchestrator
            // was killed before its snapshot) is committed first, so that
            // replacing the worktree loses nothing.
            if path.join(".git").exists() {
                keep_uncommitted(&path, &agent.agent_id).await?;
            }
            let p = path.to_string_lossy().into_owned();
            let removed = git::output(repo, ["worktree", "remove", "--force", p.as_str()]).await?;
            if !removed.ok() {
                std::fs::remove_dir_all(&path).map_err(|source| WorkspaceError::Io {
                    path: path.clone(),
                    source,
                })?;
                git::run(repo, ["worktree", "prune"]).await?;
            }
        }
        if let Some(tip) = git::rev(repo, &format!("refs/heads/{branch}")).await?
            && !git::is_ancestor(repo, &tip, &start).await?
        {
            let saved = format!(
                "refs/llmo/{}/saved/{}/{attempt}",
                self.run_id, agent.agent_id
            );
            git::run(repo, ["update-ref", saved.as_str(), tip.as_str()]).await?;
        }
        let p = path.to_string_lossy().into_owned();
        git::run(
            repo,
            [
                "worktree",
                "add",
                "--quiet",
                "-B",
                branch.as_str(),
                p.as_str(),
                start.as_str(),
            ],
        )
        .await?;
        self.run_setup(&path).await?;
        Ok(Prepared {
            path,
            branch,
            start_commit: start,
        })
    }

    async fn run_setup(&self, path: &Path) -> Result<(), WorkspaceError> {
        let Some(setup) = &self.setup else {
            return Ok(());
        };
        let mut command = match setup {
            CommandSpec::Shell(script) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c").arg(script);
                c
            }
            CommandSpec::Argv(argv) => {
                let Some((program, args)) = argv.split_first() else {
                    return Ok(());
                };
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                c
            }
        };
        let out = command
            .current_dir(path)
            .env("LLMO_MAIN_REPO", &self.info.repo)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| WorkspaceError::Setup {
                path: path.to_path_buf(),
                detail: format!("cannot start `{}`: {e}", setup.display()),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let tail: String = text
            .chars()
            .rev()
            .take(800)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(WorkspaceError::Setup {
            path: path.to_path_buf(),
            detail: format!(
                "`{}` exited with {}: {}",
                setup.display(),
                out.status,
                tail.trim()
            ),
        })
    }

    /// Commits what the agent left uncommitted in its worktree and lists the
    /// files its branch changed since `start_commit`, and those outside its scope.
    pub async fn snapshot(
        &self,
        agent: &Agent,
        path: &Path,
        start_commit: &str,
        attempt: u32,
    ) -> Result<Snapshot, WorkspaceError> {
        git::run(path, ["add", "--all"]).await?;
        let staged = git::output(path, ["diff", "--cached", "--quiet"]).await?;
        if !staged.ok() {
            let title = agent.work_description.lines().next().unwrap_or("").trim();
            let title: String = title.chars().take(72).collect();
            let message = format!(
                "{}: {title}\n\nWork left uncommitted by agent {} (attempt {attempt}), committed by llm-orchestrate.",
                agent.agent_id, agent.agent_id
            );
            git::run(
                path,
                ["commit", "--quiet", "--no-verify", "-m", message.as_str()],
            )
            .await?;
        }
        let commit = git::rev(path, "HEAD")
            .await?
            .ok_or_else(|| WorkspaceError::Unusable(format!("{} has no HEAD", path.display())))?;
        let changed = self.changed_files(start_commit, &commit).await?;
        let outside_scope = scope::outside(agent.scope_paths(), &changed)
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(Snapshot {
            commit,
            changed,
            outside_scope,
        })
    }

    /// Puts a worktree back to its last commit: undoes what ran in it after
    /// the snapshot (gate builds, formatters); ignored files stay.
    pub async fn restore(&self, path: &Path) -> Result<(), WorkspaceError> {
        git::run(path, ["reset", "--hard", "--quiet"]).await?;
        git::run(path, ["clean", "-fd", "--quiet"]).await?;
        Ok(())
    }

    /// Files that differ between two commits (renames count as both paths).
    pub async fn changed_files(&self, from: &str, to: &str) -> Result<Vec<String>, WorkspaceError> {
        let out = git::run(
            &self.info.repo,
            ["diff", "--name-only", "--no-renames", "-z", from, to],
        )
        .await?;
        Ok(out
            .stdout
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Merges `branch` (an agent's work) into the integration branch with a
    /// merge commit. A conflict leaves the merge in progress in the
    /// integration worktree, for a person or a resolver agent.
    pub async fn merge(
        &self,
        agent_id: &str,
        branch: &str,
    ) -> Result<MergeOutcome, WorkspaceError> {
        let _guard = self.lock.lock().await;
        let dir = &self.info.integration_path;
        if git::is_ancestor(dir, branch, "HEAD").await? {
            return Ok(MergeOutcome::AlreadyMerged);
        }
        if let Some(pending) = self.pending_merge_unlocked().await? {
            return Err(WorkspaceError::Unusable(format!(
                "a merge is already in progress in {} (of {pending}); finish or abort it first",
                dir.display()
            )));
        }
        let message = format!(
            "Merge {agent_id} ({branch}) into {}",
            self.info.integration_branch
        );
        let out = git::output(
            dir,
            [
                "merge",
                "--no-ff",
                "--no-verify",
                "-m",
                message.as_str(),
                branch,
            ],
        )
        .await?;
        if out.ok() {
            return Ok(MergeOutcome::Merged(self.head_of(dir).await?));
        }
        let conflicts = self.unmerged_files_unlocked().await?;
        if conflicts.is_empty() {
            let _ = git::output(dir, ["merge", "--abort"]).await?;
            return Err(WorkspaceError::Unusable(format!(
                "merging {branch} failed: {}{}",
                out.stdout.trim(),
                out.stderr.trim()
            )));
        }
        Ok(MergeOutcome::Conflict(conflicts))
    }

    async fn head_of(&self, dir: &Path) -> Result<String, WorkspaceError> {
        git::rev(dir, "HEAD")
            .await?
            .ok_or_else(|| WorkspaceError::Unusable(format!("{} has no HEAD", dir.display())))
    }

    /// The commit being merged in the integration worktree, if a merge is in progress.
    pub async fn pending_merge(&self) -> Result<Option<String>, WorkspaceError> {
        let _guard = self.lock.lock().await;
        self.pending_merge_unlocked().await
    }

    async fn pending_merge_unlocked(&self) -> Result<Option<String>, WorkspaceError> {
        Ok(git::rev(&self.info.integration_path, "MERGE_HEAD").await?)
    }

    async fn unmerged_files_unlocked(&self) -> Result<Vec<String>, WorkspaceError> {
        let out = git::run(
            &self.info.integration_path,
            ["diff", "--name-only", "--diff-filter=U", "-z"],
        )
        .await?;
        Ok(out
            .stdout
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Finishes a merge in progress once its conflicts are resolved: stages
    /// the integration worktree and commits. Returns the files that still
    /// conflict (unmerged, or still holding conflict markers) instead when
    /// there are any; then nothing is committed.
    pub async fn conclude_merge(&self) -> Result<Result<String, Vec<String>>, WorkspaceError> {
        let _guard = self.lock.lock().await;
        let dir = &self.info.integration_path;
        let mut still = self.unmerged_files_unlocked().await?;
        if still.is_empty() {
            // Resolved files are staged; look for markers left in them.
            let staged = git::run(dir, ["diff", "--cached", "--name-only", "-z"]).await?;
            for file in staged.stdout.split('\0').filter(|s| !s.is_empty()) {
                if has_conflict_markers(&dir.join(file)) {
                    still.push(file.to_string());
                }
            }
        } else {
            // Files a resolver fixed without staging them.
            let mut left = Vec::new();
            for file in still {
                if has_conflict_markers(&dir.join(&file)) || !dir.join(&file).exists() {
                    left.push(file);
                } else {
                    git::run(dir, ["add", "--", file.as_str()]).await?;
                }
            }
            still = left;
        }
        if !still.is_empty() {
            return Ok(Err(still));
        }
        git::run(dir, ["add", "--all"]).await?;
        git::run(dir, ["commit", "--quiet", "--no-verify", "--no-edit"]).await?;
        Ok(Ok(self.head_of(dir).await?))
    }

    /// The files of the merge in progress that still conflict (unmerged, or
    /// holding conflict markers), without changing anything.
    pub async fn conclude_merge_preview(&self) -> Result<Vec<String>, WorkspaceError> {
        let _guard = self.lock.lock().await;
        let dir = &self.info.integration_path;
        let mut files = self.unmerged_files_unlocked().await?;
        let staged = git::run(dir, ["diff", "--cached", "--name-only", "-z"]).await?;
        for file in staged.stdout.split('\0').filter(|s| !s.is_empty()) {
            if !files.iter().any(|f| f == file) && has_conflict_markers(&dir.join(file)) {
                files.push(file.to_string());
            }
        }
        Ok(files)
    }

    /// Removes the integration worktree (the branch stays).
    pub async fn remove_integration_worktree(&self) -> Result<(), WorkspaceError> {
        let _guard = self.lock.lock().await;
        self.remove_worktree_at(&self.info.integration_path).await
    }

    /// Removes the worktree at `path`, if there is one (callers hold the lock).
    async fn remove_worktree_at(&self, path: &Path) -> Result<(), WorkspaceError> {
        if !path.exists() {
            return Ok(());
        }
        let p = path.to_string_lossy().into_owned();
        git::run(
            &self.info.repo,
            ["worktree", "remove", "--force", p.as_str()],
        )
        .await?;
        Ok(())
    }

    /// Aborts a merge in progress in the integration worktree.
    pub async fn abort_merge(&self) -> Result<(), WorkspaceError> {
        let _guard = self.lock.lock().await;
        git::run(&self.info.integration_path, ["merge", "--abort"]).await?;
        Ok(())
    }

    /// Removes an agent's worktree (its branch stays).
    pub async fn remove_worktree(&self, agent_id: &str) -> Result<(), WorkspaceError> {
        let _guard = self.lock.lock().await;
        self.remove_worktree_at(&self.worktree_of(agent_id)).await
    }

    /// Lands the integration branch on the base branch: a fast-forward when
    /// the base branch has not moved, else a merge commit. Where the base
    /// branch is checked out (usually the user's own worktree) the merge runs
    /// there, so that checkout follows; elsewhere the ref moves directly (a
    /// fast-forward) or the merge runs in a temporary worktree.
    pub async fn land(&self, run_dir: &Path) -> Result<Landing, WorkspaceError> {
        let _guard = self.lock.lock().await;
        let repo = &self.info.repo;
        let base_ref = format!("refs/heads/{}", self.info.base_branch);
        let base = git::rev(repo, &base_ref).await?.ok_or_else(|| {
            WorkspaceError::Unusable(format!("the base branch {} is gone", self.info.base_branch))
        })?;
        let integration = self.integration_tip().await?;
        let fast_forward = git::is_ancestor(repo, &base, &integration).await?;
        let checked_out = self.checkout_of(&base_ref).await?;
        if fast_forward && checked_out.is_none() {
            git::run(
                repo,
                [
                    "update-ref",
                    base_ref.as_str(),
                    integration.as_str(),
                    base.as_str(),
                ],
            )
            .await?;
            return Ok(Landing::Landed {
                commit: integration,
                fast_forward: true,
            });
        }
        let (dir, temporary) = match checked_out {
            Some(dir) => (dir, false),
            None => {
                let dir = absolute(run_dir).join("landing");
                let d = dir.to_string_lossy().into_owned();
                git::run(
                    repo,
                    [
                        "worktree",
                        "add",
                        "--quiet",
                        d.as_str(),
                        self.info.base_branch.as_str(),
                    ],
                )
                .await?;
                (dir, true)
            }
        };
        let message = format!(
            "Merge {} into {} (llm-orchestrate run {})",
            self.info.integration_branch, self.info.base_branch, self.run_id
        );
        let out = git::output(
            &dir,
            [
                "merge",
                "--no-verify",
                "-m",
                message.as_str(),
                self.info.integration_branch.as_str(),
            ],
        )
        .await?;
        let result = if out.ok() {
            Landing::Landed {
                commit: self.head_of(&dir).await?,
                fast_forward,
            }
        } else {
            let conflicts = git::run(&dir, ["diff", "--name-only", "--diff-filter=U"]).await?;
            let _ = git::output(&dir, ["merge", "--abort"]).await?;
            let files = conflicts.lines();
            if files.is_empty() {
                return Err(WorkspaceError::Unusable(format!(
                    "merging {} into {} in {} failed: {}{}",
                    self.info.integration_branch,
                    self.info.base_branch,
                    dir.display(),
                    out.stdout.trim(),
                    out.stderr.trim()
                )));
            }
            Landing::Conflict(files)
        };
        if temporary {
            let d = dir.to_string_lossy().into_owned();
            git::run(repo, ["worktree", "remove", "--force", d.as_str()]).await?;
        }
        Ok(result)
    }

    /// The worktree where `branch_ref` is checked out, if any.
    async fn checkout_of(&self, branch_ref: &str) -> Result<Option<PathBuf>, WorkspaceError> {
        let list = git::run(&self.info.repo, ["worktree", "list", "--porcelain"]).await?;
        let mut current: Option<PathBuf> = None;
        for line in list.stdout.lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                current = Some(PathBuf::from(path));
            } else if line.strip_prefix("branch ") == Some(branch_ref) {
                return Ok(current);
            }
        }
        Ok(None)
    }

    /// Removes every worktree of the run (agents', integration, landing);
    /// branches and commits stay. Returns the worktrees removed.
    pub async fn clean(&self) -> Result<Vec<PathBuf>, WorkspaceError> {
        let _guard = self.lock.lock().await;
        let repo = &self.info.repo;
        let list = git::run(repo, ["worktree", "list", "--porcelain"]).await?;
        let run_dir = self.info.worktrees.parent().map(Path::to_path_buf);
        let mut removed = Vec::new();
        for line in list.stdout.lines() {
            let Some(path) = line.strip_prefix("worktree ") else {
                continue;
            };
            let path = PathBuf::from(path);
            if run_dir.as_ref().is_some_and(|r| path.starts_with(r)) {
                let p = path.to_string_lossy().into_owned();
                git::run(repo, ["worktree", "remove", "--force", p.as_str()]).await?;
                removed.push(path);
            }
        }
        git::run(repo, ["worktree", "prune"]).await?;
        Ok(removed)
    }
}

/// Commits whatever is uncommitted in `worktree`, if anything.
async fn keep_uncommitted(worktree: &Path, agent_id: &str) -> Result<(), WorkspaceError> {
    git::run(worktree, ["add", "--all"]).await?;
    let staged = git::output(worktree, ["diff", "--cached", "--quiet"]).await?;
    if !staged.ok() {
        let message = format!(
            "{agent_id}: work left uncommitted by an interrupted attempt, kept by llm-orchestrate"
        );
        git::run(
            worktree,
            ["commit", "--quiet", "--no-verify", "-m", message.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// Whether a file still holds git conflict markers.
fn has_conflict_markers(path: &Path) -> bool {
    let Ok(text) = std::fs::read(path) else {
        return false;
    };
    let text = String::from_utf8_lossy(&text);
    let mut open = false;
    for line in text.lines() {
        if line.starts_with("<<<<<<< ") {
            open = true;
        } else if open && line.starts_with(">>>>>>> ") {
            return true;
        }
    }
    false
}

/// `path` made absolute against the current folder.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    }
}

/// Run folders inside the repository must not show up as untracked files
/// (nor be committed by an agent working at the root): the folder holding
/// the runs gets a `.gitignore` of `*`.
fn ignore_run_folders(repo: &Path, run_dir: &Path) -> Result<(), WorkspaceError> {
    let Some(runs) = run_dir.parent() else {
        return Ok(());
    };
    let repo = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    std::fs::create_dir_all(runs).map_err(|source| WorkspaceError::Io {
        path: runs.to_path_buf(),
        source,
    })?;
    let runs_canonical = runs.canonicalize().unwrap_or_else(|_| runs.to_path_buf());
    if !runs_canonical.starts_with(&repo) {
        return Ok(());
    }
    let ignore = runs.join(".gitignore");
    if ignore.exists() {
        return Ok(());
    }
    std::fs::write(
        &ignore,
        "# llm-orchestrate run folders (journals, worktrees)\n*\n",
    )
    .map_err(|source| WorkspaceError::Io {
        path: ignore,
        source,
    })
}

#[cfg(test)]
mod tests;
