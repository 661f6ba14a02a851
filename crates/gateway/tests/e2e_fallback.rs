//! End-to-end fallback, health and cost routing: the real gateway in front of TWO mock providers
//! that serve the same model — `a-primary` speaking OpenAI Chat and `b-backup` speaking Anthropic
//! Messages — so every fallback is also a change of dialect for one of the two client APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "fb-model";
const ANTHROPIC_HEADERS: &[(&str, &str)] = &[("anthropic-version", "2023-06-01")];

struct Pair {
    primary: MockHandle,
    backup: MockHandle,
    gw: Gateway,
}

/// `primary` answers every request with `scenario` (None: it works); `primary_url` replaces its
/// address (an unreachable one, say).
async fn pair(scenario: Option<&str>, extra_config: &str, primary_url: Option<&str>) -> Pair {
    let primary = ekai_mock_provider::spawn(MockConfig {
        default_scenario: scenario.map(str::to_string),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let backup = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let primary_base = primary_url
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}/v1", primary.base_url()));
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[routing]
strategy = "priority"
[providers.a-primary]
base_url = "{primary_base}"
models = ["{MODEL}"]
[providers.b-backup]
base_url = "{}"
dialect = "anthropic"
models = ["{MODEL}"]
{extra_config}
"#,
            backup.base_url()
        ),
    )
    .unwrap();
    let gw = Gateway::start(&[("EKAI_CONFIG", cfg.to_str().unwrap())]);
    Pair {
        primary,
        backup,
        gw,
    }
}

#[derive(Clone, Copy, Debug)]
enum Client {
    OpenAi,
    Anthropic,
}

async fn ask(gw: &Gateway, client: Client, stream: bool) -> Reply {
    match client {
        Client::OpenAi => {
            let body = json!({"model": MODEL, "stream": stream,
                              "messages": [{"role": "user", "content": "hi there"}]});
            post(
                &format!("{}/v1/chat/completions", gw.url),
                &[],
                &body.to_string(),
            )
            .await
        }
        Client::Anthropic => {
            let body = json!({"model": MODEL, "stream": stream, "max_tokens": 50,
                              "messages": [{"role": "user", "content": "hi there"}]});
            post(
                &format!("{}/v1/messages", gw.url),
                ANTHROPIC_HEADERS,
                &body.to_string(),
            )
            .await
        }
    }
}

/// The reply's text, whatever the client API and streaming mode.
fn text_of(r: &Reply, client: Client, stream: bool) -> String {
    if !stream {
        let v = r.json();
        return match client {
            Client::OpenAi => v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            Client::Anthropic => v["content"][0]["text"].as_str().unwrap_or("").to_string(),
        };
    }
    r.sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| match client {
            Client::OpenAi => v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string),
            Client::Anthropic => v["delta"]["text"].as_str().map(str::to_string),
        })
        .collect()
}

