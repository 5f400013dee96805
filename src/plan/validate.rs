//! Semantic checks on a decoded plan: identities, dependencies, cycles,
//! wave ordering, gate names and overlapping scopes.

use std::collections::{HashMap, HashSet};

use super::diagnostics::Diagnostic;
use super::enums::suggest;
use super::model::{ConflictHandling, ExecutionMode, Plan, SuccessAction};
use super::path::PlanPath;
use crate::graph::find_cycles;

/// Gate names that have built-in presets when the plan does not define them.
pub const PRESET_GATE_NAMES: &[&str] = &[
    "unit-tests",
    "integration-tests",
    "linting",
    "security-scan",
    "security-audit",
    "performance-tests",
    "e2e-tests",
    "documentation",
];

/// Options for semantic validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateOptions {
    /// Validate for this mode instead of the plan's `executionMode`.
    pub mode: Option<ExecutionMode>,
}

fn agent_path(w: usize, a: usize) -> PlanPath {
    PlanPath::root()
        .key("waves")
        .index(w)
        .key("agents")
        .index(a)
}

/// Runs every semantic rule and returns the problems found.
pub fn validate(plan: &Plan, options: ValidateOptions) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let index = check_identities(plan, &mut out);
    check_dependencies(plan, &index, options, &mut out);
    check_gates(plan, &mut out);
    check_scopes(plan, &mut out);
    out
}

/// Agent id → (wave index, position), first definition wins.
type AgentIndex<'p> = HashMap<&'p str, (usize, usize)>;

fn check_identities<'p>(plan: &'p Plan, out: &mut Vec<Diagnostic>) -> AgentIndex<'p> {
    if plan.agent_count() == 0 {
        out.push(Diagnostic::warning(
            "no-agents",
            PlanPath::root().key("waves"),
            "the plan has no agents",
        ));
    }
    let mut waves: HashMap<&str, usize> = HashMap::new();
    let mut agents: AgentIndex = HashMap::new();
    for (w, wave) in plan.waves.iter().enumerate() {
        let wave_path = PlanPath::root().key("waves").index(w);
        if wave.agents.is_empty() {
            out.push(Diagnostic::warning(
                "empty-wave",
                wave_path.key("agents"),
                format!("wave {:?} has no agents", wave.wave_id),
            ));
        }
        if !wave.wave_id.is_empty() {
            if let Some(first) = waves.get(wave.wave_id.as_str()) {
                out.push(Diagnostic::error(
                    "duplicate-id",
                    wave_path.key("waveId"),
                    format!(
                        "duplicate waveId {:?} (first defined at waves[{first}])",
                        wave.wave_id
                    ),
                ));
            } else {
                waves.insert(&wave.wave_id, w);
            }
        }
        for (a, agent) in wave.agents.iter().enumerate() {
            if agent.agent_id.is_empty() {
                continue;
            }
            if !is_safe_id(&agent.agent_id) {
                out.push(
                    Diagnostic::error(
                        "unsafe-id",
                        agent_path(w, a).key("agentId"),
                        format!(
                            "agentId {:?} cannot name a folder and a git branch",
                            agent.agent_id
                        ),
                    )
                    .with_help("use letters, digits, `_`, `-` and `.`, starting with a letter or digit (e.g. AUTH_IMPL)"),
                );
            }
            if let Some(&(fw, fa)) = agents.get(agent.agent_id.as_str()) {
                out.push(Diagnostic::error(
                    "duplicate-id",
                    agent_path(w, a).key("agentId"),
                    format!(
                        "duplicate agentId {:?} (first defined at waves[{fw}].agents[{fa}])",
                        agent.agent_id
                    ),
                ));
            } else {
                agents.insert(&agent.agent_id, (w, a));
            }
        }
    }
    agents
}

