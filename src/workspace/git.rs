//! Running `git` as a child process: the real git of the user's machine, with
//! the errors it prints kept for messages.
//!
//! Commits the orchestrator makes (agent snapshots, merges) are authored by
//! `llm-orchestrate` (`GIT_AUTHOR_*`/`GIT_COMMITTER_*` set on the command), so
//! they work on machines without a git identity and are easy to tell apart
//! from the agents' own commits. Hooks are skipped for them (`--no-verify`):
//! the orchestrator's own quality gates check the work instead.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("cannot run git (is it installed?): {0}")]
    Spawn(#[source] std::io::Error),
    /// git ran and failed.
    #[error("`git {args}` in {dir} failed ({status}): {stderr}")]
    Failed {
        /// The arguments, joined for display.
        args: String,
        /// Where it ran.
        dir: PathBuf,
        /// Exit status, as text.
        status: String,
        /// What git said (trimmed).
        stderr: String,
    },
}

/// What a git command printed.
#[derive(Debug, Clone)]
pub struct GitOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl GitOutput {
    /// Whether git exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Standard output without its trailing newline.
    pub fn trimmed(&self) -> &str {
        self.stdout.trim_end()
    }

    /// Standard output as lines, empty ones dropped.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Name and email of the commits the orchestrator makes itself.
pub const AUTHOR_NAME: &str = "llm-orchestrate";
/// Email of the commits the orchestrator makes itself.
pub const AUTHOR_EMAIL: &str = "llm-orchestrate@localhost";

/// Runs `git -C dir args…` and returns what it printed, whatever its exit code.
pub async fn output<I, S>(dir: &Path, args: I) -> Result<GitOutput, GitError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_EDITOR", "true")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(GitError::Spawn)?;
    Ok(GitOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `git -C dir args…` and fails unless it exits 0.
pub async fn run<I, S>(dir: &Path, args: I) -> Result<GitOutput, GitError>
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<OsStr>,
{
    let out = output(dir, args.clone()).await?;
    if out.ok() {
        return Ok(out);
    }
    Err(GitError::Failed {
        args: args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        dir: dir.to_path_buf(),
        status: out
            .code
            .map_or_else(|| "killed".to_string(), |c| format!("exit {c}")),
        stderr: out.stderr.trim().to_string(),
    })
}

/// The commit a revision names, or `None` when it names nothing.
pub async fn rev(dir: &Path, revision: &str) -> Result<Option<String>, GitError> {
    let spec = format!("{revision}^{{commit}}");
    let out = output(dir, ["rev-parse", "--verify", "--quiet", spec.as_str()]).await?;
    Ok(out.ok().then(|| out.trimmed().to_string()))
}

/// Whether `ancestor` is reachable from `descendant`.
pub async fn is_ancestor(dir: &Path, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
    let out = output(dir, ["merge-base", "--is-ancestor", ancestor, descendant]).await?;
    Ok(out.ok())
}

/// The top folder of the repository holding `dir`, or `None` when it is not in one.
///
/// When neither `dir` nor any folder above it has a `.git` entry (and the
/// environment sets no `GIT_DIR` or `GIT_WORK_TREE`), git could not find a
/// repository either, so the answer is `None` without starting git (a few
/// milliseconds at the start of every run outside a repository). Otherwise
/// `git rev-parse --show-toplevel` decides, with all of git's own rules.
pub async fn toplevel(dir: &Path) -> Result<Option<PathBuf>, GitError> {
    if !may_be_in_repository(dir) {
        return Ok(None);
    }
    let out = output(dir, ["rev-parse", "--show-toplevel"]).await?;
    Ok(out.ok().then(|| PathBuf::from(out.trimmed())))
}

/// Whether git might find a repository from `dir`: a `.git` entry (folder or
/// file) in `dir` or above it, or `GIT_DIR`/`GIT_WORK_TREE` set. `true` when in doubt.
fn may_be_in_repository(dir: &Path) -> bool {
    if std::env::var_os("GIT_DIR").is_some() || std::env::var_os("GIT_WORK_TREE").is_some() {
        return true;
    }
    // Physical folders, as git walks them (a symlink may lead into a repository).
    let Ok(physical) = std::fs::canonicalize(dir) else {
        return true;
    };
    physical
        .ancestors()
        .any(|folder| std::fs::symlink_metadata(folder.join(".git")).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_carry_what_git_said() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(dir.path(), ["rev-parse", "HEAD"]).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("git rev-parse HEAD"), "{text}");
        assert!(text.contains("not a git repository"), "{text}");
        assert_eq!(toplevel(dir.path()).await.unwrap(), None);
        assert!(!may_be_in_repository(dir.path()));
    }

    #[tokio::test]
    async fn a_folder_reached_through_a_symlink_is_found_in_its_repository() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("sub/deeper")).unwrap();
        run(&repo, ["init", "--quiet"]).await.unwrap();
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir(&outside).unwrap();
        let link = outside.join("link");
        std::os::unix::fs::symlink(repo.join("sub"), &link).unwrap();
        assert!(may_be_in_repository(&link.join("deeper")));
        let top = toplevel(&link.join("deeper")).await.unwrap().unwrap();
        assert_eq!(
            std::fs::canonicalize(top).unwrap(),
            std::fs::canonicalize(&repo).unwrap()
        );
        assert!(!may_be_in_repository(&outside));
        assert_eq!(toplevel(&outside).await.unwrap(), None);
    }
}
