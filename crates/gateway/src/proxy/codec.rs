//! Dispatch from a runtime `Dialect` to the wire crate's per-dialect functions, so the rest of the
//! proxy is written once for every pair of dialects.

use ekai_wire::canonical::{
    Dialect, Request, Response, StreamDecoder, StreamEncoder, Usage, WireError,
};
use ekai_wire::dialect::openai_responses::Reply;
use ekai_wire::dialect::{anthropic, gemini, openai_chat, openai_responses};
use serde_json::Value;

/// `model` is needed by dialects that carry it outside the body (Gemini: in the URL).
pub fn parse_request(d: Dialect, body: &[u8], model: &str) -> Result<Request, WireError> {
    match d {
        Dialect::OpenAiChat => openai_chat::parse_request(body),
        Dialect::Anthropic => anthropic::parse_request(body),
        Dialect::OpenAiResponses => openai_responses::parse_request(body),
        Dialect::Gemini => gemini::parse_request(body, model),
    }
}

pub fn request_to_json(d: Dialect, req: &Request) -> Result<Value, WireError> {
    match d {
        Dialect::OpenAiChat => openai_chat::request_to_json(req),
        Dialect::Anthropic => anthropic::request_to_json(req),
        Dialect::OpenAiResponses => openai_responses::request_to_json(req),
        Dialect::Gemini => gemini::request_to_json(req),
    }
}

pub fn parse_response(d: Dialect, body: &[u8]) -> Result<Response, WireError> {
    match d {
        Dialect::OpenAiChat => openai_chat::parse_response(body),
        Dialect::Anthropic => anthropic::parse_response(body),
        Dialect::OpenAiResponses => openai_responses::parse_response(body),
        Dialect::Gemini => gemini::parse_response(body),
    }
}

pub fn response_to_json(d: Dialect, resp: &Response) -> Value {
    match d {
        Dialect::OpenAiChat => openai_chat::response_to_json(resp),
        Dialect::Anthropic => anthropic::response_to_json(resp),
        Dialect::OpenAiResponses => openai_responses::response_to_json(resp),
        Dialect::Gemini => gemini::response_to_json(resp),
    }
}

/// `response_to_json` for a Responses client whose request `reply` describes (its tools, the id
/// and `store` the gateway chose); other dialects need no such context.
pub fn response_to_json_for(d: Dialect, resp: &Response, reply: Option<&Reply>) -> Value {
    match (d, reply) {
        (Dialect::OpenAiResponses, Some(r)) => openai_responses::response_to_json_for(resp, r),
        _ => response_to_json(d, resp),
    }
}

pub fn decoder(d: Dialect) -> Box<dyn StreamDecoder + Send> {
    match d {
        Dialect::OpenAiChat => Box::new(openai_chat::Decoder::new()),
        Dialect::Anthropic => Box::new(anthropic::Decoder::new()),
        Dialect::OpenAiResponses => Box::new(openai_responses::Decoder::new()),
        Dialect::Gemini => Box::new(gemini::Decoder::new()),
    }
}

pub fn encoder(d: Dialect, created: u64, include_usage: bool) -> Box<dyn StreamEncoder + Send> {
    match d {
        Dialect::OpenAiChat => Box::new(openai_chat::Encoder::new(created, include_usage)),
        Dialect::Anthropic => Box::new(anthropic::Encoder::new()),
        Dialect::OpenAiResponses => Box::new(openai_responses::Encoder::new(created)),
        Dialect::Gemini => Box::new(gemini::Encoder::new()),
    }
}

/// `encoder`, for a Responses client with `reply` (see `response_to_json_for`).
pub fn encoder_for(
    d: Dialect,
    created: u64,
    include_usage: bool,
    reply: Option<&Reply>,
) -> Box<dyn StreamEncoder + Send> {
    match (d, reply) {
        (Dialect::OpenAiResponses, Some(r)) => {
            Box::new(openai_responses::Encoder::for_reply(created, r.clone()))
        }
        _ => encoder(d, created, include_usage),
    }
}

pub fn parse_error(d: Dialect, body: &[u8]) -> Option<(String, String)> {
    match d {
        Dialect::OpenAiChat => openai_chat::parse_error(body),
        Dialect::Anthropic => anthropic::parse_error(body),
        Dialect::OpenAiResponses => openai_responses::parse_error(body),
        Dialect::Gemini => gemini::parse_error(body),
    }
}

pub fn usage_from_response(d: Dialect, body: &[u8]) -> Option<Usage> {
    match d {
        Dialect::OpenAiChat => openai_chat::usage_from_response(body),
        Dialect::Anthropic => anthropic::usage_from_response(body),
        Dialect::OpenAiResponses => openai_responses::usage_from_response(body),
        Dialect::Gemini => gemini::usage_from_response(body),
    }
}

/// Usage carried by one SSE event of a passthrough stream, read without parsing events that carry none.
pub fn usage_from_event(d: Dialect, event: Option<&str>, data: &str) -> Option<Usage> {
    match d {
        Dialect::OpenAiChat => openai_chat::usage_from_chunk(data),
        Dialect::Anthropic => anthropic::usage_from_event(event, data),
        Dialect::OpenAiResponses => openai_responses::usage_from_event(event, data),
        Dialect::Gemini => gemini::usage_from_chunk(data),
    }
}

/// The upstream's own end-of-stream marker. Gemini has none: its streams simply end, so for it the
/// end of the body is the end of the answer.
pub fn is_terminal(d: Dialect, event: Option<&str>, data: &str) -> bool {
    match d {
        Dialect::OpenAiChat => data == "[DONE]",
        Dialect::Anthropic => event == Some("message_stop"),
        Dialect::OpenAiResponses => openai_responses::is_terminal_event(event, data),
        Dialect::Gemini => false,
    }
}

/// Whether a stream in this dialect is complete when its body ends without a marker.
pub fn ends_at_eof(d: Dialect) -> bool {
    d == Dialect::Gemini
}

/// Bytes that keep a quiet stream alive without being mistaken for content.
pub fn keepalive(d: Dialect) -> &'static [u8] {
    match d {
        // Anthropic clients expect its own ping event; the others skip SSE comments.
        Dialect::Anthropic => b"event: ping\ndata: {\"type\": \"ping\"}\n\n",
        Dialect::OpenAiChat | Dialect::OpenAiResponses | Dialect::Gemini => {
            ekai_wire::sse::KEEPALIVE_COMMENT
        }
    }
}
