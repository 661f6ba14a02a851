//! OpenAI (api.openai.com).

use serde_json::{Map, Value};

/// Reasoning models reject `max_tokens`, `temperature` and `top_p`, and only they accept
/// `reasoning_effort`.
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model);
    m.starts_with("gpt-5") || m.starts_with("o1") || m.starts_with("o3") || m.starts_with("o4")
}

pub fn adapt(model: &str, body: &mut Map<String, Value>) {
    // Every current chat model accepts max_completion_tokens; reasoning models accept nothing else.
    if let Some(v) = body.remove("max_tokens") {
        body.insert("max_completion_tokens".into(), v);
    }
    if is_reasoning_model(model) {
        body.remove("temperature");
        body.remove("top_p");
    } else {
        body.remove("reasoning_effort");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasoning_models_get_max_completion_tokens_and_no_temperature() {
        let mut b = json!({"max_tokens": 10, "temperature": 0.2, "reasoning_effort": "low"})
            .as_object()
            .cloned()
            .unwrap();
        adapt("o4-mini", &mut b);
        assert_eq!(b.get("max_completion_tokens"), Some(&json!(10)));
        assert!(b.get("temperature").is_none() && b.get("max_tokens").is_none());
        assert_eq!(b.get("reasoning_effort"), Some(&json!("low")));
    }

    #[test]
    fn chat_models_drop_reasoning_effort() {
        let mut b = json!({"reasoning_effort": "low", "temperature": 0.2})
            .as_object()
            .cloned()
            .unwrap();
        adapt("gpt-4o", &mut b);
        assert!(b.get("reasoning_effort").is_none());
        assert_eq!(b.get("temperature"), Some(&json!(0.2)));
    }
}
