//! Applying a [`PlanPatch`] to a running plan: every operation is checked
//! against the run (a running agent is never touched, a completed one runs
//! again only when asked), the result must pass the plan's validation (no
//! cycles, no unknown dependencies, dependencies in earlier waves, scopes
//! inside the repository), and a readable diff says what changed.

use std::collections::{BTreeSet, HashMap};

use super::patch::{PatchOp, PlanPatch};
use crate::journal::AgentPhase;
use crate::plan::{Plan, Severity, Wave};

/// Why a patch cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// An operation names an agent the plan does not have.
    #[error("operation {op} ({name}): no agent {agent} in the plan")]
    UnknownAgent {
        /// 1-based operation number.
        op: usize,
        /// Operation name.
        name: &'static str,
        /// The agent id.
        agent: String,
    },
    /// An operation would change an agent in a phase where that is not allowed.
    #[error("operation {op} ({name}): agent {agent} is {phase}; {why}")]
    WrongPhase {
        /// 1-based operation number.
        op: usize,
        /// Operation name.
        name: &'static str,
        /// The agent id.
        agent: String,
        /// Its phase.
        phase: String,
        /// What is allowed instead.
        why: &'static str,
    },
    /// An operation would add an agent id that exists already.
    #[error("operation {op} ({name}): agent id {agent} exists already")]
    DuplicateAgent {
        /// 1-based operation number.
        op: usize,
        /// Operation name.
        name: &'static str,
        /// The agent id.
        agent: String,
    },
    /// A move to a wave that is not later.
    #[error("operation {op} (move): {to_wave} is not later than {agent}'s wave {from_wave}")]
    NotLater {
        /// 1-based operation number.
        op: usize,
        /// The agent.
        agent: String,
        /// Its wave.
        from_wave: String,
        /// The target.
        to_wave: String,
    },
    /// Another malformed operation.
    #[error("operation {op} ({name}): {message}")]
    Malformed {
        /// 1-based operation number.
        op: usize,
        /// Operation name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The patched plan breaks the plan's rules.
    #[error("the adapted plan is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// A patch applied to a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The adapted plan.
    pub plan: Plan,
    /// Agents that go back to pending (retried agents, and those blocked
    /// behind a changed agent).
    pub reset: Vec<String>,
    /// Agents taken out of the plan (split or skipped).
    pub removed: Vec<String>,
    /// The new concurrency limit, when the patch changes it.
    pub concurrency: Option<u32>,
    /// Indices of the waves whose agents changed (their gate stages run again).
    pub touched_waves: BTreeSet<usize>,
    /// What changed, one line per change.
    pub diff: String,
}

