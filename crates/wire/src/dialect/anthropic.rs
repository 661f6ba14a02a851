//! Anthropic Messages API (`/v1/messages`, `/v1/messages/count_tokens`).
//!
//! Requests are walked as `serde_json::Value` rather than derived structs: the gateway must name the
//! offending field in a 400 (`messages[3].content[1].type`), keep every field it does not understand
//! for a same-dialect upstream, and accept the loose shapes clients really send (string or block
//! content, string or array `system`). Fields are moved out of the parsed tree, so large texts are
//! not copied twice.
//!
//! Things canonical cannot say and how they survive an Anthropic → Anthropic trip:
//! - `thinking:{type:"adaptive"}` is kept verbatim in `extra` (and its effort goes to
//!   `Reasoning.effort` for other dialects); `request_to_json` then leaves thinking to the extra.
//! - `output_config.effort` stays in `extra`; `output_config.format` becomes `ResponseFormat`.
//! - `citations` on text blocks and `cache_control` on `tool_use` blocks are dropped.

mod stream;

pub use stream::{Decoder, Encoder};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::canonical::{
    ContentBlock, Dialect, ErrorKind, Extra, FinishReason, FunctionTool, ImageSource, Message,
    Reasoning, Request, Response, ResponseFormat, Role, TextPart, Tool, ToolCall, ToolChoice,
    Usage, WireError,
};

const DIALECT: Dialect = Dialect::Anthropic;

/// Used when the client gave no `max_tokens` (another dialect, or count_tokens) and Anthropic needs one.
const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Anthropic rejects smaller thinking budgets.
const MIN_THINKING_BUDGET: u32 = 1024;
/// Flat token cost of one image in the local estimate (a ~1.2 megapixel image costs about this).
const IMAGE_TOKENS: u64 = 1600;

use crate::fields::{missing, take_bool, take_f64, take_object, take_string, wrong_type};
type Obj = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Parses a `/v1/messages` request body.
pub fn parse_request(body: &[u8]) -> Result<Request, WireError> {
    parse_request_inner(body, true)
}

/// Parses a `/v1/messages/count_tokens` body: a messages request whose `max_tokens` is optional.
pub fn count_tokens_request(body: &[u8]) -> Result<Request, WireError> {
    parse_request_inner(body, false)
}

fn parse_request_inner(body: &[u8], require_max_tokens: bool) -> Result<Request, WireError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    let Value::Object(mut obj) = value else {
        return Err(WireError::new("request body must be a JSON object"));
    };
    let mut req = Request {
        model: take_string(&mut obj, "model", "model")?
            .ok_or_else(|| WireError::at("model", "missing required field `model`"))?,
        ..Request::default()
    };
    req.max_tokens = take_u32(&mut obj, "max_tokens", "max_tokens")?;
    if require_max_tokens && req.max_tokens.is_none() {
        return Err(WireError::at(
            "max_tokens",
            "missing required field `max_tokens`",
        ));
    }
    req.system = parse_system(obj.remove("system"))?;
    req.messages = match obj.remove("messages") {
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, m)| parse_message(m, i))
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => {
            return Err(WireError::at(
                "messages",
                "missing required field `messages`",
            ));
        }
        Some(other) => return Err(wrong_type("messages", "an array", &other)),
    };
    req.temperature = take_f64(&mut obj, "temperature", "temperature")?;
    req.top_p = take_f64(&mut obj, "top_p", "top_p")?;
    req.top_k = take_u32(&mut obj, "top_k", "top_k")?;
    req.stop_sequences = match obj.remove("stop_sequences") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong_type(
                    &format!("stop_sequences[{i}]"),
                    "a string",
                    &other,
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong_type("stop_sequences", "an array", &other)),
    };
    req.stream = take_bool(&mut obj, "stream", "stream")?.unwrap_or(false);
    // Anthropic always reports usage in message_start / message_delta.
    req.stream_include_usage = req.stream;
    req.tools = match obj.remove("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, t)| parse_tool(t, i))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong_type("tools", "an array", &other)),
    };
    if let Some(tc) = take_object(&mut obj, "tool_choice", "tool_choice")? {
        let (choice, parallel) = parse_tool_choice(tc)?;
        req.tool_choice = Some(choice);
        req.parallel_tool_calls = parallel;
    }

    let mut extra = Obj::new();
    let mut output_config = take_object(&mut obj, "output_config", "output_config")?;
    let effort = match output_config.as_ref().and_then(|c| c.get("effort")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(wrong_type("output_config.effort", "a string", other)),
    };
    if let Some(thinking) = take_object(&mut obj, "thinking", "thinking")? {
        req.reasoning = parse_thinking(thinking, effort, &mut extra)?;
    }
    // `output_format` is the beta spelling that `output_config.format` replaced; accept both.
    if let Some(format) = take_object(&mut obj, "output_format", "output_format")? {
        req.response_format = parse_output_format(format, "output_format")?;
    }
    if let Some(config) = output_config.as_mut() {
        match config.remove("format") {
            None | Some(Value::Null) => {}
            Some(Value::Object(format)) => {
                req.response_format = parse_output_format(format, "output_config.format")?;
            }
            Some(other) => return Err(wrong_type("output_config.format", "an object", &other)),
        }
    }
    if let Some(config) = output_config.filter(|c| !c.is_empty()) {
        extra.insert("output_config".into(), Value::Object(config));
    }
    if let Some(mut metadata) = take_object(&mut obj, "metadata", "metadata")? {
        req.user = take_string(&mut metadata, "user_id", "metadata.user_id")?;
        if !metadata.is_empty() {
            extra.insert("metadata".into(), Value::Object(metadata));
        }
    }
    extra.extend(obj);
    if !extra.is_empty() {
        req.extra = Some(Extra {
            dialect: DIALECT,
            fields: extra,
        });
    }
    Ok(req)
}

