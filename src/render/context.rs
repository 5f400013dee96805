//! The data templates see: a flattened, display-ready view of the plan.

use serde::Serialize;

use crate::plan::validate::PRESET_GATE_NAMES;
use crate::plan::{GateStage, Plan};

/// Plan-level facts.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// The plan's id.
    pub orchestration_id: String,
    /// Its description.
    pub description: Option<String>,
    /// Execution mode.
    pub execution_mode: String,
    /// Agent count.
    pub agent_count: usize,
    /// Wave count.
    pub wave_count: usize,
    /// "every 30 minutes".
    pub reporting: String,
    /// Conflict handling rule.
    pub conflict_handling: String,
    /// Failure strategy.
    pub failure_strategy: String,
}

/// A gate stage for display.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    /// The key it is defined under (`wave1`, a wave id, `final`).
    pub key: String,
    /// Gate names.
    pub gates: Vec<String>,
    /// Failure action.
    pub failure_action: String,
    /// Success action.
    pub success_action: String,
}

impl StageView {
    fn new(key: &str, stage: &GateStage) -> Self {
        Self {
            key: key.to_string(),
            gates: stage.gates.clone(),
            failure_action: stage.failure_action.to_string(),
            success_action: stage.success_action.to_string(),
        }
    }
}

/// A gate for display: its name and how it is run.
#[derive(Debug, Clone, Serialize)]
pub struct GateView {
    /// Gate name.
    pub name: String,
    /// The command, or a description of the preset.
    pub how: String,
}

/// An agent for display.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// 1-based number across the plan (`AGENT-3`).
    pub number: usize,
    /// Agent id.
    pub agent_id: String,
    /// What to do.
    pub work_description: String,
    /// Scope paths joined with ", " (or "." for the repository root).
    pub scope: String,
    /// `./auth-service`.
    pub working_directory: String,
    /// Git branch.
    pub branch: String,
    /// Estimate, e.g. `2h`.
    pub estimated_duration: Option<String>,
    /// Dependencies.
    pub dependencies: Vec<String>,
    /// Gates this agent's work must pass.
    pub quality_gates: Vec<String>,
    /// Model override.
    pub model: Option<String>,
    /// Lower-case identifier for code (`auth_impl`).
    pub ident: String,
    /// The agent's full prompt (filled after rendering `agent.md`).
    pub prompt: String,
}

/// A wave for display.
#[derive(Debug, Clone, Serialize)]
pub struct WaveView {
    /// 1-based position.
    pub number: usize,
    /// Wave id.
    pub wave_id: String,
    /// Concurrent or sequential.
    pub parallel: bool,
    /// Description.
    pub description: Option<String>,
    /// Agents.
    pub agents: Vec<AgentView>,
    /// The gate stage after this wave.
    pub stage: Option<StageView>,
}

/// A wave without its agents (what one agent's prompt needs to know about its wave).
#[derive(Debug, Clone, Serialize)]
pub struct WaveHeader {
    /// 1-based position.
    pub number: usize,
    /// Wave id.
    pub wave_id: String,
    /// Concurrent or sequential.
    pub parallel: bool,
}

impl WaveView {
    /// The wave's header.
    pub fn header(&self) -> WaveHeader {
        WaveHeader {
            number: self.number,
            wave_id: self.wave_id.clone(),
            parallel: self.parallel,
        }
    }
}

/// Everything a template can use.
#[derive(Debug, Clone, Serialize)]
pub struct RenderContext {
    /// Plan facts.
    pub plan: PlanView,
    /// Waves in order.
    pub waves: Vec<WaveView>,
    /// The `final` gate stage.
    pub final_stage: Option<StageView>,
    /// Every gate referenced, with how it runs.
    pub gates: Vec<GateView>,
    /// The system instruction shared by API requests.
    pub system_instruction: String,
    /// The plan data as a Python string literal holding JSON (for `gpt.py`).
    pub plan_json_literal: String,
}

fn preset_description(name: &str) -> &'static str {
    match name {
        "unit-tests" => {
            "the project's unit tests (cargo test, npm test, pytest or go test, from the scope's project files)"
        }
        "integration-tests" => "the project's integration tests",
        "linting" => "the project's linters (cargo clippy, npm run lint, ruff or go vet)",
        "security-scan" | "security-audit" => {
            "a dependency and security audit (cargo audit, npm audit, pip-audit)"
        }
        "performance-tests" => "the project's benchmarks or performance tests",
        "e2e-tests" => "the end-to-end test suite",
        "documentation" => "documentation build and checks",
        _ => "no definition (the plan must define it under \"gates\")",
    }
}

