//! The fault suite shared by every wire format, and the macro that
//! instantiates it as named tests in each wire's module.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server::{Canned, Chunk, TestServer};
use super::{WireCase, chat, config, simple_request};
use crate::providers::{AdaptiveLimiter, ProviderConfig};

fn client(case: &WireCase, server: &TestServer) -> Box<dyn crate::providers::ChatProvider> {
    (case.make)(config(&server.base_url))
}

/// Checks that `first` alone fails with `kind`, then runs a script that
/// fails once with it and succeeds; checks the answer and that exactly two
/// requests were made.
async fn fails_once_then_succeeds(case: &WireCase, first: Canned, kind: &str) -> Duration {
    let alone = TestServer::start(vec![first.clone()]).await;
    let mut cfg = config(&alone.base_url);
    cfg.retry.max_attempts = 1;
    let (result, _) = chat((case.make)(cfg).as_ref(), &simple_request("m")).await;
    let e = result.expect_err("the fault alone fails");
    assert_eq!(e.kind(), kind, "{e}");
    assert!(e.is_retryable());
    let server = TestServer::start(vec![first, Canned::sse(case.text_body)]).await;
    let started = Instant::now();
    let (result, _) = chat(client(case, &server).as_ref(), &simple_request("m")).await;
    let elapsed = started.elapsed();
    let response = result.expect("succeeds after one retry");
    assert_eq!(response.message.text(), case.expected_text);
    assert_eq!(server.requests().len(), 2);
    elapsed
}

pub async fn rate_limit_honours_retry_after(case: &WireCase) {
    let server = TestServer::start(vec![
        Canned::status(
            429,
            r#"{"error":{"type":"rate_limit_error","message":"slow down"}}"#,
        )
        .header("retry-after", "1"),
        Canned::sse(case.text_body),
    ])
    .await;
    let limiter = Arc::new(AdaptiveLimiter::new(8, 8));
    let cfg = ProviderConfig {
        limiter: Some(Arc::clone(&limiter)),
        retry: crate::providers::RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(400),
        },
        ..config(&server.base_url)
    };
    let started = Instant::now();
    let (result, _) = chat((case.make)(cfg).as_ref(), &simple_request("m")).await;
    assert_eq!(result.expect("retried").message.text(), case.expected_text);
    // Retry-After: 1 s, capped by the policy's 400 ms (backoff alone is ~1 ms).
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
    assert_eq!(limiter.limit(), 4, "the 429 halved the limit");
    assert_eq!(limiter.in_flight(), 0);
}

