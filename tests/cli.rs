//! CLI tests: every subcommand and exit code, run on the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("llm-orchestrate").expect("binary built")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

#[test]
fn validate_accepts_every_example() {
    for name in [
        "seed-plan.json",
        "three-agents.yaml",
        "full-plan.json",
        "shell-demo.json",
    ] {
        bin()
            .args(["validate"])
            .arg(example(name))
            .assert()
            .code(0)
            .stdout(predicate::str::contains(": valid ("));
    }
}

#[test]
fn validate_reports_every_problem_with_path_and_line_col() {
    let assert = bin()
        .arg("validate")
        .arg(fixture("invalid-plan.json"))
        .assert()
        .code(2);
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    for expected in [
        "invalid-plan.json:3:15: platform: unknown value \"cluade\"",
        "(did you mean \"claude\"?)",
        "waves[0].agents[0].estimatedDuration: invalid duration \"2x\"",
        "warning[scope-overlap]",
        "AUTH_IMPL and AUTH_TOKENS both write auth-service/",
        "waves[0].agents[1].dependencies[0]: depends on \"AUTH_IMPL\" in the same parallel wave",
        "in later wave",
        "dependency cycle: LOOP_A -> LOOP_B -> LOOP_A",
        "waves[0].agents[2].maxRetries: expected a whole number, found string \"three\"",
        "waves[1].waveId: duplicate waveId \"wave-1\"",
        "invalid-plan.json:18:83: waves[1].agents[0].dependencies[1]: unknown agent \"AUTH_IMLP\" (did you mean \"AUTH_IMPL\"?)",
        "waves[1].agents[0].dependencies[2]: agent \"LOOP_B\" depends on itself",
        "unknown gate \"unit-test\" (did you mean \"unit-tests\"?)",
        "waves[1].agents[1]: missing required field \"workDescription\"",
        "duplicate agentId \"AUTH_IMPL\"",
        "unknown field \"workDescriptoin\" (did you mean \"workDescription\"?)",
        "coordinationRules.failureStrategy: unknown value \"stop-everything\"",
        "invalid, 13 errors, 2 warnings",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn validate_json_lists_located_diagnostics() {
    let assert = bin()
        .args(["validate", "--json"])
        .arg(fixture("invalid-plan.json"))
        .assert()
        .code(2);
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 13);
    assert_eq!(report["warnings"], 2);
    let diags = report["diagnostics"].as_array().unwrap();
    assert!(
        diags
            .iter()
            .all(|d| d["line"].as_u64().is_some() && d["column"].as_u64().is_some())
    );
    let dep = diags
        .iter()
        .find(|d| d["code"] == "unknown-dependency")
        .unwrap();
    assert_eq!(dep["path"], "waves[1].agents[0].dependencies[1]");
    assert_eq!(dep["line"], 18);
    assert!(dep["file"].as_str().unwrap().ends_with("invalid-plan.json"));
}

#[test]
fn yaml_plans_get_the_same_diagnostics_with_yaml_lines() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yml");
    std::fs::write(
        &plan,
        "orchestrationId: y\nwaves:\n  - waveId: w1\n    agents:\n      - agentId: A\n        workDescription: a\n        dependencies: [B]\n        parallel: yes\n",
    )
    .unwrap();
    let assert = bin().arg("validate").arg(&plan).assert().code(2);
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(
        out.contains("plan.yml:7:24: waves[0].agents[0].dependencies[0]: unknown agent \"B\""),
        "{out}"
    );
    assert!(
        out.contains("plan.yml:8:9: waves[0].agents[0].parallel: unknown field"),
        "{out}"
    );
}

#[test]
fn strict_turns_unknown_fields_into_errors() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.json");
    std::fs::write(
        &plan,
        r#"{"orchestrationId":"s","waves":[{"waveId":"w","agents":[{"agentId":"A","workDescription":"a","colour":"red"}]}]}"#,
    )
    .unwrap();
    bin()
        .arg("validate")
        .arg(&plan)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("warning[unknown-field]"));
    bin()
        .args(["validate", "--strict"])
        .arg(&plan)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("error[unknown-field]"));
}

#[test]
fn mode_option_changes_the_wave_order_rules() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.json");
    std::fs::write(
        &plan,
        r#"{"orchestrationId":"m","executionMode":"continuous","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a"},{"agentId":"B","workDescription":"b","dependencies":["A"]}]}]}"#,
    )
    .unwrap();
    bin().arg("validate").arg(&plan).assert().code(0);
    bin()
        .args(["validate", "--mode", "waves"])
        .arg(&plan)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("same parallel wave"));
}

