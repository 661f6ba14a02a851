//! The tools a Responses client declares that the other APIs have no word for, mapped onto
//! canonical function tools so any model can call them:
//!
//! - a `custom` tool (free-form text input, e.g. Codex's `apply_patch`) becomes a function with one
//!   required string parameter `input`; its calls carry `{"input": text}` as arguments;
//! - a `namespace` (a group of function/custom tools, e.g. Codex's MCP servers) is flattened into
//!   one function per member, named `<namespace><name>` (with `__` between them unless the
//!   namespace already ends in `_`).
//!
//! The canonical request remembers which canonical names stand for such tools (and the client's
//! original definitions) in its Responses `extra` under [`STATE_KEY`], so a Responses rendering puts
//! the `custom` / `namespace` tools and `custom_tool_call` items back exactly, and the encoders can
//! answer a call with the item type the client declared ([`ToolMap`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::DIALECT;
use crate::canonical::{FunctionTool, Request, WireError};
use crate::fields::req_str;

type Obj = Map<String, Value>;

/// Key of the gateway's own bookkeeping in the Responses `extra`; never sent to an upstream.
pub(super) const STATE_KEY: &str = "__ekai";

/// A canonical function tool that the client declared as something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTool {
    /// The tool's name as the client knows it (inside its namespace).
    pub name: String,
    pub namespace: Option<String>,
    /// A `custom` tool: its input is free text, carried canonically as `{"input": text}`.
    pub custom: bool,
}

/// Canonical tool name → what the client declared, for the tools that were not plain functions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolMap {
    by_name: BTreeMap<String, ClientTool>,
}

impl ToolMap {
    pub fn get(&self, canonical_name: &str) -> Option<&ClientTool> {
        self.by_name.get(canonical_name)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Reads the map the Responses parser left in the request (empty for other dialects).
    pub fn of(req: &Request) -> ToolMap {
        let mut map = ToolMap::default();
        let Some(Value::Object(tools)) = state(req).and_then(|s| s.get("tools")) else {
            return map;
        };
        for (canonical, entry) in tools {
            let Some(name) = entry.get("name").and_then(Value::as_str) else {
                continue;
            };
            map.by_name.insert(
                canonical.clone(),
                ClientTool {
                    name: name.to_string(),
                    namespace: entry
                        .get("namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    custom: entry.get("custom") == Some(&Value::Bool(true)),
                },
            );
        }
        map
    }
}

/// The gateway's bookkeeping object in a request's Responses `extra`.
pub(super) fn state(req: &Request) -> Option<&Obj> {
    req.extra
        .as_ref()
        .filter(|e| e.dialect == DIALECT)
        .and_then(|e| e.fields.get(STATE_KEY))
        .and_then(Value::as_object)
}

/// Longest canonical name made by flattening: the function-name limit of OpenAI, Anthropic and
/// Gemini alike.
const MAX_FLAT_NAME: usize = 64;

/// The canonical name of `name` inside `namespace`. One longer than the providers accept keeps its
/// first characters and ends in a hash of the whole name, so it stays unique and the same every
/// time (the request's tools and its call items must agree).
pub fn flat_name(namespace: Option<&str>, name: &str) -> String {
    let flat = match namespace {
        None | Some("") => return name.to_string(),
        Some(ns) if ns.ends_with('_') => format!("{ns}{name}"),
        Some(ns) => format!("{ns}__{name}"),
    };
    if flat.len() <= MAX_FLAT_NAME {
        return flat;
    }
    // FNV-1a: stable across builds and platforms, no dependency.
    let hash = flat.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let mut keep = MAX_FLAT_NAME - 9;
    while !flat.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}_{hash:08x}", &flat[..keep])
}

/// What the parser collects while reading `tools` and `input`, stored in `extra` at the end.
#[derive(Debug, Default)]
pub(super) struct Collected {
    /// canonical name → `{name, namespace?, custom?, definition?}`
    tools: Obj,
    /// namespace name → the client's whole `namespace` tool, to be sent back as it came.
    namespaces: Obj,
    /// call_id → fields of a call item (`function_call`, `custom_tool_call`) or of an output item
    /// that have no canonical place (`id`, `status`): put back when rendered for Responses.
    calls: Obj,
    outputs: Obj,
    pub instructions: bool,
}

impl Collected {
    fn note(&mut self, canonical: &str, tool: &ClientTool, definition: Option<Value>) {
        if self.tools.contains_key(canonical) {
            return;
        }
        let mut entry = Obj::new();
        entry.insert("name".into(), Value::String(tool.name.clone()));
        if let Some(ns) = &tool.namespace {
            entry.insert("namespace".into(), Value::String(ns.clone()));
        }
        if tool.custom {
            entry.insert("custom".into(), Value::Bool(true));
        }
        if let Some(d) = definition {
            entry.insert("definition".into(), d);
        }
        self.tools
            .insert(canonical.to_string(), Value::Object(entry));
    }

