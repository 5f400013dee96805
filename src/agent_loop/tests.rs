//! Tests of the tools through [`execute`], and the confinement attack corpus.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::protocol::{MarkerParser, ProtocolEvent, ReportedStatus};
use crate::providers::types::ToolCall;

struct Env {
    _dir: tempfile::TempDir,
    outside: tempfile::TempDir,
    ws: Workspace,
    limits: ToolLimits,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let ws = Workspace::new(dir.path()).unwrap();
    Env {
        _dir: dir,
        outside,
        ws,
        limits: ToolLimits::default(),
    }
}

impl Env {
    async fn run(&self, name: &str, arguments: Value) -> ToolOutcome {
        let call = ToolCall {
            id: "t1".into(),
            name: name.into(),
            arguments,
        };
        let outcome = execute(&self.ws, &call, &self.limits).await;
        assert_eq!(outcome.result.call_id, "t1");
        assert_eq!(outcome.result.name, name);
        outcome
    }

    async fn ok(&self, name: &str, arguments: Value) -> String {
        let outcome = self.run(name, arguments.clone()).await;
        assert!(
            !outcome.result.is_error,
            "{name} {arguments}: {}",
            outcome.result.content
        );
        outcome.result.content
    }

    async fn err(&self, name: &str, arguments: Value) -> String {
        let outcome = self.run(name, arguments.clone()).await;
        assert!(
            outcome.result.is_error,
            "{name} {arguments} should fail: {}",
            outcome.result.content
        );
        outcome.result.content
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.ws.root().join(rel)).unwrap()
    }

    fn put(&self, rel: &str, content: &str) {
        let path = self.ws.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Every path under `dir` (links not followed) with its content or link target.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else if kind.is_dir() {
                out.insert(rel, "/".into());
                stack.push(path);
            } else {
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into(),
                );
            }
        }
    }
    out
}

#[test]
fn seven_tools_with_valid_object_schemas() {
    let specs = tool_specs();
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "search_files",
            "run_command",
            "report_status"
        ]
    );
    for spec in specs.iter() {
        assert!(!spec.description.is_empty());
        assert_eq!(spec.input_schema["type"], "object", "{}", spec.name);
        let properties = spec.input_schema["properties"].as_object().unwrap();
        for required in spec.input_schema["required"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(
                properties.contains_key(required.as_str().unwrap()),
                "{}",
                spec.name
            );
        }
        let validator = jsonschema::validator_for(&spec.input_schema).unwrap();
        assert!(
            !validator.is_valid(&json!({"unexpected": 1})),
            "{}",
            spec.name
        );
    }
    let schema = |name: &str| {
        let spec = specs.iter().find(|s| s.name == name).unwrap();
        jsonschema::validator_for(&spec.input_schema).unwrap()
    };
    assert!(schema("run_command").is_valid(&json!({"argv": ["ls"], "timeout_s": 5})));
    assert!(!schema("run_command").is_valid(&json!({"argv": "ls"})));
    assert!(schema("report_status").is_valid(&json!({"status": "PROGRESS", "progress": 40})));
    assert!(!schema("report_status").is_valid(&json!({"status": "DONE"})));
}

#[tokio::test]
async fn unknown_tool_and_non_object_arguments_are_errors() {
    let e = env();
    assert!(
        e.err("rm_rf", json!({}))
            .await
            .contains("unknown tool `rm_rf`")
    );
    let msg = e.err("read_file", json!([1, 2])).await;
    assert!(msg.contains("JSON object"), "{msg}");
    // Arguments sent as a JSON string are accepted.
    e.put("a.txt", "x");
    assert_eq!(e.ok("read_file", json!("{\"path\": \"a.txt\"}")).await, "x");
}

