//! The ROFL app daemon (`rofl-appd`), reached over its UNIX socket: key generation and
//! authenticated transaction submission. Its REST API (oasis-sdk `docs/rofl/features/rest.md`):
//! `POST /rofl/v1/keys/generate {"key_id","kind"}` → `{"key": hex}`, and
//! `POST /rofl/v1/tx/sign-submit {"tx":{"kind":"eth","data":{gas_limit,to,value,data}},"encrypt"}`
//! → `{"data": hex CBOR CallResult}` (`{"ok": …}` or `{"fail": {module, code, message}}`).

use ciborium::value::Value;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Domain separation of the gateway's encryption key (the same id the original gateway used, so a
/// redeployed app derives the same key and sealed secrets stay valid).
pub const KEY_ID: &str = "ekai-gateway-encryption-key";

#[derive(Clone)]
pub struct RoflClient {
    http: reqwest::Client,
    socket: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RoflError {
    #[error("rofl-appd at {socket}: {detail}")]
    Transport { socket: String, detail: String },
    #[error("rofl-appd answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("rofl-appd sent an unreadable answer: {0}")]
    Invalid(String),
    /// The transaction executed and failed (reverted, out of gas …).
    #[error("transaction failed in module {module} (code {code}): {message}")]
    CallFailed {
        module: String,
        code: u64,
        message: String,
    },
}

fn cause_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl RoflClient {
    pub fn new(socket: &Path) -> Result<RoflClient, RoflError> {
        // reqwest is built without a default TLS provider (see `server::http_client`); a UNIX
        // socket needs none, but the builder insists. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .unix_socket(socket)
            // sign-submit waits for the transaction to be included.
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| RoflError::Transport {
                socket: socket.display().to_string(),
                detail: cause_chain(&e),
            })?;
        Ok(RoflClient {
            http,
            socket: socket.to_path_buf(),
        })
    }

    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, RoflError> {
        // The host part is ignored on a UNIX socket; appd routes on the path.
        let resp = self
            .http
            .post(format!("http://localhost{path}"))
            .json(&body)
            .send()
            .await
            .map_err(|e| RoflError::Transport {
                socket: self.socket.display().to_string(),
                detail: cause_chain(&e),
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| RoflError::Transport {
            socket: self.socket.display().to_string(),
            detail: cause_chain(&e),
        })?;
        if !(200..300).contains(&status) {
            return Err(RoflError::Status {
                status,
                body: text.chars().take(300).collect(),
            });
        }
        serde_json::from_str(&text).map_err(|e| RoflError::Invalid(e.to_string()))
    }

    /// 32 bytes of key material for `key_id` (`raw-256`), the same for every instance of the app.
    pub async fn generate_raw256(&self, key_id: &str) -> Result<[u8; 32], RoflError> {
        let v = self
            .post(
                "/rofl/v1/keys/generate",
                json!({"key_id": key_id, "kind": "raw-256"}),
            )
            .await?;
        let hex = v
            .get("key")
            .and_then(|k| k.as_str())
            .ok_or_else(|| RoflError::Invalid("no `key` string".into()))?;
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        let bytes = alloy_primitives::hex::decode(hex)
            .map_err(|_| RoflError::Invalid("`key` is not hex".into()))?;
        bytes
            .try_into()
            .map_err(|_| RoflError::Invalid("`key` is not 32 bytes".into()))
    }

    /// Signs (with the app's endorsed key) and submits an EVM call, encrypted; returns once the
    /// transaction was executed. A failed call is `RoflError::CallFailed`.
    pub async fn sign_submit_eth(
        &self,
        to: &[u8; 20],
        data: &[u8],
        gas_limit: u64,
    ) -> Result<(), RoflError> {
        let v = self
            .post(
                "/rofl/v1/tx/sign-submit",
                json!({
                    "tx": {"kind": "eth", "data": {
                        "gas_limit": gas_limit,
                        "to": alloy_primitives::hex::encode(to),
                        "value": 0,
                        "data": alloy_primitives::hex::encode(data),
                    }},
                    "encrypt": true,
                }),
            )
            .await?;
        let hex = v
            .get("data")
            .and_then(|d| d.as_str())
            .ok_or_else(|| RoflError::Invalid("no `data` string".into()))?;
        let cbor = alloy_primitives::hex::decode(hex.strip_prefix("0x").unwrap_or(hex))
            .map_err(|_| RoflError::Invalid("`data` is not hex".into()))?;
        call_result(&cbor)
    }
}

/// Reads a CBOR `CallResult`: `{"ok": …}` is success, `{"fail": {module, code, message}}` not.
pub fn call_result(cbor: &[u8]) -> Result<(), RoflError> {
    let v: Value = ciborium::de::from_reader(cbor)
        .map_err(|_| RoflError::Invalid("call result is not CBOR".into()))?;
    let map = v
        .as_map()
        .ok_or_else(|| RoflError::Invalid("call result is not a map".into()))?;
    let get = |m: &[(Value, Value)], k: &str| {
        m.iter()
            .find(|(key, _)| key.as_text() == Some(k))
            .map(|(_, v)| v.clone())
    };
    if get(map, "ok").is_some() {
        return Ok(());
    }
    if let Some(Value::Map(f)) = get(map, "fail") {
        return Err(RoflError::CallFailed {
            module: get(&f, "module")
                .and_then(|v| v.as_text().map(str::to_string))
                .unwrap_or_default(),
            code: get(&f, "code")
                .and_then(|v| v.as_integer())
                .and_then(|i| u64::try_from(i).ok())
                .unwrap_or(0),
            message: get(&f, "message")
                .and_then(|v| v.as_text().map(str::to_string))
                .unwrap_or_default(),
        });
    }
    Err(RoflError::Invalid(
        "call result is neither `ok` nor `fail`".into(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn call_results_from_the_appd_docs() {
        assert!(call_result(&alloy_primitives::hex::decode("a1626f6b40").unwrap()).is_ok());
        let fail = alloy_primitives::hex::decode("a1646661696ca364636f646508666d6f64756c656365766d676d6573736167657272657665727465643a20614a416f4c773d3d").unwrap();
        match call_result(&fail) {
            Err(RoflError::CallFailed {
                module,
                code,
                message,
            }) => {
                assert_eq!((module.as_str(), code), ("evm", 8));
                assert_eq!(message, "reverted: aJAoLw==");
            }
            other => panic!("{other:?}"),
        }
        assert!(call_result(b"nope").is_err());
    }
}

/// A fake `rofl-appd` on a UNIX socket: answers keys/generate with a fixed key and sign-submit
/// with a scripted call result, and records every request body.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod fake {
    use axum::Json;
    use axum::extract::State;
    use axum::routing::post;
    use serde_json::{Value, json};
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    pub struct FakeAppd {
        pub socket: PathBuf,
        pub seen: Arc<Mutex<Vec<(String, Value)>>>,
        pub sign_submit_reply: Arc<Mutex<String>>,
        _dir: PathBuf,
    }

    pub const KEY_HEX: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

    type St = (Arc<Mutex<Vec<(String, Value)>>>, Arc<Mutex<String>>);

    async fn generate(State((seen, _)): State<St>, Json(v): Json<Value>) -> Json<Value> {
        seen.lock().unwrap().push(("keys/generate".into(), v));
        Json(json!({"key": KEY_HEX}))
    }

    async fn sign_submit(State((seen, reply)): State<St>, Json(v): Json<Value>) -> Json<Value> {
        seen.lock().unwrap().push(("tx/sign-submit".into(), v));
        let data = reply.lock().unwrap().clone();
        Json(json!({"data": data}))
    }

    pub async fn start() -> FakeAppd {
        let dir = std::env::temp_dir().join(format!(
            "ekai-appd-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("rofl-appd.sock");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(Mutex::new("a1626f6b40".to_string()));
        let app = axum::Router::new()
            .route("/rofl/v1/keys/generate", post(generate))
            .route("/rofl/v1/tx/sign-submit", post(sign_submit))
            .with_state((Arc::clone(&seen), Arc::clone(&reply)));
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        #[allow(clippy::disallowed_methods)] // test server, lives as long as the test runtime
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAppd {
            socket,
            seen,
            sign_submit_reply: reply,
            _dir: dir,
        }
    }

    #[tokio::test]
    async fn generate_and_sign_submit_against_the_fake_daemon() {
        let appd = start().await;
        let c = super::RoflClient::new(&appd.socket).unwrap();
        let k = c.generate_raw256(super::KEY_ID).await.unwrap();
        assert_eq!(alloy_primitives::hex::encode(k), KEY_HEX);
        c.sign_submit_eth(&[0x12; 20], &[0xde, 0xad], 250_000)
            .await
            .unwrap();
        *appd.sign_submit_reply.lock().unwrap() = "a1646661696ca364636f646508666d6f64756c656365766d676d6573736167657272657665727465643a20614a416f4c773d3d".into();
        let e = c.sign_submit_eth(&[0x12; 20], &[1], 1).await.unwrap_err();
        assert!(
            matches!(e, super::RoflError::CallFailed { code: 8, .. }),
            "{e}"
        );
        let seen = appd.seen.lock().unwrap().clone();
        assert_eq!(
            seen[0],
            (
                "keys/generate".to_string(),
                json!({"key_id": "ekai-gateway-encryption-key", "kind": "raw-256"})
            )
        );
        assert_eq!(
            seen[1].1,
            json!({"tx": {"kind": "eth", "data": {"gas_limit": 250000, "to": "1212121212121212121212121212121212121212", "value": 0, "data": "dead"}}, "encrypt": true})
        );
    }

    #[tokio::test]
    async fn the_key_comes_from_the_daemon_clamped_else_from_the_env() {
        let appd = start().await;
        let cfg = crate::config::RoflConfig {
            socket: appd.socket.clone(),
            private_key: Some(crate::config::Secret::new("ff".repeat(32))),
        };
        let st = crate::sapphire::key::load(&cfg).await;
        assert!(st.inside_rofl);
        let pair = st.pair.unwrap();
        let raw: [u8; 32] = alloy_primitives::hex::decode(KEY_HEX)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(pair.secret.to_bytes(), crate::sapphire::key::clamp(raw));
        // The vector's gateway key (same raw bytes): same public key.
        assert_eq!(
            alloy_primitives::hex::encode(pair.public),
            "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c"
        );
        // No socket: ROFL_PRIVATE_KEY.
        let cfg = crate::config::RoflConfig {
            socket: appd.socket.with_file_name("absent.sock"),
            private_key: Some(crate::config::Secret::new(format!("0x{KEY_HEX}"))),
        };
        let st = crate::sapphire::key::load(&cfg).await;
        assert!(!st.inside_rofl);
        assert_eq!(
            alloy_primitives::hex::encode(st.pair.unwrap().public),
            "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c"
        );
        let cfg = crate::config::RoflConfig {
            socket: appd.socket.with_file_name("absent.sock"),
            private_key: None,
        };
        let st = crate::sapphire::key::load(&cfg).await;
        assert!(st.pair.is_none() && st.error.unwrap().contains("ROFL_PRIVATE_KEY"));
    }
}
