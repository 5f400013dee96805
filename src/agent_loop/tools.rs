//! The built-in agent loop's tools: their specs (name, description, JSON
//! Schema of the arguments) and their execution inside a [`Workspace`].
//!
//! | tool            | arguments                                              | returns |
//! |-----------------|--------------------------------------------------------|---------|
//! | `read_file`     | `path`, `offset?` (first line, 1-based), `limit?` (lines) | the text |
//! | `write_file`    | `path`, `content`                                      | bytes written |
//! | `edit_file`     | `path`, `old_string`, `new_string`, `replace_all?`     | replacements made |
//! | `list_dir`      | `path?`                                                | sorted entries, directories with `/` |
//! | `search_files`  | `pattern` (regex), `path?`, `glob?`                    | `file:line: text` lines |
//! | `run_command`   | `argv` (array), `timeout_s?`                           | exit code and output |
//! | `report_status` | `status`, `progress?`, `text?`, `completedTasks?`, `remainingTasks?`, `blockers?` | the STATUS protocol events |
//!
//! Every path goes through [`Workspace::resolve`]. Files are written by
//! renaming a new file over the old one (a hard link is broken, never written
//! through; an existing file keeps its permissions). Commands run from an
//! argv (never through a shell) in the workspace root, with stdin closed, in
//! their own process group, which is killed on timeout and once the command
//! ends. A command that exits with a non-zero code is not an error result
//! (the exit code leads the text); one that cannot start or times out is. A
//! tool never panics on bad arguments: the result is an error naming the
//! argument.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use serde_json::{Map, Value, json};

use super::workspace::{Access, Workspace};
use crate::drivers::process::{GroupGuard, SIGKILL, SIGTERM, output_pipe};
use crate::protocol::{ProgressReport, ProtocolEvent, ReportedStatus};
use crate::providers::types::{ToolCall, ToolResult, ToolSpec};

/// Limits applied by the tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolLimits {
    /// Largest file `read_file` returns whole (bigger ones need `offset`/`limit`),
    /// and the most bytes one windowed read returns. Default 1 MiB.
    pub max_read_bytes: u64,
    /// Largest content `write_file` and `edit_file` write. Default 4 MiB.
    pub max_write_bytes: u64,
    /// Default and longest timeout of `run_command`. Default 120 s.
    pub command_timeout: Duration,
    /// Most bytes of a command's output returned (head and tail kept). Default 64 KiB.
    pub max_output_bytes: usize,
    /// Most matches `search_files` returns. Default 200.
    pub max_search_results: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            max_read_bytes: 1024 * 1024,
            max_write_bytes: 4 * 1024 * 1024,
            command_timeout: Duration::from_secs(120),
            max_output_bytes: 64 * 1024,
            max_search_results: 200,
        }
    }
}

/// What executing a tool call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// The result to send back to the model.
    pub result: ToolResult,
    /// STATUS protocol events (from `report_status`), as the text markers would give.
    pub events: Vec<ProtocolEvent>,
}

/// Most entries `list_dir` returns.
const MAX_LIST_ENTRIES: usize = 1000;
/// Longest line (in bytes) `search_files` shows.
const MAX_MATCH_LINE_BYTES: usize = 500;
/// Most files `search_files` looks at.
const MAX_SEARCH_FILES: usize = 100_000;
/// Bytes inspected for a NUL byte to call a file binary (as git does).
const BINARY_PROBE_BYTES: usize = 8000;
/// How long a command's background processes may keep its output open after it exits.
const EXIT_DRAIN: Duration = Duration::from_secs(2);
/// After the group is killed, how long the reader may still drain the pipe.
const POST_KILL_DRAIN: Duration = Duration::from_millis(300);
/// Between SIGTERM and SIGKILL on timeout.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// After SIGKILL, how long to wait for the leader to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// The status keywords `report_status` accepts.
const STATUS_KEYWORDS: [&str; 5] = ["STARTED", "PROGRESS", "COMPLETE", "FAILED", "BLOCKED"];

/// The seven tools, with JSON Schemas of their arguments: built once, shared
/// by every request of the process.
pub fn tool_specs() -> std::sync::Arc<[ToolSpec]> {
    static SPECS: std::sync::OnceLock<std::sync::Arc<[ToolSpec]>> = std::sync::OnceLock::new();
    std::sync::Arc::clone(SPECS.get_or_init(|| build_tool_specs().into()))
}