#[tokio::test]
async fn bad_arguments_name_the_argument() {
    let e = env();
    let cases = [
        ("read_file", json!({}), "`path`"),
        ("read_file", json!({"path": 3}), "`path`"),
        ("read_file", json!({"path": "a", "offset": "x"}), "`offset`"),
        ("read_file", json!({"path": "a", "limit": -1}), "`limit`"),
        ("write_file", json!({"path": "a"}), "`content`"),
        ("write_file", json!({"content": "a"}), "`path`"),
        (
            "edit_file",
            json!({"path": "a", "old_string": "x"}),
            "`new_string`",
        ),
        (
            "edit_file",
            json!({"path": "a", "old_string": "x", "new_string": "y", "replace_all": 2}),
            "`replace_all`",
        ),
        ("list_dir", json!({"path": false}), "`path`"),
        ("search_files", json!({}), "`pattern`"),
        ("search_files", json!({"pattern": "("}), "`pattern`"),
        (
            "search_files",
            json!({"pattern": "x", "glob": "[a"}),
            "`glob`",
        ),
        ("run_command", json!({}), "`argv`"),
        ("run_command", json!({"argv": "ls -l"}), "`argv`"),
        ("run_command", json!({"argv": []}), "`argv`"),
        ("run_command", json!({"argv": ["ls", 1]}), "`argv`"),
        (
            "run_command",
            json!({"argv": ["ls"], "timeout_s": "soon"}),
            "`timeout_s`",
        ),
        ("report_status", json!({}), "`status`"),
        ("report_status", json!({"status": "DONE"}), "`status`"),
        ("report_status", json!({"status": "PROGRESS"}), "`progress`"),
        (
            "report_status",
            json!({"status": "COMPLETE", "blockers": {"a": 1}}),
            "`blockers`",
        ),
    ];
    for (tool, args, needle) in cases {
        let msg = e.err(tool, args.clone()).await;
        assert!(msg.contains(needle), "{tool} {args}: {msg}");
        assert!(msg.starts_with(tool), "{tool}: {msg}");
    }
}

#[tokio::test]
async fn read_file_whole_and_by_lines() {
    let e = env();
    e.put("src/a.txt", "one\ntwo\nthree\nfour\n");
    assert_eq!(
        e.ok("read_file", json!({"path": "src/a.txt"})).await,
        "one\ntwo\nthree\nfour\n"
    );
    assert_eq!(
        e.ok(
            "read_file",
            json!({"path": "src/a.txt", "offset": 2, "limit": 2})
        )
        .await,
        "two\nthree\n[read_file: more lines follow; continue with offset=4]"
    );
    assert_eq!(
        e.ok("read_file", json!({"path": "src/a.txt", "offset": 3}))
            .await,
        "three\nfour\n"
    );
    assert!(
        e.err("read_file", json!({"path": "src/a.txt", "offset": 9}))
            .await
            .contains("only 4 lines")
    );
    assert!(
        e.err("read_file", json!({"path": "nope"}))
            .await
            .contains("does not exist")
    );
    assert!(
        e.err("read_file", json!({"path": "src"}))
            .await
            .contains("directory")
    );
    std::fs::write(e.ws.root().join("bin"), b"\x7fELF\0\0\x01").unwrap();
    assert!(
        e.err("read_file", json!({"path": "bin"}))
            .await
            .contains("binary")
    );
}

#[tokio::test]
async fn read_file_over_the_limit_needs_a_window() {
    let mut e = env();
    e.limits.max_read_bytes = 100;
    let big: String = (1..=50).map(|i| format!("line {i:02}\n")).collect(); // 400 bytes
    e.put("big.txt", &big);
    let msg = e.err("read_file", json!({"path": "big.txt"})).await;
    assert!(
        msg.contains("400 bytes") && msg.contains("100-byte") && msg.contains("offset"),
        "{msg}"
    );
    let part = e
        .ok(
            "read_file",
            json!({"path": "big.txt", "offset": 10, "limit": 3}),
        )
        .await;
    assert_eq!(
        part,
        "line 10\nline 11\nline 12\n[read_file: more lines follow; continue with offset=13]"
    );
    // A window bigger than the limit is cut at the limit, on a line boundary.
    let part = e
        .ok("read_file", json!({"path": "big.txt", "offset": 1}))
        .await;
    assert!(part.starts_with("line 01\n"));
    assert!(
        part.ends_with("[read_file: stopped at the 100-byte read limit; continue with offset=13]"),
        "{part}"
    );
    assert_eq!(part.lines().count(), 13);
}

