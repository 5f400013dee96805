//! The README's main example, `examples/claude-demo/run.sh`, runs as written:
//! three Claude Code agents in two waves against the scripted server, and
//! merge-all lands wave 2's document built from wave 1's merged code.
//! Under CI a missing Claude Code is a failure; elsewhere the test skips.

use std::path::Path;
use std::process::Command;

#[test]
fn the_readme_demo_runs_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let claude = root.join(".ci/clis/node_modules/.bin/claude");
    if !claude.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "claude is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: claude is not installed in .ci/clis");
        return;
    }
    let demo = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root.join("examples/claude-demo/run.sh"))
        .env("LLMO_BIN", env!("CARGO_BIN_EXE_llm-orchestrate"))
        .env("LLMO_DEMO_DIR", demo.path())
        .env_remove("CI")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let usage = std::fs::read_to_string(demo.path().join("repo/docs/USAGE.md")).unwrap();
    assert!(usage.contains("def greet(name):"), "{usage}");
    assert!(usage.contains("print(greet(\"world\"))"), "{usage}");
    assert!(text.contains("merged all work into main"), "{text}");
}
