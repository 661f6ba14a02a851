//! The dashboard: a single page (plain HTML/CSS/JS, SVG charts drawn by hand) embedded in the binary,
//! served under `/dashboard` on the API port and at `/` on `UI_PORT`, plus the access guard of its
//! JSON API (`/admin/stats/*`, `/admin/stream`).

use super::AppState;
use super::error::render;
use super::{session, stats};
use crate::error::GatewayError;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ekai_wire::canonical::{Dialect, ErrorKind};
use http::{HeaderValue, StatusCode, header};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

const INDEX_HTML: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
const APP_CSS: &str = include_str!("../../assets/dashboard/app.css");
const FAVICON_SVG: &str = include_str!("../../assets/dashboard/favicon.svg");

/// The dashboard's routes, shared by the API router and the `UI_PORT` router.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let admin = Router::new()
        .route("/admin/stats/overview", get(stats::overview))
        .route("/admin/stats/requests", get(stats::requests))
        .route("/admin/stats/providers", get(stats::providers))
        .route("/admin/stats/models", get(stats::models))
        .route("/admin/stream", get(stats::stream))
        .route_layer(middleware::from_fn_with_state(state, guard));
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/app.css", get(app_css))
        .route("/dashboard/favicon.svg", get(favicon))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/session", get(session_info))
        .merge(admin)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}

fn denied(status: StatusCode, kind: ErrorKind, message: &str) -> Response {
    let mut e = GatewayError::invalid(message);
    e.status = status;
    e.kind = kind;
    render(Dialect::OpenAiChat, &e)
}

/// With an admin token configured: the token as a bearer (CLI, scripts) or a sign-in cookie (the
/// page, see `session`). Without one (open mode): loopback peers only.
async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if state.admin_token.is_some() {
        if session::is_admin(&state, req.headers()) {
            return next.run(req).await;
        }
        if let Some(refused) = state.admin_guess_throttled(&req) {
            return refused;
        }
        let message = if req.headers().contains_key(header::AUTHORIZATION) {
            "the admin token is not valid"
        } else {
            "sign in with the admin token (POST /admin/login) or send Authorization: Bearer <EKAI_ADMIN_TOKEN>"
        };
        return denied(StatusCode::UNAUTHORIZED, ErrorKind::Authentication, message);
    }
    if is_remote(&req) {
        return denied(
            StatusCode::FORBIDDEN,
            ErrorKind::PermissionDenied,
            "the dashboard API is reachable from loopback only unless EKAI_ADMIN_TOKEN is set",
        );
    }
    next.run(req).await
}

fn is_remote(req: &Request) -> bool {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| !c.0.ip().is_loopback())
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

/// `POST /admin/login {"token": "<EKAI_ADMIN_TOKEN>"}` → 204 with the session cookie.
async fn login(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = state.login_throttled(peer.map(|p| p.0.0.ip())) {
        return refused;
    }
    let Some(admin) = &state.admin_token else {
        return denied(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no admin token is configured: the dashboard is open to loopback peers without sign-in",
        );
    };
    let Ok(Login { token }) = serde_json::from_slice::<Login>(&body) else {
        return denied(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest,
            "the body must be JSON: {\"token\": \"<EKAI_ADMIN_TOKEN>\"}",
        );
    };
    let token = token.trim();
    let ok = token.len() == admin.expose().len()
        && bool::from(token.as_bytes().ct_eq(admin.expose().as_bytes()));
    if !ok {
        tracing::warn!("dashboard: refused a sign-in with a wrong admin token");
        return denied(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            "the admin token is not valid",
        );
    }
    let Some(id) = state.sessions.create() else {
        return denied(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Overloaded,
            "the system random number generator failed",
        );
    };
    with_cookie(StatusCode::NO_CONTENT, &session::set_cookie(&id))
}

/// `POST /admin/logout`: ends the session on the server and clears the cookie.
async fn logout(State(state): State<Arc<AppState>>, headers: http::HeaderMap) -> Response {
    if let Some(id) = session::from_headers(&headers) {
        state.sessions.end(id);
    }
    with_cookie(StatusCode::NO_CONTENT, &session::clear_cookie())
}

/// `GET /admin/session`: what the page should show (sign-in form, Clients tab). Reveals nothing
/// but whether sign-in is needed and whether this caller has it.
async fn session_info(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let auth_required = state.admin_token.is_some();
    let signed_in = if auth_required {
        session::is_admin(&state, req.headers())
    } else {
        !is_remote(&req)
    };
    axum::Json(serde_json::json!({
        "auth_required": auth_required,
        "signed_in": signed_in,
        "clients": auth_required && state.clients.store().is_some(),
    }))
    .into_response()
}

fn with_cookie(status: StatusCode, cookie: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