#[tokio::test]
async fn write_file_creates_parents_and_replaces() {
    let e = env();
    let msg = e
        .ok(
            "write_file",
            json!({"path": "deep/er/new.txt", "content": "hi"}),
        )
        .await;
    assert!(msg.contains("created"), "{msg}");
    assert_eq!(e.file("deep/er/new.txt"), "hi");
    let msg = e
        .ok(
            "write_file",
            json!({"path": "deep/er/new.txt", "content": "bye"}),
        )
        .await;
    assert!(msg.contains("replaced"), "{msg}");
    assert_eq!(e.file("deep/er/new.txt"), "bye");
    assert!(
        e.err("write_file", json!({"path": "deep", "content": "x"}))
            .await
            .contains("directory")
    );
    assert!(
        e.err("write_file", json!({"path": ".", "content": "x"}))
            .await
            .contains("directory")
    );
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(e.ws.root().join("deep/er"))
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[tokio::test]
async fn write_file_keeps_permissions_and_breaks_hard_links() {
    let e = env();
    e.put("run.sh", "#!/bin/sh\n");
    let script = e.ws.root().join("run.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    e.ok(
        "write_file",
        json!({"path": "run.sh", "content": "#!/bin/sh\necho hi\n"}),
    )
    .await;
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );

    e.put("original", "shared");
    std::fs::hard_link(e.ws.root().join("original"), e.ws.root().join("linked")).unwrap();
    e.ok(
        "write_file",
        json!({"path": "linked", "content": "changed"}),
    )
    .await;
    assert_eq!(e.file("linked"), "changed");
    assert_eq!(e.file("original"), "shared");
}

#[tokio::test]
async fn write_file_refuses_content_over_the_limit() {
    let mut e = env();
    e.limits.max_write_bytes = 10;
    let msg = e
        .err("write_file", json!({"path": "a", "content": "01234567890"}))
        .await;
    assert!(msg.contains("11 bytes") && msg.contains("10-byte"), "{msg}");
    assert!(!e.ws.root().join("a").exists());
    e.ok("write_file", json!({"path": "a", "content": "0123456789"}))
        .await;
}

#[tokio::test]
async fn edit_file_replaces_exactly_once_or_all() {
    let e = env();
    e.put("f.rs", "let a = 1;\nlet b = 1;\n");
    let msg = e
        .err(
            "edit_file",
            json!({"path": "f.rs", "old_string": "= 1", "new_string": "= 2"}),
        )
        .await;
    assert!(
        msg.contains("2 times") && msg.contains("replace_all"),
        "{msg}"
    );
    assert_eq!(e.file("f.rs"), "let a = 1;\nlet b = 1;\n");
    e.ok(
        "edit_file",
        json!({"path": "f.rs", "old_string": "let b = 1", "new_string": "let b = 3"}),
    )
    .await;
    assert_eq!(e.file("f.rs"), "let a = 1;\nlet b = 3;\n");
    let msg = e.ok("edit_file", json!({"path": "f.rs", "old_string": "let", "new_string": "const", "replace_all": true})).await;
    assert!(msg.contains("2 occurrences"), "{msg}");
    assert_eq!(e.file("f.rs"), "const a = 1;\nconst b = 3;\n");
    let msg = e
        .err(
            "edit_file",
            json!({"path": "f.rs", "old_string": "missing", "new_string": "x"}),
        )
        .await;
    assert!(msg.contains("not found"), "{msg}");
    let msg = e
        .err(
            "edit_file",
            json!({"path": "nope.rs", "old_string": "a", "new_string": "b"}),
        )
        .await;
    assert!(
        msg.contains("does not exist") && msg.contains("write_file"),
        "{msg}"
    );
    let msg = e
        .err(
            "edit_file",
            json!({"path": "f.rs", "old_string": "", "new_string": "b"}),
        )
        .await;
    assert!(msg.contains("`old_string` is empty"), "{msg}");
}

#[tokio::test]
async fn edit_file_refuses_results_over_the_write_limit() {
    let mut e = env();
    e.limits.max_write_bytes = 20;
    e.put("f", "aaaa");
    let msg = e.err("edit_file", json!({"path": "f", "old_string": "a", "new_string": "bbbbbbbbbb", "replace_all": true})).await;
    assert!(msg.contains("write limit"), "{msg}");
    assert_eq!(e.file("f"), "aaaa");
}

#[tokio::test]
async fn list_dir_is_sorted_with_slashes_on_directories() {
    let e = env();
    e.put("b.txt", "");
    e.put("a/x", "");
    e.put("C", "");
    std::fs::create_dir(e.ws.root().join("d")).unwrap();
    symlink(e.ws.root().join("a"), e.ws.root().join("to_a")).unwrap();
    assert_eq!(e.ok("list_dir", json!({})).await, "C\na/\nb.txt\nd/\nto_a/");
    assert_eq!(e.ok("list_dir", json!({"path": "a"})).await, "x");
    assert!(
        e.ok("list_dir", json!({"path": "d"}))
            .await
            .contains("empty")
    );
    assert!(
        e.err("list_dir", json!({"path": "b.txt"}))
            .await
            .contains("not a directory")
    );
}

