//! Tool calls for models without native tool calling, written in the text of
//! the reply.
//!
//! # The protocol
//!
//! [`tool_instructions`] teaches the model (in the system prompt) to write
//! each call as a block holding one JSON object:
//!
//! ```text
//! <tool_call>
//! {"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}
//! </tool_call>
//! ```
//!
//! A reply may hold several blocks (run in order) and prose around them. A
//! reply without a block ends the model's turn. The orchestrator answers with
//! one user message ([`format_tool_results`]) holding a block per call:
//!
//! ```text
//! <tool_result id="call_1" name="write_file" status="ok">
//! created `a.txt` (2 bytes)
//! </tool_result>
//! ```
//!
//! `status` is `ok` or `error`.
//!
//! # What the parser tolerates
//!
//! [`parse_tool_calls`] accepts the JSON on one line or several, inside a
//! code fence (```` ```json ````), with trailing commas, with raw line breaks
//! or tabs inside strings, with `parameters`, `input` or `args` for
//! `arguments`, and with the arguments as a JSON string. It also accepts the
//! name as an attribute: `<tool_call name="read_file">{"path": "a"}</tool_call>`
//! (the body is then the arguments). A block that is not closed, or whose
//! body cannot be read, is not run: it goes to [`ParsedReply::errors`] with a
//! message for the model. Calls get the ids `call_1`, `call_2`, … in order.

use serde_json::{Map, Value};

use crate::providers::types::{ToolCall, ToolResult, ToolSpec};

/// Opening of a call block (`<tool_call>` or `<tool_call name="...">`).
const OPEN: &str = "<tool_call";
/// End of a call block.
const CLOSE: &str = "</tool_call>";

/// A model reply split into prose and tool calls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedReply {
    /// The reply without the call blocks (trimmed).
    pub text: String,
    /// The calls, in order, with generated ids (`call_1`, …).
    pub calls: Vec<ToolCall>,
    /// One message per malformed or unclosed block, to tell the model.
    pub errors: Vec<String>,
}

/// The system-prompt section teaching a model without native tool calling
/// the protocol, listing `specs` with their argument schemas.
pub fn tool_instructions(specs: &[ToolSpec]) -> String {
    let mut out = String::from(
        "# Tools\n\n\
         You can use tools. To call a tool, write a block like this in your reply:\n\n\
         <tool_call>\n\
         {\"name\": \"TOOL_NAME\", \"arguments\": {\"ARGUMENT\": \"VALUE\"}}\n\
         </tool_call>\n\n\
         Rules:\n\
         - Each block holds exactly one JSON object with `name` and `arguments`; the \
         arguments follow the tool's JSON Schema below. Escape line breaks inside JSON \
         strings as \\n.\n\
         - You may write several blocks in one reply; they run in order. Then stop and \
         wait: the next message brings the results, one <tool_result id=\"call_N\" \
         name=\"...\" status=\"ok|error\"> block per call, in the same order.\n\
         - Do not write <tool_result> blocks yourself, and never guess a result.\n\
         - When your work is done, reply without any <tool_call> block.\n\n\
         ## Available tools\n",
    );
    for spec in specs {
        let schema = serde_json::to_string(&spec.input_schema).unwrap_or_else(|_| "{}".into());
        out.push_str(&format!(
            "\n### {}\n{}\nArguments (JSON Schema): {schema}\n",
            spec.name, spec.description
        ));
    }
    out
}

/// The user message returning `results` to the model, one block per result.
pub fn format_tool_results(results: &[ToolResult]) -> String {
    let mut out = String::new();
    for result in results {
        if !out.is_empty() {
            out.push('\n');
        }
        let content = result.content.trim_end_matches('\n');
        out.push_str(&format!(
            "<tool_result id=\"{}\" name=\"{}\" status=\"{}\">\n{content}\n</tool_result>\n",
            attribute(&result.call_id),
            attribute(&result.name),
            if result.is_error { "error" } else { "ok" }
        ));
    }
    out
}

/// A value safe inside a double-quoted attribute.
fn attribute(value: &str) -> String {
    value.replace('"', "'").replace(['\n', '\r'], " ")
}

