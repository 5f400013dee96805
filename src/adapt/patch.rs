//! The typed plan patch an adaptation proposes: what it may change, how it
//! is read (JSON, unknown fields rejected) and which changes need a person's
//! approval under each `--risk-tolerance`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::RiskTolerance;
use crate::plan::{Agent, PlanDuration, Scope};

/// A proposed change to a running plan: one or more operations, applied
/// together or not at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanPatch {
    /// Why: what the analysis found and what the change should achieve.
    pub reason: String,
    /// The changes, applied in order.
    #[schemars(length(min = 1))]
    pub operations: Vec<PatchOp>,
}

/// One change to the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "op",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum PatchOp {
    /// Run a failed, blocked or pending agent again, optionally with a
    /// revised work description and extra dependencies (e.g. on a fix-up
    /// agent added by the same patch). A completed agent runs again only
    /// with `rerunCompleted: true`.
    Retry {
        /// The agent.
        agent: String,
        /// The revised work description (default: unchanged).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_description: Option<String>,
        /// Agents it must now also wait for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add_dependencies: Vec<String>,
        /// Allow running a completed agent again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rerun_completed: bool,
    },
    /// Replace an agent that has not completed by several smaller ones in
    /// its wave. Each part keeps the original's settings except what it
    /// names, depends on what the original depended on, and the original's
    /// dependants wait for every part.
    Split {
        /// The agent to replace.
        agent: String,
        /// The parts (at least two).
        #[schemars(length(min = 2))]
        into: Vec<AgentPart>,
    },
    /// Add a new agent (a fix-up, say) to a wave; a wave id the plan does
    /// not have is appended as a new last wave.
    Add {
        /// The wave.
        wave: String,
        /// The new agent, as in a plan file.
        agent: Box<Agent>,
    },
    /// Move an agent that has not started (or failed) to a later wave; a
    /// wave id the plan does not have is appended as a new last wave.
    Move {
        /// The agent.
        agent: String,
        /// The later wave.
        to_wave: String,
    },
    /// Drop an agent that has not completed from the plan; its dependants
    /// no longer wait for it.
    Skip {
        /// The agent.
        agent: String,
    },
    /// Change how many agents run at once.
    Concurrency {
        /// The new limit (at least 1).
        #[schemars(range(min = 1))]
        value: u32,
    },
}

/// One part of a split agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentPart {
    /// A new, unique agent id.
    pub agent_id: String,
    /// What this part must do.
    pub work_description: String,
    /// Its scope (default: the original's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Its estimate (default: the original's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration: Option<PlanDuration>,
}

impl PatchOp {
    /// The operation's name as written in JSON (`retry`, `split`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            PatchOp::Retry { .. } => "retry",
            PatchOp::Split { .. } => "split",
            PatchOp::Add { .. } => "add",
            PatchOp::Move { .. } => "move",
            PatchOp::Skip { .. } => "skip",
            PatchOp::Concurrency { .. } => "concurrency",
        }
    }

    /// Whether this kind of change changes the plan's structure (adds,
    /// removes or replaces work) rather than re-running or re-ordering it.
    pub fn is_structural(&self) -> bool {
        matches!(
            self,
            PatchOp::Split { .. } | PatchOp::Add { .. } | PatchOp::Skip { .. }
        )
    }
}

impl PlanPatch {
    /// Whether applying this patch waits for `resume --approve` under
    /// `risk`: `low` approves every patch by hand; `medium` (the default)
    /// applies retries, moves and concurrency changes automatically and asks
    /// for splits, additions and skips; `high` applies everything.
    pub fn needs_approval(&self, risk: RiskTolerance) -> bool {
        match risk {
            RiskTolerance::Low => true,
            RiskTolerance::Medium => self.operations.iter().any(PatchOp::is_structural),
            RiskTolerance::High => false,
        }
    }

    /// The JSON Schema of a patch (given to the analyzer LLM).
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(PlanPatch)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_operation_from_json() {
        let patch: PlanPatch = serde_json::from_str(
            r#"{"reason": "r", "operations": [
                {"op": "retry", "agent": "A", "workDescription": "again", "addDependencies": ["FIX"]},
                {"op": "split", "agent": "B", "into": [
                    {"agentId": "B1", "workDescription": "one"},
                    {"agentId": "B2", "workDescription": "two", "scope": "b2", "estimatedDuration": "1h"}]},
                {"op": "add", "wave": "w9", "agent": {"agentId": "FIX", "workDescription": "fix it"}},
                {"op": "move", "agent": "C", "toWave": "w2"},
                {"op": "skip", "agent": "D"},
                {"op": "concurrency", "value": 2}
            ]}"#,
        )
        .unwrap();
        let names: Vec<_> = patch.operations.iter().map(PatchOp::name).collect();
        assert_eq!(
            names,
            ["retry", "split", "add", "move", "skip", "concurrency"]
        );
        assert_eq!(
            patch.operations[0],
            PatchOp::Retry {
                agent: "A".into(),
                work_description: Some("again".into()),
                add_dependencies: vec!["FIX".into()],
                rerun_completed: false,
            }
        );
    }

    #[test]
    fn rejects_unknown_operations_and_fields() {
        for bad in [
            r#"{"reason": "r", "operations": [{"op": "explode", "agent": "A"}]}"#,
            r#"{"reason": "r", "operations": [{"op": "skip", "agent": "A", "why": "x"}]}"#,
            r#"{"reason": "r", "operations": [{"op": "retry"}]}"#,
            r#"{"operations": []}"#,
        ] {
            assert!(serde_json::from_str::<PlanPatch>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn approval_follows_the_risk_tolerance() {
        let retry = PlanPatch {
            reason: "r".into(),
            operations: vec![PatchOp::Concurrency { value: 1 }],
        };
        let skip = PlanPatch {
            reason: "r".into(),
            operations: vec![PatchOp::Skip { agent: "A".into() }],
        };
        assert!(retry.needs_approval(RiskTolerance::Low));
        assert!(!retry.needs_approval(RiskTolerance::Medium));
        assert!(skip.needs_approval(RiskTolerance::Medium));
        assert!(!skip.needs_approval(RiskTolerance::High));
    }

    #[test]
    fn the_schema_names_every_operation() {
        let schema = PlanPatch::json_schema().to_string();
        for op in ["retry", "split", "add", "move", "skip", "concurrency"] {
            assert!(schema.contains(&format!("\"{op}\"")), "{op}");
        }
    }
}
