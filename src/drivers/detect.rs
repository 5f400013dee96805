//! What `--platform auto` chooses, and why.
//!
//! Detection looks at three kinds of evidence: API keys in the environment
//! (names only; values are never read beyond "set and non-empty"), coding-agent
//! CLIs on PATH (with their `--version`), and a reachable local
//! OpenAI-compatible server (`OLLAMA_HOST`, `OPENAI_BASE_URL`).
//!
//! The choice, in order: `claude` (ANTHROPIC_API_KEY or the `claude` CLI),
//! `gpt` (OPENAI_API_KEY or `codex`), `gemini` (GEMINI_API_KEY/GOOGLE_API_KEY or
//! `gemini`), `open-source` (a reachable local server, `aider` or `opencode`),
//! else `generic` (rendered instructions, replies ingested by hand).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use crate::plan::Platform;

/// API key variables we look for, by platform.
pub const API_KEYS: &[(&str, Platform)] = &[
    ("ANTHROPIC_API_KEY", Platform::Claude),
    ("OPENAI_API_KEY", Platform::Gpt),
    ("GEMINI_API_KEY", Platform::Gemini),
    ("GOOGLE_API_KEY", Platform::Gemini),
];

/// Coding-agent CLIs we look for, by platform.
pub const AGENT_CLIS: &[(&str, Platform)] = &[
    ("claude", Platform::Claude),
    ("codex", Platform::Gpt),
    ("gemini", Platform::Gemini),
    ("aider", Platform::OpenSource),
    ("opencode", Platform::OpenSource),
];

/// An API key variable and whether it is set (never its value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyEvidence {
    /// Variable name.
    pub name: String,
    /// Set and non-empty.
    pub present: bool,
}

/// A CLI found (or not) on PATH.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CliEvidence {
    /// Program name.
    pub name: String,
    /// Full path when found.
    pub path: Option<PathBuf>,
    /// First line of `--version`, when it answered in time.
    pub version: Option<String>,
}

/// A local server probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerEvidence {
    /// The variable the address came from.
    pub source: String,
    /// The URL probed.
    pub url: String,
    /// Whether it answered.
    pub reachable: bool,
    /// What happened.
    pub detail: String,
}

/// Everything detection looked at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// API keys.
    pub keys: Vec<KeyEvidence>,
    /// CLIs.
    pub clis: Vec<CliEvidence>,
    /// Local servers.
    pub servers: Vec<ServerEvidence>,
}

/// The outcome of detection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The platform `auto` resolves to.
    pub platform: Platform,
    /// Why, in one sentence.
    pub reason: String,
}

impl Evidence {
    fn key(&self, platform: Platform) -> Option<&str> {
        API_KEYS
            .iter()
            .filter(|(_, p)| *p == platform)
            .find(|(name, _)| self.keys.iter().any(|k| k.name == *name && k.present))
            .map(|(name, _)| *name)
    }

    fn cli(&self, platform: Platform) -> Option<&CliEvidence> {
        AGENT_CLIS
            .iter()
            .filter(|(_, p)| *p == platform)
            .find_map(|(name, _)| {
                self.clis
                    .iter()
                    .find(|c| c.name == *name && c.path.is_some())
            })
    }

    /// Chooses a platform from the evidence (see the module docs for the order).
    pub fn choose(&self) -> Choice {
        for platform in [Platform::Claude, Platform::Gpt, Platform::Gemini] {
            let key = self.key(platform);
            let cli = self.cli(platform);
            let reason = match (cli, key) {
                (Some(cli), Some(key)) => {
                    format!("the {} CLI is installed and {key} is set", cli.name)
                }
                (Some(cli), None) => format!("the {} CLI is installed", cli.name),
                (None, Some(key)) => format!("{key} is set (the API will be used)"),
                (None, None) => continue,
            };
            return Choice { platform, reason };
        }
        if let Some(server) = self.servers.iter().find(|s| s.reachable) {
            return Choice {
                platform: Platform::OpenSource,
                reason: format!(
                    "a local OpenAI-compatible server answers at {} ({})",
                    server.url, server.source
                ),
            };
        }
        if let Some(cli) = self.cli(Platform::OpenSource) {
            return Choice {
                platform: Platform::OpenSource,
                reason: format!("the {} CLI is installed", cli.name),
            };
        }
        Choice {
            platform: Platform::Generic,
            reason: "no API key, agent CLI or local model server was found: prompts are rendered for you to paste and the replies ingested".into(),
        }
    }
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `program --version` and returns its first non-empty line, within `timeout`.
pub fn version_of(program: &Path, timeout: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text);
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(timeout).ok();
    if text.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    text?
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(120).collect())
}

/// The local server URLs to probe: `OLLAMA_HOST` (its `/api/tags`) and `OPENAI_BASE_URL` (its `/models`).
pub fn server_candidates(get: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(host) = get("OLLAMA_HOST").filter(|h| !h.is_empty()) {
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            host
        } else {
            format!("http://{host}")
        };
        out.push((
            "OLLAMA_HOST".into(),
            format!("{}/api/tags", base.trim_end_matches('/')),
        ));
    }
    if let Some(base) = get("OPENAI_BASE_URL").filter(|h| !h.is_empty()) {
        out.push((
            "OPENAI_BASE_URL".into(),
            format!("{}/models", base.trim_end_matches('/')),
        ));
    }
    out
}

