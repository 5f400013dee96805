//! Built-in gates for the seed's gate names, used when the plan does not
//! define them: the project found in the scope folder or its nearest parent
//! (up to the repository root, the folder holding `.git`) decides the
//! command. See the README section "Quality gates: runners and parsers" for
//! the table.

use std::path::{Path, PathBuf};

use crate::plan::{CommandSpec, GateParser};

/// A preset: what to run where, and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// The argv to run.
    pub argv: Vec<String>,
    /// The project folder it runs in.
    pub dir: PathBuf,
    /// How to read its output.
    pub parser: GateParser,
}

impl Preset {
    /// The argv as a [`CommandSpec`].
    pub fn command(&self) -> CommandSpec {
        CommandSpec::Argv(self.argv.clone())
    }
}

/// The seed's gate names that have presets (`security-audit` is an alias of `security-scan`).
pub const GATE_NAMES: &[&str] = crate::plan::validate::PRESET_GATE_NAMES;

/// Kinds of project, in the order they are tried within one folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectKind {
    /// `Cargo.toml`.
    Cargo,
    /// `go.mod`.
    Go,
    /// `package.json`.
    Node,
    /// `pyproject.toml`, `pytest.ini`, `setup.cfg`, `setup.py` or `tox.ini`.
    Python,
}

impl ProjectKind {
    const ALL: [ProjectKind; 4] = [Self::Cargo, Self::Go, Self::Node, Self::Python];

    /// The files that mark a project of this kind.
    fn markers(self) -> &'static [&'static str] {
        match self {
            Self::Cargo => &["Cargo.toml"],
            Self::Go => &["go.mod"],
            Self::Node => &["package.json"],
            Self::Python => &[
                "pyproject.toml",
                "pytest.ini",
                "setup.cfg",
                "setup.py",
                "tox.ini",
            ],
        }
    }
}

/// Why no preset applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    /// The name has no preset at all.
    #[error("gate {gate:?} is not defined under \"gates\" and has no built-in preset (presets: {})", GATE_NAMES.join(", "))]
    UnknownGate {
        /// The gate's name.
        gate: String,
    },
    /// No project file in the folder or its parents.
    #[error("gate {gate:?} is not defined under \"gates\" and no project (Cargo.toml, go.mod, package.json, pyproject.toml, pytest.ini, setup.cfg, setup.py, tox.ini) was found in {} or its parents up to the repository root", dir.display())]
    NoProject {
        /// The gate's name.
        gate: String,
        /// The scope folder.
        dir: PathBuf,
    },
    /// A project was found, but the gate has no command for it.
    #[error("gate {gate:?} is not defined under \"gates\" and the built-in preset has nothing to run for the {kinds} project in {}: {why}", dir.display())]
    NotApplicable {
        /// The gate's name.
        gate: String,
        /// The project folder.
        dir: PathBuf,
        /// The kinds of project found there.
        kinds: String,
        /// What would have been needed.
        why: String,
    },
}

/// The preset for gate `gate` in the project holding `scope_dir`.
pub fn preset(gate: &str, scope_dir: &Path) -> Result<Preset, PresetError> {
    let canonical = match gate {
        "security-audit" => "security-scan",
        g if GATE_NAMES.contains(&g) => g,
        _ => {
            return Err(PresetError::UnknownGate {
                gate: gate.to_string(),
            });
        }
    };
    let Some((dir, kinds)) = find_project(scope_dir) else {
        return Err(PresetError::NoProject {
            gate: gate.to_string(),
            dir: scope_dir.to_path_buf(),
        });
    };
    let mut why = Vec::new();
    for kind in &kinds {
        match for_kind(*kind, canonical, &dir) {
            Ok((argv, parser)) => {
                return Ok(Preset {
                    argv: argv.into_iter().map(str::to_string).collect(),
                    dir,
                    parser,
                });
            }
            Err(reason) => why.push(reason),
        }
    }
    Err(PresetError::NotApplicable {
        gate: gate.to_string(),
        kinds: kinds
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join("/"),
        dir,
        why: why.join("; "),
    })
}

/// The nearest folder, from `start` up to the repository root, holding a
/// project file, with the kinds found there.
pub fn find_project(start: &Path) -> Option<(PathBuf, Vec<ProjectKind>)> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let kinds: Vec<ProjectKind> = ProjectKind::ALL
            .into_iter()
            .filter(|k| k.markers().iter().any(|m| d.join(m).is_file()))
            .collect();
        if !kinds.is_empty() {
            return Some((d.to_path_buf(), kinds));
        }
        if d.join(".git").exists() {
            return None;
        }
        dir = d.parent();
    }
    None
}

