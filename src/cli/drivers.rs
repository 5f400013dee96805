//! Which driver runs each agent of a plan, and building those drivers.
//!
//! For each agent: its `driver` when set; else `shell` when it has a
//! `command`; else its platform (the agent's `platform`, else `--platform`,
//! else the plan's): `claude` → the Claude Code CLI when it is installed
//! (`LLMO_CLAUDE_BIN`, else `claude` on PATH), else the Anthropic Messages
//! API; `gpt` → the Codex CLI (`LLMO_CODEX_BIN`, `codex`), else the OpenAI
//! Responses API; `gemini` → the Gemini CLI (`LLMO_GEMINI_BIN`, `gemini`),
//! else the Gemini API (always the API with `--batch-size`, which only the
//! API can batch); `open-source` → an OpenAI-compatible server (Chat
//! Completions) with the text tool protocol; `auto` → what `doctor` would
//! choose. An explicit `driver` (`anthropic`, `claude-code`, …) is never
//! replaced. Each API driver uses the agent loop; keys and base URLs come
//! from the environment only (see [`crate::providers::ProviderConfig`]); the
//! agent CLIs are described in [`crate::drivers::cli`]. aider and opencode
//! run only for an agent that sets `driver: aider|opencode` (against the
//! OpenAI-compatible server of `OPENAI_BASE_URL`, else `OLLAMA_HOST`; see
//! [`crate::drivers::cli::aider`] and [`crate::drivers::cli::opencode`]).
//! `generic` writes each agent's instructions for a person and waits for
//! `ingest` (see [`crate::drivers::generic`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::common::CliError;
use crate::drivers::Driver;
use crate::drivers::api::ApiDriver;
use crate::drivers::cli::{CliDriver, CliFlavor};
use crate::drivers::router::DriverSet;
use crate::drivers::shell::ShellDriver;
use crate::plan::{Agent, DriverKind, Plan, Platform};
use crate::providers::{
    AdaptiveLimiter, AnthropicClient, ChatProvider, GeminiBatchClient, GeminiClient,
    OpenAiChatClient, OpenAiResponsesClient, PriceTable, ProviderConfig,
};

/// Default model per API driver (an agent's `model` overrides it; so does
/// `LLMO_MODEL` in the environment).
fn default_model(kind: DriverKind) -> &'static str {
    match kind {
        DriverKind::Anthropic => "claude-sonnet-4-5",
        DriverKind::Openai => "gpt-5",
        DriverKind::GeminiApi => "gemini-2.5-pro",
        _ => "llama3.1",
    }
}

/// The CLI flavour of a driver kind, if it is an agent CLI this version drives.
pub fn cli_flavor(kind: DriverKind) -> Option<Arc<dyn CliFlavor>> {
    use crate::drivers::cli::{
        aider::Aider, claude::ClaudeCode, codex::Codex, gemini::GeminiCli, opencode::Opencode,
    };
    match kind {
        DriverKind::ClaudeCode => Some(Arc::new(ClaudeCode)),
        DriverKind::Codex => Some(Arc::new(Codex)),
        DriverKind::GeminiCli => Some(Arc::new(GeminiCli)),
        DriverKind::Aider => Some(Arc::new(Aider)),
        DriverKind::Opencode => Some(Arc::new(Opencode)),
        _ => None,
    }
}

/// True when the agent CLI of `kind` is installed (see [`crate::drivers::cli::find_program`]).
pub fn cli_installed(kind: DriverKind) -> bool {
    cli_flavor(kind).is_some_and(|f| crate::drivers::cli::find_program(f.as_ref()).is_some())
}

/// The driver kind that runs `agent`. `installed` says whether an agent CLI
/// kind is available (a platform prefers its CLI, else its API).
pub fn driver_kind(
    agent: &Agent,
    platform: Platform,
    auto: impl Fn() -> Platform,
    mut installed: impl FnMut(DriverKind) -> bool,
) -> DriverKind {
    if let Some(kind) = agent.driver {
        return kind;
    }
    if agent.command.is_some() {
        return DriverKind::Shell;
    }
    let platform = agent.platform.unwrap_or(platform);
    let platform = if platform == Platform::Auto {
        auto()
    } else {
        platform
    };
    let mut cli_or = |cli: DriverKind, api: DriverKind| if installed(cli) { cli } else { api };
    match platform {
        Platform::Claude => cli_or(DriverKind::ClaudeCode, DriverKind::Anthropic),
        Platform::Gpt => cli_or(DriverKind::Codex, DriverKind::Openai),
        Platform::Gemini => cli_or(DriverKind::GeminiCli, DriverKind::GeminiApi),
        Platform::OpenSource => DriverKind::OpenaiCompatible,
        Platform::Generic | Platform::Auto => DriverKind::Generic,
    }
}

