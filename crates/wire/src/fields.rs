//! Reading request fields out of parsed JSON with errors that name the field's path
//! (`messages[2].content`), shared by the dialect modules. It knows no dialect.

use crate::canonical::WireError;
use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

pub(crate) fn missing(parent: &str, field: &str) -> WireError {
    WireError::at(
        format!("{parent}.{field}"),
        format!("missing required field `{field}`"),
    )
}
pub(crate) fn take_bool(obj: &mut Obj, key: &str, path: &str) -> Result<Option<bool>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(path, "a boolean", &other)),
    }
}
pub(crate) fn take_f64(obj: &mut Obj, key: &str, path: &str) -> Result<Option<f64>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| WireError::at(path, "number out of range")),
        Some(other) => Err(wrong_type(path, "a number", &other)),
    }
}
pub(crate) fn take_object(obj: &mut Obj, key: &str, path: &str) -> Result<Option<Obj>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(wrong_type(path, "an object", &other)),
    }
}
pub(crate) fn take_string(
    obj: &mut Obj,
    key: &str,
    path: &str,
) -> Result<Option<String>, WireError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(path, "a string", &other)),
    }
}
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
pub(crate) fn wrong_type(path: &str, expected: &str, got: &Value) -> WireError {
    WireError::at(path, format!("expected {expected}, got {}", type_name(got)))
}
pub(crate) fn opt_bool(v: &Value, path: &str) -> Result<Option<bool>, WireError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(WireError::at(path, "must be a boolean")),
    }
}
pub(crate) fn opt_f64(v: &Value, path: &str) -> Result<Option<f64>, WireError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        _ => Err(WireError::at(path, "must be a number")),
    }
}
pub(crate) fn opt_string(v: Value, path: &str) -> Result<Option<String>, WireError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(WireError::at(path, "must be a string")),
    }
}
pub(crate) fn opt_u32(v: &Value, path: &str) -> Result<Option<u32>, WireError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| WireError::at(path, "must be a non-negative integer")),
        _ => Err(WireError::at(path, "must be an integer")),
    }
}
/// An optional count that must be at least 1 (embedding dimensions).
pub(crate) fn opt_positive_u32(v: Option<&Value>, path: &str) -> Result<Option<u32>, WireError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(d) => d
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| WireError::at(path, "must be a positive integer")),
    }
}
pub(crate) fn req_str<'a>(obj: &'a Obj, key: &str, path: &str) -> Result<&'a str, WireError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(WireError::at(format!("{path}.{key}"), "must be a string")),
        None => Err(WireError::at(format!("{path}.{key}"), "is required")),
    }
}
