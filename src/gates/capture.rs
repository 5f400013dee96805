//! A gate's output, kept in bounded memory.
//!
//! Output is split into lines (colour codes removed, a line longer than
//! [`LINE_BYTES`] cut). While the whole output fits in `full_limit` it is
//! all kept and the readers see it as printed. Past that, only the lines a
//! reader may need are kept (up to `significant_limit`): result and summary
//! lines of every supported runner, plus a few lines after each failure
//! header, for messages. Either way the last [`TAIL_BYTES`] are kept for the
//! result's `outputTail`.

use std::collections::VecDeque;

/// Default bound on output kept whole (8 MiB).
pub const FULL_LIMIT: usize = 8 << 20;
/// Default bound on the significant lines kept past [`FULL_LIMIT`] (4 MiB).
pub const SIGNIFICANT_LIMIT: usize = 4 << 20;
/// The longest line kept (longer lines are cut).
pub const LINE_BYTES: usize = 16 * 1024;
/// Bytes of the output's end kept for the tail.
pub const TAIL_BYTES: usize = 16 * 1024;
/// Lines kept after a failure header when only significant lines are kept.
const CONTEXT_LINES: u8 = 8;

/// Beginnings of lines the readers need (after leading spaces).
const SIGNIFICANT: &[&str] = &[
    "test ",
    "running ",
    "---- ",
    "failures:",
    "Summary [",
    "PASS",
    "FAIL",
    "TIMEOUT",
    "SIGSEGV",
    "SIGABRT",
    "ABORT",
    "SKIP",
    "ERROR",
    "=",
    "--- ",
    "ok ",
    "ok\t",
    "not ok",
    "# ",
    "ℹ ",
    "✖",
    "✔",
    "●",
    "×",
    "❯",
    "Tests",
    "Test Suites:",
    "Test Files",
    "1..",
    "TAP version",
    "?",
    "Bail out!",
    "E ",
    "___",
    "panic: ",
];
/// Beginnings of lines after which a few lines (a message) are kept too.
const HEADERS: &[&str] = &[
    "---- ", "--- FAIL", "not ok", "✖", "●", "FAIL", "E ", "___", "panic: ", "TIMEOUT", "SIG",
];

/// The captured output of one gate run.
#[derive(Debug)]
pub struct Capture {
    full: Vec<u8>,
    full_limit: usize,
    overflowed: bool,
    significant: Vec<u8>,
    significant_limit: usize,
    significant_cut: bool,
    keep_next: u8,
    partial: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Default for Capture {
    fn default() -> Self {
        Self::with_limits(FULL_LIMIT, SIGNIFICANT_LIMIT)
    }
}

/// What a capture gives at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The text for the readers: all of it, or its significant lines.
    pub text: String,
    /// The output's end (lossy UTF-8, colour codes removed).
    pub tail: String,
    /// Whether `text` is a selection (the output was larger than the limit).
    pub selected: bool,
    /// Bytes of output received.
    pub total_bytes: u64,
}