fn check_dependencies(
    plan: &Plan,
    index: &AgentIndex<'_>,
    options: ValidateOptions,
    out: &mut Vec<Diagnostic>,
) {
    let mode = options.mode.unwrap_or(plan.execution_mode);
    let ordered_by_waves = matches!(mode, ExecutionMode::Waves | ExecutionMode::Adaptive);
    // Graph over first definitions, for cycle detection: node = position in `order`.
    let order: Vec<(usize, usize)> = plan
        .agents()
        .filter(|(w, a, agent)| index.get(agent.agent_id.as_str()) == Some(&(*w, *a)))
        .map(|(w, a, _)| (w, a))
        .collect();
    let node_of: HashMap<(usize, usize), usize> =
        order.iter().enumerate().map(|(i, pos)| (*pos, i)).collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); order.len()];

    for (w, a, agent) in plan.agents() {
        let mut seen = HashSet::new();
        for (k, dep) in agent.dependencies.iter().enumerate() {
            if dep.is_empty() {
                continue;
            }
            let path = || agent_path(w, a).key("dependencies").index(k);
            if !seen.insert(dep.as_str()) {
                out.push(Diagnostic::warning(
                    "duplicate-dependency",
                    path(),
                    format!("{dep:?} is listed twice"),
                ));
                continue;
            }
            if *dep == agent.agent_id {
                out.push(Diagnostic::error(
                    "self-dependency",
                    path(),
                    format!("agent {dep:?} depends on itself"),
                ));
                continue;
            }
            let Some(&(dw, da)) = index.get(dep.as_str()) else {
                let mut message = format!("unknown agent {dep:?}");
                if let Some(s) = suggest(dep, index.keys().copied()) {
                    message.push_str(&format!(" (did you mean {s:?}?)"));
                }
                out.push(Diagnostic::error("unknown-dependency", path(), message));
                continue;
            };
            if let (Some(&from), Some(&to)) = (node_of.get(&(w, a)), node_of.get(&(dw, da))) {
                edges[from].push(to);
            }
            if ordered_by_waves {
                let wave = &plan.waves[w];
                let dep_wave = &plan.waves[dw].wave_id;
                let problem = if dw > w {
                    Some(format!(
                        "depends on {dep:?} in later wave {dep_wave:?}; in {mode} mode a wave starts only after the previous one finished"
                    ))
                } else if dw == w && wave.parallel {
                    Some(format!(
                        "depends on {dep:?} in the same parallel wave {dep_wave:?}; they would run at the same time"
                    ))
                } else if dw == w && da > a {
                    Some(format!(
                        "depends on {dep:?}, which comes later in the same sequential wave {dep_wave:?}"
                    ))
                } else {
                    None
                };
                if let Some(message) = problem {
                    out.push(Diagnostic::error("wave-order", path(), message).with_help(
                        "move the dependency to an earlier wave, or use executionMode \"continuous\"",
                    ));
                }
            }
        }
    }

    for cycle in find_cycles(&edges) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&n| {
                let (w, a) = order[n];
                plan.waves[w].agents[a].agent_id.as_str()
            })
            .collect();
        let (w, a) = order[cycle[0]];
        let next = names.get(1).copied().unwrap_or(names[0]);
        let k = plan.waves[w].agents[a]
            .dependencies
            .iter()
            .position(|d| d == next)
            .unwrap_or(0);
        let mut text = names.join(" -> ");
        text.push_str(" -> ");
        text.push_str(names[0]);
        out.push(Diagnostic::error(
            "dependency-cycle",
            agent_path(w, a).key("dependencies").index(k),
            format!("dependency cycle: {text}"),
        ));
    }
}

fn check_gates(plan: &Plan, out: &mut Vec<Diagnostic>) {
    let mut known: Vec<&str> = plan.gates.keys().map(String::as_str).collect();
    known.extend(PRESET_GATE_NAMES);
    let defined = !plan.gates.is_empty();
    let check = |name: &str, path: &dyn Fn() -> PlanPath, out: &mut Vec<Diagnostic>| {
        if name.is_empty() || known.contains(&name) {
            return;
        }
        let path = path();
        let mut message = format!("unknown gate {name:?}");
        if let Some(s) = suggest(name, known.iter().copied()) {
            message.push_str(&format!(" (did you mean {s:?}?)"));
        }
        let help = "define it under \"gates\" or use a built-in preset: unit-tests, integration-tests, linting, security-scan, performance-tests, e2e-tests, documentation";
        out.push(if defined {
            Diagnostic::error("unknown-gate", path, message).with_help(help)
        } else {
            Diagnostic::warning("unknown-gate", path, message).with_help(help)
        });
    };
    for (w, a, agent) in plan.agents() {
        for (k, gate) in agent.quality_gates.iter().enumerate() {
            check(gate, &|| agent_path(w, a).key("qualityGates").index(k), out);
        }
    }
    let mut stage_targets: Vec<String> = plan.waves.iter().map(|w| w.wave_id.clone()).collect();
    stage_targets.extend((1..=plan.waves.len()).map(|i| format!("wave{i}")));
    stage_targets.push("final".into());
    for (key, stage) in &plan.quality_gates {
        let stage_path = PlanPath::root().key("qualityGates").key(key);
        if !stage_targets.contains(key) {
            let mut message = format!(
                "{key:?} is not a wave id, a wave position (wave1…wave{}) or \"final\"",
                plan.waves.len()
            );
            if let Some(s) = suggest(key, stage_targets.iter().map(String::as_str)) {
                message.push_str(&format!(" (did you mean {s:?}?)"));
            }
            out.push(Diagnostic::error(
                "unknown-gate-stage",
                stage_path.clone(),
                message,
            ));
        }
        for (k, gate) in stage.gates.iter().enumerate() {
            check(gate, &|| stage_path.key("gates").index(k), out);
        }
        if let SuccessAction::ProceedTo(target) = &stage.success_action {
            let exists = plan.waves.iter().any(|w| &w.wave_id == target)
                || target
                    .strip_prefix("wave")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| n >= 1 && n <= plan.waves.len());
            if !exists {
                let mut message = format!("proceed-to-{target}: there is no wave {target:?}");
                if let Some(s) = suggest(target, stage_targets.iter().map(String::as_str)) {
                    message.push_str(&format!(" (did you mean \"proceed-to-{s}\"?)"));
                }
                out.push(Diagnostic::error(
                    "unknown-value",
                    stage_path.key("successAction"),
                    message,
                ));
            }
        }
    }
}

