//! Request bodies: Responses client (Codex) → canonical, and canonical → OpenAI `/v1/responses`.
//!
//! Parsed from a `serde_json::Value` walk, like the Chat dialect, so every rejection names the
//! field (`input[3].content[0].image_url`).
//!
//! `input` is a flat list of items; the canonical model groups them into turns:
//! - leading `system`/`developer` messages (after `instructions`) are the system prompt, later ones
//!   stay in place as `Role::System` messages;
//! - assistant-side items next to each other (assistant messages, `function_call`, `reasoning`, and
//!   hosted/custom tool calls) form one assistant message;
//! - `function_call_output` items next to each other (and custom tool outputs) form one user
//!   message of `ToolResult` blocks; a user message item stays a message of its own.

use serde_json::{Map, Value, json};

use super::tools::{self, Collected, Definitions, ItemExtras, ToolMap};
use super::{DIALECT, is_content_part_type};
use crate::canonical::{
    ContentBlock, Dialect, Extra, ImageSource, Message, Reasoning, Request, ResponseFormat, Role,
    TextPart, Tool, ToolCall, ToolChoice, WireError,
};

use crate::fields::{opt_bool, opt_f64, opt_string, opt_u32, req_str};
type Obj = Map<String, Value>;

pub fn parse_request(body: &[u8]) -> Result<Request, WireError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    let Value::Object(obj) = value else {
        return Err(WireError::new(
            "invalid request body: expected a JSON object",
        ));
    };
    let mut req = Request {
        // Responses always reports usage in `response.completed`.
        stream_include_usage: true,
        ..Request::default()
    };
    let mut extra = Obj::new();
    let mut model = None;
    let mut input = None;
    let mut instructions = None;
    let mut safety_identifier = None;
    let mut tool_choice = None;
    let mut collected = Collected::default();
    for (key, value) in obj {
        match key.as_str() {
            "model" => model = Some(value),
            "input" => input = Some(value),
            "instructions" => instructions = opt_string(value, "instructions")?,
            "max_output_tokens" => req.max_tokens = opt_u32(&value, "max_output_tokens")?,
            "temperature" => req.temperature = opt_f64(&value, "temperature")?,
            "top_p" => req.top_p = opt_f64(&value, "top_p")?,
            "stream" => req.stream = opt_bool(&value, "stream")?.unwrap_or(false),
            "tools" => req.tools = parse_tools(value, &mut collected)?,
            "parallel_tool_calls" => {
                req.parallel_tool_calls = opt_bool(&value, "parallel_tool_calls")?
            }
            "user" => req.user = opt_string(value, "user")?,
            "safety_identifier" => safety_identifier = opt_string(value, "safety_identifier")?,
            // Read once the tools are known (keys come in alphabetical order).
            "tool_choice" => tool_choice = Some(value),
            "reasoning" => {
                let (reasoning, rest) = parse_reasoning(value)?;
                req.reasoning = reasoning;
                if let Some(rest) = rest {
                    extra.insert(key, Value::Object(rest));
                }
            }
            "text" => {
                let (format, rest) = parse_text(value)?;
                req.response_format = format;
                if let Some(rest) = rest {
                    extra.insert(key, Value::Object(rest));
                }
            }
            "store" => {
                opt_bool(&value, "store")?;
                extra.insert(key, value);
            }
            "previous_response_id" => {
                if !value.is_null() && !value.is_string() {
                    return Err(WireError::at("previous_response_id", "must be a string"));
                }
                extra.insert(key, value);
            }
            // Ours alone: a client cannot set it.
            tools::STATE_KEY => {}
            // include, metadata, prompt_cache_key, truncation, service_tier, background, … go
            // back unchanged to a Responses upstream.
            _ => {
                extra.insert(key, value);
            }
        }
    }
    req.model = match model {
        Some(Value::String(m)) if !m.is_empty() => m,
        Some(Value::String(_)) => return Err(WireError::at("model", "must not be empty")),
        Some(_) => return Err(WireError::at("model", "must be a string")),
        None => return Err(WireError::at("model", "is required")),
    };
    if let Some(value) = tool_choice {
        match parse_tool_choice(&value, &collected)? {
            Some(choice) => req.tool_choice = Some(choice),
            None if value.is_null() => {}
            // allowed_tools, hosted tool types: only a Responses upstream knows.
            None => {
                extra.insert("tool_choice".into(), value);
            }
        }
    }
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        collected.instructions = true;
        req.system.push(TextPart {
            text,
            cache_control: None,
        });
    }
    match input {
        Some(input) => parse_input(input, &mut req, &mut collected)?,
        // A continuation may carry nothing new besides the reference to the previous response.
        None if extra
            .get("previous_response_id")
            .is_some_and(Value::is_string)
            || extra.contains_key("conversation") => {}
        None => return Err(WireError::at("input", "is required")),
    }
    if req.user.is_none() {
        req.user = safety_identifier;
    }
    if let Some(state) = collected.into_value() {
        extra.insert(tools::STATE_KEY.into(), state);
    }
    if !extra.is_empty() {
        req.extra = Some(Extra {
            dialect: DIALECT,
            fields: extra,
        });
    }
    Ok(req)
}

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

