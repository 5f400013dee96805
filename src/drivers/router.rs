//! Sends each agent to its own driver: a plan may mix shell agents with
//! agents on different LLM platforms.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AgentOutput, AgentTask, Driver, DriverResult};

/// A driver per agent, with a fallback for agents not listed.
pub struct DriverSet {
    by_agent: HashMap<String, Arc<dyn Driver>>,
    fallback: Arc<dyn Driver>,
}

impl DriverSet {
    /// Agents not given a driver with [`Self::assign`] use `fallback`.
    pub fn new(fallback: Arc<dyn Driver>) -> Self {
        Self {
            by_agent: HashMap::new(),
            fallback,
        }
    }

    /// Runs `agent` with `driver`.
    pub fn assign(&mut self, agent: impl Into<String>, driver: Arc<dyn Driver>) {
        self.by_agent.insert(agent.into(), driver);
    }

    fn driver_for(&self, agent: &str) -> &Arc<dyn Driver> {
        self.by_agent.get(agent).unwrap_or(&self.fallback)
    }
}

impl Driver for DriverSet {
    fn run(
        &self,
        task: AgentTask,
        output: mpsc::UnboundedSender<AgentOutput>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult> {
        self.driver_for(&task.agent.agent_id)
            .run(task, output, cancel)
    }

    /// True when any agent's driver takes a prompt (the engine then renders
    /// prompts for every agent; a plan of shell agents only renders none).
    fn uses_prompt(&self) -> bool {
        self.fallback.uses_prompt() || self.by_agent.values().any(|d| d.uses_prompt())
    }
}
