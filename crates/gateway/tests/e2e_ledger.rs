//! End-to-end ledger: the real binary writing to SQLite, read back through `/usage`, `/budget` and
//! the database itself; SIGTERM during a stream drains the ledger and exits 0.
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

fn chat(model: &str, stream: bool) -> String {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi there"}]})
        .to_string()
}

async fn usage_until(gw: &Gateway, query: &str, requests: u64) -> Value {
    for _ in 0..100 {
        let r = get(&format!("{}/usage{query}", gw.url), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        if v["totalRequests"].as_u64() == Some(requests) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("/usage never reached {requests} requests:\n{}", gw.log());
}

async fn put_budget(gw: &Gateway, body: Value) -> Reply {
    let rb = client()
        .put(format!("{}/budget", gw.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Reply {
        status,
        headers,
        text: resp.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_land_in_the_ledger_and_usage_and_budget_report_them() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let gw = gateway_for(&mock, &[("DATABASE_URL", &url)]);
    assert!(gw.log().contains("usage ledger: sqlite://"), "{}", gw.log());

    let chat_url = format!("{}/v1/chat/completions", gw.url);
    assert_eq!(
        post(&chat_url, &[], &chat("gpt-4o-mini", false))
            .await
            .status,
        200
    );
    assert_eq!(
        post(&chat_url, &[], &chat("gpt-4o-mini", true))
            .await
            .status,
        200
    );
    assert_eq!(
        post(&chat_url, &[], &chat("gpt-4o@status=500", false))
            .await
            .status,
        500
    );

    let v = usage_until(&gw, "", 3).await;
    assert!(v["totalTokens"].as_u64().unwrap() > 0, "{v}");
    assert!(v["costByProvider"].get("openai").is_some(), "{v}");
    assert!(v["costByModel"].get("gpt-4o-mini").is_some(), "{v}");
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(v["errorRequests"], 1);
    assert!(
        records
            .iter()
            .any(|r| r["streamed"] == true && r["input_tokens"].as_u64() > Some(0))
    );
    assert!(
        records
            .iter()
            .any(|r| r["status"] == 500 && r["error_kind"].is_string())
    );
    // gpt-4o-mini is priced by the catalog ($0.15 in / $0.60 out per 1M): 12 input and 5 output
    // tokens cost $0.0000048 a request. The failed attempt is counted unpriced, never as $0.
    assert_eq!(v["unpricedRequests"], 1, "{v}");
    let priced: Vec<&Value> = records.iter().filter(|r| r["priced"] == true).collect();
    assert_eq!(priced.len(), 2, "{v}");
    for r in &priced {
        assert_eq!(r["total_cost"].as_f64(), Some(0.0000048), "{r}");
    }
    assert!(
        records
            .iter()
            .any(|r| r["priced"] == false && r["total_cost"].is_null())
    );
    assert_eq!(v["totalCost"].as_f64(), Some(0.0000096), "{v}");

    let v = usage_until(&gw, "?groupBy=model&provider=openai&limit=1", 3).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    assert_eq!(v["groups"].as_array().unwrap().len(), 2, "{v}");
    let v = usage_until(&gw, "?groupBy=day", 3).await;
    assert!(
        v["groups"][0]["key"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z"),
        "{v}"
    );

    let csv = get(&format!("{}/usage?format=csv", gw.url), &[]).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-disposition").starts_with("attachment"));
    assert_eq!(csv.text.lines().count(), 4, "{}", csv.text);

    for (q, param) in [
        ("startTime=bogus", "startTime"),
        ("endTime=2025-13-01T00:00:00Z", "endTime"),
        ("groupBy=week", "groupBy"),
        ("limit=-1", "limit"),
        ("format=xml", "format"),
        (
            "startTime=2030-01-01T00:00:00Z&endTime=2029-01-01T00:00:00Z",
            "startTime",
        ),
    ] {
        let r = get(&format!("{}/usage?{q}", gw.url), &[]).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        let e = r.json();
        assert_eq!(e["error"]["param"], param, "{q}: {}", r.text);
        assert!(e["error"]["message"].as_str().unwrap().contains(param));
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }

    let b = get(&format!("{}/budget", gw.url), &[]).await.json();
    assert_eq!(
        b,
        json!({"amountUsd": null, "alertOnly": false, "window": "monthly", "spentMonthToDate": 0.0000096, "remaining": null})
    );
    let r = put_budget(&gw, json!({"amountUsd": 12.5, "alertOnly": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["amountUsd"], 12.5);
    assert_eq!(r.json()["remaining"].as_f64(), Some(12.4999904));
    let b = get(&format!("{}/budget", gw.url), &[]).await.json();
    assert_eq!(b["alertOnly"], true);
    assert_eq!(b["window"], "monthly");
    let r = put_budget(&gw, json!({"amountUsd": -1})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "amountUsd");
    drop(gw);
    let _ = std::fs::remove_dir_all(&db_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_finishes_it_writes_the_row_and_exits_zero() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let mut gw = gateway_for(&mock, &[("DATABASE_URL", &url)]);
    let body = json!({"model": "claude-sonnet-4-5@chunk-delay=100,long=20", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi there"}]})
    .to_string();
    let target = format!("{}/v1/messages", gw.url);
    let stream =
        tokio::spawn(
            async move { post(&target, &[("anthropic-version", "2023-06-01")], &body).await },
        );
    // Let the stream start before the signal.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let st = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let reply = stream.await.unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        reply.sse_events().iter().any(|e| e == "message_stop"),
        "{}",
        reply.text
    );
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .expect("gateway did not exit");
    assert!(status.success(), "exit {status:?}\n{}", gw.log());
    let log = gw.log();
    assert!(log.contains("usage ledger drained"), "{log}");

    let store = ekai_gateway::ledger::Store::open(&url).await.unwrap();
    assert_eq!(store.count_records().await.unwrap(), 1);
    let f = ekai_gateway::ledger::query::Filter {
        start_ms: 0,
        end_ms: i64::MAX / 2,
        ..Default::default()
    };
    let rows = store.records(&f, 10, 0).await.unwrap();
    assert!(
        rows[0].streamed && !rows[0].client_disconnected,
        "{:?}",
        rows[0]
    );
    assert!(rows[0].output_tokens > 0);
    drop(gw);
    let _ = std::fs::remove_dir_all(&db_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_monthly_budget_refuses_requests_with_402_in_each_dialect() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let gw = gateway_for(&mock, &[("DATABASE_URL", &url)]);
    // A cap smaller than one gpt-4o-mini request ($0.0000048 here).
    let r = put_budget(&gw, json!({"amountUsd": 0.000001, "alertOnly": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let chat =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]})
            .to_string();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &chat).await;
    assert_eq!(r.status, 200, "admitted: nothing spent yet");
    usage_until(&gw, "", 1).await;
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &chat).await;
    assert_eq!(r.status, 402, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUT /budget")
    );
    let msgs = json!({"model": "gpt-4o-mini", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "hi there"}]})
    .to_string();
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        &msgs,
    )
    .await;
    assert_eq!(r.status, 402, "{}", r.text);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(
        mock.hits("openai"),
        1,
        "refused requests never reach upstream"
    );
    // Alert-only lets requests through again.
    let r = put_budget(&gw, json!({"amountUsd": 0.000001, "alertOnly": true})).await;
    assert_eq!(r.status, 200);
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &chat).await;
    assert_eq!(r.status, 200, "{}", r.text);
    drop(gw);
    let _ = std::fs::remove_dir_all(&db_dir);
}

/// Two instances over one database and one Redis: the gateway's monthly cap counts the requests
/// running on both, so a burst split across them admits what one instance alone would. FAILS when
/// Redis is unreachable, unless EKAI_SKIP_REDIS=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_hold_one_gateway_budget() {
    if redis_skipped() {
        return;
    }
    let mock = slow_mock().await;
    let db_dir = scratch_dir();
    let url = format!("sqlite://{}/usage.db", db_dir.display());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", "redis://127.0.0.1:6379/"),
    ];
    let a = gateway_for(&mock, &env);
    // A cap one request's expected cost fills: one instance alone admits one at a time.
    let r = put_budget(&a, json!({"amountUsd": 0.000009, "alertOnly": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = gateway_for(&mock, &env);
    let chat =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]})
            .to_string();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let u = format!(
            "{}/v1/chat/completions",
            if i % 2 == 0 { &a.url } else { &b.url }
        );
        let body = chat.clone();
        tasks.push(tokio::spawn(async move { post(&u, &[], &body).await }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            402 => {
                let v = r.json();
                assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED", "{}", r.text);
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(ok, 1, "both instances saw the one reservation");
    assert_eq!(mock.hits("openai"), 1);
    // Without a cap nothing is reserved and both instances serve.
    let r = put_budget(&a, json!({"amountUsd": null, "alertOnly": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