fn build_tool_specs() -> Vec<ToolSpec> {
    let spec = |name: &str, description: &str, input_schema: Value| ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        input_schema,
    };
    let string_list = json!({"type": "array", "items": {"type": "string"}});
    vec![
        spec(
            "read_file",
            "Read a text file of the workspace. Files over the read limit must be read in \
             parts with `offset` (first line, 1-based) and `limit` (number of lines).",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace root."},
                    "offset": {"type": "integer", "minimum": 1, "description": "First line to read (1-based)."},
                    "limit": {"type": "integer", "minimum": 1, "description": "Most lines to read."}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        ),
        spec(
            "write_file",
            "Create or replace a file of the workspace with the given content; missing \
             parent directories are created.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace root."},
                    "content": {"type": "string", "description": "The whole new content."}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        ),
        spec(
            "edit_file",
            "Replace an exact piece of text in a file. `old_string` must occur exactly once \
             (include enough surrounding lines to make it unique) unless `replace_all` is true.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace root."},
                    "old_string": {"type": "string", "description": "The exact text to replace, whitespace included."},
                    "new_string": {"type": "string", "description": "The replacement text."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."}
                },
                "required": ["path", "old_string", "new_string"],
                "additionalProperties": false
            }),
        ),
        spec(
            "list_dir",
            "List a directory of the workspace (default: the root), sorted; directories end with `/`.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory relative to the workspace root (default `.`)."}
                },
                "additionalProperties": false
            }),
        ),
        spec(
            "search_files",
            "Search text files for a regular expression (Rust regex syntax); returns \
             `file:line: text` lines. `.git` and binary files are skipped.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression searched in each line."},
                    "path": {"type": "string", "description": "Directory or file to search (default `.`)."},
                    "glob": {"type": "string", "description": "Only files matching this glob, e.g. `*.rs` (file name) or `src/**/*.rs` (path under `path`)."}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        ),
        spec(
            "run_command",
            "Run a program in the workspace root, e.g. [\"cargo\", \"test\"]. The argv is run \
             directly, not through a shell (no pipes, redirections or globbing; use \
             [\"sh\", \"-c\", \"...\"] if you need them). Stdin is empty. Returns the exit code \
             and the combined stdout and stderr.",
            json!({
                "type": "object",
                "properties": {
                    "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "The program and its arguments."},
                    "timeout_s": {"type": "integer", "minimum": 1, "description": "Timeout in seconds (capped by the orchestrator's limit)."}
                },
                "required": ["argv"],
                "additionalProperties": false
            }),
        ),
        spec(
            "report_status",
            "Report your status to the orchestrator: STARTED when you begin, PROGRESS with a \
             percentage as you go, and COMPLETE, FAILED or BLOCKED when you stop.",
            json!({
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": STATUS_KEYWORDS},
                    "progress": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Percentage done (required with PROGRESS)."},
                    "text": {"type": "string", "description": "A short note: what you did, or why you failed or are blocked."},
                    "completedTasks": string_list.clone(),
                    "remainingTasks": string_list.clone(),
                    "blockers": string_list
                },
                "required": ["status"],
                "additionalProperties": false
            }),
        ),
    ]
}

