//! `/usage` over a big ledger: a 30-day aggregate (totals, by provider, by model, and the first page
//! of records — what `GET /usage` does), what the dashboard's overview runs, and the first page of
//! its requests table filtered by provider or model, over 1,000,000 rows spread across 60 days, on
//! SQLite.
//!
//! The database is built once under the target directory and reused by later runs.
//! Run: `cargo bench -p ekai-gateway --bench usage_query`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use criterion::{Criterion, criterion_group, criterion_main};
use ekai_gateway::ledger::query::{self, ReportRequest};
use ekai_gateway::ledger::store::{Filter, GroupBy, NanoCost, Row, Store};
use std::hint::black_box;

const ROWS: i64 = 1_000_000;
const DAY_MS: i64 = 86_400_000;

fn row(i: i64, now: i64) -> Row {
    let providers = ["openai", "anthropic", "openrouter", "gemini"];
    let models = [
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "gpt-5",
        "gemini-2.5-flash",
        "o4-mini",
    ];
    Row {
        id: 0,
        request_id: format!("req_{i:012}"),
        attempt: 1,
        // Spread evenly over the last 60 days.
        started_at: now - (i * 60 * DAY_MS / ROWS),
        client_key_id: Some(format!("key_{}", i % 20)),
        client_dialect: "openai_chat".into(),
        requested_model: models[(i % 5) as usize].into(),
        provider: providers[(i % 4) as usize].into(),
        upstream_model: models[(i % 5) as usize].into(),
        status: if i % 50 == 0 { 500 } else { 200 },
        error_kind: None,
        error: None,
        input_tokens: 1200,
        output_tokens: 300,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        cost: Some(NanoCost {
            input: 1_800,
            output: 1_200,
            cache_read: 0,
            cache_write: 0,
            total: 3_000,
        }),
        usage_estimated: false,
        streamed: i % 2 == 0,
        client_disconnected: false,
        first_byte_ms: Some(40),
        total_ms: 900,
        payment_method: "api_key".into(),
        x402: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("usage-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/usage-1m.db", dir.display());
    let store = rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        store
    });
    let now = ekai_gateway::ledger::time::now_ms();
    let have = rt.block_on(store.count_records()).unwrap();
    if have < ROWS {
        println!("building a {ROWS}-row ledger in {url} (once) ...");
        let started = std::time::Instant::now();
        rt.block_on(async {
            let mut i = have;
            while i < ROWS {
                let batch: Vec<Row> = (i..(i + 5_000).min(ROWS)).map(|n| row(n, now)).collect();
                store.insert_batch(&batch).await.unwrap();
                i += batch.len() as i64;
            }
        });
        println!("built in {:.1}s", started.elapsed().as_secs_f64());
    }
    let filter = Filter {
        start_ms: now - 30 * DAY_MS,
        end_ms: now,
        provider: None,
        model: None,
        key: None,
    };
    let mut g = c.benchmark_group("usage_1m_rows");
    g.sample_size(20);
    g.bench_function("30_day_report_like_GET_usage", |b| {
        b.iter(|| {
            let req = ReportRequest {
                filter: filter.clone(),
                group_by: None,
                limit: 100,
                offset: 0,
            };
            black_box(rt.block_on(query::report(&store, &req)).unwrap())
        })
    });
    g.bench_function("30_day_report_grouped_by_day", |b| {
        b.iter(|| {
            let req = ReportRequest {
                filter: filter.clone(),
                group_by: Some(GroupBy::Day),
                limit: 0,
                offset: 0,
            };
            black_box(rt.block_on(query::report(&store, &req)).unwrap())
        })
    });
    // What `GET /admin/stats/overview` runs: the grouped report (daily buckets for 30 days, hourly
    // for 24 hours) plus the latency sample (the range's most recent 2,000 rows).
    for (name, days, bucket) in [
        ("overview_30d_like_admin_stats", 30, GroupBy::Day),
        ("overview_24h_like_admin_stats", 1, GroupBy::Hour),
    ] {
        let filter = Filter {
            start_ms: now - days * DAY_MS,
            ..filter.clone()
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let req = ReportRequest {
                    filter: filter.clone(),
                    group_by: Some(bucket),
                    limit: 0,
                    offset: 0,
                };
                rt.block_on(async {
                    black_box(query::report(&store, &req).await.unwrap());
                    black_box(store.records(&filter, 2_000, 0).await.unwrap());
                })
            })
        });
    }
    // `GET /admin/stats/requests` with the table's provider or model filter (its first page), and
    // `GET /usage` for one client key.
    for (name, provider, model) in [
        (
            "requests_page_one_provider_like_admin_stats",
            Some("anthropic"),
            None,
        ),
        (
            "requests_page_one_model_like_admin_stats",
            None,
            Some("o4-mini"),
        ),
    ] {
        let filter = Filter {
            provider: provider.map(str::to_string),
            model: model.map(str::to_string),
            ..filter.clone()
        };
        g.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(store.records(&filter, 50, 0)).unwrap()))
        });
    }
    g.bench_function("30_day_report_one_key_like_GET_usage", |b| {
        b.iter(|| {
            let req = ReportRequest {
                filter: Filter {
                    key: Some("key_7".into()),
                    ..filter.clone()
                },
                group_by: None,
                limit: 100,
                offset: 0,
            };
            black_box(rt.block_on(query::report(&store, &req)).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