#[test]
fn unreadable_and_hostile_inputs_give_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.json", Vec::new(), "the plan file is empty"),
        ("blank.yaml", b"  \n\n".to_vec(), "the plan file is empty"),
        (
            "garbage.json",
            vec![0xff, 0xfe, 0x00, 0x81, 0x13, 0x37],
            "not UTF-8 text",
        ),
        (
            "deep.json",
            ("[".repeat(200_000) + &"]".repeat(200_000)).into_bytes(),
            "nesting depth",
        ),
        (
            "deep.yaml",
            ("a: ".to_string() + &"[".repeat(200_000)).into_bytes(),
            "error[syntax]",
        ),
        (
            "list.json",
            b"[1, 2]".to_vec(),
            "expected an object, found array",
        ),
        (
            "trailing.json",
            b"{\"a\": 1} {\"b\": 2}".to_vec(),
            "error[syntax]",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        bin()
            .arg("validate")
            .arg(&path)
            .assert()
            .code(2)
            .stdout(predicate::str::contains(expected))
            .stderr(no_panic());
    }
}

#[test]
fn a_100_mib_plan_is_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    bin()
        .arg("validate")
        .arg(&path)
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "100.0 MiB, larger than the 32 MiB limit",
        ));
}

#[test]
fn missing_plan_file_exits_2() {
    bin()
        .args(["validate", "/nonexistent/plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read plan /nonexistent/plan.json",
        ));
}

#[test]
fn validate_reads_standard_input() {
    bin()
        .args(["validate", "-"])
        .write_stdin(std::fs::read(example("seed-plan.json")).unwrap())
        .assert()
        .code(0);
}

#[test]
fn analyze_reports_levels_critical_path_and_makespans() {
    bin()
        .arg("analyze")
        .arg(example("full-plan.json"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Critical path (4h30m): AUTH_IMPL -> PROFILE_IMPL -> DOCS -> RELEASE_NOTES",
        ))
        .stdout(predicate::str::contains(
            "level 1: AUTH_IMPL, LOG_IMPL, CACHE_IMPL",
        ))
        .stdout(predicate::str::contains("plan waves:              4h30m"));
}

#[test]
fn analyze_json_with_auto_waves_respects_batch_size() {
    let assert = bin()
        .args([
            "analyze",
            "--json",
            "--auto-waves",
            "--batch-size",
            "2",
            "--concurrency",
            "2",
        ])
        .arg(example("full-plan.json"))
        .assert()
        .code(0);
    let a: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(a["agents"], 7);
    assert_eq!(a["concurrency"], 2);
    assert_eq!(a["criticalPathLength"]["seconds"], 16200.0);
    let waves = a["autoWaves"]["waves"].as_array().unwrap();
    assert!(waves.iter().all(|w| w.as_array().unwrap().len() <= 2));
    assert_eq!(
        waves
            .iter()
            .map(|w| w.as_array().unwrap().len())
            .sum::<usize>(),
        7
    );
    assert!(
        a["dependencyMakespan"]["seconds"].as_f64().unwrap()
            >= a["lowerBound"]["seconds"].as_f64().unwrap()
    );
    assert_eq!(a["waves"][2]["idleSlots"], 1);
}

#[test]
fn analyze_draws_mermaid_and_dot() {
    bin()
        .args(["analyze", "--format", "mermaid"])
        .arg(example("full-plan.json"))
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("flowchart LR"))
        .stdout(predicate::str::contains("class a0,a3,a5,a6 critical"));
    bin()
        .args(["analyze", "--format", "dot"])
        .arg(example("full-plan.json"))
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("digraph plan {"))
        .stdout(predicate::str::contains(
            "a0 -> a3 [color=\"#d62728\", penwidth=3];",
        ));
}

#[test]
fn analyze_refuses_invalid_plans_and_bad_arguments() {
    bin()
        .arg("analyze")
        .arg(fixture("invalid-plan.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the plan is invalid (13 error(s))",
        ));
    bin()
        .args(["analyze", "--concurrency", "0"])
        .arg(example("seed-plan.json"))
        .assert()
        .code(2);
}

#[test]
fn render_works_for_every_platform() {
    for platform in ["claude", "gpt", "gemini", "open-source", "generic"] {
        bin()
            .args(["render", "--platform", platform, "--plan"])
            .arg(example("three-agents.yaml"))
            .assert()
            .code(0)
            .stdout(predicate::str::contains("CACHE_AGENT"));
    }
    bin()
        .args(["render", "--platform", "llama", "--plan"])
        .arg(example("seed-plan.json"))
        .assert()
        .code(2);
}

#[test]
fn render_gemini_out_writes_batch_and_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("batch.jsonl");
    bin()
        .args(["render", "--platform", "gemini", "--plan"])
        .arg(example("full-plan.json"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(0);
    let jsonl = std::fs::read_to_string(&out).unwrap();
    assert_eq!(jsonl.lines().count(), 7);
    let md = std::fs::read_to_string(dir.path().join("batch.md")).unwrap();
    assert!(md.contains("BATCH PROCESSING WITH CORRELATION"));
}

#[test]
fn render_template_override_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("t.md");
    std::fs::write(&template, "Agents: {% for w in waves %}{% for a in w.agents %}{{ a.agent_id }} {% endfor %}{% endfor %}").unwrap();
    bin()
        .args(["render", "--platform", "generic", "--plan"])
        .arg(example("three-agents.yaml"))
        .arg("--template")
        .arg(&template)
        .assert()
        .code(0)
        .stdout("Agents: AUTH_AGENT LOG_AGENT CACHE_AGENT ");
    std::fs::write(&template, "{% if %}").unwrap();
    bin()
        .args(["render", "--platform", "generic", "--plan"])
        .arg(example("three-agents.yaml"))
        .arg("--template")
        .arg(&template)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("template error"));
}

