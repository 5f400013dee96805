//! llm-orchestrate: run many LLM agents in parallel on real software work,
//! and keep them honest.
//!
//! The flow: a plan file is loaded and validated ([`plan`]), analyzed as a
//! dependency graph ([`graph`]), rendered into platform prompts ([`render`]),
//! and (in later modules) scheduled, driven, gated, merged and reported.

pub mod adapt;
pub mod agent_loop;
pub mod cli;
pub mod dashboard;
pub mod drivers;
pub mod engine;
pub mod gates;
pub mod graph;
pub mod history;
pub mod journal;
pub mod mock_provider;
pub mod plan;
pub mod predict;
pub mod protocol;
pub mod providers;
pub mod render;
pub mod report;
pub mod store;
pub mod worker;
pub mod workspace;
