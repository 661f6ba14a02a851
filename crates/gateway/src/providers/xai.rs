//! xAI (api.x.ai), an OpenAI Chat dialect upstream.

use serde_json::{Map, Value};

pub fn adapt(model: &str, body: &mut Map<String, Value>) {
    // Only the grok-3-mini line takes reasoning_effort; grok-4 rejects the field.
    if !model.starts_with("grok-3-mini") {
        body.remove("reasoning_effort");
    }
}
