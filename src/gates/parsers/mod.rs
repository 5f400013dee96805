//! Readers of test runners' output: each turns what a runner printed into
//! passed / failed / skipped counts and the failing tests' names and messages.
//!
//! Every reader returns `None` when the text does not look like its runner's
//! output (no summary and no per-test line it knows), so `auto` can try them
//! in turn. [`parse`] picks the reader for a [`GateParser`]; [`detect`]
//! guesses one from the command and, failing that, from the output's shape.

use std::path::Path;

use super::TestFailure;
use crate::plan::GateParser;

mod cargo;
mod go;
mod jest;
mod junit;
mod nextest;
mod node;
mod pytest;
mod tap;
mod vitest;

pub use junit::parse_junit_xml;

/// Most lines kept of one failure's message.
const MESSAGE_LINES: usize = 12;
/// Most bytes kept of one failure's message.
const MESSAGE_BYTES: usize = 2000;

/// What a reader found in a runner's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Tests passed.
    pub passed: u32,
    /// Tests failed (errors included).
    pub failed: u32,
    /// Tests skipped, ignored or marked todo.
    pub skipped: u32,
    /// The failing tests, in the order the runner reported them.
    pub failures: Vec<TestFailure>,
}

impl Parsed {
    /// Adds a failure unless one of that name is already listed.
    pub(crate) fn add_failure(&mut self, name: &str, message: &str) {
        let name = name.trim();
        if name.is_empty() || self.failures.iter().any(|f| f.name == name) {
            return;
        }
        self.failures.push(TestFailure {
            name: name.to_string(),
            message: clip_message(message),
        });
    }

    /// Sets the message of the failure `name` when it has none yet.
    pub(crate) fn set_message(&mut self, name: &str, message: &str) {
        if let Some(f) = self
            .failures
            .iter_mut()
            .find(|f| f.name == name && f.message.is_empty())
        {
            f.message = clip_message(message);
        }
    }
}

