//! Vitest output: the `Tests  2 failed | 2 passed | 1 skipped (5)` summary
//! (todo counts as skipped) and the ` FAIL  file > describe > test` headers
//! of failure details, whose first lines are the message; without those, the
//! `× test` lines of the default reporter.

use super::Parsed;

/// Reads Vitest output; `None` without its `Tests` summary.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let lines: Vec<&str> = output.lines().collect();
    let mut parsed = Parsed::default();
    let mut summary = false;
    let mut crossed = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if let Some(counts) = line.strip_prefix("Tests ") {
            if !counts.trim_end().ends_with(')') {
                continue;
            }
            summary = true;
            parsed.passed = super::count_before(counts, &["passed"]).unwrap_or(0);
            parsed.failed = super::count_before(counts, &["failed"]).unwrap_or(0);
            parsed.skipped = super::count_before(counts, &["skipped", "todo"]).unwrap_or(0);
        } else if let Some(title) = line.strip_prefix("FAIL ") {
            let title = title.trim();
            // ` FAIL  file > test`; a file line alone is a suite that failed to load.
            let message = lines[i + 1..]
                .iter()
                .map(|l| l.trim_end())
                .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with('❯'))
                .collect::<Vec<_>>()
                .join("\n");
            parsed.add_failure(title, &message);
        } else if let Some(name) = line.strip_prefix("× ") {
            crossed.push(strip_duration(name).to_string());
        }
    }
    if !summary {
        return None;
    }
    if parsed.failures.is_empty() {
        for name in crossed {
            parsed.add_failure(&name, "");
        }
    }
    Some(parsed)
}

/// `adds wrong 11ms` → `adds wrong`.
fn strip_duration(name: &str) -> &str {
    match name.trim_end().rsplit_once(' ') {
        Some((head, last))
            if last.ends_with("ms") && last.trim_end_matches("ms").parse::<f64>().is_ok() =>
        {
            head
        }
        _ => name.trim_end(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    #[test]
    fn a_real_vitest_run() {
        let parsed = parse(&testdata("vitest.out")).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (2, 2, 1));
        let failures: Vec<(&str, &str)> = parsed
            .failures
            .iter()
            .map(|f| (f.name.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                (
                    "v.test.mjs > sum > adds wrong",
                    "AssertionError: expected 4 to be 5 // Object.is equality"
                ),
                ("v.test.mjs > top bad", "Error: top boom"),
            ]
        );
    }

    #[test]
    fn without_details_the_crossed_tests_are_named() {
        let text = " ❯ a.test.js (2 tests | 1 failed) 5ms\n   × breaks 2ms\n   ✓ works 1ms\n\n Test Files  1 failed (1)\n      Tests  1 failed | 1 passed (2)\n";
        let parsed = parse(text).unwrap();
        assert_eq!((parsed.passed, parsed.failed), (1, 1));
        assert_eq!(parsed.failures[0].name, "breaks");
    }

    #[test]
    fn jest_is_not_vitest() {
        assert!(parse(&testdata("jest.out")).is_none());
    }
}
