//! Renders a `GatewayError` in the client's dialect: the ONLY place errors become HTTP responses.

use crate::error::GatewayError;
use axum::body::Body;
use axum::response::Response;
use ekai_wire::canonical::Dialect;
use ekai_wire::dialect::{anthropic, gemini, openai_chat, openai_responses};
use http::{HeaderValue, header};

pub fn render(dialect: Dialect, e: &GatewayError) -> Response {
    let json = match dialect {
        Dialect::OpenAiChat => {
            openai_chat::error_json(e.kind, &e.message, e.param.as_deref(), e.code)
        }
        Dialect::Anthropic => anthropic::error_json(e.kind, &e.message),
        Dialect::OpenAiResponses => {
            openai_responses::error_json(e.kind, &e.message, e.param.as_deref(), e.code)
        }
        Dialect::Gemini => gemini::error_json(e.kind, &e.message),
    };
    let mut resp = Response::new(Body::from(serde_json::to_vec(&json).unwrap_or_default()));
    *resp.status_mut() = e.status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = e
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    if let Some((limit, reset)) = e.token_limit {
        for (name, v) in [
            ("x-ratelimit-limit-tokens", limit.to_string()),
            ("x-ratelimit-remaining-tokens", "0".to_string()),
            ("x-ratelimit-reset-tokens", format!("{reset}s")),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        }
    }
    match e.origin {
        crate::error::Origin::Internal => {
            tracing::error!(status = e.status.as_u16(), "{}", e.message)
        }
        crate::error::Origin::Upstream => {
            tracing::warn!(status = e.status.as_u16(), "{}", e.message)
        }
        crate::error::Origin::Client => {
            tracing::debug!(status = e.status.as_u16(), "{}", e.message)
        }
    }
    resp
}