/// The argv and reader of gate `gate` (canonical name) for a project of `kind` in `dir`.
fn for_kind(
    kind: ProjectKind,
    gate: &str,
    dir: &Path,
) -> Result<(Vec<&'static str>, GateParser), String> {
    use GateParser::{Cargo, ExitCode, Go, Pytest};
    let found = match (kind, gate) {
        (ProjectKind::Cargo, "unit-tests") => {
            if dir.join("src/lib.rs").is_file() {
                (vec!["cargo", "test", "--lib", "--bins"], Cargo)
            } else {
                (vec!["cargo", "test", "--bins"], Cargo)
            }
        }
        (ProjectKind::Cargo, "integration-tests") => {
            if !dir.join("tests").is_dir() {
                return Err("Cargo: no tests/ folder".into());
            }
            (vec!["cargo", "test", "--test", "*"], Cargo)
        }
        (ProjectKind::Cargo, "linting") => (
            vec!["cargo", "clippy", "--all-targets", "--", "-D", "warnings"],
            ExitCode,
        ),
        (ProjectKind::Cargo, "security-scan") => (vec!["cargo", "audit"], ExitCode),
        (ProjectKind::Cargo, "performance-tests") => {
            if !dir.join("benches").is_dir() {
                return Err("Cargo: no benches/ folder".into());
            }
            (vec!["cargo", "bench"], ExitCode)
        }
        (ProjectKind::Cargo, "documentation") => (vec!["cargo", "doc", "--no-deps"], ExitCode),
        (ProjectKind::Go, "unit-tests") => (vec!["go", "test", "-v", "./..."], Go),
        (ProjectKind::Go, "integration-tests") => (
            vec!["go", "test", "-v", "-tags", "integration", "./..."],
            Go,
        ),
        (ProjectKind::Go, "linting") => (vec!["go", "vet", "./..."], ExitCode),
        (ProjectKind::Go, "security-scan") => (vec!["govulncheck", "./..."], ExitCode),
        (ProjectKind::Go, "performance-tests") => (
            vec!["go", "test", "-run", "^$", "-bench", ".", "./..."],
            ExitCode,
        ),
        (ProjectKind::Node, _) => return npm_preset(gate, dir),
        (ProjectKind::Python, "unit-tests") => {
            if dir.join("tests/unit").is_dir() {
                (vec!["pytest", "tests/unit"], Pytest)
            } else {
                (vec!["pytest"], Pytest)
            }
        }
        (ProjectKind::Python, "integration-tests") => {
            python_folder(dir, &["tests/integration", "tests/integration_tests"])?
        }
        (ProjectKind::Python, "e2e-tests") => python_folder(dir, &["tests/e2e"])?,
        (ProjectKind::Python, "performance-tests") => python_folder(
            dir,
            &["tests/performance", "tests/perf", "tests/benchmarks"],
        )?,
        (ProjectKind::Python, "linting") => (vec!["ruff", "check"], ExitCode),
        (ProjectKind::Python, "security-scan") => (vec!["pip-audit"], ExitCode),
        (kind, gate) => return Err(format!("{kind:?}: no preset for {gate}")),
    };
    Ok(found)
}

/// `pytest <folder>` for the first of `folders` that exists.
fn python_folder(
    dir: &Path,
    folders: &'static [&'static str],
) -> Result<(Vec<&'static str>, GateParser), String> {
    folders
        .iter()
        .find(|f| dir.join(f).is_dir())
        .map(|f| (vec!["pytest", *f], GateParser::Pytest))
        .ok_or_else(|| format!("Python: none of {} exists", folders.join(", ")))
}

/// npm scripts tried for each gate, in order.
fn npm_scripts(gate: &str) -> &'static [&'static str] {
    match gate {
        "unit-tests" => &["test:unit", "test"],
        "integration-tests" => &["test:integration", "integration"],
        "linting" => &["lint"],
        "security-scan" => &["audit", "security"],
        "performance-tests" => &["test:perf", "perf", "bench", "benchmark"],
        "e2e-tests" => &["test:e2e", "e2e"],
        "documentation" => &["docs", "doc", "build:docs"],
        _ => &[],
    }
}

