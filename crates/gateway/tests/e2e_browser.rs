//! The dashboard in a real browser: Debian's headless Chromium driven by npm `playwright-core`
//! (`tests/browser/dashboard.mjs`) against the real gateway with a seeded SQLite ledger. Signs in,
//! checks the overview's totals against the seeded rows, sets a budget, filters and exports
//! requests, creates a client (key shown once), watches a request made with that key appear live,
//! revokes it, and checks the phone-width layout. Screenshots are kept under the target dir
//! (`browser-screenshots/`).
//!
//! Needs `/usr/bin/chromium` (`.ci/run` installs it and sets `EKAI_REQUIRE_BROWSER=1`, which turns
//! a missing browser into a failure); elsewhere the test says it is skipped and why.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::print_stdout
)]

mod common;

use common::*;
use ekai_gateway::ledger::store::{NanoCost, Row, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const ADMIN: &str = "browser-admin-token-0123456789";
const MASTER: &str = "browser-master-key-0123456789abcdef0123456789";

/// 12 requests over the last hours: 8 × gpt-4o-mini on OpenAI at $0.001 (one of them a 500),
/// 4 × claude-sonnet-4-5 on Anthropic at $0.0025; 1,200 tokens each.
fn seed_rows(now: i64) -> Vec<Row> {
    (0..12)
        .map(|i| {
            let openai = i < 8;
            Row {
                id: 0,
                request_id: format!("req_seed_{i:04}"),
                attempt: 1,
                started_at: now - (i + 1) * 1_800_000,
                client_key_id: None,
                client_dialect: "openai_chat".into(),
                requested_model: if openai {
                    "gpt-4o-mini"
                } else {
                    "claude-sonnet-4-5"
                }
                .into(),
                provider: if openai { "openai" } else { "anthropic" }.into(),
                upstream_model: if openai {
                    "gpt-4o-mini"
                } else {
                    "claude-sonnet-4-5"
                }
                .into(),
                status: if i == 3 { 500 } else { 200 },
                error_kind: (i == 3).then(|| "upstream".into()),
                error: None,
                input_tokens: 1_000,
                output_tokens: 200,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: 0,
                cost: Some(if openai {
                    NanoCost {
                        input: 600_000,
                        output: 400_000,
                        cache_read: 0,
                        cache_write: 0,
                        total: 1_000_000,
                    }
                } else {
                    NanoCost {
                        input: 1_500_000,
                        output: 1_000_000,
                        cache_read: 0,
                        cache_write: 0,
                        total: 2_500_000,
                    }
                }),
                usage_estimated: false,
                streamed: i % 2 == 0,
                client_disconnected: false,
                first_byte_ms: Some(40),
                total_ms: 300 + i * 10,
                payment_method: "api_key".into(),
                x402: None,
            }
        })
        .collect()
}

fn browser_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("EKAI_REQUIRE_BROWSER").is_none(),
            "EKAI_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)"
        );
        println!("SKIPPED: {CHROMIUM} is not installed (apt-get install chromium; .ci/run does)");
        return;
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let dir = npm_install_cached(&browser_src(), &cache)
        .await
        .unwrap_or_else(|e| panic!("installing playwright-core: {e}"));
    std::fs::copy(
        browser_src().join("dashboard.mjs"),
        dir.join("dashboard.mjs"),
    )
    .unwrap();

    // The seeded ledger, written before the gateway opens it.
    let db_dir = scratch_dir();
    let db_url = format!("sqlite://{}/usage.db", db_dir.display());
    let store = Store::open(&db_url).await.unwrap();
    store.migrate().await.unwrap();
    store
        .insert_batch(&seed_rows(ekai_gateway::ledger::time::now_ms()))
        .await
        .unwrap();
    drop(store);

    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = gateway_for(
        &mock,
        &[
            ("DATABASE_URL", db_url.as_str()),
            ("EKAI_ADMIN_TOKEN", ADMIN),
            ("EKAI_MASTER_KEY", MASTER),
            ("EKAI_AUTH_MODE", "keys"),
        ],
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let config = serde_json::json!({
        "api": gw.url,
        "adminToken": ADMIN,
        "chromium": CHROMIUM,
        "screenshots": shots,
        "expected": {
            "requests": "12",
            "tokens": "14,400",
            "cost": "$0.018000",
            "errorRate": "8.33%",
            "providers": ["anthropic", "openai"],
            "anthropicRequests": 4,
        },
    });
    let config_path = db_dir.join("browser.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("dashboard.mjs"))
        .arg(&config_path)
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the browser script timed out")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    println!("screenshots: {}", shots.display());
    assert!(
        out.status.success(),
        "browser checks failed ({}):\n{stdout}\n{stderr}\n--- gateway log ---\n{}",
        out.status,
        gw.log()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