fn parse_system(value: Option<Value>) -> Result<Vec<TextPart>, WireError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![TextPart {
            text: s,
            cache_control: None,
        }]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("system[{i}]");
                let Value::Object(mut block) = item else {
                    return Err(wrong_type(&path, "an object", &item));
                };
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {}
                    _ => {
                        return Err(WireError::at(
                            format!("{path}.type"),
                            "system blocks must have type `text`",
                        ));
                    }
                }
                Ok(TextPart {
                    text: take_string(&mut block, "text", &format!("{path}.text"))?
                        .ok_or_else(|| missing(&path, "text"))?,
                    cache_control: take_present(&mut block, "cache_control"),
                })
            })
            .collect(),
        Some(other) => Err(wrong_type("system", "a string or an array", &other)),
    }
}

fn parse_message(value: Value, i: usize) -> Result<Message, WireError> {
    let path = format!("messages[{i}]");
    let Value::Object(mut obj) = value else {
        return Err(wrong_type(&path, "an object", &value));
    };
    let role_path = format!("{path}.role");
    let role = match take_string(&mut obj, "role", &role_path)?.as_deref() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        // Not part of the Anthropic API, but some clients send it; keep it as a mid-conversation
        // instruction rather than failing the request.
        Some("system") => Role::System,
        Some(other) => {
            return Err(WireError::at(
                role_path,
                format!("unknown role `{other}`: expected `user` or `assistant`"),
            ));
        }
        None => return Err(missing(&path, "role")),
    };
    let content = parse_content(obj.remove("content"), &format!("{path}.content"))?;
    Ok(Message {
        role,
        content,
        name: None,
    })
}

/// String or block-array content, as messages and tool results both allow.
fn parse_content(value: Option<Value>, path: &str) -> Result<Vec<ContentBlock>, WireError> {
    match value {
        Some(Value::String(s)) => Ok(vec![ContentBlock::text(s)]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(j, b)| parse_block(b, &format!("{path}[{j}]")))
            .collect(),
        None | Some(Value::Null) => Err(WireError::at(path, "missing required field `content`")),
        Some(other) => Err(wrong_type(path, "a string or an array", &other)),
    }
}

