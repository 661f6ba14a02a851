//! The HTTP surface: one file per inbound concern; errors rendered only here (`error`).

mod admin_clients;
mod budget;
mod clients;
mod dashboard;
mod error;
mod generate;
mod info;
pub mod login_limit;
mod sapphire;
mod session;
mod stats;
mod usage;

use crate::accounting::UsageRecord;
use crate::clients::Registry;
use crate::config::Secret;
use crate::error::GatewayError;
use crate::ledger::Ledger;
use crate::proxy::Proxy;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
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
    /// Browser origins allowed by CORS (empty: CORS off).
    pub cors_origins: Vec<String>,
    /// Dashboard sign-ins (session cookies), see `session`.
    pub sessions: session::Sessions,
    /// Flipped to true when the server begins to shut down: ends the open `/admin/stream`s so that
    /// graceful shutdown does not wait for them forever.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The X25519 key of sealed secrets and, in Sapphire mode, the control plane.
    pub sapphire: Arc<crate::sapphire::Sapphire>,
    /// Sign-in attempts per client address (`login_limit`).
    pub login_limiter: login_limit::LoginLimiter,
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
            cors_origins: Vec::new(),
            sessions: session::Sessions::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            sapphire: Arc::new(crate::sapphire::Sapphire::disabled()),
            login_limiter: login_limit::LoginLimiter::new(
                crate::config::DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE,
            ),
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

    pub fn with_login_limit(mut self, per_minute: u32) -> Self {
        self.login_limiter = login_limit::LoginLimiter::new(per_minute);
        self
    }

    /// A request carrying an admin bearer token that is not the admin token is a sign-in attempt
    /// (else guessing would just move from the login to the API): counted against its peer, and
    /// the 429 to answer when the address is over its limit.
    pub fn admin_guess_throttled(&self, req: &axum::extract::Request) -> Option<Response> {
        if self.admin_token.is_none()
            || !req.headers().contains_key(http::header::AUTHORIZATION)
            || session::is_admin(self, req.headers())
        {
            return None;
        }
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        self.login_throttled(peer)
    }

    /// Counts a sign-in attempt from `peer`: the 429 to answer when the address is over its limit.
    pub fn login_throttled(&self, peer: Option<std::net::IpAddr>) -> Option<Response> {
        let now = crate::ledger::time::now_ms() / 1000;
        let retry = self
            .login_limiter
            .attempt(peer, u64::try_from(now).unwrap_or(0))
            .err()?;
        tracing::warn!(peer = ?peer, "sign-in attempts over the limit; refused for {retry}s");
        Some(error::render(
            ekai_wire::canonical::Dialect::OpenAiChat,
            &GatewayError::client_rate_limited(
                "too many sign-in attempts from this address; try again in a minute",
                retry,
            ),
        ))
    }

    pub fn with_cors(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins;
        self
    }

    pub fn with_ledger(mut self, ledger: Option<Ledger>) -> Self {
        self.ledger = ledger;
        self
    }

    pub fn with_sapphire(mut self, sapphire: Arc<crate::sapphire::Sapphire>) -> Self {
        self.sapphire = sapphire;
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
///    request's extensions. A wallet session token (`ekw_…`, Sapphire mode) is authenticated in
///    every mode. In open mode it lets everything else through untouched. In keys mode it
///    also requires the admin token on `/usage` and `/budget` (everyone's usage, the global cap).
/// 2. The handlers. Handlers read their own bodies within `body_limit` so that an oversized or
///    malformed body is answered in the client's dialect; axum's default body limit is therefore
///    disabled. `generate` applies the client's model policy once the body is read, and the proxy
///    admits the client's budget beside the gateway's; the ledger records the client id. In
///    Sapphire mode `generate` requires a wallet client (401 `WALLET_LOGIN_REQUIRED`) and the
///    proxy checks each candidate on chain before trying it.
///
/// `/rofl/public-key` is public; `/auth/login` checks its own EIP-712 signature.
///
/// `/admin/clients*` checks the admin token in its handlers (404 when none is configured);
/// `dashboard::guard` protects `/admin/stats/*` and `/admin/stream` (admin token, or loopback peers
/// when no token is configured).
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors_layer(&state.cors_origins);
    let app = Router::new()
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
        .merge(admin_client_routes(Arc::clone(&state)))
        .route("/rofl/public-key", get(sapphire::public_key))
        .route("/auth/login", post(sapphire::login))
        .fallback(info::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            clients::guard,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    match cors {
        Some(c) => app.layer(c),
        None => app,
    }
}

/// CORS for the configured origins (outermost, so preflights are answered before the key check,
/// as browsers send them without credentials). Off (None) when no origin is configured.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| http::HeaderValue::from_str(o).ok()),
        )
    };
    let expose = [
        "x-request-id",
        "x-ekai-provider",
        "x-ekai-model",
        "retry-after",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ]
    .map(http::HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                http::Method::GET,
                http::Method::POST,
                http::Method::PUT,
                http::Method::OPTIONS,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(expose)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Set on every response, errors and refusals included: the API serves JSON and event streams
/// that must never be sniffed, framed or leak the page they were called from.
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    use http::{HeaderValue, header};
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The admin API for clients (each handler checks the admin token or sign-in cookie itself).
fn admin_client_routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let mut r = Router::new();
    // `/admin/api/…` is the documented prefix; `/admin/…` stays for existing scripts.
    for base in ["/admin/api", "/admin"] {
        r = r
            .route(
                &format!("{base}/clients"),
                get(admin_clients::list).post(admin_clients::create),
            )
            .route(
                &format!("{base}/clients/{{id}}"),
                get(admin_clients::show)
                    .patch(admin_clients::update)
                    .delete(admin_clients::revoke),
            )
            .route(
                &format!("{base}/clients/{{id}}/rotate"),
                post(admin_clients::rotate),
            );
    }
    r.route("/admin/api/clients/{id}/usage", get(admin_clients::usage))
        .route("/admin/api/providers", get(admin_clients::providers))
        .route("/admin/api/receipts", get(admin_clients::receipts))
        .route(
            "/admin/api/receipts/retry",
            post(admin_clients::retry_receipts),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            count_admin_guesses,
        ))
}

/// Wrong admin bearer tokens on the admin API count as sign-in attempts (the handlers check the
/// token themselves).
async fn count_admin_guesses(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match state.admin_guess_throttled(&req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

/// The dashboard's own listener (`UI_PORT`): the page at `/` and under `/dashboard`, its JSON API,
/// the clients admin API (the Clients page) and `/budget`; nothing that proxies to a provider.
pub fn ui_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/budget", get(budget::get_budget).put(budget::put_budget))
        .merge(dashboard::routes(Arc::clone(&state)))
        .merge(admin_client_routes(Arc::clone(&state)))
        .fallback(info::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}
