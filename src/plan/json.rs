//! JSON (with comments and trailing commas) → [`Node`] tree, via `jsonc-parser`.
//!
//! Accepted: standard JSON plus `//` and `/* */` comments and trailing commas.
//! Rejected with a located error: other JSON5 extensions, nesting deeper than
//! 512 levels, more than one root value.

use jsonc_parser::ast;
use jsonc_parser::common::Ranged;

use super::source::Span;
use super::tree::{Key, Node, Value};

/// A JSON syntax error with its byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where (byte offset into the text).
    pub offset: usize,
}

fn parse_options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// Parses JSON text into a [`Node`] tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let result =
        jsonc_parser::parse_to_ast(text, &Default::default(), &parse_options()).map_err(|err| {
            SyntaxError {
                message: lowercase_first(&err.kind().to_string()),
                offset: err.range().start,
            }
        })?;
    match result.value {
        Some(value) => Ok(convert(value)),
        None => Err(SyntaxError {
            message: "the document is empty (expected a JSON object)".into(),
            offset: 0,
        }),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn span_of(range: jsonc_parser::common::Range) -> Span {
    Span::new(range.start, range.end)
}

fn convert(value: ast::Value<'_>) -> Node {
    let span = span_of(value.range());
    let value = match value {
        ast::Value::StringLit(s) => Value::String(s.value.into_owned()),
        ast::Value::NumberLit(n) => match n.value.parse::<i64>() {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Float(n.value.parse::<f64>().unwrap_or(f64::NAN)),
        },
        ast::Value::BooleanLit(b) => Value::Bool(b.value),
        ast::Value::NullKeyword(_) => Value::Null,
        ast::Value::Array(array) => Value::Array(array.elements.into_iter().map(convert).collect()),
        ast::Value::Object(object) => Value::Object(
            object
                .properties
                .into_iter()
                .map(|prop| {
                    let key_span = span_of(prop.name.range());
                    let key = Key {
                        name: prop.name.into_string(),
                        span: key_span,
                    };
                    (key, convert(prop.value))
                })
                .collect(),
        ),
    };
    Node::new(value, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_with_spans() {
        let text = r#"{"a": [1, 2.5, "x", true, null], // note
        "b": {},}"#;
        let node = parse(text).unwrap();
        let Value::Object(members) = &node.value else {
            panic!("not an object")
        };
        assert_eq!(members[0].0.name, "a");
        assert_eq!(
            &text[members[0].0.span.start..members[0].0.span.end],
            "\"a\""
        );
        let Value::Array(items) = &members[0].1.value else {
            panic!("not an array")
        };
        assert_eq!(items[0].value, Value::Integer(1));
        assert_eq!(items[1].value, Value::Float(2.5));
        assert_eq!(&text[items[2].span.start..items[2].span.end], "\"x\"");
    }

    #[test]
    fn reports_syntax_errors_with_offsets() {
        let err = parse("{\"a\": 1 \"b\": 2}").unwrap_err();
        assert!(err.message.contains("comma"), "{}", err.message);
        assert!((6..=9).contains(&err.offset), "{}", err.offset);
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("{'a': 1}").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(200_000) + &"]".repeat(200_000);
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{}", err.message);
    }
}