fn parse_block(value: Value, path: &str) -> Result<ContentBlock, WireError> {
    let Value::Object(mut obj) = value else {
        return Err(wrong_type(path, "an object", &value));
    };
    // A 'static tag so the object can be taken apart below; anything else stays whole.
    let kind: &'static str = match obj.get("type") {
        Some(Value::String(s)) => match s.as_str() {
            "text" => "text",
            "image" => "image",
            "tool_use" => "tool_use",
            "tool_result" => "tool_result",
            "thinking" => "thinking",
            "redacted_thinking" => "redacted_thinking",
            _ => "",
        },
        Some(other) => return Err(wrong_type(&format!("{path}.type"), "a string", other)),
        None => return Err(missing(path, "type")),
    };
    let block = match kind {
        "text" => ContentBlock::Text(TextPart {
            text: take_string(&mut obj, "text", &format!("{path}.text"))?
                .ok_or_else(|| missing(path, "text"))?,
            cache_control: take_present(&mut obj, "cache_control"),
        }),
        "image" => {
            let source = match obj.get("source") {
                Some(Value::Object(src)) => image_source(src),
                _ => None,
            };
            match source {
                Some(source) => ContentBlock::Image {
                    source,
                    cache_control: take_present(&mut obj, "cache_control"),
                },
                // `file` sources and other newer shapes: keep the block whole for Anthropic.
                None => unknown(obj),
            }
        }
        "tool_use" => {
            let id = take_string(&mut obj, "id", &format!("{path}.id"))?
                .ok_or_else(|| missing(path, "id"))?;
            let name = take_string(&mut obj, "name", &format!("{path}.name"))?
                .ok_or_else(|| missing(path, "name"))?;
            let arguments = match obj.get("input") {
                None | Some(Value::Null) => "{}".to_string(),
                Some(input) => serde_json::to_string(input)
                    .map_err(|e| WireError::at(format!("{path}.input"), e.to_string()))?,
            };
            ContentBlock::ToolCall(ToolCall {
                id,
                name,
                arguments,
            })
        }
        "tool_result" => {
            let tool_call_id =
                take_string(&mut obj, "tool_use_id", &format!("{path}.tool_use_id"))?
                    .ok_or_else(|| missing(path, "tool_use_id"))?;
            let content = match obj.remove("content") {
                None | Some(Value::Null) => Vec::new(),
                some => parse_content(some, &format!("{path}.content"))?,
            };
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                is_error: take_bool(&mut obj, "is_error", &format!("{path}.is_error"))?
                    .unwrap_or(false),
                cache_control: take_present(&mut obj, "cache_control"),
            }
        }
        "thinking" => ContentBlock::Thinking {
            text: take_string(&mut obj, "thinking", &format!("{path}.thinking"))?
                .unwrap_or_default(),
            // An empty signature is what this gateway renders for thinking it could not sign; treat
            // it as none so it is never sent back to Anthropic, which would reject it.
            signature: take_string(&mut obj, "signature", &format!("{path}.signature"))?
                .filter(|s| !s.is_empty()),
        },
        "redacted_thinking" => ContentBlock::RedactedThinking {
            data: take_string(&mut obj, "data", &format!("{path}.data"))?
                .ok_or_else(|| missing(path, "data"))?,
        },
        _ => unknown(obj),
    };
    Ok(block)
}

fn unknown(obj: Obj) -> ContentBlock {
    ContentBlock::Unknown {
        dialect: DIALECT,
        value: Value::Object(obj),
    }
}

fn image_source(src: &Obj) -> Option<ImageSource> {
    let get = |k: &str| src.get(k).and_then(Value::as_str);
    match get("type")? {
        "base64" => Some(ImageSource::Base64 {
            media_type: get("media_type")?.to_string(),
            data: get("data")?.to_string(),
        }),
        "url" => Some(ImageSource::Url(get("url")?.to_string())),
        _ => None,
    }
}

fn parse_tool(value: Value, i: usize) -> Result<Tool, WireError> {
    let path = format!("tools[{i}]");
    let Value::Object(mut obj) = value else {
        return Err(wrong_type(&path, "an object", &value));
    };
    // Server tools (`web_search_20250305`, `bash_20250124`, …) are typed; client tools are
    // untyped or `custom`.
    match obj.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "custom" => {}
        Some(_) => {
            return Ok(Tool::Unknown {
                dialect: DIALECT,
                value: Value::Object(obj),
            });
        }
    }
    Ok(Tool::Function(FunctionTool {
        name: take_string(&mut obj, "name", &format!("{path}.name"))?
            .ok_or_else(|| missing(&path, "name"))?,
        description: take_string(&mut obj, "description", &format!("{path}.description"))?,
        parameters: take_present(&mut obj, "input_schema")
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        strict: take_bool(&mut obj, "strict", &format!("{path}.strict"))?,
        cache_control: take_present(&mut obj, "cache_control"),
    }))
}

