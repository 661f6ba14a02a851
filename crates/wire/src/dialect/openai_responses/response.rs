//! Non-streamed response objects, usage, and the cheap readers a passthrough relay uses.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::tools::{self, ClientTool, ToolMap};
use super::{DIALECT, Reply};
use crate::canonical::{ContentBlock, FinishReason, Response, ToolCall, Usage, WireError};

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// `usage` as OpenAI sends it on a response. Counters are optional for compatible upstreams.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<InputDetails>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct OutputDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// Already the canonical meaning: input includes cached, output includes reasoning.
    pub(super) fn to_canonical(&self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: self
                .input_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: self
                .output_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// `usage` as the gateway sends it to Responses clients.
#[derive(Debug, Serialize)]
pub(super) struct OutUsage {
    input_tokens: u64,
    input_tokens_details: OutInputDetails,
    output_tokens: u64,
    output_tokens_details: OutOutputDetails,
    total_tokens: u64,
}

#[derive(Debug, Serialize)]
struct OutInputDetails {
    cached_tokens: u64,
}

#[derive(Debug, Serialize)]
struct OutOutputDetails {
    reasoning_tokens: u64,
}

impl From<&Usage> for OutUsage {
    fn from(u: &Usage) -> Self {
        OutUsage {
            input_tokens: u.input_tokens,
            input_tokens_details: OutInputDetails {
                cached_tokens: u.cache_read_tokens,
            },
            output_tokens: u.output_tokens,
            output_tokens_details: OutOutputDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
            total_tokens: u.input_tokens.saturating_add(u.output_tokens),
        }
    }
}

pub(super) fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(OutUsage::from(u)).unwrap_or(Value::Null)
}

/// Usage of a non-streamed response, reading nothing else into memory.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct UsageOnly {
        usage: Option<WireUsage>,
    }
    let parsed: UsageOnly = serde_json::from_slice(body).ok()?;
    parsed.usage.map(|u| u.to_canonical())
}

const TERMINAL: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// The event's type when it may be terminal: the `event:` name when given, else a substring test
/// of the data before anything is parsed (delta events never match).
fn terminal_candidate(event: Option<&str>, data: &str) -> bool {
    match event {
        Some(name) => TERMINAL.contains(&name),
        None => TERMINAL.iter().any(|t| data.contains(t)),
    }
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// True for `response.completed`, `response.incomplete` and `response.failed`.
pub fn is_terminal_event(event: Option<&str>, data: &str) -> bool {
    if !terminal_candidate(event, data) {
        return false;
    }
    if event.is_some() {
        return true;
    }
    serde_json::from_str::<TypeOnly<'_>>(data)
        .ok()
        .and_then(|t| t.kind)
        .is_some_and(|k| TERMINAL.contains(&k.as_ref()))
}

/// Usage carried by a terminal event (`response.completed` / `.incomplete` / `.failed`).
pub fn usage_from_event(event: Option<&str>, data: &str) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Terminal<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
        response: Option<UsageHolder>,
    }
    #[derive(Deserialize)]
    struct UsageHolder {
        usage: Option<WireUsage>,
        #[serde(rename = "output")]
        _output: Option<IgnoredAny>,
    }
    if !terminal_candidate(event, data) {
        return None;
    }
    let parsed: Terminal<'_> = serde_json::from_str(data).ok()?;
    let kind = parsed.kind.as_deref().or(event)?;
    if !TERMINAL.contains(&kind) {
        return None;
    }
    parsed.response?.usage.map(|u| u.to_canonical())
}

// ---------------------------------------------------------------------------------------------
// Status and ids
// ---------------------------------------------------------------------------------------------

/// `(status, incomplete_details.reason)` for a finish reason.
pub(super) fn status_of(reason: Option<&FinishReason>) -> (&str, Option<&'static str>) {
    match reason {
        Some(FinishReason::MaxTokens) => ("incomplete", Some("max_output_tokens")),
        Some(FinishReason::ContentFilter | FinishReason::Refusal) => {
            ("incomplete", Some("content_filter"))
        }
        Some(FinishReason::Other(s)) if matches!(s.as_str(), "failed" | "cancelled") => {
            (s.as_str(), None)
        }
        _ => ("completed", None),
    }
}

