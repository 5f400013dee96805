//! Typed provider errors, and the classification of HTTP failures into them.
//!
//! Messages never carry the API key: they are built from status codes and
//! the provider's error text only, and every error leaving a client passes
//! through [`ProviderError::redacted`] as a second line of defence.

use std::fmt;
use std::time::Duration;

/// Why a request to a provider failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The key is missing, wrong or lacks permission (HTTP 401/403). Not retried.
    #[error("authentication failed{}: {message}", Status(*.status))]
    Auth {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the provider said.
        message: String,
    },
    /// The account is out of quota or credit. Not retried.
    #[error("quota or billing limit reached{}: {message}", Status(*.status))]
    Quota {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the provider said.
        message: String,
    },
    /// Too many requests (HTTP 429) or the provider is overloaded (Anthropic 529). Retried.
    #[error("rate limited{}: {message}", Status(*.status))]
    RateLimited {
        /// How long the provider asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the provider said.
        message: String,
    },
    /// A server error (HTTP 5xx) or a lost connection. Retried.
    #[error("transient provider error{}: {message}", Status(*.status))]
    Transient {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The provider rejected the request (HTTP 400/404/422…). Not retried.
    #[error("invalid request{}: {message}", Status(*.status))]
    InvalidRequest {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the provider said.
        message: String,
    },
    /// The request took too long, or the stream went silent. Retried.
    #[error("timed out: {message}")]
    Timeout {
        /// Which limit was hit.
        message: String,
    },
    /// The stream was malformed or ended before its final event. Retried;
    /// returned when the last attempt also failed this way.
    #[error("malformed or interrupted stream: {message}")]
    Stream {
        /// What was wrong with it.
        message: String,
    },
}

/// Formats ` (HTTP 429)` when a status is known.
struct Status(Option<u16>);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(f, " (HTTP {code})"),
            None => Ok(()),
        }
    }
}

impl ProviderError {
    /// True when trying again may succeed: rate limits, server errors,
    /// timeouts and broken streams.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Transient { .. }
                | Self::Timeout { .. }
                | Self::Stream { .. }
        )
    }

    /// A short stable name for the kind of error (`"rate_limited"`, …), for
    /// logs and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Quota { .. } => "quota",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient { .. } => "transient",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::Timeout { .. } => "timeout",
            Self::Stream { .. } => "stream",
        }
    }

    /// The wait the provider asked for, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status behind the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Auth { status, .. }
            | Self::Quota { status, .. }
            | Self::RateLimited { status, .. }
            | Self::Transient { status, .. }
            | Self::InvalidRequest { status, .. } => *status,
            Self::Timeout { .. } | Self::Stream { .. } => None,
        }
    }

    /// True when the provider signalled overload (429/529): the adaptive
    /// limiter halves its concurrency.
    pub fn is_overload(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }

    /// The error's message (without the kind prefix).
    pub fn message(&self) -> &str {
        match self {
            Self::Auth { message, .. }
            | Self::Quota { message, .. }
            | Self::RateLimited { message, .. }
            | Self::Transient { message, .. }
            | Self::InvalidRequest { message, .. }
            | Self::Timeout { message }
            | Self::Stream { message } => message,
        }
    }

    fn message_mut(&mut self) -> &mut String {
        match self {
            Self::Auth { message, .. }
            | Self::Quota { message, .. }
            | Self::RateLimited { message, .. }
            | Self::Transient { message, .. }
            | Self::InvalidRequest { message, .. }
            | Self::Timeout { message }
            | Self::Stream { message } => message,
        }
    }

    /// The same error with every occurrence of `secret` in its message
    /// replaced by `<redacted>` (a server may echo the key back).
    pub fn redacted(mut self, secret: Option<&str>) -> Self {
        if let Some(secret) = secret.filter(|s| s.len() >= 4) {
            let message = self.message_mut();
            if message.contains(secret) {
                *message = message.replace(secret, "<redacted>");
            }
        }
        self
    }

    /// A malformed-stream error.
    pub(crate) fn stream(message: impl Into<String>) -> Self {
        Self::Stream {
            message: message.into(),
        }
    }
}

/// Longest provider message kept in an error.
const MAX_MESSAGE: usize = 600;

/// Cuts `text` to at most [`MAX_MESSAGE`] bytes on a character boundary.
pub(crate) fn truncate(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The readable part of a provider's error body: `error.message` (with
/// its type, code or status) when it is JSON, else the body itself.
pub(crate) fn body_message(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return truncate(body);
    };
    let error = json.get("error").unwrap_or(&json);
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .or_else(|| error.as_str());
    let label = ["type", "code", "status"]
        .iter()
        .find_map(|k| error.get(*k).and_then(|v| v.as_str()));
    match (label, message) {
        (Some(label), Some(message)) => truncate(&format!("{label}: {message}")),
        (None, Some(message)) => truncate(message),
        _ => truncate(body),
    }
}