    /// A call item in `input` names a tool: remember what kind, in case `tools` did not say.
    pub fn note_call(&mut self, namespace: Option<&str>, name: &str, custom: bool) -> String {
        let canonical = flat_name(namespace, name);
        if custom || namespace.is_some() {
            let tool = ClientTool {
                name: name.to_string(),
                namespace: namespace.map(str::to_string),
                custom,
            };
            self.note(&canonical, &tool, None);
        }
        canonical
    }

    /// Keeps what a call or output item carries besides what the canonical block holds.
    pub fn note_item(&mut self, call_id: &str, item: &Obj, output: bool) {
        const MODELLED: [&str; 7] = [
            "type",
            "call_id",
            "name",
            "namespace",
            "arguments",
            "input",
            "output",
        ];
        let rest: Obj = item
            .iter()
            .filter(|(k, _)| !MODELLED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            let into = if output {
                &mut self.outputs
            } else {
                &mut self.calls
            };
            into.insert(call_id.to_string(), Value::Object(rest));
        }
    }

    /// The canonical name of the tool a `tool_choice` names.
    pub fn known(&self, namespace: Option<&str>, name: &str) -> String {
        flat_name(namespace, name)
    }

    pub fn into_value(self) -> Option<Value> {
        let mut out = Obj::new();
        if !self.tools.is_empty() {
            out.insert("tools".into(), Value::Object(self.tools));
        }
        if !self.namespaces.is_empty() {
            out.insert("namespaces".into(), Value::Object(self.namespaces));
        }
        if !self.calls.is_empty() {
            out.insert("calls".into(), Value::Object(self.calls));
        }
        if !self.outputs.is_empty() {
            out.insert("outputs".into(), Value::Object(self.outputs));
        }
        if self.instructions {
            out.insert("instructions".into(), Value::Bool(true));
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

/// The `input` parameter every custom tool gets as a function.
fn input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"input": {
            "type": "string",
            "description": "The tool's whole input as free-form text (not JSON)."
        }},
        "required": ["input"],
        "additionalProperties": false
    })
}

/// The description a custom tool gets as a function: the client's, plus what the input must look
/// like (the grammar the OpenAI API would have enforced, which now only the model can follow).
fn custom_description(description: Option<&str>, format: Option<&Value>) -> String {
    let mut out = description.unwrap_or_default().trim_end().to_string();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str("Call this tool with its whole input as free-form text in the `input` string.");
    if let Some(f) = format.filter(|f| f.get("type").and_then(Value::as_str) == Some("grammar")) {
        let syntax = f.get("syntax").and_then(Value::as_str).unwrap_or("lark");
        if let Some(definition) = f.get("definition").and_then(Value::as_str) {
            out.push_str(&format!(
                " The input must match this {syntax} grammar:\n{definition}"
            ));
        }
    }
    out
}

fn custom_function(obj: &Obj, canonical: String, path: &str) -> Result<FunctionTool, WireError> {
    let description = match obj.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.as_str()),
        Some(_) => {
            return Err(WireError::at(
                format!("{path}.description"),
                "must be a string",
            ));
        }
    };
    match obj.get("format") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err(WireError::at(format!("{path}.format"), "must be an object")),
    }
    Ok(FunctionTool {
        name: canonical,
        description: Some(custom_description(description, obj.get("format"))),
        parameters: input_schema(),
        strict: None,
        cache_control: None,
    })
}

/// A top-level `custom` tool.
pub(super) fn parse_custom(
    obj: Obj,
    path: &str,
    collected: &mut Collected,
) -> Result<FunctionTool, WireError> {
    let name = req_str(&obj, "name", path)?.to_string();
    let func = custom_function(&obj, name.clone(), path)?;
    let tool = ClientTool {
        name: name.clone(),
        namespace: None,
        custom: true,
    };
    collected.note(&name, &tool, Some(Value::Object(obj)));
    Ok(func)
}

