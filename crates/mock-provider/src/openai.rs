//! OpenAI Chat Completions dialect, hand-written.

use serde_json::{Map, Value, json};

use crate::plan::{
    Analysis, CACHE_READ_TOKENS, Plan, THINKING_TEXT, THINKING_TOKENS, content_text, fragments,
    word_chunks, word_count,
};
use crate::sse::Frame;

pub fn analyze(body: &Value) -> Analysis {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };

    let input_words = messages
        .iter()
        .map(|m| {
            m.get("content")
                .map(content_text)
                .map_or(0, |t| word_count(&t))
        })
        .sum();

    let trailing: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| role(m) == "tool")
        .map(|m| m.get("content").map(content_text).unwrap_or_default())
        .collect();
    let tool_results = if trailing.is_empty() {
        None
    } else {
        Some(trailing.into_iter().rev().collect())
    };

    let last_user_text = messages
        .iter()
        .rev()
        .find(|m| role(m) == "user")
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default();

    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    let name = f.get("name")?.as_str()?.to_string();
                    Some((name, f.get("parameters").cloned().unwrap_or(Value::Null)))
                })
                .collect()
        })
        .unwrap_or_default();

    let tool_choice = body.get("tool_choice");
    let tool_choice_none = tool_choice.and_then(Value::as_str) == Some("none");
    let forced_tool = tool_choice
        .and_then(|c| c.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);

    Analysis {
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        tools,
        forced_tool,
        tool_choice_none,
        tool_results,
        last_user_text,
        input_words,
        wants_thinking: body.get("reasoning_effort").is_some_and(|v| !v.is_null()),
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true),
    }
}

fn usage(plan: &Plan) -> Value {
    json!({
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": if plan.cache { CACHE_READ_TOKENS } else { 0 },
            "audio_tokens": 0
        },
        "completion_tokens_details": {
            "reasoning_tokens": if plan.thinking { THINKING_TOKENS } else { 0 },
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

fn finish_reason(plan: &Plan) -> &'static str {
    if plan.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

fn call_id(n: usize) -> String {
    format!("call_mock_{n}")
}

pub fn response(plan: &Plan, id: &str, created: u64) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        plan.text.as_ref().map_or(Value::Null, |t| json!(t)),
    );
    message.insert("refusal".into(), Value::Null);
    message.insert("annotations".into(), json!([]));
    if plan.thinking {
        message.insert("reasoning_content".into(), json!(THINKING_TEXT));
    }
    if !plan.tool_calls.is_empty() {
        let calls: Vec<Value> = plan
            .tool_calls
            .iter()
            .map(|c| {
                json!({
                    "id": call_id(c.n),
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments }
                })
            })
            .collect();
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": plan.model,
        "choices": [{
            "index": 0,
            "message": Value::Object(message),
            "logprobs": null,
            "finish_reason": finish_reason(plan)
        }],
        "service_tier": "default",
        "system_fingerprint": "fp_mock"
    });
    if plan.usage {
        if let Some(o) = out.as_object_mut() {
            o.insert("usage".into(), usage(plan));
        }
    }
    out
}

pub fn stream_frames(plan: &Plan, id: &str, created: u64) -> Vec<Frame> {
    let with_usage = plan.include_usage && plan.usage;
    let chunk = |delta: Value, finish: Option<&str>| -> String {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]
        });
        if with_usage {
            if let Some(o) = c.as_object_mut() {
                o.insert("usage".into(), Value::Null);
            }
        }
        data(&c)
    };
    let mut frames = vec![Frame::body(chunk(
        json!({ "role": "assistant", "content": "", "refusal": null }),
        None,
    ))];
    if plan.thinking {
        for piece in word_chunks(THINKING_TEXT) {
            frames.push(Frame::body(chunk(
                json!({ "reasoning_content": piece }),
                None,
            )));
        }
    }
    if let Some(text) = &plan.text {
        for piece in word_chunks(text) {
            frames.push(Frame::body(chunk(json!({ "content": piece }), None)));
        }
    }
    for (index, call) in plan.tool_calls.iter().enumerate() {
        frames.push(Frame::body(chunk(
            json!({ "tool_calls": [{
                "index": index,
                "id": call_id(call.n),
                "type": "function",
                "function": { "name": call.name, "arguments": "" }
            }]}),
            None,
        )));
        for frag in fragments(&call.arguments) {
            frames.push(Frame::body(chunk(
                json!({ "tool_calls": [{ "index": index, "function": { "arguments": frag } }] }),
                None,
            )));
        }
    }
    frames.push(Frame::terminal(chunk(json!({}), Some(finish_reason(plan)))));
    if with_usage {
        let u = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": usage(plan)
        });
        frames.push(Frame::terminal(data(&u)));
    }
    frames.push(Frame::terminal("data: [DONE]\n\n".to_string()));
    frames
}

/// The malformed frame inserted with the `malformed` scenario.
pub fn malformed_frame() -> Frame {
    Frame::body("data: {not json\n\n".to_string())
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// (type, code) for an error status.
fn error_kind(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

pub fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = error_kind(status);
    json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    })
}
