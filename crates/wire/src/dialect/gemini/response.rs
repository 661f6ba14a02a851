//! `GenerateContentResponse` ↔ canonical `Response`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::parts::{CallIds, Render, parse_parts, render_blocks};
use super::{UsageIn, UsageOut, finish_reason_from_str, finish_reason_str};
use crate::canonical::{ContentBlock, FinishReason, Response, WireError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseIn {
    #[serde(default)]
    candidates: Vec<CandidateIn>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedbackIn>,
    #[serde(default)]
    usage_metadata: Option<UsageIn>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    model_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateIn {
    #[serde(default)]
    content: Option<ContentIn>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ContentIn {
    #[serde(default)]
    parts: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedbackIn {
    #[serde(default)]
    pub(super) block_reason: Option<String>,
}

/// Parses a non-streamed `generateContent` response. Only the first candidate is read.
pub fn parse_response(body: &[u8]) -> Result<Response, WireError> {
    let r: ResponseIn = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    let mut content = Vec::new();
    let mut finish_reason = None;
    let blocked = r.prompt_feedback.and_then(|f| f.block_reason);
    match r.candidates.into_iter().next() {
        Some(candidate) => {
            if let Some(c) = candidate.content {
                parse_parts(
                    c.parts,
                    "candidates[0].content.parts",
                    &mut CallIds::default(),
                    &mut content,
                )?;
            }
            let called = content
                .iter()
                .any(|b| matches!(b, ContentBlock::ToolCall(_)));
            finish_reason = candidate
                .finish_reason
                .as_deref()
                .map(|s| finish_reason_from_str(s, called));
        }
        // The prompt itself was blocked: no candidates at all.
        None if blocked.is_some() => finish_reason = Some(FinishReason::ContentFilter),
        None => {}
    }
    Ok(Response {
        id: r.response_id.unwrap_or_default(),
        model: r.model_version.unwrap_or_default(),
        content,
        finish_reason,
        stop_sequence: None,
        usage: r.usage_metadata.unwrap_or_default().to_canonical(),
        created: None,
    })
}

/// Renders a canonical response as a Gemini `GenerateContentResponse`.
pub fn response_to_json(resp: &Response) -> Value {
    let ctx = Render {
        names: HashMap::new(),
        request: false,
    };
    let mut parts = Vec::with_capacity(resp.content.len());
    // Responses never fail to render: invalid tool arguments become `{}`.
    if render_blocks(&resp.content, &ctx, "content", &mut parts).is_err() {
        parts.clear();
    }
    let mut candidate = json!({
        "content": {"parts": parts, "role": "model"},
        "index": 0,
    });
    if let Some(reason) = &resp.finish_reason {
        candidate["finishReason"] = Value::String(finish_reason_str(reason).to_string());
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": UsageOut::from_canonical(&resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    })
}
