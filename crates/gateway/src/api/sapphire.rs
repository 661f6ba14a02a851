//! Sapphire mode at the HTTP edge: `GET /rofl/public-key` and `POST /auth/login`.

use super::AppState;
use super::error::render;
use crate::clients::wallet::LoginRefusal;
use crate::error::GatewayError;
use crate::ledger::time::now_ms;
use crate::sapphire::login::{self, Login, LoginError};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use ekai_wire::canonical::Dialect;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// `{publicKey, publicKeyBytes, isInsideRofl, isAvailable, usage}`: what to register with the
/// control plane and to seal provider keys to. Public, like the key itself.
pub async fn public_key(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(s.sapphire.public_key_json())
}

fn bad(param: &str, message: impl Into<String>) -> Response {
    render(
        Dialect::OpenAiChat,
        &GatewayError::invalid(message).with_param(Some(param.to_string())),
    )
}

fn u64_field(v: &Value, name: &str) -> Option<u64> {
    match v.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `POST /auth/login` `{"message": {"wallet", "nonce", "issuedAt", "expiresAt"}, "signature"}`
/// (EIP-712 `Login`, see `sapphire::login`) → `201 {"token", "tokenType": "Bearer", "wallet",
/// "expiresAt"}`. The token is shown once.
pub async fn login(
    State(s): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    if let Some(refused) = s.login_throttled(peer.map(|p| p.0.0.ip())) {
        return refused;
    }
    let Some(mode) = &s.sapphire.mode else {
        let mut e = GatewayError::invalid(
            "wallet login exists in Sapphire mode only (set EKAI_CONTROL_PLANE_ADDRESS)",
        );
        e.status = http::StatusCode::NOT_FOUND;
        e.kind = ekai_wire::canonical::ErrorKind::NotFound;
        return render(Dialect::OpenAiChat, &e);
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return bad(
                "body",
                "the body must be JSON {\"message\": {\"wallet\", \"nonce\", \"issuedAt\", \"expiresAt\"}, \"signature\": \"0x…\"}",
            );
        }
    };
    let Some(m) = v.get("message").filter(|m| m.is_object()) else {
        return bad("message", "`message` must be the signed Login object");
    };
    let Some(wallet) = m
        .get("wallet")
        .and_then(Value::as_str)
        .and_then(|w| w.parse::<alloy_primitives::Address>().ok())
    else {
        return bad("message.wallet", "`message.wallet` must be an EVM address");
    };
    let Some(nonce) = m.get("nonce").and_then(Value::as_str) else {
        return bad("message.nonce", "`message.nonce` must be a string");
    };
    let (Some(issued), Some(expires)) = (u64_field(m, "issuedAt"), u64_field(m, "expiresAt"))
    else {
        return bad(
            "message.issuedAt",
            "`message.issuedAt` and `message.expiresAt` must be unix times in seconds",
        );
    };
    let Some(signature) = v.get("signature").and_then(Value::as_str) else {
        return bad(
            "signature",
            "`signature` must be the 65-byte signature in hex",
        );
    };
    let msg = Login {
        wallet,
        nonce: nonce.to_string(),
        issuedAt: issued,
        expiresAt: expires,
    };
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let (who, expires) = match login::verify(
        &msg,
        signature,
        mode.config.chain_id,
        now,
        mode.config.max_session.as_secs(),
    ) {
        Ok(ok) => ok,
        Err(LoginError::Invalid(m)) => return bad("message", m),
        Err(e) => {
            tracing::info!(wallet = %wallet, "wallet login refused: {e}");
            return render(
                Dialect::OpenAiChat,
                &GatewayError::unauthenticated(e.to_string()),
            );
        }
    };
    match s.clients.open_wallet_session(who, nonce, expires).await {
        Ok(token) => {
            tracing::info!(wallet = %who, "wallet logged in");
            let mut resp = Json(json!({
                "token": token,
                "tokenType": "Bearer",
                "wallet": who.to_checksum(None),
                "expiresAt": expires,
            }))
            .into_response();
            *resp.status_mut() = http::StatusCode::CREATED;
            resp
        }
        Err(e @ (LoginRefusal::Replayed | LoginRefusal::Revoked)) => render(
            Dialect::OpenAiChat,
            &GatewayError::unauthenticated(e.to_string()),
        ),
        Err(e) => render(Dialect::OpenAiChat, &GatewayError::internal(e.to_string())),
    }
}