/// The finish reason a response's status means; `has_calls` tells a tool turn from an end of turn.
pub(super) fn finish_of(
    status: Option<&str>,
    incomplete_reason: Option<&str>,
    has_calls: bool,
) -> Option<FinishReason> {
    match status {
        Some("incomplete") => Some(match incomplete_reason {
            Some("content_filter") => FinishReason::ContentFilter,
            Some("max_output_tokens") | None => FinishReason::MaxTokens,
            Some(other) => FinishReason::Other(other.to_string()),
        }),
        Some("failed") | Some("cancelled") => status.map(|s| FinishReason::Other(s.to_string())),
        Some("completed") | None if has_calls => Some(FinishReason::ToolUse),
        Some("completed") => Some(FinishReason::EndTurn),
        _ => None,
    }
}

/// A Responses id: the canonical id when it already is one, else `resp_<id>`.
pub(super) fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_string()
    } else {
        format!("resp_{id}")
    }
}

/// An item id derived from the response id (`msg_<base>_<n>`), stable for the same response.
pub(super) fn item_id(prefix: &str, resp_id: &str, n: usize) -> String {
    let base = resp_id.strip_prefix("resp_").unwrap_or(resp_id);
    format!("{prefix}_{base}_{n}")
}

// ---------------------------------------------------------------------------------------------
// Output items
// ---------------------------------------------------------------------------------------------

pub(super) fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn message_item(id: &str, status: &str, parts: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": parts})
}

pub(super) fn function_call_item(id: &str, status: &str, call: &ToolCall) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "arguments": call.arguments,
        "call_id": call.id,
        "name": call.name,
    })
}

/// A call of a tool the client declared as `custom` or inside a `namespace`, in that shape.
pub(super) fn client_call_item(
    id: &str,
    status: &str,
    call: &ToolCall,
    tool: &ClientTool,
) -> Value {
    if tool.custom {
        return custom_call_item(id, &call.id, tool, &tools::custom_input(&call.arguments));
    }
    let mut item = function_call_item(id, status, call);
    item["name"] = Value::String(tool.name.clone());
    if let Some(ns) = &tool.namespace {
        item["namespace"] = Value::String(ns.clone());
    }
    item
}

/// A `custom_tool_call` output item (it has no `status`).
pub(super) fn custom_call_item(id: &str, call_id: &str, tool: &ClientTool, input: &str) -> Value {
    let mut item = json!({
        "id": id,
        "type": "custom_tool_call",
        "call_id": call_id,
        "name": tool.name,
        "input": input,
    });
    if let Some(ns) = &tool.namespace {
        item["namespace"] = Value::String(ns.clone());
    }
    item
}

/// The output item id of a call: `ctc_…` for custom tools, `fc_…` for functions.
pub(super) fn call_item_id(call_id: &str, tool: Option<&ClientTool>) -> String {
    match tool {
        Some(t) if t.custom => format!("ctc_{call_id}"),
        _ => format!("fc_{call_id}"),
    }
}

pub(super) fn reasoning_item(id: &str, summary: &str) -> Value {
    let summary = if summary.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "summary_text", "text": summary})]
    };
    json!({"id": id, "type": "reasoning", "summary": summary})
}