/// Applies `patch` to `plan`; `phase` gives each agent's phase in the run
/// (`None`: not started). `concurrency` is the run's current limit (for the diff).
pub fn apply_patch(
    plan: &Plan,
    phase: &dyn Fn(&str) -> Option<AgentPhase>,
    concurrency: usize,
    patch: &PlanPatch,
) -> Result<Applied, PatchError> {
    let mut plan = plan.clone();
    let mut diff = Vec::new();
    let mut reset = BTreeSet::new();
    let mut removed = BTreeSet::new();
    let mut touched = BTreeSet::new();
    let mut new_concurrency = None;
    if patch.operations.is_empty() {
        return Err(PatchError::Invalid(vec![
            "the patch has no operations".into(),
        ]));
    }
    for (i, op) in patch.operations.iter().enumerate() {
        let n = i + 1;
        let name = op.name();
        let find = |plan: &Plan, agent: &str| {
            locate(plan, agent).ok_or_else(|| PatchError::UnknownAgent {
                op: n,
                name,
                agent: agent.to_string(),
            })
        };
        let wrong = |agent: &str, p: AgentPhase, why: &'static str| PatchError::WrongPhase {
            op: n,
            name,
            agent: agent.to_string(),
            phase: p.as_str().to_string(),
            why,
        };
        match op {
            PatchOp::Retry {
                agent,
                work_description,
                add_dependencies,
                rerun_completed,
            } => {
                let (w, a) = find(&plan, agent)?;
                match phase(agent) {
                    Some(p @ AgentPhase::Running) => {
                        return Err(wrong(agent, p, "a running agent is never changed"));
                    }
                    Some(p @ AgentPhase::Completed) if !rerun_completed => {
                        return Err(wrong(
                            agent,
                            p,
                            "a completed agent runs again only with rerunCompleted: true",
                        ));
                    }
                    _ => {}
                }
                let def = &mut plan.waves[w].agents[a];
                if let Some(text) = work_description {
                    if text.trim().is_empty() {
                        return Err(PatchError::Malformed {
                            op: n,
                            name,
                            message: "the work description is empty".into(),
                        });
                    }
                    diff.push(describe_new_description(agent, &def.work_description, text));
                    def.work_description = text.clone();
                }
                for dep in add_dependencies {
                    if !def.dependencies.contains(dep) {
                        def.dependencies.push(dep.clone());
                        diff.push(format!("~ {agent}: now depends on {dep}"));
                    }
                }
                diff.push(format!("↻ {agent}: runs again"));
                reset.insert(agent.clone());
                touched.insert(w);
            }
            PatchOp::Split { agent, into } => {
                let (w, a) = find(&plan, agent)?;
                if let Some(p @ (AgentPhase::Running | AgentPhase::Completed)) = phase(agent) {
                    return Err(wrong(agent, p, "only work not done yet can be split"));
                }
                if into.len() < 2 {
                    return Err(PatchError::Malformed {
                        op: n,
                        name,
                        message: "a split needs at least two parts".into(),
                    });
                }
                let original = plan.waves[w].agents.remove(a);
                let mut parts = Vec::new();
                for (k, part) in into.iter().enumerate() {
                    if locate(&plan, &part.agent_id).is_some()
                        || into[..k].iter().any(|p| p.agent_id == part.agent_id)
                    {
                        return Err(PatchError::DuplicateAgent {
                            op: n,
                            name,
                            agent: part.agent_id.clone(),
                        });
                    }
                    let mut def = original.clone();
                    def.agent_id = part.agent_id.clone();
                    def.work_description = part.work_description.clone();
                    def.branch = None;
                    if let Some(scope) = &part.scope {
                        def.scope = Some(scope.clone());
                    }
                    if let Some(estimate) = part.estimated_duration {
                        def.estimated_duration = Some(estimate);
                    }
                    parts.push(def);
                }
                let ids: Vec<String> = parts.iter().map(|p| p.agent_id.clone()).collect();
                for (k, part) in parts.into_iter().enumerate() {
                    plan.waves[w].agents.insert(a + k, part);
                }
                replace_dependency(&mut plan, agent, &ids);
                diff.push(format!("÷ {agent} -> {}", ids.join(", ")));
                removed.insert(agent.clone());
                touched.insert(w);
            }
            PatchOp::Add { wave, agent } => {
                if locate(&plan, &agent.agent_id).is_some() {
                    return Err(PatchError::DuplicateAgent {
                        op: n,
                        name,
                        agent: agent.agent_id.clone(),
                    });
                }
                let w = wave_index_or_append(&mut plan, wave);
                plan.waves[w].agents.push((**agent).clone());
                let deps = if agent.dependencies.is_empty() {
                    String::new()
                } else {
                    format!(", depends on {}", agent.dependencies.join(", "))
                };
                diff.push(format!(
                    "+ {} in {wave}{deps}: {:?}",
                    agent.agent_id,
                    short(&agent.work_description)
                ));
                touched.insert(w);
            }
            PatchOp::Move { agent, to_wave } => {
                let (w, a) = find(&plan, agent)?;
                if let Some(p @ (AgentPhase::Running | AgentPhase::Completed)) = phase(agent) {
                    return Err(wrong(agent, p, "only work not done yet can move"));
                }
                let target = plan.waves.iter().position(|x| &x.wave_id == to_wave);
                if target.is_some_and(|t| t <= w) {
                    return Err(PatchError::NotLater {
                        op: n,
                        agent: agent.clone(),
                        from_wave: plan.waves[w].wave_id.clone(),
                        to_wave: to_wave.clone(),
                    });
                }
                let def = plan.waves[w].agents.remove(a);
                let t = wave_index_or_append(&mut plan, to_wave);
                plan.waves[t].agents.push(def);
                diff.push(format!("> {agent}: {} -> {to_wave}", plan.waves[w].wave_id));
                reset.insert(agent.clone());
                touched.extend([w, t]);
            }
            PatchOp::Skip { agent } => {
                let (w, a) = find(&plan, agent)?;
                if let Some(p @ (AgentPhase::Running | AgentPhase::Completed)) = phase(agent) {
                    return Err(wrong(agent, p, "only work not done yet can be skipped"));
                }
                plan.waves[w].agents.remove(a);
                replace_dependency(&mut plan, agent, &[]);
                diff.push(format!("- {agent}: skipped"));
                removed.insert(agent.clone());
                touched.insert(w);
            }
            PatchOp::Concurrency { value } => {
                if *value == 0 {
                    return Err(PatchError::Malformed {
                        op: n,
                        name,
                        message: "concurrency must be at least 1".into(),
                    });
                }
                diff.push(format!("~ concurrency: {concurrency} -> {value}"));
                plan.concurrency = Some(*value);
                new_concurrency = Some(*value);
            }
        }
    }
    // Empty waves are kept (wave ids and gate stages stay where they were).
    let errors: Vec<String> = crate::plan::validate::validate(&plan, Default::default())
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{} ({}): {}", d.code, d.path, d.message))
        .collect();
    if !errors.is_empty() {
        return Err(PatchError::Invalid(errors));
    }
    for id in &removed {
        reset.remove(id);
    }
    // Agents blocked behind anything that changed can run again once it does.
    let changed: BTreeSet<String> = reset.iter().chain(&removed).cloned().collect();
    for id in blocked_behind(&plan, phase, &changed) {
        reset.insert(id);
    }
    Ok(Applied {
        plan,
        reset: reset.into_iter().collect(),
        removed: removed.into_iter().collect(),
        concurrency: new_concurrency,
        touched_waves: touched,
        diff: diff.join("\n"),
    })
}

