//! Non-streamed response bodies.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::usage::{OutUsage, WireUsage};
use crate::canonical::{ContentBlock, FinishReason, Response, ToolCall, WireError};

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    created: Option<u64>,
    choices: Option<Vec<WireChoice>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    index: Option<u64>,
    message: Option<WireMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<Value>,
    reasoning_content: Option<String>,
    /// OpenRouter's name for the reasoning text; a Value because not every upstream makes it a string.
    reasoning: Option<Value>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<Value>,
}

pub(super) fn finish_from_str(s: &str) -> FinishReason {
    match s {
        // OpenAI does not say whether a stop sequence matched, so `stop` is always a natural end.
        "stop" => FinishReason::EndTurn,
        "length" => FinishReason::MaxTokens,
        "tool_calls" | "function_call" => FinishReason::ToolUse,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(super) fn finish_to_str(r: &FinishReason) -> &str {
    match r {
        FinishReason::EndTurn | FinishReason::StopSequence | FinishReason::PauseTurn => "stop",
        FinishReason::MaxTokens => "length",
        FinishReason::ToolUse => "tool_calls",
        FinishReason::ContentFilter | FinishReason::Refusal => "content_filter",
        FinishReason::Other(s) => s,
    }
}

/// Only choice 0 is read: the gateway does not fan out `n > 1` across dialects.
pub fn parse_response(body: &[u8]) -> Result<Response, WireError> {
    let wire: WireResponse = serde_json::from_slice(body)
        .map_err(|e| WireError::new(format!("invalid upstream response: {e}")))?;
    let mut choices = wire.choices.unwrap_or_default();
    let pos = choices
        .iter()
        .position(|c| c.index.unwrap_or(0) == 0)
        .unwrap_or(0);
    let choice = if pos < choices.len() {
        Some(choices.swap_remove(pos))
    } else {
        None
    };
    let mut content = Vec::new();
    let mut finish_reason = None;
    if let Some(choice) = choice {
        finish_reason = choice
            .finish_reason
            .filter(|s| !s.is_empty())
            .map(|s| finish_from_str(&s));
        if let Some(msg) = choice.message {
            let reasoning = msg.reasoning_content.or(match msg.reasoning {
                Some(Value::String(s)) => Some(s),
                _ => None,
            });
            if let Some(text) = reasoning.filter(|r| !r.is_empty()) {
                content.push(ContentBlock::Thinking {
                    text,
                    signature: None,
                });
            }
            match msg.content {
                Some(Value::String(s)) if !s.is_empty() => content.push(ContentBlock::text(s)),
                Some(Value::Array(parts)) => {
                    for part in parts {
                        if let Some(t) = part.get("text").and_then(Value::as_str) {
                            content.push(ContentBlock::text(t));
                        }
                    }
                }
                _ => {}
            }
            if let Some(refusal) = msg.refusal.filter(|r| !r.is_empty()) {
                content.push(ContentBlock::text(refusal));
            }
            for call in msg.tool_calls.unwrap_or_default() {
                let (name, arguments) = match call.function {
                    Some(f) => (
                        f.name.unwrap_or_default(),
                        match f.arguments {
                            Some(Value::String(a)) => a,
                            None | Some(Value::Null) => String::new(),
                            Some(other) => other.to_string(),
                        },
                    ),
                    None => (String::new(), String::new()),
                };
                content.push(ContentBlock::ToolCall(ToolCall {
                    id: call.id.unwrap_or_default(),
                    name,
                    arguments,
                }));
            }
        }
    }
    Ok(Response {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        content,
        finish_reason,
        stop_sequence: None,
        usage: wire.usage.map(|u| u.to_canonical()).unwrap_or_default(),
        created: wire.created,
    })
}

pub fn response_to_json(resp: &Response) -> Value {
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut has_reasoning = false;
    let mut calls = Vec::new();
    for block in &resp.content {
        match block {
            ContentBlock::Text(t) => {
                // Concatenated as a stream of the same response would be.
                text.push_str(&t.text);
                has_text = true;
            }
            ContentBlock::Thinking { text: t, .. } => {
                reasoning.push_str(t);
                has_reasoning = true;
            }
            ContentBlock::ToolCall(c) => calls.push(serde_json::json!({
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })),
            _ => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = if !has_text && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    message.insert("refusal".into(), Value::Null);
    if has_reasoning {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    serde_json::json!({
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created.unwrap_or(0),
        "model": resp.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": resp.finish_reason.as_ref().map(finish_to_str),
        }],
        "usage": serde_json::to_value(OutUsage::from(&resp.usage)).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finish_reasons_both_ways() {
        for (s, r) in [
            ("stop", FinishReason::EndTurn),
            ("length", FinishReason::MaxTokens),
            ("tool_calls", FinishReason::ToolUse),
            ("content_filter", FinishReason::ContentFilter),
            ("weird", FinishReason::Other("weird".into())),
        ] {
            assert_eq!(finish_from_str(s), r);
            assert_eq!(finish_to_str(&r), s);
        }
        assert_eq!(finish_from_str("function_call"), FinishReason::ToolUse);
        assert_eq!(finish_to_str(&FinishReason::Refusal), "content_filter");
        assert_eq!(finish_to_str(&FinishReason::StopSequence), "stop");
        assert_eq!(finish_to_str(&FinishReason::PauseTurn), "stop");
    }

    #[test]
    fn refusal_and_openrouter_reasoning() {
        let body = json!({"id":"x","model":"m","choices":[{"index":0,"message":{
            "role":"assistant","content":null,"refusal":"I can't help with that.",
            "reasoning":"policy"},"finish_reason":"stop"}]});
        let r = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            r.content,
            vec![
                ContentBlock::Thinking {
                    text: "policy".into(),
                    signature: None
                },
                ContentBlock::text("I can't help with that.")
            ]
        );
        assert_eq!(r.usage, Default::default());
        assert_eq!(r.created, None);
        let out = response_to_json(&r);
        assert_eq!(out["created"], 0);
        assert_eq!(out["choices"][0]["message"]["reasoning_content"], "policy");
    }

    #[test]
    fn empty_response_and_bad_json() {
        let r = parse_response(br#"{"id":"x","choices":[]}"#).unwrap();
        assert!(r.content.is_empty());
        assert!(parse_response(b"{").is_err());
        let out = response_to_json(&r);
        assert_eq!(out["choices"][0]["message"]["content"], "");
        assert!(out["choices"][0]["finish_reason"].is_null());
    }
}