/// The npm script for `gate` in `dir/package.json` (`npm audit` for
/// security without a script). npm's placeholder `test` script does not count.
fn npm_preset(gate: &str, dir: &Path) -> Result<(Vec<&'static str>, GateParser), String> {
    let text = std::fs::read_to_string(dir.join("package.json"))
        .map_err(|e| format!("package.json: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("package.json: {e}"))?;
    let scripts = json.get("scripts").and_then(|s| s.as_object());
    let has = |name: &str| {
        scripts
            .and_then(|s| s.get(name))
            .and_then(|v| v.as_str())
            .is_some_and(|body| !body.contains("no test specified"))
    };
    let wanted = npm_scripts(gate);
    if let Some(script) = wanted.iter().find(|s| has(s)) {
        let parser = if gate.contains("tests") {
            GateParser::Auto
        } else {
            GateParser::ExitCode
        };
        return Ok((vec!["npm", "run", "--silent", script], parser));
    }
    if gate == "security-scan" {
        return Ok((vec!["npm", "audit"], GateParser::ExitCode));
    }
    Err(format!(
        "package.json has no script {}",
        wanted
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    fn argv(gate: &str, dir: &Path) -> String {
        preset(gate, dir)
            .map(|p| p.argv.join(" "))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn a_cargo_project_from_a_sub_folder() {
        let dir = project(&[
            ("Cargo.toml", "[package]"),
            ("src/lib.rs", ""),
            ("tests/it.rs", ""),
        ]);
        let scope = dir.path().join("src");
        let p = preset("unit-tests", &scope).unwrap();
        assert_eq!(p.dir, dir.path());
        assert_eq!(p.parser, GateParser::Cargo);
        assert_eq!(p.argv.join(" "), "cargo test --lib --bins");
        assert_eq!(argv("integration-tests", &scope), "cargo test --test *");
        assert_eq!(
            argv("linting", &scope),
            "cargo clippy --all-targets -- -D warnings"
        );
        assert_eq!(argv("security-scan", &scope), "cargo audit");
        assert_eq!(argv("security-audit", &scope), "cargo audit");
        assert_eq!(argv("documentation", &scope), "cargo doc --no-deps");
        let err = argv("performance-tests", &scope);
        assert!(
            err.contains("performance-tests") && err.contains("no benches/ folder"),
            "{err}"
        );
    }

    #[test]
    fn npm_scripts_and_npm_audit() {
        let dir = project(&[(
            "package.json",
            r#"{"scripts": {"test": "jest", "lint": "eslint .", "test:e2e": "playwright test"}}"#,
        )]);
        let p = preset("unit-tests", dir.path()).unwrap();
        assert_eq!(p.argv.join(" "), "npm run --silent test");
        assert_eq!(p.parser, GateParser::Auto);
        assert_eq!(argv("linting", dir.path()), "npm run --silent lint");
        assert_eq!(argv("e2e-tests", dir.path()), "npm run --silent test:e2e");
        assert_eq!(argv("security-scan", dir.path()), "npm audit");
        assert!(argv("documentation", dir.path()).contains("no script \"docs\""));
        let placeholder = project(&[(
            "package.json",
            r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#,
        )]);
        assert!(argv("unit-tests", placeholder.path()).contains("no script"));
    }

    #[test]
    fn python_and_go_projects() {
        let py = project(&[("pyproject.toml", ""), ("tests/e2e/test_x.py", "")]);
        let p = preset("unit-tests", py.path()).unwrap();
        assert_eq!(
            (p.argv.join(" "), p.parser),
            ("pytest".into(), GateParser::Pytest)
        );
        assert_eq!(argv("e2e-tests", py.path()), "pytest tests/e2e");
        assert_eq!(argv("linting", py.path()), "ruff check");
        assert_eq!(argv("security-scan", py.path()), "pip-audit");
        let go = project(&[("go.mod", "module x")]);
        assert_eq!(argv("unit-tests", go.path()), "go test -v ./...");
        assert_eq!(argv("linting", go.path()), "go vet ./...");
        assert_eq!(argv("security-audit", go.path()), "govulncheck ./...");
    }

    #[test]
    fn no_project_or_no_preset_are_clear_errors() {
        let empty = project(&[]);
        let err = preset("unit-tests", empty.path()).unwrap_err().to_string();
        assert!(
            err.contains("\"unit-tests\"") && err.contains(&empty.path().display().to_string()),
            "{err}"
        );
        let err = preset("smoke-tests", empty.path()).unwrap_err().to_string();
        assert!(
            err.contains("\"smoke-tests\"") && err.contains("presets: unit-tests"),
            "{err}"
        );
        // The search stops at the repository root.
        let outer = project(&[("Cargo.toml", "")]);
        let inner = outer.path().join("sub");
        std::fs::create_dir_all(inner.join(".git")).unwrap();
        assert!(matches!(
            preset("unit-tests", &inner),
            Err(PresetError::NoProject { .. })
        ));
    }
}