/// A `namespace` tool: one canonical function per member.
pub(super) fn parse_namespace(
    obj: Obj,
    path: &str,
    collected: &mut Collected,
) -> Result<Vec<FunctionTool>, WireError> {
    let ns = req_str(&obj, "name", path)?.to_string();
    let ns_description = obj
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    let members = match obj.get("tools") {
        Some(Value::Array(members)) => members,
        _ => return Err(WireError::at(format!("{path}.tools"), "must be an array")),
    };
    let mut out = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        let mpath = format!("{path}.tools[{i}]");
        let Value::Object(m) = member else {
            return Err(WireError::at(mpath, "must be an object"));
        };
        let name = req_str(m, "name", &mpath)?;
        let canonical = flat_name(Some(&ns), name);
        let custom = match m.get("type").and_then(Value::as_str) {
            Some("function") => false,
            Some("custom") => true,
            _ => {
                return Err(WireError::at(
                    format!("{mpath}.type"),
                    "must be \"function\" or \"custom\"",
                ));
            }
        };
        let mut func = if custom {
            custom_function(m, canonical.clone(), &mpath)?
        } else {
            let mut f = super::super::openai_common::function_tool(m, &mpath)?;
            f.name = canonical.clone();
            f
        };
        // The member's own words first; the group's say what it belongs to.
        if !ns_description.is_empty() {
            let own = func.description.take().unwrap_or_default();
            func.description = Some(if own.is_empty() {
                ns_description.to_string()
            } else {
                format!("{own}\n\n({ns}: {ns_description})")
            });
        }
        let tool = ClientTool {
            name: name.to_string(),
            namespace: Some(ns.clone()),
            custom,
        };
        collected.note(&canonical, &tool, None);
        out.push(func);
    }
    collected.namespaces.insert(ns, Value::Object(obj));
    Ok(out)
}

/// How a Responses rendering puts the client's own tool definitions back.
pub(super) struct Definitions<'a> {
    tools: Option<&'a Obj>,
    namespaces: Option<&'a Obj>,
    sent: Vec<&'a str>,
}

impl<'a> Definitions<'a> {
    pub fn of(req: &'a Request) -> Self {
        let s = state(req);
        Definitions {
            tools: s.and_then(|s| s.get("tools")).and_then(Value::as_object),
            namespaces: s
                .and_then(|s| s.get("namespaces"))
                .and_then(Value::as_object),
            sent: Vec::new(),
        }
    }

    /// The definition to send for canonical function `name`: `Some(None)` when it was already
    /// sent as part of its namespace, `None` when it is a plain function.
    pub fn original(&mut self, name: &str) -> Option<Option<Value>> {
        let entry = self.tools?.get(name)?;
        if let Some(ns) = entry.get("namespace").and_then(Value::as_str) {
            let (key, def) = self.namespaces?.get_key_value(ns)?;
            if self.sent.contains(&key.as_str()) {
                return Some(None);
            }
            self.sent.push(key.as_str());
            return Some(Some(def.clone()));
        }
        entry.get("definition").cloned().map(Some)
    }
}

/// Fields of the client's call and output items that the canonical model has no place for.
pub(super) struct ItemExtras<'a> {
    calls: Option<&'a Obj>,
    outputs: Option<&'a Obj>,
}

impl<'a> ItemExtras<'a> {
    pub fn of(req: &'a Request) -> Self {
        let s = state(req);
        ItemExtras {
            calls: s.and_then(|s| s.get("calls")).and_then(Value::as_object),
            outputs: s.and_then(|s| s.get("outputs")).and_then(Value::as_object),
        }
    }

    /// Adds the kept fields of the call (or output) `call_id` to `item`, which wins on conflicts.
    pub fn restore(&self, call_id: &str, output: bool, item: &mut Value) {
        let from = if output { self.outputs } else { self.calls };
        let (Some(Value::Object(extra)), Value::Object(item)) =
            (from.and_then(|f| f.get(call_id)), item)
        else {
            return;
        };
        for (k, v) in extra {
            item.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The text a custom tool call carries in canonical `{"input": …}` arguments. Models sometimes
/// name the parameter otherwise or answer with bare text: a lone string field, or the text itself,
/// is taken as the input.
pub fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(o)) => {
            if let Some(Value::String(s)) = o.get("input") {
                return s.clone();
            }
            let mut strings = o.values().filter_map(Value::as_str);
            match (strings.next(), strings.next(), o.len()) {
                (Some(s), None, 1) => s.to_string(),
                (_, _, 0) => String::new(),
                _ => arguments.to_string(),
            }
        }
        Ok(Value::String(s)) => s,
        _ => arguments.to_string(),
    }
}