/// Splits a reply into prose, calls and errors (see the module docs).
pub fn parse_tool_calls(text: &str) -> ParsedReply {
    let mut reply = ParsedReply::default();
    let mut prose = String::new();
    let mut rest = text;
    let mut block_no = 0usize;
    while let Some(start) = find_open(rest) {
        prose.push_str(&rest[..start]);
        block_no += 1;
        let after_open = &rest[start + OPEN.len()..];
        let Some(tag_end) = after_open.find('>') else {
            reply.errors.push(format!(
                "tool call block {block_no}: the `<tool_call` tag is not closed with `>`; \
                 the call was not run"
            ));
            rest = "";
            break;
        };
        let attributes = &after_open[..tag_end];
        let body_and_rest = &after_open[tag_end + 1..];
        let Some(close) = body_and_rest.find(CLOSE) else {
            reply.errors.push(format!(
                "tool call block {block_no}: `<tool_call>` is not closed with `</tool_call>`; \
                 the call was not run. Write the whole JSON object, then `</tool_call>`."
            ));
            rest = "";
            break;
        };
        let body = &body_and_rest[..close];
        rest = &body_and_rest[close + CLOSE.len()..];
        match parse_block(attributes, body) {
            Ok((name, arguments)) => {
                let id = format!("call_{}", reply.calls.len() + 1);
                reply.calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                });
            }
            Err(message) => reply.errors.push(format!(
                "tool call block {block_no}: {message}; the call was not run. Write \
                 <tool_call>{{\"name\": \"TOOL_NAME\", \"arguments\": {{...}}}}</tool_call> \
                 with valid JSON."
            )),
        }
    }
    prose.push_str(rest);
    reply.text = tidy_prose(&prose);
    reply
}

/// Where the next `<tool_call>` or `<tool_call ...>` tag starts.
fn find_open(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(OPEN) {
        let at = from + i;
        let next = text[at + OPEN.len()..].chars().next();
        if matches!(
            next,
            Some('>') | Some(' ') | Some('\t') | Some('\n') | Some('\r')
        ) {
            return Some(at);
        }
        from = at + OPEN.len();
    }
    None
}

/// The name and arguments of one block.
fn parse_block(attributes: &str, body: &str) -> Result<(String, Value), String> {
    let attr_name = name_attribute(attributes)?;
    let json = strip_fence(body.trim());
    let value = if json.is_empty() {
        match &attr_name {
            Some(_) => Value::Object(Map::new()),
            None => return Err("the block is empty".to_string()),
        }
    } else {
        lenient_json(json)?
    };
    let Value::Object(mut object) = value else {
        return Err("the block must hold a JSON object".to_string());
    };
    let body_name = match object.get("name") {
        Some(Value::String(name)) => Some(name.trim().to_string()),
        Some(_) => return Err("`name` must be a string".to_string()),
        None => None,
    };
    let name = match (attr_name, body_name) {
        // `<tool_call name="x">{args}</tool_call>`; the body may also be the full form.
        (Some(attr), Some(body)) if attr == body => {
            object.remove("name");
            return Ok((attr, take_arguments(&mut object)?.unwrap_or_else(empty)));
        }
        (Some(attr), _) => return Ok((attr, Value::Object(object))),
        (None, Some(body)) => body,
        (None, None) => return Err("the JSON object has no `name`".to_string()),
    };
    if name.is_empty() {
        return Err("`name` is empty".to_string());
    }
    object.remove("name");
    let arguments = match take_arguments(&mut object)? {
        Some(arguments) => arguments,
        // `{"name": "x", "path": "a"}`: the other members are the arguments.
        None => Value::Object(object),
    };
    Ok((name, arguments))
}

fn empty() -> Value {
    Value::Object(Map::new())
}

/// Removes and returns the arguments member (`arguments`, `parameters`,
/// `input` or `args`), decoding a JSON string.
fn take_arguments(object: &mut Map<String, Value>) -> Result<Option<Value>, String> {
    for key in ["arguments", "parameters", "input", "args"] {
        if let Some(value) = object.remove(key) {
            return match value {
                Value::String(s) if s.trim().is_empty() => Ok(Some(empty())),
                Value::String(s) => lenient_json(&s)
                    .map(Some)
                    .map_err(|e| format!("`{key}` is a string that is not a JSON object ({e})")),
                Value::Null => Ok(Some(empty())),
                other => Ok(Some(other)),
            };
        }
    }
    Ok(None)
}

