//! Gemini CLI's events, from a real run against the scripted server
//! (`tests/fixtures/cli/gemini-write-file.jsonl`) and from its documented shapes.

use super::*;
use crate::drivers::cli::tests::{EXIT_0, observe_all, text_of};

fn reader() -> GeminiReader {
    GeminiReader {
        model: "gemini".into(),
        in_message: false,
        result: None,
        last_error: None,
    }
}

#[test]
fn a_real_run_gives_session_streamed_text_tools_usage_and_success() {
    let mut r = reader();
    let out = observe_all(
        &mut r,
        include_str!("../../../../tests/fixtures/cli/gemini-write-file.jsonl"),
    );
    assert_eq!(
        out[0],
        Observation::Session("5e05658d-000a-49d7-b80b-692c9abb7616".into())
    );
    // The user's message is not the agent's text; deltas end with a newline.
    assert_eq!(
        text_of(&out),
        "[STATUS: STARTED] writing\nDone.\n[STATUS: COMPLETE] wrote hello.txt\n"
    );
    assert!(out.contains(&Observation::Tool("write_file".into())));
    assert!(out.contains(&Observation::Usage {
        model: "gemini-2.5-pro".into(),
        usage: Usage {
            input_tokens: 11929,
            output_tokens: 32,
            cached_input_tokens: 0
        },
        cost_usd: None,
    }));
    assert_eq!(r.finish(EXIT_0), Ok(()));
}

#[test]
fn result_error_fails_with_its_message() {
    let mut r = reader();
    observe_all(
        &mut r,
        r#"{"type":"result","status":"error","error":{"type":"FatalTurnLimitedError","message":"Reached max session turns"},"stats":{}}"#,
    );
    assert_eq!(
        r.finish(Exit {
            code: Some(53),
            signal: None
        }),
        Err("gemini reported an error: Reached max session turns".into())
    );
}

#[test]
fn exit_codes_without_result_are_explained() {
    let exit = |code| Exit {
        code: Some(code),
        signal: None,
    };
    assert_eq!(
        reader().finish(exit(41)),
        Err("authentication failed (exit code 41)".into())
    );
    assert_eq!(
        reader().finish(exit(55)),
        Err("untrusted workspace (exit code 55)".into())
    );
    assert_eq!(
        reader().finish(exit(53)),
        Err("turn limit reached (exit code 53)".into())
    );
    assert_eq!(
        reader().finish(EXIT_0),
        Err("ended without a final result event (exit code 0)".into())
    );
    let mut r = reader();
    observe_all(
        &mut r,
        r#"{"type":"error","severity":"error","message":"quota exceeded"}"#,
    );
    assert_eq!(
        r.finish(exit(1)),
        Err("ended without a final result event (exit code 1): quota exceeded".into())
    );
}