/// `reasoning: {effort, summary, …}`: effort is canonical, the rest stays for a Responses upstream.
fn parse_reasoning(v: Value) -> Result<(Option<Reasoning>, Option<Obj>), WireError> {
    let mut obj = match v {
        Value::Null => return Ok((None, None)),
        Value::Object(o) => o,
        _ => return Err(WireError::at("reasoning", "must be an object")),
    };
    let reasoning = match obj.remove("effort") {
        None | Some(Value::Null) => None,
        Some(Value::String(effort)) => Some(Reasoning {
            disabled: effort == "none",
            effort: Some(effort),
            budget_tokens: None,
        }),
        Some(_) => return Err(WireError::at("reasoning.effort", "must be a string")),
    };
    obj.retain(|_, v| !v.is_null());
    Ok((reasoning, (!obj.is_empty()).then_some(obj)))
}

/// `text: {format, verbosity}`: the format is canonical, the rest stays for a Responses upstream.
fn parse_text(v: Value) -> Result<(Option<ResponseFormat>, Option<Obj>), WireError> {
    let mut obj = match v {
        Value::Null => return Ok((None, None)),
        Value::Object(o) => o,
        _ => return Err(WireError::at("text", "must be an object")),
    };
    let format = match obj.remove("format") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) => match parse_format(&f)? {
            Some(format) => Some(format),
            None => {
                obj.insert("format".into(), Value::Object(f));
                None
            }
        },
        Some(_) => return Err(WireError::at("text.format", "must be an object")),
    };
    Ok((format, (!obj.is_empty()).then_some(obj)))
}

fn parse_format(f: &Obj) -> Result<Option<ResponseFormat>, WireError> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Some(ResponseFormat::Text)),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let name = req_str(f, "name", "text.format")?.to_string();
            Ok(Some(ResponseFormat::JsonSchema {
                name,
                schema: f.get("schema").cloned().unwrap_or(Value::Null),
                strict: opt_bool(
                    f.get("strict").unwrap_or(&Value::Null),
                    "text.format.strict",
                )?,
                description: f
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }))
        }
        Some(_) => Ok(None),
        None => Err(WireError::at("text.format.type", "is required")),
    }
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

fn parse_tools(v: Value, collected: &mut Collected) -> Result<Vec<Tool>, WireError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(WireError::at("tools", "must be an array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        let Value::Object(obj) = item else {
            return Err(WireError::at(path, "must be an object"));
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("function") => {
                // Responses puts the function at the top level; accept Chat's nesting from
                // confused clients too.
                let (func, fpath) = match obj.get("function") {
                    Some(Value::Object(f)) if !obj.contains_key("name") => {
                        (f, format!("{path}.function"))
                    }
                    _ => (&obj, path),
                };
                out.push(Tool::Function(super::super::openai_common::function_tool(
                    func, &fpath,
                )?));
            }
            // Free-form input: a function of one string, for any model.
            Some("custom") => out.push(Tool::Function(tools::parse_custom(obj, &path, collected)?)),
            Some("namespace") => out.extend(
                tools::parse_namespace(obj, &path, collected)?
                    .into_iter()
                    .map(Tool::Function),
            ),
            // web_search, local_shell, tool_search, mcp, image_generation, …: hosted by OpenAI.
            _ => out.push(Tool::Unknown {
                dialect: DIALECT,
                value: Value::Object(obj),
            }),
        }
    }
    Ok(out)
}