pub async fn server_error_then_success(case: &WireCase) {
    fails_once_then_succeeds(
        case,
        Canned::status(500, r#"{"error":{"message":"boom"}}"#),
        "transient",
    )
    .await;
    fails_once_then_succeeds(case, Canned::status(503, "unavailable"), "transient").await;
}

pub async fn overloaded_529_then_success(case: &WireCase) {
    fails_once_then_succeeds(
        case,
        Canned::status(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        "rate_limited",
    )
    .await;
}

pub async fn cut_stream_then_success(case: &WireCase) {
    fails_once_then_succeeds(case, Canned::sse(case.cut_body), "stream").await;
}

pub async fn connection_reset_then_success(case: &WireCase) {
    fails_once_then_succeeds(
        case,
        Canned::chunks(vec![Chunk::Data(case.cut_body.to_string()), Chunk::Fail]),
        "transient",
    )
    .await;
}

pub async fn malformed_json_then_success(case: &WireCase) {
    fails_once_then_succeeds(case, Canned::sse(case.malformed_body), "stream").await;
}

pub async fn idle_stream_then_success(case: &WireCase) {
    let stall = Canned::chunks(vec![
        Chunk::Data(case.cut_body.to_string()),
        Chunk::Sleep(Duration::from_secs(3)),
        Chunk::Data(case.text_body.to_string()),
    ]);
    let elapsed = fails_once_then_succeeds(case, stall, "timeout").await;
    assert!(
        elapsed < Duration::from_secs(2),
        "idle timeout cut the stall: {elapsed:?}"
    );
}

pub async fn idle_timeout_is_typed(case: &WireCase) {
    let server = TestServer::start(vec![Canned::chunks(vec![
        Chunk::Data(case.cut_body.to_string()),
        Chunk::Sleep(Duration::from_secs(3)),
    ])])
    .await;
    let mut cfg = config(&server.base_url);
    cfg.retry.max_attempts = 1;
    let (result, text) = chat((case.make)(cfg).as_ref(), &simple_request("m")).await;
    assert_eq!(result.expect_err("times out").kind(), "timeout");
    assert!(!text.is_empty(), "deltas arrived before the stall");
}

pub async fn unauthorized_is_not_retried(case: &WireCase) {
    let server = TestServer::start(vec![
        Canned::status(
            401,
            r#"{"error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        ),
        Canned::sse(case.text_body),
    ])
    .await;
    let (result, _) = chat(client(case, &server).as_ref(), &simple_request("m")).await;
    let e = result.expect_err("auth fails");
    assert_eq!(e.kind(), "auth");
    assert_eq!(e.status(), Some(401));
    assert!(!e.is_retryable());
    assert_eq!(server.requests().len(), 1);
}

pub async fn bad_request_is_not_retried(case: &WireCase) {
    let server = TestServer::start(vec![
        Canned::status(
            400,
            r#"{"error":{"type":"invalid_request_error","message":"max_tokens too large"}}"#,
        ),
        Canned::sse(case.text_body),
    ])
    .await;
    let (result, _) = chat(client(case, &server).as_ref(), &simple_request("m")).await;
    let e = result.expect_err("rejected");
    assert_eq!(e.kind(), "invalid_request");
    assert!(e.to_string().contains("max_tokens too large"), "{e}");
    assert_eq!(server.requests().len(), 1);
}

pub async fn quota_is_not_retried(case: &WireCase) {
    let server = TestServer::start(vec![
        Canned::status(429, r#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota"}}"#),
        Canned::sse(case.text_body),
    ])
    .await;
    let (result, _) = chat(client(case, &server).as_ref(), &simple_request("m")).await;
    assert_eq!(result.expect_err("quota").kind(), "quota");
    assert_eq!(server.requests().len(), 1);
}

pub async fn persistent_cut_gives_stream_error(case: &WireCase) {
    let server = TestServer::start(vec![Canned::sse(case.cut_body); 4]).await;
    let (result, _) = chat(client(case, &server).as_ref(), &simple_request("m")).await;
    assert_eq!(result.expect_err("gives up").kind(), "stream");
    assert_eq!(server.requests().len(), 4, "max_attempts");
}

/// Instantiates the fault suite for one wire case.
macro_rules! fault_tests {
    ($case:expr) => {
        #[tokio::test]
        async fn fault_429_honours_retry_after_and_halves_limiter() {
            super::faults::rate_limit_honours_retry_after(&$case).await;
        }
        #[tokio::test]
        async fn fault_500_503_then_success() {
            super::faults::server_error_then_success(&$case).await;
        }
        #[tokio::test]
        async fn fault_529_then_success() {
            super::faults::overloaded_529_then_success(&$case).await;
        }
        #[tokio::test]
        async fn fault_cut_stream_then_success() {
            super::faults::cut_stream_then_success(&$case).await;
        }
        #[tokio::test]
        async fn fault_connection_reset_then_success() {
            super::faults::connection_reset_then_success(&$case).await;
        }
        #[tokio::test]
        async fn fault_malformed_json_then_success() {
            super::faults::malformed_json_then_success(&$case).await;
        }
        #[tokio::test]
        async fn fault_idle_stream_then_success() {
            super::faults::idle_stream_then_success(&$case).await;
        }
        #[tokio::test]
        async fn fault_idle_timeout_is_typed() {
            super::faults::idle_timeout_is_typed(&$case).await;
        }
        #[tokio::test]
        async fn fault_401_is_auth_without_retry() {
            super::faults::unauthorized_is_not_retried(&$case).await;
        }
        #[tokio::test]
        async fn fault_400_is_invalid_request_without_retry() {
            super::faults::bad_request_is_not_retried(&$case).await;
        }
        #[tokio::test]
        async fn fault_insufficient_quota_is_not_retried() {
            super::faults::quota_is_not_retried(&$case).await;
        }
        #[tokio::test]
        async fn fault_persistent_cut_gives_stream_error() {
            super::faults::persistent_cut_gives_stream_error(&$case).await;
        }
    };
}

pub(crate) use fault_tests;
