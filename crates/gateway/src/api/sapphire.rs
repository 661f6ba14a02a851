//! Sapphire mode at the HTTP edge: `GET /rofl/public-key` and `POST /auth/login`.

use super::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::Value;
use std::sync::Arc;

/// `{publicKey, publicKeyBytes, isInsideRofl, isAvailable, usage}`: what to register with the
/// control plane and to seal provider keys to. Public, like the key itself.
pub async fn public_key(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(s.sapphire.public_key_json())
}
