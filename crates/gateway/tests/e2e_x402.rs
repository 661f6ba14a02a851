//! x402 pay-per-request end to end: the real gateway binary pays the in-repo test relay
//! (`common/x402_relay.rs`, which verifies every signature with alloy and forwards to the mock
//! provider), v1 and v2, JSON and streams, and every refusal and failure path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/x402_relay.rs"]
mod x402_relay;

use common::{Gateway, MockHandle, get, post, scratch_dir};
use serde_json::{Value, json};
use std::time::Duration;
use x402_relay::{PAY_TO, Relay};

/// Anvil's first development key (public knowledge; it holds nothing).
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const WALLET: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

async fn relay() -> (MockHandle, Relay) {
    let mock = ekai_mock_provider::spawn(common::MockConfig::default())
        .await
        .unwrap();
    let relay = x402_relay::spawn(mock.base_url()).await;
    (mock, relay)
}

fn gateway(relay: &Relay, scenario: &str, toml: Option<&str>, extra: &[(&str, &str)]) -> Gateway {
    let base = relay.base(scenario);
    let mut env: Vec<(&str, &str)> = vec![("PRIVATE_KEY", KEY), ("X402_BASE_URL", &base)];
    env.extend_from_slice(extra);
    match toml {
        None => Gateway::start(&env),
        Some(t) => {
            let path = scratch_dir().join("x402.toml");
            std::fs::write(&path, t).unwrap();
            Gateway::start_with_args(&env, &["--config", path.to_str().unwrap()])
        }
    }
}

fn chat(stream: bool) -> String {
    json!({"model": "gpt-4o-mini", "stream": stream,
           "messages": [{"role": "user", "content": "hi there"}]})
    .to_string()
}

fn messages(stream: bool) -> String {
    json!({"model": "claude-3-5-haiku", "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hi there"}]})
    .to_string()
}

const ANTHROPIC: [(&str, &str); 1] = [("anthropic-version", "2023-06-01")];

