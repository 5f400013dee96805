//! TAP (Test Anything Protocol, versions 12–14): `ok N - name`, `not ok N -
//! name`, `# SKIP` / `# TODO` directives, indented YAML diagnostics between
//! `---` and `...` (their `message:` or `error:` is the failure's message),
//! and `Bail out!`. Only the outermost level is counted; a `not ok # TODO`
//! is not a failure (as TAP says) and counts as skipped.

use std::sync::LazyLock;

use regex::Regex;

use super::Parsed;

/// A test line: indentation, `ok`/`not ok`, number, description, directive.
static TEST_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\s*)(not ok|ok)\b(?:\s+(\d+))?(?:\s*-)?\s*(.*?)(?:\s*#\s*(?i:(skip|todo))\S*\b(.*))?$",
    )
    .expect("valid regex")
});

/// One test line with its diagnostics.
#[derive(Debug)]
pub(super) struct Entry {
    /// Indentation of the line (subtests are indented).
    pub(super) depth: usize,
    /// `ok` rather than `not ok`.
    pub(super) ok: bool,
    /// The description, without the leading `- `.
    pub(super) name: String,
    /// `SKIP` or `TODO` (upper case), if any.
    pub(super) directive: Option<String>,
    /// The YAML diagnostics block's lines, de-indented; for a failure without
    /// YAML, its `#` comment lines below, each as `diagnostic:<comment>`.
    pub(super) yaml: Vec<String>,
}

/// The test lines of a TAP stream, each with its YAML block.
pub(super) fn entries(output: &str) -> Vec<Entry> {
    let lines: Vec<&str> = output.lines().collect();
    let mut entries: Vec<Entry> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if let Some(caps) = TEST_LINE.captures(line) {
            let depth = caps.get(1).map_or(0, |m| m.as_str().len());
            let mut entry = Entry {
                depth,
                ok: caps.get(2).is_some_and(|m| m.as_str() == "ok"),
                name: caps.get(4).map_or("", |m| m.as_str()).replace("\\#", "#"),
                directive: caps.get(5).map(|m| m.as_str().to_ascii_uppercase()),
                yaml: Vec::new(),
            };
            // A YAML block right below, more indented.
            if let Some(next) = lines.get(i + 1)
                && next.trim() == "---"
                && indent(next) > depth
            {
                let base = indent(next);
                let mut j = i + 2;
                while j < lines.len() && lines[j].trim() != "..." {
                    let l = lines[j];
                    entry
                        .yaml
                        .push(l.get(base.min(indent(l))..).unwrap_or("").to_string());
                    j += 1;
                }
                i = j;
            } else if !entry.ok {
                // No YAML: the `#` comments right below (Perl's Test::More
                // prints `#   Failed test 'name'` and where).
                let mut j = i + 1;
                while let Some(comment) = lines
                    .get(j)
                    .and_then(|l| l.trim_start().strip_prefix('#'))
                    .filter(|c| !c.trim_start().starts_with("Subtest:"))
                {
                    if !comment.trim_start().starts_with("Looks like") {
                        entry.yaml.push(format!("diagnostic:{comment}"));
                    }
                    j += 1;
                }
                i = j - 1;
            }
            entries.push(entry);
        }
        i += 1;
    }
    entries
}

/// Leading spaces of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A failure's message from its YAML diagnostics: `message:` or `error:`
/// (a scalar or a `|` block), else the whole block.
pub(super) fn yaml_message(yaml: &[String]) -> String {
    if yaml.iter().all(|l| l.starts_with("diagnostic:")) {
        return yaml
            .iter()
            .map(|l| l["diagnostic:".len()..].trim())
            .collect::<Vec<_>>()
            .join("\n");
    }
    for key in ["message:", "error:"] {
        let Some(at) = yaml.iter().position(|l| l.starts_with(key)) else {
            continue;
        };
        let value = yaml[at][key.len()..].trim();
        if value.starts_with('|') || value.starts_with('>') {
            return yaml[at + 1..]
                .iter()
                .take_while(|l| l.starts_with(' ') || l.trim().is_empty())
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n");
        }
        return unquote(value);
    }
    yaml.join("\n")
}

/// A YAML scalar without its quotes.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        serde_json::from_str::<String>(value).unwrap_or_else(|_| inner.to_string())
    } else {
        value.to_string()
    }
}

/// Reads a TAP stream; `None` without a test line or plan.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let all = entries(output);
    let has_plan = output
        .lines()
        .any(|l| l.trim_start().starts_with("1..") || l.starts_with("TAP version"));
    if all.is_empty() && !has_plan {
        return None;
    }
    let top = all.iter().map(|e| e.depth).min().unwrap_or(0);
    let mut parsed = Parsed::default();
    for entry in all.iter().filter(|e| e.depth == top) {
        match (entry.ok, entry.directive.as_deref()) {
            (_, Some("SKIP")) | (false, Some("TODO")) => parsed.skipped += 1,
            (true, _) => parsed.passed += 1,
            (false, _) => {
                parsed.failed += 1;
                parsed.add_failure(&entry.name, &yaml_message(&entry.yaml));
            }
        }
    }
    if let Some(reason) = output
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Bail out!"))
    {
        parsed.failed += 1;
        parsed.add_failure("Bail out!", reason);
    }
    Some(parsed)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A TAP 13 stream with a skip, a todo, YAML diagnostics and an escaped `#`.
    pub(crate) const TAP: &str = "TAP version 13
1..6
ok 1 - parses the header
not ok 2 - rejects \\# comments
  ---
  message: 'expected 1 error, got 0'
  severity: fail
  data:
    got: 0
    expect: 1
  ...
ok 3 - skipped on linux # SKIP not on linux
not ok 4 - future work # TODO later
ok 5 keeps going
not ok 6 - multi-line
  ---
  message: |
    first line
    second line
  ...
# tests 6
";

    #[test]
    fn a_tap_stream() {
        let parsed = parse(TAP).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (2, 2, 2));
        let failures: Vec<(&str, &str)> = parsed
            .failures
            .iter()
            .map(|f| (f.name.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                ("rejects # comments", "expected 1 error, got 0"),
                ("multi-line", "first line\nsecond line"),
            ]
        );
    }

    #[test]
    fn perl_test_more_diagnostics_are_the_message() {
        let text = "ok 1 - a\nnot ok 2 - b\n#   Failed test 'b'\n#   at -e line 1.\nok 3 # skip no db\n1..3\n# Looks like you failed 1 test of 3.\n";
        let parsed = parse(text).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (1, 1, 1));
        assert_eq!(parsed.failures[0].message, "Failed test 'b'\nat -e line 1.");
    }

    #[test]
    fn bail_out_is_a_failure() {
        let parsed = parse("1..3\nok 1 - a\nBail out! database is down\n").unwrap();
        assert_eq!((parsed.passed, parsed.failed), (1, 1));
        assert_eq!(parsed.failures[0].message, "database is down");
    }

    #[test]
    fn plain_text_is_not_tap() {
        assert!(parse("everything is ok\n").is_none());
    }
}
