//! The gate advisor: when an LLM is configured, a failed gate's failing
//! tests, messages and output end are sent to it in one request, and its
//! answer is kept with the result as suggested fixes (printed after the gate
//! line, in the report and in the retry context).
//!
//! Which LLM (`--gate-advisor`): `auto` (the default) uses the plan's
//! platform when it is `claude`, `gpt`, `gemini` or `open-source` and its API
//! is configured in the environment (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`,
//! `GEMINI_API_KEY`/`GOOGLE_API_KEY`; for `open-source`, `OPENAI_BASE_URL` or
//! `OLLAMA_HOST`), else no advisor; a platform name forces it; `off` never
//! asks. Asking is bounded (one request, 800 output tokens, 60 s); an advisor
//! that fails only leaves the suggestion out.

use std::sync::Arc;
use std::time::Duration;

use super::GateResult;
use crate::providers::{ChatProvider, ChatRequest, Message, PriceTable};

/// The name the advisor's request carries (a scripted provider can answer it).
pub const ADVISOR_NAME: &str = "GATE_ADVISOR";

/// An LLM that suggests fixes for failed gates.
pub struct GateAdvisor {
    provider: Arc<dyn ChatProvider>,
    model: String,
    prices: Arc<PriceTable>,
}

impl std::fmt::Debug for GateAdvisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateAdvisor")
            .field("wire", &self.provider.wire())
            .field("model", &self.model)
            .finish()
    }
}

impl GateAdvisor {
    /// An advisor asking `model` through `provider`, priced with `prices`.
    pub fn new(provider: Arc<dyn ChatProvider>, model: String, prices: Arc<PriceTable>) -> Self {
        Self {
            provider,
            model,
            prices,
        }
    }

    /// Adds suggested fixes to a failed result (and what asking cost).
    pub async fn advise(&self, service: &str, result: &mut GateResult) {
        if result.ok() {
            return;
        }
        let request = ChatRequest {
            model: self.model.clone(),
            system: format!(
                "You are {ADVISOR_NAME}, the quality-gate advisor of llm-orchestrate. Given a failed quality gate, suggest concrete fixes: for each failing test, the likely cause and what to change. Be brief; plain text, at most 10 lines."
            ),
            messages: vec![Message::user_text(format!(
                "{ADVISOR_NAME}: the gate `{}` failed on {service}.\n\n{}",
                result.gate,
                result.failure_text()
            ))],
            tools: Vec::new().into(),
            max_tokens: 800,
            correlation: Some(format!("{ADVISOR_NAME}/{service}/{}", result.gate)),
        };
        let ignore = |_: &str| {};
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            self.provider.chat(&request, &ignore),
        )
        .await;
        let Ok(Ok(response)) = answer else {
            return;
        };
        let text = response.message.text();
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        result.suggestion = Some(text.to_string());
        result.advice_cost_usd = self.prices.cost_usd(&self.model, &response.usage);
    }
}
