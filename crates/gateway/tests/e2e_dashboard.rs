//! End-to-end dashboard: the stats API's aggregates against the requests made, the live SSE feed,
//! the embedded page on `/dashboard` and on `UI_PORT`, and the admin-token guard.
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

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi there"}]}).to_string()
}

fn ledger_gateway(mock: &MockHandle, extra: &[(&str, &str)]) -> Gateway {
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let mut env = vec![("DATABASE_URL", url.as_str())];
    env.extend_from_slice(extra);
    gateway_for(mock, &env)
}

async fn overview_until(gw: &Gateway, query: &str, requests: i64) -> Value {
    for _ in 0..100 {
        let r = get(&format!("{}/admin/stats/overview{query}", gw.url), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        if v["totals"]["requests"].as_i64() == Some(requests) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("overview never reached {requests} requests:\n{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_endpoints_report_exact_aggregates() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = ledger_gateway(&mock, &[]);
    let chat_url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..2 {
        assert_eq!(post(&chat_url, &[], &chat("gpt-4o-mini")).await.status, 200);
    }
    assert_eq!(
        post(&chat_url, &[], &chat("gpt-4o@status=500"))
            .await
            .status,
        500
    );

    for range in ["?range=1h", "", "?range=7d", "?range=30d"] {
        let v = overview_until(&gw, range, 3).await;
        let t = &v["totals"];
        assert_eq!(t["errors"], 1, "{v}");
        assert_eq!(t["unpriced"], 1, "{v}");
        // gpt-4o-mini: 12 input + 5 output tokens, $0.0000048 a request; the failure is unpriced.
        assert_eq!(t["inputTokens"], 24, "{v}");
        assert_eq!(t["outputTokens"], 10, "{v}");
        assert_eq!(t["totalTokens"], 34, "{v}");
        assert_eq!(t["cost"].as_f64(), Some(0.0000096), "{v}");
        let series = v["series"].as_array().unwrap();
        let sum = |k: &str| series.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
        assert_eq!(
            (sum("requests"), sum("errors"), sum("tokens")),
            (3, 1, 34),
            "{v}"
        );
        let by_provider = v["costByProvider"].as_array().unwrap();
        assert_eq!(by_provider.len(), 1, "{v}");
        assert_eq!(by_provider[0]["name"], "openai");
        assert_eq!(by_provider[0]["requests"], 3);
        assert_eq!(by_provider[0]["cost"].as_f64(), Some(0.0000096));
        let mini = v["costByModel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "gpt-4o-mini")
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(
            (mini["requests"].as_i64(), mini["cost"].as_f64()),
            (Some(2), Some(0.0000096))
        );
        assert!(
            (v["errorRate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
            "{v}"
        );
        assert_eq!(v["latency"]["sample"], 3, "{v}");
        assert!(v["latency"]["p95Ms"].as_i64() >= v["latency"]["p50Ms"].as_i64());
        assert!(v["burnRatePerDay"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["projectedMonth"].as_f64().unwrap() >= v["monthToDate"].as_f64().unwrap());
    }
    let v = overview_until(&gw, "?range=24h", 3).await;
    assert_eq!(v["bucket"], "hour");
    assert!(
        (24..=25).contains(&v["series"].as_array().unwrap().len()),
        "{v}"
    );

    let reqs = |q: &'static str| {
        let url = format!("{}/admin/stats/requests{q}", gw.url);
        async move {
            let r = get(&url, &[]).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            r
        }
    };
    let count = |r: &Reply| r.json()["records"].as_array().unwrap().len();
    assert_eq!(count(&reqs("").await), 3);
    assert_eq!(count(&reqs("?status=error").await), 1);
    assert_eq!(count(&reqs("?status=ok").await), 2);
    assert_eq!(count(&reqs("?status=500").await), 1);
    assert_eq!(count(&reqs("?model=gpt-4o-mini&limit=1").await), 1);
    assert_eq!(count(&reqs("?model=gpt-4o-mini&offset=1").await), 1);
    assert_eq!(count(&reqs("?provider=anthropic").await), 0);
    let csv = reqs("?format=csv").await;
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert_eq!(csv.text.lines().count(), 4, "{}", csv.text);

    let p = get(&format!("{}/admin/stats/providers", gw.url), &[])
        .await
        .json();
    let openai = p["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap_or_else(|| panic!("{p}"));
    assert!(openai["circuit"].is_string(), "{openai}");
    assert!(
        openai["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "gpt-4o-mini"),
        "{openai}"
    );
    let m = get(&format!("{}/admin/stats/models", gw.url), &[])
        .await
        .json();
    let mini = m["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "gpt-4o-mini" && e["provider"] == "openai")
        .unwrap_or_else(|| panic!("{m}"));
    assert_eq!(mini["price"]["input"], "0.15", "{mini}");
    assert_eq!(mini["configured"], true);

    for (q, param) in [
        ("range=2w", "range"),
        ("range=custom", "startTime"),
        ("range=custom&startTime=yesterday", "startTime"),
        ("range=24h&startTime=2025-01-01T00:00:00Z", "startTime"),
        ("bogus=1", "bogus"),
    ] {
        let r = get(&format!("{}/admin/stats/overview?{q}", gw.url), &[]).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert_eq!(r.json()["error"]["param"], param, "{q}: {}", r.text);
    }
    for (q, param) in [
        ("status=maybe", "status"),
        ("limit=-3", "limit"),
        ("format=xml", "format"),
    ] {
        let r = get(&format!("{}/admin/stats/requests?{q}", gw.url), &[]).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert_eq!(r.json()["error"]["param"], param, "{q}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_delivers_a_record_for_a_request_made_after_subscribing() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = ledger_gateway(&mock, &[]);
    let mut resp = client()
        .get(format!("{}/admin/stream", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // The greeting proves the subscription exists before the request is made.
    let mut seen = String::new();
    while !seen.contains("event: hello") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .expect("hello within 5s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200);
    let request_id = r.header("x-request-id").to_string();
    assert!(!request_id.is_empty());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(i) = seen.find("event: usage") {
            let data = seen[i..]
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .unwrap();
            let rec: Value = serde_json::from_str(data).unwrap();
            assert_eq!(rec["request_id"], request_id.as_str(), "{rec}");
            assert_eq!(rec["model"], "gpt-4o-mini");
            assert_eq!(rec["total_tokens"], 17);
            assert_eq!(rec["total_cost"].as_f64(), Some(0.0000048));
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("a usage event within a second of the request finishing")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn assert_same_origin_page(html: &str) {
    assert!(html.contains("<div id=\"app\">"), "{html}");
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = &part[..part.find('"').unwrap()];
            assert!(
                (url.starts_with('/') && !url.starts_with("//")) || url.starts_with('#'),
                "{attr}{url}\" is not a same-origin path"
            );
        }
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_under_dashboard_and_on_the_ui_port() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = gateway_for(&mock, &[("DATABASE_URL", "none")]);
    let log = gw.wait_log("dashboard on http://").await;
    let ui = log
        .lines()
        .find_map(|l| l.split("dashboard on ").nth(1))
        .and_then(|rest| rest.split('/').take(3).collect::<Vec<_>>().join("/").into())
        .map(|s: String| s.trim_end_matches('/').to_string())
        .unwrap();
    assert!(ui.starts_with("http://127.0.0.1:"), "{ui}");
    for url in [
        format!("{}/dashboard", gw.url),
        format!("{}/dashboard/", gw.url),
        format!("{ui}/"),
        format!("{ui}/dashboard"),
    ] {
        let r = get(&url, &[]).await;
        assert_eq!(r.status, 200, "{url}");
        assert!(r.header("content-type").starts_with("text/html"), "{url}");
        assert_same_origin_page(&r.text);
    }
    for (path, ty) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
    ] {
        for base in [&gw.url, &ui] {
            let r = get(&format!("{base}{path}"), &[]).await;
            assert_eq!(r.status, 200, "{base}{path}");
            assert!(r.header("content-type").starts_with(ty), "{path}");
        }
    }
    // The UI port serves the dashboard's API too (the page calls it same-origin) but no proxy.
    let r = get(&format!("{ui}/admin/stats/providers"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(
        &format!("{ui}/v1/chat/completions"),
        &[],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 404);
    // Ledger disabled: the overview says so rather than failing.
    let r = get(&format!("{}/admin/stats/overview", gw.url), &[]).await;
    assert_eq!(r.status, 503, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_guards_the_stats_api_and_stream() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = ledger_gateway(&mock, &[("EKAI_ADMIN_TOKEN", "s3cret-admin")]);
    let url = format!("{}/admin/stats/providers", gw.url);
    assert_eq!(get(&url, &[]).await.status, 401);
    assert_eq!(
        get(&url, &[("authorization", "Bearer wrong")]).await.status,
        401
    );
    assert_eq!(
        get(&url, &[("authorization", "Bearer s3cret-admin")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&format!("{}/admin/stream", gw.url), &[]).await.status,
        401
    );
    // A token in the URL is not accepted (it would end up in logs and history).
    assert_eq!(
        get(
            &format!("{}/admin/stream?access_token=s3cret-admin", gw.url),
            &[]
        )
        .await
        .status,
        401
    );
    drop(mock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_admin_token_is_cut_off_after_the_minutes_attempts() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let dir = scratch_dir();
    let config = dir.join("ekai.toml");
    std::fs::write(&config, "[auth]\nlogin_attempts_per_minute = 3\n").unwrap();
    let config = config.display().to_string();
    let gw = ledger_gateway(
        &mock,
        &[
            ("EKAI_ADMIN_TOKEN", "s3cret-admin"),
            ("EKAI_CONFIG", &config),
        ],
    );
    early_in_a_minute().await;
    let login = format!("{}/admin/login", gw.url);
    let json_ct = [("content-type", "application/json")];
    for guess in ["nope", "s3cret", "admin"] {
        let wrong = post(&login, &json_ct, &json!({ "token": guess }).to_string()).await;
        assert_eq!(wrong.status, 401, "{}", wrong.text);
    }
    // Past the limit even the right token waits: the guesser cannot tell it was right.
    let held = post(&login, &json_ct, r#"{"token":"s3cret-admin"}"#).await;
    assert_eq!(held.status, 429, "{}", held.text);
    let retry: u64 = held.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        held.json()["error"]["code"],
        "rate_limit_exceeded",
        "{}",
        held.text
    );
    assert!(held.headers.get("set-cookie").is_none());
    // Guessing as a bearer token on the admin API is the same attempt, held the same way.
    let bearer = get(
        &format!("{}/admin/stats/providers", gw.url),
        &[("authorization", "Bearer guess")],
    )
    .await;
    assert_eq!(bearer.status, 429, "{}", bearer.text);
    // A client that already holds the token is not a sign-in attempt and is not held.
    let ok = get(
        &format!("{}/admin/stats/providers", gw.url),
        &[("authorization", "Bearer s3cret-admin")],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // The API itself is untouched.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    drop(mock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_gives_a_random_http_only_strict_session_cookie() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let gw = ledger_gateway(&mock, &[("EKAI_ADMIN_TOKEN", "s3cret-admin")]);
    let login = format!("{}/admin/login", gw.url);
    let json_ct = [("content-type", "application/json")];

    let session = get(&format!("{}/admin/session", gw.url), &[]).await.json();
    assert_eq!(session["auth_required"], true, "{session}");
    assert_eq!(session["signed_in"], false, "{session}");

    let wrong = post(&login, &json_ct, r#"{"token":"nope"}"#).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert!(wrong.headers.get("set-cookie").is_none());
    assert!(!wrong.text.contains("s3cret"), "{}", wrong.text);
    assert_eq!(post(&login, &json_ct, "token=x").await.status, 400);

    let mut cookies = Vec::new();
    for _ in 0..2 {
        let ok = post(&login, &json_ct, r#"{"token":"s3cret-admin"}"#).await;
        assert_eq!(ok.status, 204, "{}", ok.text);
        let set = ok.headers["set-cookie"].to_str().unwrap().to_string();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
        let pair = set.split(';').next().unwrap().to_string();
        let value = pair.strip_prefix("ekai_session=").unwrap();
        assert_eq!(value.len(), 64, "{set}");
        assert!(!set.contains("s3cret"), "{set}");
        cookies.push(pair);
    }
    assert_ne!(
        cookies[0], cookies[1],
        "each sign-in gets its own random id"
    );

    let cookie = [("cookie", cookies[0].as_str())];
    let stats = format!("{}/admin/stats/providers", gw.url);
    assert_eq!(get(&stats, &cookie).await.status, 200);
    let session = get(&format!("{}/admin/session", gw.url), &cookie)
        .await
        .json();
    assert_eq!(session["signed_in"], true, "{session}");
    // The live feed takes the cookie (EventSource cannot send headers).
    let resp = client()
        .get(format!("{}/admin/stream", gw.url))
        .header("cookie", cookies[0].as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    // A forged id is refused; signing out ends that session only.
    let forged = format!("ekai_session={}", "0".repeat(64));
    assert_eq!(
        get(&stats, &[("cookie", forged.as_str())]).await.status,
        401
    );
    let out = post(&format!("{}/admin/logout", gw.url), &cookie, "").await;
    assert_eq!(out.status, 204);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(get(&stats, &cookie).await.status, 401);
    assert_eq!(
        get(&stats, &[("cookie", cookies[1].as_str())]).await.status,
        200
    );
    // The page itself holds no data and loads without the token.
    assert_eq!(get(&format!("{}/dashboard", gw.url), &[]).await.status, 200);
}
