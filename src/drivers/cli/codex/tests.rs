//! Codex's events, from a real run against the scripted server
//! (`tests/fixtures/cli/codex-write-file.jsonl`) and from its documented shapes.

use super::*;
use crate::drivers::cli::tests::{EXIT_0, observe_all, text_of};

fn reader() -> CodexReader {
    CodexReader {
        model: "gpt-5-codex".into(),
        completed: false,
        failed: None,
        last_error: None,
    }
}

#[test]
fn a_real_run_gives_thread_text_tools_usage_and_success() {
    let mut r = reader();
    let out = observe_all(
        &mut r,
        include_str!("../../../../tests/fixtures/cli/codex-write-file.jsonl"),
    );
    assert_eq!(
        out[0],
        Observation::Session("01a21b79-7192-7200-8e30-a7f0b2cbffed".into())
    );
    assert_eq!(
        text_of(&out),
        "[STATUS: STARTED] writing\nDone.\n[STATUS: COMPLETE] wrote hello.txt\n"
    );
    assert_eq!(
        out.iter()
            .filter(|o| **o == Observation::Tool("command_execution".into()))
            .count(),
        1,
        "counted when completed, not when started"
    );
    assert!(out.contains(&Observation::Usage {
        model: "gpt-5-codex".into(),
        usage: Usage {
            input_tokens: 10271,
            output_tokens: 28,
            cached_input_tokens: 0
        },
        cost_usd: None,
    }));
    assert_eq!(r.finish(EXIT_0), Ok(()));
}

#[test]
fn turn_failed_wins_over_the_exit_code() {
    let mut r = reader();
    observe_all(
        &mut r,
        r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"turn.failed","error":{"message":"stream disconnected before completion"}}"#,
    );
    assert_eq!(
        r.finish(EXIT_0),
        Err("turn failed: stream disconnected before completion".into())
    );
}

#[test]
fn reconnecting_errors_are_transient() {
    let mut r = reader();
    observe_all(
        &mut r,
        r#"{"type":"error","message":"Reconnecting... 1/5 (stream disconnected before completion)"}
{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1}}"#,
    );
    assert_eq!(r.finish(EXIT_0), Ok(()));

    let mut r = reader();
    observe_all(
        &mut r,
        r#"{"type":"error","message":"Reconnecting... 5/5"}
{"type":"error","message":"unexpected status 401 Unauthorized"}"#,
    );
    assert_eq!(
        r.finish(Exit {
            code: Some(1),
            signal: None
        }),
        Err(
            "ended without turn.completed (exit code 1): unexpected status 401 Unauthorized".into()
        )
    );
}

#[test]
fn provider_flags_only_with_a_base_url() {
    assert!(provider_overrides(None, true).is_empty());
    assert_eq!(
        provider_overrides(Some("http://127.0.0.1:9/v1/"), true),
        vec![
            "model_provider=local",
            "model_providers.local.name=\"local\"",
            "model_providers.local.base_url=\"http://127.0.0.1:9/v1\"",
            "model_providers.local.wire_api=\"responses\"",
            "model_providers.local.env_key=\"OPENAI_API_KEY\"",
        ]
    );
    assert_eq!(provider_overrides(Some("http://h/v1"), false).len(), 4);
}
