//! [`Node`] tree → [`Plan`], collecting every problem instead of stopping at the first.
//!
//! The decoder always produces a best-effort plan (placeholders where values
//! are missing or wrong) so that semantic validation can run too and the user
//! sees all problems at once. Placeholders are empty strings, which the
//! validator skips.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use super::diagnostics::{Diagnostic, Severity};
use super::enums::{UnknownValue, suggest};
use super::model::*;
use super::path::PlanPath;
use super::tree::{Key, Node, Value};

/// Options that change how strictly a plan is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeOptions {
    /// Unknown fields and duplicate keys are errors instead of warnings.
    pub strict: bool,
}

/// The known member names of each object type (also checked against the JSON Schema in tests).
pub mod fields {
    /// Top-level plan members.
    pub const PLAN: &[&str] = &[
        "orchestrationId",
        "platform",
        "executionMode",
        "description",
        "waves",
        "coordinationRules",
        "qualityGates",
        "gates",
        "concurrency",
        "budgetUsd",
        "workspace",
    ];
    /// Wave members.
    pub const WAVE: &[&str] = &["waveId", "parallel", "description", "agents"];
    /// Agent members.
    pub const AGENT: &[&str] = &[
        "agentId",
        "workDescription",
        "scope",
        "estimatedDuration",
        "dependencies",
        "qualityGates",
        "platform",
        "driver",
        "model",
        "command",
        "branch",
        "timeout",
        "maxRetries",
        "budgetUsd",
        "maxTurns",
        "env",
        "permissions",
        "cliArgs",
        "baseUrl",
    ];
    /// Coordination-rule members.
    pub const RULES: &[&str] = &["conflictHandling", "progressReporting", "failureStrategy"];
    /// Gate-stage members.
    pub const STAGE: &[&str] = &["gates", "failureAction", "successAction", "maxRetries"];
    /// Gate-definition members.
    pub const GATE: &[&str] = &[
        "command",
        "workingDirectory",
        "timeout",
        "parser",
        "junitPath",
    ];
    /// Workspace members.
    pub const WORKSPACE: &[&str] = &["baseBranch", "integrationBranch", "setup"];
}

/// Decodes a plan document.
pub fn decode_plan(root: &Node, options: DecodeOptions) -> (Plan, Vec<Diagnostic>) {
    let mut d = Decoder {
        diagnostics: Vec::new(),
        options,
    };
    let plan = d.plan(root);
    (plan, d.diagnostics)
}

struct Decoder {
    diagnostics: Vec<Diagnostic>,
    options: DecodeOptions,
}

/// An object being read: remembers which members were used.
struct Obj<'n> {
    members: &'n [(Key, Node)],
    path: PlanPath,
    used: Vec<bool>,
}

impl Decoder {
    fn error(&mut self, code: &'static str, path: &PlanPath, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(code, path.clone(), message));
    }

    fn lenient_severity(&self) -> Severity {
        if self.options.strict {
            Severity::Error
        } else {
            Severity::Warning
        }
    }

    fn type_error(&mut self, node: &Node, path: &PlanPath, expected: &str) {
        let found = match &node.value {
            Value::String(s) => format!("string {s:?}"),
            other => other.type_name().to_string(),
        };
        self.error("type", path, format!("expected {expected}, found {found}"));
    }

