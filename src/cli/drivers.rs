//! Which driver runs each agent of a plan, and building those drivers.
//!
//! For each agent: its `driver` when set; else `shell` when it has a
//! `command`; else its platform (the agent's `platform`, else `--platform`,
//! else the plan's): `claude` → the Anthropic Messages API, `gpt` → the
//! OpenAI Responses API, `gemini` → the Gemini API, `open-source` → an
//! OpenAI-compatible server (Chat Completions) with the text tool protocol,
//! `auto` → what `doctor` would choose. Each API driver uses the agent loop;
//! keys and base URLs come from the environment only (see
//! [`crate::providers::ProviderConfig`]). An agent with `driver: aider` or
//! `driver: opencode` runs that CLI against the OpenAI-compatible server
//! (`OPENAI_BASE_URL`, else `OLLAMA_HOST`; see [`crate::drivers::cli::aider`]
//! and [`crate::drivers::cli::opencode`]); a missing CLI refuses the plan
//! before anything runs. The other agent CLIs (Claude Code, Codex, Gemini
//! CLI) are not drivers of this version yet: a plan that needs them is
//! refused before anything runs. `generic` writes each
//! agent's instructions for a person and waits for `ingest` (see
//! [`crate::drivers::generic`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::common::CliError;
use crate::drivers::Driver;
use crate::drivers::api::ApiDriver;
use crate::drivers::cli::{CliDriver, CliFlavor, aider, find_program, opencode};
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

/// The driver kind that runs `agent`.
pub fn driver_kind(agent: &Agent, platform: Platform, auto: impl Fn() -> Platform) -> DriverKind {
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
    match platform {
        Platform::Claude => DriverKind::Anthropic,
        Platform::Gpt => DriverKind::Openai,
        Platform::Gemini => DriverKind::GeminiApi,
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
    let mut built: HashMap<DriverKind, Arc<dyn Driver>> = HashMap::new();
    let mut refused = Vec::new();
    for (_, _, agent) in plan.agents() {
        let kind = driver_kind(agent, platform, detect);
        let driver = match built.get(&kind) {
            Some(driver) => Arc::clone(driver),
            None => match make(kind, &prices, concurrency, batch) {
                Ok(driver) => {
                    built.insert(kind, Arc::clone(&driver));
                    driver
                }
                Err(why) => {
                    refused.push(format!("{} ({why})", agent.agent_id));
                    continue;
                }
            },
        };
        if kind == DriverKind::Shell && agent.command.is_none() {
            refused.push(format!(
                "{} (driver shell needs a `command`)",
                agent.agent_id
            ));
            continue;
        }
        set.assign(agent.agent_id.clone(), driver);
    }
    if !refused.is_empty() {
        return Err(CliError::Usage(format!(
            "these agents cannot run: {}",
            refused.join(", ")
        )));
    }
    Ok(Arc::new(set))
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

/// An agent-CLI driver for `flavor`, or why its program cannot be found.
fn cli_driver(
    flavor: Arc<dyn CliFlavor>,
    prices: &Arc<PriceTable>,
) -> Result<Arc<dyn Driver>, String> {
    let program = find_program(flavor.as_ref()).ok_or_else(|| {
        format!(
            "{} is not installed: no `{}` on PATH (or set {} to its path)",
            flavor.name(),
            flavor.program(),
            flavor.program_variable()
        )
    })?;
    Ok(Arc::new(CliDriver::new(
        flavor,
        program,
        Some(Arc::clone(prices)),
    )))
}

fn make(
    kind: DriverKind,
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
    let provider: Arc<dyn ChatProvider> = match kind {
        DriverKind::Shell => return Ok(Arc::new(ShellDriver::new())),
        DriverKind::Generic => return Ok(Arc::new(crate::drivers::generic::GenericDriver)),
        DriverKind::Aider => return cli_driver(Arc::new(aider::Aider), prices),
        DriverKind::Opencode => return cli_driver(Arc::new(opencode::Opencode), prices),
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
            OpenAiChatClient::new(limited(ProviderConfig::openai_compatible_from_env(None)))
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
