//! `cargo test` (libtest) output: `test name ... ok|FAILED|ignored` lines,
//! one `test result: ok. N passed; M failed; K ignored; …` line per test
//! binary (summed), and the failing tests' `---- name stdout ----` sections,
//! whose panic message becomes the failure's message.

use super::Parsed;

/// Reads libtest output; `None` without a `test result:` or `test … ...` line.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let mut parsed = Parsed::default();
    let mut seen = false;
    // Per-test lines of the binary running now, used when its summary never
    // comes (the run was cut short).
    let mut pending = Parsed::default();
    let lines: Vec<&str> = output.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if let Some(summary) = line.strip_prefix("test result: ") {
            seen = true;
            parsed.passed += super::count_before(summary, &["passed"]).unwrap_or(0);
            parsed.failed += super::count_before(summary, &["failed"]).unwrap_or(0);
            parsed.skipped += super::count_before(summary, &["ignored"]).unwrap_or(0);
            pending = Parsed::default();
        } else if let Some((name, outcome)) = test_line(line) {
            seen = true;
            match outcome {
                Outcome::Ok => pending.passed += 1,
                Outcome::Ignored => pending.skipped += 1,
                Outcome::Failed => {
                    pending.failed += 1;
                    parsed.add_failure(name, "");
                }
            }
        } else if let Some(name) = section_header(line) {
            let start = i + 1;
            let mut end = start;
            while end < lines.len()
                && section_header(lines[end]).is_none()
                && lines[end].trim_end() != "failures:"
            {
                end += 1;
            }
            let message =
                panic_message(&lines[start..end]).unwrap_or_else(|| lines[start..end].join("\n"));
            parsed.add_failure(name, "");
            parsed.set_message(name, &message);
            i = end;
            continue;
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    parsed.passed += pending.passed;
    parsed.failed += pending.failed;
    parsed.skipped += pending.skipped;
    Some(parsed)
}

/// How one test ended.
enum Outcome {
    Ok,
    Failed,
    Ignored,
}

/// `test name ... ok` (also `ignored, reason` and doc tests' `test src/lib.rs - f (line 3) ... ok`).
fn test_line(line: &str) -> Option<(&str, Outcome)> {
    let rest = line.strip_prefix("test ")?;
    let (name, outcome) = rest.rsplit_once(" ... ")?;
    let outcome = match outcome.trim() {
        "ok" => Outcome::Ok,
        "FAILED" => Outcome::Failed,
        o if o.starts_with("ignored") => Outcome::Ignored,
        _ => return None,
    };
    Some((name.trim(), outcome))
}

/// `---- name stdout ----` → `name`.
fn section_header(line: &str) -> Option<&str> {
    line.trim_end()
        .strip_prefix("---- ")?
        .strip_suffix(" stdout ----")
}

/// The message of the first panic in `lines`: after `thread 'x' panicked at
/// file:line:col:` up to the backtrace or a blank line (Rust ≥ 1.73), or the
/// quoted text of `panicked at 'msg', file` (older).
pub(super) fn panic_message(lines: &[&str]) -> Option<String> {
    let at = lines.iter().position(|l| l.contains("panicked at "))?;
    let head = lines[at];
    let after = head.split_once("panicked at ").map_or("", |(_, a)| a);
    if let Some(quoted) = after.strip_prefix('\'') {
        // Old form: panicked at 'message', src/lib.rs:10:5
        let message = quoted.rsplit_once("', ").map_or(quoted, |(m, _)| m);
        return Some(message.to_string());
    }
    let body: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with("stack backtrace:") && !t.starts_with("note: ")
        })
        .copied()
        .collect();
    Some(body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    #[test]
    fn a_real_cargo_run_with_two_binaries_and_doc_tests() {
        let parsed = parse(&testdata("cargo.out")).unwrap();
        assert_eq!(
            (parsed.passed, parsed.failed, parsed.skipped),
            (3, 2, 1),
            "{parsed:?}"
        );
        let names: Vec<&str> = parsed.failures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tests::adds_wrong", "integration_bad"]);
        assert_eq!(
            parsed.failures[0].message,
            "assertion `left == right` failed: two and two\n  left: 4\n right: 5"
        );
        assert_eq!(parsed.failures[1].message, "boom\nsecond line");
    }

    #[test]
    fn a_run_cut_short_counts_its_test_lines() {
        let text = "running 3 tests\ntest a ... ok\ntest b ... FAILED\n";
        let parsed = parse(text).unwrap();
        assert_eq!((parsed.passed, parsed.failed), (1, 1));
        assert_eq!(parsed.failures[0].name, "b");
    }

    #[test]
    fn the_old_panic_form_gives_its_quoted_message() {
        let text = "---- t stdout ----\nthread 't' panicked at 'nope', src/lib.rs:3:5\n\nfailures:\n    t\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.failures[0].message, "nope");
        assert_eq!(parsed.failed, 1);
    }

    #[test]
    fn other_output_is_not_libtest() {
        assert!(parse("error[E0425]: cannot find value `x`\n").is_none());
    }
}
