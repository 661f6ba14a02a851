//! An x402 test relay: answers 402 with payment requirements (v1: JSON body; v2: the
//! `PAYMENT-REQUIRED` header), verifies the payment it gets back the way a facilitator would —
//! recovers the EIP-3009 signer with alloy, checks recipient, amount, network, validity window and
//! nonce replay — and only then forwards the same body to the mock provider and relays its answer
//! (JSON or stream) with a settlement header. It shares no code with the gateway's `x402` module.
//!
//! The path's first segment is the scenario, `_`-separated tokens:
//! `v1` | `v2` (protocol), `settlefail` (verification passes, settlement fails), `skew` (the relay's
//! clock runs an hour ahead: every authorization looks expired), `mainnet` (asks for Ethereum
//! mainnet), `amount-N` (asks N atomic units instead of 10000).
//! So `X402_BASE_URL=http://relay/v2_settlefail` makes the gateway call
//! `http://relay/v2_settlefail/v1/chat/completions`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

sol! {
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// USDC on Base Sepolia (allowed by the gateway's defaults), as named in its EIP-712 domain.
pub const ASSET: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
pub const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/// 0.01 USDC.
pub const PRICE: u64 = 10_000;

/// One payment header the relay received, and what it made of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub version: u8,
    pub header: String,
    pub nonce: String,
    pub from: String,
    pub value: String,
    /// None: accepted and settled; Some(reason): refused.
    pub refused: Option<String>,
    pub tx: Option<String>,
}

#[derive(Default)]
struct Log {
    /// (path, had a payment header, body)
    requests: Vec<(String, bool, Bytes)>,
    payments: Vec<Seen>,
    used: HashSet<String>,
}

struct Shared {
    upstream: String,
    log: Mutex<Log>,
    http: reqwest::Client,
}

pub struct Relay {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// `http://IP:PORT/<scenario>`: the gateway's `X402_BASE_URL`.
    pub fn base(&self, scenario: &str) -> String {
        format!("http://{}/{scenario}", self.addr)
    }

    pub fn payments(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().payments.clone()
    }

    pub fn settled(&self) -> Vec<Seen> {
        self.payments()
            .into_iter()
            .filter(|p| p.refused.is_none() && p.tx.is_some())
            .collect()
    }

    pub fn requests(&self) -> Vec<(String, bool, Bytes)> {
        self.shared.log.lock().unwrap().requests.clone()
    }

    pub fn reset(&self) {
        *self.shared.log.lock().unwrap() = Log::default();
    }
}

/// Starts the relay in front of `upstream` (the mock provider's base URL).
pub async fn spawn(upstream: String) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(Shared {
        upstream,
        log: Mutex::new(Log::default()),
        http: {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        },
    });
    let app = Router::new()
        .route("/{scenario}/v1/chat/completions", post(handle_chat))
        .route("/{scenario}/v1/messages", post(handle_messages))
        .with_state(shared.clone());
    // Owned by the `Relay`, which aborts it when dropped.
    #[allow(clippy::disallowed_methods)]
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Relay { addr, shared, task }
}

struct Scenario {
    version: u8,
    settle_fail: bool,
    skew: u64,
    network_v1: &'static str,
    network_v2: &'static str,
    amount: u64,
}

fn scenario(s: &str) -> Scenario {
    let mut sc = Scenario {
        version: 1,
        settle_fail: false,
        skew: 0,
        network_v1: "base-sepolia",
        network_v2: "eip155:84532",
        amount: PRICE,
    };
    for t in s.split('_') {
        match t {
            "v1" => sc.version = 1,
            "v2" => sc.version = 2,
            "settlefail" => sc.settle_fail = true,
            "skew" => sc.skew = 3600,
            "mainnet" => {
                sc.network_v1 = "ethereum";
                sc.network_v2 = "eip155:1";
            }
            t if t.starts_with("amount-") => sc.amount = t[7..].parse().unwrap(),
            other => panic!("unknown relay scenario token {other:?}"),
        }
    }
    sc
}

fn requirement(sc: &Scenario, resource: &str) -> Value {
    if sc.version == 1 {
        json!({
            "scheme": "exact", "network": sc.network_v1, "maxAmountRequired": sc.amount.to_string(),
            "resource": resource, "description": "LLM call", "mimeType": "application/json",
            "payTo": PAY_TO, "maxTimeoutSeconds": 60, "asset": ASSET,
            "extra": {"name": "USDC", "version": "2"}
        })
    } else {
        json!({
            "scheme": "exact", "network": sc.network_v2, "amount": sc.amount.to_string(),
            "asset": ASSET, "payTo": PAY_TO, "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"}
        })
    }
}

