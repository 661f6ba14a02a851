//! Request bodies: OpenAI client → canonical, and canonical → OpenAI-compatible upstream.
//!
//! Parsed from a `serde_json::Value` walk rather than derived structs so that every rejection can
//! name the exact field (`messages[3].content[1].image_url`) the way OpenAI's own 400s do.

use serde_json::{Map, Value, json};

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
    let mut req = Request::default();
    let mut extra = Obj::new();
    let mut model = None;
    let mut messages = None;
    let mut max_tokens = None;
    let mut max_completion_tokens = None;
    let mut safety_identifier = None;
    for (key, value) in obj {
        match key.as_str() {
            "model" => model = Some(value),
            "messages" => messages = Some(value),
            "max_tokens" => max_tokens = opt_u32(&value, "max_tokens")?,
            "max_completion_tokens" => {
                max_completion_tokens = opt_u32(&value, "max_completion_tokens")?
            }
            "temperature" => req.temperature = opt_f64(&value, "temperature")?,
            "top_p" => req.top_p = opt_f64(&value, "top_p")?,
            "stop" => req.stop_sequences = parse_stop(value)?,
            "stream" => req.stream = opt_bool(&value, "stream")?.unwrap_or(false),
            "stream_options" => req.stream_include_usage = parse_stream_options(&value)?,
            "tools" => req.tools = parse_tools(value)?,
            "parallel_tool_calls" => {
                req.parallel_tool_calls = opt_bool(&value, "parallel_tool_calls")?
            }
            "reasoning_effort" => req.reasoning = parse_effort(&value)?,
            "user" => req.user = opt_string(value, "user")?,
            "safety_identifier" => safety_identifier = opt_string(value, "safety_identifier")?,
            // Shapes the canonical model has no name for (allowed_tools, custom tool choice, new
            // response formats) still reach a same-dialect upstream through `extra`.
            "tool_choice" => match parse_tool_choice(&value)? {
                Some(choice) => req.tool_choice = Some(choice),
                None if value.is_null() => {}
                None => {
                    extra.insert(key, value);
                }
            },
            "response_format" => match parse_response_format(&value)? {
                Some(format) => req.response_format = Some(format),
                None if value.is_null() => {}
                None => {
                    extra.insert(key, value);
                }
            },
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
    let Some(messages) = messages else {
        return Err(WireError::at("messages", "is required"));
    };
    parse_messages(messages, &mut req)?;
    req.max_tokens = max_completion_tokens.or(max_tokens);
    if req.user.is_none() {
        req.user = safety_identifier;
    }
    if !extra.is_empty() {
        req.extra = Some(Extra {
            dialect: Dialect::OpenAiChat,
            fields: extra,
        });
    }
    Ok(req)
}

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

fn parse_stop(v: Value) -> Result<Vec<String>, WireError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(WireError::at(format!("stop[{i}]"), "must be a string")),
            })
            .collect(),
        _ => Err(WireError::at(
            "stop",
            "must be a string or an array of strings",
        )),
    }
}

fn parse_stream_options(v: &Value) -> Result<bool, WireError> {
    match v {
        Value::Null => Ok(false),
        Value::Object(o) => Ok(opt_bool(
            o.get("include_usage").unwrap_or(&Value::Null),
            "stream_options.include_usage",
        )?
        .unwrap_or(false)),
        _ => Err(WireError::at("stream_options", "must be an object")),
    }
}

fn parse_effort(v: &Value) -> Result<Option<Reasoning>, WireError> {
    match v {
        Value::Null => Ok(None),
        Value::String(effort) => Ok(Some(Reasoning {
            effort: Some(effort.clone()),
            budget_tokens: None,
            disabled: effort == "none",
        })),
        _ => Err(WireError::at("reasoning_effort", "must be a string")),
    }
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

fn parse_tools(v: Value) -> Result<Vec<Tool>, WireError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(WireError::at("tools", "must be an array")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("tools[{i}]");
            let Value::Object(obj) = item else {
                return Err(WireError::at(path, "must be an object"));
            };
            if obj.get("type").and_then(Value::as_str) != Some("function") {
                return Ok(Tool::Unknown {
                    dialect: Dialect::OpenAiChat,
                    value: Value::Object(obj),
                });
            }
            let Some(Value::Object(func)) = obj.get("function") else {
                return Err(WireError::at(
                    format!("{path}.function"),
                    "must be an object",
                ));
            };
            let fpath = format!("{path}.function");
            Ok(Tool::Function(super::super::openai_common::function_tool(
                func, &fpath,
            )?))
        })
        .collect()
}