fn parse_tool_choice(v: &Value, collected: &Collected) -> Result<Option<ToolChoice>, WireError> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(WireError::at(
                "tool_choice",
                "must be \"auto\", \"none\", \"required\" or an object",
            )),
        },
        Value::Object(o)
            if matches!(
                o.get("type").and_then(Value::as_str),
                Some("function" | "custom")
            ) =>
        {
            let namespace = o.get("namespace").and_then(Value::as_str);
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(Some(ToolChoice::Tool(collected.known(namespace, name)))),
                None => Err(WireError::at("tool_choice.name", "is required")),
            }
        }
        Value::Object(_) | Value::Null => Ok(None),
        _ => Err(WireError::at(
            "tool_choice",
            "must be a string or an object",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Input items
// ---------------------------------------------------------------------------------------------

/// Which canonical turn an item joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Not in a run: the next item starts a new message.
    None,
    /// Assistant-side items (messages, calls, reasoning) are being merged.
    Assistant,
    /// Tool outputs are being merged into one user message.
    ToolOutputs,
}

/// Item types a model produces (kept as Unknown, merged into the assistant turn).
fn is_assistant_item(kind: &str) -> bool {
    kind.ends_with("_call") || kind == "reasoning" || kind.starts_with("mcp_list_tools")
}

fn parse_input(v: Value, req: &mut Request, collected: &mut Collected) -> Result<(), WireError> {
    let items = match v {
        Value::String(text) => {
            req.messages.push(Message {
                role: Role::User,
                content: vec![ContentBlock::text(text)],
                name: None,
            });
            return Ok(());
        }
        Value::Array(items) => items,
        _ => {
            return Err(WireError::at(
                "input",
                "must be a string or an array of input items",
            ));
        }
    };
    let mut leading = true;
    let mut run = Run::None;
    req.messages.reserve(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("input[{i}]");
        let Value::Object(mut item) = item else {
            return Err(WireError::at(path, "must be an object"));
        };
        let kind = match item.get("type") {
            None | Some(Value::Null) => "message".to_string(),
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(WireError::at(format!("{path}.type"), "must be a string")),
        };
        match kind.as_str() {
            "message" => {
                let role = match item.get("role") {
                    Some(Value::String(r)) => r.clone(),
                    Some(_) => {
                        return Err(WireError::at(format!("{path}.role"), "must be a string"));
                    }
                    None => return Err(WireError::at(format!("{path}.role"), "is required")),
                };
                let content = item.remove("content");
                let cpath = format!("{path}.content");
                match role.as_str() {
                    "system" | "developer" => {
                        run = Run::None;
                        let parts = text_parts(content, &cpath)?;
                        if leading {
                            req.system.extend(parts);
                        } else {
                            req.messages.push(Message {
                                role: Role::System,
                                content: parts.into_iter().map(ContentBlock::Text).collect(),
                                name: None,
                            });
                        }
                    }
                    "user" => {
                        leading = false;
                        run = Run::None;
                        req.messages.push(Message {
                            role: Role::User,
                            content: user_content(content, &cpath)?,
                            name: None,
                        });
                    }
                    "assistant" => {
                        leading = false;
                        let blocks = assistant_content(content, &cpath)?;
                        push_run(req, &mut run, Run::Assistant, blocks);
                    }
                    other => {
                        return Err(WireError::at(
                            format!("{path}.role"),
                            format!(
                                "unsupported role '{other}' (expected user, assistant, system or developer)"
                            ),
                        ));
                    }
                }
            }
            "function_call" | "custom_tool_call" => {
                leading = false;
                let custom = kind == "custom_tool_call";
                let call_id = req_str(&item, "call_id", &path)?.to_string();
                let name = req_str(&item, "name", &path)?;
                let namespace = match item.get("namespace") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(ns)) => Some(ns.as_str()),
                    Some(_) => {
                        return Err(WireError::at(
                            format!("{path}.namespace"),
                            "must be a string",
                        ));
                    }
                };
                let name = collected.note_call(namespace, name, custom);
                collected.note_item(&call_id, &item, false);
                if custom {
                    let input = match item.get("input") {
                        None | Some(Value::Null) => "",
                        Some(Value::String(s)) => s.as_str(),
                        Some(_) => {
                            return Err(WireError::at(format!("{path}.input"), "must be a string"));
                        }
                    };
                    let call = ContentBlock::ToolCall(ToolCall {
                        id: call_id,
                        name,
                        arguments: tools::custom_arguments(input),
                    });
                    push_run(req, &mut run, Run::Assistant, vec![call]);
                    continue;
                }
                let arguments = match item.get("arguments") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(a)) => a.clone(),
                    Some(other) => other.to_string(),
                };
                let call = ContentBlock::ToolCall(ToolCall {
                    id: call_id,
                    name,
                    arguments,
                });
                push_run(req, &mut run, Run::Assistant, vec![call]);
            }
            "function_call_output" | "custom_tool_call_output" => {
                leading = false;
                let call_id = req_str(&item, "call_id", &path)?.to_string();
                collected.note_item(&call_id, &item, true);
                let content = tool_output(item.remove("output"), &format!("{path}.output"))?;
                let result = ContentBlock::ToolResult {
                    tool_call_id: call_id,
                    content,
                    is_error: false,
                    cache_control: None,
                };
                push_run(req, &mut run, Run::ToolOutputs, vec![result]);
            }
            "reasoning" => {
                leading = false;
                let blocks = reasoning_blocks(item, &path)?;
                push_run(req, &mut run, Run::Assistant, blocks);
            }
            other => {
                leading = false;
                // local_shell_call(_output), web_search_call, tool_search_call(_output),
                // item_reference, compaction, …: only a Responses upstream can take them back.
                let target = if is_assistant_item(other) {
                    Run::Assistant
                } else {
                    Run::ToolOutputs
                };
                let block = ContentBlock::Unknown {
                    dialect: DIALECT,
                    value: Value::Object(item),
                };
                push_run(req, &mut run, target, vec![block]);
            }
        }
    }
    Ok(())
}

