//! The plan: the seed's execution-plan and quality-gate JSON, plus our documented extensions.
//!
//! These types are the single plan model used everywhere. They serialize to the
//! camelCase JSON the seed writes and generate the JSON Schema printed by
//! `llm-orchestrate schema`. Loading from files goes through [`super::decode`],
//! which reports every problem with its location instead of stopping at the first.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::duration::{PlanDuration, ProgressReporting};
use super::enums::string_serde;
pub use super::enums::{
    ConflictHandling, DriverKind, ExecutionMode, FailureAction, FailureStrategy, GateParser,
    Permissions, Platform,
};

/// A whole execution plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// Names the orchestration (and prefixes run ids).
    pub orchestration_id: String,
    /// Platform for agents that do not name their own (`auto`/`auto-detect` detects).
    #[serde(default)]
    pub platform: Platform,
    /// `waves`, `continuous` or `adaptive`.
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// Free text shown in renders and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The waves, in order.
    pub waves: Vec<Wave>,
    /// Conflict, reporting and failure rules.
    #[serde(default)]
    pub coordination_rules: CoordinationRules,
    /// Gate stages keyed by wave id (or `wave1`-style position) and `final`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quality_gates: BTreeMap<String, GateStage>,
    /// Gate definitions by name (extension). Names without a definition use built-in presets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gates: BTreeMap<String, GateDefinition>,
    /// Most agents running at once (extension; `--concurrency` overrides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// Spending limit for the whole run in US dollars (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// Git workspace settings (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
}

/// A group of agents scheduled together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    /// Unique wave id.
    pub wave_id: String,
    /// Run the wave's agents concurrently (`true`, the default) or one after another.
    #[serde(default = "default_true")]
    pub parallel: bool,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The agents.
    pub agents: Vec<Agent>,
}

fn default_true() -> bool {
    true
}

/// One agent: a unit of work for one LLM (or command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Agent {
    /// Unique agent id, e.g. `AUTH_IMPL`.
    pub agent_id: String,
    /// What the agent must do.
    pub work_description: String,
    /// The folder(s) the agent works in and may change (relative to the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// How long the work should take, e.g. `2h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_duration: Option<PlanDuration>,
    /// Agent ids that must complete before this one starts.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Gate names run on this agent's work when it finishes.
    #[serde(default)]
    pub quality_gates: Vec<String>,
    /// Platform override (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Driver override (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverKind>,
    /// Model name override (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Command for the `shell` driver: an argv array, or a string run with `sh -c` (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// Git branch for the agent's work (extension; default `llmo/<run-id>/<agent-id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Hard time limit (extension; default `estimatedDuration` × `--timeout-factor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PlanDuration>,
    /// Extra attempts after a failure (extension; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Spending limit for this agent in US dollars (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// Most model turns for API drivers (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_turns: Option<u32>,
    /// Extra environment variables for the agent's process (extension).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// What an agent CLI may do without asking (extension; default
    /// `workspace-write`; ignored by the other drivers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// Extra arguments appended verbatim to an agent CLI's command line
    /// (extension; an argv list, never a shell string; ignored by the other drivers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cli_args: Vec<String>,
    /// Base URL of the OpenAI-compatible server for an `open-source` agent
    /// (extension; e.g. `http://gpu-box:8000/v1`; default `OPENAI_BASE_URL`,
    /// else `OLLAMA_HOST`). Only `OPENAI_COMPATIBLE_API_KEY` is ever sent to
    /// a URL from a plan file, never `OPENAI_API_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl Agent {
    /// The agent's scope paths (empty when it has none).
    pub fn scope_paths(&self) -> &[String] {
        self.scope.as_ref().map_or(&[], |s| s.paths())
    }

    /// The first scope path, or `.` (the repository root).
    pub fn working_directory(&self) -> &str {
        self.scope_paths().first().map_or(".", String::as_str)
    }
}

/// One folder (`"auth-service"`) or several (`["auth-service", "shared/auth"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(Vec<String>);

