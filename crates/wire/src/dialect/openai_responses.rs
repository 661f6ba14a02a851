//! OpenAI Responses API (`/v1/responses`), as Codex CLI and the OpenAI SDKs speak it.
//!
//! A request is `instructions` plus a flat list of `input` items (messages, function calls and
//! their outputs, reasoning items, hosted/custom tool items); the conversion groups them into
//! canonical turns and keeps what the canonical model cannot name (reasoning items with their
//! encrypted content, custom tool calls, hosted tools, `include`, `store`, …) as `Unknown` /
//! `extra` tagged with this dialect, so only a Responses upstream gets them back.
//!
//! A reasoning item becomes a `Thinking` block (its summary) followed, when the item can be sent
//! back (it has an id or encrypted content), by an `Unknown` block holding the whole item.
//!
//! Streams are typed events (`response.output_item.added`, `response.output_text.delta`, …) with a
//! `sequence_number`; the encoder always produces the full, well-nested sequence Codex expects
//! (every delta after its `output_item.added`, a terminal `response.completed` with usage).

mod request;
mod response;
mod stream;
mod tools;

pub use request::{parse_request, request_to_json};
pub use response::{
    is_terminal_event, parse_response, response_to_json, response_to_json_for, usage_from_event,
    usage_from_response,
};
pub use stream::{Decoder, Encoder};
pub use tools::{ClientTool, ToolMap, custom_arguments, custom_input, flat_name};

use serde_json::Value;

use crate::canonical::{Dialect, Request};

const DIALECT: Dialect = Dialect::OpenAiResponses;

/// Content part types (inside a message's `content`), as opposed to input item types.
fn is_content_part_type(kind: &str) -> bool {
    kind.starts_with("input_") || matches!(kind, "output_text" | "refusal" | "summary_text")
}

/// Fields of the request the gateway itself must act on (not forwarded to non-OpenAI targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesState {
    /// The client wants the response stored server-side (OpenAI's default when `store` is absent).
    pub store: bool,
    /// The client continues a stored response instead of sending the whole conversation.
    pub previous_response_id: Option<String>,
}

/// Reads `store` and `previous_response_id` from the request's Responses `extra`.
pub fn request_state(req: &Request) -> ResponsesState {
    let fields = req
        .extra
        .as_ref()
        .filter(|e| e.dialect == DIALECT)
        .map(|e| &e.fields);
    let get = |k: &str| fields.and_then(|f| f.get(k));
    ResponsesState {
        store: get("store").and_then(Value::as_bool).unwrap_or(true),
        previous_response_id: get("previous_response_id")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// What the gateway tells the Responses encoders (`response_to_json_for`, `Encoder::for_reply`)
/// about the request they answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The client's custom and namespaced tools: calls of them go back in the shape declared.
    pub tools: ToolMap,
    /// The response's id when the gateway chose one (it stores the conversation under it);
    /// otherwise it is derived from the upstream's.
    pub id: Option<String>,
    /// Echoed as the response's `store` and `previous_response_id`.
    pub store: bool,
    pub previous_response_id: Option<String>,
}

impl Reply {
    /// Tools, `store` and `previous_response_id` of a request parsed by this dialect.
    pub fn for_request(req: &Request) -> Reply {
        let state = request_state(req);
        Reply {
            tools: ToolMap::of(req),
            id: None,
            store: state.store,
            previous_response_id: state.previous_response_id,
        }
    }
}

/// How many of `req.system`'s leading parts came from `instructions` (0 or 1); the rest came from
/// system / developer messages at the start of `input`. A stored conversation keeps those, not
/// the instructions (OpenAI's `previous_response_id` semantics).
pub fn instruction_parts(req: &Request) -> usize {
    usize::from(
        tools::state(req).is_some_and(|s| s.get("instructions") == Some(&Value::Bool(true))),
    )
}

/// The Responses API answers HTTP errors exactly as Chat Completions does.
pub use super::openai_common::{error_json, parse_error};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn state_defaults_to_openai_store_default() {
        let req = parse_request(br#"{"model":"m","input":"x"}"#).unwrap();
        assert_eq!(
            request_state(&req),
            ResponsesState {
                store: true,
                previous_response_id: None
            }
        );
        let req = parse_request(
            br#"{"model":"m","input":"x","store":false,"previous_response_id":"resp_9"}"#,
        )
        .unwrap();
        assert_eq!(
            request_state(&req),
            ResponsesState {
                store: false,
                previous_response_id: Some("resp_9".into())
            }
        );
    }

    #[test]
    fn part_types() {
        assert!(is_content_part_type("input_text"));
        assert!(is_content_part_type("input_file"));
        assert!(is_content_part_type("output_text"));
        assert!(!is_content_part_type("function_call_output"));
        assert!(!is_content_part_type("custom_tool_call"));
    }
}