/// A message trimmed to its first [`MESSAGE_LINES`] non-blank-edged lines and
/// at most [`MESSAGE_BYTES`] bytes.
pub(crate) fn clip_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .trim_matches('\n')
        .lines()
        .map(str::trim_end)
        .take(MESSAGE_LINES)
        .collect();
    let mut text = lines.join("\n").trim().to_string();
    if text.len() > MESSAGE_BYTES {
        let mut end = MESSAGE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Reads `output` with `parser` (`auto`: see [`detect`]). `command` is the
/// gate's command line, `junit` the JUnit XML file it wrote. `None`: nothing
/// recognisable (or `exit-code`), so only the exit code counts.
pub fn parse(
    parser: GateParser,
    command: &str,
    output: &str,
    junit: Option<&Path>,
) -> Option<Parsed> {
    let parser = match parser {
        GateParser::Auto => detect(command, output, junit)?,
        other => other,
    };
    match parser {
        GateParser::Auto | GateParser::ExitCode => None,
        GateParser::Cargo => cargo::parse(output),
        GateParser::Nextest => nextest::parse(output),
        GateParser::Pytest => pytest::parse(output),
        GateParser::Go => go::parse(output),
        GateParser::Jest => jest::parse(output),
        GateParser::Vitest => vitest::parse(output),
        GateParser::NodeTest => node::parse(output),
        GateParser::Tap => tap::parse(output),
        GateParser::JunitXml => {
            let path = junit?;
            let xml = std::fs::read_to_string(path).ok()?;
            parse_junit_xml(&xml).ok()
        }
    }
}

/// The reader `auto` uses: a JUnit file the command wrote, else the runner
/// named in the command, else the first reader that recognises the output.
/// `None`: only the exit code counts.
pub fn detect(command: &str, output: &str, junit: Option<&Path>) -> Option<GateParser> {
    if junit.is_some_and(Path::is_file) {
        return Some(GateParser::JunitXml);
    }
    if let Some(parser) = from_command(command) {
        return Some(parser);
    }
    from_output(output)
}

/// The runner named in a command line (`cargo test` → cargo, `npx jest` → jest…).
pub fn from_command(command: &str) -> Option<GateParser> {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .filter(|w| !w.is_empty())
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .collect();
    let has = |w: &str| words.contains(&w);
    let follows = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    if has("nextest") {
        Some(GateParser::Nextest)
    } else if follows("cargo", "test") {
        Some(GateParser::Cargo)
    } else if has("pytest") || has("py.test") {
        Some(GateParser::Pytest)
    } else if follows("go", "test") {
        Some(GateParser::Go)
    } else if has("vitest") {
        Some(GateParser::Vitest)
    } else if has("jest") {
        Some(GateParser::Jest)
    } else if (has("node") || has("bun") || has("deno")) && has("--test") {
        Some(GateParser::NodeTest)
    } else if has("prove") || has("tap") || has("--tap") {
        Some(GateParser::Tap)
    } else {
        None
    }
}

/// A reader of one runner's output.
type Reader = fn(&str) -> Option<Parsed>;

/// The first reader that recognises `output`, most specific first (nextest
/// output contains libtest's, node's TAP is TAP, go's `ok` lines are not TAP's).
pub fn from_output(output: &str) -> Option<GateParser> {
    let order: [(GateParser, Reader); 8] = [
        (GateParser::Nextest, nextest::parse),
        (GateParser::Cargo, cargo::parse),
        (GateParser::Pytest, pytest::parse),
        (GateParser::Vitest, vitest::parse),
        (GateParser::Jest, jest::parse),
        (GateParser::NodeTest, node::parse),
        (GateParser::Go, go::parse),
        (GateParser::Tap, tap::parse),
    ];
    order
        .into_iter()
        .find(|(_, read)| read(output).is_some())
        .map(|(parser, _)| parser)
}

/// The number before `word` in a `3 passed, 1 failed` style list, if any.
pub(crate) fn count_before(text: &str, words: &[&str]) -> Option<u32> {
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '|' || c == '(')
        .filter(|t| !t.is_empty())
        .collect();
    let mut found = None;
    for pair in tokens.windows(2) {
        let word = pair[1].trim_end_matches([',', ';', ')', '.']);
        if words.contains(&word)
            && let Ok(n) = pair[0].parse::<u32>()
        {
            found = Some(found.unwrap_or(0) + n);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_their_runner() {
        let cases = [
            ("cargo test --lib", GateParser::Cargo),
            ("cargo nextest run", GateParser::Nextest),
            ("python -m pytest -q tests", GateParser::Pytest),
            ("/usr/bin/pytest", GateParser::Pytest),
            ("go test ./...", GateParser::Go),
            ("npx jest --ci", GateParser::Jest),
            ("npx vitest run", GateParser::Vitest),
            ("node --test test/", GateParser::NodeTest),
            ("prove -v t/", GateParser::Tap),
        ];
        for (command, parser) in cases {
            assert_eq!(from_command(command), Some(parser), "{command}");
        }
        assert_eq!(from_command("npm test"), None);
        assert_eq!(from_command("cargo clippy -- -D warnings"), None);
    }

    #[test]
    fn output_shapes_name_their_runner() {
        let cases = [
            ("cargo.out", GateParser::Cargo),
            ("nextest.out", GateParser::Nextest),
            ("pytest.out", GateParser::Pytest),
            ("pytest-q.out", GateParser::Pytest),
            ("jest.out", GateParser::Jest),
            ("vitest.out", GateParser::Vitest),
            ("node.out", GateParser::NodeTest),
            ("node-spec.out", GateParser::NodeTest),
        ];
        for (file, parser) in cases {
            let text = testdata(file);
            assert_eq!(from_output(&text), Some(parser), "{file}");
        }
        assert_eq!(from_output(go::tests::GO_V), Some(GateParser::Go));
        assert_eq!(from_output(tap::tests::TAP), Some(GateParser::Tap));
        assert_eq!(from_output("all good\n"), None);
        assert_eq!(from_output(""), None);
    }

    #[test]
    fn counts_are_read_before_their_words() {
        assert_eq!(
            count_before("3 failed, 2 passed, 1 skipped in 0.1s", &["passed"]),
            Some(2)
        );
        assert_eq!(
            count_before("1 error, 2 errors", &["error", "errors"]),
            Some(3)
        );
        assert_eq!(count_before("nothing here", &["passed"]), None);
    }

    #[test]
    fn messages_are_clipped() {
        let long = "x\n".repeat(100);
        assert_eq!(clip_message(&long).lines().count(), MESSAGE_LINES);
        let wide = "é".repeat(3000);
        assert!(clip_message(&wide).len() <= MESSAGE_BYTES + 3);
    }

    /// A captured real output from `testdata/`.
    pub(crate) fn testdata(file: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/gates/parsers/testdata")
            .join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}
