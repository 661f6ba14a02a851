//! Sapphire mode end to end: the real gateway against the mock provider and a local anvil running
//! a control-plane contract compiled from `tests/chain/EkaiControlPlane.sol`. Permissions and
//! sealed keys are read from the chain, the opened key is the one the mock receives, and usage
//! receipts land on chain with exact values, also across an anvil restart and a gateway kill -9.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use alloy_primitives::{Address, B256, keccak256};
use alloy_provider::DynProvider;
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolEvent, SolValue, eip712_domain, sol};
use common::chain::{Anvil, CHAIN_ID};
use common::{Gateway, MockConfig, get, post, scratch_dir};
use deoxys::aead::{AeadInOut, KeyInit};
use ekai_gateway::ledger::store::Store;
use hmac::Mac;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

sol! {
    interface ITestControlPlane {
        function setPaused(bool p) external;
        function setRoflKey(bytes key) external;
        function setSecret(bytes32 providerId, bytes ciphertext) external;
        function setDelegate(address delegate, bool permitted) external;
        function setModelPermitted(bytes32 providerId, bytes32 modelId, bool permitted) external;
        function receiptCount() external view returns (uint256);
        function idOf(string text) external pure returns (bytes32);
        function requestHashOf(address owner, address delegate, bytes32 providerId, bytes32 modelId, uint64 timestampMs) external pure returns (bytes32);
        event ReceiptLogged(bytes32 indexed requestHash, address indexed owner, address indexed delegate, bytes32 providerId, bytes32 modelId, uint32 promptTokens, uint32 completionTokens);
    }

    struct Login {
        address wallet;
        string nonce;
        uint64 issuedAt;
        uint64 expiresAt;
    }
}

use ITestControlPlane as Cp;

const OWNER_KEY: &str = "sk-owner-openai-key-0123456789";
const GATEWAY_OWN_KEY: &str = "sk-gateway-own-key-never-sent";

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

