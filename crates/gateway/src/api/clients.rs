//! Client keys at the HTTP edge: the `guard` middleware (authentication, then rate limits) and
//! `GET|PUT /user/preferences` for the calling key.

use super::AppState;
use super::error::render;
use crate::clients::{AuthFailure, Client, dialect_for_path};
use crate::error::GatewayError;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::Dialect;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};
use std::sync::Arc;

/// Paths that need a key in keys mode (and `/user/preferences`, which always does).
fn guarded(path: &str) -> bool {
    path.starts_with("/v1/")
        || path.starts_with("/v1beta/")
        || path == "/v1"
        || path == "/chat/completions"
        || path == "/responses"
        || path == "/embeddings"
        || path.starts_with("/openai/")
        || path == "/user/preferences"
}

/// The key from `Authorization: Bearer …`, `x-api-key`, `x-goog-api-key`, `api-key` (Azure
/// clients) or `?key=`, in that order.
fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    h(header::AUTHORIZATION.as_str())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| h("x-api-key"))
        .or_else(|| h("x-goog-api-key"))
        .or_else(|| h("api-key"))
        .or_else(|| query?.split('&').find_map(|kv| kv.strip_prefix("key=")))
        .filter(|k| !k.is_empty())
}

fn how_to_send(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Anthropic => {
            "send your gateway key in the `x-api-key` header (or `Authorization: Bearer <key>`)"
        }
        Dialect::Gemini => {
            "send your gateway key in the `x-goog-api-key` header (or `?key=`, or `Authorization: Bearer <key>`)"
        }
        _ => "send your gateway key in the `Authorization: Bearer <key>` header (or `x-api-key`)",
    }
}

