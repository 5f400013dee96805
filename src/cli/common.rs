//! Helpers shared by subcommands: loading a plan and printing its diagnostics.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::plan::{LoadOptions, LoadedPlan, Plan, load_path};

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The plan could not be read.
    #[error(transparent)]
    Load(#[from] crate::plan::LoadError),
    /// The plan has errors (already printed).
    #[error("{file}: the plan is invalid ({errors} error(s))")]
    InvalidPlan {
        /// The plan file.
        file: String,
        /// How many errors.
        errors: usize,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Writing output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template could not be rendered.
    #[error("template error: {0}")]
    Template(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Load(_)
            | CliError::InvalidPlan { .. }
            | CliError::Usage(_)
            | CliError::Template(_) => super::EXIT_INVALID,
            CliError::Write { .. } => super::EXIT_FAILED,
        }
    }
}

/// Prints diagnostics (one per line, with help) to standard error.
pub fn print_diagnostics(loaded: &LoadedPlan) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for d in loaded.located() {
        let _ = writeln!(err, "{d}");
    }
}

/// Loads a plan that must be valid: prints its diagnostics to stderr and fails when it has errors.
pub fn load_valid_plan(path: &Path, options: LoadOptions) -> Result<Plan, CliError> {
    let mut loaded = load_path(path, options)?;
    print_diagnostics(&loaded);
    let errors = loaded.error_count();
    // The parsed tree is not needed any more and the process ends soon after a
    // command: leave it to the OS instead of freeing it node by node (~5% of
    // `analyze` on a 10,000-agent plan).
    std::mem::forget(loaded.tree.take());
    match loaded.plan {
        Some(plan) if errors == 0 => Ok(plan),
        _ => Err(CliError::InvalidPlan {
            file: loaded.source.name,
            errors,
        }),
    }
}

/// [`load_valid_plan`] for a command that runs long after loading (`run`):
/// the parsed tree is freed, so its memory is reused by the run instead of
/// adding to its peak.
pub fn load_valid_plan_freeing_tree(path: &Path, options: LoadOptions) -> Result<Plan, CliError> {
    let mut loaded = load_path(path, options)?;
    print_diagnostics(&loaded);
    let errors = loaded.error_count();
    drop(loaded.tree.take());
    match loaded.plan {
        Some(plan) if errors == 0 => Ok(plan),
        _ => Err(CliError::InvalidPlan {
            file: loaded.source.name,
            errors,
        }),
    }
}

/// Writes `text` to `out` (a file) or standard output.
pub fn write_output(out: Option<&Path>, text: &str) -> Result<(), CliError> {
    match out {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Write {
            path: path.to_path_buf(),
            source,
        }),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|source| CliError::Write {
                    path: PathBuf::from("<stdout>"),
                    source,
                })
        }
    }
}

/// Lets clap parse the plan's closed vocabularies by their canonical names.
macro_rules! value_enum {
    ($($ty:ty),+) => {$(
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                <$ty>::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let aliases = <$ty>::ACCEPTED
                    .iter()
                    .copied()
                    .filter(|a| *a != self.as_str() && a.parse::<$ty>().ok() == Some(*self));
                Some(clap::builder::PossibleValue::new(self.as_str()).aliases(aliases))
            }
        }
    )+};
}

value_enum!(
    crate::plan::ExecutionMode,
    crate::plan::Platform,
    crate::plan::FailureStrategy
);