/// Builds the drivers for every agent of `plan` (`platform` is `--platform`).
///
/// Every API provider gets one shared [`AdaptiveLimiter`] starting (and
/// capped) at `concurrency`: agents never send more requests at once than
/// that, and a 429/529 halves the limit until successes grow it back.
pub fn build(
    plan: &Plan,
    platform: Option<Platform>,
    concurrency: usize,
    engine: &super::run::EngineArgs,
) -> Result<Arc<dyn Driver>, CliError> {
    let batch = match (engine.batch_size, engine.correlation_mode) {
        (Some(_), super::run::CorrelationMode::Disabled) => {
            return Err(CliError::Usage(
                "--batch-size needs --correlation-mode enabled: batched responses are routed back by their keys".into(),
            ));
        }
        (size, _) => size.map(|n| n as usize),
    };
    let platform = platform.unwrap_or(plan.platform);
    let auto = std::cell::OnceCell::new();
    let detect = || {
        *auto.get_or_init(|| {
            crate::drivers::detect::gather(std::time::Duration::from_millis(500))
                .choose()
                .platform
        })
    };
    let prices = Arc::new(price_table(engine.prices.as_deref())?);
    let shell: Arc<dyn Driver> = Arc::new(ShellDriver::new());
    let mut set = DriverSet::new(Arc::clone(&shell));
    // One driver per kind, and per plan base URL for OpenAI-compatible
    // servers; a driver that cannot be built is tried once, not per agent.
    let mut built = HashMap::new();
    let mut refused = Vec::new();
    let mut installed: HashMap<DriverKind, bool> = HashMap::new();
    for (_, _, agent) in plan.agents() {
        let kind = driver_kind(agent, platform, detect, |cli| {
            // The Batch API is only reachable through the Gemini API driver.
            !(cli == DriverKind::GeminiCli && batch.is_some())
                && *installed.entry(cli).or_insert_with(|| cli_installed(cli))
        });
        let base_url = agent
            .base_url
            .clone()
            .filter(|_| kind == DriverKind::OpenaiCompatible);
        let key = (kind, base_url);
        let made = built.entry(key).or_insert_with_key(|(kind, base_url)| {
            make(*kind, base_url.as_deref(), &prices, concurrency, batch)
        });
        let driver = match made {
            Ok(driver) => Arc::clone(driver),
            Err(why) => {
                refused.push((agent.agent_id.clone(), why.clone()));
                continue;
            }
        };
        if kind == DriverKind::Shell && agent.command.is_none() {
            refused.push((agent.agent_id.clone(), SHELL_NEEDS_COMMAND.into()));
            continue;
        }
        set.assign(agent.agent_id.clone(), driver);
    }
    if !refused.is_empty() {
        return Err(CliError::Usage(cannot_run_message(&refused)));
    }
    Ok(Arc::new(set))
}

/// Why a `shell` agent without a command cannot run.
pub(super) const SHELL_NEEDS_COMMAND: &str = "driver shell needs a `command`";

/// Agents named per reason in [`cannot_run_message`]; the rest are counted.
const NAMED_PER_REASON: usize = 5;

/// The error for agents that cannot run, given as (agent, reason) in plan
/// order: one clause per reason, in order of first appearance, naming its
/// first few agents. A thousand agents refused for one reason (a bad base
/// URL, a missing key) make one short line, not a thousand clauses.
pub(super) fn cannot_run_message(refused: &[(String, String)]) -> String {
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for (agent, why) in refused {
        match reasons.iter_mut().find(|(reason, _)| *reason == why) {
            Some((_, agents)) => agents.push(agent),
            None => reasons.push((why, vec![agent])),
        }
    }
    let clauses: Vec<String> = reasons
        .iter()
        .map(|(why, agents)| {
            let named = agents[..agents.len().min(NAMED_PER_REASON)].join(", ");
            match agents.len().saturating_sub(NAMED_PER_REASON) {
                0 => format!("{named} ({why})"),
                more => format!("{named} and {more} more ({why})"),
            }
        })
        .collect();
    format!("these agents cannot run: {}", clauses.join("; "))
}