/// Appends blocks to the current run's message when it is of the same kind, else starts one.
fn push_run(req: &mut Request, run: &mut Run, kind: Run, blocks: Vec<ContentBlock>) {
    match req.messages.last_mut() {
        Some(last) if *run == kind => last.content.extend(blocks),
        _ => req.messages.push(Message {
            role: if kind == Run::Assistant {
                Role::Assistant
            } else {
                Role::User
            },
            content: blocks,
            name: None,
        }),
    }
    *run = kind;
}

/// A reasoning item: its summary as Thinking, and the item itself when it can be sent back to a
/// Responses upstream (it has an id or encrypted content).
fn reasoning_blocks(item: Obj, path: &str) -> Result<Vec<ContentBlock>, WireError> {
    let mut texts = Vec::new();
    match item.get("summary") {
        None | Some(Value::Null) => {}
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                match part.get("text") {
                    Some(Value::String(t)) => texts.push(t.as_str()),
                    _ => {
                        return Err(WireError::at(
                            format!("{path}.summary[{j}].text"),
                            "must be a string",
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(WireError::at(format!("{path}.summary"), "must be an array")),
    }
    // Raw reasoning text (open-weight models) when no summary was produced.
    if texts.is_empty() {
        if let Some(Value::Array(parts)) = item.get("content") {
            texts.extend(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str)),
            );
        }
    }
    let mut blocks = vec![ContentBlock::Thinking {
        text: texts.join("\n"),
        signature: None,
    }];
    let keep = item
        .get("encrypted_content")
        .is_some_and(|e| e.as_str().is_some_and(|s| !s.is_empty()))
        || item.get("id").is_some_and(Value::is_string);
    if keep {
        blocks.push(ContentBlock::Unknown {
            dialect: DIALECT,
            value: Value::Object(item),
        });
    }
    Ok(blocks)
}

/// Content that may only be text: a string or an array of `input_text` parts.
fn text_parts(content: Option<Value>, path: &str) -> Result<Vec<TextPart>, WireError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![TextPart {
            text,
            cache_control: None,
        }]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let ppath = format!("{path}[{i}]");
                let Value::Object(p) = part else {
                    return Err(WireError::at(ppath, "must be an object"));
                };
                match p.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => Ok(TextPart {
                        text: part_text(&p, "text", &ppath)?,
                        cache_control: None,
                    }),
                    _ => Err(WireError::at(
                        format!("{ppath}.type"),
                        "only input_text content parts are allowed here",
                    )),
                }
            })
            .collect(),
        Some(_) => Err(WireError::at(
            path,
            "must be a string or an array of content parts",
        )),
    }
}