fn parse_tool_choice(mut obj: Obj) -> Result<(ToolChoice, Option<bool>), WireError> {
    let choice = match take_string(&mut obj, "type", "tool_choice.type")?.as_deref() {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => ToolChoice::Tool(
            take_string(&mut obj, "name", "tool_choice.name")?
                .ok_or_else(|| missing("tool_choice", "name"))?,
        ),
        Some(other) => {
            return Err(WireError::at(
                "tool_choice.type",
                format!("unknown tool_choice type `{other}`"),
            ));
        }
        None => return Err(missing("tool_choice", "type")),
    };
    let parallel = match take_bool(
        &mut obj,
        "disable_parallel_tool_use",
        "tool_choice.disable_parallel_tool_use",
    )? {
        Some(true) => Some(false),
        _ => None,
    };
    Ok((choice, parallel))
}

fn parse_thinking(
    mut obj: Obj,
    effort: Option<String>,
    extra: &mut Obj,
) -> Result<Option<Reasoning>, WireError> {
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type("thinking.type", "a string", other)),
        None => return Err(missing("thinking", "type")),
    };
    match kind.as_str() {
        "enabled" => Ok(Some(Reasoning {
            budget_tokens: Some(
                take_u32(&mut obj, "budget_tokens", "thinking.budget_tokens")?
                    .ok_or_else(|| missing("thinking", "budget_tokens"))?,
            ),
            effort,
            disabled: false,
        })),
        "disabled" => Ok(Some(Reasoning {
            disabled: true,
            ..Reasoning::default()
        })),
        _ => {
            // `adaptive` (and anything newer): canonical has no name for "the model decides", so the
            // object rides along for Anthropic, and other dialects get an effort level. Without an
            // explicit effort, "medium" is the neutral middle.
            extra.insert("thinking".into(), Value::Object(obj));
            Ok(Some(Reasoning {
                effort: Some(effort.unwrap_or_else(|| "medium".to_string())),
                ..Reasoning::default()
            }))
        }
    }
}

fn parse_output_format(mut obj: Obj, path: &str) -> Result<Option<ResponseFormat>, WireError> {
    match take_string(&mut obj, "type", &format!("{path}.type"))?.as_deref() {
        Some("json_schema") => Ok(Some(ResponseFormat::JsonSchema {
            // Anthropic's format has no name; other dialects require one.
            name: "response".to_string(),
            schema: take_present(&mut obj, "schema").ok_or_else(|| missing(path, "schema"))?,
            strict: None,
            description: None,
        })),
        Some(other) => Err(WireError::at(
            format!("{path}.type"),
            format!("unknown output format type `{other}`"),
        )),
        None => Err(missing(path, "type")),
    }
}

/// The thinking budget the request asks for, unless Anthropic would reject thinking here: with a
/// forced tool choice, or when the final assistant turn (as rendered) calls tools without starting
/// with a thinking block — a client that cannot sign thinking (e.g. via OpenAI) never has one.
fn thinking_budget(req: &Request, rendered: &[(&str, Vec<Value>)]) -> Option<u32> {
    let budget = req
        .reasoning
        .as_ref()
        .and_then(Reasoning::budget_or_from_effort)
        .filter(|&b| b > 0)?
        .max(MIN_THINKING_BUDGET);
    if !req.tools.is_empty()
        && matches!(
            req.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Tool(_))
        )
    {
        return None;
    }
    let block_type = |b: &Value| b.get("type").and_then(Value::as_str).map(str::to_owned);
    if let Some((_, blocks)) = rendered.iter().rev().find(|(role, _)| *role == "assistant") {
        let calls_tools = blocks
            .iter()
            .any(|b| block_type(b).as_deref() == Some("tool_use"));
        let starts_with_thinking = matches!(
            blocks.first().and_then(block_type).as_deref(),
            Some("thinking" | "redacted_thinking")
        );
        if calls_tools && !starts_with_thinking {
            return None;
        }
    }
    Some(budget)
}