/// The `name="..."` (or `name='...'`) attribute of an opening tag, if any.
fn name_attribute(attributes: &str) -> Result<Option<String>, String> {
    let attributes = attributes.trim();
    if attributes.is_empty() {
        return Ok(None);
    }
    let Some(rest) = attributes.strip_prefix("name") else {
        return Err(format!(
            "unknown attributes `{attributes}` in the <tool_call> tag"
        ));
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix('=') else {
        return Err("write the attribute as name=\"TOOL_NAME\"".to_string());
    };
    let rest = rest.trim_start();
    let quote = rest.chars().next();
    let value = match quote {
        Some(q @ ('"' | '\'')) => {
            let inner = &rest[1..];
            match inner.find(q) {
                Some(end) => &inner[..end],
                None => return Err("the name attribute's quote is not closed".to_string()),
            }
        }
        _ => rest.split_whitespace().next().unwrap_or(""),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err("the name attribute is empty".to_string());
    }
    Ok(Some(value.to_string()))
}

/// The inside of a code fence around the body, or the body.
fn strip_fence(body: &str) -> &str {
    let Some(after) = body.strip_prefix("```") else {
        return body;
    };
    // Skip the info string (`json`) up to the end of the first line.
    let inner = match after.find('\n') {
        Some(i) => &after[i + 1..],
        // A one-line fence: ```{"name": ...}```.
        None => after.trim_start_matches(|c: char| c.is_ascii_alphabetic()),
    };
    let inner = inner.trim_end();
    inner.strip_suffix("```").unwrap_or(inner).trim()
}

/// Parses JSON; on failure, repairs trailing commas and raw control
/// characters inside strings and tries again. The error is the first one.
fn lenient_json(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(value),
        Err(first) => serde_json::from_str::<Value>(&repair_json(text))
            .map_err(|_| format!("the JSON could not be parsed ({first})")),
    }
}

