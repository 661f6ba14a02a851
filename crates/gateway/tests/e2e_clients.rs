//! End-to-end client keys: the real binary on SQLite in front of the mock. Keys mode refuses
//! requests without a valid key (dialect-correct 401 naming the header, never echoing the key, never
//! reaching a provider), created keys work and are recorded on usage rows, revocation, model policy,
//! exact rate limits under concurrency, the admin API's token, and the open-mode safety check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const MASTER: &str = "test-master-key-0123456789-abcdefghijklmnop";
const ADMIN: &str = "admin-token-for-tests-0123456789";

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]}).to_string()
}

fn messages(model: &str) -> String {
    json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

async fn keyed_gateway(mode: Option<&str>) -> (MockHandle, Gateway) {
    keyed_gateway_with(MockConfig::default(), mode).await
}

async fn keyed_gateway_with(cfg: MockConfig, mode: Option<&str>) -> (MockHandle, Gateway) {
    let mock = ekai_mock_provider::spawn(cfg).await.unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("EKAI_MASTER_KEY", MASTER),
        ("EKAI_ADMIN_TOKEN", ADMIN),
    ];
    if let Some(m) = mode {
        env.push(("EKAI_AUTH_MODE", m));
    }
    let gw = gateway_for(&mock, &env);
    (mock, gw)
}

async fn send_json(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut rb = client().request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Reply {
        status,
        headers,
        text: resp.text().await.unwrap(),
    }
}

const ADMIN_AUTH: (&str, &str) = ("authorization", "Bearer admin-token-for-tests-0123456789");

