//! Google Gemini native API (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
//! `:countTokens`). The REST wire is camelCase JSON; the model and the streaming choice live in the
//! URL, never in the body.
//!
//! Choices this conversion makes, and why:
//! - **Thought signatures.** Gemini attaches an opaque `thoughtSignature` to a part (a `functionCall`,
//!   a text part, or a thought part) and Gemini 3 rejects a function-calling turn whose signature is not
//!   sent back. Canonical has one place for a signature, `ContentBlock::Thinking::signature`, and a
//!   stream can only carry one as `Delta::Signature` on a thinking block, so: a signature on a thought
//!   part is that Thinking block's signature; a signature on any other part becomes an empty
//!   `Thinking { text: "", signature }` placed immediately before that part's block. Rendering undoes
//!   it: an empty signed Thinking block gives its signature to the next part of the same turn (or
//!   becomes `{"text":"","thoughtSignature":…}` when nothing follows). The same representation is used
//!   in requests, responses and streams, so a streamed response accumulates to what the non-streamed
//!   one parses to, and an Anthropic client (whose thinking blocks carry signatures) can hand them back.
//!   Signatures are opaque: one that is not base64 (what Gemini expects) is never sent to Gemini, and a
//!   model turn whose first `functionCall` has no signature (history from another dialect) gets
//!   Gemini's documented `skip_thought_signature_validator` placeholder.
//! - **Tool-call ids.** A `functionCall` without `id` gets `call_<name>_<n>` (n counts function calls
//!   across the whole request, or the whole response, so ids are unique and deterministic; name
//!   characters outside `[A-Za-z0-9_-]` become `_`). Gemini matches results to calls by *name*, so
//!   requests sent to Gemini carry no ids (the Developer API accepts them, Vertex does not, and ids
//!   minted by other providers mean nothing to Gemini); a `functionResponse` takes the name of the call
//!   its `tool_call_id` points at. Responses sent to Gemini clients do carry `id`, so the client can
//!   echo it and a re-parse keeps it.
//! - **Tool results.** `functionResponse.response` must be an object: result text that is a JSON
//!   object is sent as it is, anything else as `{"output": text}` (`output`/`error` are the keys
//!   Gemini documents); an error result is `{"error": …}`. Reading back, a response object whose only
//!   key is `output`, `result`, `content` or `error` yields that value's text.
//! - **Schemas.** Function parameters are sent as `parametersJsonSchema` and response schemas as
//!   `responseJsonSchema`, which take full JSON Schema (so `additionalProperties`, `anyOf`, `$ref` are
//!   fine); only the top-level `$schema` marker is removed. The older OpenAPI-subset `parameters` /
//!   `responseSchema` are read too, with their upper-case type names lowered.
//! - **Usage.** `promptTokenCount` already includes cached tokens (canonical input); tool-use prompt
//!   tokens are billed as input and added to it; output = `candidatesTokenCount + thoughtsTokenCount`.

pub mod embed;
mod parts;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

pub use request::{parse_request, request_to_json};
pub use response::{parse_response, response_to_json};
pub use stream::{Decoder, Encoder};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::canonical::{Dialect, ErrorKind, FinishReason, Usage, WireError};

const DIALECT: Dialect = Dialect::Gemini;

use crate::fields::{missing, take_bool, take_f64, take_object, take_string, wrong_type};
type Obj = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Finish reasons
// ---------------------------------------------------------------------------------------------

