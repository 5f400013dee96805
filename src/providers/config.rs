//! Client configuration: endpoint, key, timeouts, retries, shared limiter.
//!
//! Keys come only from the environment. The configuration's `Debug` output
//! says whether a key is set, never what it is.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::limiter::AdaptiveLimiter;
use super::retry::RetryPolicy;

/// Default Anthropic endpoint.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Default OpenAI endpoint (includes `/v1`).
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Default Gemini endpoint.
pub const GEMINI_DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// Default OpenAI-compatible endpoint: a local Ollama.
pub const OLLAMA_DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434/v1";

/// How a client reaches its provider.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The endpoint, without a trailing slash (`https://api.anthropic.com`).
    pub base_url: String,
    /// The API key, if any (local servers need none).
    pub api_key: Option<String>,
    /// Longest time one HTTP attempt may take, stream included (600 s).
    pub request_timeout: Duration,
    /// Longest silence between two pieces of a stream (120 s).
    pub idle_timeout: Duration,
    /// When and how often to retry.
    pub retry: RetryPolicy,
    /// A concurrency limit shared by the clients of one provider.
    pub limiter: Option<Arc<AdaptiveLimiter>>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("base_url", &self.base_url)
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "<set>"
                } else {
                    "<unset>"
                },
            )
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("retry", &self.retry)
            .field("limiter", &self.limiter)
            .finish()
    }
}