/// Builds the template context of a plan.
pub fn build_context(plan: &Plan) -> RenderContext {
    let rules = &plan.coordination_rules;
    let plan_view = PlanView {
        orchestration_id: plan.orchestration_id.clone(),
        description: plan.description.clone(),
        execution_mode: plan.execution_mode.to_string(),
        agent_count: plan.agent_count(),
        wave_count: plan.waves.len(),
        reporting: rules.progress_reporting.describe(),
        conflict_handling: rules.conflict_handling.to_string(),
        failure_strategy: rules.failure_strategy.to_string(),
    };
    let mut number = 0;
    let waves: Vec<WaveView> = plan
        .waves
        .iter()
        .enumerate()
        .map(|(w, wave)| WaveView {
            number: w + 1,
            wave_id: wave.wave_id.clone(),
            parallel: wave.parallel,
            description: wave.description.clone(),
            stage: plan
                .gate_stage_for_wave(w)
                .map(|(k, s)| StageView::new(k, s)),
            agents: wave
                .agents
                .iter()
                .map(|agent| {
                    number += 1;
                    let scope = if agent.scope_paths().is_empty() {
                        ".".to_string()
                    } else {
                        agent.scope_paths().join(", ")
                    };
                    let dir = agent.working_directory().trim_end_matches('/');
                    AgentView {
                        number,
                        agent_id: agent.agent_id.clone(),
                        work_description: agent.work_description.clone(),
                        scope,
                        working_directory: if dir == "." || dir.is_empty() {
                            ".".into()
                        } else {
                            format!("./{}", dir.trim_start_matches("./"))
                        },
                        branch: agent.branch.clone().unwrap_or_else(|| {
                            format!(
                                "llmo/{}/{}",
                                plan.orchestration_id,
                                agent.agent_id.to_lowercase()
                            )
                        }),
                        estimated_duration: agent.estimated_duration.map(|d| d.to_string()),
                        dependencies: agent.dependencies.clone(),
                        quality_gates: agent.quality_gates.clone(),
                        model: agent.model.clone(),
                        ident: agent
                            .agent_id
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() {
                                    c.to_ascii_lowercase()
                                } else {
                                    '_'
                                }
                            })
                            .collect(),
                        prompt: String::new(),
                    }
                })
                .collect(),
        })
        .collect();
    let mut names: Vec<String> = Vec::new();
    let mut note = |name: &String| {
        if !names.contains(name) {
            names.push(name.clone());
        }
    };
    for (_, _, agent) in plan.agents() {
        agent.quality_gates.iter().for_each(&mut note);
    }
    for stage in plan.quality_gates.values() {
        stage.gates.iter().for_each(&mut note);
    }
    let gates = names
        .into_iter()
        .map(|name| {
            let how = match plan.gates.get(&name) {
                Some(def) => format!("`{}`", def.command.display()),
                None if PRESET_GATE_NAMES.contains(&name.as_str()) => {
                    preset_description(&name).to_string()
                }
                None => preset_description("").to_string(),
            };
            GateView { name, how }
        })
        .collect();
    let system_instruction = format!(
        "You are one agent of the parallel orchestration {:?}, coordinated by llm-orchestrate. \
         Work only on your task and inside your scope. Report progress with STATUS markers \
         ([STATUS: STARTED], [STATUS: PROGRESS-NN%], [STATUS: COMPLETE], [STATUS: FAILED] reason, \
         [STATUS: BLOCKED] reason) {}, and end with [STATUS: COMPLETE] or [STATUS: FAILED] reason.",
        plan.orchestration_id, plan_view.reporting
    );
    RenderContext {
        plan: plan_view,
        waves,
        final_stage: plan.final_gate_stage().map(|s| StageView::new("final", s)),
        gates,
        system_instruction,
        plan_json_literal: String::new(),
    }
}

/// The data the GPT script runs from, as a Python string literal holding JSON.
pub fn plan_json_literal(ctx: &RenderContext) -> String {
    let data = serde_json::json!({
        "orchestrationId": ctx.plan.orchestration_id,
        "systemInstruction": ctx.system_instruction,
        "waves": ctx.waves.iter().map(|w| serde_json::json!({
            "waveId": w.wave_id,
            "parallel": w.parallel,
            "agents": w.agents.iter().map(|a| serde_json::json!({
                "agentId": a.agent_id,
                "dependencies": a.dependencies,
                "model": a.model,
                "prompt": a.prompt,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let json = serde_json::to_string_pretty(&data).unwrap_or_default();
    serde_json::to_string(&json).unwrap_or_default()
}
