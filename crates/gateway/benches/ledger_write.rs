//! Writing usage rows: what the ledger's writer does per batch of 256 records (rows built from the
//! records, inserted with their rollups in one transaction) into a fresh SQLite file: one task on a
//! `current_thread` runtime writing batch after batch, with a short pause between them for the
//! writer's wait on its queue. Criterion reports the time per batch, pauses excluded.
//!
//! The work is split between the tokio thread and sqlx's SQLite worker thread, so wall time alone
//! hides part of it: before criterion runs, the bench writes 200 batches and prints the CPU time
//! of the whole process (all threads) per row.
//! Run: `cargo bench -p ekai-gateway --bench ledger_write`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use criterion::{Criterion, criterion_group, criterion_main};
use ekai_gateway::accounting::UsageRecord;
use ekai_gateway::catalog::Cost;
use ekai_gateway::ledger::store::{OutboxRow, Row, Store};
use ekai_wire::canonical::{Dialect, Usage};
use rust_decimal::Decimal;
use std::time::{Duration, Instant, SystemTime};

const BATCH: usize = 256;
const CPU_BATCHES: usize = 200;
/// Between two batches.
const PAUSE: Duration = Duration::from_millis(1);

/// A record like the real load's: unique request ids, a few providers, models and keys, some
/// errors, some streams.
fn record(n: u64, started_at: SystemTime) -> UsageRecord {
    const ROUTES: [(&str, &str, &str); 5] = [
        ("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18"),
        (
            "claude-sonnet-4-5",
            "anthropic",
            "claude-sonnet-4-5-20250929",
        ),
        ("gpt-5", "openai", "gpt-5-2025-08-07"),
        ("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("o4-mini", "openrouter", "openai/o4-mini"),
    ];
    const DIALECTS: [Dialect; 3] = [
        Dialect::OpenAiChat,
        Dialect::Anthropic,
        Dialect::OpenAiResponses,
    ];
    let (requested, provider, upstream) = ROUTES[(n % 5) as usize];
    let failed = n % 50 == 7;
    let usd = |nano: i64| Decimal::new(nano, 9);
    UsageRecord {
        request_id: format!("req_{:016x}{:08x}", 0x5eed_u64 * 0x9e37_79b9, n),
        attempt: 1,
        started_at,
        client_key_id: (n % 7 != 0).then(|| format!("cli_{:08x}", n % 6)),
        client_dialect: DIALECTS[(n % 3) as usize],
        requested_model: requested.to_string(),
        provider: provider.to_string(),
        upstream_model: upstream.to_string(),
        status: if failed { 429 } else { 200 },
        error_kind: failed.then(|| "rate_limit_error".to_string()),
        error: failed.then(|| "upstream answered 429: rate limit reached for requests".to_string()),
        usage: Usage {
            input_tokens: 800 + n % 1000,
            output_tokens: 120 + n % 400,
            cache_read_tokens: if n % 4 == 0 { 512 } else { 0 },
            cache_write_tokens: 0,
            reasoning_tokens: if n % 5 == 2 { 64 } else { 0 },
        },
        usage_estimated: n % 97 == 0,
        cost: (n % 11 != 0).then(|| Cost {
            input: usd(1_200),
            output: usd(1_800),
            cache_read: usd(60),
            cache_write: usd(0),
            total: usd(3_060),
        }),
        streamed: n % 2 == 0,
        client_disconnected: n % 200 == 0,
        first_byte: Some(Duration::from_millis(40 + n % 60)),
        total: Duration::from_millis(300 + n % 900),
        payment_method: "api_key",
        receipt: None,
        payment: None,
    }
}

/// Batch number `b` of a load of 10,000 requests a second that started at `t0`; requests finish
/// (and reach the ledger) a little out of the order they started in.
fn batch(t0: SystemTime, b: u64) -> Vec<UsageRecord> {
    (0..BATCH as u64)
        .map(|i| {
            let n = b * BATCH as u64 + i;
            let started =
                t0 + Duration::from_micros(n * 100) - Duration::from_micros(n * 7919 % 2000);
            record(n, started)
        })
        .collect()
}

/// What `ledger::writer::Writer::write` does with a batch.
async fn write(store: &Store, batch: &[UsageRecord]) {
    let rows: Vec<Row> = batch.iter().map(Row::from_record).collect();
    let receipts: Vec<OutboxRow> = batch.iter().filter_map(OutboxRow::from_record).collect();
    store
        .insert_batch_with_receipts(&rows, &receipts)
        .await
        .unwrap();
}

/// Writes `batches` one after the other in one task, as the writer does, with a pause between
/// them for the writer's wait on its queue (during which, too, a connection taken from the pool
/// goes back to it). Returns the time spent writing, pauses excluded.
async fn write_all(store: &Store, batches: &[Vec<UsageRecord>]) -> Duration {
    let mut busy = Duration::ZERO;
    for b in batches {
        let started = Instant::now();
        write(store, b).await;
        busy += started.elapsed();
        tokio::time::sleep(PAUSE).await;
    }
    busy
}

/// CPU time of the whole process (every thread), in ns, from the scheduler's per-thread counters.
fn process_cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("schedstat");
        // A thread may have exited since the directory was read.
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
        }
    }
    total
}

fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledger-write-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ledger.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let store = rt
        .block_on(Store::open(&format!("sqlite://{}", file.display())))
        .unwrap();

    let mut next = 0u64;
    let t0 = SystemTime::now();
    let mut take = || {
        next += 1;
        batch(t0, next)
    };
    // Warm up: statements prepared, the file past its first pages.
    let warm_up: Vec<Vec<UsageRecord>> = (0..20).map(|_| take()).collect();
    rt.block_on(write_all(&store, &warm_up));
    let batches: Vec<Vec<UsageRecord>> = (0..CPU_BATCHES).map(|_| take()).collect();
    let (cpu0, thread0) = (process_cpu_ns(), thread_cpu_ns());
    let busy = rt.block_on(write_all(&store, &batches));
    let (cpu, thread) = (process_cpu_ns() - cpu0, thread_cpu_ns() - thread0);
    let rows = (CPU_BATCHES * BATCH) as f64;
    println!(
        "ledger_write: {:.2} µs CPU per row ({:.2} on the tokio thread, {:.2} on others), \
         {:.3} ms wall per {BATCH}-row batch, over {CPU_BATCHES} batches",
        cpu as f64 / 1e3 / rows,
        thread as f64 / 1e3 / rows,
        (cpu - thread) as f64 / 1e3 / rows,
        busy.as_secs_f64() * 1e3 / CPU_BATCHES as f64,
    );

    let mut g = c.benchmark_group("ledger_write");
    g.sample_size(30);
    g.bench_function("batch_of_256_rows_sqlite", |b| {
        b.iter_custom(|n| {
            let batches: Vec<Vec<UsageRecord>> = (0..n).map(|_| take()).collect();
            rt.block_on(write_all(&store, &batches))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
