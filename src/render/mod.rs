//! Platform prompt rendering: the seed's five platform patterns made real for a plan.
//!
//! Templates are files under `templates/`, embedded in the binary; each render
//! includes the STATUS marker protocol, the quality gates and the error-recovery
//! protocol (shared partials). `--template FILE` replaces the main template and
//! can still include the partials. The per-agent prompt (`agent.md`) is also
//! what the drivers send to an agent.

mod context;

use std::fmt;

use minijinja::{AutoEscape, Environment};

pub use context::{AgentView, RenderContext, build_context, plan_json_literal};

use crate::plan::Plan;

/// The platforms a plan can be rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderPlatform {
    /// A Task-tool concurrent deployment document for Claude.
    Claude,
    /// A runnable Python asyncio script using the OpenAI API with one thread per agent.
    Gpt,
    /// A Gemini Batch API request file (JSONL, keyed by agentId) and its instructions.
    Gemini,
    /// One prompt-based coordination prompt with `[AGENT-N]` sections.
    #[value(name = "open-source")]
    OpenSource,
    /// Numbered agent instructions for any LLM.
    Generic,
}

impl RenderPlatform {
    /// The name of the main template.
    pub fn template_name(self) -> &'static str {
        match self {
            RenderPlatform::Claude => "claude.md",
            RenderPlatform::Gpt => "gpt.py",
            RenderPlatform::Gemini => "gemini.md",
            RenderPlatform::OpenSource => "open-source.md",
            RenderPlatform::Generic => "generic.md",
        }
    }
}

impl fmt::Display for RenderPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RenderPlatform::Claude => "claude",
            RenderPlatform::Gpt => "gpt",
            RenderPlatform::Gemini => "gemini",
            RenderPlatform::OpenSource => "open-source",
            RenderPlatform::Generic => "generic",
        };
        f.write_str(name)
    }
}

/// Every embedded template, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("claude.md", include_str!("../../templates/claude.md")),
    ("gpt.py", include_str!("../../templates/gpt.py")),
    ("gemini.md", include_str!("../../templates/gemini.md")),
    (
        "open-source.md",
        include_str!("../../templates/open-source.md"),
    ),
    ("generic.md", include_str!("../../templates/generic.md")),
    ("agent.md", include_str!("../../templates/agent.md")),
    (
        "partials/status-protocol.md",
        include_str!("../../templates/partials/status-protocol.md"),
    ),
    (
        "partials/quality-gates.md",
        include_str!("../../templates/partials/quality-gates.md"),
    ),
    (
        "partials/error-recovery.md",
        include_str!("../../templates/partials/error-recovery.md"),
    ),
];

/// A template failed to load or render.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(String);

impl From<minijinja::Error> for RenderError {
    fn from(err: minijinja::Error) -> Self {
        let mut message = err.to_string();
        if let (Some(name), Some(line)) = (err.name(), err.line())
            && !message.contains(name)
        {
            message = format!("{name}:{line}: {message}");
        }
        RenderError(message)
    }
}

fn environment(override_template: Option<&str>) -> Result<Environment<'static>, RenderError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("pyrepr", |value: String| {
        serde_json::to_string(&value).unwrap_or_default()
    });
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    if let Some(source) = override_template {
        env.add_template_owned("override", source.to_string())?;
    }
    Ok(env)
}

/// The output of a render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The main document (markdown, or the Python script for `gpt`).
    pub document: String,
    /// For `gemini`: the Batch API request file, one JSON request per line.
    pub batch_jsonl: Option<String>,
}

/// Renders a plan for a platform, optionally with a replacement main template.
pub fn render(
    plan: &Plan,
    platform: RenderPlatform,
    template: Option<&str>,
) -> Result<Rendered, RenderError> {
    let env = environment(template)?;
    let mut ctx = build_context(plan);
    // Per-agent prompts first: several platforms embed them.
    let agent_template = env.get_template("agent.md")?;
    let mut prompts = Vec::new();
    for wave in &ctx.waves {
        for agent in &wave.agents {
            let prompt = agent_template.render(minijinja::context! {
                plan => &ctx.plan,
                wave => wave.header(),
                agent => agent,
                gates => &ctx.gates,
            })?;
            prompts.push(prompt);
        }
    }
    let mut i = 0;
    for wave in &mut ctx.waves {
        for agent in &mut wave.agents {
            agent.prompt = prompts[i].clone();
            i += 1;
        }
    }
    ctx.plan_json_literal = plan_json_literal(&ctx);
    let name = if template.is_some() {
        "override"
    } else {
        platform.template_name()
    };
    let document = env.get_template(name)?.render(&ctx)?;
    let batch_jsonl = (platform == RenderPlatform::Gemini).then(|| gemini_batch(&ctx));
    Ok(Rendered {
        document,
        batch_jsonl,
    })
}

/// Renders agents' prompts; built once per plan and reused for every agent
/// (the engine starts thousands of agents from one plan).
pub struct AgentPrompts {
    env: Environment<'static>,
    ctx: RenderContext,
    /// Agent id → (wave position, agent position) in `ctx.waves`.
    positions: std::collections::HashMap<String, (usize, usize)>,
}

impl AgentPrompts {
    /// Prepares the templates and the plan's context.
    pub fn new(plan: &Plan) -> Result<Self, RenderError> {
        let ctx = build_context(plan);
        let positions = ctx
            .waves
            .iter()
            .enumerate()
            .flat_map(|(w, wave)| {
                wave.agents
                    .iter()
                    .enumerate()
                    .map(move |(a, agent)| (agent.agent_id.clone(), (w, a)))
            })
            .collect();
        Ok(Self {
            env: environment(None)?,
            ctx,
            positions,
        })
    }

    /// The prompt of one agent, or `None` when the plan has no such agent.
    pub fn prompt(&self, agent_id: &str) -> Result<Option<String>, RenderError> {
        let Some(&(w, a)) = self.positions.get(agent_id) else {
            return Ok(None);
        };
        let wave = &self.ctx.waves[w];
        let prompt = self
            .env
            .get_template("agent.md")?
            .render(minijinja::context! {
                plan => &self.ctx.plan,
                wave => wave.header(),
                agent => &wave.agents[a],
                gates => &self.ctx.gates,
            })?;
        Ok(Some(prompt))
    }
}

/// Renders the prompt one agent receives (for one-off use; see [`AgentPrompts`] for many).
pub fn agent_prompt(plan: &Plan, agent_id: &str) -> Result<Option<String>, RenderError> {
    AgentPrompts::new(plan)?.prompt(agent_id)
}

/// One Gemini Batch API request per agent, keyed by agentId for correlation.
fn gemini_batch(ctx: &RenderContext) -> String {
    let mut out = String::new();
    for wave in &ctx.waves {
        for agent in &wave.agents {
            let request = serde_json::json!({
                "key": agent.agent_id,
                "request": {
                    "systemInstruction": { "parts": [{ "text": ctx.system_instruction }] },
                    "contents": [{ "role": "user", "parts": [{ "text": agent.prompt }] }],
                    "generationConfig": { "temperature": 0.2 }
                }
            });
            out.push_str(&request.to_string());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests;