/// Renders a canonical request as an Anthropic `/v1/messages` body.
pub fn request_to_json(req: &Request) -> Result<Value, WireError> {
    let mut out = Obj::new();
    out.insert("model".into(), Value::String(req.model.clone()));

    let mut system: Vec<&TextPart> = req.system.iter().collect();
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(req.messages.len());
    for (i, msg) in req.messages.iter().enumerate() {
        let role = match msg.role {
            // Anthropic has no system turn: mid-conversation instructions join the system prompt.
            Role::System => {
                system.extend(msg.content.iter().filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(t),
                    _ => None,
                }));
                continue;
            }
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut blocks = Vec::with_capacity(msg.content.len());
        for (j, block) in msg.content.iter().enumerate() {
            if let Some(v) = block_to_json(block, i, j)? {
                blocks.push(v);
            }
        }
        if blocks.is_empty() {
            // Anthropic rejects empty content; the message had nothing Anthropic can carry.
            continue;
        }
        // Anthropic wants strict user/assistant alternation.
        match messages.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }

    let system: Vec<&TextPart> = system.into_iter().filter(|t| !t.text.is_empty()).collect();
    match system.as_slice() {
        [] => {}
        [only] if only.cache_control.is_none() => {
            out.insert("system".into(), Value::String(only.text.clone()));
        }
        parts => {
            let parts = parts.iter().map(|t| text_json(t)).collect();
            out.insert("system".into(), Value::Array(parts));
        }
    }
    let extra = req.extra.as_ref().filter(|e| e.dialect == DIALECT);
    // A verbatim `thinking` (adaptive) from an Anthropic client says more than Reasoning can.
    let thinking_from_extra = extra.is_some_and(|e| e.fields.contains_key("thinking"));
    let wanted = if thinking_from_extra {
        None
    } else {
        thinking_budget(req, &messages)
    };
    let messages = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": compact_content(content)}))
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    let mut max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let budget = match (wanted, req.max_tokens) {
        (None, _) => None,
        // The client's max_tokens is its spending cap and includes thinking in both dialects: fit
        // the budget inside it (Anthropic wants budget < max_tokens), or think not at all.
        (Some(b), Some(max)) if b < max => Some(b),
        (Some(b), Some(max)) if max > MIN_THINKING_BUDGET => {
            Some(b.min(max / 2).max(MIN_THINKING_BUDGET).min(max - 1))
        }
        (Some(_), Some(_)) => None,
        (Some(b), None) => {
            max_tokens = max_tokens.max(b.saturating_add(DEFAULT_MAX_TOKENS));
            Some(b)
        }
    };
    if let Some(budget) = budget {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    out.insert("max_tokens".into(), max_tokens.into());
    // Anthropic rejects sampling parameters while thinking.
    if budget.is_none() {
        if let Some(t) = req.temperature {
            // OpenAI's range is 0..=2, Anthropic's 0..=1.
            out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
        }
        if let Some(p) = req.top_p {
            out.insert("top_p".into(), p.into());
        }
        if let Some(k) = req.top_k {
            out.insert("top_k".into(), k.into());
        }
    }
    if !req.stop_sequences.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop_sequences));
    }
    if req.stream {
        out.insert("stream".into(), Value::Bool(true));
    }

    let tools: Vec<Value> = req.tools.iter().filter_map(tool_json).collect();
    if !tools.is_empty() {
        let disable_parallel = req.parallel_tool_calls == Some(false);
        let choice = match (&req.tool_choice, disable_parallel) {
            (Some(c), _) => Some(tool_choice_json(c)),
            (None, true) => Some(json!({"type": "auto"})),
            (None, false) => None,
        };
        if let Some(mut choice) = choice {
            // Anthropic rejects the flag on `none`, where it means nothing anyway.
            if disable_parallel && req.tool_choice != Some(ToolChoice::None) {
                choice["disable_parallel_tool_use"] = Value::Bool(true);
            }
            out.insert("tool_choice".into(), choice);
        }
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &req.response_format {
        out.insert(
            "output_config".into(),
            json!({"format": {"type": "json_schema", "schema": schema}}),
        );
    }
    if let Some(user) = &req.user {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(extra) = extra {
        merge_extra(&mut out, &extra.fields);
    }
    Ok(Value::Object(out))
}

/// Extra fields fill gaps, one level deep (`output_config.effort` next to a canonical
/// `output_config.format`); canonical values win where both exist.
fn merge_extra(out: &mut Obj, extra: &Obj) {
    for (key, value) in extra {
        match (out.get_mut(key), value) {
            (None, _) => {
                out.insert(key.clone(), value.clone());
            }
            (Some(Value::Object(existing)), Value::Object(more)) => {
                for (k, v) in more {
                    existing.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            (Some(_), _) => {}
        }
    }
}

/// A lone plain text block is sent as a string, as most clients write it.
fn compact_content(mut content: Vec<Value>) -> Value {
    if let [Value::Object(only)] = content.as_mut_slice() {
        if only.len() == 2 && only.get("type").and_then(Value::as_str) == Some("text") {
            if let Some(text) = only.remove("text") {
                return text;
            }
        }
    }
    Value::Array(content)
}

fn text_json(t: &TextPart) -> Value {
    let mut v = json!({"type": "text", "text": t.text});
    if let Some(cc) = &t.cache_control {
        v["cache_control"] = cc.clone();
    }
    v
}

fn image_json(source: &ImageSource, cache_control: Option<&Value>) -> Value {
    let source = match source {
        ImageSource::Url(url) => json!({"type": "url", "url": url}),
        ImageSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
    };
    let mut v = json!({"type": "image", "source": source});
    if let Some(cc) = cache_control {
        v["cache_control"] = cc.clone();
    }
    v
}

fn block_to_json(block: &ContentBlock, i: usize, j: usize) -> Result<Option<Value>, WireError> {
    Ok(match block {
        // Anthropic rejects empty text blocks (OpenAI assistant turns often carry "" next to tool calls).
        ContentBlock::Text(t) if t.text.is_empty() => None,
        ContentBlock::Text(t) => Some(text_json(t)),
        ContentBlock::Image {
            source,
            cache_control,
        } => Some(image_json(source, cache_control.as_ref())),
        ContentBlock::ToolCall(call) => {
            let input = arguments_object(&call.arguments).ok_or_else(|| {
                WireError::at(
                    format!("messages[{i}].content[{j}]"),
                    format!("arguments of tool call `{}` are not a JSON object", call.id),
                )
            })?;
            Some(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}))
        }
        ContentBlock::ToolResult {
            tool_call_id,
            content,
            is_error,
            cache_control,
        } => {
            let mut v = json!({"type": "tool_result", "tool_use_id": tool_call_id});
            let parts: Vec<Value> = content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::Text(t) if t.text.is_empty() => None,
                    ContentBlock::Text(t) => Some(text_json(t)),
                    ContentBlock::Image {
                        source,
                        cache_control,
                    } => Some(image_json(source, cache_control.as_ref())),
                    ContentBlock::Unknown {
                        dialect: DIALECT,
                        value,
                    } => Some(value.clone()),
                    _ => None,
                })
                .collect();
            if !parts.is_empty() {
                v["content"] = compact_content(parts);
            }
            if *is_error {
                v["is_error"] = Value::Bool(true);
            }
            if let Some(cc) = cache_control {
                v["cache_control"] = cc.clone();
            }
            Some(v)
        }
        ContentBlock::Thinking {
            text,
            signature: Some(signature),
        } => Some(json!({"type": "thinking", "thinking": text, "signature": signature})),
        // Unsigned thinking came from a dialect that cannot sign it; Anthropic would reject it.
        ContentBlock::Thinking {
            signature: None, ..
        } => None,
        ContentBlock::RedactedThinking { data } => {
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        ContentBlock::Unknown {
            dialect: DIALECT,
            value,
        } => Some(value.clone()),
        ContentBlock::Unknown { .. } => None,
    })
}