impl Capture {
    /// A capture keeping up to `full_limit` bytes whole, then up to
    /// `significant_limit` bytes of significant lines.
    pub fn with_limits(full_limit: usize, significant_limit: usize) -> Self {
        Self {
            full: Vec::new(),
            full_limit,
            overflowed: false,
            significant: Vec::new(),
            significant_limit,
            significant_cut: false,
            keep_next: 0,
            partial: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Takes a chunk of output (any size, any boundary).
    pub fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let mut rest = chunk;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            let (piece, after) = rest.split_at(at + 1);
            self.append_partial(piece);
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
            rest = after;
        }
        self.append_partial(rest);
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        let room = LINE_BYTES.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// One line (with its `\n`, if any).
    fn line(&mut self, raw: &[u8]) {
        let mut line = strip_ansi(raw);
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        self.push_tail(&line);
        if !self.overflowed {
            if self.full.len() + line.len() <= self.full_limit {
                self.full.extend_from_slice(&line);
            } else {
                self.overflowed = true;
                self.full = Vec::new();
            }
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_start();
        let significant =
            SIGNIFICANT.iter().any(|p| trimmed.starts_with(p)) || trimmed.contains("panicked at ");
        let keep = significant || self.keep_next > 0;
        self.keep_next = self.keep_next.saturating_sub(1);
        if HEADERS.iter().any(|p| trimmed.starts_with(p)) || trimmed.contains("panicked at ") {
            self.keep_next = CONTEXT_LINES;
        }
        if keep && !self.significant_cut {
            if self.significant.len() + line.len() <= self.significant_limit {
                self.significant.extend_from_slice(&line);
            } else {
                self.significant_cut = true;
            }
        }
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL_BYTES {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - TAIL_BYTES..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes held in memory now (for tests of the bound).
    pub fn held_bytes(&self) -> usize {
        self.full.len() + self.significant.len() + self.partial.len() + self.tail.len()
    }

    /// Ends the capture (a last line without `\n` counts).
    pub fn finish(mut self) -> Captured {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        let body = if self.overflowed {
            self.significant
        } else {
            self.full
        };
        Captured {
            text: String::from_utf8_lossy(&body).into_owned(),
            tail: String::from_utf8_lossy(&tail).into_owned(),
            selected: self.overflowed,
            total_bytes: self.total,
        }
    }
}

/// `bytes` without ANSI escape sequences (CSI `ESC [ … letter`, OSC `ESC ] … BEL`) and carriage returns before a newline.
pub fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x1b if bytes.get(i + 1) == Some(&b'[') => {
                i += 2;
                while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                    i += 1;
                }
                i += 1;
            }
            0x1b if bytes.get(i + 1) == Some(&b']') => {
                i += 2;
                while i < bytes.len() && bytes[i] != 0x07 && bytes[i] != 0x1b {
                    i += 1;
                }
                i += if bytes.get(i) == Some(&0x1b) { 2 } else { 1 };
            }
            0x1b => i += 2,
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_removed() {
        let coloured =
            b"\x1b[41m\x1b[1m FAIL \x1b[22m\x1b[49m v.test.mjs\x1b[2m > \x1b[22mtop bad\r\n";
        assert_eq!(strip_ansi(coloured), b" FAIL  v.test.mjs > top bad\n");
    }

    #[test]
    fn small_output_is_kept_whole_across_chunk_boundaries() {
        let mut capture = Capture::default();
        for chunk in ["test a ... o", "k\nsome noise\n", "test result: ok"] {
            capture.push(chunk.as_bytes());
        }
        let captured = capture.finish();
        assert_eq!(
            captured.text,
            "test a ... ok\nsome noise\ntest result: ok\n"
        );
        assert!(!captured.selected);
        assert_eq!(captured.tail, captured.text);
    }

    #[test]
    fn huge_output_keeps_significant_lines_in_bounded_memory() {
        let mut capture = Capture::with_limits(64 * 1024, 64 * 1024);
        let noise = "debug: lots of logging from a chatty test\n".repeat(1000);
        let mut max_held = 0;
        for n in 0..200 {
            capture.push(noise.as_bytes());
            capture.push(format!("test t{n} ... ok\n").as_bytes());
            max_held = max_held.max(capture.held_bytes());
        }
        capture.push(b"---- t7 stdout ----\nthread 't7' panicked at src/lib.rs:1:1:\nkaboom\n");
        capture.push(b"test result: FAILED. 199 passed; 1 failed; 0 ignored\n");
        let captured = capture.finish();
        assert!(captured.selected);
        assert!(captured.total_bytes > 8_000_000);
        assert!(
            max_held < 64 * 1024 * 2 + TAIL_BYTES + LINE_BYTES,
            "{max_held}"
        );
        assert!(!captured.text.contains("debug:"));
        assert!(captured.text.contains("test t199 ... ok\n"));
        assert!(captured.text.contains("kaboom\n"));
        assert!(captured.tail.ends_with("0 ignored\n"));
    }

    #[test]
    fn endless_lines_are_cut() {
        let mut capture = Capture::default();
        capture.push(&vec![b'x'; LINE_BYTES * 4]);
        capture.push(b"\nok\n");
        let captured = capture.finish();
        assert_eq!(captured.text.len(), LINE_BYTES + 1 + 3);
    }
}
