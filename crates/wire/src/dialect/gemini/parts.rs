//! `Part` ↔ `ContentBlock`, shared by requests and responses (see the module doc for signatures,
//! ids and tool results).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{DIALECT, Obj, missing, take_bool, take_string, wrong_type};
use crate::canonical::{ContentBlock, ImageSource, TextPart, ToolCall, WireError};

/// Gemini's documented placeholder for a function call whose real signature is not available.
pub(super) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Mints and matches tool-call ids while one request or response is read.
#[derive(Debug, Default)]
pub(super) struct CallIds {
    /// Function calls seen so far (the `n` of `call_<name>_<n>`).
    count: usize,
    /// Calls not answered yet: `(id, name)` in order.
    pending: Vec<(String, String)>,
}

impl CallIds {
    fn mint(&mut self, name: &str) -> String {
        let id = synth_id(name, self.count);
        self.count += 1;
        id
    }

    pub(super) fn call(&mut self, id: Option<String>, name: &str) -> String {
        let id = match id.filter(|s| !s.is_empty()) {
            Some(id) => {
                self.count += 1;
                id
            }
            None => self.mint(name),
        };
        self.pending.push((id.clone(), name.to_string()));
        id
    }

    fn response(&mut self, id: Option<String>, name: &str) -> String {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            self.pending.retain(|(p, _)| *p != id);
            return id;
        }
        match self.pending.iter().position(|(_, n)| n == name) {
            Some(at) => self.pending.remove(at).0,
            None => self.mint(name),
        }
    }
}

/// `call_<name>_<n>` with the name reduced to characters every dialect accepts in an id.
pub(super) fn synth_id(name: &str, n: usize) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("call_{clean}_{n}")
}

/// Appends the blocks of a `parts` array to `out`.
pub(super) fn parse_parts(
    parts: Vec<Value>,
    path: &str,
    ids: &mut CallIds,
    out: &mut Vec<ContentBlock>,
) -> Result<(), WireError> {
    for (j, part) in parts.into_iter().enumerate() {
        parse_part(part, &format!("{path}[{j}]"), ids, out)?;
    }
    Ok(())
}

fn parse_part(
    value: Value,
    path: &str,
    ids: &mut CallIds,
    out: &mut Vec<ContentBlock>,
) -> Result<(), WireError> {
    let Value::Object(mut obj) = value else {
        return Err(wrong_type(path, "an object", &value));
    };
    let signature = take_string(
        &mut obj,
        "thoughtSignature",
        &format!("{path}.thoughtSignature"),
    )?
    .filter(|s| !s.is_empty());
    let thought = take_bool(&mut obj, "thought", &format!("{path}.thought"))?.unwrap_or(false);

    if thought && !obj.contains_key("functionCall") {
        let text = take_string(&mut obj, "text", &format!("{path}.text"))?.unwrap_or_default();
        // Consecutive thought parts (a streamed run) are one thinking block, closed by a signature.
        if let Some(ContentBlock::Thinking {
            text: prev,
            signature: prev_sig @ None,
        }) = out.last_mut()
        {
            prev.push_str(&text);
            *prev_sig = signature;
            return Ok(());
        }
        if !text.is_empty() || signature.is_some() {
            out.push(ContentBlock::Thinking { text, signature });
        }
        return Ok(());
    }

    let block = if obj.contains_key("text") {
        let text = take_string(&mut obj, "text", &format!("{path}.text"))?.unwrap_or_default();
        (!text.is_empty()).then(|| ContentBlock::text(text))
    } else if let Some(call) = obj.get_mut("functionCall") {
        let call_path = format!("{path}.functionCall");
        let Value::Object(call) = call else {
            return Err(wrong_type(&call_path, "an object", call));
        };
        let name = take_string(call, "name", &format!("{call_path}.name"))?
            .ok_or_else(|| missing(&call_path, "name"))?;
        let id = take_string(call, "id", &format!("{call_path}.id"))?;
        let arguments = match call.get("args") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(args @ Value::Object(_)) => args.to_string(),
            Some(other) => {
                return Err(wrong_type(&format!("{call_path}.args"), "an object", other));
            }
        };
        let id = ids.call(id, &name);
        Some(ContentBlock::ToolCall(ToolCall {
            id,
            name,
            arguments,
        }))
    } else if let Some(resp) = obj.get_mut("functionResponse") {
        let resp_path = format!("{path}.functionResponse");
        let Value::Object(resp) = resp else {
            return Err(wrong_type(&resp_path, "an object", resp));
        };
        let name = take_string(resp, "name", &format!("{resp_path}.name"))?
            .ok_or_else(|| missing(&resp_path, "name"))?;
        let id = take_string(resp, "id", &format!("{resp_path}.id"))?;
        let (text, is_error) = response_text(resp.remove("response"));
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(ContentBlock::text(text));
        }
        // Multimodal function responses carry their media in `parts`.
        if let Some(Value::Array(media)) = resp.remove("parts") {
            for m in media {
                if let Value::Object(m) = m {
                    if let Some(block) = media_block(&m) {
                        content.push(block);
                    }
                }
            }
        }
        Some(ContentBlock::ToolResult {
            tool_call_id: ids.response(id, &name),
            content,
            is_error,
            cache_control: None,
        })
    } else if let Some(block) = media_block(&obj) {
        Some(block)
    } else {
        // executableCode, codeExecutionResult, non-image media, …: kept whole, signature included.
        if let Some(sig) = signature {
            obj.insert("thoughtSignature".into(), Value::String(sig));
        }
        if thought {
            obj.insert("thought".into(), Value::Bool(true));
        }
        out.push(ContentBlock::Unknown {
            dialect: DIALECT,
            value: Value::Object(obj),
        });
        return Ok(());
    };
    if let Some(sig) = signature {
        out.push(ContentBlock::Thinking {
            text: String::new(),
            signature: Some(sig),
        });
    }
    if let Some(block) = block {
        out.push(block);
    }
    Ok(())
}