    fn object<'n>(&mut self, node: &'n Node, path: &PlanPath) -> Option<Obj<'n>> {
        match &node.value {
            Value::Object(members) => Some(Obj {
                members,
                path: path.clone(),
                used: vec![false; members.len()],
            }),
            _ => {
                self.type_error(node, path, "an object");
                None
            }
        }
    }

    /// Takes member `name` (the last one if it is repeated).
    fn take<'n>(&mut self, obj: &mut Obj<'n>, name: &'static str) -> Option<(&'n Node, PlanPath)> {
        let mut found: Option<usize> = None;
        for (i, (key, _)) in obj.members.iter().enumerate() {
            if key.name == name {
                if found.is_some() {
                    let diagnostic = Diagnostic {
                        severity: self.lenient_severity(),
                        code: "duplicate-key",
                        message: format!(
                            "{name:?} is written more than once; the last one is used"
                        ),
                        path: obj.path.field(name),
                        span: Some(key.span),
                        help: None,
                    };
                    self.diagnostics.push(diagnostic);
                }
                found = Some(i);
                obj.used[i] = true;
            }
        }
        found.map(|i| (&obj.members[i].1, obj.path.field(name)))
    }

    fn required<'n>(
        &mut self,
        obj: &mut Obj<'n>,
        name: &'static str,
    ) -> Option<(&'n Node, PlanPath)> {
        let found = self.take(obj, name);
        if found.is_none() {
            self.error(
                "missing-field",
                &obj.path,
                format!("missing required field {name:?}"),
            );
        }
        found
    }

    fn finish(&mut self, obj: Obj<'_>, known: &[&str]) {
        for ((key, _), used) in obj.members.iter().zip(obj.used) {
            if used {
                continue;
            }
            let mut message = format!("unknown field {:?}", key.name);
            if let Some(s) = suggest(&key.name, known.iter().copied()) {
                message.push_str(&format!(" (did you mean {s:?}?)"));
            }
            let diagnostic = Diagnostic {
                severity: self.lenient_severity(),
                code: "unknown-field",
                message,
                path: obj.path.key(&key.name),
                span: Some(key.span),
                help: Some(format!("known fields here: {}", known.join(", "))),
            };
            self.diagnostics.push(diagnostic);
        }
    }

    fn string(&mut self, node: &Node, path: &PlanPath) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    fn non_empty_string(&mut self, node: &Node, path: &PlanPath) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.error("invalid-value", path, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn boolean(&mut self, node: &Node, path: &PlanPath) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.type_error(node, path, "true or false");
                None
            }
        }
    }

    fn count(&mut self, node: &Node, path: &PlanPath, min: u32) -> Option<u32> {
        match &node.value {
            Value::Integer(i) => match u32::try_from(*i) {
                Ok(v) if v >= min => Some(v),
                _ => {
                    self.error(
                        "invalid-value",
                        path,
                        format!(
                            "must be a whole number from {min} to {}, found {i}",
                            u32::MAX
                        ),
                    );
                    None
                }
            },
            _ => {
                self.type_error(node, path, "a whole number");
                None
            }
        }
    }

    fn money(&mut self, node: &Node, path: &PlanPath) -> Option<f64> {
        let value = match &node.value {
            Value::Integer(i) => *i as f64,
            Value::Float(f) => *f,
            _ => {
                self.type_error(node, path, "a number of US dollars");
                return None;
            }
        };
        if !value.is_finite() || value < 0.0 {
            self.error(
                "invalid-value",
                path,
                format!("must be zero or more, found {value}"),
            );
            return None;
        }
        Some(value)
    }

    /// A string parsed with `FromStr` (enums, durations).
    fn parsed<T>(&mut self, node: &Node, path: &PlanPath, code: &'static str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        let text = self.string(node, path)?;
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(code, path, e.to_string());
                None
            }
        }
    }

    fn enumeration<T>(&mut self, node: &Node, path: &PlanPath) -> Option<T>
    where
        T: FromStr<Err = UnknownValue>,
    {
        self.parsed(node, path, "unknown-value")
    }

    fn duration(&mut self, node: &Node, path: &PlanPath) -> Option<PlanDuration> {
        if matches!(node.value, Value::Integer(_) | Value::Float(_)) {
            self.error(
                "invalid-duration",
                path,
                "a duration needs a unit: write e.g. \"90s\", \"30m\" or \"2h\"",
            );
            return None;
        }
        self.parsed(node, path, "invalid-duration")
    }

    fn list<T>(
        &mut self,
        node: &Node,
        path: &PlanPath,
        mut item: impl FnMut(&mut Self, &Node, &PlanPath) -> T,
    ) -> Vec<T> {
        match &node.value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| item(self, n, &path.index(i)))
                .collect(),
            _ => {
                self.type_error(node, path, "a list");
                Vec::new()
            }
        }
    }

    fn string_list(&mut self, node: &Node, path: &PlanPath) -> Vec<String> {
        self.list(node, path, |d, n, p| {
            d.non_empty_string(n, p).unwrap_or_default()
        })
    }

    fn map<T>(
        &mut self,
        node: &Node,
        path: &PlanPath,
        mut item: impl FnMut(&mut Self, &str, &Node, &PlanPath) -> Option<T>,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let Some(obj) = self.object(node, path) else {
            return out;
        };
        for (key, value) in obj.members {
            let member_path = path.key(&key.name);
            if out.contains_key(&key.name) {
                let diagnostic = Diagnostic {
                    severity: self.lenient_severity(),
                    code: "duplicate-key",
                    message: format!(
                        "{:?} is written more than once; the last one is used",
                        key.name
                    ),
                    path: member_path.clone(),
                    span: Some(key.span),
                    help: None,
                };
                self.diagnostics.push(diagnostic);
            }
            if let Some(v) = item(self, &key.name, value, &member_path) {
                out.insert(key.name.clone(), v);
            }
        }
        out
    }

    fn command(&mut self, node: &Node, path: &PlanPath) -> Option<CommandSpec> {
        match &node.value {
            Value::String(s) if s.trim().is_empty() => {
                self.error("invalid-value", path, "the command is empty");
                None
            }
            Value::String(s) => Some(CommandSpec::Shell(s.clone())),
            Value::Array(items) if items.is_empty() => {
                self.error("invalid-value", path, "the command is empty");
                None
            }
            Value::Array(_) => {
                let argv = self.list(node, path, |d, n, p| d.string(n, p));
                argv.into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(CommandSpec::Argv)
            }
            _ => {
                self.type_error(node, path, "a command (argv list or string)");
                None
            }
        }
    }

    fn scope(&mut self, node: &Node, path: &PlanPath) -> Option<Scope> {
        let paths = match &node.value {
            Value::String(_) => vec![self.non_empty_string(node, path)?],
            Value::Array(_) => self.string_list(node, path),
            _ => {
                self.type_error(node, path, "a folder or a list of folders");
                return None;
            }
        };
        for (i, p) in paths.iter().enumerate() {
            let item_path = if matches!(node.value, Value::Array(_)) {
                path.index(i)
            } else {
                path.clone()
            };
            if p.starts_with('/') {
                self.error(
                    "invalid-value",
                    &item_path,
                    format!("scope {p:?} must be relative to the repository"),
                );
            } else if p.split(['/', '\\']).any(|c| c == "..") {
                self.error(
                    "invalid-value",
                    &item_path,
                    format!("scope {p:?} must not leave the repository (\"..\")"),
                );
            }
        }
        Some(Scope::new(paths))
    }

    fn plan(&mut self, root: &Node) -> Plan {
        let path = PlanPath::root();
        let mut plan = Plan {
            orchestration_id: String::new(),
            platform: Platform::default(),
            execution_mode: ExecutionMode::default(),
            description: None,
            waves: Vec::new(),
            coordination_rules: CoordinationRules::default(),
            quality_gates: BTreeMap::new(),
            gates: BTreeMap::new(),
            concurrency: None,
            budget_usd: None,
            workspace: None,
        };
        let Some(mut obj) = self.object(root, &path) else {
            return plan;
        };
        if let Some((n, p)) = self.required(&mut obj, "orchestrationId") {
            plan.orchestration_id = self.non_empty_string(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "platform") {
            plan.platform = self.enumeration(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "executionMode") {
            plan.execution_mode = self.enumeration(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "description") {
            plan.description = self.string(n, &p);
        }
        if let Some((n, p)) = self.required(&mut obj, "waves") {
            plan.waves = self.list(n, &p, |d, n, p| d.wave(n, p));
        }
        if let Some((n, p)) = self.take(&mut obj, "coordinationRules") {
            plan.coordination_rules = self.rules(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "qualityGates") {
            plan.quality_gates = self.map(n, &p, |d, _, n, p| d.stage(n, p));
        }
        if let Some((n, p)) = self.take(&mut obj, "gates") {
            plan.gates = self.map(n, &p, |d, _, n, p| d.gate(n, p));
        }
        if let Some((n, p)) = self.take(&mut obj, "concurrency") {
            plan.concurrency = self.count(n, &p, 1);
        }
        if let Some((n, p)) = self.take(&mut obj, "budgetUsd") {
            plan.budget_usd = self.money(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "workspace") {
            plan.workspace = self.workspace(n, &p);
        }
        self.finish(obj, fields::PLAN);
        plan
    }

    fn wave(&mut self, node: &Node, path: &PlanPath) -> Wave {
        let mut wave = Wave {
            wave_id: String::new(),
            parallel: true,
            description: None,
            agents: Vec::new(),
        };
        let Some(mut obj) = self.object(node, path) else {
            return wave;
        };
        if let Some((n, p)) = self.required(&mut obj, "waveId") {
            wave.wave_id = self.non_empty_string(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "parallel") {
            wave.parallel = self.boolean(n, &p).unwrap_or(true);
        }
        if let Some((n, p)) = self.take(&mut obj, "description") {
            wave.description = self.string(n, &p);
        }
        if let Some((n, p)) = self.required(&mut obj, "agents") {
            wave.agents = self.list(n, &p, |d, n, p| d.agent(n, p));
        }
        self.finish(obj, fields::WAVE);
        wave
    }

    fn agent(&mut self, node: &Node, path: &PlanPath) -> Agent {
        let mut agent = Agent {
            agent_id: String::new(),
            work_description: String::new(),
            scope: None,
            estimated_duration: None,
            dependencies: Vec::new(),
            quality_gates: Vec::new(),
            platform: None,
            driver: None,
            model: None,
            command: None,
            branch: None,
            timeout: None,
            max_retries: None,
            budget_usd: None,
            max_turns: None,
            env: BTreeMap::new(),
            permissions: None,
            cli_args: Vec::new(),
            base_url: None,
        };
        let Some(mut obj) = self.object(node, path) else {
            return agent;
        };
        if let Some((n, p)) = self.required(&mut obj, "agentId") {
            agent.agent_id = self.non_empty_string(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.required(&mut obj, "workDescription") {
            agent.work_description = self.non_empty_string(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "scope") {
            agent.scope = self.scope(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "estimatedDuration") {
            agent.estimated_duration = self.duration(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "dependencies") {
            agent.dependencies = self.string_list(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "qualityGates") {
            agent.quality_gates = self.string_list(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "platform") {
            agent.platform = self.enumeration(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "driver") {
            agent.driver = self.enumeration(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "model") {
            agent.model = self.non_empty_string(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "command") {
            agent.command = self.command(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "branch") {
            agent.branch = self.non_empty_string(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "timeout") {
            agent.timeout = self.duration(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "maxRetries") {
            agent.max_retries = self.count(n, &p, 0);
        }
        if let Some((n, p)) = self.take(&mut obj, "budgetUsd") {
            agent.budget_usd = self.money(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "maxTurns") {
            agent.max_turns = self.count(n, &p, 1);
        }
        if let Some((n, p)) = self.take(&mut obj, "env") {
            agent.env = self.map(n, &p, |d, _, n, p| d.string(n, p));
        }
        if let Some((n, p)) = self.take(&mut obj, "permissions") {
            agent.permissions = self.enumeration(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "cliArgs") {
            agent.cli_args = self.string_list(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "baseUrl") {
            agent.base_url = self.non_empty_string(n, &p);
        }
        self.finish(obj, fields::AGENT);
        agent
    }

    fn rules(&mut self, node: &Node, path: &PlanPath) -> CoordinationRules {
        let mut rules = CoordinationRules::default();
        let Some(mut obj) = self.object(node, path) else {
            return rules;
        };
        if let Some((n, p)) = self.take(&mut obj, "conflictHandling") {
            rules.conflict_handling = self.enumeration(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "progressReporting") {
            rules.progress_reporting = self.parsed(n, &p, "invalid-duration").unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "failureStrategy") {
            rules.failure_strategy = self.enumeration(n, &p).unwrap_or_default();
        }
        self.finish(obj, fields::RULES);
        rules
    }

    fn stage(&mut self, node: &Node, path: &PlanPath) -> Option<GateStage> {
        let mut obj = self.object(node, path)?;
        let mut stage = GateStage {
            gates: Vec::new(),
            failure_action: FailureAction::default(),
            success_action: SuccessAction::default(),
            max_retries: None,
        };
        if let Some((n, p)) = self.required(&mut obj, "gates") {
            stage.gates = self.string_list(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "failureAction") {
            stage.failure_action = self.enumeration(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "successAction") {
            stage.success_action = self.enumeration(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "maxRetries") {
            stage.max_retries = self.count(n, &p, 0);
        }
        self.finish(obj, fields::STAGE);
        Some(stage)
    }

    fn gate(&mut self, node: &Node, path: &PlanPath) -> Option<GateDefinition> {
        let mut obj = self.object(node, path)?;
        let mut command = None;
        if let Some((n, p)) = self.required(&mut obj, "command") {
            command = self.command(n, &p);
        }
        let mut gate = GateDefinition {
            command: command.unwrap_or(CommandSpec::Argv(Vec::new())),
            working_directory: None,
            timeout: None,
            parser: GateParser::default(),
            junit_path: None,
        };
        if let Some((n, p)) = self.take(&mut obj, "workingDirectory") {
            gate.working_directory = self.string(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "timeout") {
            gate.timeout = self.duration(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "parser") {
            gate.parser = self.enumeration(n, &p).unwrap_or_default();
        }
        if let Some((n, p)) = self.take(&mut obj, "junitPath") {
            gate.junit_path = self.non_empty_string(n, &p);
        }
        self.finish(obj, fields::GATE);
        Some(gate)
    }

    fn workspace(&mut self, node: &Node, path: &PlanPath) -> Option<Workspace> {
        let mut obj = self.object(node, path)?;
        let mut ws = Workspace::default();
        if let Some((n, p)) = self.take(&mut obj, "baseBranch") {
            ws.base_branch = self.non_empty_string(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "integrationBranch") {
            ws.integration_branch = self.non_empty_string(n, &p);
        }
        if let Some((n, p)) = self.take(&mut obj, "setup") {
            ws.setup = self.command(n, &p);
        }
        self.finish(obj, fields::WORKSPACE);
        Some(ws)
    }
}
