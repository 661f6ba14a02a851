//! Dialect-independent answer planning: what to say, which tools to call, token counts.

use serde_json::{Value, json};

use crate::scenario::Scenario;

/// Text of the forced thinking / reasoning block (5 words).
pub const THINKING_TEXT: &str = "Let me think about this.";
/// Signature of the Anthropic thinking block.
pub const THINKING_SIGNATURE: &str = "sig_mock_123";
/// Tokens charged for the thinking block.
pub const THINKING_TOKENS: u64 = 5;
/// Tokens charged per tool call.
pub const TOOL_CALL_TOKENS: u64 = 5;
/// What the mock writes into a tool whose schema has a string `input` property (how the gateway
/// presents a Responses `custom` tool such as Codex's `apply_patch`): a patch with a newline,
/// quotes, a backslash and non-ASCII text, so every escape is exercised on the way back.
pub const TOOL_INPUT_TEXT: &str =
    "*** Begin Patch\n*** Add File: hello.txt\n+say \"hi\" \\ caf\u{e9} \u{1F600}\n*** End Patch";
/// Fixed overhead added to the input word count.
pub const INPUT_OVERHEAD: u64 = 10;
/// Cache tokens reported with `cache`.
pub const CACHE_READ_TOKENS: u64 = 4;
/// Cache-creation tokens reported with `cache` (Anthropic only).
pub const CACHE_CREATION_TOKENS: u64 = 2;
/// `thoughtSignature` on the first Gemini functionCall part when thinking (base64 of `sig_mock_123`).
pub const GEMINI_THOUGHT_SIGNATURE: &str = "c2lnX21vY2tfMTIz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    /// OpenAI Responses (`POST /v1/responses`).
    Responses,
    /// Google Gemini native (`POST /v1beta/models/{model}:generateContent`).
    Gemini,
}

impl Dialect {
    /// Route name used by `hits` and in the reply text (`Hello from mock-<route>: ...`).
    pub fn route(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
            Dialect::Responses => "responses",
            Dialect::Gemini => "gemini",
        }
    }
}

/// What the request asked for, extracted per dialect.
#[derive(Debug, Default)]
pub struct Analysis {
    pub model: String,
    /// (name, schema) of every declared tool.
    pub tools: Vec<(String, Value)>,
    /// Name of a tool forced by tool_choice, if any.
    pub forced_tool: Option<String>,
    /// tool_choice says "none".
    pub tool_choice_none: bool,
    /// Texts of the trailing tool results, if the conversation ends with tool results.
    pub tool_results: Option<Vec<String>>,
    pub last_user_text: String,
    pub input_words: usize,
    pub wants_thinking: bool,
    pub stream: bool,
    pub include_usage: bool,
}

#[derive(Debug, Clone)]
pub struct PlannedCall {
    /// 1-based.
    pub n: usize,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub model: String,
    pub thinking: bool,
    pub text: Option<String>,
    pub tool_calls: Vec<PlannedCall>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub usage: bool,
    pub cache: bool,
    pub stream: bool,
    pub include_usage: bool,
}

pub fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

pub fn make_plan(a: Analysis, sc: &Scenario, dialect: Dialect) -> Plan {
    let thinking = a.wants_thinking || sc.think;
    let mut text = None;
    let mut tool_calls = Vec::new();
    if let Some(results) = &a.tool_results {
        text = Some(format!("Tool result received: {}", results.join(" ")));
    } else if !a.tools.is_empty() && !a.tool_choice_none {
        let chosen = a
            .forced_tool
            .as_ref()
            .and_then(|f| a.tools.iter().find(|(name, _)| name == f))
            .or_else(|| a.tools.first());
        if let Some((name, schema)) = chosen {
            let has_location = schema
                .get("properties")
                .and_then(|p| p.get("location"))
                .is_some();
            let has_input = schema
                .get("properties")
                .and_then(|p| p.get("input"))
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                == Some("string");
            let locations: &[&str] = if sc.parallel {
                &["Paris", "Tokyo"]
            } else {
                &["Paris"]
            };
            for (i, loc) in locations.iter().enumerate() {
                let args = if has_location {
                    json!({ "location": loc })
                } else if has_input {
                    json!({ "input": TOOL_INPUT_TEXT })
                } else {
                    json!({})
                };
                tool_calls.push(PlannedCall {
                    n: i + 1,
                    name: name.clone(),
                    arguments: args.to_string(),
                });
            }
        }
    }
    if tool_calls.is_empty() && text.is_none() {
        text = Some(format!(
            "Hello from mock-{}: {}",
            dialect.route(),
            a.last_user_text
        ));
    }
    if let (Some(n), Some(_)) = (sc.long, &text) {
        let words: Vec<String> = (1..=n).map(|i| format!("word{i}")).collect();
        text = Some(words.join(" "));
    }
    let mut output_tokens = text.as_deref().map(word_count).unwrap_or(0) as u64;
    output_tokens += TOOL_CALL_TOKENS * tool_calls.len() as u64;
    if thinking {
        output_tokens += THINKING_TOKENS;
    }
    Plan {
        model: a.model,
        thinking,
        text,
        tool_calls,
        input_tokens: a.input_words as u64 + INPUT_OVERHEAD,
        output_tokens,
        usage: !sc.nousage,
        cache: sc.cache,
        stream: a.stream,
        include_usage: a.include_usage,
    }
}

/// Splits text into pieces, one word each (with its leading whitespace), that concatenate back to `s`.
pub fn word_chunks(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_ws = true;
    let mut cur_has_word = false;
    for c in s.chars() {
        let ws = c.is_whitespace();
        if ws && !prev_ws && cur_has_word {
            out.push(std::mem::take(&mut cur));
            cur_has_word = false;
        }
        if !ws {
            cur_has_word = true;
        }
        cur.push(c);
        prev_ws = ws;
    }
    match out.last_mut() {
        Some(last) if !cur_has_word => last.push_str(&cur),
        _ if !cur.is_empty() => out.push(cur),
        _ => {}
    }
    out
}

/// Splits a JSON text into 2-3 fragments (fewer if it is shorter than that).
pub fn fragments(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let parts = if chars.len() <= 2 { chars.len() } else { 3 };
    let size = chars.len().div_ceil(parts);
    chars
        .chunks(size)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// Text of an OpenAI / Anthropic / Responses content value: a string, or the `text` of its
/// text parts (`text`, `input_text`, `output_text`) joined by a space.
pub fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    Some("text" | "input_text" | "output_text")
                )
            })
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_roundtrip() {
        let s = "Hello from mock-openai:  hi there ";
        let c = word_chunks(s);
        assert_eq!(c.concat(), s);
        assert_eq!(c.len(), 5);
        assert_eq!(c[0], "Hello");
        assert_eq!(c[1], " from");
        assert!(word_chunks("").is_empty());
    }

    #[test]
    fn fragments_roundtrip() {
        let s = r#"{"location":"Paris"}"#;
        let f = fragments(s);
        assert_eq!(f.len(), 3);
        assert_eq!(f.concat(), s);
        assert_eq!(fragments("{}"), vec!["{", "}"]);
    }
}
