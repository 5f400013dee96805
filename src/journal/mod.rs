//! The journal: every state change of a run is an [`Event`] appended here
//! before it takes effect, and [`RunState`] is a fold over the events. `status`,
//! `resume` and the reports all replay the same journal, so they cannot disagree.

pub mod appender;
mod backend;
mod create;
pub mod event;
pub mod postgres;
pub mod state;
pub mod store;

pub use backend::Journal;
pub use event::{
    AgentOutcome, AnomalyKind, ConflictAction, ConflictKind, Event, EventRecord, GateLevel,
    PhaseScope, RunOutcome,
};
pub use state::{
    Adaptation, AdaptationStatus, AgentGit, AgentPhase, AgentState, AnalysisRecord, AnomalyRecord,
    GateRun, GitConflict, Landed, RunState, StageState,
};
pub use store::{JournalError, SqliteJournal, now_ms};
