//! Agents' output tails, and hiding secret values from everything the
//! dashboard sends.
//!
//! An agent's `agents/<id>/output.log` is what the agent printed; an agent
//! may print a key it found in its environment. [`Redactor`] replaces the
//! values of this process's secret-looking environment variables (names with
//! `API_KEY`, `TOKEN`, `SECRET`, `PASSWORD`, `CREDENTIAL`, as the agent loop
//! hides them from commands) and the dashboard's own token with `[redacted]`.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes of output shown by default.
pub const DEFAULT_TAIL_BYTES: u64 = 16 * 1024;
/// Most bytes of output one request may ask for.
pub const MAX_TAIL_BYTES: u64 = 1024 * 1024;

/// Values shorter than this are not redacted (they would match everywhere).
const MIN_SECRET_LEN: usize = 8;

/// Replaces secret values in text.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.secrets.len())
    }
}

impl Redactor {
    /// The secret-looking variables of this process's environment, plus `extra` values.
    pub fn from_env(extra: &[&str]) -> Self {
        let values = std::env::vars_os()
            .filter(|(name, _)| crate::agent_loop::tools::is_secret_name(&name.to_string_lossy()))
            .filter_map(|(_, value)| value.into_string().ok());
        Self::new(values.chain(extra.iter().map(|s| s.to_string())))
    }

    /// A redactor of these values (short ones are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a value containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret value replaced by `[redacted]`.
    pub fn redact(&self, text: String) -> String {
        let mut text = text;
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }
}

/// The last `max_bytes` of a file as text, starting at a line boundary when
/// cut (invalid UTF-8 replaced); `Ok(None)` when the file does not exist.
pub fn tail(path: &Path, max_bytes: u64) -> std::io::Result<Option<String>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max_bytes).read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0
        && let Some(newline) = text.find('\n')
    {
        text = format!("… (earlier output cut)\n{}", &text[newline + 1..]);
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_replaced_and_short_ones_ignored() {
        let r = Redactor::new(["sk-live-1234567890".to_string(), "short".to_string()]);
        assert_eq!(
            r.redact("key sk-live-1234567890, short stays".into()),
            "key [redacted], short stays"
        );
        assert_eq!(format!("{r:?}"), "Redactor(1 values)");
    }

    #[test]
    fn a_tail_starts_at_a_line_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        assert_eq!(tail(&path, 10).unwrap(), None);
        std::fs::write(&path, "first line\nsecond line\nthird\n").unwrap();
        assert_eq!(
            tail(&path, 1000).unwrap().unwrap(),
            "first line\nsecond line\nthird\n"
        );
        assert_eq!(
            tail(&path, 14).unwrap().unwrap(),
            "… (earlier output cut)\nthird\n"
        );
    }
}
