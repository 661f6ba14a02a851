//! Oasis ROFL/Sapphire mode: users keep their provider keys on the Sapphire chain, sealed to the
//! gateway's X25519 key; per request the gateway checks the owner's permissions on chain
//! (`EkaiControlPlane`), opens the sealed key for the provider it routes to, and leaves a usage
//! receipt on chain through a durable outbox.
//!
//! - `envelope`: the `X25519DeoxysII` sealed-secret format.
//! - `key` / `rofl`: the gateway's key pair (from `rofl-appd` over its UNIX socket inside ROFL,
//!   else `ROFL_PRIVATE_KEY`) and the daemon's REST client.
//! - `chain`: cached contract reads; `ids`: providerId / modelId / requestHash.
//! - `login`: EIP-712 wallet login; `outbox`: the receipt sender.
//!
//! May import wire, alloy and config types; never `api` (it returns `GatewayError`s that `api`
//! renders).

pub mod chain;
pub mod envelope;
pub mod ids;
pub mod key;
pub mod login;
pub mod outbox;
pub mod rofl;

use crate::config::{RoflConfig, SapphireConfig, Secret};
use crate::error::GatewayError;
use alloy_primitives::{Address, B256};
use http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Who a request is for: `owner` pays and holds the sealed keys, `delegate` is the wallet that
/// logged in and called (the same address unless the caller set `api_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub owner: Address,
    pub delegate: Address,
}

/// The running Sapphire state: the key pair (always looked for) and, in Sapphire mode, the
/// control plane.
pub struct Sapphire {
    pub key: key::KeyState,
    pub mode: Option<Mode>,
}

/// (owner, providerId, secret version) → when opened, the key.
type Opened = HashMap<(Address, B256, u64), (Instant, Secret)>;

pub struct Mode {
    pub config: SapphireConfig,
    pub chain: chain::ControlPlane,
    /// Opened keys by (owner, providerId, secret version), for `config.cache`.
    opened: Mutex<Opened>,
}

fn unavailable(what: impl std::fmt::Display) -> GatewayError {
    GatewayError::sapphire(
        StatusCode::SERVICE_UNAVAILABLE,
        "SAPPHIRE_UNAVAILABLE",
        format!("the Sapphire control plane cannot be read right now ({what}); retry shortly"),
    )
}

impl Sapphire {
    /// Loads the key pair, and connects the control plane when Sapphire mode is configured.
    pub async fn open(
        rofl: &RoflConfig,
        config: Option<&SapphireConfig>,
        http: reqwest::Client,
    ) -> anyhow::Result<Sapphire> {
        let key = key::load(rofl).await;
        let mode = match config {
            None => None,
            Some(c) => Some(Mode {
                chain: chain::ControlPlane::new(
                    http,
                    &c.rpc_url,
                    Address::from(c.control_plane),
                    c.cache,
                )?,
                config: c.clone(),
                opened: Mutex::new(HashMap::new()),
            }),
        };
        Ok(Sapphire { key, mode })
    }

