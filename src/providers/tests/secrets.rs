//! The API key never shows in errors or `Debug` output, even when a server
//! echoes it back.

use std::time::Duration;

use super::server::{Canned, Chunk, TestServer};
use super::{KEY, chat, config, simple_request};
use crate::providers::{
    AnthropicClient, ChatProvider, GeminiClient, OpenAiChatClient, OpenAiResponsesClient,
    ProviderConfig, ProviderError,
};

fn assert_clean(text: &str) {
    assert!(!text.contains(KEY), "key leaked in: {text}");
}

fn check_error(e: &ProviderError) {
    assert_clean(&format!("{e}"));
    assert_clean(&format!("{e:?}"));
    assert_clean(&format!("{e:#?}"));
}

#[tokio::test]
async fn no_error_kind_or_debug_output_contains_the_key() {
    let echo = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
    let quota =
        format!(r#"{{"error":{{"type":"insufficient_quota","message":"quota gone for {KEY}"}}}}"#);
    let stream_echo = format!(
        "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":\"{KEY}\"}}}}\n\n"
    );
    let script = vec![
        (Canned::status(401, &echo), "auth"),
        (Canned::status(429, &quota), "quota"),
        (Canned::status(429, &echo), "rate_limited"),
        (Canned::status(500, &echo), "transient"),
        (Canned::sse(&stream_echo), "transient"),
        (Canned::status(400, &echo), "invalid_request"),
        (Canned::status(404, &echo), "invalid_request"),
        (
            Canned::chunks(vec![Chunk::Sleep(Duration::from_secs(3))]),
            "timeout",
        ),
        (
            Canned::sse("event: message_stop\ndata: {oops\n\n"),
            "stream",
        ),
    ];
    let mut kinds = Vec::new();
    for (canned, kind) in script {
        let server = TestServer::start(vec![canned]).await;
        let mut cfg = config(&server.base_url);
        cfg.retry.max_attempts = 1;
        let client = AnthropicClient::new(cfg).expect("client");
        assert_clean(&format!("{client:?}"));
        let (result, _) = chat(&client, &simple_request("m")).await;
        let e = result.expect_err("fails");
        assert_eq!(e.kind(), kind, "{e}");
        check_error(&e);
        kinds.push(e.kind());
        assert_eq!(
            server.requests()[0].header("x-api-key"),
            KEY,
            "the key was sent"
        );
    }
    for kind in [
        "auth",
        "quota",
        "rate_limited",
        "transient",
        "invalid_request",
        "timeout",
        "stream",
    ] {
        assert!(kinds.contains(&kind), "{kind} not covered");
    }
}

#[test]
fn config_and_clients_debug_hide_the_key() {
    let cfg = ProviderConfig::new("http://127.0.0.1:1", Some(KEY.to_string()));
    assert_clean(&format!("{cfg:?}"));
    assert_clean(&format!("{cfg:#?}"));
    let clients: Vec<Box<dyn std::fmt::Debug>> = vec![
        Box::new(AnthropicClient::new(cfg.clone()).expect("client")),
        Box::new(OpenAiChatClient::new(cfg.clone()).expect("client")),
        Box::new(OpenAiResponsesClient::new(cfg.clone()).expect("client")),
        Box::new(GeminiClient::new(cfg).expect("client")),
    ];
    for client in clients {
        assert_clean(&format!("{client:?}"));
        assert_clean(&format!("{client:#?}"));
    }
}

#[tokio::test]
async fn connection_errors_do_not_leak_the_key() {
    // Nothing listens on port 1.
    let mut cfg = config("http://127.0.0.1:1");
    cfg.retry.max_attempts = 2;
    for client in [
        Box::new(OpenAiChatClient::new(cfg.clone()).expect("client")) as Box<dyn ChatProvider>,
        Box::new(GeminiClient::new(cfg.clone()).expect("client")),
    ] {
        let (result, _) = chat(client.as_ref(), &simple_request("m")).await;
        let e = result.expect_err("no server");
        assert_eq!(e.kind(), "transient");
        check_error(&e);
    }
}
