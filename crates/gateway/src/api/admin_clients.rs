//! The admin API for clients: `POST /admin/clients` (returns the key once), `GET /admin/clients`
//! (prefixes and month-to-date spend, never keys), `GET|PATCH|DELETE /admin/clients/{id}` (DELETE
//! revokes), `POST /admin/clients/{id}/rotate` (a new key, shown once; the old one stops working).
//! Every call needs `Authorization: Bearer $EKAI_ADMIN_TOKEN` (compared in constant time);
//! without an admin token configured the API does not exist (404). Calls are logged (never keys).

use super::AppState;
use super::error::render;
use crate::clients::limits::Limits;
use crate::clients::{Client, OnDisallowed, Policy, key};
use crate::error::GatewayError;
use crate::ledger::money::{json_usd, to_nano};
use crate::ledger::time::{format_rfc3339, now_ms, parse_rfc3339};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::{Dialect, ErrorKind};
use http::{HeaderMap, StatusCode};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

fn error(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Response {
    let mut e = GatewayError::invalid(message);
    e.status = status;
    e.kind = kind;
    render(Dialect::OpenAiChat, &e)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, ErrorKind::NotFound, "not found")
}

/// The admin token as a bearer, or a dashboard sign-in cookie (see `session::is_admin`).
pub(super) fn is_admin(s: &AppState, headers: &HeaderMap) -> bool {
    super::session::is_admin(s, headers)
}

/// None when the caller may proceed; otherwise the refusal.
fn check_admin(s: &AppState, headers: &HeaderMap) -> Option<Response> {
    if s.clients.admin_token.is_none() {
        return Some(not_found());
    }
    if is_admin(s, headers) {
        None
    } else {
        tracing::warn!("admin API: refused a call without the admin token");
        Some(error(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            "the admin API needs `Authorization: Bearer <EKAI_ADMIN_TOKEN>`",
        ))
    }
}

fn bad(message: impl Into<String>) -> Response {
    render(Dialect::OpenAiChat, &GatewayError::invalid(message))
}

fn unavailable(what: &str) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Api,
        format!("client keys are unavailable: {what}"),
    )
}

/// A client as the admin API shows it: never the key or its hash.
fn client_json(s: &AppState, c: &Client) -> Value {
    let status = if c.revoked_at.is_some() {
        "revoked"
    } else if c.expires_at.is_some_and(|t| t <= now_ms()) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": c.id,
        "name": c.name,
        "key_prefix": c.key_prefix,
        "status": status,
        "created_at": format_rfc3339(c.created_at),
        "expires_at": c.expires_at.map(format_rfc3339),
        "revoked_at": c.revoked_at.map(format_rfc3339),
        "tags": c.tags,
        "model_preferences": c.policy.model_preferences,
        "on_disallowed_model": c.policy.on_disallowed_model,
        "default_model": c.policy.default_model,
        "limits": c.policy.limits,
        "budget_usd": c.policy.budget_usd.map(|d| json_usd(to_nano(d))),
        "api_address": c.policy.api_address,
        "upstream_keys": c.upstream_sealed.keys().collect::<Vec<_>>(),
        "spent_month_to_date_usd": s.clients.spent(&c.id).map(|d| json_usd(to_nano(d))),
    })
}

/// Fields of POST and PATCH (PATCH: every field optional; `null` clears an optional one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    name: Option<String>,
    model_preferences: Option<Vec<String>>,
    on_disallowed_model: Option<OnDisallowed>,
    #[serde(default, deserialize_with = "present")]
    default_model: Option<Option<String>>,
    limits: Option<Limits>,
    #[serde(default, deserialize_with = "present")]
    budget_usd: Option<Option<serde_json::Number>>,
    /// RFC 3339 time, or null for never.
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<String>>,
    tags: Option<Value>,
    /// Provider → the client's own upstream key (null removes it); stored encrypted, never shown.
    upstream_keys: Option<std::collections::BTreeMap<String, Option<String>>>,
}

/// Distinguishes an absent field (None) from an explicit null (Some(None)).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn parse_body(bytes: &[u8]) -> Result<Body, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid body: {e}"))
}

/// `apply`, its message rendered as a 400.
fn apply_or_400(s: &AppState, c: &mut Client, b: Body) -> Option<Response> {
    apply(c, b, s.clients.master_key()).err().map(bad)
}

/// Applies the body's fields onto `c`; Err is the client's mistake.
fn apply(c: &mut Client, b: Body, master: Option<&crate::config::Secret>) -> Result<(), String> {
    if let Some(keys) = b.upstream_keys {
        for (provider, key) in keys {
            match key {
                None => {
                    c.upstream_sealed.remove(&provider);
                }
                Some(k) if !k.trim().is_empty() => {
                    let m = master.ok_or("upstream_keys need EKAI_MASTER_KEY")?;
                    c.upstream_sealed
                        .insert(provider, crate::clients::seal::seal(m, &c.id, k.trim())?);
                }
                Some(_) => return Err(format!("upstream_keys.{provider} must not be empty")),
            }
        }
    }
    if let Some(n) = b.name {
        let n = n.trim().to_string();
        if n.is_empty() || n.len() > 200 {
            return Err("name must be 1 to 200 characters".into());
        }
        c.name = n;
    }
    if let Some(m) = b.model_preferences {
        c.policy.model_preferences = m;
    }
    if let Some(o) = b.on_disallowed_model {
        c.policy.on_disallowed_model = o;
    }
    if let Some(d) = b.default_model {
        c.policy.default_model = d;
    }
    if let Some(l) = b.limits {
        c.policy.limits = l;
    }
    if let Some(b) = b.budget_usd {
        c.policy.budget_usd = match b {
            None => None,
            Some(n) => match n.to_string().parse::<Decimal>() {
                Ok(d) if !d.is_sign_negative() && d < Decimal::from(1_000_000_000i64) => Some(d),
                _ => {
                    return Err(
                        "budget_usd must be a non-negative number below 1e9, or null".into(),
                    );
                }
            },
        };
    }
    if let Some(e) = b.expires_at {
        c.expires_at = match e {
            None => None,
            Some(t) => Some(parse_rfc3339(&t).ok_or_else(|| {
                "expires_at must be an RFC 3339 time (2026-12-31T00:00:00Z) or null".to_string()
            })?),
        };
    }
    if let Some(t) = b.tags {
        c.tags = t;
    }
    Ok(())
}

