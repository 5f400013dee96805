//! Reading a plan file: size limit, UTF-8, format detection, parsing,
//! decoding and validation, with every problem collected as a diagnostic.

use std::io::Read;
use std::path::Path;

use super::decode::{DecodeOptions, decode_plan};
use super::diagnostics::{Diagnostic, LocatedDiagnostic, Severity};
use super::model::{ExecutionMode, Plan};
use super::path::PlanPath;
use super::source::{SourceText, Span};
use super::tree::Node;
use super::validate::{ValidateOptions, validate};
use super::{json, yaml};

/// Largest plan file accepted (32 MiB; a 10,000-agent plan is about 4 MiB).
pub const MAX_PLAN_BYTES: u64 = 32 * 1024 * 1024;

/// The syntax a plan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (comments and trailing commas allowed).
    Json,
    /// YAML 1.2.
    Yaml,
}

impl Format {
    /// By extension (`.json`, `.jsonc`, `.yaml`, `.yml`), else by content
    /// (a document starting with `{` or `[` is JSON).
    pub fn detect(name: &str, text: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") || lower.ends_with(".jsonc") {
            Format::Json
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Format::Yaml
        } else if text.trim_start().starts_with(['{', '[']) {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Options for loading.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Unknown fields are errors (`--strict`).
    pub strict: bool,
    /// Validate for this execution mode instead of the plan's own.
    pub mode: Option<ExecutionMode>,
}

/// A plan file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("cannot read plan {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The result of loading: the plan when it could be decoded, and all diagnostics.
#[derive(Debug)]
pub struct LoadedPlan {
    /// The text and its name.
    pub source: SourceText,
    /// The parsed document (absent after a syntax error).
    pub tree: Option<Node>,
    /// The decoded plan (absent after a syntax error). May hold placeholders when there are errors.
    pub plan: Option<Plan>,
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedPlan {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// Diagnostics with file, path and line:column resolved, in source order.
    pub fn located(&self) -> Vec<LocatedDiagnostic> {
        let mut located: Vec<LocatedDiagnostic> = self
            .diagnostics
            .iter()
            .map(|d| d.locate(&self.source, self.tree.as_ref()))
            .collect();
        located.sort_by_key(|d| d.location.map(|l| (l.line, l.column)));
        located
    }

    /// The plan, if it has no errors.
    pub fn valid_plan(&self) -> Option<&Plan> {
        if self.error_count() == 0 {
            self.plan.as_ref()
        } else {
            None
        }
    }
}

/// Reads and loads a plan file (`-` reads standard input).
pub fn load_path(path: &Path, options: LoadOptions) -> Result<LoadedPlan, LoadError> {
    let name = path.display().to_string();
    let io = |source| LoadError::Io {
        path: name.clone(),
        source,
    };
    let mut bytes = Vec::new();
    if name == "-" {
        std::io::stdin()
            .take(MAX_PLAN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_PLAN_BYTES {
            return Ok(too_large(&name, size));
        }
        file.take(MAX_PLAN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    }
    Ok(load_bytes(&name, &bytes, options))
}

fn too_large(name: &str, size: u64) -> LoadedPlan {
    fatal(
        SourceText::new(name, ""),
        Diagnostic::error(
            "too-large",
            PlanPath::root(),
            format!(
                "the plan is {:.1} MiB, larger than the {} MiB limit",
                size as f64 / 1048576.0,
                MAX_PLAN_BYTES / 1048576
            ),
        )
        .with_span(Span::default()),
    )
}

fn fatal(source: SourceText, diagnostic: Diagnostic) -> LoadedPlan {
    LoadedPlan {
        source,
        tree: None,
        plan: None,
        diagnostics: vec![diagnostic],
    }
}

/// Loads a plan from bytes; `name` is used in messages and for format detection.
pub fn load_bytes(name: &str, bytes: &[u8], options: LoadOptions) -> LoadedPlan {
    if bytes.len() as u64 > MAX_PLAN_BYTES {
        return too_large(name, bytes.len() as u64);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let text = String::from_utf8_lossy(valid).into_owned();
            let offset = text.len();
            return fatal(
                SourceText::new(name, text),
                Diagnostic::error(
                    "not-text",
                    PlanPath::root(),
                    "the file is not UTF-8 text (is it a binary file?)",
                )
                .with_span(Span::new(offset, offset)),
            );
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    load_str(name, text, options)
}

/// Loads a plan from text.
pub fn load_str(name: &str, text: &str, options: LoadOptions) -> LoadedPlan {
    let source = SourceText::new(name, text);
    if text.trim().is_empty() {
        return fatal(
            source,
            Diagnostic::error("empty", PlanPath::root(), "the plan file is empty")
                .with_span(Span::default()),
        );
    }
    let parsed = match Format::detect(name, text) {
        Format::Json => json::parse(text),
        Format::Yaml => yaml::parse(text),
    };
    let tree = match parsed {
        Ok(tree) => tree,
        Err(e) => {
            return fatal(
                source,
                Diagnostic::error("syntax", PlanPath::root(), e.message)
                    .with_span(Span::new(e.offset, e.offset)),
            );
        }
    };
    let (plan, mut diagnostics) = decode_plan(
        &tree,
        DecodeOptions {
            strict: options.strict,
        },
    );
    diagnostics.extend(validate(&plan, ValidateOptions { mode: options.mode }));
    LoadedPlan {
        source,
        tree: Some(tree),
        plan: Some(plan),
        diagnostics,
    }
}