fn unauthorized(dialect: Dialect, why: AuthFailure) -> Response {
    let what = match why {
        AuthFailure::Missing => "this gateway requires an API key and none was sent",
        AuthFailure::Unknown => "the API key sent is not valid for this gateway",
        AuthFailure::Revoked => "the API key sent has been revoked",
        AuthFailure::Expired => "the API key sent has expired",
    };
    let mut resp = render(
        dialect,
        &GatewayError::unauthenticated(format!("{what}: {}", how_to_send(dialect))),
    );
    if dialect == Dialect::Anthropic || dialect == Dialect::OpenAiChat {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn set_ratelimit_headers(h: &mut HeaderMap, kind: &str, limit: u64, remaining: u64, reset: u64) {
    for (name, v) in [
        ("limit", limit.to_string()),
        ("remaining", remaining.to_string()),
        ("reset", format!("{reset}s")),
    ] {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(format!("x-ratelimit-{name}-{kind}").as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(n, v);
        }
    }
}

/// Authentication, then rate limits (see `api::router` for where this sits).
pub async fn guard(State(s): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let operator = path == "/usage" || path == "/budget";
    if !guarded(&path) && !operator {
        return next.run(req).await;
    }
    let reg = &s.clients;
    reg.maybe_reload().await;
    if operator {
        // Everyone's usage and the gateway's cap: the operator's, once clients share the gateway.
        if reg.keys_required() && !super::admin_clients::is_admin(&s, req.headers()) {
            return render(
                Dialect::OpenAiChat,
                &GatewayError::unauthenticated(
                    "in keys mode /usage and /budget need `Authorization: Bearer <EKAI_ADMIN_TOKEN>`",
                ),
            );
        }
        return next.run(req).await;
    }
    let preferences = path == "/user/preferences";
    let presented = presented_key(req.headers(), req.uri().query());
    // A wallet session token (Sapphire mode) authenticates in every mode.
    let wallet = presented.is_some_and(crate::clients::wallet::is_wallet_token);
    if !reg.keys_required() && !preferences && !wallet {
        return next.run(req).await;
    }
    let dialect = dialect_for_path(&path);
    let authenticated = match presented {
        Some(token) if wallet => reg.authenticate_wallet(token).await,
        other => reg.authenticate(other),
    };
    let client = match authenticated {
        Ok(c) => c,
        Err(why) => {
            // The key is never logged: only its shape and the outcome.
            tracing::info!(path = %path, outcome = ?why, "client key refused");
            return unauthorized(dialect, why);
        }
    };
    // Rate limits count generation and token-counting calls (POST), not model listings.
    let admitted = if preferences || req.method() != http::Method::POST {
        None
    } else {
        match reg.admit(&client).await {
            Ok(a) => a,
            Err(r) => {
                let e = GatewayError::client_rate_limited(
                    format!(
                        "rate limit of {} {} reached for this API key; retry in {}s",
                        r.limit, r.what, r.retry_after
                    ),
                    r.retry_after,
                );
                let mut resp = render(dialect, &e);
                let kind = if r.tokens { "tokens" } else { "requests" };
                set_ratelimit_headers(resp.headers_mut(), kind, r.limit, 0, r.retry_after);
                return resp;
            }
        }
    };
    req.extensions_mut().insert(client);
    let mut resp = next.run(req).await;
    if let Some(a) = admitted {
        set_ratelimit_headers(
            resp.headers_mut(),
            "requests",
            a.limit,
            a.remaining,
            a.reset,
        );
    }
    resp
}

fn prefs_json(c: &Client) -> Response {
    axum::Json(json!({
        "model_preferences": c.policy.model_preferences,
        "api_address": c.policy.api_address,
    }))
    .into_response()
}

fn bad(param: &str, message: &str) -> Response {
    render(
        Dialect::OpenAiChat,
        &GatewayError::invalid(message).with_param(Some(param.to_string())),
    )
}

pub async fn get_preferences(client: Option<axum::Extension<Arc<Client>>>) -> Response {
    match client {
        Some(c) => prefs_json(&c),
        None => unauthorized(Dialect::OpenAiChat, AuthFailure::Missing),
    }
}

/// `PUT /user/preferences` `{model_preferences?: [string], api_address?: string|null}`.
pub async fn put_preferences(
    State(s): State<Arc<AppState>>,
    client: Option<axum::Extension<Arc<Client>>>,
    body: Bytes,
) -> Response {
    let Some(axum::Extension(client)) = client else {
        return unauthorized(Dialect::OpenAiChat, AuthFailure::Missing);
    };
    let Some(store) = s.clients.store() else {
        return super::usage::ledger_disabled();
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return bad(
                "body",
                "the body must be a JSON object {\"model_preferences\": [string], \"api_address\": string}",
            );
        }
    };
    let mut c = (*client).clone();
    if let Some(m) = v.get("model_preferences") {
        match serde_json::from_value::<Vec<String>>(m.clone()) {
            Ok(list) => c.policy.model_preferences = list,
            Err(_) => {
                return bad(
                    "model_preferences",
                    "model_preferences must be an array of model names",
                );
            }
        }
    }
    match v.get("api_address") {
        None => {}
        Some(Value::Null) => c.policy.api_address = None,
        Some(Value::String(a)) => c.policy.api_address = Some(a.clone()),
        Some(_) => return bad("api_address", "api_address must be a string or null"),
    }
    if let Err(e) = store.update_client(&c.to_row()).await {
        return super::usage::db_error(&e);
    }
    if let Err(e) = s.clients.reload().await {
        tracing::warn!("clients: reload after a preferences change failed: {e}");
    }
    tracing::info!(client = %c.id, "user preferences updated");
    prefs_json(&c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_is_read_from_each_header_and_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h, Some("alt=sse&key=ek-q")), Some("ek-q"));
        // Azure clients (AzureOpenAI) send `api-key`.
        h.insert("api-key", HeaderValue::from_static("ek-a"));
        assert_eq!(presented_key(&h, Some("api-version=1")), Some("ek-a"));
        h.insert("x-goog-api-key", HeaderValue::from_static("ek-g"));
        assert_eq!(presented_key(&h, None), Some("ek-g"));
        h.insert("x-api-key", HeaderValue::from_static("ek-x"));
        assert_eq!(presented_key(&h, None), Some("ek-x"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer ek-b"),
        );
        assert_eq!(presented_key(&h, None), Some("ek-b"));
        assert!(guarded("/v1/chat/completions") && guarded("/v1beta/models/x"));
        assert!(guarded("/embeddings") && guarded("/openai/deployments/d/chat/completions"));
        assert!(!guarded("/health") && !guarded("/admin/clients") && !guarded("/usage"));
    }
}