fn part_text(p: &Obj, key: &str, path: &str) -> Result<String, WireError> {
    match p.get(key) {
        Some(Value::String(t)) => Ok(t.clone()),
        Some(_) => Err(WireError::at(format!("{path}.{key}"), "must be a string")),
        None => Err(WireError::at(format!("{path}.{key}"), "is required")),
    }
}

fn user_content(content: Option<Value>, path: &str) -> Result<Vec<ContentBlock>, WireError> {
    match content {
        None | Some(Value::Null) => Err(WireError::at(path, "is required")),
        Some(Value::String(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| user_part(part, &format!("{path}[{i}]")))
            .collect(),
        Some(_) => Err(WireError::at(
            path,
            "must be a string or an array of content parts",
        )),
    }
}

fn user_part(part: Value, path: &str) -> Result<ContentBlock, WireError> {
    let Value::Object(p) = part else {
        return Err(WireError::at(path, "must be an object"));
    };
    match p.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text") => Ok(ContentBlock::text(part_text(&p, "text", path)?)),
        Some("input_image") => image_part(p, path),
        Some(_) => Ok(ContentBlock::Unknown {
            dialect: DIALECT,
            value: Value::Object(p),
        }),
        None => Err(WireError::at(format!("{path}.type"), "is required")),
    }
}

fn image_part(p: Obj, path: &str) -> Result<ContentBlock, WireError> {
    // `detail` has no canonical home and is dropped.
    match p.get("image_url") {
        Some(Value::String(url)) => Ok(ContentBlock::Image {
            source: image_source(url),
            cache_control: None,
        }),
        Some(Value::Null) | None if p.get("file_id").is_some_and(Value::is_string) => {
            // An uploaded file: only OpenAI can resolve it.
            Ok(ContentBlock::Unknown {
                dialect: DIALECT,
                value: Value::Object(p),
            })
        }
        Some(Value::Null) | None => Err(WireError::at(
            format!("{path}.image_url"),
            "is required (or file_id)",
        )),
        Some(_) => Err(WireError::at(
            format!("{path}.image_url"),
            "must be a string",
        )),
    }
}

pub(super) fn image_source(url: &str) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',') {
            if let Some(media_type) = meta.strip_suffix(";base64") {
                return ImageSource::Base64 {
                    media_type: media_type.to_string(),
                    data: data.to_string(),
                };
            }
        }
    }
    ImageSource::Url(url.to_string())
}

fn assistant_content(content: Option<Value>, path: &str) -> Result<Vec<ContentBlock>, WireError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (i, part) in parts.into_iter().enumerate() {
                let ppath = format!("{path}[{i}]");
                let Value::Object(p) = part else {
                    return Err(WireError::at(ppath, "must be an object"));
                };
                match p.get("type").and_then(Value::as_str) {
                    Some("output_text" | "input_text") => {
                        blocks.push(ContentBlock::text(part_text(&p, "text", &ppath)?))
                    }
                    Some("refusal") => {
                        blocks.push(ContentBlock::text(part_text(&p, "refusal", &ppath)?))
                    }
                    _ => blocks.push(ContentBlock::Unknown {
                        dialect: DIALECT,
                        value: Value::Object(p),
                    }),
                }
            }
            Ok(blocks)
        }
        Some(_) => Err(WireError::at(
            path,
            "must be a string or an array of content parts",
        )),
    }
}

