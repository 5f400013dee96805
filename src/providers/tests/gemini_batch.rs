//! The Gemini Batch client: responses routed by key whatever their order,
//! duplicates dropped, unanswered keys retried in a later batch, then failed.

use serde_json::json;

use super::server::{Canned, TestServer};
use super::{ChatProvider, ChatRequest, Message, config};
use crate::providers::GeminiBatchClient;

fn request(key: &str) -> ChatRequest {
    ChatRequest {
        model: "gemini-2.5-pro".into(),
        system: String::new(),
        messages: vec![Message::user_text(format!("work of {key}"))],
        tools: Vec::new().into(),
        max_tokens: 100,
        correlation: Some(key.into()),
    }
}

fn answer(key: &str, text: &str) -> serde_json::Value {
    json!({"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}},
        "metadata": {"key": key}})
}

fn done(name: &str, responses: Vec<serde_json::Value>) -> Canned {
    Canned::status(
        200,
        &json!({"name": name, "done": true,
            "response": {"inlinedResponses": {"inlinedResponses": responses}}})
        .to_string(),
    )
}

#[tokio::test]
async fn responses_route_by_key_duplicates_drop_and_missing_keys_retry_then_fail() {
    let server = TestServer::start(vec![
        // Batch 1 holds A, B and C: answered out of order, A twice, C missing.
        Canned::status(200, r#"{"name": "batches/1"}"#),
        done(
            "batches/1",
            vec![
                answer("B/0", "bee"),
                answer("A/0", "ay"),
                answer("A/0", "again"),
            ],
        ),
        // C goes again alone; batch 2 leaves it unanswered, and so does batch 3.
        Canned::status(200, r#"{"name": "batches/2"}"#),
        done("batches/2", vec![]),
        Canned::status(200, r#"{"name": "batches/3"}"#),
        done("batches/3", vec![]),
    ])
    .await;
    let client = GeminiBatchClient::new(config(&server.base_url), 3).unwrap();
    let silent = |_: &str| {};
    let (ra, rb, rc) = (request("A/0"), request("B/0"), request("C/0"));
    let (a, b, c) = tokio::join!(
        client.chat(&ra, &silent),
        client.chat(&rb, &silent),
        client.chat(&rc, &silent),
    );
    assert_eq!(
        a.unwrap().message.text(),
        "ay",
        "the first answer of a key wins"
    );
    let b = b.unwrap();
    assert_eq!(b.message.text(), "bee");
    assert_eq!(b.usage.input_tokens, 5);
    let c = c.unwrap_err();
    assert!(
        c.to_string().contains("no response for C/0"),
        "an unanswered key fails clearly after its rounds: {c}"
    );
    let requests = server.requests();
    let first = &requests[0];
    assert!(
        first
            .uri
            .contains("/v1beta/models/gemini-2.5-pro:batchGenerateContent")
    );
    let keys: Vec<&str> = first.body["batch"]["inputConfig"]["requests"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        requests[1].uri.ends_with("/v1beta/batches/1"),
        "{}",
        requests[1].uri
    );
    assert!(
        requests[2].body.to_string().contains("C/0"),
        "C is batched again"
    );
}