fn locate(plan: &Plan, agent: &str) -> Option<(usize, usize)> {
    plan.agents()
        .find(|(_, _, a)| a.agent_id == agent)
        .map(|(w, a, _)| (w, a))
}

fn wave_index_or_append(plan: &mut Plan, wave: &str) -> usize {
    if let Some(w) = plan.waves.iter().position(|x| x.wave_id == wave) {
        return w;
    }
    plan.waves.push(Wave {
        wave_id: wave.to_string(),
        parallel: true,
        description: Some("added by a plan adaptation".into()),
        agents: Vec::new(),
    });
    plan.waves.len() - 1
}

/// Every dependency on `old` becomes dependencies on `new` (none: dropped).
fn replace_dependency(plan: &mut Plan, old: &str, new: &[String]) {
    for wave in &mut plan.waves {
        for agent in &mut wave.agents {
            if let Some(i) = agent.dependencies.iter().position(|d| d == old) {
                agent.dependencies.remove(i);
                for id in new {
                    if !agent.dependencies.contains(id) {
                        agent.dependencies.push(id.clone());
                    }
                }
            }
        }
    }
}

/// Blocked agents that (transitively) depend on a changed agent, or on
/// one of the changed agents' replacements (a dependency that is new to
/// them), in the adapted plan.
fn blocked_behind(
    plan: &Plan,
    phase: &dyn Fn(&str) -> Option<AgentPhase>,
    changed: &BTreeSet<String>,
) -> Vec<String> {
    let deps: HashMap<&str, &[String]> = plan
        .agents()
        .map(|(_, _, a)| (a.agent_id.as_str(), a.dependencies.as_slice()))
        .collect();
    let mut memo: HashMap<&str, bool> = HashMap::new();
    fn behind<'p>(
        id: &'p str,
        deps: &HashMap<&'p str, &'p [String]>,
        changed: &BTreeSet<String>,
        phase: &dyn Fn(&str) -> Option<AgentPhase>,
        memo: &mut HashMap<&'p str, bool>,
        depth: usize,
    ) -> bool {
        if let Some(&known) = memo.get(id) {
            return known;
        }
        if depth > deps.len() {
            return false;
        }
        memo.insert(id, false);
        let found = deps.get(id).is_some_and(|ds| {
            ds.iter().any(|d| {
                changed.contains(d)
                    // A replacement part or a new agent has no phase yet.
                    || phase(d).is_none()
                    || behind(d, deps, changed, phase, memo, depth + 1)
            })
        });
        memo.insert(id, found);
        found
    }
    plan.agents()
        .map(|(_, _, a)| a.agent_id.as_str())
        .filter(|id| phase(id) == Some(AgentPhase::Blocked))
        .filter(|id| behind(id, &deps, changed, phase, &mut memo, 0))
        .map(str::to_string)
        .collect()
}

