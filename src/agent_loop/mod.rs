//! The built-in tool-using agent loop used by the API drivers: tools,
//! workspace confinement, budgets.
//!
//! - [`workspace`]: [`Workspace`] confines every path a tool touches to the
//!   agent's working directory.
//! - [`tools`]: the seven tools ([`tool_specs`]) and their execution
//!   ([`execute`]), including `report_status`, which yields the same STATUS
//!   protocol events as the text markers.
//! - [`text_protocol`]: tool calls written in the reply's text
//!   (`<tool_call>` blocks), for models without native tool calling.

pub mod text_protocol;
pub mod tools;
pub mod workspace;

pub use text_protocol::{ParsedReply, format_tool_results, parse_tool_calls, tool_instructions};
pub use tools::{ToolLimits, ToolOutcome, execute, tool_specs};
pub use workspace::{Access, ConfinementError, Workspace};

#[cfg(test)]
mod tests;
