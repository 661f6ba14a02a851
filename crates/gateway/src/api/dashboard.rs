//! The dashboard: a single page (plain HTML/CSS/JS, SVG charts drawn by hand) embedded in the binary,
//! served under `/dashboard` on the API port and at `/` on `UI_PORT`, plus the access guard of its
//! JSON API (`/admin/stats/*`, `/admin/stream`).

use super::AppState;
use super::error::render;
use super::stats;
use crate::error::GatewayError;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ekai_wire::canonical::{Dialect, ErrorKind};
use http::{HeaderValue, StatusCode, header};
use std::net::SocketAddr;
use std::sync::Arc;

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

/// Byte-wise comparison that does not stop at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// With an admin token configured: `Authorization: Bearer <token>` (or, for `EventSource`, which
/// cannot set headers, `?access_token=` on `/admin/stream`). Without one (open mode): loopback
/// peers only.
///
/// TODO(keys mode): replace the bearer check with the login form + session cookie (httpOnly,
/// SameSite=Strict, random id) once the admin/clients work lands, and share its token field.
async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match &state.admin_token {
        Some(token) => {
            let bearer = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let query = (req.uri().path() == "/admin/stream")
                .then(|| req.uri().query())
                .flatten()
                .and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("access_token="))
                        .map(str::to_string)
                });
            let given = bearer.map(str::to_string).or(query);
            match given {
                Some(g) if same(g.as_bytes(), token.expose().as_bytes()) => next.run(req).await,
                Some(_) => denied(
                    StatusCode::UNAUTHORIZED,
                    ErrorKind::Authentication,
                    "the admin token is not valid",
                ),
                None => denied(
                    StatusCode::UNAUTHORIZED,
                    ErrorKind::Authentication,
                    "this endpoint needs the admin token: Authorization: Bearer <EKAI_ADMIN_TOKEN>",
                ),
            }
        }
        None => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            match peer {
                Some(ip) if !ip.is_loopback() => denied(
                    StatusCode::FORBIDDEN,
                    ErrorKind::PermissionDenied,
                    "the dashboard API is reachable from loopback only unless EKAI_ADMIN_TOKEN is set",
                ),
                _ => next.run(req).await,
            }
        }
    }
}