/// A scope path split into components, without `.` and empty parts.
fn normalize(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Agent ids name folders (`agents/<id>/`, worktrees) and git branches
/// (`llmo/<run-id>/<id>`): letters, digits, `_`, `-`, `.`, starting with a
/// letter or digit, without `..` or a `.lock` ending.
fn is_safe_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !id.contains("..")
        && !id.ends_with(".lock")
}

/// A scope path must stay inside the repository: relative, without `..`.
fn scope_escapes(path: &str) -> bool {
    path.starts_with('/')
        || path.starts_with('\\')
        || path.get(1..2) == Some(":")
        || path.split(['/', '\\']).any(|c| c == "..")
}

fn check_scopes(plan: &Plan, out: &mut Vec<Diagnostic>) {
    let strict = plan.coordination_rules.conflict_handling == ConflictHandling::Strict;
    for (w, wave) in plan.waves.iter().enumerate() {
        for (a, agent) in wave.agents.iter().enumerate() {
            for p in agent.scope_paths() {
                if scope_escapes(p) {
                    out.push(
                        Diagnostic::error(
                            "scope-outside",
                            agent_path(w, a).key("scope"),
                            format!("scope {p:?} leaves the repository"),
                        )
                        .with_help(
                            "scopes are folders relative to the repository root, without `..`",
                        ),
                    );
                }
            }
        }
    }
    for (w, wave) in plan.waves.iter().enumerate() {
        if !wave.parallel {
            continue;
        }
        let mut entries: Vec<(Vec<&str>, usize)> = Vec::new();
        for (a, agent) in wave.agents.iter().enumerate() {
            for p in agent.scope_paths() {
                entries.push((normalize(p), a));
            }
        }
        entries.sort();
        let mut stack: Vec<&(Vec<&str>, usize)> = Vec::new();
        let mut reported: HashSet<(usize, usize)> = HashSet::new();
        for entry in &entries {
            while let Some(top) = stack.last() {
                if entry.0.starts_with(&top.0) {
                    break;
                }
                stack.pop();
            }
            for ancestor in &stack {
                let (first, second) = (ancestor.1.min(entry.1), ancestor.1.max(entry.1));
                if first == second || !reported.insert((first, second)) {
                    continue;
                }
                let shared = if entry.0.is_empty() {
                    "the whole repository".to_string()
                } else {
                    format!("{}/", entry.0.join("/"))
                };
                let message = format!(
                    "{} and {} both write {shared}",
                    wave.agents[first].agent_id, wave.agents[second].agent_id
                );
                let path = agent_path(w, second).key("scope");
                let help = "agents of one parallel wave should not share files: narrow the scopes, or move one agent to another wave";
                out.push(if strict {
                    Diagnostic::error("scope-overlap", path, message).with_help(
                        "conflictHandling is \"strict\", which refuses overlapping scopes",
                    )
                } else {
                    Diagnostic::warning("scope-overlap", path, message).with_help(help)
                });
            }
            stack.push(entry);
        }
    }
}
