//! Jest output: the `Tests:  2 failed, 1 skipped, 2 passed, 5 total` summary
//! (todo counts as skipped) and the `● describe › test` headers of failure
//! details, whose first lines are the message. A suite that failed to run
//! (`● Test suite failed to run`) is a failure named after its file.

use super::Parsed;

/// Reads Jest output; `None` without its `Tests:` summary.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let lines: Vec<&str> = output.lines().collect();
    let mut parsed = Parsed::default();
    let mut summary = false;
    let mut current_file = "";
    let mut broken_suites = 0;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if let Some(counts) = line.strip_prefix("Tests:") {
            if !counts.contains("total") {
                continue;
            }
            summary = true;
            parsed.passed = super::count_before(counts, &["passed"]).unwrap_or(0);
            parsed.failed = super::count_before(counts, &["failed"]).unwrap_or(0);
            parsed.skipped = super::count_before(counts, &["skipped", "todo"]).unwrap_or(0);
        } else if let Some(file) = line.strip_prefix("FAIL ") {
            current_file = file.trim();
        } else if let Some(title) = line.strip_prefix("● ") {
            let title = title.trim();
            if title.starts_with("Console") {
                continue;
            }
            let message = message_below(&lines[i + 1..]);
            if title == "Test suite failed to run" {
                let name = if current_file.is_empty() {
                    title
                } else {
                    current_file
                };
                if !parsed.failures.iter().any(|f| f.name == name) {
                    broken_suites += 1;
                }
                parsed.add_failure(name, &message);
            } else {
                parsed.add_failure(title, &message);
            }
        }
    }
    if !summary {
        return None;
    }
    parsed.failed += broken_suites;
    Some(parsed)
}

/// The lines of a failure's details up to its code frame or stack.
fn message_below(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .take_while(|l| {
            !l.starts_with("● ") && !l.starts_with("at ") && !l.starts_with('>') && !is_frame(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A code frame line: `4 | code` or `| ^`.
fn is_frame(line: &str) -> bool {
    let head = line.split('|').next().unwrap_or("");
    line.contains('|') && head.trim().chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    #[test]
    fn a_real_jest_run() {
        let parsed = parse(&testdata("jest.out")).unwrap();
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
                    "sum › adds wrong",
                    "expect(received).toBe(expected) // Object.is equality\n\nExpected: 5\nReceived: 4"
                ),
                ("top bad", "top boom"),
            ]
        );
    }

    #[test]
    fn a_suite_that_failed_to_run() {
        let text = "FAIL ./broken.test.js\n  ● Test suite failed to run\n\n    Cannot find module 'nope' from 'broken.test.js'\n\n      at Resolver.resolveModule (node_modules/jest-resolve/build/resolver.js:427:11)\n\nTest Suites: 1 failed, 1 total\nTests:       0 total\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.failed, 1);
        assert_eq!(parsed.failures[0].name, "./broken.test.js");
        assert_eq!(
            parsed.failures[0].message,
            "Cannot find module 'nope' from 'broken.test.js'"
        );
    }

    #[test]
    fn vitest_is_not_jest() {
        assert!(parse(&testdata("vitest.out")).is_none());
    }
}
