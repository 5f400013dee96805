//! Problems found while loading and validating a plan, with where they are.

use serde::Serialize;

use super::path::PlanPath;
use super::source::{Location, SourceText, Span};
use super::tree::Node;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plan cannot run.
    Error,
    /// The plan can run, but something looks wrong.
    Warning,
}

/// One problem, before it is located in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable kebab-case code, e.g. `unknown-dependency`.
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where in the document (JSON path).
    pub path: PlanPath,
    /// An explicit byte span (syntax errors); otherwise the span of `path` is used.
    pub span: Option<Span>,
    /// How to fix it, when we know.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `path`.
    pub fn error(code: &'static str, path: PlanPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            path,
            span: None,
            help: None,
        }
    }

    /// A warning at `path`.
    pub fn warning(code: &'static str, path: PlanPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, path, message)
        }
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Pins the diagnostic to a byte span.
    pub fn with_span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    /// Resolves file, line and column.
    pub fn locate(&self, source: &SourceText, tree: Option<&Node>) -> LocatedDiagnostic {
        let span = self.span.or_else(|| tree.map(|t| t.find(&self.path).span));
        LocatedDiagnostic {
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            file: source.name.clone(),
            path: if self.path.is_root() && self.span.is_some() {
                None
            } else {
                Some(self.path.to_string())
            },
            location: span.map(|s| source.location(s.start)),
            help: self.help.clone(),
        }
    }
}

/// A diagnostic with its file, JSON path and line:column resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocatedDiagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The plan file.
    pub file: String,
    /// JSON path, e.g. `waves[1].agents[0].dependencies[2]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Line and column.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl std::fmt::Display for LocatedDiagnostic {
    /// `error[unknown-dependency]: plan.json:12:9: waves[1].agents[0].dependencies[2]: …`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]: {}", self.code, self.file)?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if let Some(path) = &self.path {
            write!(f, ": {path}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}