impl ProviderConfig {
    /// A configuration with default timeouts and retries and no limiter.
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self {
            base_url: trim_base(&base_url.into()),
            api_key,
            request_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            limiter: None,
        }
    }

    /// Anthropic: `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`.
    pub fn anthropic_from_env() -> Self {
        Self::anthropic_from(&env)
    }

    /// OpenAI: `OPENAI_API_KEY`, `OPENAI_BASE_URL`.
    pub fn openai_from_env() -> Self {
        Self::openai_from(&env)
    }

    /// Gemini: `GEMINI_API_KEY` or `GOOGLE_API_KEY`, `GOOGLE_GEMINI_BASE_URL`.
    pub fn gemini_from_env() -> Self {
        Self::gemini_from(&env)
    }

    /// An OpenAI-compatible server (Ollama, vLLM, llama.cpp…): the plan's
    /// base URL, else `OPENAI_BASE_URL`, else `OLLAMA_HOST` + `/v1`, else
    /// the local Ollama.
    ///
    /// The key is `OPENAI_COMPATIBLE_API_KEY` when set; `OPENAI_API_KEY` is
    /// sent only to the endpoint the user named in `OPENAI_BASE_URL`, never
    /// to a URL taken from a plan file or to Ollama.
    pub fn openai_compatible_from_env(plan_base_url: Option<&str>) -> Self {
        Self::openai_compatible_from(plan_base_url, &env)
    }

    pub(crate) fn anthropic_from(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        Self::new(
            lookup("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE_URL.into()),
            lookup("ANTHROPIC_API_KEY"),
        )
    }

    pub(crate) fn openai_from(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        Self::new(
            lookup("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_DEFAULT_BASE_URL.into()),
            lookup("OPENAI_API_KEY"),
        )
    }

    pub(crate) fn gemini_from(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        Self::new(
            lookup("GOOGLE_GEMINI_BASE_URL").unwrap_or_else(|| GEMINI_DEFAULT_BASE_URL.into()),
            lookup("GEMINI_API_KEY").or_else(|| lookup("GOOGLE_API_KEY")),
        )
    }

    pub(crate) fn openai_compatible_from(
        plan_base_url: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let dedicated_key = lookup("OPENAI_COMPATIBLE_API_KEY");
        let plan = plan_base_url.map(str::trim).filter(|s| !s.is_empty());
        if let Some(plan) = plan {
            return Self::new(plan, dedicated_key);
        }
        if let Some(base) = lookup("OPENAI_BASE_URL") {
            return Self::new(base, dedicated_key.or_else(|| lookup("OPENAI_API_KEY")));
        }
        let base = lookup("OLLAMA_HOST")
            .map(|host| ollama_base(&host))
            .unwrap_or_else(|| OLLAMA_DEFAULT_BASE_URL.into());
        Self::new(base, dedicated_key)
    }
}

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn trim_base(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// `OLLAMA_HOST` (`0.0.0.0`, `host:port`, `http://host:port`) as an
/// OpenAI-compatible base URL.
fn ollama_base(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => ("http", host),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let has_port = match authority.rsplit_once(':') {
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    } && !authority.ends_with(']');
    let port = if has_port { "" } else { ":11434" };
    format!("{scheme}://{authority}{port}{path}/v1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = ProviderConfig::anthropic_from(&lookup(&[("ANTHROPIC_API_KEY", "k")]));
        assert_eq!(c.base_url, ANTHROPIC_DEFAULT_BASE_URL);
        assert_eq!(c.api_key.as_deref(), Some("k"));
        assert_eq!(c.request_timeout, Duration::from_secs(600));
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.retry.max_attempts, 6);
        let c = ProviderConfig::openai_from(&lookup(&[("OPENAI_BASE_URL", "http://x/v1/")]));
        assert_eq!(c.base_url, "http://x/v1");
        assert_eq!(c.api_key, None);
        let c = ProviderConfig::gemini_from(&lookup(&[("GOOGLE_API_KEY", "g")]));
        assert_eq!(c.base_url, GEMINI_DEFAULT_BASE_URL);
        assert_eq!(c.api_key.as_deref(), Some("g"));
        let c = ProviderConfig::gemini_from(&lookup(&[
            ("GOOGLE_API_KEY", "g"),
            ("GEMINI_API_KEY", "m"),
        ]));
        assert_eq!(c.api_key.as_deref(), Some("m"));
    }

    #[test]
    fn openai_compatible_resolution() {
        let vars = [
            ("OPENAI_BASE_URL", "http://vllm:8000/v1"),
            ("OPENAI_API_KEY", "sk"),
        ];
        let c = ProviderConfig::openai_compatible_from(Some("http://plan/v1"), &lookup(&vars));
        assert_eq!(c.base_url, "http://plan/v1");
        assert_eq!(
            c.api_key, None,
            "OPENAI_API_KEY is never sent to a plan's URL"
        );
        let c = ProviderConfig::openai_compatible_from(None, &lookup(&vars));
        assert_eq!(c.base_url, "http://vllm:8000/v1");
        assert_eq!(c.api_key.as_deref(), Some("sk"));
        let c = ProviderConfig::openai_compatible_from(
            None,
            &lookup(&[("OLLAMA_HOST", "0.0.0.0:9999")]),
        );
        assert_eq!(c.base_url, "http://0.0.0.0:9999/v1");
        let c = ProviderConfig::openai_compatible_from(
            None,
            &lookup(&[("OLLAMA_HOST", "https://gpu.lan")]),
        );
        assert_eq!(c.base_url, "https://gpu.lan:11434/v1");
        let c = ProviderConfig::openai_compatible_from(None, &lookup(&[]));
        assert_eq!(c.base_url, OLLAMA_DEFAULT_BASE_URL);
        let c = ProviderConfig::openai_compatible_from(
            None,
            &lookup(&[("OPENAI_COMPATIBLE_API_KEY", "own")]),
        );
        assert_eq!(c.api_key.as_deref(), Some("own"));
    }

    #[test]
    fn debug_hides_the_key() {
        let c = ProviderConfig::new("http://x", Some("sk-very-secret".into()));
        let text = format!("{c:?}");
        assert!(!text.contains("sk-very-secret"));
        assert!(text.contains("<set>"));
        assert!(format!("{:?}", ProviderConfig::new("http://x", None)).contains("<unset>"));
    }
}
