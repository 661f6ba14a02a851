//! The OpenAI-compatible presets (Mistral, Groq, DeepSeek, Together, Perplexity, Cohere, Z.ai,
//! Ollama, LM Studio, vLLM): each speaks OpenAI Chat with its own deviations, corrected here. Unlike
//! OpenAI's own quirks these apply to passthrough bodies too: a client written for OpenAI sends
//! OpenAI's fields, which these services reject.
//!
//! Sources (checked 2026-11-22): Groq's "OpenAI Compatibility" page (`logprobs`, `logit_bias`,
//! `top_logprobs`, `messages[].name` and `n` other than 1 are a 400); Mistral's tool-call id rule
//! ("Tool call id … must be a-z, A-Z, 0-9, with a length of 9", reported by many client libraries);
//! DeepSeek's reasoning-model guide (`logprobs`/`top_logprobs` are an error on deepseek-reasoner);
//! the others document `max_tokens` only, not OpenAI's newer `max_completion_tokens`.

use crate::config::Preset;
use serde_json::{Map, Value};

/// Whether this preset changes bodies at all (passthrough bodies are re-serialised only then).
pub fn has_quirks(preset: Preset) -> bool {
    !matches!(preset, Preset::Vllm)
}

pub fn adapt(preset: Preset, model: &str, body: &mut Map<String, Value>) {
    // Groq and vLLM accept OpenAI's newer name; the rest document only `max_tokens`.
    if !matches!(preset, Preset::Groq | Preset::Vllm) {
        if let Some(v) = body.remove("max_completion_tokens") {
            body.entry("max_tokens").or_insert(v);
        }
    }
    // OpenAI's reasoning knob: honoured by Groq's reasoning models, Ollama and vLLM only.
    if !matches!(preset, Preset::Groq | Preset::Ollama | Preset::Vllm) {
        body.remove("reasoning_effort");
    }
    match preset {
        Preset::Groq => {
            for f in ["logprobs", "logit_bias", "top_logprobs"] {
                body.remove(f);
            }
            if body.get("n").and_then(Value::as_u64) == Some(1) {
                body.remove("n");
            }
            for_each_message(body, |m| {
                m.remove("name");
            });
        }
        Preset::DeepSeek if model.contains("reasoner") => {
            body.remove("logprobs");
            body.remove("top_logprobs");
        }
        Preset::Mistral => mistral_tool_ids(body),
        _ => {}
    }
}

/// An embeddings body (OpenAI's shape) for this preset. Mistral's Embeddings API names the vector
/// length `output_dimension` and has no `user` (its API reference: `model`, `input`,
/// `output_dimension`, `output_dtype`, `encoding_format`).
pub fn adapt_embed(preset: Preset, body: &mut Map<String, Value>) {
    if preset == Preset::Mistral {
        body.remove("user");
        if let Some(d) = body.remove("dimensions") {
            body.insert("output_dimension".into(), d);
        }
    }
}

fn for_each_message(body: &mut Map<String, Value>, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Array(msgs)) = body.get_mut("messages") {
        for m in msgs.iter_mut().filter_map(Value::as_object_mut) {
            f(m);
        }
    }
}

/// Mistral accepts only 9-character alphanumeric tool-call ids. Other ids (OpenAI's `call_…`,
/// Anthropic's `toolu_…`) are mapped to a stable 9-character digest, the same on the assistant's
/// call and on the tool result that answers it, so the pairing survives.
fn mistral_tool_ids(body: &mut Map<String, Value>) {
    let fix = |v: &mut Value| {
        if let Some(id) = v.as_str() {
            if !is_mistral_id(id) {
                *v = Value::String(short_id(id));
            }
        }
    };
    for_each_message(body, |m| {
        if let Some(v) = m.get_mut("tool_call_id") {
            fix(v);
        }
        if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
            for c in calls.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(v) = c.get_mut("id") {
                    fix(v);
                }
            }
        }
    });
}

fn is_mistral_id(id: &str) -> bool {
    id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// FNV-1a 64 of the id, written in base 62 (9 digits hold 62^9 ≈ 1.3e16 values).
pub fn short_id(id: &str) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = ALPHABET[(h % 62) as usize];
            h /= 62;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn mistral_gets_max_tokens_and_nine_character_tool_ids() {
        let mut b = obj(json!({
            "max_completion_tokens": 50, "reasoning_effort": "low",
            "messages": [
                {"role": "assistant", "tool_calls": [{"id": "toolu_01ABC", "type": "function"}]},
                {"role": "tool", "tool_call_id": "toolu_01ABC", "content": "x"},
                {"role": "tool", "tool_call_id": "abcDEF123", "content": "y"}
            ]
        }));
        adapt(Preset::Mistral, "mistral-large-latest", &mut b);
        assert_eq!(b.get("max_tokens"), Some(&json!(50)));
        assert!(b.get("max_completion_tokens").is_none() && b.get("reasoning_effort").is_none());
        let call = b["messages"][0]["tool_calls"][0]["id"].as_str().unwrap();
        assert!(is_mistral_id(call), "{call}");
        assert_eq!(b["messages"][1]["tool_call_id"], json!(call));
        assert_eq!(b["messages"][2]["tool_call_id"], json!("abcDEF123"));
    }

    #[test]
    fn groq_drops_what_it_rejects() {
        let mut b = obj(json!({
            "max_completion_tokens": 5, "logprobs": true, "logit_bias": {}, "n": 1,
            "messages": [{"role": "user", "name": "bob", "content": "hi"}]
        }));
        adapt(Preset::Groq, "llama-3.3-70b-versatile", &mut b);
        assert_eq!(b.get("max_completion_tokens"), Some(&json!(5)));
        assert!(
            b.get("logprobs").is_none() && b.get("logit_bias").is_none() && b.get("n").is_none()
        );
        assert!(b["messages"][0].get("name").is_none());
    }

    #[test]
    fn mistral_embeddings_name_the_dimension_its_way() {
        let mut b =
            obj(json!({"model": "mistral-embed", "input": ["a"], "dimensions": 256, "user": "u"}));
        adapt_embed(Preset::Mistral, &mut b);
        assert_eq!(b.get("output_dimension"), Some(&json!(256)));
        assert!(b.get("dimensions").is_none() && b.get("user").is_none());
        let mut b = obj(json!({"dimensions": 256}));
        adapt_embed(Preset::Ollama, &mut b);
        assert_eq!(b.get("dimensions"), Some(&json!(256)));
    }

    #[test]
    fn short_ids_are_stable_and_distinct() {
        assert_eq!(short_id("call_1"), short_id("call_1"));
        assert_ne!(short_id("call_1"), short_id("call_2"));
        assert!(is_mistral_id(&short_id("")));
    }
}
