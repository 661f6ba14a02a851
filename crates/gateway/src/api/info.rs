//! `GET /v1/models`, `GET /health`, `GET|HEAD /` and the fallback for unknown paths.

use super::AppState;
use super::error::render;
use crate::error::GatewayError;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::Dialect;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn root() -> &'static str {
    "Ekai Gateway\n"
}

pub async fn health(State(s): State<Arc<AppState>>) -> Json<Value> {
    let providers: Vec<Value> = s
        .proxy
        .router
        .health()
        .filter(|(p, _)| s.proxy.router.usable(p))
        .map(|(p, h)| {
            json!({
                "name": p.name(),
                "circuit": h.circuit.as_str(),
                "latency_ms": h.latency_ms.map(|l| (l * 100.0).round() / 100.0),
                "error_rate": h.error_rate,
                "recent_requests": h.recent_requests,
            })
        })
        .collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "providers": providers,
    }))
}

/// OpenAI's list shape, or Anthropic's when the client announces itself with `anthropic-version`.
/// With a client key, only the models its policy allows.
pub async fn models(
    State(s): State<Arc<AppState>>,
    client: Option<axum::Extension<Arc<crate::clients::Client>>>,
    headers: HeaderMap,
) -> Json<Value> {
    let mut models = s.proxy.router.models();
    if let Some(c) = &client {
        models.retain(|(id, _)| c.policy.allows(id));
    }
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = models
            .iter()
            .map(|(id, _)| {
                json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})
            })
            .collect();
        return Json(json!({
            "data": data,
            "has_more": false,
            "first_id": models.first().map(|m| &m.0),
            "last_id": models.last().map(|m| &m.0),
        }));
    }
    let data: Vec<Value> = models
        .iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let dialect = if headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAiChat
    };
    let mut e = GatewayError::invalid(format!(
        "unknown endpoint {}: this gateway serves /v1/chat/completions, /v1/messages, /v1/messages/count_tokens and /v1/models",
        uri.path()
    ));
    e.status = http::StatusCode::NOT_FOUND;
    e.kind = ekai_wire::canonical::ErrorKind::NotFound;
    render(dialect, &e).into_response()
}

/// `GET /v1/responses` (Codex tries a WebSocket upgrade there first): refuse at once so the client
/// falls back to HTTP POST without waiting.
pub async fn no_websocket() -> Response {
    let mut e = GatewayError::invalid(
        "the Responses WebSocket transport is not served by this gateway; use POST /v1/responses",
    );
    e.status = http::StatusCode::NOT_FOUND;
    e.kind = ekai_wire::canonical::ErrorKind::NotFound;
    render(Dialect::OpenAiResponses, &e)
}
