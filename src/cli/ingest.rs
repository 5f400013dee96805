//! `llm-orchestrate ingest RUN [--agent ID] FILE|-`: feeds an LLM's reply to
//! an agent of the `generic` platform back into its run, then continues the
//! run (as `resume` does) as far as it can.
//!
//! The reply is read with the one STATUS-protocol parser: its markers,
//! progress reports, `[ERROR: ...]` blocks and `[GATE: ...]` lines become the
//! agent's events, and the attempt ends as the shell driver reconciles it
//! without an exit code: a FAILED status fails it, a COMPLETE status
//! completes it, neither completes it with a warning. Without `--agent`, the
//! reply must hold one or more `[AGENT-N: ID]` sections (the open-source and
//! generic renders' format), each ingested for its agent.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use super::common::CliError;
use super::run::{EngineArgs, ResumeArgs, find_run};
use crate::drivers::StatusVerdict;
use crate::journal::{AgentPhase, Event, Journal};
use crate::protocol::MarkerParser;

/// Arguments of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Run id (or a unique prefix).
    pub run: String,
    /// The reply: a file, or `-` for standard input.
    pub reply: PathBuf,
    /// The agent the reply is from (default: read `[AGENT-N: ID]` sections).
    #[arg(long)]
    pub agent: Option<String>,
    /// Folder the agents' scopes are relative to (default: the current folder).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Engine options for continuing the run.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Splits a reply into `(agent, text)` by its `[AGENT-N: ID]` headers.
pub fn sections(reply: &str) -> Vec<(String, String)> {
    let Ok(header) = regex::Regex::new(r"(?m)^[ \t>#*]*\[AGENT-\d+:\s*([^\]\s]+)\s*\][^\n]*$")
    else {
        return Vec::new();
    };
    let heads: Vec<(usize, usize, String)> = header
        .captures_iter(reply)
        .filter_map(|c| {
            let whole = c.get(0)?;
            Some((whole.start(), whole.end(), c.get(1)?.as_str().to_string()))
        })
        .collect();
    heads
        .iter()
        .enumerate()
        .map(|(i, (_, end, id))| {
            let stop = heads.get(i + 1).map_or(reply.len(), |next| next.0);
            (id.clone(), reply[*end..stop].to_string())
        })
        .collect()
}

/// The events a reply gives rise to, ending with the attempt's `AgentFinished`.
pub fn reply_events(agent: &str, attempt: u32, text: &str) -> Vec<Event> {
    let mut parser = MarkerParser::new();
    let mut parsed = Vec::new();
    parser.feed(text.as_bytes(), &mut parsed);
    parser.finish(&mut parsed);
    let mut verdict = StatusVerdict::default();
    let mut events = Vec::with_capacity(parsed.len() + 1);
    for event in parsed {
        verdict.note(&event);
        events.push(crate::engine::agent_event(agent, event));
    }
    events.push(Event::AgentFinished {
        agent: agent.to_string(),
        attempt,
        outcome: verdict.outcome(),
        exit_code: None,
    });
    events
}

/// Runs `ingest`.
pub fn run(args: IngestArgs) -> Result<u8, CliError> {
    let run_dir = find_run(&args.engine.run_dir, Some(&args.run))?;
    let reply = read_reply(&args.reply)?;
    let replies = match &args.agent {
        Some(agent) => vec![(agent.clone(), reply)],
        None => {
            let found = sections(&reply);
            if found.is_empty() {
                return Err(CliError::Usage(format!(
                    "{}: no `[AGENT-N: ID]` section found; name the agent with --agent ID",
                    args.reply.display()
                )));
            }
            found
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let journal = Journal::open(&run_dir.join("journal.sqlite"))
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let state = journal
            .replay()
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let mut events = Vec::new();
        for (agent, text) in &replies {
            let Some(agent_state) = state.agents.get(agent) else {
                return Err(CliError::Usage(format!(
                    "run {} has no agent {agent}",
                    state.run_id
                )));
            };
            if agent_state.phase != AgentPhase::AwaitingInput {
                return Err(CliError::Usage(format!(
                    "agent {agent} is not waiting for a reply (it is {:?})",
                    agent_state.phase
                )));
            }
            events.extend(reply_events(agent, agent_state.attempt, text));
        }
        journal
            .append(&events)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        journal.close().await;
        for (agent, _) in &replies {
            println!("ingested the reply of {agent}");
        }
        Ok(())
    })?;
    super::run::resume(ResumeArgs {
        run: Some(args.run),
        workdir: args.workdir,
        approve: false,
        reject: false,
        retry_failed: false,
        engine: args.engine,
    })
}

fn read_reply(path: &PathBuf) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::AgentOutcome;

    #[test]
    fn a_pasted_reply_splits_into_its_agent_sections() {
        let reply = "Intro text\n## [AGENT-1: AUTH_IMPL]\n[STATUS: COMPLETE] auth done\n\n[AGENT-2: PROFILE]\n[STATUS: FAILED] no db\n";
        let found = sections(reply);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "AUTH_IMPL");
        assert!(found[0].1.contains("auth done") && !found[0].1.contains("no db"));
        assert_eq!(found[1].0, "PROFILE");
        assert!(sections("no sections here").is_empty());
    }

    #[test]
    fn reply_markers_become_events_and_decide_the_outcome() {
        let events = reply_events(
            "A",
            1,
            "[STATUS: STARTED]\n[STATUS: PROGRESS-50%] half\n[STATUS: COMPLETE] done\n",
        );
        assert_eq!(events.len(), 4);
        assert!(matches!(
            events.last(),
            Some(Event::AgentFinished {
                outcome: AgentOutcome::Completed {
                    without_marker: false
                },
                ..
            })
        ));
        let failed = reply_events("A", 2, "[FAILED] the tests do not pass\n");
        assert!(matches!(
            failed.last(),
            Some(Event::AgentFinished { outcome: AgentOutcome::Failed { reason }, attempt: 2, .. })
                if reason == "the tests do not pass"
        ));
        let silent = reply_events("A", 1, "I did it.\n");
        assert!(matches!(
            silent.last(),
            Some(Event::AgentFinished {
                outcome: AgentOutcome::Completed {
                    without_marker: true
                },
                ..
            })
        ));
    }
}