/// One failure kind of the primary, in all four combinations of client API and streaming: the
/// backup answers, each upstream was hit once, and the response says two attempts were made.
async fn falls_back(scenario: Option<&str>, extra: &str, primary_url: Option<&str>) {
    for client in [Client::OpenAi, Client::Anthropic] {
        for stream in [false, true] {
            let p = pair(scenario, extra, primary_url).await;
            let r = ask(&p.gw, client, stream).await;
            let ctx = format!("{scenario:?} {client:?} stream={stream}");
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            assert_eq!(r.header("x-ekai-provider"), "b-backup", "{ctx}");
            assert_eq!(r.header("x-ekai-attempts"), "2", "{ctx}");
            assert_eq!(
                text_of(&r, client, stream),
                "Hello from mock-anthropic: hi there",
                "{ctx}: {}",
                r.text
            );
            if primary_url.is_none() {
                assert_eq!(p.primary.hits("openai"), 1, "{ctx}");
            }
            assert_eq!(p.backup.hits("anthropic"), 1, "{ctx}");
            let log = p.gw.wait_log("attempt=2").await;
            assert!(log.contains("attempt=1"), "{ctx}: both attempts accounted");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_fall_back() {
    falls_back(Some("status=500"), "", None).await;
    falls_back(Some("status=503"), "", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_timeout_conflict_and_rate_limit_fall_back() {
    falls_back(Some("status=529"), "", None).await;
    falls_back(Some("status=408"), "", None).await;
    falls_back(Some("status=409"), "", None).await;
    falls_back(Some("status=429"), "", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_for_one_provider_falls_back() {
    falls_back(Some("status=401"), "", None).await;
    falls_back(Some("status=403"), "", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_slow_providers_fall_back() {
    falls_back(None, "", Some("http://127.0.0.1:9/v1")).await;
    falls_back(
        Some("delay=3000"),
        "[timeouts]\nfirst_byte_ms = 300\n",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_dies_before_its_first_event_falls_back() {
    for client in [Client::OpenAi, Client::Anthropic] {
        let p = pair(Some("cut=0"), "", None).await;
        let r = ask(&p.gw, client, true).await;
        assert_eq!(r.header("x-ekai-provider"), "b-backup", "{client:?}");
        assert_eq!(
            text_of(&r, client, true),
            "Hello from mock-anthropic: hi there"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_do_not_fall_back() {
    for client in [Client::OpenAi, Client::Anthropic] {
        let p = pair(Some("status=400"), "", None).await;
        let r = ask(&p.gw, client, false).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.header("x-ekai-attempts"), "1");
        assert_eq!(p.primary.hits("openai"), 1);
        assert_eq!(
            p.backup.hits("anthropic"),
            0,
            "the client's request was wrong"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fallback_after_the_first_byte_reached_the_client() {
    for client in [Client::OpenAi, Client::Anthropic] {
        let p = pair(Some("cut=3"), "", None).await;
        let r = ask(&p.gw, client, true).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ekai-provider"), "a-primary");
        assert_eq!(
            p.backup.hits("anthropic"),
            0,
            "{client:?}: no fallback mid-stream"
        );
        // The broken stream ends with an error in the client's dialect.
        match client {
            Client::OpenAi => {
                let last: Value = serde_json::from_str(r.sse_data().last().unwrap()).unwrap();
                assert!(last.get("error").is_some(), "{}", r.text);
            }
            Client::Anthropic => {
                assert_eq!(r.sse_events().last().map(String::as_str), Some("error"))
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_keeps_the_provider_out_until_it_expires() {
    let p = pair(Some("status=429,retry-after=30"), "", None).await;
    let r = ask(&p.gw, Client::OpenAi, false).await;
    assert_eq!(r.header("x-ekai-attempts"), "2");
    let r = ask(&p.gw, Client::OpenAi, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ekai-provider"), "b-backup");
    assert_eq!(
        r.header("x-ekai-attempts"),
        "1",
        "the held provider was skipped"
    );
    assert_eq!(p.primary.hits("openai"), 1);
    assert_eq!(p.backup.hits("anthropic"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_skips_half_opens_and_closes() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(
        &cfg,
        "[health]\nconsecutive_failures = 2\ncooldown_ms = 600\n",
    )
    .unwrap();
    let gw = gateway_for(&mock, &[("EKAI_CONFIG", cfg.to_str().unwrap())]);
    let url = format!("{}/v1/chat/completions", gw.url);
    let body =
        |m: &str| json!({"model": m, "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let circuit = || async {
        let v = get(&format!("{}/health", gw.url), &[]).await.json();
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "openai")
            .unwrap()["circuit"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for _ in 0..2 {
        let r = post(&url, &[], &body("gpt-4o@status=500")).await;
        assert_eq!(r.status, 500);
    }
    assert_eq!(circuit().await, "open");
    // Open: refused at once, upstream not called.
    let r = post(&url, &[], &body("gpt-4o")).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("retry-after").parse::<u64>().is_ok());
    assert_eq!(mock.hits("openai"), 2);
    // After the cooldown one probe goes through; it succeeds and closes the circuit.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = post(&url, &[], &body("gpt-4o")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.hits("openai"), 3);
    assert_eq!(circuit().await, "closed");
    let r = post(&url, &[], &body("gpt-4o")).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cheaper_provider_serves_and_the_header_can_ask_for_priority() {
    // The same model on both mocks; the backup is cheaper for this request.
    let prices = format!(
        r#"
[[models]]
provider = "a-primary"
id = "{MODEL}"
price = {{ input = "5", output = "20" }}
[[models]]
provider = "b-backup"
id = "{MODEL}"
price = {{ input = "1", output = "4" }}
"#
    );
    let dir = scratch_dir();
    let p = pair(None, "", None).await;
    // Rewrite the gateway's config without `strategy = "priority"`, keeping the two providers.
    let cfg = dir.join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[providers.a-primary]\nbase_url = \"{}/v1\"\n[providers.b-backup]\nbase_url = \"{}\"\ndialect = \"anthropic\"\n{prices}",
            p.primary.base_url(),
            p.backup.base_url()
        ),
    )
    .unwrap();
    let gw = Gateway::start(&[("EKAI_CONFIG", cfg.to_str().unwrap())]);
    let r = ask(&gw, Client::OpenAi, false).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-provider"), "b-backup", "cheapest first");
    let log = gw.wait_log("cost_usd=").await;
    assert!(
        !log.contains("cost_usd=unpriced"),
        "priced from the override: {log}"
    );
    // Per request, `x-ekai-route: priority` uses configuration order instead.
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi there"}]});
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[("x-ekai-route", "priority")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.header("x-ekai-provider"), "a-primary");
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[("x-ekai-route", "fastest-please")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("x-ekai-route"));
}
