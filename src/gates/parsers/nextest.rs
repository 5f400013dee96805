//! cargo-nextest output: the `Summary [ 0.4s] 5 tests run: 3 passed, 2
//! failed, 1 skipped` line, and `FAIL [ 0.3s] (3/5) crate::bin test` lines
//! (also `TIMEOUT`, `SIGSEGV`, `SIGABRT`); the panic in the lines below a
//! failing test's first `FAIL` line is its message.

use super::Parsed;

/// Statuses nextest prints for a test that did not pass.
const FAILING: [&str; 5] = ["FAIL", "TIMEOUT", "SIGSEGV", "SIGABRT", "ABORT"];
/// Statuses of lines that end a failing test's captured output.
const STATUS_WORDS: [&str; 9] = [
    "PASS", "FAIL", "TIMEOUT", "SIGSEGV", "SIGABRT", "ABORT", "SKIP", "Summary", "LEAK",
];

/// Reads nextest output; `None` without its summary or a status line.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let lines: Vec<&str> = output.lines().collect();
    let mut parsed = Parsed::default();
    let mut summary = false;
    let mut passed_lines = 0;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("Summary [") {
            let counts = rest.split_once("run:").map_or(rest, |(_, c)| c);
            summary = true;
            parsed.passed = super::count_before(counts, &["passed"]).unwrap_or(0);
            parsed.failed =
                super::count_before(counts, &["failed", "timed", "crashed"]).unwrap_or(0);
            parsed.skipped = super::count_before(counts, &["skipped"]).unwrap_or(0);
            continue;
        }
        let Some((status, name)) = status_line(line) else {
            continue;
        };
        if status == "PASS" {
            passed_lines += 1;
        } else if FAILING.contains(&status) {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| status_line(l.trim()).is_none())
                .map(|l| l.trim_start())
                .collect();
            let message = super::cargo::panic_message(&body).unwrap_or_default();
            parsed.add_failure(name, "");
            parsed.set_message(name, &message);
        }
    }
    if !summary {
        if passed_lines == 0 && parsed.failures.is_empty() {
            return None;
        }
        parsed.passed = passed_lines;
        parsed.failed = parsed.failures.len() as u32;
    }
    Some(parsed)
}

/// `FAIL [   0.368s] (3/5) fixture::it integration_bad` → (`FAIL`, `fixture::it integration_bad`).
fn status_line(line: &str) -> Option<(&str, &str)> {
    let (status, rest) = line.split_once(" [")?;
    if !STATUS_WORDS.contains(&status) || status == "Summary" {
        return None;
    }
    let (_, rest) = rest.split_once(']')?;
    let rest = rest.trim_start();
    // The `(3/5)` counter of newer versions.
    let rest = match rest.strip_prefix('(') {
        Some(r) => r.split_once(") ").map_or(rest, |(_, n)| n),
        None => rest,
    };
    Some((status, rest.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    #[test]
    fn a_real_nextest_run() {
        let parsed = parse(&testdata("nextest.out")).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (3, 2, 1));
        let names: Vec<&str> = parsed.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["fixture::it integration_bad", "fixture tests::adds_wrong"]
        );
        assert_eq!(parsed.failures[0].message, "boom\nsecond line");
        assert!(
            parsed.failures[1]
                .message
                .starts_with("assertion `left == right` failed: two and two"),
            "{:?}",
            parsed.failures[1]
        );
    }

    #[test]
    fn libtest_output_is_not_nextest() {
        assert!(parse(&testdata("cargo.out")).is_none());
    }
}
