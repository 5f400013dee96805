//! Snapshot tests of every platform render for the example plans, plus checks
//! that the generated artifacts really work (Python compiles and runs, JSONL parses).

use super::*;
use crate::plan::{LoadOptions, load_path};

const EXAMPLES: &[&str] = &["seed-plan.json", "three-agents.yaml", "full-plan.json"];

fn example(name: &str) -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let loaded = load_path(&path, LoadOptions::default()).expect("example readable");
    assert_eq!(loaded.error_count(), 0, "{name}: {:?}", loaded.located());
    loaded.plan.expect("example decodes")
}

const PLATFORMS: &[RenderPlatform] = &[
    RenderPlatform::Claude,
    RenderPlatform::Gpt,
    RenderPlatform::Gemini,
    RenderPlatform::OpenSource,
    RenderPlatform::Generic,
];

#[test]
fn every_platform_render_of_every_example_matches_its_snapshot() {
    for name in EXAMPLES {
        let plan = example(name);
        for &platform in PLATFORMS {
            let rendered = render(&plan, platform, None).expect("renders");
            let stem = name.split('.').next().unwrap_or(name);
            insta::assert_snapshot!(format!("{platform}__{stem}"), rendered.document);
            if let Some(jsonl) = rendered.batch_jsonl {
                insta::assert_snapshot!(format!("{platform}__{stem}__batch"), jsonl);
            }
        }
    }
}

#[test]
fn every_render_carries_the_protocols_and_every_agent() {
    let plan = example("full-plan.json");
    for &platform in PLATFORMS {
        let doc = render(&plan, platform, None).unwrap().document;
        for needle in [
            "[STATUS: STARTED]",
            "PROGRESS-50%",
            "[STATUS: COMPLETE]",
            "[STATUS: FAILED]",
            "[STATUS: BLOCKED]",
            "[ERROR: Agent",
            "Recommendation:",
        ] {
            assert!(doc.contains(needle), "{platform} render lacks {needle}");
        }
        for gate in ["unit-tests", "security-audit", "merge-all"] {
            assert!(doc.contains(gate), "{platform} render lacks gate {gate}");
        }
        for (_, _, agent) in plan.agents() {
            assert!(
                doc.contains(&agent.agent_id),
                "{platform} render lacks {}",
                agent.agent_id
            );
        }
    }
}

#[test]
fn generic_render_numbers_agents_like_the_seed() {
    let doc = render(&example("three-agents.yaml"), RenderPlatform::Generic, None)
        .unwrap()
        .document;
    assert!(doc.contains("**[AGENT-1: AUTH_AGENT]**"));
    assert!(doc.contains("**[AGENT-3: CACHE_AGENT]**"));
    assert!(doc.contains("- Working Directory: ./cache-service"));
    assert!(doc.contains("- Branch: feature/redis-cache"));
    assert!(doc.contains("- Report Status: Every 30 minutes to orchestrator"));
}

#[test]
fn gemini_batch_has_one_request_per_agent_keyed_by_agent_id() {
    let plan = example("full-plan.json");
    let jsonl = render(&plan, RenderPlatform::Gemini, None)
        .unwrap()
        .batch_jsonl
        .unwrap();
    let keys: Vec<String> = jsonl
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(
                v["request"]["contents"][0]["parts"][0]["text"]
                    .as_str()
                    .unwrap()
                    .contains("[STATUS: COMPLETE]")
            );
            v["key"].as_str().unwrap().to_string()
        })
        .collect();
    let expected: Vec<String> = plan.agents().map(|(_, _, a)| a.agent_id.clone()).collect();
    assert_eq!(keys, expected);
}

#[test]
fn gpt_script_is_valid_python_that_runs_its_waves() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.py");
    let plan = example("full-plan.json");
    std::fs::write(
        &script,
        render(&plan, RenderPlatform::Gpt, None).unwrap().document,
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("--dry-run")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "wave-1 (parallel): AUTH_IMPL, LOG_IMPL, CACHE_IMPL\n\
         wave-2 (parallel): PROFILE_IMPL, METRICS_SMOKE\n\
         wave-3 (sequential): DOCS, RELEASE_NOTES\n"
    );
}

#[test]
fn a_template_override_can_use_the_context_and_partials() {
    let plan = example("seed-plan.json");
    let template = "{{ plan.orchestration_id }}: {% for w in waves %}{% for a in w.agents %}{{ a.agent_id }}{% endfor %}{% endfor %}\n{% include \"partials/error-recovery.md\" %}";
    let doc = render(&plan, RenderPlatform::Generic, Some(template))
        .unwrap()
        .document;
    assert!(
        doc.starts_with("sprint-2024-03-parallel: AUTH_IMPL"),
        "{doc}"
    );
    assert!(doc.contains("ERROR RECOVERY") || doc.contains("Error Recovery Protocol"));
    let err = render(&plan, RenderPlatform::Generic, Some("{% for %}")).unwrap_err();
    assert!(
        err.to_string().contains("syntax") || err.to_string().contains("expected"),
        "{err}"
    );
}

#[test]
fn agent_prompt_is_rendered_for_a_known_agent_only() {
    let plan = example("full-plan.json");
    let prompt = agent_prompt(&plan, "PROFILE_IMPL").unwrap().unwrap();
    assert!(prompt.contains("Builds on: AUTH_IMPL"));
    assert!(prompt.contains("`./profile-service`"));
    assert!(agent_prompt(&plan, "NOPE").unwrap().is_none());
}

/// A stand-in OpenAI Chat Completions server (Python, stdlib) that answers every
/// request with a COMPLETE marker naming the agent it was asked about.
const STUB_SERVER: &str = r#"
import http.server, json, re, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        agent = re.search(r"You are agent \*\*(\w+)\*\*", prompt).group(1)
        status = "[STATUS: FAILED] broken on purpose" if agent == "DOCS" else "[STATUS: COMPLETE] done"
        reply = {"choices": [{"message": {"role": "assistant", "content": "[STATUS: STARTED] " + agent + "\n" + status}}]}
        data = json.dumps(reply).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn gpt_script_runs_its_threads_against_an_openai_compatible_server() {
    use std::io::BufRead;
    let mut server = std::process::Command::new("python3")
        .args(["-c", STUB_SERVER])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut port = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.py");
    std::fs::write(
        &script,
        render(&example("full-plan.json"), RenderPlatform::Gpt, None)
            .unwrap()
            .document,
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env(
            "OPENAI_BASE_URL",
            format!("http://127.0.0.1:{}/v1", port.trim()),
        )
        .env("OPENAI_API_KEY", "test-key")
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    // DOCS fails on purpose, so the script exits 1 and RELEASE_NOTES is blocked.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("aggregate JSON");
    let by_id: std::collections::HashMap<String, String> = status["agentStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(by_id["AUTH_IMPL"], "COMPLETE");
    assert_eq!(by_id["METRICS_SMOKE"], "COMPLETE");
    assert_eq!(by_id["DOCS"], "FAILED");
    assert_eq!(by_id["RELEASE_NOTES"], "BLOCKED");
    assert!(status["risks"].as_array().unwrap().len() >= 2);
}