fn payment_required(sc: &Scenario, resource: &str, error: &str) -> Response {
    let req = requirement(sc, resource);
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::PAYMENT_REQUIRED;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if sc.version == 1 {
        *resp.body_mut() =
            Body::from(json!({"x402Version": 1, "error": error, "accepts": [req]}).to_string());
    } else {
        let pr = json!({
            "x402Version": 2, "error": error,
            "resource": {"url": resource, "description": "LLM call", "mimeType": "application/json"},
            "accepts": [req]
        });
        resp.headers_mut().insert(
            "payment-required",
            HeaderValue::from_str(&B64.encode(pr.to_string())).unwrap(),
        );
        *resp.body_mut() = Body::from("{}");
    }
    resp
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What a facilitator's `verify` does for the `exact` EVM scheme. Ok(payer, nonce) or the reason.
fn verify(
    sc: &Scenario,
    payload: &Value,
    used: &HashSet<String>,
) -> Result<(String, String), String> {
    let a = &payload["payload"]["authorization"];
    let s = |v: &Value, k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("authorization.{k} missing"))
    };
    let from: Address = s(a, "from")?.parse().map_err(|_| "bad from")?;
    let to: Address = s(a, "to")?.parse().map_err(|_| "bad to")?;
    if to != PAY_TO.parse::<Address>().unwrap() {
        return Err("invalid_exact_evm_payload_recipient_mismatch".into());
    }
    let value = U256::from_str_radix(&s(a, "value")?, 10).map_err(|_| "bad value")?;
    if value != U256::from(sc.amount) {
        return Err("invalid_exact_evm_payload_authorization_value".into());
    }
    let after: u64 = s(a, "validAfter")?.parse().map_err(|_| "bad validAfter")?;
    let before: u64 = s(a, "validBefore")?
        .parse()
        .map_err(|_| "bad validBefore")?;
    let t = now() + sc.skew;
    if before < t + 6 {
        return Err(
            "invalid_exact_evm_payload_authorization_valid_before: authorization expired".into(),
        );
    }
    if after > t {
        return Err("invalid_exact_evm_payload_authorization_valid_after".into());
    }
    let nonce_text = s(a, "nonce")?;
    if used.contains(&nonce_text.to_ascii_lowercase()) {
        return Err("nonce already used: replayed authorization".into());
    }
    let nonce: B256 = nonce_text.parse().map_err(|_| "bad nonce")?;
    let chain = if sc.network_v2 == "eip155:1" {
        1u64
    } else {
        84532
    };
    let domain = Eip712Domain::new(
        Some("USDC".into()),
        Some("2".into()),
        Some(U256::from(chain)),
        Some(ASSET.parse().unwrap()),
        None,
    );
    let msg = TransferWithAuthorization {
        from,
        to,
        value,
        validAfter: U256::from(after),
        validBefore: U256::from(before),
        nonce,
    };
    let sig_hex = payload["payload"]["signature"]
        .as_str()
        .ok_or("signature missing")?;
    let sig_bytes = alloy_primitives::hex::decode(sig_hex).map_err(|_| "bad signature hex")?;
    let sig = Signature::try_from(sig_bytes.as_slice()).map_err(|_| "bad signature")?;
    let signer = sig
        .recover_address_from_prehash(&msg.eip712_signing_hash(&domain))
        .map_err(|_| "signature does not recover")?;
    if signer != from {
        return Err("invalid_exact_evm_payload_signature".into());
    }
    Ok((from.to_string(), nonce_text.to_ascii_lowercase()))
}

