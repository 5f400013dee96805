//! YAML → [`Node`] tree, via `saphyr-parser`'s event stream.
//!
//! Scalars are resolved with the YAML 1.2 core schema (`yes`/`no` stay strings).
//! Anchors and aliases are expanded with a node budget (no "billion laughs"),
//! nesting is limited to 512 levels, and only one document is accepted.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::json::SyntaxError;
use super::source::Span;
use super::tree::{Key, Node, Value};

/// Deepest nesting accepted, as for JSON.
const MAX_DEPTH: usize = 512;
/// Most nodes an alias expansion may create in total.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Maps saphyr's (line, character column) markers to byte offsets.
struct LineIndex<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    fn offset(&self, marker: &saphyr_parser::Marker) -> usize {
        let line = marker.line().max(1) - 1;
        let Some(&start) = self.line_starts.get(line) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        start
            + rest
                .char_indices()
                .nth(marker.col())
                .map_or(rest.len(), |(i, _)| i)
    }

    fn span(&self, span: &saphyr_parser::Span) -> Span {
        Span::new(self.offset(&span.start), self.offset(&span.end))
    }
}

enum Frame {
    Sequence {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        start: usize,
        anchor: usize,
        members: Vec<(Key, Node)>,
        key: Option<Key>,
    },
}

fn error(message: impl Into<String>, offset: usize) -> SyntaxError {
    SyntaxError {
        message: message.into(),
        offset,
    }
}

/// Parses YAML text into a [`Node`] tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let index = LineIndex::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut alias_budget = MAX_ALIAS_NODES;

    while let Some(next) = parser.next_event() {
        let (event, span) =
            next.map_err(|e| error(e.info().to_string(), index.offset(e.marker())))?;
        let span = index.span(&span);
        let finished: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(error(
                        "the file holds more than one YAML document; a plan is one document",
                        span.start,
                    ));
                }
                None
            }
            Event::Alias(id) => {
                let node = anchors
                    .get(&id)
                    .ok_or_else(|| error("alias refers to an unknown anchor", span.start))?;
                let size = count_nodes(node);
                if size > alias_budget {
                    return Err(error(
                        "aliases expand to too many values (more than 1,000,000)",
                        span.start,
                    ));
                }
                alias_budget -= size;
                Some((node.clone(), 0))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_string {
                    resolve_plain(&text)
                } else {
                    Value::String(text.into_owned())
                };
                Some((Node::new(value, span), anchor))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(error("maximum nesting depth (512) exceeded", span.start));
                }
                stack.push(Frame::Sequence {
                    start: span.start,
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(error("maximum nesting depth (512) exceeded", span.start));
                }
                stack.push(Frame::Mapping {
                    start: span.start,
                    anchor,
                    members: Vec::new(),
                    key: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Sequence {
                    start,
                    anchor,
                    items,
                }) => Some((
                    Node::new(Value::Array(items), Span::new(start, span.end.max(start))),
                    anchor,
                )),
                _ => return Err(error("unbalanced sequence end", span.start)),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Mapping {
                    start,
                    anchor,
                    members,
                    ..
                }) => Some((
                    Node::new(
                        Value::Object(members),
                        Span::new(start, span.end.max(start)),
                    ),
                    anchor,
                )),
                _ => return Err(error("unbalanced mapping end", span.start)),
            },
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { members, key, .. }) => match key.take() {
                Some(k) => members.push((k, node)),
                None => {
                    let name = match node.value {
                        Value::String(s) => s,
                        Value::Integer(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        Value::Array(_) | Value::Object(_) => {
                            return Err(error(
                                "a mapping key must be a plain value, not a list or a mapping",
                                node.span.start,
                            ));
                        }
                    };
                    *key = Some(Key {
                        name,
                        span: node.span,
                    });
                }
            },
        }
    }
    match root {
        Some(node) if !matches!(node.value, Value::Null) || documents > 0 => Ok(node),
        _ => Err(error("the document is empty (expected a mapping)", 0)),
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Array(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Object(members) => 1 + members.iter().map(|(_, n)| count_nodes(n)).sum::<usize>(),
        _ => 1,
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(Ok(i)) = text.strip_prefix("0x").map(|h| i64::from_str_radix(h, 16)) {
        return Value::Integer(i);
    }
    if let Some(Ok(i)) = text.strip_prefix("0o").map(|o| i64::from_str_radix(o, 8)) {
        return Value::Integer(i);
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Integer(i);
        }
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(node: &'a Node, name: &str) -> &'a Node {
        let Value::Object(members) = &node.value else {
            panic!("not a mapping")
        };
        &members.iter().find(|(k, _)| k.name == name).unwrap().1
    }

    #[test]
    fn parses_mappings_sequences_and_core_schema_scalars() {
        let text = "a: 1\nb: [x, 'y', 2.5]\nc: yes\nd: ~\ne: true\nf: \"2\"\n";
        let node = parse(text).unwrap();
        assert_eq!(member(&node, "a").value, Value::Integer(1));
        assert_eq!(member(&node, "c").value, Value::String("yes".into()));
        assert_eq!(member(&node, "d").value, Value::Null);
        assert_eq!(member(&node, "e").value, Value::Bool(true));
        assert_eq!(member(&node, "f").value, Value::String("2".into()));
        let b = member(&node, "b");
        let Value::Array(items) = &b.value else {
            panic!()
        };
        assert_eq!(items[2].value, Value::Float(2.5));
        assert_eq!(&text[items[1].span.start..items[1].span.start + 3], "'y'");
    }

    #[test]
    fn spans_are_byte_offsets_even_after_multibyte_text() {
        let text = "é: x\nkey: value\n";
        let node = parse(text).unwrap();
        let v = member(&node, "key");
        assert_eq!(&text[v.span.start..v.span.start + 5], "value");
    }

    #[test]
    fn expands_aliases_and_refuses_billion_laughs() {
        let node = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(member(&node, "b").to_json(), serde_json::json!([1, 2]));
        let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "l{i}: &l{i} [*l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}, *l{prev}]\n"
            ));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("too many"), "{}", err.message);
    }

    #[test]
    fn rejects_multiple_documents_empty_input_and_deep_nesting() {
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("more than one")
        );
        assert!(parse("").unwrap_err().message.contains("empty"));
        let deep = "[".repeat(100_000);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.offset > 0);
    }
}
