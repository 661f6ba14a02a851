//! The admin API for clients, under `/admin/api/` (and, as before, `/admin/`): `POST clients`
//! (returns the key once), `GET clients` (prefixes and month-to-date spend, never keys),
//! `GET|PATCH|DELETE clients/{id}` (DELETE revokes), `POST clients/{id}/rotate` (a new key, shown
//! once; the old one stops working), `GET clients/{id}/usage`, `GET providers` (health), `GET
//! receipts` (Sapphire usage receipts: pending, mined, given up, and the given-up ones), `POST
//! receipts/retry` (given-up receipts back in the queue: all, or `{"request_hash"}`).
//! The operations themselves live in `clients::admin`, shared with the CLI.
//! Every call needs `Authorization: Bearer $EKAI_ADMIN_TOKEN` (compared in constant time);
//! without an admin token configured the API does not exist (404). Calls are logged (never keys).

use super::AppState;
use super::error::render;
use crate::clients::Client;
use crate::clients::admin::{self, AdminError, Changes};
use crate::error::GatewayError;
use crate::ledger::money::{json_usd, to_nano};
use crate::ledger::time::{format_rfc3339, now_ms};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::{Dialect, ErrorKind};
use http::{HeaderMap, StatusCode};
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
        "providers": c.policy.providers,
        "system_prompt_prefix": c.policy.system_prompt_prefix,
        "budget_usd": c.policy.budget_usd.map(|d| json_usd(to_nano(d))),
        "budget_usd_day": c.policy.budget_usd_day.map(|d| json_usd(to_nano(d))),
        "spent_today_usd": s.clients.spent_today(&c.id).map(|d| json_usd(to_nano(d))),
        "api_address": c.policy.api_address,
        "upstream_keys": c.upstream_sealed.keys().collect::<Vec<_>>(),
        "spent_month_to_date_usd": s.clients.spent(&c.id).map(|d| json_usd(to_nano(d))),
    })
}

fn parse_body(bytes: &[u8]) -> Result<Changes, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid body: {e}"))
}

fn refusal(e: AdminError) -> Response {
    match e {
        AdminError::NotFound => not_found(),
        AdminError::Invalid(m) => bad(m),
        AdminError::Unavailable(m) => unavailable(m),
        AdminError::Db(e) => super::usage::db_error(&e),
    }
}

async fn reload(s: &AppState) {
    if let Err(e) = s.clients.reload().await {
        tracing::warn!("clients: reload after an admin change failed: {e}");
    }
}

/// The client as the API shows it, plus its new key (shown once).
fn with_key(s: &AppState, c: &Client, key: String) -> Value {
    let mut v = client_json(s, c);
    v["key"] = Value::String(key);
    v["key_notice"] =
        Value::String("store this key now: it is shown only once and cannot be recovered".into());
    v
}

pub async fn create(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    let (Some(store), Some(master)) = (s.clients.store(), s.clients.master_key()) else {
        return unavailable("set DATABASE_URL (a ledger database) and EKAI_MASTER_KEY");
    };
    let changes = match parse_body(&body) {
        Ok(b) => b,
        Err(m) => return bad(m),
    };
    let (c, key) = match admin::create(store, master, changes).await {
        Ok(v) => v,
        Err(e) => return refusal(e),
    };
    reload(&s).await;
    tracing::info!(target: "ekai::audit", client = %c.id, name = %c.name, prefix = %c.key_prefix, "admin: client created");
    (StatusCode::CREATED, axum::Json(with_key(&s, &c, key))).into_response()
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
    let changes = match parse_body(&body) {
        Ok(b) => b,
        Err(m) => return bad(m),
    };
    let c = match admin::update(store, s.clients.master_key(), &id, changes).await {
        Ok(c) => c,
        Err(e) => return refusal(e),
    };
    reload(&s).await;
    tracing::info!(target: "ekai::audit", client = %c.id, "admin: client updated");
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
    let c = match admin::revoke(store, s.clients.master_key(), &id).await {
        Ok(c) => c,
        Err(e) => return refusal(e),
    };
    reload(&s).await;
    tracing::info!(target: "ekai::audit", client = %c.id, "admin: client revoked");
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
    let (c, key) = match admin::rotate(store, master, &id).await {
        Ok(v) => v,
        Err(e) => return refusal(e),
    };
    reload(&s).await;
    tracing::info!(target: "ekai::audit", client = %c.id, prefix = %c.key_prefix, "admin: client key rotated");
    axum::Json(with_key(&s, &c, key)).into_response()
}