/// Tool-call arguments text as the object Anthropic wants: "" means no arguments.
fn arguments_object(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Obj::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

fn tool_json(tool: &Tool) -> Option<Value> {
    match tool {
        Tool::Function(f) => {
            // OpenAI lets a function omit its parameters; Anthropic requires an object schema.
            let schema = match &f.parameters {
                Value::Null => json!({"type": "object", "properties": {}}),
                p => p.clone(),
            };
            let mut v = json!({"name": f.name, "input_schema": schema});
            if let Some(d) = &f.description {
                v["description"] = Value::String(d.clone());
            }
            if let Some(strict) = f.strict {
                v["strict"] = Value::Bool(strict);
            }
            if let Some(cc) = &f.cache_control {
                v["cache_control"] = cc.clone();
            }
            Some(v)
        }
        Tool::Unknown {
            dialect: DIALECT,
            value,
        } => Some(value.clone()),
        Tool::Unknown { .. } => None,
    }
}

fn tool_choice_json(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ResponseIn {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: UsageIn,
}

/// Parses a non-streamed `/v1/messages` response.
pub fn parse_response(body: &[u8]) -> Result<Response, WireError> {
    let r: ResponseIn = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    let content = r
        .content
        .into_iter()
        .enumerate()
        .map(|(j, b)| parse_block(b, &format!("content[{j}]")))
        .collect::<Result<_, _>>()?;
    Ok(Response {
        id: r.id,
        model: r.model,
        content,
        finish_reason: r.stop_reason.as_deref().map(finish_reason_from_str),
        stop_sequence: r.stop_sequence,
        usage: r.usage.to_canonical(),
        created: None,
    })
}

/// Renders a canonical response as an Anthropic message object.
pub fn response_to_json(resp: &Response) -> Value {
    let content: Vec<Value> = resp
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(t) => Some(json!({"type": "text", "text": t.text})),
            ContentBlock::Thinking { text, signature } => Some(json!({
                "type": "thinking",
                "thinking": text,
                // SDKs expect the field; "" marks thinking that cannot be sent back (see parse_block).
                "signature": signature.as_deref().unwrap_or(""),
            })),
            ContentBlock::RedactedThinking { data } => {
                Some(json!({"type": "redacted_thinking", "data": data}))
            }
            ContentBlock::ToolCall(call) => Some(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": arguments_object(&call.arguments).unwrap_or_else(|| Value::Object(Obj::new())),
            })),
            ContentBlock::Unknown {
                dialect: DIALECT,
                value,
            } => Some(value.clone()),
            _ => None,
        })
        .collect();
    json!({
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": resp.finish_reason.as_ref().map(finish_reason_str),
        "stop_sequence": resp.stop_sequence,
        "usage": UsageOut::from_canonical(&resp.usage),
    })
}

