//! The analyzer LLM (`--analyzer-platform`): given an [`Analysis`], the plan
//! with each agent's phase, and the patch schema, it answers with
//! recommendations and, optionally, a [`PlanPatch`] as JSON. The answer is
//! read strictly (unknown fields rejected); anything unreadable is refused
//! with the reason, and the run goes on without it.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::analysis::Analysis;
use super::patch::PlanPatch;
use crate::journal::{AgentPhase, RunState};
use crate::plan::Plan;
use crate::providers::{ChatProvider, ChatRequest, Message, PriceTable};

/// The name the analyzer's requests carry (a scripted provider can answer it).
pub const ANALYZER_NAME: &str = "PLAN_ANALYZER";

/// How long one analysis may take.
pub const ANALYZER_TIMEOUT: Duration = Duration::from_secs(120);

/// What the analyzer proposed.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Its recommendations, in words.
    pub recommendations: Vec<String>,
    /// Its patch, if it proposes one.
    pub patch: Option<PlanPatch>,
    /// USD the request cost (when the model's price is known).
    pub cost_usd: f64,
}

/// Why the analyzer gave nothing usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyzerError {
    /// The request failed or timed out.
    #[error("the analyzer request failed: {0}")]
    Request(String),
    /// The answer is not a valid proposal.
    #[error("the analyzer's answer is not a valid proposal: {0}")]
    Invalid(String),
}

/// An answer as the analyzer must write it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Answer {
    #[serde(default)]
    recommendations: Vec<String>,
    #[serde(default)]
    patch: Option<PlanPatch>,
}

/// An LLM that proposes plan adaptations.
pub struct PlanAnalyzer {
    provider: Arc<dyn ChatProvider>,
    model: String,
    prices: Arc<PriceTable>,
}

impl std::fmt::Debug for PlanAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanAnalyzer")
            .field("wire", &self.provider.wire())
            .field("model", &self.model)
            .finish()
    }
}

impl PlanAnalyzer {
    /// An analyzer asking `model` through `provider`, priced with `prices`.
    pub fn new(provider: Arc<dyn ChatProvider>, model: String, prices: Arc<PriceTable>) -> Self {
        Self {
            provider,
            model,
            prices,
        }
    }

    /// The model asked (for the journal).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Asks for a proposal on `analysis`.
    pub async fn propose(
        &self,
        analysis: &Analysis,
        plan: &Plan,
        state: &RunState,
    ) -> Result<Proposal, AnalyzerError> {
        let request = ChatRequest {
            model: self.model.clone(),
            system: system_prompt(),
            messages: vec![Message::user_text(user_prompt(analysis, plan, state))],
            tools: Vec::new().into(),
            max_tokens: 4000,
            correlation: Some(format!("{ANALYZER_NAME}/{}", analysis.trigger)),
        };
        let ignore = |_: &str| {};
        let response =
            tokio::time::timeout(ANALYZER_TIMEOUT, self.provider.chat(&request, &ignore))
                .await
                .map_err(|_| AnalyzerError::Request("timed out".into()))?
                .map_err(|e| AnalyzerError::Request(e.to_string()))?;
        let cost_usd = self
            .prices
            .cost_usd(&self.model, &response.usage)
            .unwrap_or(0.0);
        let answer = parse_answer(&response.message.text())?;
        Ok(Proposal {
            recommendations: answer.recommendations,
            patch: answer.patch,
            cost_usd,
        })
    }
}

fn system_prompt() -> String {
    format!(
        "You are {ANALYZER_NAME}, the plan analyzer of llm-orchestrate, which runs a plan of coding agents in waves. \
         Given the results of a wave or of a failed agent, recommend what to do and, when a change to the plan would help, \
         propose it as a patch. Answer with one JSON object and nothing else: \
         {{\"recommendations\": [\"...\"], \"patch\": null or a patch}}. A patch follows this JSON Schema exactly \
         (unknown fields are rejected):\n{}\n\
         Rules: never change a running agent; a completed agent runs again only with \"rerunCompleted\": true; \
         dependencies must stay in earlier waves and must not form cycles; prefer the smallest change that fixes the problem.",
        PlanPatch::json_schema()
    )
}

fn user_prompt(analysis: &Analysis, plan: &Plan, state: &RunState) -> String {
    let agents: Vec<serde_json::Value> = plan
        .agents()
        .map(|(w, _, a)| {
            serde_json::json!({
                "agentId": a.agent_id,
                "wave": plan.waves[w].wave_id,
                "phase": state.agents.get(&a.agent_id).map_or(AgentPhase::Pending, |s| s.phase),
                "dependencies": a.dependencies,
                "workDescription": a.work_description,
                "scope": a.scope_paths(),
            })
        })
        .collect();
    let plan_view = serde_json::json!({"waves": plan.waves.iter().map(|w| &w.wave_id).collect::<Vec<_>>(), "agents": agents});
    format!(
        "{ANALYZER_NAME}: {}.\n\nAnalysis:\n{}\n\nThe plan now:\n{}",
        analysis.trigger,
        serde_json::to_string_pretty(analysis).unwrap_or_default(),
        serde_json::to_string_pretty(&plan_view).unwrap_or_default()
    )
}

/// Reads the analyzer's answer: one JSON object, possibly in a Markdown
/// code fence or after a sentence (the outermost `{...}` is taken).
fn parse_answer(text: &str) -> Result<Answer, AnalyzerError> {
    let start = text.find('{');
    let end = text.rfind('}');
    let (Some(start), Some(end)) = (start, end) else {
        return Err(AnalyzerError::Invalid(format!(
            "no JSON object in {:?}",
            text.chars().take(200).collect::<String>()
        )));
    };
    if end < start {
        return Err(AnalyzerError::Invalid("no JSON object".into()));
    }
    serde_json::from_str(&text[start..=end]).map_err(|e| AnalyzerError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fenced_answer_with_a_patch() {
        let answer = parse_answer(
            "Here you go:\n```json\n{\"recommendations\": [\"retry A\"], \"patch\": {\"reason\": \"fix\", \"operations\": [{\"op\": \"skip\", \"agent\": \"A\"}]}}\n```",
        )
        .unwrap();
        assert_eq!(answer.recommendations, ["retry A"]);
        assert_eq!(answer.patch.unwrap().operations.len(), 1);
    }

    #[test]
    fn refuses_answers_that_break_the_schema() {
        for bad in [
            "no json here",
            "{\"recommendations\": [], \"patch\": {\"reason\": \"x\", \"operations\": [{\"op\": \"nuke\"}]}}",
            "{\"recommendation\": \"typo\"}",
            "} {",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad}");
        }
        assert!(
            parse_answer("{\"recommendations\": [\"all good\"], \"patch\": null}")
                .unwrap()
                .patch
                .is_none()
        );
    }
}
