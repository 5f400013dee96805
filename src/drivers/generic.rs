//! The `generic` platform as a run: a person is the transport.
//!
//! For each agent that becomes ready, the driver writes its numbered
//! instructions (the rendered agent prompt: working directory, STATUS
//! markers, gates, coordination and error-recovery rules) to
//! `agents/<id>/prompt.md` and ends the attempt as
//! [`AgentOutcome::AwaitingInput`]. The run goes on as far as it can, then
//! pauses (exit 3). The person gives the prompt to any LLM and feeds the reply
//! back with `llm-orchestrate ingest RUN --agent ID FILE`, whose markers and
//! progress reports become the agent's events; the run then continues.

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AgentOutput, AgentTask, Driver, DriverResult};
use crate::journal::AgentOutcome;

/// The file holding an agent's instructions, in its folder of the run.
pub const PROMPT_FILE: &str = "prompt.md";

/// Writes agents' instructions for a person to relay (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericDriver;

impl Driver for GenericDriver {
    fn run(
        &self,
        task: AgentTask,
        _output: mpsc::UnboundedSender<AgentOutput>,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, DriverResult> {
        Box::pin(async move {
            let path = task.agent_dir.join(PROMPT_FILE);
            let mut text = task.prompt.clone();
            if let Some(context) = &task.retry_context {
                text.push_str(&format!(
                    "\n\n## Previous attempt\n\nAttempt {} failed:\n{context}\n",
                    task.attempt - 1
                ));
            }
            let written = tokio::fs::create_dir_all(&task.agent_dir)
                .await
                .and(tokio::fs::write(&path, text).await);
            let outcome = match written {
                Ok(()) => AgentOutcome::AwaitingInput,
                Err(e) => AgentOutcome::Failed {
                    reason: format!("cannot write {}: {e}", path.display()),
                },
            };
            DriverResult {
                outcome,
                exit_code: None,
                tail: String::new(),
            }
        })
    }
}