pub(crate) fn finish_reason_from_str(s: &str) -> FinishReason {
    match s {
        "end_turn" => FinishReason::EndTurn,
        "max_tokens" => FinishReason::MaxTokens,
        "stop_sequence" => FinishReason::StopSequence,
        "tool_use" => FinishReason::ToolUse,
        "pause_turn" => FinishReason::PauseTurn,
        "refusal" => FinishReason::Refusal,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(crate) fn finish_reason_str(r: &FinishReason) -> &str {
    match r {
        FinishReason::EndTurn => "end_turn",
        FinishReason::MaxTokens => "max_tokens",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::ToolUse => "tool_use",
        FinishReason::PauseTurn => "pause_turn",
        FinishReason::Refusal | FinishReason::ContentFilter => "refusal",
        FinishReason::Other(s) => s,
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// Anthropic's usage object. Counters may be absent or null (message_delta often carries only
/// `output_tokens`), so absence is kept apart from zero for merging.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct UsageIn {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl UsageIn {
    pub(crate) fn to_canonical(self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(read)
                .saturating_add(write),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: 0,
        }
    }

    /// Field-wise max: message_delta's counters are cumulative and may omit what message_start said.
    pub(crate) fn merge_max(&mut self, other: &UsageIn) {
        fn max(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
        }
        self.input_tokens = max(self.input_tokens, other.input_tokens);
        self.output_tokens = max(self.output_tokens, other.output_tokens);
        self.cache_creation_input_tokens = max(
            self.cache_creation_input_tokens,
            other.cache_creation_input_tokens,
        );
        self.cache_read_input_tokens =
            max(self.cache_read_input_tokens, other.cache_read_input_tokens);
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct UsageOut {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

impl UsageOut {
    pub(crate) fn from_canonical(u: &Usage) -> Self {
        UsageOut {
            input_tokens: u
                .input_tokens
                .saturating_sub(u.cache_read_tokens)
                .saturating_sub(u.cache_write_tokens),
            output_tokens: u.output_tokens,
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cache_read_tokens,
        }
    }
}

/// Usage of a non-streamed response (canonical convention), reading nothing else.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Only {
        usage: Option<UsageIn>,
    }
    serde_json::from_slice::<Only>(body)
        .ok()?
        .usage
        .map(UsageIn::to_canonical)
}

/// Usage carried by one passthrough stream event (canonical convention, cumulative): only
/// `message_start` and `message_delta` carry any, and other events are not parsed at all.
pub fn usage_from_event(event: Option<&str>, data: &str) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Start {
        message: StartMessage,
    }
    #[derive(Deserialize)]
    struct StartMessage {
        usage: Option<UsageIn>,
    }
    #[derive(Deserialize)]
    struct MessageDelta {
        usage: Option<UsageIn>,
    }
    let name = match event {
        Some(name) => name,
        // Unnamed events: a substring check keeps deltas (the bulk of a stream) unparsed.
        None if data.contains("\"message_start\"") => "message_start",
        None if data.contains("\"message_delta\"") => "message_delta",
        None => return None,
    };
    let usage = match name {
        "message_start" => serde_json::from_str::<Start>(data).ok()?.message.usage,
        "message_delta" => serde_json::from_str::<MessageDelta>(data).ok()?.usage,
        _ => None,
    };
    usage.map(UsageIn::to_canonical)
}

// ---------------------------------------------------------------------------------------------
// Errors and token counting
// ---------------------------------------------------------------------------------------------

/// Anthropic's `type` string for an error kind.
pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Api => "api_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout => "timeout_error",
    }
}