/// Canonical arguments of a custom tool call with this input.
pub fn custom_arguments(input: &str) -> String {
    json!({ "input": input }).to_string()
}

// ---------------------------------------------------------------------------------------------
// Streaming the input out of `{"input": "…"}` argument fragments
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Before the opening quote of the `input` value.
    #[default]
    Prefix,
    /// Inside the `input` string.
    Input,
    /// After its closing quote: the rest is ignored.
    Closed,
    /// Not `{"input": "…"`-shaped: read whole at the end.
    Whole,
}

/// Decodes the `input` string of a custom tool call's JSON arguments as the fragments arrive
/// (escapes may be split across fragments), so its text can be streamed as it is generated.
#[derive(Debug, Default)]
pub(super) struct InputReader {
    state: Read,
    /// Every argument fragment so far.
    raw: String,
    /// The input decoded so far.
    input: String,
    /// An escape sequence still incomplete at the end of the last fragment.
    escape: String,
}

impl InputReader {
    /// Feeds one argument fragment; returns the input text it completed (may be empty).
    pub fn push(&mut self, fragment: &str) -> String {
        let start = self.raw.len();
        self.raw.push_str(fragment);
        match self.state {
            Read::Prefix => match input_start(&self.raw) {
                Ok(Some(at)) => {
                    self.state = Read::Input;
                    let rest = self.raw[at..].to_string();
                    self.decode(&rest)
                }
                Ok(None) => String::new(),
                Err(()) => {
                    self.state = Read::Whole;
                    String::new()
                }
            },
            Read::Input => {
                let rest = self.raw[start..].to_string();
                self.decode(&rest)
            }
            Read::Closed | Read::Whole => String::new(),
        }
    }

    /// The arguments ended: the text not yet returned (all of it when they were not
    /// `{"input": …}`-shaped).
    pub fn finish(&mut self) -> String {
        match self.state {
            Read::Prefix | Read::Whole => {
                self.state = Read::Closed;
                self.input = custom_input(&self.raw);
                self.input.clone()
            }
            Read::Input | Read::Closed => String::new(),
        }
    }

    pub fn input(&self) -> &str {
        &self.input
    }

    fn decode(&mut self, text: &str) -> String {
        let mut out = String::new();
        self.feed(text, &mut out);
        self.input.push_str(&out);
        out
    }

    fn feed(&mut self, text: &str, out: &mut String) {
        for c in text.chars() {
            if self.state != Read::Input {
                return;
            }
            if !self.escape.is_empty() {
                self.escape.push(c);
                match escape_value(&self.escape) {
                    Escape::Incomplete => {}
                    Escape::Done(s) => {
                        out.push_str(&s);
                        self.escape.clear();
                    }
                    Escape::LoneSurrogate(tail) => {
                        out.push('\u{FFFD}');
                        self.escape.clear();
                        self.feed(&tail, out);
                    }
                }
                continue;
            }
            match c {
                '\\' => self.escape.push(c),
                '"' => self.state = Read::Closed,
                c => out.push(c),
            }
        }
    }
}

/// Where the `input` string's text starts in `{ "input" : "…`: `Ok(None)` while the text may still
/// become that, `Err` once it cannot.
fn input_start(raw: &str) -> Result<Option<usize>, ()> {
    const TOKENS: [&str; 4] = ["{", "\"input\"", ":", "\""];
    let mut rest = raw;
    for token in TOKENS {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.len() < token.len() {
            return if token.starts_with(trimmed) {
                Ok(None)
            } else {
                Err(())
            };
        }
        if !trimmed.starts_with(token) {
            return Err(());
        }
        rest = &trimmed[token.len()..];
    }
    Ok(Some(raw.len() - rest.len()))
}

enum Escape {
    Incomplete,
    Done(String),
    /// A high surrogate not followed by its pair: what followed it is read again as text.
    LoneSurrogate(String),
}

