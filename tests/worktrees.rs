//! Runs in real git repositories: one worktree and branch per agent, waves
//! building on merged work, scope checks, merge conflicts under each
//! `conflictHandling`, `merge-all`, `clean`. Agents are shell commands that
//! edit files, so these tests need only git.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;

fn bin() -> Command {
    Command::cargo_bin("llm-orchestrate").expect("binary built")
}

fn sh(dir: &Path, script: &str) -> String {
    let out = StdCommand::new("sh")
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
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository on `main` with `shared.txt` and `svc/` committed; the plan goes next to it.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    sh(
        dir.path(),
        "git init -q -b main && mkdir -p svc/a svc/b && echo base > shared.txt && echo a > svc/a/keep && echo b > svc/b/keep && git add . && git commit -qm init",
    );
    dir
}

fn agent(id: &str, scope: Option<&str>, deps: &[&str], script: &str) -> serde_json::Value {
    let mut a = serde_json::json!({
        "agentId": id,
        "workDescription": format!("work of {id}"),
        "dependencies": deps,
        "command": ["sh", "-c", script],
    });
    if let Some(scope) = scope {
        a["scope"] = scope.into();
    }
    a
}

fn write_plan(dir: &Path, waves: Vec<serde_json::Value>, extra: serde_json::Value) -> PathBuf {
    let mut plan = serde_json::json!({"orchestrationId": "wt", "waves": waves});
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            plan[k] = v;
        }
    }
    // Outside the repository, so the plan file is not part of the user's checkout.
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    path
}

fn wave(id: &str, agents: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"waveId": id, "agents": agents})
}

/// Runs the plan with the repository as the workspace; returns (exit code, stdout).
fn run(repo: &Path, plan: &Path, extra: &[&str]) -> (i32, String) {
    let out = bin()
        .current_dir(repo)
        .args(["run", "--plan"])
        .arg(plan)
        .args(["--workdir", ".", "--retry-base", "10ms"])
        .args(extra)
        .env_remove("CI")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        format!("{stdout}\n{stderr}"),
    )
}

fn resume(repo: &Path) -> (i32, String) {
    let out = bin()
        .current_dir(repo)
        .args(["resume", "--workdir", "."])
        .env_remove("CI")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        format!("{stdout}\n{stderr}"),
    )
}

fn run_dir(repo: &Path) -> PathBuf {
    let runs = repo.join(".llm-orchestrate/runs");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries.pop().expect("a run folder")
}