/// `function_call_output.output`: a string, or (newer API) an array of input parts.
fn tool_output(output: Option<Value>, path: &str) -> Result<Vec<ContentBlock>, WireError> {
    match output {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (i, part) in parts.into_iter().enumerate() {
                // Tool results hold text and images only; files have nowhere to go.
                match user_part(part, &format!("{path}[{i}]"))? {
                    ContentBlock::Unknown { .. } => {}
                    block => blocks.push(block),
                }
            }
            Ok(blocks)
        }
        Some(_) => Err(WireError::at(
            path,
            "must be a string or an array of content parts",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical → Responses
// ---------------------------------------------------------------------------------------------

pub fn request_to_json(req: &Request) -> Result<Value, WireError> {
    let extra = req.extra.as_ref().filter(|e| e.dialect == DIALECT);
    let mut out = Obj::new();
    out.insert("model".into(), Value::String(req.model.clone()));
    let system: Vec<&str> = req
        .system
        .iter()
        .map(|p| p.text.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    if !system.is_empty() {
        out.insert("instructions".into(), Value::String(system.join("\n\n")));
    }
    // Without storage, OpenAI cannot resolve a reasoning item by id alone.
    let stateless = extra.is_some_and(|e| e.fields.get("store") == Some(&Value::Bool(false)));
    let mut items = Items {
        map: ToolMap::of(req),
        extras: ItemExtras::of(req),
        custom_calls: Vec::new(),
        stateless,
    };
    let mut input = Vec::with_capacity(req.messages.len() * 2);
    for msg in &req.messages {
        match msg.role {
            Role::System => {
                let parts: Vec<Value> = msg
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::Text(t) => {
                            Some(json!({"type": "input_text", "text": t.text}))
                        }
                        _ => None,
                    })
                    .collect();
                if !parts.is_empty() {
                    input.push(json!({"type": "message", "role": "developer", "content": parts}));
                }
            }
            Role::User => push_user(msg, &items, &mut input),
            Role::Assistant => push_assistant(msg, &mut items, &mut input),
        }
    }
    out.insert("input".into(), Value::Array(input));

    let mut defs = Definitions::of(req);
    let tools: Vec<Value> = req
        .tools
        .iter()
        .filter_map(|t| tool_json(t, &mut defs))
        .collect();
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &req.tool_choice {
            out.insert(
                "tool_choice".into(),
                match choice {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Required => json!("required"),
                    ToolChoice::Tool(name) => match items.map.get(name) {
                        Some(t) => {
                            let kind = if t.custom { "custom" } else { "function" };
                            let mut c = json!({"type": kind, "name": t.name});
                            if let Some(ns) = &t.namespace {
                                c["namespace"] = Value::String(ns.clone());
                            }
                            c
                        }
                        None => json!({"type": "function", "name": name}),
                    },
                },
            );
        }
        if let Some(parallel) = req.parallel_tool_calls {
            out.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    }
    if let Some(n) = req.max_tokens {
        out.insert("max_output_tokens".into(), n.into());
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), p.into());
    }
    if req.stream {
        out.insert("stream".into(), Value::Bool(true));
    }

    // reasoning: canonical effort plus whatever else the client set (summary, …).
    let mut reasoning = match extra.and_then(|e| e.fields.get("reasoning")) {
        Some(Value::Object(o)) => o.clone(),
        _ => Obj::new(),
    };
    if let Some(r) = &req.reasoning {
        let effort = if r.disabled {
            Some("none".to_string())
        } else {
            r.effort_or_from_budget()
        };
        if let Some(effort) = effort {
            reasoning.insert("effort".into(), Value::String(effort));
        }
    }
    if !reasoning.is_empty() {
        out.insert("reasoning".into(), Value::Object(reasoning));
    }
    // text: canonical format plus verbosity & co.
    let mut text = match extra.and_then(|e| e.fields.get("text")) {
        Some(Value::Object(o)) => o.clone(),
        _ => Obj::new(),
    };
    if let Some(format) = &req.response_format {
        text.insert("format".into(), format_json(format));
    }
    if !text.is_empty() {
        out.insert("text".into(), Value::Object(text));
    }
    if let Some(user) = &req.user {
        out.insert("user".into(), Value::String(user.clone()));
    }
    if let Some(extra) = extra {
        for (k, v) in &extra.fields {
            if k == tools::STATE_KEY {
                continue;
            }
            // Canonical fields win: they may have been edited since parsing.
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(Value::Object(out))
}

fn format_json(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        } => {
            let mut f = Obj::new();
            f.insert("type".into(), "json_schema".into());
            f.insert("name".into(), Value::String(name.clone()));
            if let Some(d) = description {
                f.insert("description".into(), Value::String(d.clone()));
            }
            if !schema.is_null() {
                f.insert("schema".into(), schema.clone());
            }
            if let Some(s) = strict {
                f.insert("strict".into(), Value::Bool(*s));
            }
            Value::Object(f)
        }
    }
}

