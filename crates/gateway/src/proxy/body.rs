//! Reading just enough of a request body: the model and the stream flag (to route), and rewriting
//! the model in place for passthrough without parsing anything else.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

use ekai_wire::canonical::Dialect;

/// The fields routing needs, plus the raw shape of the ones every request must have. serde skips
/// every other field without building values.
#[derive(Deserialize)]
pub struct Peek<'a> {
    /// Absent only in Gemini bodies, whose model is in the URL.
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stream: bool,
    /// The conversation: `messages` (Chat, Anthropic), `input` (Responses), `contents` (Gemini).
    #[serde(borrow, default, alias = "input", alias = "contents")]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
}

impl Peek<'_> {
    /// A shallow check that passthrough bodies are requests at all (the conversation is an array —
    /// or, for Responses, a string — and for Anthropic max_tokens is a number), so obviously bad input
    /// is refused here with a 400 instead of costing an upstream round trip. Deep validation stays
    /// with the upstream.
    pub fn looks_valid(&self, dialect: Dialect) -> bool {
        let first = |v: Option<&RawValue>| v.and_then(|r| r.get().bytes().next());
        let conversation = match dialect {
            Dialect::OpenAiResponses => matches!(first(self.messages), Some(b'[' | b'"')),
            _ => first(self.messages) == Some(b'['),
        };
        let max_tokens = dialect != Dialect::Anthropic
            || first(self.max_tokens).is_some_and(|b| b.is_ascii_digit());
        let model = dialect == Dialect::Gemini || self.model.is_some();
        conversation && max_tokens && model
    }

    /// Size estimates for routing: about four bytes a token; the prompt up to the last
    /// `cache_control` marker is what a provider with prompt caching would read from cache.
    pub fn estimate(&self, body_len: usize) -> crate::router::Estimate {
        let cached_bytes = self
            .messages
            .map(|m| m.get())
            .and_then(|m| m.rfind("\"cache_control\""))
            .unwrap_or(0);
        let max_tokens = self.max_tokens.and_then(|r| r.get().parse::<u32>().ok());
        crate::router::Estimate {
            input_tokens: (body_len / 4) as u64,
            cached_tokens: (cached_bytes / 4) as u64,
            max_output: self
                .max_completion_tokens
                .or(self.max_output_tokens)
                .or(max_tokens),
        }
    }

    /// The messages may contain a `role: "system"` message, which some clients send but Anthropic's
    /// API rejects. A false positive (the word in some text) only costs a conversion.
    pub fn may_have_system_message(&self) -> bool {
        self.messages
            .is_some_and(|m| m.get().contains("\"system\""))
    }
}

pub fn peek(body: &[u8]) -> Option<Peek<'_>> {
    serde_json::from_slice(body).ok()
}

/// A top-level JSON object as (key, raw value) pairs in their original order: values stay as the
/// client's bytes.
struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    pairs.push((k, v));
                }
                Ok(RawObject(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Result of a passthrough rewrite.
pub struct Rewritten {
    pub body: Vec<u8>,
    /// The client itself asked for usage in the stream (so the gateway must not strip it).
    pub client_wants_usage: bool,
}

/// Copies the body with `model` replaced; with `force_stream_usage`, also sets
/// `stream_options.include_usage = true` (OpenAI streams report usage only when asked, and the
/// gateway must account every request).
pub fn rewrite(body: &[u8], model: &str, force_stream_usage: bool) -> Option<Rewritten> {
    let text = std::str::from_utf8(body).ok()?;
    let RawObject(pairs) = serde_json::from_str(text).ok()?;
    let mut out = Vec::with_capacity(body.len() + 48);
    out.push(b'{');
    let mut first = true;
    let mut client_wants_usage = false;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
    };
    let model_json = serde_json::to_string(model).ok()?;
    for (k, v) in &pairs {
        if force_stream_usage && k == "stream_options" {
            client_wants_usage = serde_json::from_str::<StreamOptions>(v.get())
                .map(|o| o.include_usage)
                .unwrap_or(false);
            continue; // re-added below with include_usage set
        }
        sep(&mut out);
        out.extend_from_slice(serde_json::to_string(k.as_ref()).ok()?.as_bytes());
        out.push(b':');
        if k == "model" {
            out.extend_from_slice(model_json.as_bytes());
        } else {
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    if force_stream_usage {
        sep(&mut out);
        out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
    }
    out.push(b'}');
    Some(Rewritten {
        body: out,
        client_wants_usage,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn peek_reads_model_and_stream_only() {
        let p = peek(
            br#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true}"#,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert!(p.stream);
        assert!(p.looks_valid(Dialect::OpenAiChat));
        assert!(!p.looks_valid(Dialect::Anthropic), "no max_tokens");
        let p = peek(br#"{"model":"m","messages":"hi","max_tokens":5}"#).unwrap();
        assert!(!p.looks_valid(Dialect::OpenAiChat));
        let p = peek(br#"{"model":"m","input":"hi"}"#).unwrap();
        assert!(p.looks_valid(Dialect::OpenAiResponses));
        let p = peek(br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#).unwrap();
        assert!(p.looks_valid(Dialect::Gemini));
        assert!(!p.looks_valid(Dialect::OpenAiChat), "no model");
        assert!(peek(b"[1]").is_none());
        let p = peek(br#"{"model":"m","messages":[{"role": "system","content":"x"}]}"#).unwrap();
        assert!(p.may_have_system_message());
        assert!(peek(br#"{"model":5}"#).is_none());
    }

    #[test]
    fn rewrite_changes_only_the_model_and_keeps_unknown_fields() {
        let src = br#"{"model":"a","x_unknown":{"deep":[1,2.50,"\u00e9"]},"messages":[]}"#;
        let r = rewrite(src, "b", false).unwrap();
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            r#"{"model":"b","x_unknown":{"deep":[1,2.50,"\u00e9"]},"messages":[]}"#
        );
    }

    #[test]
    fn rewrite_forces_stream_usage_and_reports_the_clients_choice() {
        let r = rewrite(br#"{"model":"a","stream":true}"#, "a", true).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert!(!r.client_wants_usage);
        let r = rewrite(
            br#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
            "a",
            true,
        )
        .unwrap();
        assert!(r.client_wants_usage);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
    }
}
