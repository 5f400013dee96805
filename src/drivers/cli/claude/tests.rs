//! Claude Code's events, from a real run against the scripted server
//! (`tests/fixtures/cli/claude-write-file.jsonl`) and from its documented shapes.

use super::*;
use crate::drivers::cli::tests::{EXIT_0, observe_all, text_of};

fn reader() -> ClaudeReader {
    ClaudeReader {
        model: "claude".into(),
        result: None,
    }
}

#[test]
fn a_real_run_gives_session_text_tools_usage_and_success() {
    let mut r = reader();
    let out = observe_all(
        &mut r,
        include_str!("../../../../tests/fixtures/cli/claude-write-file.jsonl"),
    );
    assert_eq!(
        out[0],
        Observation::Session("44dd7aac-0243-4b2c-b3f3-8ab6217fa827".into())
    );
    assert_eq!(
        text_of(&out),
        "[STATUS: STARTED] writing\nDone.\n[STATUS: COMPLETE] wrote hello.txt\n"
    );
    assert!(out.contains(&Observation::Tool("Write".into())));
    assert!(out.contains(&Observation::Usage {
        model: "claude-opus-4-8[1m]".into(),
        usage: Usage {
            input_tokens: 6156,
            output_tokens: 31,
            cached_input_tokens: 0
        },
        cost_usd: Some(0.031555),
    }));
    assert_eq!(r.finish(EXIT_0), Ok(()));
}

fn finish_with(result: &str) -> Result<(), String> {
    let mut r = reader();
    observe_all(&mut r, result);
    r.finish(EXIT_0)
}

#[test]
fn result_subtypes_decide() {
    assert_eq!(
        finish_with(
            r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3,"session_id":"s"}"#
        ),
        Err("max turns reached (error_max_turns)".into())
    );
    assert_eq!(
        finish_with(r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true}"#),
        Err("budget: max budget reached (error_max_budget_usd)".into())
    );
    assert_eq!(
        finish_with(
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["boom"]}"#
        ),
        Err("error during execution (error_during_execution): boom".into())
    );
    assert_eq!(
        finish_with(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login"}"#
        ),
        Err("claude reported an error: Invalid API key · Please run /login".into())
    );
}

#[test]
fn no_result_event_fails_whatever_the_exit_code() {
    let mut r = reader();
    observe_all(
        &mut r,
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"[STATUS: COMPLETE]"}]},"parent_tool_use_id":null}"#,
    );
    assert_eq!(
        r.finish(EXIT_0),
        Err("ended without a final result event (exit code 0)".into())
    );
}

#[test]
fn subagent_text_is_not_the_agents_own() {
    let mut r = reader();
    let out = observe_all(
        &mut r,
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"[STATUS: FAILED] sub"},{"type":"tool_use","name":"Read","input":{}}]},"parent_tool_use_id":"toolu_1"}"#,
    );
    assert_eq!(out, vec![Observation::Tool("Read".into())]);
}

#[test]
fn usage_without_model_usage_uses_the_totals() {
    let mut r = reader();
    let out = observe_all(
        &mut r,
        r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.5,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":7}}"#,
    );
    assert_eq!(
        out,
        vec![Observation::Usage {
            model: "claude".into(),
            usage: Usage {
                input_tokens: 17,
                output_tokens: 7,
                cached_input_tokens: 5
            },
            cost_usd: Some(0.5),
        }]
    );
}