fn image_url(source: &ImageSource) -> String {
    match source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    }
}

fn input_image(source: &ImageSource) -> Value {
    json!({"type": "input_image", "image_url": image_url(source), "detail": "auto"})
}

/// Is this Unknown block one of our content parts (as opposed to a whole input item)?
fn is_part(value: &Value) -> bool {
    value
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(is_content_part_type)
}

/// User blocks in order: content parts gather into one user message, tool results and items go out
/// as items of their own where they stand.
/// What rendering input items needs beyond the messages.
struct Items<'a> {
    map: ToolMap,
    extras: ItemExtras<'a>,
    /// Outputs of custom tool calls go back as `custom_tool_call_output`.
    custom_calls: Vec<&'a str>,
    /// Without storage, OpenAI cannot resolve a reasoning item by id alone.
    stateless: bool,
}

fn push_user(msg: &Message, items: &Items<'_>, input: &mut Vec<Value>) {
    let mut parts: Vec<Value> = Vec::new();
    let flush = |parts: &mut Vec<Value>, input: &mut Vec<Value>| {
        if !parts.is_empty() {
            input
                .push(json!({"type": "message", "role": "user", "content": std::mem::take(parts)}));
        }
    };
    for block in &msg.content {
        match block {
            ContentBlock::Text(t) => parts.push(json!({"type": "input_text", "text": t.text})),
            ContentBlock::Image { source, .. } => parts.push(input_image(source)),
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                ..
            } => {
                flush(&mut parts, input);
                let mut text = String::new();
                let mut images = Vec::new();
                for inner in content {
                    match inner {
                        ContentBlock::Text(t) => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(&t.text);
                        }
                        ContentBlock::Image { source, .. } => images.push(input_image(source)),
                        _ => {}
                    }
                }
                let kind = if items.custom_calls.contains(&tool_call_id.as_str()) {
                    "custom_tool_call_output"
                } else {
                    "function_call_output"
                };
                let mut item = json!({
                    "type": kind,
                    "call_id": tool_call_id,
                    "output": text,
                });
                items.extras.restore(tool_call_id, true, &mut item);
                input.push(item);
                // The output is sent as text; images follow in a user message, as for Chat.
                if !images.is_empty() {
                    input.push(json!({"type": "message", "role": "user", "content": images}));
                }
            }
            ContentBlock::Unknown {
                dialect: Dialect::OpenAiResponses,
                value,
            } => {
                if is_part(value) {
                    parts.push(value.clone());
                } else {
                    flush(&mut parts, input);
                    input.push(value.clone());
                }
            }
            _ => {}
        }
    }
    flush(&mut parts, input);
}

fn push_assistant<'a>(msg: &'a Message, items: &mut Items<'a>, input: &mut Vec<Value>) {
    let mut parts: Vec<Value> = Vec::new();
    let flush = |parts: &mut Vec<Value>, input: &mut Vec<Value>| {
        if !parts.is_empty() {
            input.push(
                json!({"type": "message", "role": "assistant", "content": std::mem::take(parts)}),
            );
        }
    };
    for block in &msg.content {
        match block {
            ContentBlock::Text(t) if t.text.is_empty() => {}
            ContentBlock::Text(t) => parts.push(json!({"type": "output_text", "text": t.text})),
            ContentBlock::ToolCall(c) => {
                flush(&mut parts, input);
                let client = items.map.get(&c.name);
                let mut item = match client {
                    Some(t) if t.custom => {
                        items.custom_calls.push(&c.id);
                        json!({
                            "type": "custom_tool_call",
                            "call_id": c.id,
                            "name": t.name,
                            "input": tools::custom_input(&c.arguments),
                        })
                    }
                    _ => json!({
                        "type": "function_call",
                        "call_id": c.id,
                        "name": client.map_or(&c.name, |t| &t.name),
                        // OpenAI rejects an empty arguments string; "{}" means the same.
                        "arguments": if c.arguments.is_empty() { "{}" } else { c.arguments.as_str() },
                    }),
                };
                if let Some(ns) = client.and_then(|t| t.namespace.as_ref()) {
                    item["namespace"] = Value::String(ns.clone());
                }
                items.extras.restore(&c.id, false, &mut item);
                input.push(item);
            }
            ContentBlock::Unknown {
                dialect: Dialect::OpenAiResponses,
                value,
            } => {
                if is_part(value) {
                    parts.push(value.clone());
                    continue;
                }
                let reasoning = value.get("type").and_then(Value::as_str) == Some("reasoning");
                let encrypted = value
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if reasoning && items.stateless && !encrypted {
                    continue;
                }
                flush(&mut parts, input);
                input.push(value.clone());
            }
            // Thinking goes back only through its Responses item (the Unknown after it); other
            // blocks have no place in an assistant turn.
            _ => {}
        }
    }
    flush(&mut parts, input);
}