/// The ledger rows (newest first), once `n` are written.
async fn rows(gw: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let r = get(&format!("{}/admin/stats/requests?limit=100", gw.url), &[]).await;
        if r.status == 200 {
            let recs = r.json()["records"].as_array().cloned().unwrap_or_default();
            if recs.len() >= n {
                return recs;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the ledger never had {n} rows:\n{}", gw.log());
}

#[tokio::test]
async fn v1_and_v2_pay_and_relay_json_and_streams() {
    let (mock, relay) = relay().await;
    for version in ["v1", "v2"] {
        relay.reset();
        let gw = gateway(&relay, version, None, &[]);
        let url = format!("{}/v1/chat/completions", gw.url);

        let r = post(&url, &[], &chat(false)).await;
        assert_eq!(r.status, 200, "{version}: {}", r.text);
        assert_eq!(r.header("x-ekai-provider"), "x402");
        let text = r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.starts_with("Hello from mock-openai"), "{text}");
        // The paid retry replays the exact body of the request that got the 402.
        let reqs = relay.requests();
        assert_eq!(reqs.len(), 2, "{version}");
        assert!(!reqs[0].1 && reqs[1].1);
        assert_eq!(reqs[0].2, reqs[1].2);

        let r = post(&url, &[], &chat(true)).await;
        assert_eq!(r.status, 200, "{version}: {}", r.text);
        assert!(r.header("content-type").starts_with("text/event-stream"));
        let data = r.sse_data();
        assert_eq!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{}",
            r.text
        );
        assert!(data.len() > 3, "streamed in chunks: {}", r.text);

        let r = post(
            &format!("{}/v1/messages", gw.url),
            &ANTHROPIC,
            &messages(false),
        )
        .await;
        assert_eq!(r.status, 200, "{version}: {}", r.text);
        assert!(
            r.json()["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Hello from mock-anthropic")
        );
        let r = post(
            &format!("{}/v1/messages", gw.url),
            &ANTHROPIC,
            &messages(true),
        )
        .await;
        assert_eq!(r.status, 200, "{version}: {}", r.text);
        assert!(
            r.sse_events().contains(&"message_stop".to_string()),
            "{}",
            r.text
        );

        // Four payments, each verified and settled once; every nonce different.
        let settled = relay.settled();
        assert_eq!(settled.len(), 4, "{version}: {:?}", relay.payments());
        assert_eq!(relay.payments().len(), 4);
        let nonces: std::collections::HashSet<_> =
            settled.iter().map(|p| p.nonce.clone()).collect();
        assert_eq!(nonces.len(), 4);
        assert!(
            settled
                .iter()
                .all(|p| p.from == WALLET && p.value == "10000")
        );

        // The ledger has what was actually paid, with the settlement's transaction hash.
        let recs = rows(&gw, 4).await;
        let txs: std::collections::HashSet<String> =
            settled.iter().map(|p| p.tx.clone().unwrap()).collect();
        for rec in &recs {
            assert_eq!(rec["payment_method"], "x402", "{rec}");
            assert_eq!(rec["provider"], "x402");
            let x = &rec["x402"];
            assert_eq!(x["amount_atomic"], "10000", "{rec}");
            assert_eq!(x["amount_usd"].as_f64(), Some(0.01));
            assert_eq!(x["payer"], WALLET);
            assert_eq!(x["payee"], PAY_TO);
            assert_eq!(x["asset"], x402_relay::ASSET);
            assert_eq!(
                x["network"],
                if version == "v1" {
                    "base-sepolia"
                } else {
                    "eip155:84532"
                }
            );
            assert!(txs.contains(x["tx_hash"].as_str().unwrap()), "{rec}");
            assert!(
                rec["output_tokens"].as_i64().unwrap() > 0,
                "usage relayed: {rec}"
            );
        }
        let csv = get(&format!("{}/admin/stats/requests?format=csv", gw.url), &[]).await;
        assert!(csv.text.lines().next().unwrap().ends_with("x402_tx_hash"));
        assert!(txs.iter().all(|t| csv.text.contains(t.as_str())));

        let h = get(&format!("{}/health", gw.url), &[]).await.json();
        assert!(
            h["providers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "x402"),
            "{h}"
        );
    }
    // The relay forwarded exactly the paid requests.
    assert_eq!(mock.hits("openai") + mock.hits("anthropic"), 8);
}

/// Refused by the spend controls: nothing is signed, the relay sees only the unpaid request, and
/// the client gets a 402 saying why, in its own dialect.
#[tokio::test]
async fn spend_controls_refuse_before_signing() {
    let (mock, relay) = relay().await;
    for (scenario, why) in [
        ("v2_mainnet", "is not allowed (x402.networks)"),
        ("v1_amount-500000", "above the per-request limit of 0.1 USD"),
        (
            "v2_amount-50000",
            "more than this request should cost by the catalog",
        ),
    ] {
        relay.reset();
        let gw = gateway(&relay, scenario, None, &[]);
        let r = post(
            &format!("{}/v1/chat/completions", gw.url),
            &[],
            &chat(false),
        )
        .await;
        assert_eq!(r.status, 402, "{scenario}: {}", r.text);
        let e = &r.json()["error"];
        assert_eq!(e["code"], "x402_payment_refused", "{scenario}: {}", r.text);
        assert!(r.text.contains(why), "{scenario}: {}", r.text);
        let r = post(
            &format!("{}/v1/messages", gw.url),
            &ANTHROPIC,
            &messages(false),
        )
        .await;
        assert_eq!(r.status, 402, "{scenario}: {}", r.text);
        assert_eq!(r.json()["type"], "error", "Anthropic's shape: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(why));
        assert!(relay.payments().is_empty(), "{scenario}: nothing signed");
        assert_eq!(relay.requests().len(), 2);
    }
    assert_eq!(mock.hits("openai") + mock.hits("anthropic"), 0);
}

/// The daily cap holds under concurrency: exactly as many payments as fit, never more.
#[tokio::test]
async fn daily_cap_holds_under_concurrency_and_across_restarts() {
    let (_mock, relay) = relay().await;
    let db = scratch_dir().join("usage.db");
    let db_url = format!("sqlite://{}", db.display());
    let toml = "[x402]\nmax_per_day_usd = \"0.03\"\n";
    let gw = gateway(&relay, "v2", Some(toml), &[("DATABASE_URL", &db_url)]);
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = chat(false);
    let replies = futures_util::future::join_all((0..8).map(|_| post(&url, &[], &body))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.status == 402).collect();
    assert_eq!(
        ok,
        3,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 5);
    for r in refused {
        assert!(
            r.text.contains("daily x402 spend limit of 0.03 USD"),
            "{}",
            r.text
        );
        assert_eq!(r.json()["error"]["code"], "x402_payment_refused");
    }
    assert_eq!(relay.payments().len(), 3, "no signature beyond the cap");
    assert_eq!(relay.settled().len(), 3);
    drop(gw);
    // The spend is in the database: a new process on it is still capped.
    let gw = gateway(&relay, "v2", Some(toml), &[("DATABASE_URL", &db_url)]);
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &body).await;
    assert_eq!(r.status, 402, "{}", r.text);
    assert!(r.text.contains("already spent or reserved"), "{}", r.text);
    assert_eq!(relay.payments().len(), 3);
}

/// The relay refuses or cannot settle a signed payment: the client gets a 402 with the relay's
/// reason, the payment is not retried (one signature per request), and the reservation is
/// released (a cap of exactly one payment still lets the next request pay).
#[tokio::test]
async fn relay_failures_are_reported_never_paid_twice_and_released() {
    let (mock, relay) = relay().await;
    let toml = "[x402]\nmax_per_day_usd = \"0.01\"\n";
    for (scenario, why) in [
        ("v1_skew", "authorization expired"),
        ("v2_skew", "authorization expired"),
        ("v2_settlefail", "settlement failed"),
        ("v1_settlefail", "settlement failed"),
    ] {
        relay.reset();
        let gw = gateway(&relay, scenario, Some(toml), &[]);
        for n in 1..=2 {
            let r = post(
                &format!("{}/v1/chat/completions", gw.url),
                &[],
                &chat(n == 2),
            )
            .await;
            assert_eq!(r.status, 402, "{scenario}: {}", r.text);
            assert_eq!(
                r.json()["error"]["code"],
                "x402_payment_failed",
                "{}",
                r.text
            );
            assert!(r.text.contains(why), "{scenario}: {}", r.text);
            // One signature per request, both within a cap that fits one: the first was released.
            assert_eq!(relay.payments().len(), n, "{scenario}");
        }
        assert!(relay.settled().is_empty());
        let recs = rows(&gw, 2).await;
        assert!(
            recs.iter()
                .all(|r| r["status"] == 402 && r["x402"].is_null()),
            "{recs:?}"
        );
    }
    assert_eq!(mock.hits("openai"), 0);
}

/// A captured payment header cannot be spent twice, and the gateway never reuses a nonce.
#[tokio::test]
async fn replayed_authorization_is_refused() {
    let (_mock, relay) = relay().await;
    let gw = gateway(&relay, "v1", None, &[]);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat(false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let header = relay.settled()[0].header.clone();
    let replay = common::client()
        .post(format!("{}/v1/chat/completions", relay.base("v1")))
        .header("x-payment", header)
        .header("content-type", "application/json")
        .body(chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 402);
    let body: Value = serde_json::from_slice(&replay.bytes().await.unwrap()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nonce already used"),
        "{body}"
    );
    assert_eq!(relay.settled().len(), 1);
}

/// Hybrid pays only for models no keyed provider serves; x402-only sends everything to the relay.
#[tokio::test]
async fn hybrid_prefers_keys_and_x402_only_pays_for_everything() {
    let (mock, relay) = relay().await;
    let openai = format!("{}/v1", mock.base_url());
    let keyed = [
        ("OPENAI_API_KEY", "sk-test"),
        ("EKAI_OPENAI_BASE_URL", openai.as_str()),
    ];
    let gw = gateway(&relay, "v2", None, &keyed);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat(false),
    )
    .await;
    assert_eq!(
        (r.status, r.header("x-ekai-provider")),
        (200, "openai"),
        "{}",
        r.text
    );
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(
        (r.status, r.header("x-ekai-provider")),
        (200, "x402"),
        "{}",
        r.text
    );
    assert_eq!(relay.settled().len(), 1);
    let models = get(&format!("{}/v1/models", gw.url), &[]).await.json();
    let owner = |id: &str| {
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .map(|m| m["owned_by"].clone())
    };
    assert_eq!(owner("gpt-4o-mini"), Some(json!("openai")), "{models}");
    assert_eq!(owner("claude-3-5-haiku"), Some(json!("x402")), "{models}");
    drop(gw);
    let mut env = keyed.to_vec();
    env.push(("X402_MODE", "x402-only"));
    let gw = gateway(&relay, "v2", None, &env);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat(false),
    )
    .await;
    assert_eq!(
        (r.status, r.header("x-ekai-provider")),
        (200, "x402"),
        "{}",
        r.text
    );
    assert_eq!(relay.settled().len(), 2);
    let h = get(&format!("{}/health", gw.url), &[]).await.json();
    let names: Vec<_> = h["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("x402")], "{h}");
    let models = get(&format!("{}/v1/models", gw.url), &[]).await.json();
    let data = models["data"].as_array().unwrap();
    assert!(data.iter().any(|m| m["id"] == "gpt-4o-mini"), "{models}");
    assert!(data.iter().all(|m| m["owned_by"] == "x402"), "{models}");
    // byok never pays, wallet or not.
    drop(gw);
    let mut env = keyed.to_vec();
    env.push(("X402_MODE", "byok"));
    let gw = gateway(&relay, "v2", None, &env);
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &ANTHROPIC,
        &messages(false),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("ANTHROPIC_API_KEY"), "{}", r.text);
    assert_eq!(relay.settled().len(), 2);
}