    /// Without any key source or configuration (tests, tools).
    pub fn disabled() -> Sapphire {
        Sapphire {
            key: key::KeyState {
                pair: None,
                inside_rofl: false,
                error: Some("not configured".into()),
            },
            mode: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.mode.is_some()
    }

    pub fn public_key_hex(&self) -> Option<String> {
        self.key
            .pair
            .as_ref()
            .map(|p| format!("0x{}", alloy_primitives::hex::encode(p.public)))
    }

    /// `GET /rofl/public-key`.
    pub fn public_key_json(&self) -> Value {
        let pk = self.public_key_hex();
        json!({
            "publicKey": pk,
            // What `setRoflKey(bytes)` takes: the same 32 bytes, as the hex a wallet or cast sends.
            "publicKeyBytes": pk,
            "isInsideRofl": self.key.inside_rofl,
            "isAvailable": self.key.pair.is_some(),
            "usage": "Call setRoflKey(bytes) on the EkaiControlPlane contract with publicKeyBytes; users seal their provider keys to publicKey (X25519DeoxysII)",
            "error": self.key.error,
        })
    }

    /// Logs the public key at start-up (operators register it with the contract from the log).
    pub fn log_startup(&self) {
        match (&self.key.pair, &self.key.error) {
            (Some(_), _) => tracing::info!(
                inside_rofl = self.key.inside_rofl,
                "ROFL public key (register with EkaiControlPlane.setRoflKey): {}",
                self.public_key_hex().unwrap_or_default()
            ),
            (None, Some(e)) if self.enabled() => {
                tracing::error!(
                    "Sapphire mode: no decryption key ({e}); sealed keys cannot be opened"
                )
            }
            (None, _) => tracing::debug!("no ROFL key: {:?}", self.key.error),
        }
        if let Some(m) = &self.mode {
            tracing::info!(
                chain_id = m.config.chain_id,
                "Sapphire mode: control plane {} (reads cached {} ms)",
                m.chain.address,
                m.config.cache.as_millis()
            );
        }
    }

    /// The checks of one routed attempt, then the caller's own key for `provider`:
    /// paused → 503, delegate not permitted → 403 `DELEGATE_NOT_PERMITTED`, model not permitted
    /// → 403 `MODEL_NOT_ALLOWED`, no secret → 404 `SECRET_NOT_FOUND`, a secret that does not open
    /// → 500 `DECRYPTION_FAILED`, RPC down → 503 `SAPPHIRE_UNAVAILABLE`.
    pub async fn upstream_key(
        &self,
        caller: &Caller,
        provider: &str,
        model: &str,
    ) -> Result<Secret, GatewayError> {
        let Some(m) = &self.mode else {
            return Err(GatewayError::internal("Sapphire mode is not configured"));
        };
        let chain = &m.chain;
        let (pid, mid) = (ids::provider_id(provider), ids::model_id(model));
        // The four reads go out together (one round trip when none is cached); their answers are
        // judged in this order, so the first refusal reported is the most general one.
        let (paused, delegate, permitted, secret) = tokio::join!(
            chain.is_paused(),
            chain.is_delegate_permitted(caller.owner, caller.delegate),
            chain.is_model_permitted(caller.owner, pid, mid),
            chain.secret(caller.owner, pid),
        );
        if paused.map_err(unavailable)? {
            return Err(GatewayError::sapphire(
                StatusCode::SERVICE_UNAVAILABLE,
                "SAPPHIRE_PAUSED",
                "the control plane is paused by its administrator; no request is served until it is unpaused",
            ));
        }
        if !delegate.map_err(unavailable)? {
            return Err(GatewayError::sapphire(
                StatusCode::FORBIDDEN,
                "DELEGATE_NOT_PERMITTED",
                format!(
                    "{} is not permitted to use the keys of {} (the owner must permit this delegate on the control plane)",
                    caller.delegate, caller.owner
                ),
            ));
        }
        if !permitted.map_err(unavailable)? {
            return Err(GatewayError::sapphire(
                StatusCode::FORBIDDEN,
                "MODEL_NOT_ALLOWED",
                format!(
                    "{} does not permit model '{model}' on provider '{provider}'",
                    caller.owner
                ),
            )
            .with_param(Some("model".into())));
        }
        let Some(sealed) = secret.map_err(unavailable)? else {
            return Err(GatewayError::sapphire(
                StatusCode::NOT_FOUND,
                "SECRET_NOT_FOUND",
                format!(
                    "{} has no key for provider '{provider}' on the control plane",
                    caller.owner
                ),
            ));
        };
        let slot = (caller.owner, pid, sealed.version);
        {
            let map = m.opened.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, k)) = map.get(&slot)
                && at.elapsed() < m.config.cache
            {
                return Ok(k.clone());
            }
        }
        let Some(pair) = &self.key.pair else {
            return Err(unavailable("this gateway has no decryption key"));
        };
        let failed = |why: String| {
            GatewayError::sapphire(
                StatusCode::INTERNAL_SERVER_ERROR,
                "DECRYPTION_FAILED",
                format!(
                    "the key {} stored for provider '{provider}' cannot be opened by this gateway: {why}",
                    caller.owner
                ),
            )
        };
        let plain =
            envelope::open(&pair.secret, &sealed.ciphertext).map_err(|e| failed(e.to_string()))?;
        let text = String::from_utf8(plain)
            .map_err(|_| failed("the opened value is not UTF-8 text".into()))?;
        let text = text.trim();
        if text.is_empty() || text.chars().any(char::is_control) {
            return Err(failed("the opened value is not an API key".into()));
        }
        let secret = Secret::new(text);
        let mut map = m.opened.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            let ttl = m.config.cache;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        map.insert(slot, (Instant::now(), secret.clone()));
        Ok(secret)
    }
}
