//! Adaptive execution (`--mode adaptive`): after each wave, and whenever an
//! agent fails for good, the run's results are analysed
//! ([`analysis::Analysis`]); an analyzer LLM ([`analyzer::PlanAnalyzer`],
//! `--analyzer-platform`) or the built-in rules propose a typed
//! [`patch::PlanPatch`]; the patch is checked against the run and the plan's
//! rules ([`apply::apply_patch`]) and then applied, or, when
//! `--risk-tolerance` asks for it, waits for `resume --approve`.
//!
//! The engine side (when analyses run, journaling, pausing) is in
//! `engine::adaptive`.

pub mod analysis;
pub mod analyzer;
pub mod apply;
pub mod patch;

pub use analysis::{Analysis, Trigger};
pub use analyzer::{ANALYZER_NAME, PlanAnalyzer, Proposal};
pub use apply::{Applied, PatchError, apply_patch};
pub use patch::{AgentPart, PatchOp, PlanPatch};