fn schema() -> serde_json::Value {
    let out = bin()
        .arg("schema")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn yaml_or_json(path: &Path) -> serde_json::Value {
    let loaded = llm_orchestrate::plan::load_path(path, Default::default()).unwrap();
    loaded.tree.expect("parses").to_json()
}

#[test]
fn every_example_validates_against_the_schema() {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for name in [
        "seed-plan.json",
        "three-agents.yaml",
        "full-plan.json",
        "shell-demo.json",
    ] {
        let doc = yaml_or_json(&example(name));
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    let broken = yaml_or_json(&fixture("invalid-plan.json"));
    assert!(!validator.is_valid(&broken));
}

#[test]
fn schema_properties_match_the_decoder_fields() {
    use llm_orchestrate::plan::decode::fields;
    let schema = schema();
    let props = |value: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = value["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sorted = |names: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let defs = &schema["$defs"];
    assert_eq!(props(&schema), sorted(fields::PLAN));
    assert_eq!(props(&defs["Wave"]), sorted(fields::WAVE));
    assert_eq!(props(&defs["Agent"]), sorted(fields::AGENT));
    assert_eq!(props(&defs["CoordinationRules"]), sorted(fields::RULES));
    assert_eq!(props(&defs["GateStage"]), sorted(fields::STAGE));
    assert_eq!(props(&defs["GateDefinition"]), sorted(fields::GATE));
    assert_eq!(props(&defs["Workspace"]), sorted(fields::WORKSPACE));
}

fn fake_cli(dir: &Path, name: &str, version: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\necho '{version}'\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn doctor_names_keys_and_clis_without_leaking_values() {
    let dir = tempfile::tempdir().unwrap();
    fake_cli(dir.path(), "claude", "2.1.0 (Claude Code)");
    let assert = bin()
        .arg("doctor")
        .env_clear()
        .env("PATH", dir.path())
        .env("ANTHROPIC_API_KEY", "sk-ant-very-secret-value")
        .assert()
        .code(0);
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(out.contains("ANTHROPIC_API_KEY    set"), "{out}");
    assert!(out.contains("2.1.0 (Claude Code)"), "{out}");
    assert!(out.contains("--platform auto chooses: claude"), "{out}");
    assert!(!out.contains("very-secret"), "{out}");
}

#[test]
fn doctor_finds_a_local_openai_compatible_server() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let body = r#"{"data":[{"id":"qwen2.5-coder"}]}"#;
        write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        request
    });
    let empty = tempfile::tempdir().unwrap();
    let assert = bin()
        .args(["doctor", "--json"])
        .env_clear()
        .env("PATH", empty.path())
        .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .assert()
        .code(0);
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(report["choice"]["platform"], "open-source");
    assert_eq!(report["servers"][0]["reachable"], true);
    assert!(server.join().unwrap().starts_with("GET /v1/models"));
    bin()
        .args(["doctor", "--json"])
        .env_clear()
        .env("PATH", empty.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"platform\": \"generic\""));
}

#[test]
fn usage_errors_exit_2() {
    bin().assert().code(2);
    bin().arg("frobnicate").assert().code(2);
    bin().args(["validate"]).assert().code(2);
}

#[test]
fn validate_refuses_ids_that_cannot_name_folders_and_scopes_that_leave_the_repository() {
    let plan = r#"{"orchestrationId": "o", "waves": [{"waveId": "w", "agents": [
        {"agentId": "../escape", "workDescription": "x"},
        {"agentId": "OK_ID", "workDescription": "y", "scope": ["svc", "../other"]},
        {"agentId": "ABS", "workDescription": "z", "scope": "/etc"}
    ]}]}"#;
    let assert = bin()
        .args(["validate", "-"])
        .write_stdin(plan)
        .assert()
        .code(2);
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    for expected in [
        "waves[0].agents[0].agentId: agentId \"../escape\" cannot name a folder and a git branch",
        "waves[0].agents[1].scope: scope \"../other\" leaves the repository",
        "waves[0].agents[2].scope: scope \"/etc\" leaves the repository",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn doctor_finds_an_agent_cli_named_by_its_override_variable() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("my-claude");
    std::fs::write(&fake, "#!/bin/sh\necho '9.9.9 (Claude Code)'\n").unwrap();
    let mut perms = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).unwrap();
    let assert = bin()
        .args(["doctor", "--json"])
        .env("LLMO_CLAUDE_BIN", &fake)
        .env("PATH", "/usr/bin:/bin")
        .assert()
        .code(0);
    let json: serde_json::Value =
        serde_json::from_slice(&assert.get_output().stdout).expect("doctor --json");
    let claude = json["clis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "claude")
        .cloned()
        .unwrap();
    assert_eq!(claude["path"], fake.to_string_lossy().as_ref(), "{json}");
    assert_eq!(claude["version"], "9.9.9 (Claude Code)", "{json}");
}