fn run_id(repo: &Path) -> String {
    run_dir(repo)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn report(repo: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir(repo).join("report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn outcome_of(repo: &Path, id: &str) -> String {
    report(repo)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["outcome"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Every branch of the run is reachable from `target` (no commit is lost).
fn assert_branches_reachable(repo: &Path, agents: &[&str], target: &str) {
    let id = run_id(repo);
    for agent in agents {
        let branch = format!("llmo/{id}/{agent}");
        sh(
            repo,
            &format!("git merge-base --is-ancestor {branch} {target}"),
        );
    }
}

#[test]
fn wave_two_starts_from_wave_ones_merged_work_and_merge_all_lands_it() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        plan_dir.path(),
        vec![
            wave(
                "build",
                vec![agent(
                    "A",
                    Some("svc/a"),
                    &[],
                    "echo 'fn a() {}' > lib.rs; echo '[STATUS: COMPLETE] wrote lib.rs'",
                )],
            ),
            wave(
                "use",
                vec![agent(
                    "B",
                    Some("svc/b"),
                    &["A"],
                    // Runs in svc/b of its own worktree: wave 1's file must be there.
                    "test -f ../a/lib.rs || { echo '[STATUS: FAILED] no lib.rs from wave 1'; exit 1; }; cp ../a/lib.rs copy.rs; echo '[STATUS: COMPLETE]'",
                )],
            ),
        ],
        serde_json::json!({"qualityGates": {"final": {"gates": [], "successAction": "merge-all"}}}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 0, "{out}");
    // merge-all landed everything on main, in the user's checkout too.
    assert!(repo.path().join("svc/a/lib.rs").is_file(), "{out}");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("svc/b/copy.rs")).unwrap(),
        "fn a() {}\n"
    );
    assert_branches_reachable(repo.path(), &["A", "B"], "main");
    // Merged agents' worktrees are gone, their branches stay; the checkout is clean.
    let dir = run_dir(repo.path());
    assert!(!dir.join("worktrees/A").exists());
    assert!(!dir.join("worktrees/B").exists());
    assert_eq!(sh(repo.path(), "git status --porcelain"), "");
}

#[test]
fn files_changed_outside_the_scope_fail_the_agent_under_fail() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        plan_dir.path(),
        vec![
            wave(
                "w",
                vec![agent(
                    "A",
                    Some("svc/a"),
                    &[],
                    "echo ok > mine.txt; echo meddled > ../../shared.txt; echo '[STATUS: COMPLETE]'",
                )],
            ),
            wave(
                "w2",
                vec![agent("B", None, &["A"], "echo '[STATUS: COMPLETE]'")],
            ),
        ],
        serde_json::json!({"coordinationRules": {"conflictHandling": "fail"}}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outside its scope"), "{out}");
    assert!(out.contains("shared.txt"), "{out}");
    assert_eq!(outcome_of(repo.path(), "A"), "failed");
    assert_eq!(outcome_of(repo.path(), "B"), "blocked");
    // The work is kept on the branch and in the worktree for inspection.
    let id = run_id(repo.path());
    assert_eq!(
        sh(repo.path(), &format!("git show llmo/{id}/A:shared.txt")),
        "meddled"
    );
    assert!(run_dir(repo.path()).join("worktrees/A").is_dir());
    // The user's files are untouched.
    assert_eq!(
        std::fs::read_to_string(repo.path().join("shared.txt")).unwrap(),
        "base\n"
    );
    // `clean` removes the worktrees, never the branches.
    let out = bin()
        .current_dir(repo.path())
        .args(["clean"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!run_dir(repo.path()).join("worktrees/A").exists());
    sh(repo.path(), &format!("git rev-parse --verify llmo/{id}/A"));
}

#[test]
fn outside_scope_pauses_under_pause_and_resolve_and_resume_rechecks() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        plan_dir.path(),
        vec![wave(
            "w",
            vec![agent(
                "A",
                Some("svc/a"),
                &[],
                "echo ok > mine.txt; echo meddled > ../../shared.txt; echo '[STATUS: COMPLETE]'",
            )],
        )],
        serde_json::json!({}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("revert those files"), "{out}");
    // A person reverts the file on the agent's branch, then resumes.
    let worktree = run_dir(repo.path()).join("worktrees/A");
    sh(
        &worktree,
        "git checkout HEAD~1 -- shared.txt && git commit -qm 'revert out-of-scope change'",
    );
    let (code, out) = resume(repo.path());
    assert_eq!(code, 0, "{out}");
    let id = run_id(repo.path());
    sh(
        repo.path(),
        &format!("git merge-base --is-ancestor llmo/{id}/A llmo/{id}/integration"),
    );
}

fn conflicting_wave(script_b: &str) -> Vec<serde_json::Value> {
    vec![wave(
        "w",
        vec![
            agent(
                "A",
                None,
                &[],
                "printf 'from A\\n' > shared.txt; echo '[STATUS: COMPLETE]'",
            ),
            agent("B", None, &[], script_b),
        ],
    )]
}

#[test]
fn a_merge_conflict_pauses_and_resume_concludes_the_fixed_merge() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        plan_dir.path(),
        conflicting_wave("printf 'from B\\n' > shared.txt; echo '[STATUS: COMPLETE]'"),
        serde_json::json!({"coordinationRules": {"conflictHandling": "pause-and-resolve"}}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("merge conflict"), "{out}");
    assert!(out.contains("shared.txt"), "{out}");
    // Resuming before fixing anything pauses again.
    let (code, out) = resume(repo.path());
    assert_eq!(code, 3, "{out}");
    // A person fixes the file in the integration worktree.
    let integration = run_dir(repo.path()).join("integration");
    std::fs::write(integration.join("shared.txt"), "from A and B\n").unwrap();
    sh(&integration, "git add shared.txt");
    let (code, out) = resume(repo.path());
    assert_eq!(code, 0, "{out}");
    let id = run_id(repo.path());
    let integration_branch = format!("llmo/{id}/integration");
    assert_branches_reachable(repo.path(), &["A", "B"], &integration_branch);
    assert_eq!(
        sh(
            repo.path(),
            &format!("git show {integration_branch}:shared.txt")
        ),
        "from A and B"
    );
}