async fn handle_chat(
    State(sh): State<Arc<Shared>>,
    Path(sc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(sh, sc, headers, body, "/v1/chat/completions").await
}

async fn handle_messages(
    State(sh): State<Arc<Shared>>,
    Path(sc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(sh, sc, headers, body, "/v1/messages").await
}

async fn handle(
    sh: Arc<Shared>,
    sc_text: String,
    headers: HeaderMap,
    body: Bytes,
    path: &str,
) -> Response {
    let sc = scenario(&sc_text);
    let resource = format!("http://relay/{sc_text}{path}");
    let (name, resp_name) = if sc.version == 1 {
        ("x-payment", "x-payment-response")
    } else {
        ("payment-signature", "payment-response")
    };
    let header = headers.get(name).map(|v| v.to_str().unwrap().to_string());
    sh.log
        .lock()
        .unwrap()
        .requests
        .push((path.to_string(), header.is_some(), body.clone()));
    let Some(header) = header else {
        let other = if sc.version == 1 {
            "payment-signature"
        } else {
            "x-payment"
        };
        assert!(
            headers.get(other).is_none(),
            "payment header of the wrong version"
        );
        return payment_required(&sc, &resource, "payment required");
    };
    let payload: Value = match B64
        .decode(&header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(v) => v,
        None => return payment_required(&sc, &resource, "unreadable payment header"),
    };
    // The envelope: version, scheme and network (v1), or the echoed requirement (v2).
    let envelope = if sc.version == 1 {
        payload["x402Version"] == 1
            && payload["scheme"] == "exact"
            && payload["network"] == sc.network_v1
    } else {
        payload["x402Version"] == 2 && payload["accepted"] == requirement(&sc, &resource)
    };
    let (payer, tx) =
        match settle_or_refuse(&sh, &sc, envelope, &payload, &header, &resource, resp_name) {
            Ok(v) => v,
            Err(r) => return r,
        };
    let settle = json!({"success": true, "transaction": tx,
        "network": if sc.version == 1 { sc.network_v1 } else { sc.network_v2 }, "payer": payer});
    // Paid: the mock provider answers, relayed as it arrives.
    let mut rb = sh
        .http
        .post(format!("{}{path}", sh.upstream.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(body);
    if let Some(v) = headers.get("anthropic-version") {
        rb = rb.header("anthropic-version", v.clone());
    }
    let up = rb.send().await.unwrap();
    let status = StatusCode::from_u16(up.status().as_u16()).unwrap();
    let ct = up
        .headers()
        .get("content-type")
        .map(|v| v.as_bytes().to_vec());
    let mut resp = Response::new(Body::from_stream(up.bytes_stream()));
    *resp.status_mut() = status;
    if let Some(ct) = ct {
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_bytes(&ct).unwrap());
    }
    resp.headers_mut().insert(
        resp_name,
        HeaderValue::from_str(&B64.encode(settle.to_string())).unwrap(),
    );
    resp
}

/// Verifies and (unless the scenario fails it) settles under the log's lock; Err is the 402 to send.
#[allow(clippy::too_many_arguments)]
fn settle_or_refuse(
    sh: &Shared,
    sc: &Scenario,
    envelope: bool,
    payload: &Value,
    header: &str,
    resource: &str,
    resp_name: &'static str,
) -> Result<(String, String), Response> {
    let header = header.to_string();
    let mut log = sh.log.lock().unwrap();
    let verdict = if envelope {
        verify(sc, payload, &log.used)
    } else {
        Err("payment envelope does not match the requirements".into())
    };
    let auth = &payload["payload"]["authorization"];
    let mut seen = Seen {
        version: sc.version,
        header: header.clone(),
        nonce: auth["nonce"].as_str().unwrap_or("").to_string(),
        from: auth["from"].as_str().unwrap_or("").to_string(),
        value: auth["value"].as_str().unwrap_or("").to_string(),
        refused: None,
        tx: None,
    };
    let (payer, nonce) = match verdict {
        Ok(v) => v,
        Err(reason) => {
            seen.refused = Some(reason.clone());
            log.payments.push(seen);
            return Err(payment_required(sc, resource, &reason));
        }
    };
    if sc.settle_fail {
        seen.refused = Some("settlement failed".into());
        log.payments.push(seen);
        let settle = json!({"success": false, "errorReason": "settlement failed: insufficient_funds",
            "transaction": "", "network": if sc.version == 1 { sc.network_v1 } else { sc.network_v2 }, "payer": payer});
        let mut r = payment_required(sc, resource, "settlement failed: insufficient_funds");
        r.headers_mut().insert(
            resp_name,
            HeaderValue::from_str(&B64.encode(settle.to_string())).unwrap(),
        );
        return Err(r);
    }
    log.used.insert(nonce.clone());
    let tx = format!("{}", keccak256(nonce.as_bytes()));
    seen.tx = Some(tx.clone());
    log.payments.push(seen);
    Ok((payer, tx))
}
