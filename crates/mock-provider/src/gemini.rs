//! Google Gemini native dialect (`generateContent` / `streamGenerateContent`), hand-written.

use serde_json::{Value, json};

use crate::plan::{
    Analysis, CACHE_READ_TOKENS, GEMINI_THOUGHT_SIGNATURE, Plan, THINKING_TEXT, THINKING_TOKENS,
    word_chunks, word_count,
};
use crate::sse::Frame;

/// `camelCase` field, or its `snake_case` twin (the proto JSON mapping accepts both).
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

fn parts(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Plain (non-thought) text parts joined by a space.
fn parts_text(content: &Value) -> String {
    parts(content)
        .iter()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text of a functionResponse: its `output` / `result` field if present (strings as-is,
/// anything else as compact JSON), else the whole `response` as compact JSON.
fn function_response_text(fr: &Value) -> String {
    let Some(response) = fr.get("response") else {
        return String::new();
    };
    let inner = response.get("output").or_else(|| response.get("result"));
    match inner.unwrap_or(response) {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn function_responses(content: &Value) -> Vec<String> {
    parts(content)
        .iter()
        .filter_map(|p| field(p, "functionResponse", "function_response"))
        .map(function_response_text)
        .collect()
}

fn content_words(content: &Value) -> usize {
    word_count(&parts_text(content))
        + function_responses(content)
            .iter()
            .map(|t| word_count(t))
            .sum::<usize>()
}

/// `model` comes from the URL path; `stream` from the action (`streamGenerateContent`).
pub fn analyze(body: &Value, model: &str, stream: bool) -> Analysis {
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let system_words =
        field(body, "systemInstruction", "system_instruction").map_or(0, content_words);
    let input_words = system_words + contents.iter().map(content_words).sum::<usize>();

    // The last turn not written by the model ("user", or the legacy "function" role).
    let last_user = contents
        .iter()
        .rev()
        .find(|c| c.get("role").and_then(Value::as_str) != Some("model"));
    let results = last_user.map(function_responses).unwrap_or_default();
    let tool_results = if results.is_empty() {
        None
    } else {
        Some(results)
    };

    let tools: Vec<(String, Value)> = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| field(t, "functionDeclarations", "function_declarations"))
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(|d| {
                    let name = d.get("name")?.as_str()?.to_string();
                    let schema = d
                        .get("parameters")
                        .or_else(|| field(d, "parametersJsonSchema", "parameters_json_schema"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    Some((name, schema))
                })
                .collect()
        })
        .unwrap_or_default();

    let calling = field(body, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"));
    let mode = calling
        .and_then(|c| c.get("mode"))
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase);
    let forced_tool = if mode.as_deref() == Some("ANY") {
        calling
            .and_then(|c| field(c, "allowedFunctionNames", "allowed_function_names"))
            .and_then(Value::as_array)
            .and_then(|names| names.first())
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    };

    let wants_thinking = field(body, "generationConfig", "generation_config")
        .and_then(|g| field(g, "thinkingConfig", "thinking_config"))
        .and_then(|t| field(t, "includeThoughts", "include_thoughts"))
        .and_then(Value::as_bool)
        == Some(true);

    Analysis {
        model: model.to_string(),
        tools,
        forced_tool,
        tool_choice_none: mode.as_deref() == Some("NONE"),
        tool_results,
        last_user_text: last_user.map(parts_text).unwrap_or_default(),
        input_words,
        wants_thinking,
        stream,
        include_usage: true,
    }
}

/// Thought tokens are reported apart from candidate tokens; the total covers both.
fn usage(plan: &Plan) -> Value {
    let thoughts = if plan.thinking { THINKING_TOKENS } else { 0 };
    let mut u = json!({
        "promptTokenCount": plan.input_tokens,
        "candidatesTokenCount": plan.output_tokens - thoughts,
        "totalTokenCount": plan.input_tokens + plan.output_tokens,
        "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": plan.input_tokens }]
    });
    if let Some(o) = u.as_object_mut() {
        if plan.thinking {
            o.insert("thoughtsTokenCount".into(), json!(thoughts));
        }
        if plan.cache {
            o.insert("cachedContentTokenCount".into(), json!(CACHE_READ_TOKENS));
        }
    }
    u
}

fn thought_part() -> Value {
    json!({ "text": THINKING_TEXT, "thought": true })
}

fn call_parts(plan: &Plan) -> Vec<Value> {
    plan.tool_calls
        .iter()
        .map(|call| {
            let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            let mut part = json!({ "functionCall": { "name": call.name, "args": args } });
            if plan.thinking && call.n == 1 {
                if let Some(o) = part.as_object_mut() {
                    o.insert("thoughtSignature".into(), json!(GEMINI_THOUGHT_SIGNATURE));
                }
            }
            part
        })
        .collect()
}

/// One GenerateContentResponse; `last` adds finishReason and usageMetadata.
fn chunk(plan: &Plan, id: &str, parts: Vec<Value>, last: bool) -> Value {
    let mut candidate = json!({
        "content": { "role": "model", "parts": parts },
        "index": 0
    });
    let mut out = json!({ "candidates": [], "modelVersion": plan.model, "responseId": id });
    if last {
        if let Some(c) = candidate.as_object_mut() {
            c.insert("finishReason".into(), json!("STOP"));
        }
        if plan.usage {
            if let Some(o) = out.as_object_mut() {
                o.insert("usageMetadata".into(), usage(plan));
            }
        }
    }
    out["candidates"] = json!([candidate]);
    out
}

pub fn response(plan: &Plan, id: &str) -> Value {
    let mut parts = Vec::new();
    if plan.thinking {
        parts.push(thought_part());
    }
    if let Some(text) = &plan.text {
        parts.push(json!({ "text": text }));
    }
    parts.extend(call_parts(plan));
    chunk(plan, id, parts, true)
}

/// Stream chunks: the thought whole, one per word of text, then all function calls in one;
/// the last chunk also carries finishReason and usageMetadata.
pub fn stream_chunks(plan: &Plan, id: &str) -> Vec<Value> {
    let mut groups: Vec<Vec<Value>> = Vec::new();
    if plan.thinking {
        groups.push(vec![thought_part()]);
    }
    if let Some(text) = &plan.text {
        for piece in word_chunks(text) {
            groups.push(vec![json!({ "text": piece })]);
        }
    }
    let calls = call_parts(plan);
    if !calls.is_empty() {
        groups.push(calls);
    }
    if groups.is_empty() {
        groups.push(vec![json!({ "text": "" })]);
    }
    let n = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, parts)| chunk(plan, id, parts, i + 1 == n))
        .collect()
}

/// `?alt=sse` framing: `data: {...}` events, no event names, no terminal sentinel.
pub fn stream_frames(plan: &Plan, id: &str) -> Vec<Frame> {
    let chunks = stream_chunks(plan, id);
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let text = format!("data: {c}\n\n");
            if i + 1 == n {
                Frame::terminal(text)
            } else {
                Frame::body(text)
            }
        })
        .collect()
}

/// The malformed frame inserted with the `malformed` scenario.
pub fn malformed_frame() -> Frame {
    Frame::body("data: {not json\n\n".to_string())
}

/// google.rpc status name for an HTTP status, as the Gemini REST API reports it.
fn error_status(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        400..=499 => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    }
}

pub fn error_body(status: u16, message: &str) -> Value {
    json!({
        "error": { "code": status, "message": message, "status": error_status(status) }
    })
}