#[tokio::test]
async fn search_files_reports_file_line_text() {
    let e = env();
    e.put("src/main.rs", "fn main() {\n    helper();\n}\n");
    e.put("src/lib/util.rs", "pub fn helper() {}\n");
    e.put("notes.md", "call helper here\n");
    e.put(".git/objects/x", "helper in git\n");
    std::fs::write(e.ws.root().join("blob.bin"), b"helper\0\0").unwrap();
    let out = e.ok("search_files", json!({"pattern": "helper"})).await;
    assert_eq!(
        out,
        "notes.md:1: call helper here\nsrc/lib/util.rs:1: pub fn helper() {}\nsrc/main.rs:2:     helper();"
    );
    let out = e
        .ok("search_files", json!({"pattern": "helper", "glob": "*.rs"}))
        .await;
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = e
        .ok(
            "search_files",
            json!({"pattern": "helper", "path": "src", "glob": "lib/**/*.rs"}),
        )
        .await;
    assert_eq!(out, "src/lib/util.rs:1: pub fn helper() {}");
    let out = e
        .ok(
            "search_files",
            json!({"pattern": "fn \\w+\\(", "path": "src/main.rs"}),
        )
        .await;
    assert_eq!(out, "src/main.rs:1: fn main() {");
    let out = e.ok("search_files", json!({"pattern": "absent"})).await;
    assert!(out.starts_with("no matches"), "{out}");
}

#[tokio::test]
async fn search_files_results_are_capped() {
    let mut e = env();
    e.limits.max_search_results = 5;
    e.put("many.txt", &"hit\n".repeat(50));
    let out = e.ok("search_files", json!({"pattern": "hit"})).await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("many.txt:")).count(),
        5
    );
    assert!(out.contains("stopped at 5 matches"), "{out}");
}

#[tokio::test]
async fn run_command_runs_argv_in_the_root_without_a_shell() {
    let e = env();
    let out = e.ok("run_command", json!({"argv": ["pwd"]})).await;
    assert_eq!(out, format!("exit code: 0\n{}\n", e.ws.root().display()));
    let out = e
        .ok(
            "run_command",
            json!({"argv": ["echo", "$HOME", ";", "ls", "*"]}),
        )
        .await;
    assert_eq!(out, "exit code: 0\n$HOME ; ls *\n");
    let out = e
        .ok(
            "run_command",
            json!({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]}),
        )
        .await;
    assert!(
        out.starts_with("exit code: 3\n") && out.contains("out\n") && out.contains("err\n"),
        "{out}"
    );
    // Stdin is empty: `cat` ends at once.
    let out = e.ok("run_command", json!({"argv": ["cat"]})).await;
    assert_eq!(out, "exit code: 0\n(no output)");
    let msg = e
        .err(
            "run_command",
            json!({"argv": ["definitely-not-a-program-xyz"]}),
        )
        .await;
    assert!(msg.contains("not found"), "{msg}");
}

#[tokio::test]
async fn run_command_output_is_capped_keeping_head_and_tail() {
    let mut e = env();
    e.limits.max_output_bytes = 1000;
    let out = e
        .ok("run_command", json!({"argv": ["sh", "-c", "seq 1 20000"]}))
        .await;
    assert!(out.starts_with("exit code: 0\n1\n2\n3\n"), "{}", &out[..50]);
    assert!(out.trim_end().ends_with("19999\n20000"));
    assert!(out.contains("output truncated"), "{out}");
    assert!(out.len() < 1200, "{}", out.len());
}

