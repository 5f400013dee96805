//! The plan: model, loading (JSON/YAML with located errors), validation.

pub mod decode;
pub mod diagnostics;
pub mod duration;
pub mod enums;
pub mod json;
pub mod load;
pub mod model;
pub mod path;
pub mod source;
pub mod tree;
pub mod validate;
pub mod yaml;

pub use diagnostics::{Diagnostic, LocatedDiagnostic, Severity};
pub use load::{LoadError, LoadOptions, LoadedPlan, load_bytes, load_path, load_str};
pub use model::*;
pub use path::PlanPath;
