//! The error object both OpenAI APIs (Chat Completions and Responses) use, shared by their two
//! dialect modules. It is not a dialect: it converts nothing to or from the canonical model.

use crate::canonical::ErrorKind;
use serde_json::{Map, Value, json};

/// An OpenAI-shaped error body: `{"error":{"message","type","param","code"}}`.
pub fn error_json(
    kind: ErrorKind,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    let kind = match kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::RateLimit => "rate_limit_error",
        // OpenAI has no overloaded type of its own; its SDKs retry on the status, not the type.
        ErrorKind::Api | ErrorKind::Overloaded => "server_error",
        ErrorKind::Timeout => "timeout_error",
    };
    json!({
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code,
        }
    })
}

/// Reads an upstream error body: `(type or code, message)`.
///
/// Accepts OpenAI's shape, `{"error":"text"}` and a one-element array around either (Gemini's
/// OpenAI-compatible endpoint wraps errors in an array).
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let value = match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        v => v,
    };
    let Value::Object(mut obj) = value else {
        return None;
    };
    match obj.remove("error")? {
        Value::Object(err) => Some(error_fields(&err)),
        Value::String(message) => Some(("api_error".to_string(), message)),
        _ => None,
    }
}

/// `(type, message)` of an OpenAI error object, falling back to `code` when `type` is missing.
pub(super) fn error_fields(err: &Map<String, Value>) -> (String, String) {
    let kind = match (err.get("type"), err.get("code")) {
        (Some(Value::String(t)), _) if !t.is_empty() => t.clone(),
        (_, Some(Value::String(c))) if !c.is_empty() => c.clone(),
        (_, Some(Value::Number(n))) => n.to_string(),
        _ => "api_error".to_string(),
    };
    let message = match err.get("message") {
        Some(Value::String(m)) => m.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    (kind, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn error_json_always_has_param_and_code() {
        let v = error_json(
            ErrorKind::NotFound,
            "no such model",
            None,
            Some("model_not_found"),
        );
        assert_eq!(
            v,
            json!({"error":{"message":"no such model","type":"invalid_request_error","param":null,"code":"model_not_found"}})
        );
        let v = error_json(ErrorKind::InvalidRequest, "bad", Some("messages[0]"), None);
        assert_eq!(v["error"]["param"], "messages[0]");
        assert!(v["error"].get("code").unwrap().is_null());
    }

    #[test]
    fn parse_error_shapes() {
        let body = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            parse_error(body),
            Some(("requests".into(), "Rate limit reached".into()))
        );
        let body = br#"{"error":{"message":"x","type":null,"code":429}}"#;
        assert_eq!(parse_error(body), Some(("429".into(), "x".into())));
        let body = br#"{"error":{"message":"m","type":"","code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            parse_error(body),
            Some(("rate_limit_exceeded".into(), "m".into()))
        );
        let body = br#"[{"error":{"message":"y","code":"invalid_argument"}}]"#;
        assert_eq!(
            parse_error(body),
            Some(("invalid_argument".into(), "y".into()))
        );
        assert_eq!(
            parse_error(br#"{"error":"plain"}"#),
            Some(("api_error".into(), "plain".into()))
        );
        assert_eq!(parse_error(b"<html>502</html>"), None);
        assert_eq!(parse_error(br#"{"id":"x"}"#), None);
    }
}