/// `GET /admin/api/clients/{id}/usage`: the client's usage and cost (the `/usage` report filtered
/// to its key; `startTime`, `endTime`, `groupBy` as there), with its month-to-date spend.
pub async fn usage(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(mut q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    if s.clients.get(&id).is_none() {
        return not_found();
    }
    q.insert("key".into(), id);
    super::usage::get_usage(State(s), axum::extract::Query(q)).await
}

/// `GET /admin/api/providers`: configured providers with their health, for scripts.
/// The admin check, then the ledger's store (the outbox lives there).
fn receipts_store<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a crate::ledger::store::Store, Box<Response>> {
    if let Some(r) = check_admin(s, headers) {
        return Err(Box::new(r));
    }
    s.ledger.as_ref().map(crate::ledger::Ledger::store).ok_or_else(|| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Api,
            "receipts are kept in the ledger database, and the ledger is off (DATABASE_URL=none)",
        ))
    })
}

fn database_down(doing: &str, e: &sqlx::Error) -> Response {
    tracing::warn!("admin API: {doing} failed: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Api,
        "the ledger database did not answer; try again",
    )
}

/// `GET /admin/api/receipts`: the Sapphire receipt outbox: how many receipts are pending, mined
/// and given up (their transactions kept reverting), and the latest 100 given up, with the error.
pub async fn receipts(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let store = match receipts_store(&s, &headers) {
        Ok(store) => store,
        Err(r) => return *r,
    };
    let read = async {
        let counts = store.outbox_counts().await?;
        let given_up = store.outbox_given_up(100).await?;
        Ok::<_, sqlx::Error>((counts, given_up))
    };
    match read.await {
        Ok(((pending, mined, given_up_count), given_up)) => {
            let rows: Vec<Value> = given_up
                .iter()
                .map(|r| {
                    json!({
                        "request_id": r.request_id,
                        "request_hash": r.request_hash,
                        "reverts": r.reverts,
                        "attempts": r.attempts,
                        "last_error": r.last_error,
                        "given_up_at": r.given_up_at.map(format_rfc3339),
                    })
                })
                .collect();
            Json(json!({
                "pending": pending,
                "mined": mined,
                "given_up": given_up_count,
                "given_up_receipts": rows,
            }))
            .into_response()
        }
        Err(e) => database_down("reading the receipt outbox", &e),
    }
}

/// `POST /admin/api/receipts/retry` `{}` or `{"request_hash": "0x…"}`: puts given-up receipts back
/// in the queue (e.g. once the control plane accepts them again) → `{"requeued": n}`.
pub async fn retry_receipts(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let store = match receipts_store(&s, &headers) {
        Ok(store) => store,
        Err(r) => return *r,
    };
    let hash = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => match o.get("request_hash") {
                None | Some(Value::Null) => None,
                Some(Value::String(h)) => Some(h.to_ascii_lowercase()),
                Some(_) => return bad("`request_hash` must be the receipt's 0x… hash"),
            },
            _ => {
                return bad(
                    "the body must be {} (every given-up receipt) or {\"request_hash\": \"0x…\"}",
                );
            }
        }
    };
    match store.outbox_requeue(hash.as_deref()).await {
        Ok(n) => {
            tracing::info!(
                requeued = n,
                "admin: given-up receipts put back in the queue"
            );
            Json(json!({ "requeued": n })).into_response()
        }
        Err(e) => database_down("re-queueing receipts", &e),
    }
}

pub async fn providers(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(r) = check_admin(&s, &headers) {
        return r;
    }
    super::stats::providers(State(s)).await
}
