//! The journal: every state change of a run is an [`Event`] appended here
//! before it takes effect, and [`RunState`] is a fold over the events. `status`,
//! `resume` and the reports all replay the same journal, so they cannot disagree.

pub mod event;
pub mod state;
pub mod store;

pub use event::{
    AgentOutcome, ConflictAction, ConflictKind, Event, EventRecord, PhaseScope, RunOutcome,
};
pub use state::{AgentGit, AgentPhase, AgentState, GitConflict, Landed, RunState};
pub use store::{Journal, JournalError, now_ms};
