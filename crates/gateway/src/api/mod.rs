//! The HTTP surface: one file per inbound concern; errors rendered only here (`error`).

mod admin_clients;
mod budget;
mod clients;
mod dashboard;
mod error;
mod generate;
mod info;
mod stats;
mod usage;

use crate::accounting::UsageRecord;
use crate::clients::Registry;
use crate::config::Secret;
use crate::ledger::Ledger;
use crate::proxy::Proxy;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct AppState {
    pub proxy: Proxy,
    pub body_limit: usize,
    /// None when the ledger is disabled; `/usage` and `/budget` then answer 503.
    pub ledger: Option<Ledger>,
    /// Client keys and their policies (an empty, open registry without a database).
    pub clients: Arc<Registry>,
    request_seq: AtomicU64,
    /// Mixed into request ids so two processes do not repeat each other's ids.
    id_seed: u64,
    /// Every finished record, for `/admin/stream` (None: the proxy's sink is not a `BroadcastSink`).
    pub live: Option<tokio::sync::broadcast::Sender<Arc<UsageRecord>>>,
    /// When set, the dashboard's API requires `Authorization: Bearer <token>`.
    pub admin_token: Option<Secret>,
    /// Flipped to true when the server begins to shut down: ends the open `/admin/stream`s so that
    /// graceful shutdown does not wait for them forever.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    pub fn new(proxy: Proxy, body_limit: usize, id_seed: u64) -> Self {
        AppState {
            proxy,
            body_limit,
            ledger: None,
            clients: Arc::new(Registry::disabled()),
            request_seq: AtomicU64::new(0),
            id_seed,
            live: None,
            admin_token: None,
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    pub fn with_live(
        mut self,
        live: Option<tokio::sync::broadcast::Sender<Arc<UsageRecord>>>,
    ) -> Self {
        self.live = live;
        self
    }

    pub fn with_admin_token(mut self, token: Option<Secret>) -> Self {
        self.admin_token = token;
        self
    }

    pub fn with_ledger(mut self, ledger: Option<Ledger>) -> Self {
        self.ledger = ledger;
        self
    }

    pub fn with_clients(mut self, clients: Arc<Registry>) -> Self {
        self.clients = clients;
        self
    }

    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("req_{:016x}{:08x}", self.id_seed, n)
    }
}

/// Builds the router.
///
/// Middleware order, outermost first:
/// 0. `security_headers`: `nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` on every
///    response, refusals included.
/// 1. `clients::guard` (client keys), on the API paths only (`/v1/*`, `/v1beta/*`,
///    `/chat/completions`, `/responses`, `/embeddings`, `/openai/*` (Azure-style), `/user/preferences`): reloads the client cache when stale,
///    authenticates the key when keys are required (401 in the path's dialect otherwise), then
///    applies the client's rate limits (429 with `Retry-After`), and puts the `Client` in the
///    request's extensions. In open mode it lets everything through untouched. In keys mode it
///    also requires the admin token on `/usage` and `/budget` (everyone's usage, the global cap).
/// 2. The handlers. Handlers read their own bodies within `body_limit` so that an oversized or
///    malformed body is answered in the client's dialect; axum's default body limit is therefore
///    disabled. `generate` applies the client's model policy once the body is read, and the proxy
///    admits the client's budget beside the gateway's; the ledger records the client id.
///
/// `/admin/clients*` checks the admin token in its handlers (404 when none is configured);
/// `dashboard::guard` protects `/admin/stats/*` and `/admin/stream` (admin token, or loopback peers
/// when no token is configured).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(info::root))
        .route("/health", get(info::health))
        .route("/v1/models", get(info::models))
        .route("/models", get(info::models))
        .route("/v1/chat/completions", post(generate::chat_completions))
        .route("/chat/completions", post(generate::chat_completions))
        .route("/v1/messages", post(generate::messages))
        .route("/v1/messages/count_tokens", post(generate::count_tokens))
        .route(
            "/v1/responses",
            post(generate::responses).get(info::no_websocket),
        )
        .route("/responses", post(generate::responses))
        .route("/v1/embeddings", post(generate::embeddings))
        .route("/embeddings", post(generate::embeddings))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(generate::azure_chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(generate::azure_embeddings),
        )
        .route("/v1beta/models/{model_action}", post(generate::gemini))
        .route("/v1/models/{model_action}", post(generate::gemini))
        .route("/usage", get(usage::get_usage))
        .route("/budget", get(budget::get_budget).put(budget::put_budget))
        .merge(dashboard::routes(Arc::clone(&state)))
        .route(
            "/user/preferences",
            get(clients::get_preferences).put(clients::put_preferences),
        )
        .route(
            "/admin/clients",
            get(admin_clients::list).post(admin_clients::create),
        )
        .route(
            "/admin/clients/{id}",
            get(admin_clients::show)
                .patch(admin_clients::update)
                .delete(admin_clients::revoke),
        )
        .route("/admin/clients/{id}/rotate", post(admin_clients::rotate))
        .fallback(info::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            clients::guard,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Set on every response, errors and refusals included: the API serves JSON and event streams
/// that must never be sniffed, framed or leak the page they were called from.
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    use http::HeaderValue;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

/// The dashboard's own listener (`UI_PORT`): the page at `/` and under `/dashboard`, its JSON API
/// and `/budget`; nothing that proxies to a provider.
pub fn ui_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/budget", get(budget::get_budget).put(budget::put_budget))
        .merge(dashboard::routes(Arc::clone(&state)))
        .fallback(info::not_found)
        .with_state(state)
}
