//! `node --test` output. Node 20–22 print TAP when stdout is not a terminal
//! (`# Subtest: name`, nested `not ok N - name` with YAML diagnostics, then
//! `# tests 7`, `# pass 3`, `# fail 2`, `# cancelled 0`, `# skipped 1`, `#
//! todo 1`); the spec reporter (a terminal, or Node 23+) prints `✔ name`,
//! `✖ name`, `ℹ pass 3`… and a `✖ failing tests:` section. Counts come from
//! the summary (cancelled counts as failed, todo as skipped); failures are
//! the failing tests, not the suites that failed because of them.

use super::Parsed;
use super::tap;

/// Reads `node --test` output; `None` without its summary.
pub(super) fn parse(output: &str) -> Option<Parsed> {
    let tap_summary = summary(output, "# ");
    let spec_summary = summary(output, "ℹ ");
    if let Some(mut parsed) = tap_summary.filter(|_| output.contains("# Subtest: ")) {
        for entry in tap::entries(output) {
            let suite_failed = entry
                .yaml
                .iter()
                .any(|l| l == "type: 'suite'" || l == "failureType: 'subtestsFailed'");
            if !entry.ok && entry.directive.is_none() && !suite_failed {
                parsed.add_failure(&entry.name, &tap::yaml_message(&entry.yaml));
            }
        }
        return Some(parsed);
    }
    let mut parsed = spec_summary?;
    spec_failures(output, &mut parsed);
    Some(parsed)
}

/// The summary's counts, each on a line `<prefix>pass 3`.
fn summary(output: &str, prefix: &str) -> Option<Parsed> {
    let mut parsed = Parsed::default();
    let mut seen = false;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix(prefix) else {
            continue;
        };
        let Some((key, value)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(n) = value.trim().parse::<u32>() else {
            continue;
        };
        match key {
            "pass" => parsed.passed = n,
            "fail" | "cancelled" => parsed.failed += n,
            "skipped" | "todo" => parsed.skipped += n,
            "tests" => {}
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(parsed)
}

/// The spec reporter's `✖ failing tests:` section: `✖ name (1.2ms)` then
/// the error's lines, up to its stack.
fn spec_failures(output: &str, parsed: &mut Parsed) {
    let lines: Vec<&str> = output.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == "✖ failing tests:") else {
        return;
    };
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let Some(title) = line.trim().strip_prefix("✖ ") else {
            continue;
        };
        let name = title
            .rsplit_once(" (")
            .filter(|(_, d)| d.ends_with("ms)"))
            .map_or(title, |(n, _)| n);
        let message = lines[i + 1..]
            .iter()
            .map(|l| l.trim())
            .take_while(|l| {
                !l.starts_with("at ") && !l.starts_with("✖ ") && !l.starts_with("test at ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        parsed.add_failure(name, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    fn summary_of(parsed: &Parsed) -> (u32, u32, u32, Vec<(&str, &str)>) {
        (
            parsed.passed,
            parsed.failed,
            parsed.skipped,
            parsed
                .failures
                .iter()
                .map(|f| (f.name.as_str(), f.message.as_str()))
                .collect(),
        )
    }

    #[test]
    fn the_tap_reporter_of_node_20() {
        let parsed = parse(&testdata("node.out")).unwrap();
        assert_eq!(
            summary_of(&parsed),
            (
                3,
                2,
                2,
                vec![
                    ("fails", "one is not two\n\n1 !== 2"),
                    ("inner bad", "inner boom")
                ]
            )
        );
    }

    #[test]
    fn the_spec_reporter() {
        let parsed = parse(&testdata("node-spec.out")).unwrap();
        assert_eq!(
            summary_of(&parsed),
            (
                3,
                2,
                2,
                vec![
                    (
                        "fails",
                        "AssertionError [ERR_ASSERTION]: one is not two\n\n1 !== 2"
                    ),
                    ("inner bad", "Error: inner boom")
                ]
            )
        );
    }

    #[test]
    fn plain_tap_is_not_node() {
        assert!(parse(crate::gates::parsers::tap::tests::TAP).is_none());
    }
}
