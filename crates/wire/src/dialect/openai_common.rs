//! What both OpenAI APIs (Chat Completions and Responses) define the same way, shared by their two
//! dialect modules: the error object and the function definition of a tool. It is not a dialect.

use crate::canonical::{ErrorKind, FunctionTool, WireError};
use crate::fields::{Obj, opt_bool, req_str};
use serde_json::{Map, Value, json};

/// A function definition `{name, description?, parameters?, strict?}` at `path`.
pub(super) fn function_tool(func: &Obj, path: &str) -> Result<FunctionTool, WireError> {
    let name = req_str(func, "name", path)?.to_string();
    let description = match func.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => {
            return Err(WireError::at(
                format!("{path}.description"),
                "must be a string",
            ));
        }
    };
    let strict = opt_bool(
        func.get("strict").unwrap_or(&Value::Null),
        &format!("{path}.strict"),
    )?;
    Ok(FunctionTool {
        name,
        description,
        // Null stands for "omitted": OpenAI then treats the function as taking no arguments.
        parameters: func.get("parameters").cloned().unwrap_or(Value::Null),
        strict,
        cache_control: None,
    })
}

/// The fields of a function definition, written into `out` (the inverse of [`function_tool`]):
/// Chat nests them under `function`, Responses puts them beside `type`.
pub(super) fn write_function(f: &FunctionTool, out: &mut Obj) {
    out.insert("name".into(), Value::String(f.name.clone()));
    if let Some(d) = &f.description {
        out.insert("description".into(), Value::String(d.clone()));
    }
    if !f.parameters.is_null() {
        out.insert("parameters".into(), f.parameters.clone());
    }
    if let Some(s) = f.strict {
        out.insert("strict".into(), Value::Bool(s));
    }
}

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