/// Executes one tool call inside `workspace`; never panics, failures are
/// `is_error` results that say what went wrong.
pub async fn execute(workspace: &Workspace, call: &ToolCall, limits: &ToolLimits) -> ToolOutcome {
    let mut events = Vec::new();
    let outcome: Result<String, String> = match call.name.as_str() {
        "read_file" | "write_file" | "edit_file" | "list_dir" | "search_files" => {
            let (ws, blocking_call, lim) = (workspace.clone(), call.clone(), limits.clone());
            tokio::task::spawn_blocking(move || file_tool(&ws, &blocking_call, &lim))
                .await
                .unwrap_or_else(|e| Err(format!("{}: the tool failed: {e}", call.name)))
        }
        "run_command" => match Args::of(call) {
            Ok(args) => run_command(workspace, &args, limits).await,
            Err(e) => Err(e),
        },
        "report_status" => {
            Args::of(call)
                .and_then(|args| report_status(&args))
                .map(|(text, evs)| {
                    events = evs;
                    text
                })
        }
        other => Err(format!(
            "unknown tool `{other}`; the tools are: {}",
            tool_specs()
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    let (content, is_error) = match outcome {
        Ok(text) => (text, false),
        Err(text) => (text, true),
    };
    ToolOutcome {
        result: ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            is_error,
        },
        events,
    }
}

/// The file tools (blocking I/O, run on the blocking pool).
fn file_tool(ws: &Workspace, call: &ToolCall, limits: &ToolLimits) -> Result<String, String> {
    let args = Args::of(call)?;
    match call.name.as_str() {
        "read_file" => read_file(ws, &args, limits),
        "write_file" => write_file(ws, &args, limits),
        "edit_file" => edit_file(ws, &args, limits),
        "list_dir" => list_dir(ws, &args),
        _ => search_files(ws, &args, limits),
    }
}

// ---------------------------------------------------------------------------
// Arguments

/// A call's arguments, with typed getters whose errors name the argument.
struct Args<'a> {
    tool: &'a str,
    map: Map<String, Value>,
}

impl<'a> Args<'a> {
    fn of(call: &'a ToolCall) -> Result<Self, String> {
        let map = match &call.arguments {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            // Some models send the arguments as a JSON string.
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(format!(
                        "{}: the arguments must be a JSON object",
                        call.name
                    ));
                }
            },
            other => {
                return Err(format!(
                    "{}: the arguments must be a JSON object, got {}",
                    call.name,
                    type_name(other)
                ));
            }
        };
        Ok(Self {
            tool: &call.name,
            map,
        })
    }

    /// The value of `name`, `None` when absent or null.
    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn wrong(&self, name: &str, expected: &str, got: &Value) -> String {
        format!(
            "{}: argument `{name}` must be {expected}, got {}",
            self.tool,
            type_name(got)
        )
    }

    fn required_str(&self, name: &str) -> Result<&str, String> {
        match self.get(name) {
            None => Err(format!(
                "{}: argument `{name}` is required (a string)",
                self.tool
            )),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.wrong(name, "a string", other)),
        }
    }

    fn optional_str(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(name, "a string", other)),
        }
    }

    fn optional_u64(&self, name: &str) -> Result<Option<u64>, String> {
        let expected = "a non-negative integer";
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
                (Some(i), _) => Ok(Some(i)),
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => {
                    Ok(Some(f as u64))
                }
                _ => Err(self.wrong(name, expected, v)),
            },
            // Models sometimes quote numbers.
            Some(v @ Value::String(s)) => s
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| self.wrong(name, expected, v)),
            Some(other) => Err(self.wrong(name, expected, other)),
        }
    }

    fn optional_bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v @ Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.wrong(name, "a boolean", v)),
            },
            Some(other) => Err(self.wrong(name, "a boolean", other)),
        }
    }

    /// A list of strings; a single string is a one-item list.
    fn optional_str_list(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(self.wrong(name, "an array of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong(name, "an array of strings", other)),
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Resolves a path argument, with the tool's name in the error.
fn resolve(ws: &Workspace, tool: &str, path: &str, access: Access) -> Result<PathBuf, String> {
    ws.resolve(path, access).map_err(|e| format!("{tool}: {e}"))
}

fn io_error(tool: &str, path: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{tool}: `{path}` does not exist"),
        io::ErrorKind::NotADirectory => {
            format!("{tool}: `{path}`: a part of the path is not a directory")
        }
        _ => format!("{tool}: `{path}`: {e}"),
    }
}

fn looks_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_PROBE_BYTES)]).is_some()
}

// ---------------------------------------------------------------------------
// read_file