/// An Anthropic error body.
pub fn error_json(kind: ErrorKind, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(kind), "message": message}})
}

/// `(type, message)` of an Anthropic error body, or None when the body is not one.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Body {
        error: ErrorIn,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    Some((b.error.kind, b.error.message))
}

#[derive(Deserialize)]
pub(crate) struct ErrorIn {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// A local token estimate for count_tokens when the upstream cannot count: about four characters
/// per token over everything the model reads, and a flat cost per image.
pub fn estimate_input_tokens(req: &Request) -> u64 {
    fn block_chars(block: &ContentBlock, chars: &mut usize, images: &mut u64) {
        match block {
            ContentBlock::Text(t) => *chars += t.text.chars().count(),
            ContentBlock::Image { .. } => *images += 1,
            ContentBlock::ToolCall(c) => *chars += c.name.len() + c.arguments.chars().count(),
            ContentBlock::ToolResult { content, .. } => {
                for b in content {
                    block_chars(b, chars, images);
                }
            }
            // Earlier turns' thinking is stripped from the context by Anthropic; only the latest
            // counts, and it is small next to everything else.
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {}
            ContentBlock::Unknown { value, .. } => *chars += value.to_string().len(),
        }
    }
    let mut chars = 0usize;
    let mut images = 0u64;
    for part in &req.system {
        chars += part.text.chars().count();
    }
    for msg in &req.messages {
        for block in &msg.content {
            block_chars(block, &mut chars, &mut images);
        }
    }
    for tool in &req.tools {
        match tool {
            Tool::Function(f) => {
                chars += f.name.len();
                chars += f.description.as_deref().map_or(0, |d| d.chars().count());
                chars += f.parameters.to_string().len();
            }
            Tool::Unknown { value, .. } => chars += value.to_string().len(),
        }
    }
    (chars as u64).div_ceil(4) + images * IMAGE_TOKENS
}

/// The `/v1/messages/count_tokens` response body.
pub fn count_tokens_json(input_tokens: u64) -> Value {
    json!({"input_tokens": input_tokens})
}

// ---------------------------------------------------------------------------------------------
// Value helpers
// ---------------------------------------------------------------------------------------------

/// Removes a field that may be absent or null; any other value is kept verbatim.
fn take_present(obj: &mut Obj, key: &str) -> Option<Value> {
    obj.remove(key).filter(|v| !v.is_null())
}

fn take_u32(obj: &mut Obj, key: &str, path: &str) -> Result<Option<u32>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| WireError::at(path, "expected a non-negative integer")),
        Some(other) => Err(wrong_type(path, "an integer", &other)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