impl Scope {
    /// A scope of the given paths.
    pub fn new(paths: Vec<String>) -> Self {
        Self(paths)
    }

    /// The paths.
    pub fn paths(&self) -> &[String] {
        &self.0
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::One(s) => Scope(vec![s]),
            Repr::Many(v) => Scope(v),
        })
    }
}

impl JsonSchema for Scope {
    fn schema_name() -> Cow<'static, str> {
        "Scope".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A folder, or a list of folders, relative to the repository.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

/// A command: an argv array (run directly) or a string (run with `sh -c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CommandSpec {
    /// A string, run with `sh -c`.
    Shell(String),
    /// An argv array; the first element is the program.
    Argv(Vec<String>),
}

impl CommandSpec {
    /// A readable one-line form.
    pub fn display(&self) -> String {
        match self {
            CommandSpec::Shell(s) => s.clone(),
            CommandSpec::Argv(argv) => argv
                .iter()
                .map(|a| {
                    if a.is_empty()
                        || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c))
                    {
                        format!("'{}'", a.replace('\'', "'\\''"))
                    } else {
                        a.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The seed's coordination rules.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CoordinationRules {
    /// What to do about conflicts.
    #[serde(default)]
    pub conflict_handling: ConflictHandling,
    /// How often agents report, e.g. `every-30-min`.
    #[serde(default)]
    pub progress_reporting: ProgressReporting,
    /// What happens to others when an agent fails.
    #[serde(default)]
    pub failure_strategy: FailureStrategy,
}

string_serde!(ProgressReporting);
string_serde!(PlanDuration);

impl JsonSchema for ProgressReporting {
    fn schema_name() -> Cow<'static, str> {
        "ProgressReporting".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`every-30-min`, `every-2-hours`, `every-5m`, a duration such as `15m`, or `off`.",
            "pattern": "^(off|none|never|on-change|(every-)?[0-9.]+[- ]?[A-Za-z]+([- ]?[0-9.]+[- ]?[A-Za-z]+)*)$"
        })
    }
}

impl JsonSchema for PlanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as `90s`, `30m`, `2h`, `1h30m` or `1.5h`.",
            "pattern": "^ *[0-9.]+ *[A-Za-z]+( *[0-9.]+ *[A-Za-z]+)* *$"
        })
    }
}

/// A quality-gate stage: which gates run at a point of the plan and what follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateStage {
    /// Gate names.
    pub gates: Vec<String>,
    /// What a failure does.
    #[serde(default)]
    pub failure_action: FailureAction,
    /// What success does.
    #[serde(default)]
    pub success_action: SuccessAction,
    /// Most rollback-and-retry rounds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// What passing a gate stage leads to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SuccessAction {
    /// Go on with the next wave.
    #[default]
    Proceed,
    /// Go on with the named wave (`proceed-to-wave2`).
    ProceedTo(String),
    /// Merge all work into the base branch.
    MergeAll,
}

impl FromStr for SuccessAction {
    type Err = super::enums::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "proceed" => Ok(SuccessAction::Proceed),
            "merge-all" => Ok(SuccessAction::MergeAll),
            _ => match s.strip_prefix("proceed-to-") {
                Some(target) if !target.is_empty() => Ok(SuccessAction::ProceedTo(target.into())),
                _ => Err(super::enums::UnknownValue::new(
                    s,
                    &["proceed", "proceed-to-<waveId>", "merge-all"],
                )),
            },
        }
    }
}

impl fmt::Display for SuccessAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuccessAction::Proceed => f.write_str("proceed"),
            SuccessAction::ProceedTo(w) => write!(f, "proceed-to-{w}"),
            SuccessAction::MergeAll => f.write_str("merge-all"),
        }
    }
}

string_serde!(SuccessAction);

impl JsonSchema for SuccessAction {
    fn schema_name() -> Cow<'static, str> {
        "SuccessAction".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`proceed`, `proceed-to-<waveId>` or `merge-all`.",
            "pattern": "^(proceed|merge-all|proceed-to-.+)$"
        })
    }
}