async fn reload(s: &AppState) {
    if let Err(e) = s.clients.reload().await {
        tracing::warn!("clients: reload after an admin change failed: {e}");
    }
}

pub async fn create(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    let (Some(store), Some(master)) = (s.clients.store(), s.clients.master_key()) else {
        return unavailable("set DATABASE_URL (a ledger database) and EKAI_MASTER_KEY");
    };
    let b = match parse_body(&body) {
        Ok(b) => b,
        Err(m) => return bad(m),
    };
    if b.name.is_none() {
        return bad("name is required");
    }
    let (secret, id) = match (key::generate_key(), key::new_client_id()) {
        (Ok(k), Ok(i)) => (k, i),
        _ => return unavailable("the system random number generator failed"),
    };
    let mut c = Client::from_row(
        crate::ledger::store::ClientRow {
            id,
            name: String::new(),
            key_prefix: key::shown_prefix(&secret),
            key_hash: key::hash_key(master, &secret),
            created_at: now_ms(),
            expires_at: None,
            revoked_at: None,
            tags: "{}".into(),
            policy: serde_json::to_string(&Policy::default()).unwrap_or_else(|_| "{}".into()),
            upstream_keys: "{}".into(),
        },
        None,
    );
    if let Some(r) = apply_or_400(&s, &mut c, b) {
        return r;
    }
    if let Err(e) = store.insert_client(&c.to_row()).await {
        return super::usage::db_error(&e);
    }
    reload(&s).await;
    tracing::info!(client = %c.id, name = %c.name, prefix = %c.key_prefix, "admin: client created");
    let mut v = client_json(&s, &c);
    v["key"] = Value::String(secret);
    v["key_notice"] =
        Value::String("store this key now: it is shown only once and cannot be recovered".into());
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    if let Err(e) = s.clients.reload().await {
        tracing::warn!("clients: reload failed: {e}");
    }
    let data: Vec<Value> = s.clients.all().iter().map(|c| client_json(&s, c)).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

pub async fn show(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    match s.clients.get(&id) {
        Some(c) => axum::Json(client_json(&s, &c)).into_response(),
        None => not_found(),
    }
}

pub async fn update(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    let Some(store) = s.clients.store() else {
        return unavailable("set DATABASE_URL (a ledger database)");
    };
    let Some(c) = s.clients.get(&id) else {
        return not_found();
    };
    let b = match parse_body(&body) {
        Ok(b) => b,
        Err(m) => return bad(m),
    };
    let mut c = (*c).clone();
    if let Some(r) = apply_or_400(&s, &mut c, b) {
        return r;
    }
    match store.update_client(&c.to_row()).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return super::usage::db_error(&e),
    }
    reload(&s).await;
    tracing::info!(client = %c.id, "admin: client updated");
    axum::Json(client_json(&s, &c)).into_response()
}

pub async fn revoke(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    let Some(store) = s.clients.store() else {
        return unavailable("set DATABASE_URL (a ledger database)");
    };
    let Some(c) = s.clients.get(&id) else {
        return not_found();
    };
    let mut c = (*c).clone();
    if c.revoked_at.is_none() {
        c.revoked_at = Some(now_ms());
    }
    match store.update_client(&c.to_row()).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return super::usage::db_error(&e),
    }
    reload(&s).await;
    tracing::info!(client = %c.id, "admin: client revoked");
    axum::Json(client_json(&s, &c)).into_response()
}

pub async fn rotate(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    let (Some(store), Some(master)) = (s.clients.store(), s.clients.master_key()) else {
        return unavailable("set DATABASE_URL (a ledger database) and EKAI_MASTER_KEY");
    };
    if s.clients.get(&id).is_none() {
        return not_found();
    }
    let Ok(secret) = key::generate_key() else {
        return unavailable("the system random number generator failed");
    };
    let prefix = key::shown_prefix(&secret);
    match store
        .set_client_key(&id, &prefix, &key::hash_key(master, &secret))
        .await
    {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return super::usage::db_error(&e),
    }
    reload(&s).await;
    tracing::info!(client = %id, prefix = %prefix, "admin: client key rotated");
    let Some(c) = s.clients.get(&id) else {
        return not_found();
    };
    let mut v = client_json(&s, &c);
    v["key"] = Value::String(secret);
    v["key_notice"] =
        Value::String("store this key now: it is shown only once and cannot be recovered".into());
    axum::Json(v).into_response()
}
