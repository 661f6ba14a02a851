//! Wallet sessions (Sapphire mode): `POST /auth/login` turns an EIP-712 signed login into a bearer
//! token; the token then authenticates as that wallet's client.
//!
//! Each wallet is a row of the `clients` table (`w_` + its address in hex; key hash
//! `wallet:0x…`, which no presented key can match), so preferences (`api_address`,
//! `model_preferences`), limits, budgets and usage per client apply to wallets unchanged. Tokens
//! are `ekw_` + 64 hex digits (256 random bits); only their SHA-256 is stored (`wallet_sessions`),
//! so sessions survive a restart and are shared by instances on one database.

use super::{AuthFailure, Client, Registry, key};
use crate::ledger::store::{ClientRow, SessionRow};
use crate::ledger::time::now_ms;
use alloy_primitives::Address;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const TOKEN_PREFIX: &str = "ekw_";

/// Sessions already looked up: token hash → (client id, expiry in ms).
#[derive(Default)]
pub struct Sessions {
    cache: Mutex<HashMap<String, (String, i64)>>,
}

pub fn token_hash(token: &str) -> String {
    alloy_primitives::hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn client_id(wallet: Address) -> String {
    format!("w_{}", alloy_primitives::hex::encode(wallet))
}

/// The wallet a client stands for (None for key clients).
pub fn wallet_of(c: &Client) -> Option<Address> {
    c.tags.get("wallet")?.as_str()?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum LoginRefusal {
    #[error(
        "this login (wallet and nonce) was already used; sign a new message with a fresh nonce"
    )]
    Replayed,
    #[error("this wallet's access has been revoked by the gateway's administrator")]
    Revoked,
    #[error("the gateway's database failed: {0}")]
    Db(String),
    #[error("the system random generator failed")]
    Rng,
}

impl Registry {
    /// Opens a session for a wallet whose login was verified: creates its client on first login,
    /// stores the session, returns the token (shown once).
    pub async fn open_wallet_session(
        &self,
        wallet: Address,
        nonce: &str,
        expires_secs: u64,
    ) -> Result<String, LoginRefusal> {
        let store = self
            .store()
            .ok_or_else(|| LoginRefusal::Db("no ledger database".into()))?;
        let id = client_id(wallet);
        if self.get(&id).is_none() {
            let _ = self.reload().await;
        }
        match self.get(&id) {
            Some(c) if c.revoked_at.is_some() => return Err(LoginRefusal::Revoked),
            Some(_) => {}
            None => {
                let row = ClientRow {
                    id: id.clone(),
                    name: wallet.to_checksum(None),
                    key_prefix: "wallet".into(),
                    key_hash: format!("wallet:{wallet:#x}"),
                    created_at: now_ms(),
                    expires_at: None,
                    revoked_at: None,
                    tags: serde_json::json!({"wallet": format!("{wallet:#x}")}).to_string(),
                    policy: "{}".into(),
                    upstream_keys: "{}".into(),
                };
                // Another instance may have created it meanwhile: the reload below tells.
                if let Err(e) = store.insert_client(&row).await {
                    tracing::debug!("wallet client insert: {e}");
                }
                self.reload()
                    .await
                    .map_err(|e| LoginRefusal::Db(e.to_string()))?;
                if self.get(&id).is_none() {
                    return Err(LoginRefusal::Db(
                        "the wallet's client could not be created".into(),
                    ));
                }
            }
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| LoginRefusal::Rng)?;
        let token = format!("{TOKEN_PREFIX}{}", alloy_primitives::hex::encode(raw));
        let expires_at = i64::try_from(expires_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let fresh = store
            .insert_session(&SessionRow {
                token_hash: token_hash(&token),
                wallet: format!("{wallet:#x}"),
                client_id: id,
                nonce: nonce.to_string(),
                created_at: now_ms(),
                expires_at,
            })
            .await
            .map_err(|e| LoginRefusal::Db(e.to_string()))?;
        if !fresh {
            return Err(LoginRefusal::Replayed);
        }
        if let Err(e) = store.delete_expired_sessions(now_ms()).await {
            tracing::debug!("wallet sessions: removing expired ones failed: {e}");
        }
        Ok(token)
    }

    /// The client a wallet token stands for.
    pub async fn authenticate_wallet(&self, token: &str) -> Result<Arc<Client>, AuthFailure> {
        let hash = token_hash(token);
        let cached = self
            .wallets
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .cloned();
        let (id, expires) = match cached {
            Some(c) => c,
            None => {
                let store = self.store().ok_or(AuthFailure::Unknown)?;
                let row = match store.session(&hash).await {
                    Ok(Some(r)) => r,
                    Ok(None) => return Err(AuthFailure::Unknown),
                    Err(e) => {
                        tracing::warn!("wallet sessions: lookup failed: {e}");
                        return Err(AuthFailure::Unknown);
                    }
                };
                let mut cache = self.wallets.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > 100_000 {
                    let now = now_ms();
                    cache.retain(|_, (_, exp)| *exp > now);
                }
                cache.insert(hash, (row.client_id.clone(), row.expires_at));
                (row.client_id, row.expires_at)
            }
        };
        if expires <= now_ms() {
            return Err(AuthFailure::Expired);
        }
        let client = match self.get(&id) {
            Some(c) => c,
            None => {
                let _ = self.reload().await;
                self.get(&id).ok_or(AuthFailure::Unknown)?
            }
        };
        if client.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        Ok(client)
    }
}

/// Whether a presented credential is a wallet token rather than a client key.
pub fn is_wallet_token(presented: &str) -> bool {
    presented.starts_with(TOKEN_PREFIX) && !key::looks_like_key(presented)
}