/// Builds the local driver for one agent on a worker (`platform` is the
/// plan's): as [`build`] would choose it on this machine, with the built-in
/// price table and API requests limited to `concurrency` at once.
pub fn driver_for(
    agent: &Agent,
    platform: Platform,
    concurrency: usize,
) -> Result<Arc<dyn Driver>, String> {
    let detect = || {
        crate::drivers::detect::gather(std::time::Duration::from_millis(500))
            .choose()
            .platform
    };
    let kind = driver_kind(agent, platform, detect, cli_installed);
    if kind == DriverKind::Shell {
        if agent.command.is_none() {
            return Err(format!(
                "agent {}: driver shell needs a `command`",
                agent.agent_id
            ));
        }
        return Ok(Arc::new(ShellDriver::new()));
    }
    let base_url = agent
        .base_url
        .clone()
        .filter(|_| kind == DriverKind::OpenaiCompatible);
    let prices = Arc::new(PriceTable::builtin());
    make(kind, base_url.as_deref(), &prices, concurrency, None)
        .map_err(|why| format!("agent {}: {why}", agent.agent_id))
}

/// The built-in price table with the overrides of `--prices FILE`.
fn price_table(file: Option<&std::path::Path>) -> Result<PriceTable, CliError> {
    let table = PriceTable::builtin();
    let Some(file) = file else {
        return Ok(table);
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let overrides: std::collections::BTreeMap<String, crate::providers::ModelPrice> =
        serde_json::from_str(&text).map_err(|e| {
            CliError::Usage(format!(
                "{}:{}:{}: not a price table ({{\"model\": {{\"input\": 3, \"output\": 15, \"cachedInput\": 0.3}}}}): {e}",
                file.display(),
                e.line(),
                e.column()
            ))
        })?;
    Ok(table.with_overrides(overrides))
}

fn make(
    kind: DriverKind,
    base_url: Option<&str>,
    prices: &Arc<PriceTable>,
    concurrency: usize,
    batch: Option<usize>,
) -> Result<Arc<dyn Driver>, String> {
    let limited = |mut config: ProviderConfig| {
        let limit = concurrency.max(1);
        config.limiter = Some(Arc::new(AdaptiveLimiter::new(limit, limit)));
        config
    };
    let model = std::env::var("LLMO_MODEL")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| default_model(kind).to_string());
    if let Some(flavor) = cli_flavor(kind) {
        let Some(program) = crate::drivers::cli::find_program(flavor.as_ref()) else {
            return Err(format!(
                "driver {kind}: `{}` is not installed (not on PATH; {} names another program)",
                flavor.program(),
                flavor.program_variable()
            ));
        };
        return Ok(Arc::new(CliDriver::new(
            flavor,
            program,
            Some(Arc::clone(prices)),
        )));
    }
    let provider: Arc<dyn ChatProvider> = match kind {
        DriverKind::Shell => return Ok(Arc::new(ShellDriver::new())),
        DriverKind::Generic => return Ok(Arc::new(crate::drivers::generic::GenericDriver)),
        DriverKind::Anthropic => Arc::new(
            AnthropicClient::new(limited(ProviderConfig::anthropic_from_env()))
                .map_err(|e| e.to_string())?,
        ),
        DriverKind::Openai => Arc::new(
            OpenAiResponsesClient::new(limited(ProviderConfig::openai_from_env()))
                .map_err(|e| e.to_string())?,
        ),
        DriverKind::GeminiApi => match batch {
            Some(size) => Arc::new(
                GeminiBatchClient::new(ProviderConfig::gemini_from_env(), size)
                    .map_err(|e| e.to_string())?,
            ),
            None => Arc::new(
                GeminiClient::new(limited(ProviderConfig::gemini_from_env()))
                    .map_err(|e| e.to_string())?,
            ),
        },
        DriverKind::OpenaiCompatible => Arc::new(
            OpenAiChatClient::new(limited(ProviderConfig::openai_compatible_from_env(
                base_url,
            )))
            .map_err(|e| e.to_string())?,
        ),
        other => {
            return Err(format!(
                "the {other} driver is not available in this version yet"
            ));
        }
    };
    let text_tools = kind == DriverKind::OpenaiCompatible;
    Ok(Arc::new(ApiDriver::new(
        provider,
        model,
        Arc::clone(prices),
        text_tools,
    )))
}

/// Which LLM suggests fixes for failed gates (`--gate-advisor`; see
/// [`crate::gates::advisor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AdvisorChoice {
    /// The plan's platform when its API is configured, else none.
    #[default]
    Auto,
    /// Never ask.
    Off,
    /// The Anthropic Messages API.
    Claude,
    /// The OpenAI Responses API.
    Gpt,
    /// The Gemini API.
    Gemini,
    /// An OpenAI-compatible server.
    OpenSource,
}