fn tool_json(tool: &Tool, defs: &mut Definitions<'_>) -> Option<Value> {
    match tool {
        Tool::Function(f) => {
            // A custom tool or namespace member goes back as the client defined it.
            if let Some(original) = defs.original(&f.name) {
                return original;
            }
            let mut out = Obj::new();
            out.insert("type".into(), "function".into());
            super::super::openai_common::write_function(f, &mut out);
            Some(Value::Object(out))
        }
        Tool::Unknown {
            dialect: Dialect::OpenAiResponses,
            value,
        } => Some(value.clone()),
        Tool::Unknown { .. } => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Request, WireError> {
        parse_request(v.to_string().as_bytes())
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_request(b"{\"model\":").unwrap_err();
        assert!(err.message.contains("invalid request body"), "{err}");
        let err = parse(json!({"input": "x"})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = parse(json!({"model": "m"})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));
        assert!(parse(json!({"model": "m", "previous_response_id": "resp_1"})).is_ok());
        let err = parse(json!({"model": "m", "input": 3})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));
        let err = parse(json!({"model": "m", "input": [
            {"role": "user", "content": "a"},
            {"type": "function_call", "name": "f", "arguments": "{}"}
        ]}))
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[1].call_id"));
        let err = parse(json!({"model": "m", "input": [
            {"role": "user", "content": [{"type": "input_image"}]}
        ]}))
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].content[0].image_url"));
        let err = parse(json!({"model": "m", "input": [{"role": "wizard", "content": "x"}]}))
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].role"));
        let err =
            parse(json!({"model": "m", "input": "x", "reasoning": {"effort": 1}})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("reasoning.effort"));
        let err = parse(json!({"model": "m", "input": "x", "max_output_tokens": -5})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("max_output_tokens"));
        let err = parse(json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}))
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].name"));
        let err =
            parse(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}))
                .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("text.format.name"));
    }

    #[test]
    fn turns_group_and_split_back() {
        let input = json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me look"}]},
            {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "b", "arguments": "{\"x\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": "two"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "later"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ok"}]}
        ]);
        let req = parse(json!({"model": "m", "input": input})).unwrap();
        let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::User,
                Role::Assistant,
                Role::User,
                Role::System,
                Role::User
            ]
        );
        assert_eq!(req.messages[1].content.len(), 3);
        assert_eq!(req.messages[2].content.len(), 2);
        let out = request_to_json(&req).unwrap();
        assert_eq!(out["input"], input);
    }

    #[test]
    fn reasoning_items_and_effort() {
        let req = parse(json!({"model": "m", "store": false,
            "reasoning": {"effort": "none", "summary": "auto"},
            "input": [
                {"role": "user", "content": "q"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}]},
                {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"}
            ]}))
        .unwrap();
        assert!(req.reasoning.as_ref().unwrap().disabled);
        let blocks = &req.messages[1].content;
        assert_eq!(blocks.len(), 5);
        assert_eq!(
            blocks[2],
            ContentBlock::Thinking {
                text: "a\nb".into(),
                signature: None
            }
        );
        let out = request_to_json(&req).unwrap();
        // store:false: the id-only reasoning item cannot be resolved; the summary-only one has no
        // id to send; the encrypted one goes back.
        assert_eq!(
            out["input"][1],
            json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAA"})
        );
        assert_eq!(out["input"].as_array().unwrap().len(), 2);
        assert_eq!(
            out["reasoning"],
            json!({"summary": "auto", "effort": "none"})
        );
    }
}