/// How to run one named gate (extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateDefinition {
    /// The command (argv array or `sh -c` string).
    pub command: CommandSpec,
    /// Where to run it, relative to the agent's scope (default: the scope itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// Time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PlanDuration>,
    /// How to read the output.
    #[serde(default)]
    pub parser: GateParser,
    /// JUnit XML file the command writes (for `junit-xml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit_path: Option<String>,
}

/// Git workspace settings (extension).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workspace {
    /// Branch the run starts from and `merge-all` lands on (default: the current branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_branch: Option<String>,
    /// Branch that collects each wave's merged work (default `llmo/<run-id>/integration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_branch: Option<String>,
    /// Command run in each new worktree (copy .env, install dependencies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<CommandSpec>,
}

impl Plan {
    /// Every agent with its wave index and position in the wave, in plan order.
    pub fn agents(&self) -> impl Iterator<Item = (usize, usize, &Agent)> {
        self.waves.iter().enumerate().flat_map(|(w, wave)| {
            wave.agents
                .iter()
                .enumerate()
                .map(move |(a, agent)| (w, a, agent))
        })
    }

    /// Number of agents in all waves.
    pub fn agent_count(&self) -> usize {
        self.waves.iter().map(|w| w.agents.len()).sum()
    }

    /// The gate stage for a wave: keyed by its id or by `wave<N>` (1-based position).
    pub fn gate_stage_for_wave(&self, wave_index: usize) -> Option<(&str, &GateStage)> {
        let wave = self.waves.get(wave_index)?;
        let positional = format!("wave{}", wave_index + 1);
        self.quality_gates
            .get_key_value(wave.wave_id.as_str())
            .or_else(|| self.quality_gates.get_key_value(positional.as_str()))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The `final` gate stage.
    pub fn final_gate_stage(&self) -> Option<&GateStage> {
        self.quality_gates.get("final")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_camel_case_and_round_trips() {
        let json = serde_json::json!({
            "orchestrationId": "x",
            "platform": "auto-detect",
            "waves": [{"waveId": "w1", "agents": [{
                "agentId": "A", "workDescription": "do", "scope": "svc",
                "estimatedDuration": "1h30m", "command": ["echo", "hi"]
            }]}],
            "coordinationRules": {"progressReporting": "every-30-min"},
            "qualityGates": {"w1": {"gates": ["unit-tests"], "successAction": "proceed-to-w2"}}
        });
        let plan: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(plan.platform, Platform::Auto);
        assert!(plan.waves[0].parallel);
        assert_eq!(plan.waves[0].agents[0].scope_paths(), ["svc"]);
        assert_eq!(
            plan.quality_gates["w1"].success_action,
            SuccessAction::ProceedTo("w2".into())
        );
        let back = serde_json::to_value(&plan).unwrap();
        assert_eq!(back["waves"][0]["agents"][0]["estimatedDuration"], "1h30m");
        assert_eq!(back["platform"], "auto");
        let again: Plan = serde_json::from_value(back).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn finds_gate_stages_by_wave_id_or_position() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "orchestrationId": "x",
            "waves": [{"waveId": "build", "agents": []}, {"waveId": "test", "agents": []}],
            "qualityGates": {"wave1": {"gates": ["linting"]}, "test": {"gates": ["e2e-tests"]}}
        }))
        .unwrap();
        assert_eq!(plan.gate_stage_for_wave(0).unwrap().0, "wave1");
        assert_eq!(plan.gate_stage_for_wave(1).unwrap().0, "test");
        assert!(plan.final_gate_stage().is_none());
    }

    #[test]
    fn command_display_quotes_what_needs_it() {
        let c = CommandSpec::Argv(vec!["echo".into(), "hello world".into(), "it's".into()]);
        assert_eq!(c.display(), "echo 'hello world' 'it'\\''s'");
    }
}