/// An image `inlineData` / `fileData` part as a canonical image; None for anything else.
fn media_block(obj: &Obj) -> Option<ContentBlock> {
    let str_of = |o: &Obj, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(Value::Object(inline)) = obj.get("inlineData") {
        let media_type = str_of(inline, "mimeType")?;
        if !media_type.starts_with("image/") {
            return None;
        }
        return Some(ContentBlock::Image {
            source: ImageSource::Base64 {
                media_type,
                data: str_of(inline, "data")?,
            },
            cache_control: None,
        });
    }
    if let Some(Value::Object(file)) = obj.get("fileData") {
        let uri = str_of(file, "fileUri")?;
        let is_image = str_of(file, "mimeType").is_none_or(|m| m.starts_with("image/"));
        if is_image && (uri.starts_with("https://") || uri.starts_with("http://")) {
            return Some(ContentBlock::Image {
                source: ImageSource::Url(uri),
                cache_control: None,
            });
        }
    }
    None
}

/// The text of a `functionResponse.response`, and whether it reports an error.
fn response_text(response: Option<Value>) -> (String, bool) {
    let text_of = |v: Value| match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match response {
        None | Some(Value::Null) => (String::new(), false),
        Some(Value::Object(mut obj)) if obj.len() == 1 => {
            for key in ["output", "result", "content"] {
                if let Some(v) = obj.remove(key) {
                    return (text_of(v), false);
                }
            }
            if let Some(v) = obj.remove("error") {
                return (text_of(v), true);
            }
            (Value::Object(obj).to_string(), false)
        }
        Some(other) => (text_of(other), false),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// How blocks become parts.
pub(super) struct Render<'a> {
    /// Tool-call id → function name, for `functionResponse.name` (requests only).
    pub(super) names: HashMap<&'a str, &'a str>,
    /// Requests carry no call ids and fail on arguments that are not an object; responses carry ids.
    pub(super) request: bool,
}

/// Standard base64 (what Gemini decodes `thoughtSignature` as), so foreign junk is never sent.
fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.len() % 4 == 0
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

fn with_signature(mut part: Value, signature: Option<&str>) -> Value {
    if let (Some(sig), Value::Object(obj)) = (signature, &mut part) {
        obj.entry("thoughtSignature")
            .or_insert_with(|| Value::String(sig.to_string()));
    }
    part
}

fn signature_part(sig: &str) -> Value {
    json!({"text": "", "thoughtSignature": sig})
}

/// Appends the parts of one message's blocks. `path` names the message for errors.
pub(super) fn render_blocks(
    blocks: &[ContentBlock],
    ctx: &Render<'_>,
    path: &str,
    out: &mut Vec<Value>,
) -> Result<(), WireError> {
    // A signature waiting for the part it belongs to.
    let mut pending: Option<&str> = None;
    for (j, block) in blocks.iter().enumerate() {
        let part = match block {
            ContentBlock::Thinking { text, signature } => {
                let signature = signature.as_deref().filter(|s| is_base64(s));
                if text.is_empty() {
                    if let Some(sig) = signature {
                        if let Some(prev) = pending.replace(sig) {
                            out.push(signature_part(prev));
                        }
                    }
                    continue;
                }
                if let Some(prev) = pending.take() {
                    out.push(signature_part(prev));
                }
                let mut v = json!({"text": text, "thought": true});
                if let Some(sig) = signature {
                    v["thoughtSignature"] = Value::String(sig.to_string());
                }
                out.push(v);
                continue;
            }
            ContentBlock::Text(t) if t.text.is_empty() => continue,
            ContentBlock::Text(t) => json!({"text": t.text}),
            ContentBlock::Image { source, .. } => image_part(source),
            ContentBlock::ToolCall(call) => {
                let args = match arguments_object(&call.arguments) {
                    Some(args) => args,
                    None if ctx.request => {
                        return Err(WireError::at(
                            format!("{path}.content[{j}]"),
                            format!("arguments of tool call `{}` are not a JSON object", call.id),
                        ));
                    }
                    None => json!({}),
                };
                let mut fc = json!({"name": call.name, "args": args});
                if !ctx.request {
                    fc["id"] = Value::String(call.id.clone());
                }
                json!({"functionCall": fc})
            }
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                is_error,
                ..
            } => {
                let name = match ctx.names.get(tool_call_id.as_str()) {
                    Some(name) => *name,
                    None if ctx.request => {
                        return Err(WireError::at(
                            format!("{path}.content[{j}]"),
                            format!(
                                "tool result `{tool_call_id}` answers no tool call in this request; \
                                 Gemini matches results to calls by function name"
                            ),
                        ));
                    }
                    None => tool_call_id.as_str(),
                };
                let text = content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::Text(TextPart { text, .. }) => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let parsed = serde_json::from_str::<Value>(&text).ok();
                let response = match (parsed, *is_error) {
                    (Some(v @ Value::Object(_)), false) => v,
                    (Some(v @ Value::Object(_)), true) => json!({"error": v}),
                    (_, false) => json!({"output": text}),
                    (_, true) => json!({"error": text}),
                };
                let mut fr = json!({"name": name, "response": response});
                if !ctx.request {
                    fr["id"] = Value::String(tool_call_id.clone());
                }
                out.push(with_signature(
                    json!({"functionResponse": fr}),
                    pending.take(),
                ));
                // Images a tool returned follow its response as parts of the same turn.
                for b in content {
                    if let ContentBlock::Image { source, .. } = b {
                        out.push(image_part(source));
                    }
                }
                continue;
            }
            ContentBlock::RedactedThinking { .. } => continue,
            ContentBlock::Unknown {
                dialect: DIALECT,
                value,
            } => value.clone(),
            ContentBlock::Unknown { .. } => continue,
        };
        out.push(with_signature(part, pending.take()));
    }
    if let Some(sig) = pending {
        out.push(signature_part(sig));
    }
    Ok(())
}