fn parse_tool_choice(v: &Value) -> Result<Option<ToolChoice>, WireError> {
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
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => Ok(Some(ToolChoice::Tool(name.to_string()))),
                None => Err(WireError::at("tool_choice.function.name", "is required")),
            }
        }
        Value::Object(_) | Value::Null => Ok(None),
        _ => Err(WireError::at(
            "tool_choice",
            "must be a string or an object",
        )),
    }
}

fn parse_response_format(v: &Value) -> Result<Option<ResponseFormat>, WireError> {
    let Value::Object(o) = v else {
        return match v {
            Value::Null => Ok(None),
            _ => Err(WireError::at("response_format", "must be an object")),
        };
    };
    match o.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Some(ResponseFormat::Text)),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let Some(Value::Object(js)) = o.get("json_schema") else {
                return Err(WireError::at(
                    "response_format.json_schema",
                    "must be an object",
                ));
            };
            let name = req_str(js, "name", "response_format.json_schema")?.to_string();
            Ok(Some(ResponseFormat::JsonSchema {
                name,
                schema: js.get("schema").cloned().unwrap_or(Value::Null),
                strict: opt_bool(
                    js.get("strict").unwrap_or(&Value::Null),
                    "response_format.json_schema.strict",
                )?,
                description: js
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }))
        }
        Some(_) => Ok(None),
        None => Err(WireError::at("response_format.type", "is required")),
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn parse_messages(v: Value, req: &mut Request) -> Result<(), WireError> {
    let Value::Array(items) = v else {
        return Err(WireError::at(
            "messages",
            "must be an array of message objects",
        ));
    };
    if items.is_empty() {
        return Err(WireError::at(
            "messages",
            "must contain at least one message",
        ));
    }
    // System prompts before the first turn are the request's system prompt; later ones stay in
    // place as System messages.
    let mut leading = true;
    // Consecutive `tool` messages become one canonical User message of ToolResult blocks.
    let mut in_tool_run = false;
    req.messages.reserve(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        let Value::Object(mut m) = item else {
            return Err(WireError::at(path, "must be an object"));
        };
        let role = match m.get("role") {
            Some(Value::String(r)) => r.clone(),
            Some(_) => return Err(WireError::at(format!("{path}.role"), "must be a string")),
            None => return Err(WireError::at(format!("{path}.role"), "is required")),
        };
        let name = match m.remove("name") {
            Some(Value::String(n)) => Some(n),
            _ => None,
        };
        let content = m.remove("content");
        let cpath = format!("{path}.content");
        match role.as_str() {
            "system" | "developer" => {
                in_tool_run = false;
                let parts = text_parts(content, &cpath)?;
                if leading {
                    req.system.extend(parts);
                } else {
                    req.messages.push(Message {
                        role: Role::System,
                        content: parts.into_iter().map(ContentBlock::Text).collect(),
                        name,
                    });
                }
            }
            "user" => {
                leading = false;
                in_tool_run = false;
                req.messages.push(Message {
                    role: Role::User,
                    content: user_content(content, &cpath)?,
                    name,
                });
            }
            "assistant" => {
                leading = false;
                in_tool_run = false;
                let blocks = assistant_content(&mut m, content, &path)?;
                req.messages.push(Message {
                    role: Role::Assistant,
                    content: blocks,
                    name,
                });
            }
            "tool" => {
                leading = false;
                let tool_call_id = req_str(&m, "tool_call_id", &path)?.to_string();
                let result = ContentBlock::ToolResult {
                    tool_call_id,
                    content: text_parts(content, &cpath)?
                        .into_iter()
                        .map(ContentBlock::Text)
                        .collect(),
                    is_error: false,
                    cache_control: None,
                };
                match req.messages.last_mut() {
                    Some(last) if in_tool_run => last.content.push(result),
                    _ => req.messages.push(Message {
                        role: Role::User,
                        content: vec![result],
                        name: None,
                    }),
                }
                in_tool_run = true;
            }
            other => {
                return Err(WireError::at(
                    format!("{path}.role"),
                    format!(
                        "unsupported role '{other}' (expected system, developer, user, assistant or tool)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Content that may only be text: a string or an array of `text` parts.
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
                let Value::Object(mut p) = part else {
                    return Err(WireError::at(ppath, "must be an object"));
                };
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => text_part(&mut p, &ppath),
                    _ => Err(WireError::at(
                        format!("{ppath}.type"),
                        "only text content parts are allowed here",
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

fn text_part(p: &mut Obj, path: &str) -> Result<TextPart, WireError> {
    let text = match p.remove("text") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(WireError::at(format!("{path}.text"), "must be a string")),
        None => return Err(WireError::at(format!("{path}.text"), "is required")),
    };
    // Not OpenAI's own, but OpenRouter-style clients mark cache breakpoints on text parts, and an
    // Anthropic upstream can honour them.
    Ok(TextPart {
        text,
        cache_control: p.remove("cache_control").filter(|c| !c.is_null()),
    })
}

fn user_content(content: Option<Value>, path: &str) -> Result<Vec<ContentBlock>, WireError> {
    match content {
        None | Some(Value::Null) => Err(WireError::at(path, "is required")),
        Some(Value::String(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let ppath = format!("{path}[{i}]");
                let Value::Object(mut p) = part else {
                    return Err(WireError::at(ppath, "must be an object"));
                };
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => Ok(ContentBlock::Text(text_part(&mut p, &ppath)?)),
                    Some("image_url") => image_part(&p, &ppath),
                    Some(_) => Ok(ContentBlock::Unknown {
                        dialect: Dialect::OpenAiChat,
                        value: Value::Object(p),
                    }),
                    None => Err(WireError::at(format!("{ppath}.type"), "is required")),
                }
            })
            .collect(),
        Some(_) => Err(WireError::at(
            path,
            "must be a string or an array of content parts",
        )),
    }
}

fn image_part(p: &Obj, path: &str) -> Result<ContentBlock, WireError> {
    // `detail` has no canonical home and is dropped.
    let url = match p.get("image_url") {
        Some(Value::Object(img)) => req_str(img, "url", &format!("{path}.image_url"))?,
        Some(Value::String(url)) => url.as_str(),
        _ => {
            return Err(WireError::at(
                format!("{path}.image_url"),
                "must be an object with a url",
            ));
        }
    };
    Ok(ContentBlock::Image {
        source: image_source(url),
        cache_control: None,
    })
}

fn image_source(url: &str) -> ImageSource {
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

fn assistant_content(
    m: &mut Obj,
    content: Option<Value>,
    path: &str,
) -> Result<Vec<ContentBlock>, WireError> {
    let mut blocks = Vec::new();
    // DeepSeek / vLLM call it `reasoning_content`, OpenRouter `reasoning`.
    let reasoning = match m.remove("reasoning_content") {
        Some(Value::String(r)) => Some(r),
        _ => match m.remove("reasoning") {
            Some(Value::String(r)) => Some(r),
            _ => None,
        },
    };
    if let Some(text) = reasoning.filter(|r| !r.is_empty()) {
        blocks.push(ContentBlock::Thinking {
            text,
            signature: None,
        });
    }
    let cpath = format!("{path}.content");
    match content {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            if !text.is_empty() {
                blocks.push(ContentBlock::text(text));
            }
        }
        Some(Value::Array(parts)) => {
            for (i, part) in parts.into_iter().enumerate() {
                let ppath = format!("{cpath}[{i}]");
                let Value::Object(mut p) = part else {
                    return Err(WireError::at(ppath, "must be an object"));
                };
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => blocks.push(ContentBlock::Text(text_part(&mut p, &ppath)?)),
                    Some("refusal") => match p.remove("refusal") {
                        Some(Value::String(r)) => blocks.push(ContentBlock::text(r)),
                        _ => {
                            return Err(WireError::at(
                                format!("{ppath}.refusal"),
                                "must be a string",
                            ));
                        }
                    },
                    _ => blocks.push(ContentBlock::Unknown {
                        dialect: Dialect::OpenAiChat,
                        value: Value::Object(p),
                    }),
                }
            }
        }
        Some(_) => {
            return Err(WireError::at(
                cpath,
                "must be a string, null or an array of content parts",
            ));
        }
    }
    match m.remove("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for (i, call) in calls.into_iter().enumerate() {
                blocks.push(tool_call(call, &format!("{path}.tool_calls[{i}]"))?);
            }
        }
        Some(_) => {
            return Err(WireError::at(
                format!("{path}.tool_calls"),
                "must be an array",
            ));
        }
    }
    Ok(blocks)
}

fn tool_call(call: Value, path: &str) -> Result<ContentBlock, WireError> {
    let Value::Object(call) = call else {
        return Err(WireError::at(path, "must be an object"));
    };
    if call
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function")
        != "function"
    {
        // `custom` tool calls: only an OpenAI upstream knows what to do with them.
        return Ok(ContentBlock::Unknown {
            dialect: Dialect::OpenAiChat,
            value: Value::Object(call),
        });
    }
    let id = req_str(&call, "id", path)?.to_string();
    let fpath = format!("{path}.function");
    let Some(Value::Object(func)) = call.get("function") else {
        return Err(WireError::at(fpath, "must be an object"));
    };
    let name = req_str(func, "name", &fpath)?.to_string();
    let arguments = match func.get("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(a)) => a.clone(),
        // Some clients send the object itself; the canonical form is its JSON text.
        Some(other) => other.to_string(),
    };
    Ok(ContentBlock::ToolCall(ToolCall {
        id,
        name,
        arguments,
    }))
}

// ---------------------------------------------------------------------------------------------
// Canonical → OpenAI
// ---------------------------------------------------------------------------------------------

pub fn request_to_json(req: &Request) -> Result<Value, WireError> {
    let mut out = Obj::new();
    out.insert("model".into(), Value::String(req.model.clone()));

    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": text_content(&req.system)}));
    }
    for msg in &req.messages {
        match msg.role {
            Role::System => {
                let parts: Vec<TextPart> = msg
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                if !parts.is_empty() {
                    messages.push(with_name(
                        json!({"role": "system", "content": text_content(&parts)}),
                        msg,
                    ));
                }
            }
            Role::User => push_user(msg, &mut messages),
            Role::Assistant => messages.push(assistant_message(msg)),
        }
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(n) = req.max_tokens {
        out.insert("max_tokens".into(), n.into());
    }
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), p.into());
    }
    if !req.stop_sequences.is_empty() {
        out.insert("stop".into(), json!(req.stop_sequences));
    }
    if req.stream {
        out.insert("stream".into(), Value::Bool(true));
        // Always asked for, whatever the client wanted: the gateway accounts from it and strips
        // the usage chunk for clients that did not ask.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }

    let tools: Vec<Value> = req.tools.iter().filter_map(tool_json).collect();
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &req.tool_choice {
            out.insert(
                "tool_choice".into(),
                match choice {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Required => json!("required"),
                    ToolChoice::Tool(name) => {
                        json!({"type": "function", "function": {"name": name}})
                    }
                },
            );
        }
        if let Some(parallel) = req.parallel_tool_calls {
            out.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    }

    if let Some(effort) = req
        .reasoning
        .as_ref()
        .and_then(|r| r.effort_or_from_budget())
    {
        out.insert("reasoning_effort".into(), Value::String(effort));
    }
    if let Some(format) = &req.response_format {
        out.insert(
            "response_format".into(),
            match format {
                ResponseFormat::Text => json!({"type": "text"}),
                ResponseFormat::JsonObject => json!({"type": "json_object"}),
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict,
                    description,
                } => {
                    let mut js = Obj::new();
                    js.insert("name".into(), Value::String(name.clone()));
                    if let Some(d) = description {
                        js.insert("description".into(), Value::String(d.clone()));
                    }
                    if !schema.is_null() {
                        js.insert("schema".into(), schema.clone());
                    }
                    if let Some(s) = strict {
                        js.insert("strict".into(), Value::Bool(*s));
                    }
                    json!({"type": "json_schema", "json_schema": js})
                }
            },
        );
    }
    if let Some(user) = &req.user {
        out.insert("user".into(), Value::String(user.clone()));
    }
    if let Some(extra) = &req.extra {
        if extra.dialect == Dialect::OpenAiChat {
            for (k, v) in &extra.fields {
                // Canonical fields win: they may have been edited since parsing.
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

/// One part as a plain string, several as an array of text parts (keeps their boundaries).
fn text_content(parts: &[TextPart]) -> Value {
    match parts {
        [one] => Value::String(one.text.clone()),
        _ => Value::Array(
            parts
                .iter()
                .map(|p| json!({"type": "text", "text": p.text}))
                .collect(),
        ),
    }
}

fn with_name(mut v: Value, msg: &Message) -> Value {
    if let (Some(name), Value::Object(o)) = (&msg.name, &mut v) {
        o.insert("name".into(), Value::String(name.clone()));
    }
    v
}

fn image_url(source: &ImageSource) -> Value {
    let url = match source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    };
    json!({"type": "image_url", "image_url": {"url": url}})
}

/// A user-side block as an OpenAI content part, or None when OpenAI has no place for it.
fn user_part(block: &ContentBlock) -> Option<Value> {
    match block {
        ContentBlock::Text(t) => Some(json!({"type": "text", "text": t.text})),
        ContentBlock::Image { source, .. } => Some(image_url(source)),
        ContentBlock::Unknown {
            dialect: Dialect::OpenAiChat,
            value,
        } => Some(value.clone()),
        _ => None,
    }
}

/// Tool results go out first as `tool` messages (OpenAI wants them right after the assistant's
/// calls), then whatever else the canonical message held as one `user` message.
fn push_user(msg: &Message, messages: &mut Vec<Value>) {
    let mut parts: Vec<Value> = Vec::new();
    let mut result_images: Vec<Value> = Vec::new();
    for block in &msg.content {
        match block {
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                ..
            } => {
                let mut texts = Vec::new();
                for inner in content {
                    match inner {
                        ContentBlock::Text(t) => texts.push(t.clone()),
                        // Tool messages take text only: images follow in a user message.
                        ContentBlock::Image { source, .. } => result_images.push(image_url(source)),
                        _ => {}
                    }
                }
                let content = if texts.is_empty() {
                    Value::String(String::new())
                } else {
                    text_content(&texts)
                };
                messages.push(
                    json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}),
                );
            }
            other => parts.extend(user_part(other)),
        }
    }
    result_images.append(&mut parts);
    let parts = result_images;
    if parts.is_empty() {
        return;
    }
    let content = match parts.as_slice() {
        [only] if only.get("type").and_then(Value::as_str) == Some("text") => {
            only.get("text").cloned().unwrap_or(Value::Null)
        }
        _ => Value::Array(parts),
    };
    messages.push(with_name(json!({"role": "user", "content": content}), msg));
}

fn assistant_message(msg: &Message) -> Value {
    let mut text = String::new();
    let mut text_blocks = 0usize;
    let mut calls = Vec::new();
    for block in &msg.content {
        match block {
            ContentBlock::Text(t) => {
                // Separate text blocks were separate paragraphs (often split by a tool call).
                if text_blocks > 0 {
                    text.push_str("\n\n");
                }
                text.push_str(&t.text);
                text_blocks += 1;
            }
            ContentBlock::ToolCall(c) => calls.push(json!({
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    // OpenAI rejects an empty arguments string; "{}" means the same.
                    "arguments": if c.arguments.is_empty() { "{}" } else { c.arguments.as_str() },
                },
            })),
            ContentBlock::Unknown {
                dialect: Dialect::OpenAiChat,
                value,
            } if value.get("id").is_some() => calls.push(value.clone()),
            // Thinking cannot be sent back through Chat Completions; other blocks have no place.
            _ => {}
        }
    }
    let mut out = Obj::new();
    out.insert("role".into(), Value::String("assistant".into()));
    let content = if text_blocks == 0 && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    out.insert("content".into(), content);
    if !calls.is_empty() {
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(name) = &msg.name {
        out.insert("name".into(), Value::String(name.clone()));
    }
    Value::Object(out)
}

fn tool_json(tool: &Tool) -> Option<Value> {
    match tool {
        Tool::Function(f) => {
            let mut func = Obj::new();
            super::super::openai_common::write_function(f, &mut func);
            Some(json!({"type": "function", "function": func}))
        }
        Tool::Unknown {
            dialect: Dialect::OpenAiChat,
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
    fn malformed_json_is_an_error_with_position() {
        let err = parse_request(b"{\"model\": \"x\", \"messages\": [").unwrap_err();
        assert!(err.message.contains("invalid request body"), "{err}");
        assert!(err.message.contains("line 1"), "{err}");
        let err = parse_request(b"[1,2]").unwrap_err();
        assert!(err.message.contains("JSON object"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse(json!({"model": "m", "messages": "hi"})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages"));
        let err = parse(json!({"model": "m", "messages": []})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages"));
        let err = parse(json!({"messages": [{"role":"user","content":"x"}]})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
        let err =
            parse(json!({"model": 3, "messages": [{"role":"user","content":"x"}]})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = parse(json!({"model": "m"})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages"));
        let err = parse(json!({"model": "m", "messages": [
            {"role":"user","content":"a"},
            {"role":"assistant","content":"b"},
            {"role":"user","content":"c"},
            {"role":"user","content":42}
        ]}))
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[3].content"));
        let err = parse(json!({"model": "m", "messages": [
            {"role":"user","content":[{"type":"image_url","image_url":{}}]}
        ]}))
        .unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[0].image_url.url")
        );
        let err =
            parse(json!({"model": "m", "messages": [{"role":"tool","content":"x"}]})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].tool_call_id"));
        let err = parse(json!({"model": "m", "messages": [{"role":"wizard","content":"x"}]}))
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));
        let err = parse(
            json!({"model": "m", "max_tokens": -1, "messages": [{"role":"user","content":"x"}]}),
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn scalars_and_extra() {
        let req = parse(json!({
            "model": "gpt-4o", "messages": [{"role":"user","content":"x"}],
            "max_tokens": 10, "max_completion_tokens": 20, "stop": "END",
            "stream": true, "stream_options": {"include_usage": true},
            "reasoning_effort": "none", "safety_identifier": "u1",
            "seed": 7, "logit_bias": {"50256": -100}, "temperature": null
        }))
        .unwrap();
        assert_eq!(req.max_tokens, Some(20));
        assert_eq!(req.stop_sequences, vec!["END".to_string()]);
        assert!(req.stream && req.stream_include_usage);
        assert!(req.reasoning.as_ref().unwrap().disabled);
        assert_eq!(req.user.as_deref(), Some("u1"));
        assert_eq!(req.temperature, None);
        let extra = req.extra.as_ref().unwrap();
        assert_eq!(extra.dialect, Dialect::OpenAiChat);
        assert_eq!(extra.fields.len(), 2);
        let out = request_to_json(&req).unwrap();
        assert_eq!(out["seed"], 7);
        assert_eq!(out["max_tokens"], 20);
        assert!(out.get("reasoning_effort").is_none());
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn system_messages_leading_and_later() {
        let req = parse(json!({"model": "m", "messages": [
            {"role":"system","content":"a"},
            {"role":"developer","content":[{"type":"text","text":"b"},{"type":"text","text":"c"}]},
            {"role":"user","content":"hi"},
            {"role":"system","content":"later"}
        ]}))
        .unwrap();
        assert_eq!(
            req.system
                .iter()
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.messages[1].role, Role::System);
        let out = request_to_json(&req).unwrap();
        assert_eq!(
            out["messages"][0]["content"],
            json!([{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"text","text":"c"}])
        );
        assert_eq!(
            out["messages"][2],
            json!({"role":"system","content":"later"})
        );
    }

    #[test]
    fn tool_messages_merge_and_split_back() {
        let messages = json!([
            {"role":"user","content":"weather in Paris and Rome?"},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}
            ]},
            {"role":"tool","tool_call_id":"call_1","content":"18C"},
            {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"22C"}]},
            {"role":"user","content":"thanks"}
        ]);
        let req = parse(json!({"model":"m","messages": messages})).unwrap();
        assert_eq!(req.messages.len(), 4);
        let merged = &req.messages[2];
        assert_eq!(merged.role, Role::User);
        assert_eq!(merged.content.len(), 2);
        assert!(matches!(&merged.content[1],
            ContentBlock::ToolResult { tool_call_id, content, .. }
                if tool_call_id == "call_2" && content == &vec![ContentBlock::text("22C")]));
        assert_eq!(req.messages[3].content, vec![ContentBlock::text("thanks")]);
        let out = request_to_json(&req).unwrap();
        let mut expected = messages.clone();
        // A single text part comes back as the equivalent plain string.
        expected[3]["content"] = json!("22C");
        assert_eq!(out["messages"], expected);
    }

    #[test]
    fn tool_result_images_follow_in_a_user_message() {
        let req = Request {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                content: vec![
                    ContentBlock::ToolResult {
                        tool_call_id: "t1".into(),
                        content: vec![
                            ContentBlock::text("see chart"),
                            ContentBlock::Image {
                                source: ImageSource::Base64 {
                                    media_type: "image/png".into(),
                                    data: "AAA".into(),
                                },
                                cache_control: None,
                            },
                        ],
                        is_error: false,
                        cache_control: None,
                    },
                    ContentBlock::text("what does it show?"),
                    ContentBlock::Unknown {
                        dialect: Dialect::Anthropic,
                        value: json!({"type":"document"}),
                    },
                ],
                name: None,
            }],
            ..Request::default()
        };
        let out = request_to_json(&req).unwrap();
        assert_eq!(
            out["messages"],
            json!([
                {"role":"tool","tool_call_id":"t1","content":"see chart"},
                {"role":"user","content":[
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}},
                    {"type":"text","text":"what does it show?"}
                ]}
            ])
        );
    }

    #[test]
    fn assistant_reasoning_and_thinking_dropped_on_output() {
        let req = parse(json!({"model":"m","messages":[
            {"role":"user","content":"q"},
            {"role":"assistant","content":"a","reasoning_content":"hmm"}
        ]}))
        .unwrap();
        assert_eq!(
            req.messages[1].content,
            vec![
                ContentBlock::Thinking {
                    text: "hmm".into(),
                    signature: None
                },
                ContentBlock::text("a")
            ]
        );
        let out = request_to_json(&req).unwrap();
        assert_eq!(
            out["messages"][1],
            json!({"role":"assistant","content":"a"})
        );
    }

    #[test]
    fn foreign_unknowns_dropped_and_budget_becomes_effort() {
        let req = Request {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                content: vec![ContentBlock::text("x")],
                name: None,
            }],
            tools: vec![Tool::Unknown {
                dialect: Dialect::Anthropic,
                value: json!({"type":"web_search_20250305"}),
            }],
            tool_choice: Some(ToolChoice::Required),
            parallel_tool_calls: Some(false),
            reasoning: Some(Reasoning {
                budget_tokens: Some(10000),
                ..Reasoning::default()
            }),
            extra: Some(Extra {
                dialect: Dialect::Anthropic,
                fields: json!({"top_k": 5}).as_object().unwrap().clone(),
            }),
            ..Request::default()
        };
        let out = request_to_json(&req).unwrap();
        assert!(out.get("tools").is_none());
        assert!(out.get("tool_choice").is_none());
        assert!(out.get("parallel_tool_calls").is_none());
        assert!(out.get("top_k").is_none());
        assert_eq!(out["reasoning_effort"], "medium");
    }

    #[test]
    fn image_urls() {
        assert_eq!(
            image_source("data:image/jpeg;base64,/9j/4AAQ"),
            ImageSource::Base64 {
                media_type: "image/jpeg".into(),
                data: "/9j/4AAQ".into()
            }
        );
        assert_eq!(
            image_source("https://x/y.png"),
            ImageSource::Url("https://x/y.png".into())
        );
        // Not base64: nothing canonical can hold it but the URL itself.
        assert_eq!(
            image_source("data:text/plain,hi"),
            ImageSource::Url("data:text/plain,hi".into())
        );
    }
}