fn read_file(ws: &Workspace, args: &Args, limits: &ToolLimits) -> Result<String, String> {
    let tool = args.tool;
    let given = args.required_str("path")?;
    let offset = args.optional_u64("offset")?;
    let limit = args.optional_u64("limit")?;
    if limit == Some(0) {
        return Err(format!("{tool}: argument `limit` must be at least 1"));
    }
    let path = resolve(ws, tool, given, Access::Read)?;
    let meta = fs::metadata(&path).map_err(|e| io_error(tool, given, &e))?;
    if meta.is_dir() {
        return Err(format!(
            "{tool}: `{given}` is a directory; use list_dir to see what it holds"
        ));
    }
    let file = File::open(&path).map_err(|e| io_error(tool, given, &e))?;
    if offset.is_none() && limit.is_none() {
        if meta.len() > limits.max_read_bytes {
            return Err(format!(
                "{tool}: `{given}` is {} bytes, over the {}-byte read limit; read it in parts \
                 with `offset` (first line, 1-based) and `limit` (number of lines), or find \
                 what you need with search_files",
                meta.len(),
                limits.max_read_bytes
            ));
        }
        let mut bytes = Vec::new();
        file.take(limits.max_read_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(tool, given, &e))?;
        if bytes.len() as u64 > limits.max_read_bytes {
            return Err(format!(
                "{tool}: `{given}` grew over the {}-byte read limit while being read; read it \
                 in parts with `offset` and `limit`",
                limits.max_read_bytes
            ));
        }
        if looks_binary(&bytes) {
            return Err(format!("{tool}: `{given}` is a binary file"));
        }
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    read_window(
        tool,
        given,
        file,
        offset.unwrap_or(1).max(1),
        limit.unwrap_or(u64::MAX),
        limits.max_read_bytes,
    )
}

/// Lines `first..first + count` (1-based) of a file, at most `max_bytes` of them.
fn read_window(
    tool: &str,
    given: &str,
    file: File,
    first: u64,
    count: u64,
    max_bytes: u64,
) -> Result<String, String> {
    let mut reader = BufReader::new(file);
    let err = |e: io::Error| io_error(tool, given, &e);
    // Skip the lines before the window without keeping them.
    let mut line_no = 1u64;
    while line_no < first {
        if !skip_line(&mut reader).map_err(err)? {
            return Err(format!(
                "{tool}: `{given}` has only {} lines; `offset` {first} is past its end",
                line_no - 1
            ));
        }
        line_no += 1;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut taken = 0u64;
    let mut note = None;
    loop {
        if taken == count {
            if reader.fill_buf().map_err(err)?.is_empty() {
                break;
            }
            note = Some(format!(
                "[read_file: more lines follow; continue with offset={}]",
                first + taken
            ));
            break;
        }
        let room = max_bytes.saturating_sub(out.len() as u64);
        let before = out.len();
        match read_line_capped(&mut reader, &mut out, room).map_err(err)? {
            LineRead::Eof => break,
            LineRead::Whole => {
                if looks_binary(&out[before..]) {
                    return Err(format!("{tool}: `{given}` is a binary file"));
                }
                taken += 1;
            }
            LineRead::Cut => {
                out.truncate(before);
                note = Some(if taken == 0 {
                    format!(
                        "[read_file: line {} alone is longer than the {max_bytes}-byte read limit]",
                        first
                    )
                } else {
                    format!(
                        "[read_file: stopped at the {max_bytes}-byte read limit; continue with offset={}]",
                        first + taken
                    )
                });
                break;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if taken == 0 && note.is_none() && first > 1 {
        return Err(format!(
            "{tool}: `{given}` has only {} lines; `offset` {first} is past its end",
            first - 1
        ));
    }
    if let Some(note) = note {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&note);
    }
    Ok(text)
}

/// Skips one line; false at end of file.
fn skip_line(reader: &mut impl BufRead) -> io::Result<bool> {
    let mut any = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

enum LineRead {
    Eof,
    Whole,
    /// The line did not fit in the room left (what was read is in `out`).
    Cut,
}

/// Appends one line (with its `\n`) to `out`, unless it is longer than `room`.
fn read_line_capped(
    reader: &mut impl BufRead,
    out: &mut Vec<u8>,
    room: u64,
) -> io::Result<LineRead> {
    let mut read = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(if read == 0 {
                LineRead::Eof
            } else {
                LineRead::Whole
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if read + chunk.len() as u64 > room {
            return Ok(LineRead::Cut);
        }
        out.extend_from_slice(chunk);
        read += chunk.len() as u64;
        let n = chunk.len();
        reader.consume(n);
        if done {
            return Ok(LineRead::Whole);
        }
    }
}

// ---------------------------------------------------------------------------
// write_file and edit_file

fn write_file(ws: &Workspace, args: &Args, limits: &ToolLimits) -> Result<String, String> {
    let tool = args.tool;
    let given = args.required_str("path")?;
    let content = args.required_str("content")?;
    if content.len() as u64 > limits.max_write_bytes {
        return Err(format!(
            "{tool}: the content is {} bytes, over the {}-byte write limit",
            content.len(),
            limits.max_write_bytes
        ));
    }
    let path = resolve(ws, tool, given, Access::Write)?;
    if path == ws.root() || path.is_dir() {
        return Err(format!("{tool}: `{given}` is a directory"));
    }
    let existed = path.exists();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error(tool, given, &e))?;
    }
    replace_file(&path, content.as_bytes()).map_err(|e| io_error(tool, given, &e))?;
    Ok(format!(
        "{} `{given}` ({} bytes)",
        if existed { "replaced" } else { "created" },
        content.len()
    ))
}

fn edit_file(ws: &Workspace, args: &Args, limits: &ToolLimits) -> Result<String, String> {
    let tool = args.tool;
    let given = args.required_str("path")?;
    let old = args.required_str("old_string")?;
    let new = args.required_str("new_string")?;
    let replace_all = args.optional_bool("replace_all")?.unwrap_or(false);
    if old.is_empty() {
        return Err(format!(
            "{tool}: argument `old_string` is empty; to create a file use write_file"
        ));
    }
    if old == new {
        return Err(format!(
            "{tool}: `old_string` and `new_string` are the same; nothing to change"
        ));
    }
    let path = resolve(ws, tool, given, Access::Write)?;
    let meta = fs::metadata(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            format!("{tool}: `{given}` does not exist; create it with write_file")
        }
        _ => io_error(tool, given, &e),
    })?;
    if meta.is_dir() {
        return Err(format!("{tool}: `{given}` is a directory"));
    }
    let cap = limits.max_read_bytes.max(limits.max_write_bytes);
    if meta.len() > cap {
        return Err(format!(
            "{tool}: `{given}` is {} bytes, over the {cap}-byte limit for editing",
            meta.len()
        ));
    }
    let bytes = fs::read(&path).map_err(|e| io_error(tool, given, &e))?;
    let Ok(content) = String::from_utf8(bytes) else {
        return Err(format!("{tool}: `{given}` is not UTF-8 text"));
    };
    let found = content.matches(old).count();
    if found == 0 {
        return Err(format!(
            "{tool}: `old_string` was not found in `{given}`; it must match exactly, \
             whitespace and indentation included (read the file first)"
        ));
    }
    if found > 1 && !replace_all {
        return Err(format!(
            "{tool}: `old_string` occurs {found} times in `{given}`; include more surrounding \
             text to make it unique, or set `replace_all` to true"
        ));
    }
    let updated = if replace_all {
        content.replace(old, new)
    } else {
        content.replacen(old, new, 1)
    };
    if updated.len() as u64 > limits.max_write_bytes {
        return Err(format!(
            "{tool}: the edited file would be {} bytes, over the {}-byte write limit",
            updated.len(),
            limits.max_write_bytes
        ));
    }
    replace_file(&path, updated.as_bytes()).map_err(|e| io_error(tool, given, &e))?;
    let replaced = if replace_all { found } else { 1 };
    Ok(format!(
        "replaced {replaced} occurrence{} in `{given}`",
        if replaced == 1 { "" } else { "s" }
    ))
}

/// Counter making temporary file names unique within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a new file next to `path` and renames it over `path`: a
/// link at `path` (symbolic or hard) is replaced, never written through. An
/// existing file's permissions are kept.
fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(
        ".{name}.llmo-tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let permissions = fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions());
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(bytes)?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        drop(file);
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

// ---------------------------------------------------------------------------
// list_dir

fn list_dir(ws: &Workspace, args: &Args) -> Result<String, String> {
    let tool = args.tool;
    let given = match args.optional_str("path")? {
        None | Some("") => ".",
        Some(p) => p,
    };
    let path = resolve(ws, tool, given, Access::Read)?;
    let meta = fs::metadata(&path).map_err(|e| io_error(tool, given, &e))?;
    if !meta.is_dir() {
        return Err(format!(
            "{tool}: `{given}` is not a directory; use read_file to read it"
        ));
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(&path).map_err(|e| io_error(tool, given, &e))? {
        let entry = entry.map_err(|e| io_error(tool, given, &e))?;
        let mut name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            name.push('/');
        }
        entries.push(name);
    }
    if entries.is_empty() {
        return Ok(format!("(`{given}` is empty)"));
    }
    entries.sort();
    let total = entries.len();
    entries.truncate(MAX_LIST_ENTRIES);
    let mut out = entries.join("\n");
    if total > MAX_LIST_ENTRIES {
        out.push_str(&format!(
            "\n[list_dir: {MAX_LIST_ENTRIES} of {total} entries shown]"
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// search_files

fn search_files(ws: &Workspace, args: &Args, limits: &ToolLimits) -> Result<String, String> {
    let tool = args.tool;
    let pattern = args.required_str("pattern")?;
    let given = match args.optional_str("path")? {
        None | Some("") => ".",
        Some(p) => p,
    };
    let glob = args.optional_str("glob")?.filter(|g| !g.is_empty());
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| format!("{tool}: argument `pattern` is not a valid regex: {e}"))?;
    let glob = match glob {
        None => None,
        Some(g) => Some((
            glob_to_regex(g).map_err(|e| format!("{tool}: argument `glob`: {e}"))?,
            g.contains('/'),
        )),
    };
    let start = resolve(ws, tool, given, Access::Read)?;
    let meta = fs::metadata(&start).map_err(|e| io_error(tool, given, &e))?;

    let mut search = Search {
        ws,
        regex: &regex,
        max_results: limits.max_search_results,
        max_bytes: limits.max_read_bytes,
        lines: Vec::new(),
        capped: false,
        skipped_large: 0,
        files: 0,
    };
    if meta.is_file() {
        search.file(&start);
    } else {
        // Depth first, in name order: entries wait on a stack, reversed.
        let mut stack = vec![(start.clone(), true)];
        while let Some((path, is_dir)) = stack.pop() {
            if is_dir {
                let Ok(read) = fs::read_dir(&path) else {
                    continue;
                };
                let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
                entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
                for entry in entries {
                    let Ok(kind) = entry.file_type() else {
                        continue;
                    };
                    // Links are not followed: they may point outside the workspace.
                    if kind.is_dir() && entry.file_name() != ".git" {
                        stack.push((entry.path(), true));
                    } else if kind.is_file() {
                        stack.push((entry.path(), false));
                    }
                }
                continue;
            }
            if let Some((glob, whole_path)) = &glob {
                let target = if *whole_path {
                    path.strip_prefix(&start)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                if !glob.is_match(&target) {
                    continue;
                }
            }
            search.file(&path);
            if search.capped || search.files >= MAX_SEARCH_FILES {
                break;
            }
        }
    }
    let mut out = if search.lines.is_empty() {
        format!("no matches for `{pattern}` under `{given}`")
    } else {
        search.lines.join("\n")
    };
    if search.capped {
        out.push_str(&format!(
            "\n[search_files: stopped at {} matches; narrow the pattern, path or glob]",
            limits.max_search_results
        ));
    } else if search.files >= MAX_SEARCH_FILES {
        out.push_str(&format!(
            "\n[search_files: stopped after {MAX_SEARCH_FILES} files; narrow the path or glob]"
        ));
    }
    if search.skipped_large > 0 {
        out.push_str(&format!(
            "\n[search_files: {} files over the {}-byte read limit were not searched]",
            search.skipped_large, limits.max_read_bytes
        ));
    }
    Ok(out)
}

struct Search<'a> {
    ws: &'a Workspace,
    regex: &'a regex::Regex,
    max_results: usize,
    max_bytes: u64,
    lines: Vec<String>,
    capped: bool,
    skipped_large: usize,
    files: usize,
}

impl Search<'_> {
    fn file(&mut self, path: &Path) {
        self.files += 1;
        let Ok(meta) = fs::metadata(path) else {
            return;
        };
        if meta.len() > self.max_bytes {
            self.skipped_large += 1;
            return;
        }
        let Ok(bytes) = fs::read(path) else {
            return;
        };
        if looks_binary(&bytes) {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown = self.ws.display_relative(path);
        for (i, line) in text.lines().enumerate() {
            if !self.regex.is_match(line) {
                continue;
            }
            if self.lines.len() >= self.max_results {
                self.capped = true;
                return;
            }
            let line = line.trim_end_matches('\r');
            let line = if line.len() > MAX_MATCH_LINE_BYTES {
                let mut end = MAX_MATCH_LINE_BYTES;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}…", &line[..end])
            } else {
                line.to_string()
            };
            self.lines.push(format!("{shown}:{}: {line}", i + 1));
        }
    }
}

/// Translates a glob (`*`, `**`, `?`, `[...]`, `{a,b}`) to an anchored regex.
fn glob_to_regex(glob: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    let mut braces = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    re.push_str("(?:.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '{' => {
                braces += 1;
                re.push_str("(?:");
            }
            '}' if braces > 0 => {
                braces -= 1;
                re.push(')');
            }
            ',' if braces > 0 => re.push('|'),
            '[' => {
                let mut class = String::from("[");
                if chars.peek() == Some(&'!') || chars.peek() == Some(&'^') {
                    chars.next();
                    class.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        class.push('\\');
                    }
                    class.push(c);
                }
                if !closed {
                    return Err(format!("`{glob}` has an unclosed `[`"));
                }
                class.push(']');
                re.push_str(&class);
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    if braces > 0 {
        return Err(format!("`{glob}` has an unclosed `{{`"));
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| format!("`{glob}` is not a valid glob: {e}"))
}

// ---------------------------------------------------------------------------
// run_command

/// Keeps the first and the last bytes of a stream, counting the rest.
struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl Capture {
    fn new(max: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap: max / 2,
            tail_cap: max - max / 2,
            total: 0,
        }
    }

    fn push(&mut self, mut chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
        }
        if chunk.len() >= self.tail_cap {
            self.tail.clear();
            self.tail
                .extend(chunk[chunk.len() - self.tail_cap..].iter().copied());
        } else {
            self.tail.extend(chunk.iter().copied());
            let excess = self.tail.len().saturating_sub(self.tail_cap);
            self.tail.drain(..excess);
        }
    }

    fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        if kept == self.total {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        format!(
            "{}\n[... output truncated: {} of {} bytes omitted ...]\n{}",
            String::from_utf8_lossy(&self.head),
            self.total - kept,
            self.total,
            String::from_utf8_lossy(&tail)
        )
    }
}

async fn run_command(
    ws: &Workspace,
    args: &Args<'_>,
    limits: &ToolLimits,
) -> Result<String, String> {
    let tool = args.tool;
    let argv = match args.get("argv") {
        None => {
            return Err(format!(
                "{tool}: argument `argv` is required (an array of strings, e.g. [\"cargo\", \"test\"])"
            ));
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(args.wrong("argv", "an array of strings", other)),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other @ Value::String(_)) => {
            return Err(format!(
                "{}; split the command into its words, e.g. [\"cargo\", \"test\"] (it is not run through a shell)",
                args.wrong("argv", "an array of strings", other)
            ));
        }
        Some(other) => return Err(args.wrong("argv", "an array of strings", other)),
    };
    let Some((program, rest)) = argv.split_first().filter(|(p, _)| !p.is_empty()) else {
        return Err(format!(
            "{tool}: argument `argv` must start with the program to run"
        ));
    };
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(format!("{tool}: argument `argv` contains a NUL byte"));
    }
    let requested = args.optional_u64("timeout_s")?;
    if requested == Some(0) {
        return Err(format!("{tool}: argument `timeout_s` must be at least 1"));
    }
    let timeout = requested
        .map(Duration::from_secs)
        .map_or(limits.command_timeout, |t| t.min(limits.command_timeout));

    // stdout and stderr share one pipe, as with `2>&1`.
    let (pipe_reader, pipe_writers) =
        output_pipe().map_err(|e| format!("{tool}: cannot create the output pipe: {e}"))?;
    let mut wrap = CommandWrap::with_new(program, |c| {
        for name in secret_variables() {
            c.env_remove(name);
        }
        c.env(
            crate::drivers::janitor::TAG_VARIABLE,
            crate::drivers::janitor::instance_tag(),
        );
        c.args(rest)
            .current_dir(ws.root())
            .stdin(Stdio::null())
            .stdout(pipe_writers.stdout)
            .stderr(pipe_writers.stderr);
    });
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let spawned = wrap.spawn();
    // Close our copies of the write end, or the reader never sees end of file.
    drop(wrap);
    let child = spawned.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{tool}: `{program}` was not found"),
        _ => format!("{tool}: cannot start `{program}`: {e}"),
    })?;
    let mut guard = GroupGuard::new(child);

    let capture = Arc::new(Mutex::new(Capture::new(limits.max_output_bytes)));
    let mut reader = {
        let capture = Arc::clone(&capture);
        crate::drivers::process::collect_pipe(pipe_reader, move |chunk| {
            if let Ok(mut c) = capture.lock() {
                c.push(chunk);
            }
        })
    };

    let waited = tokio::time::timeout(timeout, guard.child.wait()).await;
    let status = match waited {
        Ok(status) => {
            // Background processes holding the output get a short grace.
            let drained = tokio::time::timeout(EXIT_DRAIN, &mut reader).await.is_ok();
            guard.signal_group(SIGKILL);
            if !drained {
                let _ = tokio::time::timeout(POST_KILL_DRAIN, &mut reader).await;
            }
            Some(status)
        }
        Err(_) => {
            guard.signal_group(SIGTERM);
            let exited = tokio::time::timeout(KILL_GRACE, guard.child.wait())
                .await
                .is_ok();
            guard.signal_group(SIGKILL);
            if !exited {
                let _ = tokio::time::timeout(REAP_LIMIT, guard.child.wait()).await;
            }
            let _ = tokio::time::timeout(POST_KILL_DRAIN, &mut reader).await;
            None
        }
    };
    reader.abort();
    guard.armed = false;
    drop(guard);

    let output = capture
        .lock()
        .map(|c| c.render())
        .unwrap_or_else(|_| String::from("(output lost)"));
    let shown = if output.is_empty() {
        String::from("(no output)")
    } else {
        output
    };
    match status {
        None => Err(format!(
            "{tool}: `{}` timed out after {} s and was killed (with its process group)\n{shown}",
            argv.join(" "),
            timeout.as_secs()
        )),
        Some(Err(e)) => Err(format!(
            "{tool}: could not wait for `{program}`: {e}\n{shown}"
        )),
        Some(Ok(status)) => {
            let head = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit code: {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => String::from("exit status unknown"),
            };
            Ok(format!("{head}\n{shown}"))
        }
    }
}