#[test]
fn a_merge_conflict_under_resolve_with_agent_is_resolved_by_a_resolver_agent() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    // The resolver runs the agent's command again with LLMO_RESOLVING=1 in
    // the integration worktree, where the conflict markers are.
    let script_b = "if [ -n \"$LLMO_RESOLVING\" ]; then grep -q '<<<<<<<' shared.txt && printf 'resolved: %s\\n' \"$LLMO_CONFLICT_FILES\" > shared.txt; echo '[STATUS: COMPLETE] resolved'; else printf 'from B\\n' > shared.txt; echo '[STATUS: COMPLETE]'; fi";
    let plan = write_plan(
        plan_dir.path(),
        conflicting_wave(script_b),
        serde_json::json!({"coordinationRules": {"conflictHandling": "resolve-with-agent"}}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 0, "{out}");
    let id = run_id(repo.path());
    let integration_branch = format!("llmo/{id}/integration");
    assert_branches_reachable(repo.path(), &["A", "B"], &integration_branch);
    assert_eq!(
        sh(
            repo.path(),
            &format!("git show {integration_branch}:shared.txt")
        ),
        "resolved: shared.txt"
    );
    assert!(out.contains("resolved by resolver agent"), "{out}");
}

#[test]
fn a_merge_conflict_under_fail_fails_the_second_agent() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        plan_dir.path(),
        conflicting_wave("printf 'from B\\n' > shared.txt; echo '[STATUS: COMPLETE]'"),
        serde_json::json!({"coordinationRules": {"conflictHandling": "fail"}}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(outcome_of(repo.path(), "A"), "completed");
    assert_eq!(outcome_of(repo.path(), "B"), "failed");
    // The failed side's commit is still on its branch.
    let id = run_id(repo.path());
    assert_eq!(
        sh(repo.path(), &format!("git show llmo/{id}/B:shared.txt")),
        "from B"
    );
}

#[test]
fn scopes_outside_a_repository_are_refused_unless_running_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        vec![wave(
            "w",
            vec![agent("A", Some("svc/a"), &[], "echo '[STATUS: COMPLETE]'")],
        )],
        serde_json::json!({}),
    );
    let (code, out) = run(dir.path(), &plan, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not inside a git repository"), "{out}");
    assert!(out.contains("--no-worktrees"), "{out}");
    let (code, out) = run(dir.path(), &plan, &["--no-worktrees"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn in_a_sequential_wave_each_agent_starts_from_the_previous_agents_work() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let mut w = wave(
        "seq",
        vec![
            agent(
                "FIRST",
                None,
                &[],
                "echo one > step1.txt; echo '[STATUS: COMPLETE]'",
            ),
            agent(
                "SECOND",
                None,
                &["FIRST"],
                "test -f step1.txt || exit 1; echo two > step2.txt; echo '[STATUS: COMPLETE]'",
            ),
        ],
    );
    w["parallel"] = false.into();
    let plan = write_plan(plan_dir.path(), vec![w], serde_json::json!({}));
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 0, "{out}");
    let id = run_id(repo.path());
    assert_eq!(
        sh(
            repo.path(),
            &format!("git show llmo/{id}/integration:step2.txt")
        ),
        "two"
    );
}

#[test]
fn the_report_shows_branches_merges_and_conflicts() {
    let repo = repo();
    let plan_dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        plan_dir.path(),
        conflicting_wave("printf 'from B\\n' > shared.txt; echo '[STATUS: COMPLETE]'"),
        serde_json::json!({"coordinationRules": {"conflictHandling": "pause-and-resolve"}}),
    );
    let (code, out) = run(repo.path(), &plan, &[]);
    assert_eq!(code, 3, "{out}");
    let report = report(repo.path());
    let id = run_id(repo.path());
    assert_eq!(report["workspace"]["baseBranch"], "main");
    let agents = report["agents"].as_array().unwrap();
    let a = agents.iter().find(|a| a["id"] == "A").unwrap();
    let b = agents.iter().find(|a| a["id"] == "B").unwrap();
    assert_eq!(a["git"]["branch"], format!("llmo/{id}/A"));
    assert!(a["git"]["merged"].is_string(), "{a}");
    assert_eq!(b["git"]["conflict"]["kind"], "merge");
    assert_eq!(b["git"]["conflict"]["files"][0], "shared.txt");
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(repo.path()).join("status.json")).unwrap(),
    )
    .unwrap();
    assert!(
        status["risks"]
            .to_string()
            .contains("B: merge conflict with the integration branch (shared.txt)"),
        "{status}"
    );
    assert!(
        status["recommendations"].to_string().contains("git add"),
        "{status}"
    );
    let markdown = std::fs::read_to_string(run_dir(repo.path()).join("report.md")).unwrap();
    assert!(markdown.contains("## Git"), "{markdown}");
    assert!(
        markdown.contains("merge conflict with the integration branch: shared.txt"),
        "{markdown}"
    );
}
