//! Workspace operations on real repositories in temporary folders.

use super::*;

fn sh(dir: &Path, script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository on branch `main` with one commit holding `svc/a.txt`.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    sh(
        dir.path(),
        "git init -q -b main && mkdir svc && echo one > svc/a.txt && git add . && git commit -qm init",
    );
    dir
}

fn agent(id: &str, scope: Option<&str>) -> Agent {
    let mut json = serde_json::json!({"agentId": id, "workDescription": format!("work of {id}")});
    if let Some(scope) = scope {
        json["scope"] = serde_json::json!(scope);
    }
    serde_json::from_value(json).unwrap()
}

async fn open(repo: &Path) -> Workspaces {
    Workspaces::open(repo, "r1", &repo.join(".llm-orchestrate/runs/r1"), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn agents_work_on_their_own_branches_and_merge_into_integration() {
    let dir = repo();
    let ws = open(dir.path()).await;
    assert_eq!(ws.info().base_branch, "main");
    assert_eq!(ws.info().integration_branch, "llmo/r1/integration");

    let a = agent("A", Some("svc"));
    let prepared = ws.prepare(&a, 1).await.unwrap();
    assert_eq!(prepared.branch, "llmo/r1/A");
    std::fs::write(prepared.path.join("svc/b.txt"), "two\n").unwrap();
    let snap = ws
        .snapshot(&a, &prepared.path, &prepared.start_commit, 1)
        .await
        .unwrap();
    assert_eq!(snap.changed, ["svc/b.txt"]);
    assert!(snap.outside_scope.is_empty());

    assert!(matches!(
        ws.merge("A", &prepared.branch).await.unwrap(),
        MergeOutcome::Merged(_)
    ));
    assert_eq!(
        ws.merge("A", &prepared.branch).await.unwrap(),
        MergeOutcome::AlreadyMerged
    );

    // The next agent starts from the merged work.
    let b = agent("B", None);
    let next = ws.prepare(&b, 1).await.unwrap();
    assert!(next.path.join("svc/b.txt").is_file());
    // The run folder does not show up in the user's checkout.
    assert_eq!(sh(dir.path(), "git status --porcelain"), "");
}

#[tokio::test]
async fn changes_outside_the_scope_are_listed() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let a = agent("A", Some("svc"));
    let p = ws.prepare(&a, 1).await.unwrap();
    std::fs::write(p.path.join("README.md"), "hi\n").unwrap();
    std::fs::write(p.path.join("svc/a.txt"), "changed\n").unwrap();
    let snap = ws.snapshot(&a, &p.path, &p.start_commit, 1).await.unwrap();
    assert_eq!(snap.outside_scope, ["README.md"]);
}

#[tokio::test]
async fn a_conflict_stays_in_progress_until_resolved() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let (a, b) = (agent("A", None), agent("B", None));
    let pa = ws.prepare(&a, 1).await.unwrap();
    let pb = ws.prepare(&b, 1).await.unwrap();
    std::fs::write(pa.path.join("svc/a.txt"), "from A\n").unwrap();
    std::fs::write(pb.path.join("svc/a.txt"), "from B\n").unwrap();
    ws.snapshot(&a, &pa.path, &pa.start_commit, 1)
        .await
        .unwrap();
    ws.snapshot(&b, &pb.path, &pb.start_commit, 1)
        .await
        .unwrap();
    assert!(matches!(
        ws.merge("A", &pa.branch).await.unwrap(),
        MergeOutcome::Merged(_)
    ));
    assert_eq!(
        ws.merge("B", &pb.branch).await.unwrap(),
        MergeOutcome::Conflict(vec!["svc/a.txt".to_string()])
    );
    assert!(ws.pending_merge().await.unwrap().is_some());
    // Markers still there: not concluded.
    assert_eq!(
        ws.conclude_merge().await.unwrap(),
        Err(vec!["svc/a.txt".to_string()])
    );
    std::fs::write(
        ws.info().integration_path.join("svc/a.txt"),
        "from A and B\n",
    )
    .unwrap();
    let commit = ws.conclude_merge().await.unwrap().unwrap();
    assert!(
        git::is_ancestor(dir.path(), &pb.branch, &commit)
            .await
            .unwrap()
    );
    assert!(
        git::is_ancestor(dir.path(), &pa.branch, &commit)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_retry_keeps_the_previous_attempts_commits() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let a = agent("A", None);
    let p = ws.prepare(&a, 1).await.unwrap();
    std::fs::write(p.path.join("x.txt"), "attempt 1\n").unwrap();
    let first = ws.snapshot(&a, &p.path, &p.start_commit, 1).await.unwrap();
    let again = ws.prepare(&a, 2).await.unwrap();
    assert!(
        !again.path.join("x.txt").exists(),
        "each attempt starts clean"
    );
    let saved = git::rev(dir.path(), "refs/llmo/r1/saved/A/2")
        .await
        .unwrap();
    assert_eq!(saved.as_deref(), Some(first.commit.as_str()));
}

#[tokio::test]
async fn landing_fast_forwards_the_checked_out_base_branch() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let a = agent("A", None);
    let p = ws.prepare(&a, 1).await.unwrap();
    std::fs::write(p.path.join("new.txt"), "n\n").unwrap();
    ws.snapshot(&a, &p.path, &p.start_commit, 1).await.unwrap();
    ws.merge("A", &p.branch).await.unwrap();
    let landed = ws
        .land(&dir.path().join(".llm-orchestrate/runs/r1"))
        .await
        .unwrap();
    assert!(
        matches!(
            landed,
            Landing::Landed {
                fast_forward: true,
                ..
            }
        ),
        "{landed:?}"
    );
    assert!(
        dir.path().join("new.txt").is_file(),
        "the user's checkout follows"
    );
}