/// Gemini 3 rejects a model turn whose first function call lacks a signature: history from another
/// dialect gets the documented placeholder.
pub(super) fn ensure_call_signature(parts: &mut [Value]) {
    if let Some(Value::Object(first_call)) =
        parts.iter_mut().find(|p| p.get("functionCall").is_some())
    {
        first_call
            .entry("thoughtSignature")
            .or_insert_with(|| Value::String(SKIP_SIGNATURE.to_string()));
    }
}

fn image_part(source: &ImageSource) -> Value {
    match source {
        ImageSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        ImageSource::Url(url) => {
            if let Some((media_type, data)) = parse_data_url(url) {
                return json!({"inlineData": {"mimeType": media_type, "data": data}});
            }
            json!({"fileData": {"mimeType": guess_image_type(url), "fileUri": url}})
        }
    }
}

/// `data:<mime>;base64,<data>`.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// Gemini wants a MIME type next to a file URI; the URL's extension is all there is to go on.
fn guess_image_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    if path.ends_with(".png") {
        "image/png"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else if path.ends_with(".gif") {
        "image/gif"
    } else if path.ends_with(".heic") {
        "image/heic"
    } else if path.ends_with(".heif") {
        "image/heif"
    } else {
        "image/jpeg"
    }
}

/// Tool-call arguments text as the object Gemini wants: "" means no arguments.
pub(super) fn arguments_object(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}