/// The gate advisor for a run, if one is configured.
pub fn gate_advisor(
    plan: &Plan,
    engine: &super::run::EngineArgs,
) -> Result<Option<Arc<crate::gates::advisor::GateAdvisor>>, CliError> {
    let llm = helper_llm(engine.gate_advisor, plan, engine)
        .map_err(|e| CliError::Usage(format!("cannot set up the gate advisor: {e}")))?;
    Ok(llm.map(|(provider, model, prices)| {
        Arc::new(crate::gates::advisor::GateAdvisor::new(
            provider, model, prices,
        ))
    }))
}

/// The plan analyzer of an adaptive run (`--analyzer-platform`), if one is
/// configured; `None` means the built-in rules analyse.
pub fn plan_analyzer(
    plan: &Plan,
    engine: &super::run::EngineArgs,
) -> Result<Option<Arc<crate::adapt::PlanAnalyzer>>, CliError> {
    let llm = helper_llm(engine.analyzer_platform, plan, engine)
        .map_err(|e| CliError::Usage(format!("cannot set up the plan analyzer: {e}")))?;
    Ok(llm.map(|(provider, model, prices)| {
        Arc::new(crate::adapt::PlanAnalyzer::new(provider, model, prices))
    }))
}

/// A provider, model and price table for one of the run's helper LLMs
/// (gate advisor, plan analyzer): `auto` takes the plan's platform when its
/// API is configured in the environment; `off` none. The model is
/// `LLMO_MODEL`, else the platform's default.
type HelperLlm = (Arc<dyn ChatProvider>, String, Arc<PriceTable>);

fn helper_llm(
    choice: AdvisorChoice,
    plan: &Plan,
    engine: &super::run::EngineArgs,
) -> Result<Option<HelperLlm>, String> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let kind = match choice {
        AdvisorChoice::Off => return Ok(None),
        AdvisorChoice::Claude => DriverKind::Anthropic,
        AdvisorChoice::Gpt => DriverKind::Openai,
        AdvisorChoice::Gemini => DriverKind::GeminiApi,
        AdvisorChoice::OpenSource => DriverKind::OpenaiCompatible,
        AdvisorChoice::Auto => match plan.platform {
            Platform::Claude if set("ANTHROPIC_API_KEY") => DriverKind::Anthropic,
            Platform::Gpt if set("OPENAI_API_KEY") => DriverKind::Openai,
            Platform::Gemini if set("GEMINI_API_KEY") || set("GOOGLE_API_KEY") => {
                DriverKind::GeminiApi
            }
            Platform::OpenSource if set("OPENAI_BASE_URL") || set("OLLAMA_HOST") => {
                DriverKind::OpenaiCompatible
            }
            _ => return Ok(None),
        },
    };
    let provider: Arc<dyn ChatProvider> = match kind {
        DriverKind::Anthropic => AnthropicClient::new(ProviderConfig::anthropic_from_env())
            .map(|c| Arc::new(c) as Arc<dyn ChatProvider>),
        DriverKind::Openai => OpenAiResponsesClient::new(ProviderConfig::openai_from_env())
            .map(|c| Arc::new(c) as Arc<dyn ChatProvider>),
        DriverKind::GeminiApi => GeminiClient::new(ProviderConfig::gemini_from_env())
            .map(|c| Arc::new(c) as Arc<dyn ChatProvider>),
        _ => OpenAiChatClient::new(ProviderConfig::openai_compatible_from_env(None))
            .map(|c| Arc::new(c) as Arc<dyn ChatProvider>),
    }
    .map_err(|e| e.to_string())?;
    let model = std::env::var("LLMO_MODEL")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| default_model(kind).to_string());
    let prices = Arc::new(price_table(engine.prices.as_deref()).map_err(|e| e.to_string())?);
    Ok(Some((provider, model, prices)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reasons: &[(&str, &str)]) -> Vec<(String, String)> {
        reasons
            .iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn agents_refused_for_one_reason_make_one_short_clause() {
        let many: Vec<(String, String)> = (0..1000)
            .map(|i| (format!("A{i:04}"), "invalid base URL \"x\"".to_string()))
            .collect();
        assert_eq!(
            cannot_run_message(&many),
            "these agents cannot run: A0000, A0001, A0002, A0003, A0004 and 995 more (invalid base URL \"x\")"
        );
    }

    #[test]
    fn each_reason_keeps_its_agents_in_plan_order() {
        let message = cannot_run_message(&refused(&[
            ("build", SHELL_NEEDS_COMMAND),
            ("docs", "ANTHROPIC_API_KEY is not set"),
            ("test", SHELL_NEEDS_COMMAND),
        ]));
        assert_eq!(
            message,
            "these agents cannot run: build, test (driver shell needs a `command`); docs (ANTHROPIC_API_KEY is not set)"
        );
    }
}
