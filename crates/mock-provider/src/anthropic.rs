//! Anthropic Messages dialect, hand-written.

use serde_json::{Value, json};

use crate::plan::{
    Analysis, CACHE_CREATION_TOKENS, CACHE_READ_TOKENS, Plan, THINKING_SIGNATURE, THINKING_TEXT,
    content_text, fragments, word_chunks, word_count,
};
use crate::sse::Frame;

/// Text of a tool_result block's content (string or text blocks).
fn tool_result_text(block: &Value) -> String {
    block.get("content").map(content_text).unwrap_or_default()
}

/// Words of every text in a message's content: strings, text blocks and tool_result texts.
fn content_words(content: &Value) -> usize {
    match content {
        Value::String(s) => word_count(s),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => b.get("text").and_then(Value::as_str).map_or(0, word_count),
                Some("tool_result") => word_count(&tool_result_text(b)),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

pub fn analyze(body: &Value) -> Analysis {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let system_words = body.get("system").map_or(0, content_words);
    let input_words = system_words
        + messages
            .iter()
            .map(|m| m.get("content").map_or(0, content_words))
            .sum::<usize>();

    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    let last_user_content = last_user.and_then(|m| m.get("content"));

    let results: Vec<String> = last_user_content
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .map(tool_result_text)
                .collect()
        })
        .unwrap_or_default();
    let tool_results = if results.is_empty() {
        None
    } else {
        Some(results)
    };

    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    let name = t.get("name")?.as_str()?.to_string();
                    Some((name, t.get("input_schema").cloned().unwrap_or(Value::Null)))
                })
                .collect()
        })
        .unwrap_or_default();

    let tool_choice = body.get("tool_choice");
    let choice_type = tool_choice
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str);
    let forced_tool = if choice_type == Some("tool") {
        tool_choice
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    };

    Analysis {
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        tools,
        forced_tool,
        tool_choice_none: choice_type == Some("none"),
        tool_results,
        last_user_text: last_user_content.map(content_text).unwrap_or_default(),
        input_words,
        wants_thinking: body
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            == Some("enabled"),
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: false,
    }
}

fn usage(plan: &Plan, output_tokens: u64) -> Value {
    let (creation, read) = if plan.cache {
        (CACHE_CREATION_TOKENS, CACHE_READ_TOKENS)
    } else {
        (0, 0)
    };
    json!({
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "output_tokens": output_tokens
    })
}

fn stop_reason(plan: &Plan) -> &'static str {
    if plan.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

fn tool_id(n: usize) -> String {
    format!("toolu_mock_{n}")
}

pub fn response(plan: &Plan, id: &str) -> Value {
    let mut content = Vec::new();
    if plan.thinking {
        content.push(json!({
            "type": "thinking",
            "thinking": THINKING_TEXT,
            "signature": THINKING_SIGNATURE
        }));
    }
    if let Some(text) = &plan.text {
        content.push(json!({ "type": "text", "text": text }));
    }
    for call in &plan.tool_calls {
        let input: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({
            "type": "tool_use",
            "id": tool_id(call.n),
            "name": call.name,
            "input": input
        }));
    }
    let mut out = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": stop_reason(plan),
        "stop_sequence": null
    });
    if plan.usage {
        if let Some(o) = out.as_object_mut() {
            o.insert("usage".into(), usage(plan, plan.output_tokens));
        }
    }
    out
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

pub fn stream_frames(plan: &Plan, id: &str) -> Vec<Frame> {
    let mut message = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null
    });
    if plan.usage {
        if let Some(o) = message.as_object_mut() {
            o.insert("usage".into(), usage(plan, 1));
        }
    }
    let mut frames = vec![Frame::body(event(
        "message_start",
        &json!({ "type": "message_start", "message": message }),
    ))];
    let mut index = 0usize;
    let mut pinged = false;
    let mut start_block = |frames: &mut Vec<Frame>, index: usize, block: Value| {
        frames.push(Frame::body(event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": index, "content_block": block }),
        )));
        if !pinged {
            pinged = true;
            frames.push(Frame::body(event("ping", &json!({ "type": "ping" }))));
        }
    };
    let delta = |index: usize, d: Value| {
        Frame::body(event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": index, "delta": d }),
        ))
    };
    let stop = |index: usize| {
        Frame::body(event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": index }),
        ))
    };

    if plan.thinking {
        start_block(
            &mut frames,
            index,
            json!({ "type": "thinking", "thinking": "" }),
        );
        for piece in word_chunks(THINKING_TEXT) {
            frames.push(delta(
                index,
                json!({ "type": "thinking_delta", "thinking": piece }),
            ));
        }
        frames.push(delta(
            index,
            json!({ "type": "signature_delta", "signature": THINKING_SIGNATURE }),
        ));
        frames.push(stop(index));
        index += 1;
    }
    if let Some(text) = &plan.text {
        start_block(&mut frames, index, json!({ "type": "text", "text": "" }));
        for piece in word_chunks(text) {
            frames.push(delta(index, json!({ "type": "text_delta", "text": piece })));
        }
        frames.push(stop(index));
        index += 1;
    }
    for call in &plan.tool_calls {
        start_block(
            &mut frames,
            index,
            json!({ "type": "tool_use", "id": tool_id(call.n), "name": call.name, "input": {} }),
        );
        for frag in fragments(&call.arguments) {
            frames.push(delta(
                index,
                json!({ "type": "input_json_delta", "partial_json": frag }),
            ));
        }
        frames.push(stop(index));
        index += 1;
    }

    let mut md = json!({
        "type": "message_delta",
        "delta": { "stop_reason": stop_reason(plan), "stop_sequence": null }
    });
    if plan.usage {
        if let Some(o) = md.as_object_mut() {
            o.insert(
                "usage".into(),
                json!({ "output_tokens": plan.output_tokens }),
            );
        }
    }
    frames.push(Frame::terminal(event("message_delta", &md)));
    frames.push(Frame::terminal(event(
        "message_stop",
        &json!({ "type": "message_stop" }),
    )));
    frames
}

/// The malformed frame inserted with the `malformed` scenario.
pub fn malformed_frame() -> Frame {
    Frame::body("event: content_block_delta\ndata: {not json\n\n".to_string())
}

fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

pub fn error_body(status: u16, message: &str) -> Value {
    json!({
        "type": "error",
        "error": { "type": error_type(status), "message": message }
    })
}