/// True when an error text means the account is out of quota or credit
/// (as opposed to a short-term rate limit).
pub(crate) fn is_quota_text(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    if lower.contains("insufficient_quota")
        || lower.contains("credit balance")
        || lower.contains("billing_hard_limit")
    {
        return true;
    }
    // Gemini reports per-minute limits as RESOURCE_EXHAUSTED "quota" too, with
    // a RetryInfo delay: only a daily quota, or no retry hint, is a real quota.
    lower.contains("resource_exhausted")
        && lower.contains("quota")
        && (lower.contains("perday") || !lower.contains("retrydelay"))
}

/// Gemini's `RetryInfo.retryDelay` (`"32s"`, `"1.5s"`) from an error body.
pub(crate) fn body_retry_delay(body: &str) -> Option<Duration> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let details = json.get("error")?.get("details")?.as_array()?;
    details.iter().find_map(|d| {
        let text = d.get("retryDelay")?.as_str()?;
        let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    })
}

/// Classifies a non-success HTTP response.
///
/// `keyless` adds a hint to authentication failures when no key was configured.
pub(crate) fn from_http(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    keyless: bool,
) -> ProviderError {
    let message = body_message(body);
    let status_opt = Some(status);
    match status {
        401 | 403 => ProviderError::Auth {
            status: status_opt,
            message: if keyless {
                format!("{message} (no API key is configured)")
            } else {
                message
            },
        },
        402 => ProviderError::Quota {
            status: status_opt,
            message,
        },
        429 if is_quota_text(body) => ProviderError::Quota {
            status: status_opt,
            message,
        },
        429 | 529 => ProviderError::RateLimited {
            retry_after: retry_after.or_else(|| body_retry_delay(body)),
            status: status_opt,
            message,
        },
        408 => ProviderError::Timeout {
            message: format!("the server timed out the request (HTTP 408): {message}"),
        },
        400..=499 if is_quota_text(body) => ProviderError::Quota {
            status: status_opt,
            message,
        },
        501 | 505 => ProviderError::InvalidRequest {
            status: status_opt,
            message,
        },
        500..=599 => ProviderError::Transient {
            status: status_opt,
            message,
        },
        _ => ProviderError::InvalidRequest {
            status: status_opt,
            message,
        },
    }
}

/// Classifies an error object found inside a stream (`error` events), from
/// its type/code text and message.
pub(crate) fn from_stream_error(code: &str, message: &str) -> ProviderError {
    let lower = code.to_ascii_lowercase();
    let message = truncate(&format!("{code}: {message}"));
    if is_quota_text(&lower) || is_quota_text(&message) {
        ProviderError::Quota {
            status: None,
            message,
        }
    } else if lower.contains("overloaded") || lower.contains("rate_limit") {
        ProviderError::RateLimited {
            retry_after: None,
            status: None,
            message,
        }
    } else if lower.contains("authentication") || lower.contains("permission") {
        ProviderError::Auth {
            status: None,
            message,
        }
    } else if lower.contains("invalid")
        || lower.contains("not_found")
        || lower.contains("context_length")
    {
        ProviderError::InvalidRequest {
            status: None,
            message,
        }
    } else {
        ProviderError::Transient {
            status: None,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        assert_eq!(from_http(401, None, "{}", false).kind(), "auth");
        assert_eq!(from_http(403, None, "{}", false).kind(), "auth");
        assert_eq!(from_http(400, None, "{}", false).kind(), "invalid_request");
        assert_eq!(from_http(404, None, "{}", false).kind(), "invalid_request");
        assert_eq!(from_http(422, None, "{}", false).kind(), "invalid_request");
        assert_eq!(from_http(429, None, "{}", false).kind(), "rate_limited");
        assert_eq!(from_http(529, None, "{}", false).kind(), "rate_limited");
        for s in [500, 502, 503, 504] {
            assert!(from_http(s, None, "", false).is_retryable(), "{s}");
        }
        let quota = r#"{"error":{"type":"insufficient_quota","message":"You exceeded your current quota"}}"#;
        assert_eq!(from_http(429, None, quota, false).kind(), "quota");
        let gemini_daily = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"You exceeded your current quota","details":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}}"#;
        assert_eq!(from_http(429, None, gemini_daily, false).kind(), "quota");
        let gemini_minute = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"You exceeded your current quota","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#;
        let e = from_http(429, None, gemini_minute, false);
        assert_eq!(e.kind(), "rate_limited");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn messages_come_from_the_body() {
        let e = from_http(
            400,
            None,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#,
            false,
        );
        assert_eq!(
            e.to_string(),
            "invalid request (HTTP 400): invalid_request_error: max_tokens: too big"
        );
        assert!(truncate(&"é".repeat(1000)).len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn redaction_replaces_the_secret() {
        let e = ProviderError::Auth {
            status: Some(401),
            message: "bad key sk-secret-123".into(),
        };
        assert_eq!(
            e.redacted(Some("sk-secret-123")).message(),
            "bad key <redacted>"
        );
    }
}