/// Creates a client through the admin API; returns (id, key).
async fn create_client(gw: &Gateway, body: Value) -> (String, String) {
    let r = send_json(
        reqwest::Method::POST,
        &format!("{}/admin/clients", gw.url),
        &[ADMIN_AUTH],
        Some(body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let v = r.json();
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ek-") && key.len() == 43, "{key}");
    assert_eq!(v["key_prefix"].as_str().unwrap(), &key[..8]);
    (v["id"].as_str().unwrap().to_string(), key)
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_mode_requires_a_valid_key_and_records_the_client() {
    let (mock, gw) = keyed_gateway(Some("keys")).await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let msg_url = format!("{}/v1/messages", gw.url);

    // Missing key: OpenAI shape naming the Authorization header.
    let r = post(&chat_url, &[], &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{v}"
    );
    // Anthropic shape naming x-api-key.
    let r = post(
        &msg_url,
        &[("anthropic-version", "2023-06-01")],
        &messages("claude-3-5-haiku-20241022"),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-api-key"),
        "{v}"
    );

    // A wrong key (right shape, and a very long non-key) is refused and never echoed.
    let wrong = format!("ek-{}", "Z".repeat(40));
    for k in [wrong.as_str(), &"x".repeat(5000)] {
        let auth = bearer(k);
        let r = post(&chat_url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(!r.text.contains(k));
        let r = post(
            &msg_url,
            &[("x-api-key", k)],
            &messages("claude-3-5-haiku-20241022"),
        )
        .await;
        assert_eq!(r.status, 401);
        assert!(!r.text.contains(k));
    }
    assert_eq!(mock.hits("openai") + mock.hits("anthropic"), 0);

    // A created key works (Bearer on Chat, x-api-key on Messages) and its id is on the usage rows.
    let (id, key) = create_client(&gw, json!({"name": "alice", "tags": {"team": "a"}})).await;
    let auth = bearer(&key);
    let r = post(&chat_url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(
        &msg_url,
        &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
        &messages("claude-3-5-haiku-20241022"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut records = Vec::new();
    for _ in 0..100 {
        let v = get(&format!("{}/usage", gw.url), &[ADMIN_AUTH])
            .await
            .json();
        records = v["records"].as_array().cloned().unwrap_or_default();
        if records.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|r| r["client_key_id"] == id.as_str()),
        "{records:?}"
    );

    // The key is shown once: the listing and the single view carry only its prefix.
    let list = get(&format!("{}/admin/clients", gw.url), &[ADMIN_AUTH]).await;
    assert_eq!(list.status, 200);
    assert!(!list.text.contains(&key), "{}", list.text);
    assert!(list.text.contains(&key[..8]));
    let one = get(&format!("{}/admin/clients/{id}", gw.url), &[ADMIN_AUTH]).await;
    assert_eq!(one.status, 200);
    assert!(!one.text.contains(&key));
    assert_eq!(one.json()["status"], "active");
    assert!(
        one.json()["spent_month_to_date_usd"].is_number(),
        "{}",
        one.text
    );

    // User preferences for the calling key.
    let prefs = format!("{}/user/preferences", gw.url);
    let r = send_json(
        reqwest::Method::PUT,
        &prefs,
        &[("authorization", &auth)],
        Some(json!({"model_preferences": ["gpt-4o-mini"], "api_address": "http://gw.local"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(&prefs, &[("authorization", &auth)]).await;
    assert_eq!(
        r.json(),
        json!({"model_preferences": ["gpt-4o-mini"], "api_address": "http://gw.local"})
    );
    assert_eq!(get(&prefs, &[]).await.status, 401);

    // Rotation: a new key (shown once) replaces the old one, same id.
    let r = send_json(
        reqwest::Method::POST,
        &format!("{}/admin/clients/{id}/rotate", gw.url),
        &[ADMIN_AUTH],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rotated = r.json()["key"].as_str().unwrap().to_string();
    assert_ne!(rotated, key);
    assert_eq!(r.json()["id"], id.as_str());
    let r = post(&chat_url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let auth = bearer(&rotated);
    let r = post(&chat_url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Revoked → 401 saying so.
    let r = send_json(
        reqwest::Method::DELETE,
        &format!("{}/admin/clients/{id}", gw.url),
        &[ADMIN_AUTH],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "revoked");
    let r = post(&chat_url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("revoked"), "{}", r.text);

    // Expired → 401.
    let (_, old) = create_client(
        &gw,
        json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await;
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&old))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("expired"), "{}", r.text);

    let log = gw.log();
    assert!(!log.contains(&key) && !log.contains(&wrong) && !log.contains(&old));
    assert!(!log.contains(&rotated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_preferences_reject_substitute_and_filter_models() {
    let (mock, gw) = keyed_gateway(Some("keys")).await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let (_, strict) = create_client(
        &gw,
        json!({"name": "strict", "model_preferences": ["gpt-4o-mini"]}),
    )
    .await;
    let (_, lenient) = create_client(
        &gw,
        json!({"name": "lenient", "model_preferences": ["gpt-4o-mini"], "on_disallowed_model": "substitute"}),
    )
    .await;

    let r = post(
        &chat_url,
        &[("authorization", &bearer(&strict))],
        &chat("gpt-4o"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "permission_error", "{}", r.text);
    assert!(r.text.contains("gpt-4o-mini"));
    // Anthropic-shaped 403 on /v1/messages.
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("x-api-key", &strict), ("anthropic-version", "2023-06-01")],
        &messages("claude-3-5-haiku-20241022"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(mock.hits("openai") + mock.hits("anthropic"), 0);

    let r = post(
        &chat_url,
        &[("authorization", &bearer(&lenient))],
        &chat("gpt-4o"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.hits_for_model("gpt-4o-mini"), 1);
    assert_eq!(mock.hits_for_model("gpt-4o"), 0);

    let v = get(
        &format!("{}/v1/models", gw.url),
        &[("authorization", &bearer(&strict))],
    )
    .await
    .json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o-mini"], "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_exact_under_concurrency() {
    let (_mock, gw) = keyed_gateway(Some("keys")).await;
    let (_, key) = create_client(
        &gw,
        json!({"name": "limited", "limits": {"requests_per_minute": 5}}),
    )
    .await;
    // Fixed minute windows: stay clear of a boundary during the burst.
    let sec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if sec >= 50 {
        tokio::time::sleep(Duration::from_secs(61 - sec)).await;
    }
    let url = format!("{}/v1/chat/completions", gw.url);
    let auth = bearer(&key);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (url, auth) = (url.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            post(&url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                let retry: u64 = r.header("retry-after").parse().unwrap();
                assert!((1..=60).contains(&retry), "{retry}");
                assert_eq!(r.header("x-ratelimit-limit-requests"), "5");
                assert_eq!(r.header("x-ratelimit-remaining-requests"), "0");
                assert_eq!(r.json()["error"]["type"], "rate_limit_error", "{}", r.text);
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!((ok, limited), (5, 15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_the_token_and_auto_mode_switches_to_keys() {
    // Auto mode: no client yet → open.
    let (_mock, gw) = keyed_gateway(None).await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    assert_eq!(post(&chat_url, &[], &chat("gpt-4o-mini")).await.status, 200);

    let admin = format!("{}/admin/clients", gw.url);
    let body = json!({"name": "x"});
    for h in [
        vec![],
        vec![("authorization", "Bearer wrong-token")],
        vec![("authorization", "Bearer admin-token-for-tests-012345678")],
        vec![("x-api-key", ADMIN)],
    ] {
        let r = send_json(reqwest::Method::POST, &admin, &h, Some(body.clone())).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(get(&admin, &h).await.status, 401);
    }
    let r = send_json(
        reqwest::Method::POST,
        &admin,
        &[ADMIN_AUTH],
        Some(json!({"nmae": "x"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);

    let (id, key) = create_client(&gw, json!({"name": "first"})).await;
    // A client's key on the admin API is refused.
    assert_eq!(
        get(&admin, &[("authorization", &bearer(&key))])
            .await
            .status,
        401
    );
    // The first client switches auto mode to keys.
    assert_eq!(post(&chat_url, &[], &chat("gpt-4o-mini")).await.status, 401);
    assert_eq!(
        post(
            &chat_url,
            &[("authorization", &bearer(&key))],
            &chat("gpt-4o-mini")
        )
        .await
        .status,
        200
    );
    let r = send_json(
        reqwest::Method::PATCH,
        &format!("{admin}/{id}"),
        &[ADMIN_AUTH],
        Some(json!({"name": "renamed", "budget_usd": 2.5})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], "renamed");
    assert_eq!(
        get(&format!("{admin}/cl_nope"), &[ADMIN_AUTH]).await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_limit_refuses_once_the_windows_tokens_are_used() {
    let (_mock, gw) = keyed_gateway(Some("keys")).await;
    let (_, key) = create_client(
        &gw,
        json!({"name": "tokens", "limits": {"tokens_per_day": 1}}),
    )
    .await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let auth = bearer(&key);
    assert_eq!(
        post(&url, &[("authorization", &auth)], &chat("gpt-4o-mini"))
            .await
            .status,
        200
    );
    // Tokens count when the record is written, just after the response.
    let mut last = None;
    for _ in 0..100 {
        let r = post(&url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await;
        if r.status == 429 {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = last.expect("never limited");
    assert_eq!(r.header("x-ratelimit-limit-tokens"), "1");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(r.text.contains("tokens per day"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_absent_without_a_token() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = gateway_for(&mock, &[("DATABASE_URL", "none")]);
    let r = get(&format!("{}/admin/clients", gw.url), &[ADMIN_AUTH]).await;
    assert_eq!(r.status, 404);
}

/// Runs the binary expecting it to refuse to start; returns its stderr.
fn refused(env: &[(&str, &str)], args: &[&str]) -> String {
    let dir = scratch_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekai-gateway"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .envs(env.iter().copied())
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "it started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_mode_is_refused_on_a_public_address_unless_allowed() {
    let err = refused(&[("HOST", "0.0.0.0"), ("DATABASE_URL", "none")], &[]);
    assert!(err.contains("refusing to start in open mode"), "{err}");
    assert!(err.contains("allow_open_on_public"), "{err}");
    let err = refused(
        &[
            ("HOST", "0.0.0.0"),
            ("DATABASE_URL", "none"),
            ("EKAI_AUTH_MODE", "open"),
        ],
        &[],
    );
    assert!(err.contains("refusing to start in open mode"), "{err}");
    // keys mode without a master key is refused too.
    let err = refused(&[("EKAI_AUTH_MODE", "keys")], &[]);
    assert!(err.contains("EKAI_MASTER_KEY"), "{err}");

    let cfg_dir = scratch_dir();
    let cfg = cfg_dir.join("g.toml");
    std::fs::write(&cfg, "[auth]\nallow_open_on_public = true\n").unwrap();
    let gw = Gateway::start_with_args(
        &[("HOST", "0.0.0.0"), ("DATABASE_URL", "none")],
        &["--config", cfg.to_str().unwrap()],
    );
    assert!(gw.log().contains("auth: open mode"), "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_budget_refuses_with_402_and_other_dialects_get_their_401() {
    let (mock, gw) = keyed_gateway(Some("keys")).await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let (_, capped) = create_client(&gw, json!({"name": "capped", "budget_usd": 0.000001})).await;
    let (_, free) = create_client(&gw, json!({"name": "free"})).await;
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&capped))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&capped))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 402, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "BUDGET_EXCEEDED", "{}", r.text);
    assert_eq!(mock.hits("openai"), 1);
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&free))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Gemini: 401 in Gemini's shape naming x-goog-api-key; `?key=` and x-goog-api-key work.
    let gem = format!("{}/v1beta/models/gemini-2.0-flash:generateContent", gw.url);
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).to_string();
    let r = post(&gem, &[], &body).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-goog-api-key")
    );
    let r = post(&format!("{gem}?key={free}"), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(&gem, &[("x-goog-api-key", &free)], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Responses: its own error shape.
    let r = post(
        &format!("{}/v1/responses", gw.url),
        &[],
        &json!({"model": "gpt-4o-mini", "input": "hi"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    assert!(!gw.log().contains(&free));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_own_upstream_key_is_used_and_stored_encrypted() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let db = format!("sqlite://{}/usage.db", db_dir.display());
    let gw = gateway_for(
        &mock,
        &[
            ("DATABASE_URL", db.as_str()),
            ("EKAI_MASTER_KEY", MASTER),
            ("EKAI_ADMIN_TOKEN", ADMIN),
            ("EKAI_AUTH_MODE", "keys"),
        ],
    );
    let own = "sk-client-a-own-upstream-key-42";
    let (id_a, key_a) = create_client(
        &gw,
        json!({"name": "a", "upstream_keys": {"openai": own, "anthropic": "sk-ant-client-a"}}),
    )
    .await;
    let (_, key_b) = create_client(&gw, json!({"name": "b"})).await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    assert_eq!(
        post(
            &chat_url,
            &[("authorization", &bearer(&key_a))],
            &chat("gpt-4o-mini")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        post(
            &chat_url,
            &[("authorization", &bearer(&key_b))],
            &chat("gpt-4o-mini")
        )
        .await
        .status,
        200
    );
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("x-api-key", &key_a), ("anthropic-version", "2023-06-01")],
        &messages("claude-3-5-haiku-20241022"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reqs = mock.requests();
    let auths: Vec<String> = reqs
        .iter()
        .filter(|r| r.route == "openai")
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        auths,
        [format!("Bearer {own}"), format!("Bearer {OPENAI_KEY}")]
    );
    let anth = reqs.iter().find(|r| r.route == "anthropic").unwrap();
    assert_eq!(anth.header("x-api-key"), Some("sk-ant-client-a"));
    // No gateway key ever reaches the provider.
    assert!(
        reqs.iter()
            .all(|r| r.headers.iter().all(|(_, v)| !v.contains(&key_a)))
    );

    // Never returned by the API: only provider names.
    let v = get(&format!("{}/admin/clients/{id_a}", gw.url), &[ADMIN_AUTH]).await;
    assert!(!v.text.contains(own), "{}", v.text);
    assert_eq!(v.json()["upstream_keys"], json!(["anthropic", "openai"]));
    // Stored sealed, not plain.
    let raw = std::fs::read(db_dir.join("usage.db")).unwrap();
    let wal = std::fs::read(db_dir.join("usage.db-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes.windows(own.len()).any(|w| w == own.as_bytes()),
            "plain upstream key in the database file"
        );
        assert!(!bytes.windows(key_a.len()).any(|w| w == key_a.as_bytes()));
    }
    assert!(!gw.log().contains(own));
}

/// Two gateway instances over one database and one Redis (127.0.0.1:6379): a client's limit is
/// one limit, whichever instance each request reaches. FAILS when Redis is unreachable, unless
/// EKAI_SKIP_REDIS=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_enforce_one_limit() {
    const REDIS: &str = "redis://127.0.0.1:6379/";
    if redis_skipped() {
        return;
    }
    assert!(
        std::net::TcpStream::connect("127.0.0.1:6379").is_ok(),
        "this test needs Redis on 127.0.0.1:6379 (or set EKAI_SKIP_REDIS=1)"
    );
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("EKAI_MASTER_KEY", MASTER),
        ("EKAI_ADMIN_TOKEN", ADMIN),
        ("EKAI_AUTH_MODE", "keys"),
        ("REDIS_URL", REDIS),
    ];
    let a = gateway_for(&mock, &env);
    assert!(a.log().contains("shared through Redis"), "{}", a.log());
    let (_, key) = create_client(
        &a,
        json!({"name": "shared", "limits": {"requests_per_hour": 12}}),
    )
    .await;
    // B starts after the client exists, so its cache has it at once.
    let b = gateway_for(&mock, &env);
    // Fixed hour windows: stay clear of the boundary during the burst.
    let into_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 3600;
    if into_hour >= 3590 {
        tokio::time::sleep(Duration::from_secs(3601 - into_hour)).await;
    }
    let auth = bearer(&key);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let url = format!(
            "{}/v1/chat/completions",
            if i % 2 == 0 { &a.url } else { &b.url }
        );
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            post(&url, &[("authorization", &auth)], &chat("gpt-4o-mini")).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            429 => assert_eq!(r.header("x-ratelimit-limit-requests"), "12"),
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(ok, 12, "exactly the limit passed across both instances");
    // A third request on either instance is refused too.
    for gw in [&a, &b] {
        let r = post(
            &format!("{}/v1/chat/completions", gw.url),
            &[("authorization", &auth)],
            &chat("gpt-4o-mini"),
        )
        .await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(!r.text.contains("redis://"), "{}", r.text);
    }
    assert!(!a.log().contains("redis://") && !b.log().contains("redis://"));
}

#[test]
fn a_wrong_redis_url_stops_the_start_with_a_clear_message() {
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekai-gateway"))
        .env_clear()
        .env("PORT", "0")
        .env("UI_PORT", "0")
        .env("DATABASE_URL", &url)
        .env("EKAI_MASTER_KEY", MASTER)
        .env("REDIS_URL", "redis://:hunter2-secret@127.0.0.1:1/")
        .current_dir(&db_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REDIS_URL"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the password must not be printed: {err}"
    );
}

/// Concurrent streams against a token limit: each request's estimated tokens (body bytes / 4) are
/// reserved at admission, so while they are all in flight only as many as fit pass; afterwards the
/// reservations are replaced by the real (much smaller) usage and requests pass again.
async fn token_reservations_hold_under_concurrent_streams(redis: bool) {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("EKAI_MASTER_KEY", MASTER),
        ("EKAI_ADMIN_TOKEN", ADMIN),
        ("EKAI_AUTH_MODE", "keys"),
    ];
    if redis {
        env.push(("REDIS_URL", "redis://127.0.0.1:6379/"));
    }
    let gw = gateway_for(&mock, &env);
    let body = json!({
        "model": "gpt-4o-mini@delay=600",
        "stream": true,
        "messages": [{"role": "user", "content": "x".repeat(4_000)}],
    })
    .to_string();
    let est = (body.len() / 4) as u64;
    let (_, key) = create_client(
        &gw,
        json!({"name": "tokens", "limits": {"tokens_per_day": 3 * est + est / 2}}),
    )
    .await;
    let auth = bearer(&key);
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (u, a, b) = (chat_url.clone(), auth.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = post(&u, &[("authorization", &a)], &b).await;
            (
                r.status,
                r.header("x-ratelimit-limit-tokens").to_string(),
                r.text,
            )
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, limit, text) = t.await.unwrap();
        match status {
            200 => {
                assert!(text.contains("data: [DONE]"), "{text}");
                ok += 1;
            }
            429 => {
                assert_eq!(limit, (3 * est + est / 2).to_string());
                assert!(text.contains("tokens per day"), "{text}");
            }
            s => panic!("unexpected {s}: {text}"),
        }
    }
    assert_eq!(
        ok, 3,
        "exactly the streams whose estimates fit were admitted"
    );
    // Finished: reservations given back, only the real usage (a few tokens each) counts.
    let mut passed = false;
    for _ in 0..50 {
        if post(&chat_url, &[("authorization", &auth)], &body)
            .await
            .status
            == 200
        {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(passed, "the reservations were not released:\n{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reservations_hold_under_concurrent_streams_in_process() {
    token_reservations_hold_under_concurrent_streams(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reservations_hold_under_concurrent_streams_in_redis() {
    if redis_skipped() {
        return;
    }
    token_reservations_hold_under_concurrent_streams(true).await;
}

fn cli(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekai-gateway"))
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("EKAI_MASTER_KEY", MASTER)
        .current_dir(std::env::temp_dir())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Waits for the running gateway's registry to pick up a change made by another process.
async fn status_becomes(url: &str, key: &str, want: u16) -> u16 {
    let mut last = 0;
    for _ in 0..60 {
        last = post(
            url,
            &[("authorization", &bearer(key))],
            &chat("gpt-4o-mini"),
        )
        .await
        .status;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_cli_creates_lists_rotates_and_revokes() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let db = format!("sqlite://{}/usage.db", db_dir.display());
    let (ok, out, err) = cli(
        &db,
        &[
            "keys",
            "create",
            "--name",
            "cli-user",
            "--models",
            "gpt-4o-mini,claude-*",
            "--rpm",
            "50",
            "--budget-month",
            "12.5",
        ],
    );
    assert!(ok, "{out}\n{err}");
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("ek-"))
        .unwrap()
        .to_string();
    let id = out
        .split_whitespace()
        .find(|w| w.starts_with("cl_"))
        .unwrap()
        .to_string();

    let gw = gateway_for(
        &mock,
        &[
            ("DATABASE_URL", db.as_str()),
            ("EKAI_MASTER_KEY", MASTER),
            ("EKAI_ADMIN_TOKEN", ADMIN),
            ("EKAI_AUTH_MODE", "keys"),
        ],
    );
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&key))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ratelimit-limit-requests"), "50");
    // The policy given on the command line is the one the API shows.
    let shown = get(&format!("{}/admin/clients/{id}", gw.url), &[ADMIN_AUTH])
        .await
        .json();
    assert_eq!(
        shown["model_preferences"],
        json!(["gpt-4o-mini", "claude-*"]),
        "{shown}"
    );
    assert_eq!(shown["budget_usd"].to_string(), "12.5", "{shown}");

    let (ok, out, _) = cli(&db, &["keys", "list"]);
    assert!(
        ok && out.contains(&id) && out.contains(&key[..8]) && out.contains("active"),
        "{out}"
    );
    assert!(!out.contains(&key), "list never prints keys: {out}");

    let (ok, out, err) = cli(&db, &["keys", "rotate", &id]);
    assert!(ok, "{out}\n{err}");
    let new_key = out
        .split_whitespace()
        .find(|w| w.starts_with("ek-"))
        .unwrap()
        .to_string();
    assert_ne!(new_key, key);
    assert_eq!(
        status_becomes(&chat_url, &key, 401).await,
        401,
        "the old key stops working"
    );
    assert_eq!(status_becomes(&chat_url, &new_key, 200).await, 200);

    let (ok, out, _) = cli(&db, &["keys", "revoke", &id]);
    assert!(ok && out.contains("revoked"), "{out}");
    assert_eq!(status_becomes(&chat_url, &new_key, 401).await, 401);
    let (ok, out, _) = cli(&db, &["keys", "list"]);
    assert!(ok && out.contains("revoked"), "{out}");

    let (ok, _, err) = cli(&db, &["keys", "revoke", "cl_doesnotexist"]);
    assert!(!ok && err.contains("no client with that id"), "{err}");
    let (ok, _, err) = cli(
        &db,
        &["keys", "create", "--name", "x", "--budget-month", "lots"],
    );
    assert!(!ok && err.contains("--budget-month"), "{err}");
}

/// Every way a request can fail authentication gets 401/403 in the path's dialect, names what is
/// wrong without echoing the key, and never reaches a provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_refuses_in_the_right_dialect_and_never_reaches_a_provider() {
    let (mock, gw) = keyed_gateway(Some("keys")).await;
    let (revoked_id, revoked) = create_client(&gw, json!({"name": "gone"})).await;
    let r = send_json(
        reqwest::Method::DELETE,
        &format!("{}/admin/clients/{revoked_id}", gw.url),
        &[ADMIN_AUTH],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, expired) = create_client(
        &gw,
        json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await;
    let (_, good) = create_client(&gw, json!({"name": "good"})).await;
    mock.reset();

    let long = format!("ek-{}", "a".repeat(16 * 1024));
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let msg_url = format!("{}/v1/messages", gw.url);
    type Case<'a> = (&'a str, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        ("missing", vec![]),
        (
            "wrong",
            vec![(
                "authorization",
                bearer("ek-wrongwrongwrongwrongwrongwrongwrongwron"),
            )],
        ),
        ("revoked", vec![("authorization", bearer(&revoked))]),
        ("expired", vec![("authorization", bearer(&expired))]),
        ("not bearer", vec![("authorization", good.clone())]),
        ("wrong header", vec![("x-goog-api-keyy", good.clone())]),
        ("very long", vec![("authorization", bearer(&long))]),
        (
            "admin token as a key",
            vec![("authorization", bearer(ADMIN))],
        ),
    ];
    for (what, headers) in &cases {
        for (url, dialect) in [(&chat_url, "openai"), (&msg_url, "anthropic")] {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body = if dialect == "openai" {
                chat("gpt-4o-mini")
            } else {
                messages("claude-sonnet-4-5")
            };
            let r = post(url, &h, &body).await;
            assert_eq!(r.status, 401, "{what} on {dialect}: {}", r.text);
            let v = r.json();
            if dialect == "openai" {
                assert_eq!(v["error"]["type"], "authentication_error", "{what}: {v}");
            } else {
                assert_eq!(v["type"], "error", "{what}: {v}");
                assert_eq!(v["error"]["type"], "authentication_error", "{what}: {v}");
            }
            for (_, secret) in headers {
                assert!(
                    secret.len() < 8 || !r.text.contains(secret.as_str()),
                    "{what} echoed the key"
                );
            }
        }
    }
    // Non-ASCII header bytes: reqwest refuses to send them, so speak HTTP/1.1 by hand.
    let addr = gw.url.trim_start_matches("http://").to_string();
    let body = chat("gpt-4o-mini");
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nauthorization: Bearer ",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice("ek-ünïcødé-ключ".as_bytes());
    raw.extend_from_slice(b"\r\n\r\n");
    raw.extend_from_slice(body.as_bytes());
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&raw).unwrap();
        let mut out = String::new();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        out.push_str(&String::from_utf8_lossy(&buf));
        out
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(reply.contains("authentication_error"), "{reply}");

    // A client key is not an admin token, and a wrong admin token is refused.
    for auth in [bearer(&good), bearer("not-the-admin-token")] {
        let r = get(
            &format!("{}/admin/clients", gw.url),
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(!r.text.contains(&good), "{}", r.text);
    }
    assert_eq!(
        mock.requests().len(),
        0,
        "no refused request reached the provider"
    );
    // The good key still works.
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&good))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!gw.log().contains(&good), "keys never appear in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_allows_only_configured_origins() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let preflight = |url: String, origin: &'static str| async move {
        client()
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap()
    };
    let off = gateway_for(&mock, &[]);
    let r = preflight(
        format!("{}/v1/chat/completions", off.url),
        "https://app.example.com",
    )
    .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let on = gateway_for(&mock, &[("EKAI_CORS_ORIGINS", "https://app.example.com")]);
    let url = format!("{}/v1/chat/completions", on.url);
    let r = preflight(url.clone(), "https://app.example.com").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = preflight(url.clone(), "https://evil.example.net").await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = post(
        &url,
        &[("origin", "https://app.example.com")],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert!(
        r.header("access-control-expose-headers")
            .contains("x-request-id")
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_prefix_serves_clients_usage_and_provider_health() {
    let (_mock, gw) = keyed_gateway(Some("keys")).await;
    let r = send_json(
        reqwest::Method::POST,
        &format!("{}/admin/api/clients", gw.url),
        &[ADMIN_AUTH],
        Some(json!({"name": "api-prefix"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let v = r.json();
    let (id, key) = (v["id"].as_str().unwrap(), v["key"].as_str().unwrap());
    let (_, other) = create_client(&gw, json!({"name": "someone-else"})).await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    for k in [key, other.as_str(), key] {
        let r = post(
            &chat_url,
            &[("authorization", &bearer(k))],
            &chat("gpt-4o-mini"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let usage_url = format!("{}/admin/api/clients/{id}/usage", gw.url);
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = get(&usage_url, &[ADMIN_AUTH]).await.json();
        if seen["totalRequests"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        seen["totalRequests"], 2,
        "only this client's requests: {seen}"
    );
    assert_eq!(get(&usage_url, &[]).await.status, 401);
    assert_eq!(
        get(
            &format!("{}/admin/api/clients/cl_nope/usage", gw.url),
            &[ADMIN_AUTH]
        )
        .await
        .status,
        404
    );
    let p = get(&format!("{}/admin/api/providers", gw.url), &[ADMIN_AUTH]).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("\"openai\""), "{}", p.text);
    assert!(
        gw.log().contains("admin: client created"),
        "admin calls are audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_pins_and_system_prompt_prefix_apply_to_the_clients_requests() {
    let (mock, gw) = keyed_gateway(Some("keys")).await;
    let (_, pinned) = create_client(
        &gw,
        json!({"name": "claude-only", "providers": ["anthropic"]}),
    )
    .await;
    let (_, prefixed) = create_client(
        &gw,
        json!({"name": "house-style", "system_prompt_prefix": "Answer as the ACME helpdesk."}),
    )
    .await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let msg_url = format!("{}/v1/messages", gw.url);

    // Pinned to Anthropic: an OpenAI-only model is refused, a Claude model goes to Anthropic.
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&pinned))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("anthropic"), "{}", r.text);
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&pinned))],
        &chat("claude-sonnet-4-5"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-provider"), "anthropic");

    // The prefix comes first, before the client's own system prompt, in either API.
    mock.reset();
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"}]});
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&prefixed))],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &mock.requests()[0].body;
    let msgs = sent["messages"].as_array().unwrap();
    let system: Vec<String> = msgs
        .iter()
        .filter(|m| m["role"] == "system" || m["role"] == "developer")
        .map(|m| m["content"].to_string())
        .collect();
    let joined = system.join(" ");
    let (a, b) = (
        joined.find("ACME helpdesk").unwrap(),
        joined.find("Be brief.").unwrap(),
    );
    assert!(a < b, "prefix first: {sent}");

    mock.reset();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&msg_url, &[("x-api-key", &prefixed)], &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = mock.requests()[0].body["system"].to_string();
    let (a, b) = (
        sent.find("ACME helpdesk").unwrap(),
        sent.find("Be brief.").unwrap(),
    );
    assert!(a < b, "prefix first: {sent}");

    // Other clients are untouched.
    mock.reset();
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&pinned))],
        &chat("claude-sonnet-4-5"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!mock.requests()[0].body.to_string().contains("ACME"));
}

/// A daily cap (UTC day) refuses once today's spend reaches it, and concurrent requests cannot
/// all slip under it: the expected cost is reserved at admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_budget_holds_under_concurrent_streams() {
    // Every answer takes 300 ms, so the burst is in flight at once.
    let cfg = MockConfig {
        default_scenario: Some("delay=300".into()),
        ..MockConfig::default()
    };
    let (mock, gw) = keyed_gateway_with(cfg, Some("keys")).await;
    // gpt-4o-mini answers cost $0.0000048 each here; the cap lets about two through.
    let (id, key) = create_client(
        &gw,
        json!({"name": "daily", "budget_usd_day": 0.000009, "budget_usd": 5}),
    )
    .await;
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (u, a) = (chat_url.clone(), bearer(&key));
        tasks.push(tokio::spawn(async move {
            // Streams: the cost is known only when each one ends.
            let body = json!({"model": "gpt-4o-mini", "stream": true,
                "messages": [{"role": "user", "content": "hi there"}]});
            post(&u, &[("authorization", &a)], &body.to_string()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => {
                assert!(r.text.contains("data: [DONE]"), "{}", r.text);
                ok += 1;
            }
            402 => {
                assert_eq!(r.json()["error"]["code"], "BUDGET_EXCEEDED", "{}", r.text);
                assert!(r.text.contains("daily budget"), "{}", r.text);
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    eprintln!("daily cap burst: {ok} of 10 admitted");
    assert!(
        (1..10).contains(&ok),
        "the reservations held the burst back: {ok} passed"
    );
    assert_eq!(
        mock.hits("openai"),
        ok,
        "refused requests never reached the provider"
    );
    // Then one by one until refused: never more than the cap plus one request's cost
    // ($0.0000048 each, cap $0.000009, so at most two in all).
    let mut total = ok;
    for _ in 0..5 {
        let r = post(
            &chat_url,
            &[("authorization", &bearer(&key))],
            &chat("gpt-4o-mini"),
        )
        .await;
        if r.status == 402 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        total += 1;
    }
    assert!(total <= 2, "spent past the daily cap: {total} requests");
    let r = post(
        &chat_url,
        &[("authorization", &bearer(&key))],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 402, "{}", r.text);
    let shown = get(&format!("{}/admin/api/clients/{id}", gw.url), &[ADMIN_AUTH])
        .await
        .json();
    assert_eq!(shown["budget_usd_day"].as_f64(), Some(0.000009), "{shown}");
    assert!(shown["spent_today_usd"].as_f64().unwrap() > 0.0, "{shown}");
}

/// Two instances over one database and one Redis: a client's budget reservations are seen by both,
/// so a burst split across them admits what one instance alone would. FAILS when Redis is
/// unreachable, unless EKAI_SKIP_REDIS=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_share_budget_reservations() {
    if redis_skipped() {
        return;
    }
    let mock = slow_mock().await;
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("EKAI_MASTER_KEY", MASTER),
        ("EKAI_ADMIN_TOKEN", ADMIN),
        ("EKAI_AUTH_MODE", "keys"),
        ("REDIS_URL", "redis://127.0.0.1:6379/"),
    ];
    let a = gateway_for(&mock, &env);
    // A cap one request's expected cost fills: one instance alone admits one at a time.
    let (_, key) =
        create_client(&a, json!({"name": "shared-budget", "budget_usd": 0.000009})).await;
    let b = gateway_for(&mock, &env);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let u = format!(
            "{}/v1/chat/completions",
            if i % 2 == 0 { &a.url } else { &b.url }
        );
        let k = bearer(&key);
        tasks.push(tokio::spawn(async move {
            post(&u, &[("authorization", &k)], &chat("gpt-4o-mini")).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            402 => assert_eq!(r.json()["error"]["code"], "BUDGET_EXCEEDED", "{}", r.text),
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(ok, 1, "both instances saw the one reservation");
    assert_eq!(mock.hits("openai"), 1);
}

/// `GET /admin/api/receipts`: the Sapphire receipt outbox as an operator needs it — counts, and
/// the receipts given up with why; admin only, and guessing the token there counts as a sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_lists_given_up_receipts() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let gw = gateway_for(
        &mock,
        &[("DATABASE_URL", url.as_str()), ("EKAI_ADMIN_TOKEN", ADMIN)],
    );
    // The gateway has migrated the database: put one mined, one pending and one given-up receipt
    // in its outbox, as the sender leaves them.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for (i, (mined, given_up, reverts, error)) in [
        (Some(1_000_i64), None, 0, None),
        (None, None, 1, Some("logReceipt reverted")),
        (
            None,
            Some(1_795_000_000_000_i64),
            3,
            Some("logReceipt reverted"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO receipt_outbox (request_id, request_hash, owner, delegate, provider_id, model_id, \
             prompt_tokens, completion_tokens, timestamp_ms, attempts, next_attempt_at, last_error, \
             mined_at, reverts, given_up_at) VALUES (?, ?, '0x11', '0x22', '0x33', '0x44', 5, 7, 0, ?, 0, ?, ?, ?, ?)",
        )
        .bind(format!("req_{i}"))
        .bind(format!("0x{i:064x}"))
        .bind(reverts)
        .bind(error)
        .bind(mined)
        .bind(reverts)
        .bind(given_up)
        .execute(&pool)
        .await
        .unwrap();
    }
    let receipts = format!("{}/admin/api/receipts", gw.url);
    let r = get(&receipts, &[ADMIN_AUTH]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        (&v["pending"], &v["mined"], &v["given_up"]),
        (&json!(1), &json!(1), &json!(1)),
        "{v}"
    );
    let gone = &v["given_up_receipts"];
    assert_eq!(gone.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(gone[0]["request_id"], "req_2");
    assert_eq!(gone[0]["reverts"], 3);
    assert_eq!(gone[0]["last_error"], "logReceipt reverted");
    assert!(
        gone[0]["given_up_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-"),
        "{v}"
    );

    // Put back in the queue (one by its hash; a hash that is not given up re-queues nothing).
    let retry = format!("{receipts}/retry");
    let hash = gone[0]["request_hash"].as_str().unwrap().to_string();
    let r = post(
        &retry,
        &[ADMIN_AUTH],
        &json!({"request_hash": "0x01"}).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["requeued"].clone()),
        (200, json!(0)),
        "{}",
        r.text
    );
    let r = post(
        &retry,
        &[ADMIN_AUTH],
        &json!({"request_hash": 7}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = post(
        &retry,
        &[ADMIN_AUTH],
        &json!({"request_hash": hash}).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["requeued"].clone()),
        (200, json!(1)),
        "{}",
        r.text
    );
    let v = get(&receipts, &[ADMIN_AUTH]).await.json();
    assert_eq!(
        (&v["pending"], &v["given_up"]),
        (&json!(2), &json!(0)),
        "{v}"
    );
    let (reverts, due): (i64, i64) = sqlx::query_as(
        "SELECT reverts, next_attempt_at FROM receipt_outbox WHERE request_id = 'req_2'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((reverts, due), (0, 0), "due at the sender's next round");
    assert_eq!(post(&retry, &[], "{}").await.status, 401);

    assert_eq!(get(&receipts, &[]).await.status, 401);
    // Wrong tokens here are sign-in attempts: the 21st in the minute is refused outright.
    early_in_a_minute().await;
    let mut statuses = Vec::new();
    for _ in 0..21 {
        statuses.push(
            get(&receipts, &[("authorization", "Bearer guess")])
                .await
                .status,
        );
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[20], 429, "{statuses:?}");
    drop(mock);
}
