//! `go test` output, with or without `-v`: `--- PASS|FAIL|SKIP: TestX (0.00s)`
//! lines (subtests too, indented), and per-package `ok  pkg 0.1s` / `FAIL
//! pkg 0.1s` / `FAIL pkg [build failed]` lines. A package that failed without
//! a failing test (build error, panic, `TestMain`) is a failure named after
//! the package. A failure's message is its `file_test.go:12: …` log lines.
//! `go test -json` output is read through its `Output` fields.

use super::Parsed;

/// Reads `go test` output; `None` without a result or package line.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let text = from_json(output);
    let output = text.as_deref().unwrap_or(output);
    let lines: Vec<&str> = output.lines().collect();
    let mut parsed = Parsed::default();
    let mut seen = false;
    let mut failed_in_package = 0;
    let mut package_start = 0;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if let Some((outcome, name)) = result_line(trimmed) {
            seen = true;
            match outcome {
                "PASS" => parsed.passed += 1,
                "SKIP" => parsed.skipped += 1,
                _ => {
                    parsed.failed += 1;
                    failed_in_package += 1;
                    let message = failure_message(&lines, i, name);
                    parsed.add_failure(name, &message);
                }
            }
        } else if let Some(package) = package_line(line) {
            seen = true;
            if let Some(package) = package.failed
                && failed_in_package == 0
            {
                parsed.failed += 1;
                let message = package_failure(&lines[package_start..i], package.1);
                parsed.add_failure(package.0, &message);
            }
            failed_in_package = 0;
            package_start = i + 1;
        }
    }
    seen.then_some(parsed)
}

/// `--- FAIL: TestX/sub (0.00s)` → (`FAIL`, `TestX/sub`).
fn result_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("--- ")?;
    let (outcome, rest) = rest.split_once(": ")?;
    if !matches!(outcome, "PASS" | "FAIL" | "SKIP") {
        return None;
    }
    let name = rest.rsplit_once(" (").map_or(rest, |(n, _)| n);
    Some((outcome, name.trim()))
}

/// A package's result line.
struct PackageLine<'a> {
    /// `Some((package, reason))` when it failed.
    failed: Option<(&'a str, &'a str)>,
}

/// `ok  \tpkg\t0.1s`, `FAIL\tpkg\t0.1s`, `FAIL\tpkg [build failed]`, `?   \tpkg\t[no test files]`.
fn package_line(line: &str) -> Option<PackageLine<'_>> {
    let (head, rest) = line.split_once('\t').or_else(|| {
        // `FAIL pkg [build failed]` is printed with a space.
        line.strip_prefix("FAIL ").map(|r| ("FAIL", r))
    })?;
    let package = rest.split(['\t', ' ']).next()?.trim();
    if package.is_empty() {
        return None;
    }
    match head.trim() {
        "ok" | "?" => Some(PackageLine { failed: None }),
        "FAIL" => {
            let reason = rest[package.len()..].trim();
            Some(PackageLine {
                failed: Some((package, reason)),
            })
        }
        _ => None,
    }
}

