//! OpenAI's usage object, and the cheap readers a passthrough relay uses for accounting.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::canonical::Usage;

/// `usage` as OpenAI and compatible upstreams send it. Every counter is optional because
/// compatible upstreams omit or null the ones they do not track.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
    /// Not OpenAI's: OpenRouter reports cache writes here for providers that charge for them.
    cache_write_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// OpenAI's counters already have the canonical meaning: `prompt_tokens` includes cached
    /// tokens and `completion_tokens` includes reasoning tokens.
    pub(super) fn to_canonical(&self) -> Usage {
        let prompt = self.prompt_tokens_details.as_ref();
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cache_read_tokens: prompt.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: prompt.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// `usage` as the gateway sends it to OpenAI clients.
#[derive(Debug, Serialize)]
pub(super) struct OutUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: OutPromptDetails,
    completion_tokens_details: OutCompletionDetails,
}

#[derive(Debug, Serialize)]
struct OutPromptDetails {
    cached_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_tokens: u64,
}

#[derive(Debug, Serialize)]
struct OutCompletionDetails {
    reasoning_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&Usage> for OutUsage {
    fn from(u: &Usage) -> Self {
        OutUsage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.input_tokens.saturating_add(u.output_tokens),
            prompt_tokens_details: OutPromptDetails {
                cached_tokens: u.cache_read_tokens,
                cache_write_tokens: u.cache_write_tokens,
            },
            completion_tokens_details: OutCompletionDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
        }
    }
}

#[derive(Deserialize)]
struct UsageOnly {
    usage: Option<WireUsage>,
}

/// Usage of a non-streamed response, reading nothing else into memory.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    let parsed: UsageOnly = serde_json::from_slice(body).ok()?;
    parsed.usage.map(|u| u.to_canonical())
}

/// Usage carried by one stream chunk's data, if any.
///
/// With `include_usage` every chunk has a `"usage":null`, so the common case is settled by looking
/// at the text after each `"usage"` key without parsing the chunk.
pub fn usage_from_chunk(data: &str) -> Option<Usage> {
    if !may_have_usage(data) {
        return None;
    }
    let parsed: UsageOnly = serde_json::from_str(data).ok()?;
    parsed.usage.map(|u| u.to_canonical())
}

/// True for the extra chunk `include_usage` adds before `[DONE]`: empty `choices` and a usage.
pub fn is_usage_only_chunk(data: &str) -> bool {
    #[derive(Deserialize)]
    struct Shape {
        choices: Option<Vec<IgnoredAny>>,
        usage: Option<IgnoredAny>,
    }
    if !may_have_usage(data) {
        return false;
    }
    match serde_json::from_str::<Shape>(data) {
        Ok(shape) => shape.usage.is_some() && shape.choices.is_none_or(|c| c.is_empty()),
        Err(_) => false,
    }
}

/// False only when every `"usage"` key in the text is followed by `null` (or there is none).
/// A quoted `usage` inside a JSON string value has its quotes escaped, so cannot match.
fn may_have_usage(data: &str) -> bool {
    const KEY: &str = "\"usage\"";
    let mut rest = data;
    while let Some(at) = rest.find(KEY) {
        rest = &rest[at + KEY.len()..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        if !after.trim_start().starts_with("null") {
            return true;
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn usage_from_response_reads_details() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi \"usage\": 1"}}],
            "usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,
            "prompt_tokens_details":{"cached_tokens":64,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":8}}}"#;
        assert_eq!(
            usage_from_response(body),
            Some(Usage {
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 64,
                cache_write_tokens: 0,
                reasoning_tokens: 8,
            })
        );
        assert_eq!(usage_from_response(br#"{"id":"x"}"#), None);
        assert_eq!(usage_from_response(b"not json"), None);
    }

    #[test]
    fn usage_from_chunk_skips_null_usage_without_parsing() {
        let content = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}"#;
        assert!(!may_have_usage(content));
        assert_eq!(usage_from_chunk(content), None);
        let tricky = r#"{"choices":[{"delta":{"content":"\"usage\": {"}}],"usage" : null}"#;
        assert!(!may_have_usage(tricky));
        let last = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        assert_eq!(usage_from_chunk(last).map(|u| u.output_tokens), Some(2));
        assert!(is_usage_only_chunk(last));
        assert!(!is_usage_only_chunk(content));
        // Some upstreams put usage on the finish chunk itself: that one must reach the client.
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5}}"#;
        assert_eq!(usage_from_chunk(finish).map(|u| u.input_tokens), Some(5));
        assert!(!is_usage_only_chunk(finish));
        assert!(!is_usage_only_chunk("[DONE]"));
    }

    #[test]
    fn out_usage_shape() {
        let u = Usage {
            input_tokens: 10,
            output_tokens: 4,
            cache_read_tokens: 3,
            cache_write_tokens: 0,
            reasoning_tokens: 1,
        };
        assert_eq!(
            serde_json::to_value(OutUsage::from(&u)).unwrap(),
            serde_json::json!({"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,
                "prompt_tokens_details":{"cached_tokens":3},
                "completion_tokens_details":{"reasoning_tokens":1}})
        );
    }
}
