//! An agent printing 1 GiB keeps the orchestrator's memory bounded: the whole
//! run (binary, journal, log writer, marker parser, tail) is measured by the
//! peak RSS of the orchestrator process itself.

use std::process::{Command, Stdio};

#[test]
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
fn an_agent_printing_one_gibibyte_keeps_the_orchestrator_small() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    // 32-byte lines divide 1 GiB exactly, so the marker starts its own line.
    std::fs::write(
        &plan,
        serde_json::json!({
            "orchestrationId": "loud",
            "waves": [{"waveId": "w", "agents": [{
                "agentId": "LOUD",
                "workDescription": "print a lot",
                "command": ["sh", "-c", "yes 'some plain log line with words.' | head -c 1073741824; echo '[STATUS: COMPLETE] done'"]
            }]}]
        })
        .to_string(),
    )
    .unwrap();
    let child = Command::new(assert_cmd::cargo::cargo_bin("llm-orchestrate"))
        .args(["run", "--no-worktrees", "--plan"])
        .arg(&plan)
        .arg("--run-dir")
        .arg(dir.path().join("runs"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "run failed: {status}"
    );
    let peak_mib = usage.ru_maxrss as f64 / 1024.0;
    eprintln!("orchestrator peak RSS with 1 GiB of agent output: {peak_mib:.1} MiB");
    assert!(peak_mib < 64.0, "peak RSS {peak_mib:.1} MiB");
    let runs = dir.path().join("runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = run.join("agents/LOUD/output.log");
    assert!(std::fs::metadata(&log).unwrap().len() >= 1 << 30);
    std::fs::remove_file(log).unwrap();
}
