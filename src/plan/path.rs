//! Paths into a plan document, printed like `waves[1].agents[0].dependencies[2]`.
//!
//! A path is a shared, immutable linked list from the leaf back to the root,
//! so extending one (done for every value the decoder reads) costs one small
//! allocation and no copying; field names are `&'static str` where possible.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// One step of a [`PlanPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object member.
    Key(Cow<'static, str>),
    /// An array element (0-based).
    Index(usize),
}

#[derive(Debug)]
struct Link {
    parent: PlanPath,
    segment: Segment,
}

/// A path from the document root to a value.
#[derive(Debug, Clone, Default)]
pub struct PlanPath(Option<Rc<Link>>);

impl PlanPath {
    /// The root of the document.
    pub fn root() -> Self {
        Self(None)
    }

    fn push(&self, segment: Segment) -> Self {
        Self(Some(Rc::new(Link {
            parent: self.clone(),
            segment,
        })))
    }

    /// This path extended by a member name known at compile time (no allocation for the name).
    pub fn field(&self, name: &'static str) -> Self {
        self.push(Segment::Key(Cow::Borrowed(name)))
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Self {
        self.push(Segment::Key(Cow::Owned(key.to_string())))
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        self.push(Segment::Index(index))
    }

    /// The segments from the root.
    pub fn segments(&self) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut node = &self.0;
        while let Some(link) = node {
            out.push(link.segment.clone());
            node = &link.parent.0;
        }
        out.reverse();
        out
    }

    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_none()
    }
}

impl PartialEq for PlanPath {
    fn eq(&self, other: &Self) -> bool {
        self.segments() == other.segments()
    }
}

impl Eq for PlanPath {}

impl Hash for PlanPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.segments().hash(state);
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for PlanPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let segments = self.segments();
        if segments.is_empty() {
            return f.write_str("(root)");
        }
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_identifier(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{}]", serde_json::Value::from(key.as_ref()))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_dotted_paths_with_indices() {
        let path = PlanPath::root()
            .field("waves")
            .index(1)
            .key("agents")
            .index(0)
            .field("dependencies")
            .index(2);
        assert_eq!(path.to_string(), "waves[1].agents[0].dependencies[2]");
        assert_eq!(
            path,
            PlanPath::root()
                .key("waves")
                .index(1)
                .field("agents")
                .index(0)
                .key("dependencies")
                .index(2)
        );
    }

    #[test]
    fn quotes_keys_that_are_not_identifiers() {
        let path = PlanPath::root().key("gates").key("unit tests");
        assert_eq!(path.to_string(), "gates[\"unit tests\"]");
        assert_eq!(PlanPath::root().to_string(), "(root)");
        assert_eq!(PlanPath::root().key("unit-tests").to_string(), "unit-tests");
    }
}