/// Gemini `finishReason` → canonical. `STOP` becomes `ToolUse` when the turn called functions.
pub(crate) fn finish_reason_from_str(s: &str, called_tools: bool) -> FinishReason {
    match s {
        "STOP" if called_tools => FinishReason::ToolUse,
        "STOP" => FinishReason::EndTurn,
        "MAX_TOKENS" => FinishReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(crate) fn finish_reason_str(r: &FinishReason) -> &str {
    match r {
        FinishReason::EndTurn
        | FinishReason::ToolUse
        | FinishReason::StopSequence
        | FinishReason::PauseTurn => "STOP",
        FinishReason::MaxTokens => "MAX_TOKENS",
        FinishReason::ContentFilter | FinishReason::Refusal => "SAFETY",
        // Gemini's own reasons (MALFORMED_FUNCTION_CALL, …) go back as they came.
        FinishReason::Other(s)
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()) =>
        {
            s
        }
        FinishReason::Other(_) => "OTHER",
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// `usageMetadata`. Every counter may be absent (early stream chunks carry only the prompt count).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageIn {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    tool_use_prompt_token_count: Option<u64>,
}

impl UsageIn {
    pub(crate) fn to_canonical(self) -> Usage {
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        Usage {
            input_tokens: self
                .prompt_token_count
                .unwrap_or(0)
                .saturating_add(self.tool_use_prompt_token_count.unwrap_or(0)),
            output_tokens: self
                .candidates_token_count
                .unwrap_or(0)
                .saturating_add(thoughts),
            cache_read_tokens: self.cached_content_token_count.unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: thoughts,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageOut {
    prompt_token_count: u64,
    candidates_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
    total_token_count: u64,
}

impl UsageOut {
    pub(crate) fn from_canonical(u: &Usage) -> Self {
        UsageOut {
            prompt_token_count: u.input_tokens,
            candidates_token_count: u.output_tokens.saturating_sub(u.reasoning_tokens),
            cached_content_token_count: (u.cache_read_tokens > 0).then_some(u.cache_read_tokens),
            thoughts_token_count: (u.reasoning_tokens > 0).then_some(u.reasoning_tokens),
            total_token_count: u.input_tokens.saturating_add(u.output_tokens),
        }
    }
}

#[derive(Deserialize)]
struct UsageOnly {
    #[serde(rename = "usageMetadata", default)]
    usage: Option<UsageIn>,
}

/// Usage of a non-streamed `generateContent` response (canonical convention), reading nothing else.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<UsageOnly>(body)
        .ok()?
        .usage
        .map(UsageIn::to_canonical)
}

/// Usage carried by one passthrough stream chunk (canonical convention, cumulative). Chunks without
/// `usageMetadata` are not parsed at all.
pub fn usage_from_chunk(data: &str) -> Option<Usage> {
    if !data.contains("\"usageMetadata\"") {
        return None;
    }
    serde_json::from_str::<UsageOnly>(data)
        .ok()?
        .usage
        .map(UsageIn::to_canonical)
}

// ---------------------------------------------------------------------------------------------
// Errors and token counting
// ---------------------------------------------------------------------------------------------

/// `(code, status)` Gemini uses for an error kind (google.rpc codes on the REST wire).
fn error_code_status(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::InvalidRequest => (400, "INVALID_ARGUMENT"),
        ErrorKind::RequestTooLarge => (413, "INVALID_ARGUMENT"),
        ErrorKind::Authentication => (401, "UNAUTHENTICATED"),
        ErrorKind::PermissionDenied => (403, "PERMISSION_DENIED"),
        ErrorKind::NotFound => (404, "NOT_FOUND"),
        ErrorKind::RateLimit => (429, "RESOURCE_EXHAUSTED"),
        ErrorKind::Api => (500, "INTERNAL"),
        // Gemini reports an overloaded model as 503 UNAVAILABLE.
        ErrorKind::Overloaded => (503, "UNAVAILABLE"),
        ErrorKind::Timeout => (504, "DEADLINE_EXCEEDED"),
    }
}

/// A Gemini error body: `{"error":{"code","message","status"}}`.
pub fn error_json(kind: ErrorKind, message: &str) -> Value {
    let (code, status) = error_code_status(kind);
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// The canonical error kind of a Gemini `status` (or numeric `code`).
pub(crate) fn kind_from_status(status: &str) -> ErrorKind {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        other => match other.parse::<u16>() {
            Ok(code) => ErrorKind::from_status(code),
            Err(_) => ErrorKind::Api,
        },
    }
}

/// The canonical kind named by `ErrorKind::name` (what `StreamEvent::Error` carries).
pub(crate) fn kind_from_name(name: &str) -> ErrorKind {
    match name {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "rate_limit_error" => ErrorKind::RateLimit,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        _ => ErrorKind::Api,
    }
}

/// `(status, message)` of a Gemini error body (`status` falls back to the numeric `code`), or None
/// when the body is not one. A one-element array around the object (as streams sometimes send) is
/// accepted.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    error_fields(value)
}

pub(crate) fn error_fields(value: Value) -> Option<(String, String)> {
    let value = match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        v => v,
    };
    let Value::Object(mut obj) = value else {
        return None;
    };
    match obj.remove("error")? {
        Value::Object(err) => {
            let status = match (err.get("status"), err.get("code")) {
                (Some(Value::String(s)), _) if !s.is_empty() => s.clone(),
                (_, Some(Value::Number(n))) => n.to_string(),
                (_, Some(Value::String(c))) if !c.is_empty() => c.clone(),
                _ => "UNKNOWN".to_string(),
            };
            let message = match err.get("message") {
                Some(Value::String(m)) => m.clone(),
                None | Some(Value::Null) => String::new(),
                Some(other) => other.to_string(),
            };
            Some((status, message))
        }
        Value::String(message) => Some(("UNKNOWN".to_string(), message)),
        _ => None,
    }
}

/// The `:countTokens` response body.
pub fn count_tokens_json(total_tokens: u64) -> Value {
    json!({"totalTokens": total_tokens})
}

// ---------------------------------------------------------------------------------------------
// Value helpers
// ---------------------------------------------------------------------------------------------

/// A non-negative integer; Gemini's SDKs sometimes send integral floats (`40.0`).
fn take_u32(obj: &mut Obj, key: &str, path: &str) -> Result<Option<u32>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                    .map(|f| f as u64)
            });
            v.and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| WireError::at(path, "expected a non-negative integer"))
        }
        Some(other) => Err(wrong_type(path, "an integer", &other)),
    }
}

fn take_array(obj: &mut Obj, key: &str, path: &str) -> Result<Option<Vec<Value>>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(wrong_type(path, "an array", &other)),
    }
}

/// OpenAPI-subset schemas (`parameters`, `responseSchema`) spell types in upper case (`STRING`);
/// JSON Schema wants lower case. Lowers every `type` string (or array of strings) in place.
fn lower_schema_types(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            for (key, value) in obj.iter_mut() {
                match (key.as_str(), value) {
                    ("type", Value::String(t)) => *t = t.to_ascii_lowercase(),
                    ("type", Value::Array(ts)) => {
                        for t in ts.iter_mut() {
                            if let Value::String(s) = t {
                                *s = s.to_ascii_lowercase();
                            }
                        }
                    }
                    // Enum and example values are data, not schema.
                    ("enum" | "example" | "default" | "const", _) => {}
                    (_, v) => lower_schema_types(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lower_schema_types),
        _ => {}
    }
}

/// A canonical JSON Schema as Gemini's `parametersJsonSchema` / `responseJsonSchema` want it.
fn json_schema_out(schema: &Value) -> Value {
    match schema {
        Value::Object(obj) if obj.contains_key("$schema") => {
            let mut obj = obj.clone();
            obj.remove("$schema");
            Value::Object(obj)
        }
        other => other.clone(),
    }
}