fn process_alive(pid: i32) -> bool {
    // A zombie (not yet reaped by its new parent) counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

async fn wait_dead(pid: i32) -> bool {
    for _ in 0..50 {
        if !process_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn run_command_timeout_kills_the_whole_group() {
    let mut e = env();
    e.limits.command_timeout = Duration::from_secs(30);
    let started = Instant::now();
    let msg = e
        .err("run_command", json!({"argv": ["sh", "-c", "sleep 60 & echo $! > bg.pid; echo begun; sleep 60"], "timeout_s": 1}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        msg.contains("timed out after 1 s") && msg.contains("begun"),
        "{msg}"
    );
    let pid: i32 = e.file("bg.pid").trim().parse().unwrap();
    assert!(wait_dead(pid).await, "background process {pid} survived");
}

#[tokio::test]
async fn run_command_timeout_is_capped_by_the_limit() {
    let mut e = env();
    e.limits.command_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let msg = e
        .err(
            "run_command",
            json!({"argv": ["sleep", "30"], "timeout_s": 600}),
        )
        .await;
    assert!(msg.contains("timed out after 1 s"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn run_command_background_children_do_not_outlive_it() {
    let e = env();
    let started = Instant::now();
    let out = e
        .ok(
            "run_command",
            json!({"argv": ["sh", "-c", "sleep 60 & echo $! > bg.pid; echo done"]}),
        )
        .await;
    assert!(out.starts_with("exit code: 0\ndone"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid: i32 = e.file("bg.pid").trim().parse().unwrap();
    assert!(wait_dead(pid).await, "background process {pid} survived");
}

/// Events the marker parser gives for `text`.
fn marker_events(text: &str) -> Vec<ProtocolEvent> {
    let mut parser = MarkerParser::new();
    let mut events = Vec::new();
    parser.feed(text.as_bytes(), &mut events);
    parser.finish(&mut events);
    events
}

#[tokio::test]
async fn report_status_matches_the_text_markers() {
    let e = env();
    let cases = [
        (json!({"status": "STARTED"}), "[STATUS: STARTED]\n"),
        (
            json!({"status": "PROGRESS", "progress": 40, "text": " halfway **"}),
            "[STATUS: PROGRESS-40%] halfway **\n",
        ),
        (
            json!({"status": "progress", "progress": 250}),
            "[STATUS: PROGRESS-250%]\n",
        ),
        (
            json!({"status": "COMPLETE", "text": "all tests pass"}),
            "[STATUS: COMPLETE] all tests pass\n",
        ),
        (
            json!({"status": "FAILED", "text": "build broken"}),
            "[STATUS: FAILED] build broken\n",
        ),
        (
            json!({"status": "BLOCKED", "text": "needs the API key"}),
            "[STATUS: BLOCKED] needs the API key\n",
        ),
    ];
    for (args, marker) in cases {
        let outcome = e.run("report_status", args.clone()).await;
        assert!(!outcome.result.is_error, "{}", outcome.result.content);
        assert_eq!(outcome.events, marker_events(marker), "{args}");
    }
    // With tasks and blockers: a Status event and a Report, as a marker followed by a YAML report.
    let outcome = e
        .run(
            "report_status",
            json!({
                "status": "PROGRESS", "progress": 60, "text": "models done",
                "agentId": "AUTH_IMPL",
                "completedTasks": ["models", "migrations"],
                "remainingTasks": ["handlers"],
                "blockers": "none"
            }),
        )
        .await;
    let expected = marker_events(
        "[STATUS: PROGRESS-60%] models done\n\
         agentId: AUTH_IMPL\n\
         status: PROGRESS-60%\n\
         completedTasks:\n  - models\n  - migrations\n\
         remainingTasks:\n  - handlers\n\
         blockers: none\n",
    );
    assert_eq!(expected.len(), 2, "{expected:?}");
    assert_eq!(outcome.events, expected);
    let ProtocolEvent::Report(report) = &outcome.events[1] else {
        panic!("no report: {:?}", outcome.events);
    };
    assert_eq!(report.status, Some(ReportedStatus::Progress(60)));
    assert!(report.blockers.is_empty());
    // Other tools produce no events.
    assert!(e.run("list_dir", json!({})).await.events.is_empty());
}

/// The attack corpus: nothing outside the workspace is written, and nothing
/// outside is read.
#[tokio::test]
async fn attack_corpus_nothing_written_or_read_outside() {
    let mut e = env();
    e.limits.max_read_bytes = 1000;
    e.limits.max_write_bytes = 1000;
    let outside = e.outside.path().canonicalize().unwrap();
    let outside_name = outside.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(outside.join("secret.txt"), "TOP SECRET\n").unwrap();
    std::fs::create_dir(outside.join("sub")).unwrap();
    std::fs::write(outside.join("sub/inner.txt"), "TOP SECRET inner\n").unwrap();
    let root = e.ws.root().to_path_buf();
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    symlink(&outside, root.join("link")).unwrap();
    symlink(outside.join("secret.txt"), root.join("evil")).unwrap();
    symlink(outside.join("planted.txt"), root.join("dangling")).unwrap();
    symlink("../..", root.join("a/up")).unwrap();
    symlink("/", root.join("a/rootlink")).unwrap();
    e.put(".git/config", "[core]\n");
    e.put(".git/HEAD", "ref: refs/heads/main\n");
    e.put("huge.txt", &"x".repeat(5000));
    let before_outside = snapshot(&outside);
    let git_before = snapshot(&root.join(".git"));

    let abs_outside = outside.join("pwned.txt").display().to_string();
    let escape_to_outside = format!("../{outside_name}/pwned.txt");
    let write_paths: Vec<String> = vec![
        "/etc/passwd".into(),
        abs_outside.clone(),
        "../x".into(),
        "a/../../x".into(),
        "a/b/../../../x".into(),
        escape_to_outside.clone(),
        "link/file".into(),
        "link/secret.txt".into(),
        "link/sub/new/deeper.txt".into(),
        "link".into(),
        "evil".into(),
        "dangling".into(),
        "dangling/x".into(),
        "a/up/x".into(),
        format!("a/up/{outside_name}/pwned.txt"),
        "a/rootlink/tmp/pwned.txt".into(),
        "~/.ssh/x".into(),
        "~root/.ssh/authorized_keys".into(),
        "a\0b".into(),
        "link\0/x".into(),
        ".git/config".into(),
        ".git/hooks/pre-commit".into(),
        "a/../.git/HEAD".into(),
        ".GIT/config".into(),
    ];
    for path in &write_paths {
        e.err("write_file", json!({"path": path, "content": "PWNED"}))
            .await;
        e.err(
            "edit_file",
            json!({"path": path, "old_string": "TOP SECRET", "new_string": "PWNED", "replace_all": true}),
        )
        .await;
    }
    // Content over the write limit, at an innocent path.
    let msg = e
        .err(
            "write_file",
            json!({"path": "ok.txt", "content": "y".repeat(1001)}),
        )
        .await;
    assert!(msg.contains("write limit"), "{msg}");
    assert!(!root.join("ok.txt").exists());
    // An edit growing a file past the limit.
    e.put("small.txt", "z");
    e.err(
        "edit_file",
        json!({"path": "small.txt", "old_string": "z", "new_string": "z".repeat(1001)}),
    )
    .await;
    assert_eq!(e.file("small.txt"), "z");

    let read_paths: Vec<String> = vec![
        "/etc/passwd".into(),
        outside.join("secret.txt").display().to_string(),
        "../x".into(),
        "a/../../x".into(),
        "a/b/../../../x".into(),
        format!("../{outside_name}/secret.txt"),
        "link/secret.txt".into(),
        "link/sub/inner.txt".into(),
        "evil".into(),
        format!("a/up/{outside_name}/secret.txt"),
        "a/rootlink/etc/passwd".into(),
        "~/.ssh/id_rsa".into(),
        "evil\0".into(),
    ];
    for path in &read_paths {
        let msg = e.err("read_file", json!({"path": path})).await;
        assert!(
            !msg.contains("TOP SECRET") && !msg.contains("root:"),
            "{path}: {msg}"
        );
        let msg = e
            .err("read_file", json!({"path": path, "offset": 1, "limit": 10}))
            .await;
        assert!(!msg.contains("TOP SECRET"), "{path}: {msg}");
    }
    // A file over the read limit is refused whole.
    assert!(
        e.err("read_file", json!({"path": "huge.txt"}))
            .await
            .contains("read limit")
    );
    for path in ["link", "link/sub", "/", "..", "a/up", "a/rootlink", "/tmp"] {
        e.err("list_dir", json!({"path": path})).await;
        e.err("search_files", json!({"pattern": "SECRET", "path": path}))
            .await;
    }
    // Searching the workspace does not follow links out of it.
    let out = e
        .ok("search_files", json!({"pattern": "SECRET|root:"}))
        .await;
    assert!(out.starts_with("no matches"), "{out}");

    assert_eq!(
        snapshot(&outside),
        before_outside,
        "something was written outside"
    );
    assert_eq!(snapshot(&root.join(".git")), git_before, ".git was changed");
    assert!(!root.parent().unwrap().join("x").exists());
    assert!(!root.join("~").exists());
    // Links inside the workspace still work.
    e.put("real/f.txt", "inside");
    symlink(root.join("real"), root.join("alias")).unwrap();
    assert_eq!(
        e.ok("read_file", json!({"path": "alias/f.txt"})).await,
        "inside"
    );
    e.ok(
        "write_file",
        json!({"path": "alias/g.txt", "content": "via link"}),
    )
    .await;
    assert_eq!(e.file("real/g.txt"), "via link");
}