/// The sealing side of X25519DeoxysII, written here independently of the gateway (a client SDK's
/// job): ephemeral X25519, HMAC-SHA512/256 box key, Deoxys-II-256-128, CBOR envelope.
fn seal(recipient: [u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let eph = x25519_dalek::StaticSecret::from(random32());
    let eph_pk = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&x25519_dalek::PublicKey::from(recipient));
    let mut mac =
        <hmac::Hmac<sha2::Sha512_256>>::new_from_slice(b"MRAE_Box_Deoxys-II-256-128").unwrap();
    mac.update(shared.as_bytes());
    let key = mac.finalize().into_bytes();
    let mut nonce = [0u8; 15];
    getrandom::fill(&mut nonce).unwrap();
    let cipher = deoxys::DeoxysII256::new_from_slice(&key).unwrap();
    let mut data = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &deoxys::Nonce::try_from(&nonce[..]).unwrap(),
            &[],
            data.as_mut_slice().into(),
        )
        .unwrap();
    data.extend_from_slice(&tag);
    use ciborium::value::Value;
    let env = Value::Map(vec![
        (Value::Text("format".into()), Value::Integer(1.into())),
        (
            Value::Text("body".into()),
            Value::Map(vec![
                (Value::Text("pk".into()), Value::Bytes(eph_pk.to_vec())),
                (Value::Text("nonce".into()), Value::Bytes(nonce.to_vec())),
                (Value::Text("data".into()), Value::Bytes(data)),
            ]),
        ),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&env, &mut out).unwrap();
    out
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn login_body(signer: &PrivateKeySigner, chain_id: u64, nonce: &str) -> String {
    let now = now_secs();
    let msg = Login {
        wallet: signer.address(),
        nonce: nonce.into(),
        issuedAt: now,
        expiresAt: now + 3600,
    };
    let domain = eip712_domain! { name: "Ekai Gateway", version: "1", chain_id: chain_id, };
    let sig = signer.sign_typed_data_sync(&msg, &domain).unwrap();
    json!({
        "message": {"wallet": format!("{:#x}", signer.address()), "nonce": nonce, "issuedAt": now, "expiresAt": now + 3600},
        "signature": format!("0x{}", alloy_primitives::hex::encode(sig.as_bytes())),
    })
    .to_string()
}

async fn login(gw: &Gateway, signer: &PrivateKeySigner) -> String {
    let nonce = format!("n{}", alloy_primitives::hex::encode(&random32()[..8]));
    let r = post(
        &format!("{}/auth/login", gw.url),
        &[],
        &login_body(signer, CHAIN_ID, &nonce),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["token"].as_str().unwrap().to_string()
}

/// Everything a Sapphire test needs: the chain with the contract, the wallets, the mock.
struct World {
    anvil: Anvil,
    contract: Address,
    admin: DynProvider,
    owner: PrivateKeySigner,
    owner_p: DynProvider,
    delegate: PrivateKeySigner,
    gateway_signer: PrivateKeySigner,
    rofl_key: [u8; 32],
    mock: common::MockHandle,
    db: PathBuf,
    config: PathBuf,
}

impl World {
    async fn new(cache_ms: u64) -> World {
        let tools = common::chain::tools().await;
        let compiled = common::chain::compile(
            &tools,
            &common::chain::chain_src().join("EkaiControlPlane.sol"),
        )
        .await;
        let anvil = Anvil::start(&tools).await;
        let admin_s = PrivateKeySigner::random();
        let owner = PrivateKeySigner::random();
        let delegate = PrivateKeySigner::random();
        let gateway_signer = PrivateKeySigner::random();
        for a in [
            admin_s.address(),
            owner.address(),
            delegate.address(),
            gateway_signer.address(),
        ] {
            anvil.fund(a, 100).await;
        }
        let admin = anvil.provider(admin_s);
        let contract = anvil
            .deploy(
                &admin,
                &compiled["EkaiControlPlane"].bytecode,
                &gateway_signer.address().abi_encode(),
            )
            .await;
        let owner_p = anvil.provider(owner.clone());
        let mock = ekai_mock_provider::spawn(MockConfig {
            expected_key: Some(OWNER_KEY.into()),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let dir = scratch_dir();
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!("[sapphire]\ncache_ms = {cache_ms}\nreceipt_max_backoff_ms = 1000\nreceipt_batch_size = 8\n"),
        )
        .unwrap();
        World {
            anvil,
            contract,
            admin,
            owner,
            owner_p,
            delegate,
            gateway_signer,
            rofl_key: random32(),
            mock,
            db: dir.join("ledger.db"),
            config,
        }
    }

    fn gateway(&self) -> Gateway {
        self.gateway_in(None)
    }

    /// The gateway; `rofl_socket`: "inside ROFL", with the daemon at that socket (no local keys).
    fn gateway_in(&self, rofl_socket: Option<&std::path::Path>) -> Gateway {
        let openai = format!("{}/v1", self.mock.base_url());
        let db = format!("sqlite://{}", self.db.display());
        let contract = format!("{:#x}", self.contract);
        let rofl = alloy_primitives::hex::encode(self.rofl_key);
        let gw_key = alloy_primitives::hex::encode(self.gateway_signer.to_bytes());
        let chain = CHAIN_ID.to_string();
        let base = self.mock.base_url();
        let mut env: Vec<(&str, &str)> = vec![
            ("OPENAI_API_KEY", GATEWAY_OWN_KEY),
            ("EKAI_OPENAI_BASE_URL", &openai),
            ("EKAI_ANTHROPIC_BASE_URL", &base),
            ("DATABASE_URL", &db),
            ("EKAI_CONTROL_PLANE_ADDRESS", &contract),
            ("SAPPHIRE_RPC_URL", &self.anvil.url),
            ("SAPPHIRE_CHAIN_ID", &chain),
            ("RUST_LOG", "info,ekai_gateway::sapphire=debug"),
        ];
        let socket = rofl_socket.map(|p| p.to_str().unwrap().to_string());
        match &socket {
            Some(path) => env.push(("ROFL_SOCKET_PATH", path)),
            None => env.extend([
                ("ROFL_PRIVATE_KEY", rofl.as_str()),
                ("ROFL_SOCKET_PATH", "/nonexistent/rofl-appd.sock"),
                ("SAPPHIRE_GATEWAY_PRIVATE_KEY", gw_key.as_str()),
            ]),
        }
        Gateway::start_with_args(&env, &["--config", self.config.to_str().unwrap()])
    }

    async fn owner_sends(&self, data: Vec<u8>) {
        self.anvil.send(&self.owner_p, self.contract, data).await;
    }

    async fn id_of(&self, text: &str) -> B256 {
        let out = self
            .anvil
            .call(
                &self.admin,
                self.contract,
                Cp::idOfCall { text: text.into() }.abi_encode(),
            )
            .await;
        Cp::idOfCall::abi_decode_returns(&out).unwrap()
    }

    async fn receipt_count(&self) -> u64 {
        let out = self
            .anvil
            .call(
                &self.admin,
                self.contract,
                Cp::receiptCountCall {}.abi_encode(),
            )
            .await;
        Cp::receiptCountCall::abi_decode_returns(&out)
            .unwrap()
            .to::<u64>()
    }

    async fn wait_receipts(&self, n: u64, within: Duration) {
        let until = std::time::Instant::now() + within;
        loop {
            let c = self.receipt_count().await;
            if c >= n {
                assert_eq!(c, n, "more receipts on chain than completed requests");
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "only {c} of {n} receipts landed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn store(&self) -> Store {
        Store::open(&format!("sqlite://{}", self.db.display()))
            .await
            .unwrap()
    }

    /// Grants the delegate everything needed for gpt-4o-mini on OpenAI with the owner's key.
    async fn grant_all(&self, pk: [u8; 32]) {
        let pid = keccak256(b"OPENAI");
        let mid = keccak256(b"gpt-4o-mini");
        self.owner_sends(
            Cp::setDelegateCall {
                delegate: self.delegate.address(),
                permitted: true,
            }
            .abi_encode(),
        )
        .await;
        self.owner_sends(
            Cp::setModelPermittedCall {
                providerId: pid,
                modelId: mid,
                permitted: true,
            }
            .abi_encode(),
        )
        .await;
        self.owner_sends(
            Cp::setSecretCall {
                providerId: pid,
                ciphertext: seal(pk, OWNER_KEY.as_bytes()).into(),
            }
            .abi_encode(),
        )
        .await;
    }
}

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hello sapphire"}]}).to_string()
}

async fn public_key(gw: &Gateway) -> [u8; 32] {
    let r = get(&format!("{}/rofl/public-key", gw.url), &[]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["isAvailable"], true);
    assert_eq!(v["isInsideRofl"], false);
    let hex = v["publicKey"].as_str().unwrap();
    alloy_primitives::hex::decode(hex.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

/// Waits for the chain cache of the gateway to expire (`cache_ms` in the config).
async fn past_cache() {
    tokio::time::sleep(Duration::from_millis(250)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_sealed_keys_and_exact_receipts() {
    if common::chain::skipped("permissions_sealed_keys_and_exact_receipts") {
        return;
    }
    let w = World::new(100).await;
    let gw = w.gateway();
    let pk = public_key(&gw).await;
    // Register the gateway's key as an operator does (README "Run inside Oasis ROFL").
    w.anvil
        .send(
            &w.admin,
            w.contract,
            Cp::setRoflKeyCall {
                key: pk.to_vec().into(),
            }
            .abi_encode(),
        )
        .await;
    assert!(
        gw.log().contains(&alloy_primitives::hex::encode(pk)),
        "public key not logged"
    );
    let chat_url = format!("{}/v1/chat/completions", gw.url);

    // No wallet: refused before any chain read or upstream call.
    let r = post(&chat_url, &[], &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.text.contains("WALLET_LOGIN_REQUIRED"), "{}", r.text);

    // Login: a signature for another chain, then a replay, are refused.
    let bad = post(
        &format!("{}/auth/login", gw.url),
        &[],
        &login_body(&w.delegate, 1, "nonce-other-chain"),
    )
    .await;
    assert_eq!(bad.status, 401, "{}", bad.text);
    let body = login_body(&w.delegate, CHAIN_ID, "nonce-first-login");
    let ok = post(&format!("{}/auth/login", gw.url), &[], &body).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let replay = post(&format!("{}/auth/login", gw.url), &[], &body).await;
    assert_eq!(replay.status, 401, "{}", replay.text);
    let token = ok.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];

    // Acting for itself, the delegate has no permitted model.
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "MODEL_NOT_ALLOWED");

    // Acting for the owner: each missing permission in turn.
    let prefs = client_put(
        &format!("{}/user/preferences", gw.url),
        &bearer,
        json!({"api_address": format!("{:#x}", w.owner.address())}),
    )
    .await;
    assert_eq!(prefs, 200);
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (403, json!("DELEGATE_NOT_PERMITTED")),
        "{}",
        r.text
    );
    let pid = w.id_of("OPENAI").await;
    let mid = w.id_of("gpt-4o-mini").await;
    // The gateway's encoding agrees with Solidity's keccak256.
    assert_eq!(pid, ekai_gateway::sapphire::ids::provider_id("openai"));
    assert_eq!(mid, ekai_gateway::sapphire::ids::model_id("gpt-4o-mini"));
    w.owner_sends(
        Cp::setDelegateCall {
            delegate: w.delegate.address(),
            permitted: true,
        }
        .abi_encode(),
    )
    .await;
    past_cache().await;
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (403, json!("MODEL_NOT_ALLOWED")),
        "{}",
        r.text
    );
    w.owner_sends(
        Cp::setModelPermittedCall {
            providerId: pid,
            modelId: mid,
            permitted: true,
        }
        .abi_encode(),
    )
    .await;
    past_cache().await;
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("SECRET_NOT_FOUND")),
        "{}",
        r.text
    );
    // A plaintext key stored instead of a sealed one is never used.
    w.owner_sends(
        Cp::setSecretCall {
            providerId: pid,
            ciphertext: OWNER_KEY.as_bytes().to_vec().into(),
        }
        .abi_encode(),
    )
    .await;
    past_cache().await;
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (500, json!("DECRYPTION_FAILED")),
        "{}",
        r.text
    );
    assert!(!r.text.contains(OWNER_KEY));
    assert_eq!(
        w.mock.requests().len(),
        0,
        "nothing reached the provider yet"
    );

    // Sealed to the gateway's key: served with the owner's key (the mock accepts no other).
    w.owner_sends(
        Cp::setSecretCall {
            providerId: pid,
            ciphertext: seal(pk, OWNER_KEY.as_bytes()).into(),
        }
        .abi_encode(),
    )
    .await;
    past_cache().await;
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Translated (Anthropic client → OpenAI upstream) and streamed passthrough too.
    let r2 = post(
        &format!("{}/v1/messages", gw.url),
        &[("x-api-key", token.as_str()), ("anthropic-version", "2023-06-01")],
        &json!({"model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}).to_string(),
    )
    .await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let r3 = post(&chat_url, &auth, &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "stream"}]}).to_string()).await;
    assert_eq!(r3.status, 200, "{}", r3.text);
    let seen = w.mock.requests();
    assert_eq!(seen.len(), 3);
    for q in &seen {
        assert_eq!(
            q.header("authorization"),
            Some(format!("Bearer {OWNER_KEY}").as_str())
        );
    }

    // Refusals in the client's dialect: Anthropic shape, the code leading the message.
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("x-api-key", token.as_str()), ("anthropic-version", "2023-06-01")],
        &json!({"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "permission_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("MODEL_NOT_ALLOWED"),
        "{v}"
    );

    // Paused: 503 for everyone.
    w.anvil
        .send(
            &w.admin,
            w.contract,
            Cp::setPausedCall { p: true }.abi_encode(),
        )
        .await;
    past_cache().await;
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (503, json!("SAPPHIRE_PAUSED")),
        "{}",
        r.text
    );
    w.anvil
        .send(
            &w.admin,
            w.contract,
            Cp::setPausedCall { p: false }.abi_encode(),
        )
        .await;

    // Receipts: exactly one per completed request, with the values the ledger recorded.
    w.wait_receipts(3, Duration::from_secs(30)).await;
    let store = w.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let outbox = loop {
        let o = store.outbox_all().await.unwrap();
        if o.len() == 3 && o.iter().all(|r| r.mined_at.is_some()) {
            break o;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox not all mined: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let logs = w
        .anvil
        .rpc("eth_getLogs", json!([{"address": format!("{:#x}", w.contract), "fromBlock": "0x0", "toBlock": "latest"}]))
        .await
        .unwrap();
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let all = ekai_gateway::ledger::store::Filter {
        start_ms: 0,
        end_ms: i64::MAX,
        ..Default::default()
    };
    let rows = store.records(&all, 100, 0).await;
    for o in &outbox {
        let log = logs
            .iter()
            .find(|l| l["transactionHash"].as_str() == o.tx_hash.as_deref())
            .unwrap_or_else(|| panic!("no log for {o:?}"));
        let topics: Vec<B256> = log["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().parse().unwrap())
            .collect();
        let data =
            alloy_primitives::hex::decode(log["data"].as_str().unwrap().trim_start_matches("0x"))
                .unwrap();
        let ev = Cp::ReceiptLogged::decode_raw_log(topics, &data).unwrap();
        assert_eq!(ev.owner, w.owner.address());
        assert_eq!(ev.delegate, w.delegate.address());
        assert_eq!(ev.providerId, pid);
        assert_eq!(ev.modelId, mid);
        // requestHash = keccak256(abi.encodePacked(owner, delegate, providerId, modelId, uint64 ms)),
        // as Solidity computes it.
        let out = w
            .anvil
            .call(
                &w.admin,
                w.contract,
                Cp::requestHashOfCall {
                    owner: w.owner.address(),
                    delegate: w.delegate.address(),
                    providerId: pid,
                    modelId: mid,
                    timestampMs: o.timestamp_ms as u64,
                }
                .abi_encode(),
            )
            .await;
        assert_eq!(
            ev.requestHash,
            Cp::requestHashOfCall::abi_decode_returns(&out).unwrap()
        );
        assert_eq!(format!("{:#x}", ev.requestHash), o.request_hash);
        let row = ledger_row(&rows, &o.request_id);
        assert_eq!(u64::from(ev.promptTokens), row.0);
        assert_eq!(u64::from(ev.completionTokens), row.1);
        assert!(ev.promptTokens > 0 && ev.completionTokens > 0);
    }
    assert!(
        !gw.log().contains(OWNER_KEY),
        "an opened key reached the log"
    );

    // The node unreachable (and the cache expired): 503, never the gateway's own key.
    let mut anvil = w.anvil;
    anvil.stop();
    past_cache().await;
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (503, json!("SAPPHIRE_UNAVAILABLE")),
        "{}",
        r.text
    );
    assert_eq!(w.mock.requests().len(), 3);
}

/// (input tokens, output tokens) of the ledger row of `request_id`.
fn ledger_row(
    rows: &Result<Vec<ekai_gateway::ledger::store::Row>, sqlx::Error>,
    request_id: &str,
) -> (u64, u64) {
    let r = rows
        .as_ref()
        .unwrap()
        .iter()
        .find(|r| r.request_id == request_id && r.status == 200)
        .unwrap_or_else(|| panic!("no ledger row for {request_id}"));
    (r.input_tokens as u64, r.output_tokens as u64)
}

async fn client_put(url: &str, bearer: &str, body: serde_json::Value) -> u16 {
    common::client()
        .put(url)
        .header("authorization", bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_survive_an_anvil_restart_and_a_gateway_kill_9() {
    if common::chain::skipped("receipts_survive_an_anvil_restart_and_a_gateway_kill_9") {
        return;
    }
    // Chain reads cached for 10 minutes: requests keep being served while the node is down.
    let mut w = World::new(600_000).await;
    let mut gw = w.gateway();
    let pk = public_key(&gw).await;
    w.grant_all(pk).await;
    let token = login(&gw, &w.delegate).await;
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    assert_eq!(
        client_put(
            &format!("{}/user/preferences", gw.url),
            &bearer,
            json!({"api_address": format!("{:#x}", w.owner.address())})
        )
        .await,
        200
    );
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let r = post(&chat_url, &auth, &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    w.wait_receipts(1, Duration::from_secs(30)).await;

    // The node goes down: requests are still served (cached reads), receipts wait in the outbox,
    // and land once it is back, from the same gateway process.
    let store = w.store().await;
    outage(&mut w, &chat_url, &auth, &store, 2).await;
    w.anvil.start_again().await;
    w.wait_receipts(3, Duration::from_secs(30)).await;

    // Down again, and this time the gateway dies without a chance to clean up while receipts are
    // pending; then the node and a new gateway process come back.
    outage(&mut w, &chat_url, &auth, &store, 2).await;
    let st = std::process::Command::new("kill")
        .args(["-9", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    gw.wait_exit(Duration::from_secs(10))
        .expect("gateway survived kill -9");
    w.anvil.start_again().await;
    assert_eq!(
        w.receipt_count().await,
        3,
        "the node kept its state across the restart"
    );
    let _gw2 = w.gateway();
    w.wait_receipts(5, Duration::from_secs(60)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = store.outbox_all().await.unwrap();
        if o.len() == 5
            && o.iter()
                .all(|r| r.mined_at.is_some() && r.tx_hash.is_some())
        {
            let mut hashes: Vec<&str> = o.iter().map(|r| r.request_hash.as_str()).collect();
            hashes.sort();
            hashes.dedup();
            assert_eq!(hashes.len(), 5);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "outbox: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still exactly five: nothing was sent twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.receipt_count().await, 5);
}

/// Stops the node, serves `n` requests (from cached chain reads) and waits until each of their
/// receipts has failed to send at least once.
async fn outage(w: &mut World, chat_url: &str, auth: &[(&str, &str)], store: &Store, n: usize) {
    w.anvil.stop();
    let before = store.outbox_all().await.unwrap().len();
    for _ in 0..n {
        let r = post(chat_url, auth, &chat("gpt-4o-mini")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let o = store.outbox_all().await.unwrap();
        let failed = o
            .iter()
            .filter(|r| r.mined_at.is_none() && r.attempts > 0)
            .count();
        if o.len() == before + n && failed == n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "outbox: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stand-in for `rofl-appd` on a UNIX socket: `keys/generate` answers a fixed key, and
/// `tx/sign-submit` signs the EVM call with the app's key (here: a local signer the contract knows
/// as its gateway) and submits it to anvil, answering the CBOR call result as the daemon does.
struct FakeAppd {
    socket: PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAppd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake_appd(key: [u8; 32], app: DynProvider) -> FakeAppd {
    use axum::Json;
    use axum::extract::State;
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    type St = (Arc<Mutex<Vec<serde_json::Value>>>, DynProvider, [u8; 32]);
    async fn generate(
        State((seen, _, key)): State<St>,
        Json(v): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        assert_eq!(
            v,
            json!({"key_id": "ekai-gateway-encryption-key", "kind": "raw-256"})
        );
        seen.lock().unwrap().push(v);
        Json(json!({"key": alloy_primitives::hex::encode(key)}))
    }
    async fn sign_submit(
        State((seen, app, _)): State<St>,
        Json(v): Json<serde_json::Value>,
    ) -> Json<serde_json::Value> {
        use alloy_network::TransactionBuilder;
        use alloy_provider::Provider;
        seen.lock().unwrap().push(v.clone());
        let d = &v["tx"]["data"];
        assert_eq!(v["tx"]["kind"], "eth");
        let to: Address = format!("0x{}", d["to"].as_str().unwrap()).parse().unwrap();
        let input = alloy_primitives::hex::decode(d["data"].as_str().unwrap()).unwrap();
        let tx = <alloy_network::Ethereum as alloy_network::Network>::TransactionRequest::default()
            .with_to(to)
            .with_input(alloy_primitives::Bytes::from(input))
            .with_gas_limit(d["gas_limit"].as_u64().unwrap());
        let ok = match app.send_transaction(tx).await {
            Ok(p) => p.get_receipt().await.map(|r| r.status()).unwrap_or(false),
            Err(_) => false,
        };
        // {"ok": h''} or {"fail": {"code": 8, "module": "evm", "message": "reverted: …"}}
        let data = if ok {
            "a1626f6b40"
        } else {
            "a1646661696ca364636f646508666d6f64756c656365766d676d6573736167657272657665727465643a20614a416f4c773d3d"
        };
        Json(json!({"data": data}))
    }
    let socket = scratch_dir().join("rofl-appd.sock");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new()
        .route("/rofl/v1/keys/generate", post(generate))
        .route("/rofl/v1/tx/sign-submit", post(sign_submit))
        .with_state((Arc::clone(&seen), app, key));
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    FakeAppd { socket, seen, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_rofl_the_key_and_the_receipts_go_through_the_daemon() {
    if common::chain::skipped("inside_rofl_the_key_and_the_receipts_go_through_the_daemon") {
        return;
    }
    let w = World::new(100).await;
    let raw = random32();
    let appd = fake_appd(raw, w.anvil.provider(w.gateway_signer.clone())).await;
    let gw = w.gateway_in(Some(&appd.socket));
    let r = get(&format!("{}/rofl/public-key", gw.url), &[]).await;
    let v = r.json();
    assert_eq!(
        (v["isInsideRofl"].clone(), v["isAvailable"].clone()),
        (json!(true), json!(true)),
        "{v}"
    );
    // The daemon's key, clamped, is the gateway's X25519 secret.
    let mut clamped = raw;
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    let expected =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(clamped)).to_bytes();
    assert_eq!(
        v["publicKey"],
        format!("0x{}", alloy_primitives::hex::encode(expected))
    );
    w.grant_all(expected).await;
    let token = login(&gw, &w.delegate).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        client_put(
            &format!("{}/user/preferences", gw.url),
            &bearer,
            json!({"api_address": format!("{:#x}", w.owner.address())})
        )
        .await,
        200
    );
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[("authorization", bearer.as_str())],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    w.wait_receipts(1, Duration::from_secs(30)).await;
    let seen = appd.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1]["encrypt"], true);
    assert_eq!(
        seen[1]["tx"]["data"]["to"],
        alloy_primitives::hex::encode(w.contract)
    );
    let store = w.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = store.outbox_all().await.unwrap();
        // The daemon reports the call result, not a hash: mined, without a tx hash.
        if o.len() == 1 && o[0].mined_at.is_some() {
            assert_eq!(o[0].tx_hash, None);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "outbox: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Figures, not a check: time of sequential chat requests through a plain gateway and through
/// Sapphire mode with warm and with no chain-read cache (every request then reads the chain four
/// times). `cargo test -p ekai-gateway --test e2e_sapphire -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn measure_sapphire_overhead() {
    if common::chain::skipped("measure_sapphire_overhead") {
        return;
    }
    const N: u32 = 200;
    async fn run(url: &str, auth: &[(&str, &str)]) -> Duration {
        let chat_url = format!("{url}/v1/chat/completions");
        for _ in 0..10 {
            assert_eq!(
                post(&chat_url, auth, &chat("gpt-4o-mini")).await.status,
                200
            );
        }
        let t = std::time::Instant::now();
        for _ in 0..N {
            let r = post(&chat_url, auth, &chat("gpt-4o-mini")).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        t.elapsed() / N
    }
    let openai = |w: &World| format!("{}/v1", w.mock.base_url());
    for cache_ms in [600_000u64, 0] {
        let w = World::new(cache_ms).await;
        // The same ledger (SQLite) for both, so the difference is Sapphire mode's own work.
        let plain_db = format!("sqlite://{}/plain.db", scratch_dir().display());
        let plain = Gateway::start(&[
            ("OPENAI_API_KEY", OWNER_KEY),
            ("EKAI_OPENAI_BASE_URL", &openai(&w)),
            ("DATABASE_URL", &plain_db),
        ]);
        let base = run(&plain.url, &[]).await;
        let gw = w.gateway();
        let pk = public_key(&gw).await;
        w.grant_all(pk).await;
        let token = login(&gw, &w.delegate).await;
        let bearer = format!("Bearer {token}");
        assert_eq!(
            client_put(
                &format!("{}/user/preferences", gw.url),
                &bearer,
                json!({"api_address": format!("{:#x}", w.owner.address())})
            )
            .await,
            200
        );
        let sapphire = run(&gw.url, &[("authorization", bearer.as_str())]).await;
        eprintln!(
            "FIGURES cache_ms={cache_ms}: plain gateway {:.2} ms/request, Sapphire mode {:.2} ms/request (+{:.2} ms)",
            base.as_secs_f64() * 1e3,
            sapphire.as_secs_f64() * 1e3,
            (sapphire.as_secs_f64() - base.as_secs_f64()) * 1e3
        );
        w.wait_receipts(u64::from(N) + 10, Duration::from_secs(120))
            .await;
    }
}