// ---------------------------------------------------------------------------
// report_status

/// Builds the events the STATUS markers would give: a `Status` event, and a
/// `Report` when tasks or blockers are given.
fn report_status(args: &Args) -> Result<(String, Vec<ProtocolEvent>), String> {
    let tool = args.tool;
    let keyword = args.required_str("status")?;
    let progress = args.optional_u64("progress")?;
    let normalized = keyword.trim().to_ascii_uppercase();
    let status = match normalized.as_str() {
        "STARTED" => ReportedStatus::Started,
        "COMPLETE" | "COMPLETED" => ReportedStatus::Complete,
        "FAILED" => ReportedStatus::Failed,
        "BLOCKED" => ReportedStatus::Blocked,
        "PROGRESS" => match progress {
            Some(p) => ReportedStatus::Progress(p.min(100) as u8),
            None => {
                return Err(format!(
                    "{tool}: argument `progress` (0-100) is required with status PROGRESS"
                ));
            }
        },
        _ => {
            return Err(format!(
                "{tool}: argument `status` must be one of {}, got `{keyword}`",
                STATUS_KEYWORDS.join(", ")
            ));
        }
    };
    let text = args.optional_str("text")?.unwrap_or("");
    let completed = args.optional_str_list("completedTasks")?;
    let remaining = args.optional_str_list("remainingTasks")?;
    let blockers = args.optional_str_list("blockers")?;
    let agent_id = args.optional_str("agentId")?.unwrap_or("");
    let estimated = args.optional_str("estimatedCompletion")?;

    let mut events = vec![ProtocolEvent::Status {
        status,
        text: tidy(text),
    }];
    if completed.is_some() || remaining.is_some() || blockers.is_some() {
        events.push(ProtocolEvent::Report(ProgressReport {
            agent_id: agent_id.to_string(),
            status: Some(status),
            status_text: status_keyword(status),
            completed_tasks: completed.map(none_filtered).unwrap_or_default(),
            remaining_tasks: remaining.map(none_filtered).unwrap_or_default(),
            blockers: blockers.map(none_filtered).unwrap_or_default(),
            estimated_completion: estimated.map(str::to_string),
        }));
    }
    Ok((
        format!("status recorded: {}", status_keyword(status)),
        events,
    ))
}

