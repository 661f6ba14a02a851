//! The gateway's X25519 key pair for sealed secrets: from the ROFL daemon when its socket exists
//! (inside ROFL), else from `ROFL_PRIVATE_KEY`.

use super::rofl::{KEY_ID, RoflClient};
use crate::config::RoflConfig;
use x25519_dalek::{PublicKey, StaticSecret};

pub struct KeyPair {
    pub secret: StaticSecret,
    pub public: [u8; 32],
}

/// Where the key came from, for `GET /rofl/public-key` and the start-up log.
pub struct KeyState {
    pub pair: Option<KeyPair>,
    pub inside_rofl: bool,
    /// Why there is no key (None when there is one).
    pub error: Option<String>,
}

/// RFC 7748 clamping, applied to the stored scalar so that the key we hold is the one used.
pub fn clamp(mut k: [u8; 32]) -> [u8; 32] {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

pub fn pair_from(raw: [u8; 32]) -> KeyPair {
    let secret = StaticSecret::from(clamp(raw));
    let public = PublicKey::from(&secret).to_bytes();
    KeyPair { secret, public }
}

pub async fn load(cfg: &RoflConfig) -> KeyState {
    if cfg.socket.exists() {
        let result = match RoflClient::new(&cfg.socket) {
            Ok(c) => c.generate_raw256(KEY_ID).await,
            Err(e) => Err(e),
        };
        return match result {
            Ok(raw) => KeyState {
                pair: Some(pair_from(raw)),
                inside_rofl: true,
                error: None,
            },
            Err(e) => KeyState {
                pair: None,
                inside_rofl: true,
                error: Some(format!("key generation through rofl-appd failed: {e}")),
            },
        };
    }
    match &cfg.private_key {
        Some(k) => {
            let t = k.expose();
            let bytes = alloy_primitives::hex::decode(t.strip_prefix("0x").unwrap_or(t))
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
            match bytes {
                Some(raw) => KeyState {
                    pair: Some(pair_from(raw)),
                    inside_rofl: false,
                    error: None,
                },
                // config validated it; kept total anyway.
                None => KeyState {
                    pair: None,
                    inside_rofl: false,
                    error: Some("ROFL_PRIVATE_KEY is not 32 bytes of hex".into()),
                },
            }
        }
        None => KeyState {
            pair: None,
            inside_rofl: false,
            error: Some(format!(
                "not inside ROFL ({} does not exist) and ROFL_PRIVATE_KEY is not set",
                cfg.socket.display()
            )),
        },
    }
}
