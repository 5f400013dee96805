//! Plan source text and byte-offset → line:column mapping.

/// A byte range in the plan source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// Creates a span from byte offsets.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

/// A 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

/// The text of a plan file together with the name used in messages.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// The name shown in diagnostics (usually the path given on the command line).
    pub name: String,
    /// The full text.
    pub text: String,
}

impl SourceText {
    /// Wraps a text under a display name.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Converts a byte offset into a 1-based line and character column.
    ///
    /// Offsets past the end are clamped; offsets inside a multi-byte character
    /// are moved back to the character start.
    pub fn location(&self, offset: usize) -> Location {
        location_in(&self.text, offset)
    }
}

/// Converts a byte offset in `text` into a 1-based line and character column.
pub fn location_in(text: &str, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Location { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_offsets_to_lines_and_columns() {
        let src = SourceText::new("p.json", "{\n  \"a\": 1,\n  \"é\": 2\n}");
        assert_eq!(src.location(0), Location { line: 1, column: 1 });
        assert_eq!(src.location(4), Location { line: 2, column: 3 });
        // "é" is two bytes: the column after it counts one character.
        let idx = src.text.find(": 2").unwrap();
        assert_eq!(src.location(idx), Location { line: 3, column: 6 });
        assert_eq!(src.location(10_000).line, 4);
    }

    #[test]
    fn offset_inside_a_character_is_clamped() {
        let src = SourceText::new("x", "é");
        assert_eq!(src.location(1), Location { line: 1, column: 1 });
    }
}