/// Drops commas before `}` or `]` and escapes raw line breaks and tabs
/// inside strings.
fn repair_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => {
                    escaped = false;
                    out.push(c);
                }
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            ',' => {
                let next = text[i + 1..].trim_start().chars().next();
                if !matches!(next, Some('}') | Some(']')) {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Prose with the blank lines left by removed blocks squeezed.
fn tidy_prose(prose: &str) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    for line in prose.trim().lines() {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> ToolCall {
        let parsed = parse_tool_calls(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.calls.len(), 1, "{parsed:?}");
        parsed.calls.into_iter().next().unwrap()
    }

    #[test]
    fn parses_the_documented_form() {
        let call = one(
            "<tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"a.txt\", \"content\": \"hi\"}}\n</tool_call>",
        );
        assert_eq!(call.id, "call_1");
        assert_eq!(call.name, "write_file");
        assert_eq!(call.arguments, json!({"path": "a.txt", "content": "hi"}));
    }

    #[test]
    fn several_calls_with_prose_get_sequential_ids() {
        let text = "I'll look first.\n<tool_call>{\"name\": \"list_dir\", \"arguments\": {}}</tool_call>\nThen read:\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"x\"}}\n</tool_call>\nDone.";
        let parsed = parse_tool_calls(text);
        assert!(parsed.errors.is_empty());
        let ids: Vec<_> = parsed.calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["call_1", "call_2"]);
        assert_eq!(parsed.calls[0].name, "list_dir");
        assert_eq!(parsed.calls[1].arguments, json!({"path": "x"}));
        assert_eq!(parsed.text, "I'll look first.\n\nThen read:\n\nDone.");
    }

    #[test]
    fn code_fences_and_trailing_commas_are_tolerated() {
        let call = one(
            "<tool_call>\n```json\n{\n  \"name\": \"edit_file\",\n  \"arguments\": {\n    \"path\": \"a\",\n    \"old_string\": \"x\",\n    \"new_string\": \"y\",\n  },\n}\n```\n</tool_call>",
        );
        assert_eq!(call.name, "edit_file");
        assert_eq!(
            call.arguments,
            json!({"path": "a", "old_string": "x", "new_string": "y"})
        );
        let call = one("<tool_call>```{\"name\": \"list_dir\"}```</tool_call>");
        assert_eq!(call.name, "list_dir");
        assert_eq!(call.arguments, json!({}));
    }

    #[test]
    fn raw_line_breaks_inside_strings_are_repaired() {
        let call = one(
            "<tool_call>{\"name\": \"write_file\", \"arguments\": {\"path\": \"a\", \"content\": \"line 1\nline 2\t, end\"}}</tool_call>",
        );
        assert_eq!(call.arguments["content"], "line 1\nline 2\t, end");
    }

    #[test]
    fn commas_inside_strings_are_kept_by_the_repair() {
        let call = one(
            "<tool_call>{\"name\": \"write_file\", \"arguments\": {\"path\": \"a\", \"content\": \"a,}\",},}</tool_call>",
        );
        assert_eq!(call.arguments["content"], "a,}");
    }

    #[test]
    fn name_attribute_form() {
        let call = one("<tool_call name=\"read_file\">{\"path\": \"src/main.rs\"}</tool_call>");
        assert_eq!(call.name, "read_file");
        assert_eq!(call.arguments, json!({"path": "src/main.rs"}));
        let call = one("<tool_call name='list_dir'></tool_call>");
        assert_eq!(call.name, "list_dir");
        assert_eq!(call.arguments, json!({}));
        // Full form inside an attribute tag.
        let call = one(
            "<tool_call name=\"read_file\">{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}</tool_call>",
        );
        assert_eq!(call.arguments, json!({"path": "a"}));
    }

    #[test]
    fn argument_aliases_and_string_arguments() {
        let call = one(
            "<tool_call>{\"name\": \"read_file\", \"parameters\": {\"path\": \"a\"}}</tool_call>",
        );
        assert_eq!(call.arguments, json!({"path": "a"}));
        let call = one(
            "<tool_call>{\"name\": \"read_file\", \"arguments\": \"{\\\"path\\\": \\\"a\\\"}\"}</tool_call>",
        );
        assert_eq!(call.arguments, json!({"path": "a"}));
        let call = one("<tool_call>{\"name\": \"read_file\", \"path\": \"a\"}</tool_call>");
        assert_eq!(call.arguments, json!({"path": "a"}));
    }

    #[test]
    fn unclosed_block_is_an_error_and_not_run() {
        let parsed = parse_tool_calls(
            "Let me write.\n<tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"a\", \"content\": \"x\"}}",
        );
        assert!(parsed.calls.is_empty());
        assert_eq!(parsed.errors.len(), 1);
        assert!(
            parsed.errors[0].contains("</tool_call>"),
            "{}",
            parsed.errors[0]
        );
        assert_eq!(parsed.text, "Let me write.");
    }

    #[test]
    fn malformed_blocks_are_errors_and_the_good_ones_still_run() {
        let parsed = parse_tool_calls(
            "<tool_call>{\"name\": \"list_dir\"</tool_call>\n<tool_call>{\"arguments\": {}}</tool_call>\n<tool_call>[1]</tool_call>\n<tool_call>{\"name\": \"list_dir\"}</tool_call>\n<tool_call></tool_call>",
        );
        assert_eq!(parsed.calls.len(), 1);
        assert_eq!(parsed.calls[0].id, "call_1");
        assert_eq!(parsed.errors.len(), 4, "{:?}", parsed.errors);
        assert!(parsed.errors[0].contains("block 1") && parsed.errors[0].contains("JSON"));
        assert!(parsed.errors[1].contains("no `name`"));
        assert!(parsed.errors[2].contains("JSON object"));
        assert!(parsed.errors[3].contains("empty"));
    }

    #[test]
    fn text_without_calls_is_returned_whole() {
        let parsed =
            parse_tool_calls("All done. I mention <tool_calls> and </tool_call> in prose.");
        assert!(parsed.calls.is_empty());
        assert!(parsed.errors.is_empty());
        assert_eq!(
            parsed.text,
            "All done. I mention <tool_calls> and </tool_call> in prose."
        );
    }

    #[test]
    fn results_are_formatted_in_order_with_status() {
        let results = vec![
            ToolResult {
                call_id: "call_1".into(),
                name: "read_file".into(),
                content: "hello\n".into(),
                is_error: false,
            },
            ToolResult {
                call_id: "call_2".into(),
                name: "write_file".into(),
                content: "write_file: `/etc/x` is an absolute path".into(),
                is_error: true,
            },
        ];
        let text = format_tool_results(&results);
        assert_eq!(
            text,
            "<tool_result id=\"call_1\" name=\"read_file\" status=\"ok\">\nhello\n</tool_result>\n\n\
             <tool_result id=\"call_2\" name=\"write_file\" status=\"error\">\nwrite_file: `/etc/x` is an absolute path\n</tool_result>\n"
        );
    }

    #[test]
    fn instructions_list_every_tool_with_its_schema_and_round_trip() {
        let specs = crate::agent_loop::tool_specs();
        let text = tool_instructions(&specs);
        for spec in specs.iter() {
            assert!(
                text.contains(&format!("### {}", spec.name)),
                "{}",
                spec.name
            );
        }
        assert!(text.contains("<tool_call>") && text.contains("</tool_call>"));
        assert!(text.contains("\"required\":[\"path\",\"content\"]"));
        // The example in the instructions parses (once the placeholders are real).
        let example = "<tool_call>\n{\"name\": \"TOOL_NAME\", \"arguments\": {\"ARGUMENT\": \"VALUE\"}}\n</tool_call>";
        assert!(text.contains(example));
        assert_eq!(one(example).name, "TOOL_NAME");
    }
}