/// The keyword form of a status, as written in a marker (`PROGRESS-40%`).
fn status_keyword(status: ReportedStatus) -> String {
    match status {
        ReportedStatus::Started => "STARTED".to_string(),
        ReportedStatus::Progress(p) => format!("PROGRESS-{p}%"),
        ReportedStatus::Complete => "COMPLETE".to_string(),
        ReportedStatus::Failed => "FAILED".to_string(),
        ReportedStatus::Blocked => "BLOCKED".to_string(),
    }
}

/// As the marker parser: trimmed, with markdown emphasis removed at the ends.
fn tidy(text: &str) -> String {
    text.trim().trim_matches(['*', '`']).trim().to_string()
}

/// As the marker parser: a single `none`, `n/a`, `-` or empty item means an empty list.
fn none_filtered(items: Vec<String>) -> Vec<String> {
    if let [only] = items.as_slice()
        && matches!(
            only.trim().to_ascii_lowercase().as_str(),
            "none" | "" | "n/a" | "-"
        )
    {
        return Vec::new();
    }
    items
}

/// Environment variables a model's `run_command` must not see: the provider
/// keys and anything named like a key, token or secret (the model could
/// otherwise print them into its transcript, or send them anywhere).
fn secret_variables() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| is_secret_name(&name.to_string_lossy()))
        .collect()
}

pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "API_KEY",
        "APIKEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "CREDENTIAL",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

#[cfg(test)]
mod secret_tests {
    use super::is_secret_name;

    #[test]
    fn provider_keys_and_secret_looking_names_are_hidden_from_commands() {
        for name in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "db_password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["PATH", "HOME", "LLMO_AGENT_ID", "LANG"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