#[tokio::test]
async fn landing_merges_when_the_base_branch_moved() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let a = agent("A", None);
    let p = ws.prepare(&a, 1).await.unwrap();
    std::fs::write(p.path.join("new.txt"), "n\n").unwrap();
    ws.snapshot(&a, &p.path, &p.start_commit, 1).await.unwrap();
    ws.merge("A", &p.branch).await.unwrap();
    sh(
        dir.path(),
        "echo other > other.txt && git add other.txt && git commit -qm other",
    );
    let landed = ws
        .land(&dir.path().join(".llm-orchestrate/runs/r1"))
        .await
        .unwrap();
    assert!(
        matches!(
            landed,
            Landing::Landed {
                fast_forward: false,
                ..
            }
        ),
        "{landed:?}"
    );
    assert!(dir.path().join("new.txt").is_file());
    assert!(dir.path().join("other.txt").is_file());
}

#[tokio::test]
async fn setup_runs_in_each_new_worktree_and_its_failure_is_reported() {
    let dir = repo();
    let settings = crate::plan::model::Workspace {
        setup: Some(CommandSpec::Shell("echo ready > .setup-done".into())),
        ..Default::default()
    };
    let ws = Workspaces::open(
        dir.path(),
        "r1",
        &dir.path().join(".llmo/r1"),
        Some(&settings),
    )
    .await
    .unwrap();
    let p = ws.prepare(&agent("A", None), 1).await.unwrap();
    assert!(p.path.join(".setup-done").is_file());

    let failing = crate::plan::model::Workspace {
        setup: Some(CommandSpec::Shell("echo broken >&2; exit 4".into())),
        ..Default::default()
    };
    let ws = Workspaces::open(
        dir.path(),
        "r2",
        &dir.path().join(".llmo/r2"),
        Some(&failing),
    )
    .await
    .unwrap();
    let err = ws
        .prepare(&agent("A", None), 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("broken") && err.contains("workspace.setup"),
        "{err}"
    );
}

#[tokio::test]
async fn a_folder_outside_git_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Workspaces::open(dir.path(), "r", &dir.path().join("runs/r"), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, WorkspaceError::NotARepository(_)));
}

#[tokio::test]
async fn clean_removes_worktrees_and_keeps_branches() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let p = ws.prepare(&agent("A", None), 1).await.unwrap();
    let removed = ws.clean().await.unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(!p.path.exists());
    assert!(
        git::rev(dir.path(), "refs/heads/llmo/r1/A")
            .await
            .unwrap()
            .is_some()
    );
}

#[test]
fn markers_are_found_only_as_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "<<<<<<< HEAD\na\n=======\nb\n>>>>>>> x\n").unwrap();
    assert!(has_conflict_markers(&f));
    std::fs::write(&f, "just <<<<<<< text\n").unwrap();
    assert!(!has_conflict_markers(&f));
}

#[tokio::test]
async fn uncommitted_work_of_an_interrupted_attempt_is_kept() {
    let dir = repo();
    let ws = open(dir.path()).await;
    let a = agent("A", None);
    let p = ws.prepare(&a, 1).await.unwrap();
    // The orchestrator died before the snapshot: the file is only in the worktree.
    std::fs::write(p.path.join("half.txt"), "half done\n").unwrap();
    ws.prepare(&a, 2).await.unwrap();
    let saved = git::rev(dir.path(), "refs/llmo/r1/saved/A/2")
        .await
        .unwrap()
        .unwrap();
    let out = git::run(dir.path(), ["show", &format!("{saved}:half.txt")])
        .await
        .unwrap();
    assert_eq!(out.stdout, "half done\n");
}