fn probe(source: String, url: String, timeout: Duration) -> ServerEvidence {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build();
    let result = client.map_err(|e| e.to_string()).and_then(|c| {
        c.get(&url).send().map_err(|e| {
            let mut msg = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                msg = format!("{msg}: {source}");
            }
            msg
        })
    });
    match result {
        Ok(response) => ServerEvidence {
            source,
            url,
            reachable: response.status().is_success(),
            detail: format!("HTTP {}", response.status()),
        },
        Err(detail) => ServerEvidence {
            source,
            url,
            reachable: false,
            detail,
        },
    }
}

/// Gathers evidence from the real environment.
/// Where an agent CLI is: `LLMO_<NAME>_BIN` when set (the override the
/// drivers use), else `name` on PATH.
pub fn locate_cli(name: &str) -> Option<PathBuf> {
    locate_program(&format!("LLMO_{}_BIN", name.to_ascii_uppercase()), name)
}

/// `variable`'s value when set (a path, or a name looked up on PATH; a path
/// that does not exist means "not installed"), else `program` on PATH.
pub fn locate_program(variable: &str, program: &str) -> Option<PathBuf> {
    match std::env::var_os(variable).filter(|v| !v.is_empty()) {
        Some(value) => {
            let path = PathBuf::from(&value);
            if path.components().count() > 1 {
                path.is_file().then_some(path)
            } else {
                which(&path.to_string_lossy())
            }
        }
        None => which(program),
    }
}

pub fn gather(timeout: Duration) -> Evidence {
    let get = |name: &str| std::env::var(name).ok();
    let keys = API_KEYS
        .iter()
        .map(|(name, _)| KeyEvidence {
            name: name.to_string(),
            present: get(name).is_some_and(|v| !v.trim().is_empty()),
        })
        .collect();
    let clis = AGENT_CLIS
        .iter()
        .map(|(name, _)| {
            let path = locate_cli(name);
            let version = path.as_deref().and_then(|p| version_of(p, timeout));
            CliEvidence {
                name: name.to_string(),
                path,
                version,
            }
        })
        .collect();
    let servers = server_candidates(get)
        .into_iter()
        .map(|(source, url)| probe(source, url, timeout))
        .collect();
    Evidence {
        keys,
        clis,
        servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(keys: &[&str], clis: &[&str], server: bool) -> Evidence {
        Evidence {
            keys: API_KEYS
                .iter()
                .map(|(n, _)| KeyEvidence {
                    name: n.to_string(),
                    present: keys.contains(n),
                })
                .collect(),
            clis: AGENT_CLIS
                .iter()
                .map(|(n, _)| CliEvidence {
                    name: n.to_string(),
                    path: clis
                        .contains(n)
                        .then(|| PathBuf::from(format!("/usr/bin/{n}"))),
                    version: None,
                })
                .collect(),
            servers: vec![ServerEvidence {
                source: "OLLAMA_HOST".into(),
                url: "http://127.0.0.1:11434/api/tags".into(),
                reachable: server,
                detail: String::new(),
            }],
        }
    }

    #[test]
    fn prefers_claude_then_gpt_then_gemini() {
        assert_eq!(
            evidence(&["OPENAI_API_KEY", "ANTHROPIC_API_KEY"], &[], false)
                .choose()
                .platform,
            Platform::Claude
        );
        assert_eq!(
            evidence(&["OPENAI_API_KEY"], &["gemini"], false)
                .choose()
                .platform,
            Platform::Gpt
        );
        let c = evidence(&["GOOGLE_API_KEY"], &[], true).choose();
        assert_eq!(c.platform, Platform::Gemini);
        assert!(c.reason.contains("GOOGLE_API_KEY"));
    }

    #[test]
    fn falls_back_to_local_servers_then_generic() {
        let c = evidence(&[], &[], true).choose();
        assert_eq!(c.platform, Platform::OpenSource);
        assert!(c.reason.contains("11434"));
        assert_eq!(
            evidence(&[], &["aider"], false).choose().platform,
            Platform::OpenSource
        );
        assert_eq!(
            evidence(&[], &[], false).choose().platform,
            Platform::Generic
        );
        assert!(
            evidence(&[], &["codex"], false)
                .choose()
                .reason
                .contains("codex CLI")
        );
    }

    #[test]
    fn server_candidates_normalize_addresses() {
        let env = |name: &str| match name {
            "OLLAMA_HOST" => Some("127.0.0.1:11434".to_string()),
            "OPENAI_BASE_URL" => Some("http://localhost:8000/v1/".to_string()),
            _ => None,
        };
        assert_eq!(
            server_candidates(env),
            vec![
                (
                    "OLLAMA_HOST".to_string(),
                    "http://127.0.0.1:11434/api/tags".to_string()
                ),
                (
                    "OPENAI_BASE_URL".to_string(),
                    "http://localhost:8000/v1/models".to_string()
                ),
            ]
        );
    }
}
