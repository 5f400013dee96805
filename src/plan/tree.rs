//! A format-neutral document tree that remembers where each value came from.
//!
//! JSON and YAML are both parsed into [`Node`]s first, so the decoder and the
//! validator can report every problem with a path and a line:column, whatever
//! the input format was.

use super::path::{PlanPath, Segment};
use super::source::Span;

/// A parsed value with its byte span in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value is written.
    pub span: Span,
}

/// An object member name with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The member name.
    pub name: String,
    /// Where the name is written.
    pub span: Span,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (JSON) or an empty/`~` scalar (YAML).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Integer(i64),
    /// Any other number.
    Float(f64),
    /// A string.
    String(String),
    /// An array, in order.
    Array(Vec<Node>),
    /// An object, members in source order (duplicates kept so they can be reported).
    Object(Vec<(Key, Node)>),
}

impl Value {
    /// The name of the value's type as used in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Integer(_) | Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

impl Node {
    /// Creates a node.
    pub fn new(value: Value, span: Span) -> Self {
        Self { value, span }
    }

    /// Looks up the node at `path`; returns the deepest node found on the way
    /// (so a missing member still points at its parent object).
    pub fn find(&self, path: &PlanPath) -> &Node {
        let mut node = self;
        for segment in &path.segments() {
            let next = match (segment, &node.value) {
                (Segment::Key(name), Value::Object(members)) => members
                    .iter()
                    .find(|(k, _)| k.name == name.as_ref())
                    .map(|(_, n)| n),
                (Segment::Index(i), Value::Array(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    /// Converts to a `serde_json::Value` (later duplicate keys win).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => items.iter().map(Node::to_json).collect(),
            Value::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(value: Value) -> Node {
        Node::new(value, Span::default())
    }

    #[test]
    fn find_follows_keys_and_indices_and_stops_at_the_deepest_match() {
        let leaf = Node::new(Value::String("x".into()), Span::new(5, 8));
        let doc = n(Value::Object(vec![(
            Key {
                name: "a".into(),
                span: Span::default(),
            },
            n(Value::Array(vec![leaf.clone()])),
        )]));
        assert_eq!(doc.find(&PlanPath::root().key("a").index(0)), &leaf);
        let missing = PlanPath::root().key("a").index(3);
        assert!(matches!(doc.find(&missing).value, Value::Array(_)));
        assert_eq!(doc.to_json(), serde_json::json!({"a": ["x"]}));
    }
}