/// The log lines of the failing test at `lines[at]`: indented lines right
/// below it (plain `go test`), else its `file.go:N:` lines since its `=== RUN`
/// (`-v` prints them as they come).
fn failure_message(lines: &[&str], at: usize, name: &str) -> String {
    let indent = lines[at].len() - lines[at].trim_start().len();
    let below: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| {
            let t = l.trim_start();
            l.len() - t.len() > indent && !t.starts_with("--- ") && !t.starts_with("=== ")
        })
        .map(|l| l.trim())
        .collect();
    if !below.is_empty() {
        return below.join("\n");
    }
    let run = format!("=== RUN   {name}");
    let start = lines[..at]
        .iter()
        .rposition(|l| l.trim_start() == run)
        .map_or(at, |p| p + 1);
    lines[start..at]
        .iter()
        .map(|l| l.trim())
        .filter(|l| is_log_line(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `x_test.go:12: message` (or a compiler's `dir/x.go:3:9: message`).
fn is_log_line(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(at, _)| {
        at.split_once(".go:").is_some_and(|(file, position)| {
            !file.is_empty()
                && !file.contains(' ')
                && position.split(':').all(|n| n.parse::<u32>().is_ok())
        })
    })
}

/// Why a package failed without a failing test: the reason in brackets, or
/// the first `panic:` / compiler error line above.
fn package_failure(above: &[&str], reason: &str) -> String {
    let from_output = above
        .iter()
        .find(|l| l.starts_with("panic: ") || is_log_line(l.trim_start_matches("./")))
        .map(|l| l.trim().to_string());
    // `[build failed]`, `[setup failed]`; a duration is no reason.
    let reason = reason
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or("");
    match (reason, from_output) {
        ("", Some(line)) => line,
        ("", None) => "the package failed".to_string(),
        (reason, Some(line)) => format!("{reason}: {line}"),
        (reason, None) => reason.to_string(),
    }
}

/// The text of `go test -json` output (its `Output` fields, in order), or
/// `None` when the output is not JSON events.
fn from_json(output: &str) -> Option<String> {
    let first = output.lines().find(|l| !l.trim().is_empty())?;
    if !first.trim_start().starts_with('{') || !first.contains("\"Action\"") {
        return None;
    }
    let mut text = String::new();
    for line in output.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(event) => {
                if let Some(out) = event.get("Output").and_then(|o| o.as_str()) {
                    text.push_str(out);
                }
            }
            Err(_) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    Some(text)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `go test -v ./...` (Go 1.22 format) with a failing subtest, a skip and a failing package build.
    pub(crate) const GO_V: &str = "=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestSub
    calc_test.go:14: expected 1, got 2
    calc_test.go:15: second line
--- FAIL: TestSub (0.00s)
=== RUN   TestTable
=== RUN   TestTable/zero
=== RUN   TestTable/one
    calc_test.go:30: one: wrong
--- FAIL: TestTable (0.00s)
    --- PASS: TestTable/zero (0.00s)
    --- FAIL: TestTable/one (0.00s)
=== RUN   TestLater
    calc_test.go:40: not yet
--- SKIP: TestLater (0.00s)
FAIL
FAIL\texample.com/calc\t0.003s
ok  \texample.com/util\t0.002s
?   \texample.com/cmd\t[no test files]
# example.com/broken
broken/b.go:3:9: undefined: x
FAIL\texample.com/broken [build failed]
FAIL
";

    /// Plain `go test ./...`: only failures are printed, their logs below.
    const GO_PLAIN: &str = "--- FAIL: TestSub (0.00s)
    calc_test.go:14: expected 1, got 2
FAIL
FAIL\texample.com/calc\t0.003s
ok  \texample.com/util\t(cached)
FAIL
";

    #[test]
    fn verbose_output_with_subtests_and_a_build_failure() {
        let parsed = parse(GO_V).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (2, 4, 1));
        let failures: Vec<(&str, &str)> = parsed
            .failures
            .iter()
            .map(|f| (f.name.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                (
                    "TestSub",
                    "calc_test.go:14: expected 1, got 2\ncalc_test.go:15: second line"
                ),
                ("TestTable", "calc_test.go:30: one: wrong"),
                ("TestTable/one", "calc_test.go:30: one: wrong"),
                (
                    "example.com/broken",
                    "build failed: broken/b.go:3:9: undefined: x"
                ),
            ]
        );
    }

    #[test]
    fn plain_output_has_failures_and_their_logs() {
        let parsed = parse(GO_PLAIN).unwrap();
        assert_eq!((parsed.passed, parsed.failed), (0, 1));
        assert_eq!(parsed.failures[0].name, "TestSub");
        assert_eq!(
            parsed.failures[0].message,
            "calc_test.go:14: expected 1, got 2"
        );
    }

    #[test]
    fn json_events_are_read_through_their_output() {
        let json = GO_PLAIN
            .lines()
            .map(|l| {
                serde_json::json!({"Action": "output", "Package": "example.com/calc", "Output": format!("{l}\n")})
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed = parse(&json).unwrap();
        assert_eq!(parsed.failed, 1);
        assert_eq!(parsed.failures[0].name, "TestSub");
    }

    #[test]
    fn a_panic_fails_the_package() {
        let text = "panic: runtime error: index out of range [3] with length 2\n\ngoroutine 7 [running]:\nFAIL\texample.com/calc\t0.005s\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.failed, 1);
        assert_eq!(parsed.failures[0].name, "example.com/calc");
        assert!(
            parsed.failures[0]
                .message
                .starts_with("panic: runtime error"),
            "{:?}",
            parsed.failures
        );
    }

    #[test]
    fn tap_is_not_go() {
        assert!(parse("ok 1 - adds\nnot ok 2 - subtracts\n").is_none());
    }
}