/// The output items of a canonical response.
fn output_items(resp: &Response, rid: &str, tools: &ToolMap) -> Vec<Value> {
    let mut items = Vec::new();
    let mut parts: Vec<Value> = Vec::new();
    let flush = |parts: &mut Vec<Value>, items: &mut Vec<Value>| {
        if !parts.is_empty() {
            let id = item_id("msg", rid, items.len());
            items.push(message_item(&id, "completed", std::mem::take(parts)));
        }
    };
    let mut blocks = resp.content.iter().peekable();
    while let Some(block) = blocks.next() {
        match block {
            ContentBlock::Text(t) => parts.push(output_text_part(&t.text)),
            ContentBlock::Thinking { text, .. } => {
                flush(&mut parts, &mut items);
                // The original reasoning item (with its id and encrypted content) when there is one.
                let companion = blocks.next_if(|b| {
                    matches!(b, ContentBlock::Unknown { dialect: DIALECT, value }
                        if value.get("type").and_then(Value::as_str) == Some("reasoning"))
                });
                match companion {
                    Some(ContentBlock::Unknown { value, .. }) => items.push(value.clone()),
                    // Only a signature (Gemini's, Anthropic's): nothing a Responses client can use.
                    _ if text.is_empty() => {}
                    _ => {
                        let id = item_id("rs", rid, items.len());
                        items.push(reasoning_item(&id, text));
                    }
                }
            }
            ContentBlock::ToolCall(c) => {
                flush(&mut parts, &mut items);
                let tool = tools.get(&c.name);
                let id = call_item_id(&c.id, tool);
                items.push(match tool {
                    Some(t) => client_call_item(&id, "completed", c, t),
                    None => function_call_item(&id, "completed", c),
                });
            }
            ContentBlock::Unknown {
                dialect: DIALECT,
                value,
            } => {
                if value
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(super::is_content_part_type)
                {
                    parts.push(value.clone());
                } else {
                    flush(&mut parts, &mut items);
                    items.push(value.clone());
                }
            }
            _ => {}
        }
    }
    flush(&mut parts, &mut items);
    items
}

/// What a `response` object says besides its output and usage.
pub(super) struct Head<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
    pub status: &'a str,
    pub incomplete_reason: Option<&'a str>,
    pub error: Value,
    pub store: bool,
    pub previous_response_id: Option<&'a str>,
}

/// A full `response` object around `output`, with the defaults clients expect.
pub(super) fn response_object(head: Head<'_>, output: Vec<Value>, usage: Option<&Usage>) -> Value {
    json!({
        "id": head.id,
        "object": "response",
        "created_at": head.created_at,
        "status": head.status,
        "background": false,
        "error": head.error,
        "incomplete_details": head.incomplete_reason.map(|r| json!({"reason": r})),
        "instructions": null,
        "max_output_tokens": null,
        "model": head.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": head.previous_response_id,
        "reasoning": {"effort": null, "summary": null},
        "store": head.store,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage.map(usage_json),
        "user": null,
        "metadata": {},
    })
}

pub fn response_to_json(resp: &Response) -> Value {
    response_to_json_for(resp, &Reply::default())
}

/// The response for a client whose request is described by `reply`: calls of its custom and
/// namespaced tools in the shape it declared them, the id and `store` the gateway chose.
pub fn response_to_json_for(resp: &Response, reply: &Reply) -> Value {
    let id = match &reply.id {
        Some(id) => id.clone(),
        None => response_id(&resp.id),
    };
    let (status, reason) = status_of(resp.finish_reason.as_ref());
    let output = output_items(resp, &id, &reply.tools);
    response_object(
        Head {
            id: &id,
            created_at: resp.created.unwrap_or(0),
            model: &resp.model,
            status,
            incomplete_reason: reason,
            error: Value::Null,
            store: reply.store,
            previous_response_id: reply.previous_response_id.as_deref(),
        },
        output,
        Some(&resp.usage),
    )
}

// ---------------------------------------------------------------------------------------------
// Responses → canonical
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    created_at: Option<f64>,
    status: Option<String>,
    incomplete_details: Option<Value>,
    output: Option<Vec<Value>>,
    usage: Option<WireUsage>,
}

/// The canonical blocks of one output item.
pub(super) fn item_blocks(item: &Value, out: &mut Vec<ContentBlock>) {
    let Some(obj) = item.as_object() else {
        return;
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("message") => {
            if let Some(Value::Array(parts)) = obj.get("content") {
                for part in parts {
                    let text = match part.get("type").and_then(Value::as_str) {
                        Some("output_text") => part.get("text"),
                        Some("refusal") => part.get("refusal"),
                        _ => {
                            out.push(ContentBlock::Unknown {
                                dialect: DIALECT,
                                value: part.clone(),
                            });
                            continue;
                        }
                    };
                    out.push(ContentBlock::text(
                        text.and_then(Value::as_str).unwrap_or_default(),
                    ));
                }
            }
        }
        Some(kind @ ("function_call" | "custom_tool_call")) => {
            let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
            let namespace = obj.get("namespace").and_then(Value::as_str);
            let arguments = if kind == "custom_tool_call" {
                tools::custom_arguments(s("input"))
            } else {
                s("arguments").to_string()
            };
            out.push(ContentBlock::ToolCall(ToolCall {
                id: s("call_id").to_string(),
                name: tools::flat_name(namespace, s("name")),
                arguments,
            }));
        }
        Some("reasoning") => {
            out.push(ContentBlock::Thinking {
                text: reasoning_text(obj),
                signature: None,
            });
            out.push(ContentBlock::Unknown {
                dialect: DIALECT,
                value: item.clone(),
            });
        }
        _ => out.push(ContentBlock::Unknown {
            dialect: DIALECT,
            value: item.clone(),
        }),
    }
}

