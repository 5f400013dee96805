//! JUnit XML files (`junitPath`): every `<testcase>` anywhere in the
//! document (under `<testsuites>`, nested `<testsuite>`s or a lone
//! `<testsuite>`) is a test; one with a `<failure>` or `<error>` child
//! failed, one with `<skipped>` was skipped. A failure is named
//! `classname::name` (just `name` when the class is empty or the same) and its
//! message is the `message` attribute, else the element's text.

use super::Parsed;

/// Why a JUnit XML file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// Well-formed, but neither `<testsuites>` nor `<testsuite>` at the root.
    #[error("the root element is <{0}>, not <testsuites> or <testsuite>")]
    NotJunit(String),
}

/// Reads a JUnit XML document.
pub fn parse_junit_xml(xml: &str) -> Result<Parsed, JunitError> {
    let doc = roxmltree::Document::parse(xml)?;
    let root = doc.root_element();
    let root_name = root.tag_name().name();
    if root_name != "testsuites" && root_name != "testsuite" {
        return Err(JunitError::NotJunit(root_name.to_string()));
    }
    let mut parsed = Parsed::default();
    for case in root.descendants().filter(|n| n.has_tag_name("testcase")) {
        let problem = case
            .children()
            .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let skipped = case.children().any(|c| c.has_tag_name("skipped"));
        match problem {
            Some(problem) => {
                parsed.failed += 1;
                let message = problem
                    .attribute("message")
                    .filter(|m| !m.trim().is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| problem.text().unwrap_or("").to_string());
                parsed.add_failure(&case_name(case), &message);
            }
            None if skipped => parsed.skipped += 1,
            None => parsed.passed += 1,
        }
    }
    Ok(parsed)
}

/// `classname::name`, or `name` when the class adds nothing.
fn case_name(case: roxmltree::Node<'_, '_>) -> String {
    let name = case.attribute("name").unwrap_or("").trim();
    match case.attribute("classname").map(str::trim) {
        Some(class) if !class.is_empty() && class != name => format!("{class}::{name}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::parsers::tests::testdata;

    #[test]
    fn a_real_pytest_junit_file() {
        let parsed = parse_junit_xml(&testdata("pytest-junit.xml")).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (2, 3, 1));
        let failures: Vec<(&str, &str)> = parsed
            .failures
            .iter()
            .map(|f| (f.name.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                (
                    "test_sample::test_bad",
                    "AssertionError: one is not two\nassert 1 == 2"
                ),
                ("test_sample::test_error", "ValueError: bad value"),
                (
                    "test_sample.TestK::test_m",
                    "AssertionError: assert 'a' == 'b'\n\n  - b\n  + a"
                ),
            ]
        );
    }

    #[test]
    fn nested_suites_errors_and_text_messages() {
        let xml = r#"<testsuite name="outer"><testsuite name="inner">
            <testcase name="a"/>
            <testcase name="b" classname="b"><error>segfault
at frame 1</error></testcase>
            <testcase name="c"><skipped/></testcase>
        </testsuite></testsuite>"#;
        let parsed = parse_junit_xml(xml).unwrap();
        assert_eq!((parsed.passed, parsed.failed, parsed.skipped), (1, 1, 1));
        assert_eq!(parsed.failures[0].name, "b");
        assert_eq!(parsed.failures[0].message, "segfault\nat frame 1");
    }

    #[test]
    fn broken_or_foreign_xml_is_an_error() {
        assert!(matches!(
            parse_junit_xml("<testsuites><testcase>"),
            Err(JunitError::Xml(_))
        ));
        assert!(matches!(
            parse_junit_xml("<html/>"),
            Err(JunitError::NotJunit(_))
        ));
    }
}
