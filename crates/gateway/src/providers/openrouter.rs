//! OpenRouter: OpenAI Chat dialect, `vendor/model` ids.

use serde_json::{Map, Value};

pub fn headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = super::bearer(key);
    // OpenRouter's attribution headers: harmless elsewhere, useful in its dashboard.
    h.push(("x-title", "Ekai Gateway".to_string()));
    h
}

pub fn adapt(body: &mut Map<String, Value>) {
    // OpenRouter normalises reasoning under one object across vendors.
    if let Some(effort) = body.remove("reasoning_effort") {
        body.insert(
            "reasoning".into(),
            Value::Object(Map::from_iter([("effort".to_string(), effort)])),
        );
    }
}