/// Summary texts joined by newlines, or the raw reasoning text when there is no summary.
pub(super) fn reasoning_text(obj: &Map<String, Value>) -> String {
    let texts = |key: &str| -> Vec<&str> {
        match obj.get(key) {
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => Vec::new(),
        }
    };
    let summary = texts("summary");
    if summary.is_empty() {
        texts("content").join("\n")
    } else {
        summary.join("\n")
    }
}

pub fn parse_response(body: &[u8]) -> Result<Response, WireError> {
    let wire: WireResponse = serde_json::from_slice(body)
        .map_err(|e| WireError::new(format!("invalid upstream response: {e}")))?;
    let mut content = Vec::new();
    let mut has_calls = false;
    for item in wire.output.iter().flatten() {
        has_calls |= matches!(
            item.get("type").and_then(Value::as_str),
            Some("function_call" | "custom_tool_call")
        );
        item_blocks(item, &mut content);
    }
    let reason = wire
        .incomplete_details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str);
    Ok(Response {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        content,
        finish_reason: finish_of(wire.status.as_deref(), reason, has_calls),
        stop_sequence: None,
        usage: wire.usage.map(|u| u.to_canonical()).unwrap_or_default(),
        created: wire
            .created_at
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| t as u64),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn status_and_finish_both_ways() {
        for (reason, status, detail) in [
            (FinishReason::EndTurn, "completed", None),
            (FinishReason::ToolUse, "completed", None),
            (
                FinishReason::MaxTokens,
                "incomplete",
                Some("max_output_tokens"),
            ),
            (
                FinishReason::ContentFilter,
                "incomplete",
                Some("content_filter"),
            ),
        ] {
            assert_eq!(status_of(Some(&reason)), (status, detail));
            let has_calls = reason == FinishReason::ToolUse;
            assert_eq!(finish_of(Some(status), detail, has_calls), Some(reason));
        }
        assert_eq!(
            status_of(Some(&FinishReason::Refusal)),
            ("incomplete", Some("content_filter"))
        );
        assert_eq!(status_of(None), ("completed", None));
        assert_eq!(finish_of(Some("in_progress"), None, false), None);
    }

    #[test]
    fn ids() {
        assert_eq!(response_id("resp_abc"), "resp_abc");
        assert_eq!(response_id("msg_01X"), "resp_msg_01X");
        assert_eq!(item_id("msg", "resp_abc", 2), "msg_abc_2");
    }

    #[test]
    fn terminal_events_and_usage() {
        let done = r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","output":[],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":13}}}"#;
        let want = Usage {
            input_tokens: 10,
            output_tokens: 3,
            cache_read_tokens: 4,
            cache_write_tokens: 0,
            reasoning_tokens: 1,
        };
        assert_eq!(usage_from_event(None, done), Some(want));
        assert_eq!(
            usage_from_event(Some("response.completed"), done),
            Some(want)
        );
        assert!(is_terminal_event(None, done));
        assert!(is_terminal_event(Some("response.failed"), "{}"));
        let delta = r#"{"type":"response.output_text.delta","delta":"response.completed"}"#;
        assert!(!is_terminal_event(None, delta));
        assert_eq!(usage_from_event(None, delta), None);
        assert!(!is_terminal_event(
            Some("response.output_text.delta"),
            delta
        ));
        assert_eq!(usage_from_event(Some("response.created"), done), None);
        assert_eq!(usage_from_event(None, "not json response.completed"), None);
    }
}