/// The text of a JSON escape sequence (`\n`, `\u00e9`, a `\ud83d\ude00` surrogate pair) once it
/// is complete.
fn escape_value(seq: &str) -> Escape {
    let b = seq.as_bytes();
    if b.len() < 2 {
        return Escape::Incomplete;
    }
    if b[1] != b'u' {
        return Escape::Done(decode_json_str(seq));
    }
    if b.len() < 6 {
        return Escape::Incomplete;
    }
    let high = seq
        .get(2..6)
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .is_some_and(|h| (0xD800..0xDC00).contains(&h));
    if !high {
        return Escape::Done(decode_json_str(seq));
    }
    // A high surrogate: its low half must follow as `\uXXXX`.
    let tail = seq.get(6..).unwrap_or_default();
    let may_pair = tail.is_empty() || tail == "\\" || tail.starts_with("\\u");
    match (may_pair, tail.len()) {
        (true, 0..=5) => Escape::Incomplete,
        (true, _) => Escape::Done(decode_json_str(seq)),
        (false, _) => Escape::LoneSurrogate(tail.to_string()),
    }
}

/// One JSON string body decoded; U+FFFD where it is not valid.
fn decode_json_str(body: &str) -> String {
    serde_json::from_str::<String>(&format!("\"{body}\"")).unwrap_or_else(|_| "\u{FFFD}".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn read_all(fragments: &[&str]) -> (Vec<String>, String) {
        let mut r = InputReader::default();
        let mut deltas: Vec<String> = fragments.iter().map(|f| r.push(f)).collect();
        deltas.push(r.finish());
        let input = r.input().to_string();
        (deltas, input)
    }

    #[test]
    fn input_streams_across_split_escapes() {
        let text =
            "*** Begin Patch\n*** Add File: a \"b\".txt\n+caf\u{e9} \u{1F600}\\\n*** End Patch";
        let args = custom_arguments(text);
        // Every split point, including inside `\n`, `\"`, `\\` and `\u` escapes.
        for cut in 0..args.len() {
            if !args.is_char_boundary(cut) {
                continue;
            }
            let (deltas, input) = read_all(&[&args[..cut], &args[cut..]]);
            assert_eq!(input, text, "cut at {cut}");
            assert_eq!(deltas.concat(), text, "cut at {cut}");
        }
        // One character at a time.
        let chars: Vec<String> = args.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        let (deltas, input) = read_all(&refs);
        assert_eq!(input, text);
        assert!(deltas.iter().filter(|d| !d.is_empty()).count() > 10);
        // Escaped surrogate pairs, as some encoders write them.
        let (deltas, input) = read_all(&["{\"input\": \"x\\ud83d", "\\ude00y\"}"]);
        assert_eq!(input, "x\u{1F600}y");
        assert_eq!(deltas.concat(), input);
    }

    #[test]
    fn other_shapes_are_read_whole() {
        let (deltas, input) = read_all(&["{\"patch\": \"a\\nb\"}"]);
        assert_eq!(input, "a\nb");
        assert_eq!(deltas, ["", "a\nb"]);
        let (_, input) = read_all(&["{\"a\": 1, \"b\": \"x\"}"]);
        assert_eq!(input, "{\"a\": 1, \"b\": \"x\"}");
        let (_, input) = read_all(&["not json"]);
        assert_eq!(input, "not json");
        let (_, input) = read_all(&["{}"]);
        assert_eq!(input, "");
        let (_, input) = read_all(&[""]);
        assert_eq!(input, "");
        // Whitespace where JSON allows it, and trailing keys ignored.
        let (deltas, input) = read_all(&["  {\n \"input\" :", " \"ok\" , \"x\": 2}"]);
        assert_eq!(input, "ok");
        assert_eq!(deltas.concat(), "ok");
    }

    #[test]
    fn flat_names() {
        assert_eq!(
            flat_name(Some("mcp__weather__"), "get"),
            "mcp__weather__get"
        );
        assert_eq!(flat_name(Some("crm"), "lookup"), "crm__lookup");
        assert_eq!(flat_name(None, "shell"), "shell");
        let long = flat_name(
            Some("mcp__github__"),
            "list_pull_request_review_comments_for_the_repository",
        );
        assert_eq!(long.len(), 64);
        assert!(
            long.starts_with("mcp__github__list_pull_request_review_comments_fo"),
            "{long}"
        );
        assert_eq!(
            long,
            flat_name(
                Some("mcp__github__"),
                "list_pull_request_review_comments_for_the_repository"
            )
        );
        assert_ne!(
            long,
            flat_name(
                Some("mcp__github__"),
                "list_pull_request_review_comments_for_the_repositorz"
            )
        );
    }
}
