//! pytest output: the final `== 3 failed, 2 passed, 1 skipped in 0.08s ==`
//! line (bare with `-q`), and the short test summary's `FAILED path::test -
//! message` and `ERROR path::test - message` lines. Errors count as failures,
//! `xfailed` as skipped, `xpassed` as passed.

use super::Parsed;

/// Reads pytest output; `None` without its final summary line.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let mut parsed = Parsed::default();
    let mut summary = false;
    for line in output.lines() {
        let line = line.trim_end();
        if let Some(counts) = summary_line(line) {
            summary = true;
            parsed.passed = super::count_before(counts, &["passed", "xpassed"]).unwrap_or(0);
            parsed.failed =
                super::count_before(counts, &["failed", "error", "errors"]).unwrap_or(0);
            parsed.skipped = super::count_before(counts, &["skipped", "xfailed"]).unwrap_or(0);
        } else if let Some(rest) = line
            .strip_prefix("FAILED ")
            .or_else(|| line.strip_prefix("ERROR "))
        {
            let (name, message) = rest.split_once(" - ").unwrap_or((rest, ""));
            parsed.add_failure(name, message);
        }
    }
    if !summary {
        return None;
    }
    // A failure without a message in the short summary: the first `E` line of its section.
    let missing: Vec<String> = parsed
        .failures
        .iter()
        .filter(|f| f.message.is_empty())
        .map(|f| f.name.clone())
        .collect();
    for name in missing {
        if let Some(message) = first_error_line(output, &name) {
            parsed.set_message(&name, &message);
        }
    }
    Some(parsed)
}

/// The counts of pytest's last line: `=== 1 failed, 2 passed in 0.1s ===`,
/// `1 failed, 2 passed in 0.1s` (`-q`), `=== no tests ran in 0.01s ===`.
fn summary_line(line: &str) -> Option<&str> {
    let inner = line.trim_matches(|c| c == '=' || c == ' ');
    let (counts, time) = inner.rsplit_once(" in ")?;
    let time = time.split_whitespace().next()?;
    if !time.ends_with('s')
        || !time
            .trim_end_matches('s')
            .chars()
            .any(|c| c.is_ascii_digit())
    {
        return None;
    }
    let known = [
        "passed",
        "failed",
        "skipped",
        "error",
        "errors",
        "xfailed",
        "xpassed",
        "deselected",
        "warning",
        "warnings",
        "rerun",
    ];
    let recognised = counts == "no tests ran"
        || counts.split(", ").all(|part| {
            let mut words = part.split_whitespace();
            matches!((words.next(), words.next(), words.next()),
                (Some(n), Some(w), None) if n.parse::<u32>().is_ok() && known.contains(&w))
        });
    recognised.then_some(counts)
}

/// The first `E   …` line of the section of test `name` (`path::Class::test`
/// has the header `___ Class.test ___`; a collection error `___ ERROR
/// collecting path ___`).
fn first_error_line(output: &str, name: &str) -> Option<String> {
    let short = name.split("::").skip(1).collect::<Vec<_>>().join(".");
    let mut inside = false;
    for line in output.lines() {
        let title = line.trim().trim_matches('_').trim();
        if line.starts_with("___") {
            inside = title == short
                || title == name
                || title.strip_prefix("ERROR collecting ") == Some(name);
            continue;
        }
        if inside && let Some(message) = line.strip_prefix("E ") {
            return Some(message.trim().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    #[test]
    fn a_real_pytest_run() {
        for file in ["pytest.out", "pytest-q.out"] {
            let parsed = parse(&testdata(file)).unwrap();
            assert_eq!(
                (parsed.passed, parsed.failed, parsed.skipped),
                (2, 3, 1),
                "{file}"
            );
            let failures: Vec<(&str, &str)> = parsed
                .failures
                .iter()
                .map(|f| (f.name.as_str(), f.message.as_str()))
                .collect();
            assert_eq!(
                failures,
                [
                    ("test_sample.py::test_bad", "AssertionError: one is not two"),
                    ("test_sample.py::test_error", "ValueError: bad value"),
                    (
                        "test_sample.py::TestK::test_m",
                        "AssertionError: assert 'a' == 'b'"
                    ),
                ],
                "{file}"
            );
        }
    }

    #[test]
    fn a_collection_error_is_a_failure_with_its_error_line() {
        let parsed = parse(&testdata("pytest-collect-error.out")).unwrap();
        assert_eq!((parsed.passed, parsed.failed), (0, 1));
        assert_eq!(parsed.failures[0].name, "test_broken.py");
        assert_eq!(
            parsed.failures[0].message,
            "ModuleNotFoundError: No module named 'nosuchmodule'"
        );
    }

    #[test]
    fn no_tests_and_other_output() {
        let parsed = parse("===== no tests ran in 0.01s =====\n").unwrap();
        assert_eq!(parsed, Parsed::default());
        assert!(parse("finished in 3s\n").is_none());
        assert!(parse("Tests: 1 failed, 2 total\n").is_none());
    }
}
