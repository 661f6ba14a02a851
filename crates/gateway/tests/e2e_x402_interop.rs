//! Interop with the reference x402 implementation: the OFFICIAL server middleware — `@x402/express`
//! (v2) and `x402-express` (v1) from npm — in front of the mock provider, with an offline
//! facilitator built from the official packages (`@x402/core` + `@x402/evm`, `x402/facilitator`)
//! settling on a local anvil (npm `@foundry-rs/anvil`) against an EIP-3009 token compiled with npm
//! `solc` (`tests/x402_interop/`). The real gateway pays; the test checks that the facilitator
//! verified and settled each payment, the transactions succeeded on chain, the token balances moved by
//! exactly what was paid, and the ledger recorded those transaction hashes.
//!
//! Needs `node` and `npm` on PATH and the npm registry for the first run (installed once into
//! `$CARGO_TARGET_TMPDIR/x402-interop`); a failing setup fails the test with the installer's output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::{Gateway, get, npm_install_cached, post, scratch_dir};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::OnceCell;

/// Anvil's first development account: the gateway's wallet, funded by the token's constructor.
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const WALLET: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const MINTED: u64 = 1_000_000_000;

static SETUP: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();

async fn setup() -> &'static Path {
    let r = SETUP
        .get_or_init(|| async {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/x402_interop");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("x402-interop");
            let dir = npm_install_cached(&src, &dir).await?;
            // Next to node_modules, so the script's imports resolve there.
            for f in ["server.mjs", "Token.sol"] {
                std::fs::copy(src.join(f), dir.join(f)).map_err(|e| format!("copy {f}: {e}"))?;
            }
            Ok(dir)
        })
        .await;
    match r {
        Ok(d) => d,
        Err(e) => panic!("x402 interop setup failed:\n{e}"),
    }
}

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

async fn interop(protocol: &str) {
    let dir = setup().await;
    let chain = common::chain::Anvil::start_with(common::chain::anvil_bin(dir), 84532).await;
    let mock = ekai_mock_provider::spawn(common::MockConfig::default())
        .await
        .unwrap();
    let mut server = tokio::process::Command::new("node")
        .arg(dir.join("server.mjs"))
        .current_dir(dir)
        .env("ANVIL_URL", &chain.url)
        .env("MOCK_URL", mock.base_url())
        .env("PAYER", WALLET)
        .env("PROTOCOL", protocol)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(240), lines.next_line()).await;
    let info: Value = match first {
        Ok(Ok(Some(l))) => serde_json::from_str(&l).unwrap(),
        other => {
            let _ = server.start_kill();
            let mut err = String::new();
            let _ = server.stderr.take().unwrap().read_to_string(&mut err).await;
            panic!("the x402 reference server did not start ({other:?}):\n{err}");
        }
    };
    let relay = format!("http://127.0.0.1:{}", info["port"]);
    let token = info["token"].as_str().unwrap().to_string();
    let cfg = scratch_dir().join("x402.toml");
    std::fs::write(&cfg, format!("[x402]\nassets = [\"{token}\"]\n")).unwrap();
    let gw = Gateway::start_with_args(
        &[("PRIVATE_KEY", KEY), ("X402_BASE_URL", &relay)],
        &["--config", cfg.to_str().unwrap()],
    );

    let chat = |stream: bool| {
        json!({"model": "gpt-4o-mini", "stream": stream,
               "messages": [{"role": "user", "content": "hi there"}]})
        .to_string()
    };
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat(false),
    )
    .await;
    assert_eq!(r.status, 200, "{protocol}: {}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "x402");
    assert!(r.text.contains("Hello from mock-openai"), "{}", r.text);
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &chat(true)).await;
    assert_eq!(r.status, 200, "{protocol}: {}", r.text);
    assert_eq!(
        r.sse_data().last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        r.text
    );
    let body = json!({"model": "claude-3-5-haiku", "max_tokens": 64,
                      "messages": [{"role": "user", "content": "hi there"}]});
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{protocol}: {}", r.text);
    assert!(r.text.contains("Hello from mock-anthropic"), "{}", r.text);

    // The official facilitator verified and settled each payment, on chain.
    let stats = get(&format!("{relay}/stats"), &[]).await.json();
    let verify = stats["verify"].as_array().unwrap();
    let settle = stats["settle"].as_array().unwrap();
    assert_eq!(verify.len(), 3, "{stats}");
    assert!(verify.iter().all(|v| v["isValid"] == true), "{stats}");
    assert_eq!(settle.len(), 3, "{stats}");
    assert!(settle.iter().all(|s| s["success"] == true), "{stats}");
    let receipts = stats["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 3);
    assert!(receipts.iter().all(|r| r["status"] == "success"), "{stats}");
    assert_eq!(stats["payer"], (MINTED - 30_000).to_string(), "{stats}");
    assert_eq!(stats["payTo"], "30000", "{stats}");

    // The ledger has each settlement's transaction hash and the amount actually paid.
    let txs: HashSet<String> = settle
        .iter()
        .map(|s| s["transaction"].as_str().unwrap().to_ascii_lowercase())
        .collect();
    let recs = rows(&gw, 3).await;
    for rec in &recs {
        let x = &rec["x402"];
        assert_eq!(x["amount_atomic"], "10000", "{rec}");
        assert_eq!(x["payer"], WALLET);
        let tx = x["tx_hash"].as_str().unwrap().to_ascii_lowercase();
        assert!(txs.contains(&tx), "{rec} not in {txs:?}");
    }
    drop(gw);
    let _ = server.start_kill();
    let _ = server.wait().await;
    drop(chain);
    mock.shutdown().await;
}

#[tokio::test]
async fn official_v1_middleware_and_facilitator_settle_on_anvil() {
    interop("v1").await;
}

#[tokio::test]
async fn official_v2_middleware_and_facilitator_settle_on_anvil() {
    interop("v2").await;
}