/// A diff line for a revised work description: what was added when the new
/// one extends the old, else both.
fn describe_new_description(agent: &str, old: &str, new: &str) -> String {
    match new.strip_prefix(old) {
        Some(added) if !old.is_empty() => {
            format!(
                "~ {agent}: workDescription += {:?}",
                short(added.trim_start())
            )
        }
        _ => format!(
            "~ {agent}: workDescription {:?} -> {:?}",
            short(old),
            short(new)
        ),
    }
}

/// The first line of `text`, at most 80 characters.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 80 || text.lines().nth(1).is_some() {
        let cut: String = line.chars().take(77).collect();
        format!("{cut}...")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "orchestrationId": "p",
            "waves": [
                {"waveId": "w1", "agents": [
                    {"agentId": "A", "workDescription": "build a"},
                    {"agentId": "S", "workDescription": "side"}]},
                {"waveId": "w2", "parallel": false, "agents": [
                    {"agentId": "B", "workDescription": "build b", "dependencies": ["A"]},
                    {"agentId": "C", "workDescription": "build c", "dependencies": ["B"]}]}
            ]
        }))
        .unwrap()
    }

    fn patch(ops: serde_json::Value) -> PlanPatch {
        serde_json::from_value(serde_json::json!({"reason": "test", "operations": ops})).unwrap()
    }

    fn phases(list: &[(&str, AgentPhase)]) -> impl Fn(&str) -> Option<AgentPhase> {
        let map: HashMap<String, AgentPhase> =
            list.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        move |id| map.get(id).copied()
    }

    #[test]
    fn a_retry_revises_the_description_and_unblocks_dependants() {
        let phase = phases(&[
            ("A", AgentPhase::Failed),
            ("S", AgentPhase::Completed),
            ("B", AgentPhase::Blocked),
            ("C", AgentPhase::Blocked),
        ]);
        let applied = apply_patch(
            &plan(),
            &phase,
            2,
            &patch(serde_json::json!([{"op": "retry", "agent": "A", "workDescription": "build a, and fix it"}])),
        )
        .unwrap();
        assert_eq!(applied.reset, ["A", "B", "C"]);
        assert_eq!(
            applied.plan.waves[0].agents[0].work_description,
            "build a, and fix it"
        );
        assert!(
            applied
                .diff
                .contains("~ A: workDescription += \", and fix it\""),
            "{}",
            applied.diff
        );
        assert_eq!(applied.touched_waves, BTreeSet::from([0]));
    }

    #[test]
    fn a_patch_that_makes_a_cycle_is_refused() {
        let phase = phases(&[("A", AgentPhase::Failed), ("B", AgentPhase::Blocked)]);
        let err = apply_patch(
            &plan(),
            &phase,
            2,
            &patch(serde_json::json!([
                {"op": "add", "wave": "w1", "agent": {"agentId": "FIX", "workDescription": "fix", "dependencies": ["B"]}},
                {"op": "retry", "agent": "A", "addDependencies": ["FIX"]}
            ])),
        )
        .unwrap_err();
        let PatchError::Invalid(errors) = &err else {
            panic!("{err}");
        };
        assert!(errors.iter().any(|e| e.contains("cycle")), "{errors:?}");
    }

    #[test]
    fn completed_and_running_agents_are_protected() {
        let phase = phases(&[("A", AgentPhase::Completed), ("B", AgentPhase::Running)]);
        let cases = [
            (
                serde_json::json!([{"op": "retry", "agent": "A"}]),
                "rerunCompleted",
            ),
            (
                serde_json::json!([{"op": "retry", "agent": "B"}]),
                "running",
            ),
            (
                serde_json::json!([{"op": "skip", "agent": "A"}]),
                "completed",
            ),
            (
                serde_json::json!([{"op": "split", "agent": "B", "into": [
                {"agentId": "B1", "workDescription": "x"}, {"agentId": "B2", "workDescription": "y"}]}]),
                "running",
            ),
            (
                serde_json::json!([{"op": "retry", "agent": "NOPE"}]),
                "no agent NOPE",
            ),
        ];
        for (ops, expected) in cases {
            let err = apply_patch(&plan(), &phase, 2, &patch(ops.clone())).unwrap_err();
            assert!(err.to_string().contains(expected), "{ops}: {err}");
        }
        // Asked explicitly, a completed agent runs again.
        let applied = apply_patch(
            &plan(),
            &phase,
            2,
            &patch(serde_json::json!([{"op": "retry", "agent": "A", "rerunCompleted": true}])),
        )
        .unwrap();
        assert_eq!(applied.reset, ["A"]);
    }

    #[test]
    fn a_split_rewires_dependants_to_every_part() {
        let phase = phases(&[("A", AgentPhase::Failed), ("B", AgentPhase::Blocked)]);
        let applied = apply_patch(
            &plan(),
            &phase,
            2,
            &patch(serde_json::json!([{"op": "split", "agent": "A", "into": [
                {"agentId": "A1", "workDescription": "first half"},
                {"agentId": "A2", "workDescription": "second half"}]}])),
        )
        .unwrap();
        let ids: Vec<_> = applied
            .plan
            .agents()
            .map(|(_, _, a)| a.agent_id.clone())
            .collect();
        assert_eq!(ids, ["A1", "A2", "S", "B", "C"]);
        let b = applied
            .plan
            .agents()
            .find(|(_, _, a)| a.agent_id == "B")
            .unwrap()
            .2;
        assert_eq!(b.dependencies, ["A1", "A2"]);
        assert_eq!(applied.removed, ["A"]);
        assert_eq!(applied.reset, ["B"]);
        assert!(applied.diff.contains("÷ A -> A1, A2"));
    }

    #[test]
    fn skip_move_and_concurrency() {
        let phase = phases(&[("A", AgentPhase::Completed)]);
        let applied = apply_patch(
            &plan(),
            &phase,
            4,
            &patch(serde_json::json!([
                {"op": "skip", "agent": "B"},
                {"op": "move", "agent": "S", "toWave": "w3"},
                {"op": "concurrency", "value": 2}
            ])),
        )
        .unwrap();
        let c = applied
            .plan
            .agents()
            .find(|(_, _, a)| a.agent_id == "C")
            .unwrap()
            .2;
        assert!(c.dependencies.is_empty());
        assert_eq!(applied.plan.waves[2].wave_id, "w3");
        assert_eq!(applied.plan.waves[2].agents[0].agent_id, "S");
        assert_eq!(applied.concurrency, Some(2));
        assert_eq!(applied.removed, ["B"]);
        assert!(
            applied.diff.contains("~ concurrency: 4 -> 2"),
            "{}",
            applied.diff
        );
        // A move must go later.
        let err = apply_patch(
            &plan(),
            &phase,
            4,
            &patch(serde_json::json!([{"op": "move", "agent": "B", "toWave": "w1"}])),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NotLater { .. }), "{err}");
    }

    #[test]
    fn a_move_before_a_dependency_is_refused_by_validation() {
        // B depends on A (wave 1); moving A after B breaks the wave order.
        let err = apply_patch(
            &plan(),
            &phases(&[]),
            2,
            &patch(serde_json::json!([{"op": "move", "agent": "A", "toWave": "w3"}])),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)), "{err}");
    }
}
