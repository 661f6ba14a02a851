//! Ledger tests. Every store test runs twice: on SQLite (a temp file) and on Postgres
//! (127.0.0.1:5432, database `test`, one fresh schema per test). The Postgres variants FAIL when the
//! server is unreachable, unless EKAI_SKIP_POSTGRES=1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use ekai_gateway::accounting::{Sink, UsageRecord};
use ekai_gateway::catalog::Price;
use ekai_gateway::ledger::store::{self, Filter, GroupBy, NanoCost, Store, Totals};
use ekai_gateway::ledger::time::{DAY_MS, HOUR_MS, day_start, month_start, now_ms};
use ekai_gateway::ledger::{Budget, Ledger, money};
use ekai_wire::canonical::{Dialect, Usage};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static SEQ: AtomicUsize = AtomicUsize::new(0);
const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

struct TestDb {
    pub url: String,
    schema: Option<String>,
    dir: Option<std::path::PathBuf>,
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("ekai-ledger-{}", unique()));
        TestDb {
            url: format!("sqlite://{}/nested/usage.db", dir.display()),
            schema: None,
            dir: Some(dir),
        }
    }

    async fn postgres() -> Option<TestDb> {
        if std::env::var("EKAI_SKIP_POSTGRES").as_deref() == Ok("1") {
            eprintln!("POSTGRES TEST SKIPPED (EKAI_SKIP_POSTGRES=1)");
            return None;
        }
        eprintln!("postgres test: using {PG_BASE}");
        let admin = sqlx::PgPool::connect(PG_BASE).await.unwrap_or_else(|e| {
            panic!("this is a Postgres test and {PG_BASE} is unreachable ({e}); start Postgres or set EKAI_SKIP_POSTGRES=1")
        });
        let schema = format!("ekai_t_{}", unique());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Some(TestDb {
            url: format!("{PG_BASE}?options=-c%20search_path%3D{schema}"),
            schema: Some(schema),
            dir: None,
        })
    }

    async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            let admin = sqlx::PgPool::connect(PG_BASE).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Generates `<name>_sqlite` and `<name>_postgres` tests calling `async fn <name>(db: &TestDb)`.
macro_rules! both {
    ($name:ident) => {
        paste_tests!($name);
    };
}

macro_rules! paste_tests {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = super::TestDb::sqlite();
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = super::TestDb::postgres().await else {
                    return;
                };
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    };
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn price() -> Price {
    Price {
        input: d("3"),
        output: d("15"),
        cache_read: Some(d("0.30")),
        cache_write: Some(d("3.75")),
    }
}

fn record(i: usize, at_ms: i64, provider: &str, model: &str, priced: bool) -> UsageRecord {
    let usage = Usage {
        input_tokens: 1000 + i as u64 % 97,
        output_tokens: 200 + i as u64 % 13,
        cache_read_tokens: (i as u64 % 5) * 10,
        cache_write_tokens: (i as u64 % 3) * 7,
        reasoning_tokens: i as u64 % 11,
    };
    let failed = i % 10 == 9;
    UsageRecord {
        request_id: format!("req_{i}"),
        attempt: 1,
        started_at: UNIX_EPOCH + Duration::from_millis(at_ms as u64),
        client_key_id: (i % 4 == 0).then(|| "key-a".to_string()),
        client_dialect: Dialect::OpenAiChat,
        requested_model: model.to_string(),
        provider: provider.to_string(),
        upstream_model: model.to_string(),
        status: if failed { 429 } else { 200 },
        error_kind: failed.then(|| "rate_limit_error".to_string()),
        error: failed.then(|| "slow down".to_string()),
        usage,
        usage_estimated: i % 7 == 0,
        cost: priced.then(|| price().cost(&usage)),
        streamed: i % 2 == 0,
        client_disconnected: false,
        first_byte: Some(Duration::from_millis(12)),
        total: Duration::from_millis(40),
        payment_method: "api_key",
        receipt: None,
        payment: None,
    }
}

/// 1,000 records over ~3 days: two providers, three models, every 5th unpriced.
fn dataset(base: i64) -> Vec<UsageRecord> {
    (0..1000)
        .map(|i| {
            let at = base + (i as i64) * 260_000; // ~72 h span
            let (p, m) = match i % 3 {
                0 => ("openai", "gpt-4o"),
                1 => ("anthropic", "claude-sonnet-4-5"),
                _ => ("openai", "gpt-4o-mini"),
            };
            record(i, at, p, m, i % 5 != 4)
        })
        .collect()
}

fn expected(records: &[UsageRecord], f: impl Fn(&UsageRecord) -> bool) -> Totals {
    let mut t = Totals::default();
    for r in records.iter().filter(|r| f(r)) {
        t.add(&Totals::of_row(&store::Row::from_record(r)));
    }
    t
}

fn ms(r: &UsageRecord) -> i64 {
    r.started_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn insert(store: &Store, records: &[UsageRecord], batch: usize) {
    let rows: Vec<store::Row> = records.iter().map(store::Row::from_record).collect();
    for chunk in rows.chunks(batch) {
        store.insert_batch(chunk).await.unwrap();
    }
}

async fn migrations_are_idempotent(db: &TestDb) {
    let s = db.open().await;
    assert!(s.migrate().await.unwrap().is_empty());
    let again = db.open().await;
    assert!(again.migrate().await.unwrap().is_empty());
    assert_eq!(again.count_records().await.unwrap(), 0);
}
both!(migrations_are_idempotent);

async fn the_database_id_is_the_first_one_stored(db: &TestDb) {
    let s = db.open().await;
    let first = s.deployment_id("first-instance-id").await.unwrap();
    assert_eq!(first, "first-instance-id");
    let other = db.open().await;
    assert_eq!(
        other.deployment_id("second-instance-id").await.unwrap(),
        first
    );
}
both!(the_database_id_is_the_first_one_stored);

async fn batches_and_rollups_are_exact(db: &TestDb) {
    let s = db.open().await;
    // Half past an hour, so every range edge below is ragged and all three sources are used.
    let base = day_start(now_ms()) - 5 * DAY_MS + HOUR_MS / 2;
    let data = dataset(base);
    insert(&s, &data, 137).await;
    assert_eq!(s.count_records().await.unwrap(), 1000);

    let full = Filter {
        start_ms: base - 1,
        end_ms: base + 4 * DAY_MS,
        ..Filter::default()
    };
    let total = s.aggregate(&full, None).await.unwrap()[0].1;
    let want = expected(&data, |_| true);
    assert_eq!(total, want);
    assert_eq!(total.unpriced, 200, "unpriced rows are counted, not $0");
    assert_eq!(total.errors, 100);
    // The cost in Decimal, summed independently of the nano conversion.
    let dec: Decimal = data.iter().filter_map(|r| r.cost.map(|c| c.total)).sum();
    assert_eq!(money::from_nano(total.cost.total), dec.normalize());
    let comp = total.cost;
    assert_eq!(
        comp.total,
        comp.input + comp.output + comp.cache_read + comp.cache_write
    );

    // Ragged sub-range: exact against the raw rows.
    let sub = Filter {
        start_ms: base + 7 * HOUR_MS + 123_456,
        end_ms: base + 2 * DAY_MS + 3 * HOUR_MS + 17,
        ..Filter::default()
    };
    let got = s.aggregate(&sub, None).await.unwrap()[0].1;
    assert_eq!(
        got,
        expected(&data, |r| (sub.start_ms..sub.end_ms).contains(&ms(r)))
    );

    // A second batch on the same cells adds up (upsert, not overwrite).
    insert(&s, &data[..10], 10).await;
    let again = s.aggregate(&full, None).await.unwrap()[0].1;
    assert_eq!(again.requests, 1010);
}
both!(batches_and_rollups_are_exact);

async fn a_failed_batch_leaves_nothing_and_the_next_is_written(db: &TestDb) {
    let s = db.open().await;
    // A row the database refuses, in the middle of a multi-row INSERT: rows before it in the same
    // statement are already in the table when it fails.
    match &s {
        Store::Sqlite(x) => sqlx::raw_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON usage_records WHEN NEW.request_id = 'refused' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&x.pool)
        .await
        .map(|_| ()),
        Store::Postgres(x) => sqlx::raw_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.request_id = 'refused' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON usage_records FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
        .execute(&x.pool)
        .await
        .map(|_| ()),
    }
    .unwrap();
    let base = day_start(now_ms()) - 5 * DAY_MS + HOUR_MS / 2;
    let mut data = dataset(base);
    data[450].request_id = "refused".into();
    let rows: Vec<store::Row> = data.iter().map(store::Row::from_record).collect();
    s.insert_batch(&rows[..300]).await.unwrap();
    assert!(s.insert_batch(&rows[300..600]).await.is_err());
    s.insert_batch(&rows[600..]).await.unwrap();

    let written: Vec<UsageRecord> = data[..300].iter().chain(&data[600..]).cloned().collect();
    assert_eq!(s.count_records().await.unwrap(), 700);
    // Ragged edges, whole hours and whole days: raw rows and both rollups agree with the two
    // batches that were written, and nothing of the refused one.
    let full = Filter {
        start_ms: base - 1,
        end_ms: base + 4 * DAY_MS,
        ..Filter::default()
    };
    assert_eq!(
        s.aggregate(&full, None).await.unwrap()[0].1,
        expected(&written, |_| true)
    );
    let by_day = s.aggregate(&full, Some(GroupBy::Day)).await.unwrap();
    let by_hour = s.aggregate(&full, Some(GroupBy::Hour)).await.unwrap();
    for groups in [by_day, by_hour] {
        let mut sum = Totals::default();
        for (_, t) in &groups {
            sum.add(t);
        }
        assert_eq!(sum, expected(&written, |_| true));
    }
}
both!(a_failed_batch_leaves_nothing_and_the_next_is_written);

async fn queries_group_filter_and_page(db: &TestDb) {
    let s = db.open().await;
    let base = day_start(now_ms()) - 5 * DAY_MS + HOUR_MS / 2;
    let data = dataset(base);
    insert(&s, &data, 256).await;
    let f = Filter {
        start_ms: base,
        end_ms: base + 4 * DAY_MS,
        ..Filter::default()
    };
    let by_provider = s.aggregate(&f, Some(GroupBy::Provider)).await.unwrap();
    assert_eq!(
        by_provider
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["anthropic", "openai"]
    );
    assert_eq!(
        by_provider[1].1,
        expected(&data, |r| r.provider == "openai")
    );
    let by_model = s.aggregate(&f, Some(GroupBy::Model)).await.unwrap();
    assert_eq!(by_model.len(), 3);
    let by_key = s.aggregate(&f, Some(GroupBy::Key)).await.unwrap();
    assert_eq!(
        by_key[1],
        (
            "key-a".to_string(),
            expected(&data, |r| r.client_key_id.is_some())
        )
    );
    assert_eq!(by_key[0].0, "");
    for g in [GroupBy::Day, GroupBy::Hour] {
        let groups = s.aggregate(&f, Some(g)).await.unwrap();
        let mut sum = Totals::default();
        for (k, t) in &groups {
            let start: i64 = k.parse().unwrap();
            let unit = if g == GroupBy::Day { DAY_MS } else { HOUR_MS };
            assert_eq!(start % unit, 0);
            assert_eq!(
                *t,
                expected(&data, |r| (start..start + unit).contains(&ms(r)))
            );
            sum.add(t);
        }
        assert_eq!(sum.requests, 1000);
    }
    let filtered = Filter {
        provider: Some("openai".into()),
        model: Some("gpt-4o-mini".into()),
        key: Some("key-a".into()),
        ..f.clone()
    };
    let t = s.aggregate(&filtered, None).await.unwrap()[0].1;
    assert_eq!(
        t,
        expected(&data, |r| r.upstream_model == "gpt-4o-mini"
            && r.client_key_id.is_some())
    );
    let page1 = s.records(&f, 10, 0).await.unwrap();
    let page2 = s.records(&f, 10, 10).await.unwrap();
    assert_eq!(page1[0].request_id, "req_999");
    assert_eq!(page2[0].request_id, "req_989");
    let r = &page1[0];
    assert_eq!(r, &{
        let mut want = store::Row::from_record(&data[999]);
        want.id = r.id;
        want
    });
    let unpriced = s.records(&f, 1000, 0).await.unwrap();
    assert!(unpriced.iter().any(|r| r.cost.is_none()));
}
both!(queries_group_filter_and_page);

async fn writer_drains_on_shutdown(db: &TestDb) {
    let s = db.open().await;
    let mut cfg = ekai_gateway::config::LedgerConfig::with_url(db.url.clone());
    cfg.queue_size = 20_000;
    let ledger = Ledger::with_store(s.clone(), &cfg).await.unwrap();
    let now = now_ms();
    for i in 0..10_000 {
        ledger.submit(record(i, now - 1000, "openai", "gpt-4o", true));
    }
    let report = ledger.shutdown(Duration::from_secs(60)).await;
    assert!(report.drained);
    assert_eq!(report.counters.written, 10_000);
    assert_eq!(report.counters.dropped, 0);
    assert_eq!(s.count_records().await.unwrap(), 10_000);
}
both!(writer_drains_on_shutdown);

async fn two_writers_lose_nothing(db: &TestDb) {
    // Two gateway instances on one database: inserts only, additive rollup upserts.
    let (a, b) = (db.open().await, db.open().await);
    let cfg = ekai_gateway::config::LedgerConfig::with_url(db.url.clone());
    let la = Ledger::with_store(a.clone(), &cfg).await.unwrap();
    let lb = Ledger::with_store(b, &cfg).await.unwrap();
    let now = now_ms() - 1000;
    let mut all = Vec::new();
    for i in 0..4000 {
        let r = record(i, now, "openai", "gpt-4o", i % 5 != 0);
        all.push(r.clone());
        if i % 2 == 0 {
            la.submit(r)
        } else {
            lb.submit(r)
        }
    }
    la.shutdown(Duration::from_secs(60)).await;
    lb.shutdown(Duration::from_secs(60)).await;
    let f = Filter {
        start_ms: now - DAY_MS,
        end_ms: now + 1,
        ..Filter::default()
    };
    assert_eq!(a.count_records().await.unwrap(), 4000);
    assert_eq!(
        a.aggregate(&f, None).await.unwrap()[0].1,
        expected(&all, |_| true)
    );
}
both!(two_writers_lose_nothing);

async fn budget_reads_month_to_date_and_persists(db: &TestDb) {
    let s = db.open().await;
    let now = now_ms();
    let this_month = record(1, now - 1000, "openai", "gpt-4o", true);
    let mut last_month = record(2, month_start(now) - DAY_MS, "openai", "gpt-4o", true);
    last_month.request_id = "old".into();
    insert(&s, &[this_month.clone(), last_month], 10).await;
    let b = Budget::load(&s).await.unwrap();
    let spent = this_month.cost.unwrap().total;
    assert_eq!(
        b.status().spent_month_to_date,
        money::from_nano(NanoCost::from_cost(&this_month.cost.unwrap()).total)
    );
    assert_eq!(b.status().amount, None);
    b.set(&s, Some(d("0.5")), false).await.unwrap();
    let reloaded = Budget::load(&s).await.unwrap().status();
    assert_eq!(reloaded.amount, Some(d("0.5")));
    assert!(!reloaded.alert_only);
    assert!(reloaded.remaining.unwrap() < d("0.5") && spent > Decimal::ZERO);
    b.set(&s, None, true).await.unwrap();
    assert_eq!(Budget::load(&s).await.unwrap().status().amount, None);
}
both!(budget_reads_month_to_date_and_persists);

async fn reprice_rewrites_rows_and_rollups(db: &TestDb) {
    let s = db.open().await;
    let now = now_ms() - 1000;
    let data: Vec<UsageRecord> = (0..50)
        .map(|i| record(i, now - (i as i64) * 60_000, "openai", "gpt-4o", i % 2 == 0))
        .collect();
    insert(&s, &data, 20).await;
    let cheaper = Price {
        input: d("1"),
        output: d("2"),
        cache_read: None,
        cache_write: None,
    };
    let lookup = |p: &str, m: &str| (p == "openai" && m == "gpt-4o").then(|| cheaper.clone());
    let (examined, changed) = s.reprice(now - DAY_MS, now + 1, &lookup).await.unwrap();
    assert_eq!((examined, changed), (50, 50));
    let f = Filter {
        start_ms: now - DAY_MS,
        end_ms: now + 1,
        ..Filter::default()
    };
    let mut want = Totals::default();
    for r in &data {
        let mut r = r.clone();
        r.cost = Some(cheaper.cost(&r.usage));
        want.add(&Totals::of_row(&store::Row::from_record(&r)));
    }
    let got = s.aggregate(&f, None).await.unwrap()[0].1;
    assert_eq!(got, want);
    assert_eq!(got.unpriced, 0);
    // Unknown model: left as is.
    let (_, changed) = s
        .reprice(now - DAY_MS, now + 1, &|_, _| None)
        .await
        .unwrap();
    assert_eq!(changed, 0);
}
both!(reprice_rewrites_rows_and_rollups);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_with_drop_policy_counts_every_drop() {
    let db = TestDb::sqlite();
    let mut cfg = ekai_gateway::config::LedgerConfig::with_url(db.url.clone());
    cfg.queue_size = 1;
    cfg.batch_size = 1;
    cfg.on_full = ekai_gateway::config::OnFull::Drop;
    let s = db.open().await;
    let ledger = Ledger::with_store(s.clone(), &cfg).await.unwrap();
    let now = now_ms();
    for i in 0..2000 {
        ledger.submit(record(i, now, "openai", "gpt-4o", true));
    }
    let report = ledger.shutdown(Duration::from_secs(60)).await;
    let c = report.counters;
    assert!(c.dropped > 0, "{c:?}");
    assert_eq!(c.written + c.dropped, 2000, "{c:?}");
    assert_eq!(s.count_records().await.unwrap() as u64, c.written);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_after_shutdown_is_counted() {
    let db = TestDb::sqlite();
    let cfg = ekai_gateway::config::LedgerConfig::with_url(db.url.clone());
    let ledger = Ledger::open(&cfg).await.unwrap();
    let other = ledger.clone();
    ledger.shutdown(Duration::from_secs(5)).await;
    other.submit(record(1, now_ms(), "openai", "gpt-4o", true));
    assert_eq!(other.counters().dropped, 1);
    db.cleanup().await;
}

#[test]
fn plan_covers_the_range_exactly_once() {
    let start = 5 * DAY_MS + 3 * HOUR_MS + 17;
    let end = 9 * DAY_MS + 2 * HOUR_MS + 5;
    let mut pieces = store::plan(start, end, true);
    pieces.sort_by_key(|p| p.1);
    assert_eq!(pieces.first().unwrap().1, start);
    assert_eq!(pieces.last().unwrap().2, end);
    for w in pieces.windows(2) {
        assert_eq!(w[0].2, w[1].1);
    }
    assert!(pieces.iter().any(|p| p.0 == store::Source::Daily));
}

async fn clients_are_stored_updated_and_their_spend_summed(db: &TestDb) {
    let s = db.open().await;
    let mut c = store::ClientRow {
        id: "cl_test1".into(),
        name: "alice".into(),
        key_prefix: "ek-abcde".into(),
        key_hash: "00ff".repeat(16),
        created_at: now_ms(),
        expires_at: None,
        revoked_at: None,
        tags: r#"{"team":"a"}"#.into(),
        policy: r#"{"model_preferences":["gpt-4o-mini"]}"#.into(),
        upstream_keys: r#"{"openai":"00"}"#.into(),
    };
    s.insert_client(&c).await.unwrap();
    // The hash is unique: a second client with the same hash is refused.
    let mut dup = c.clone();
    dup.id = "cl_test2".into();
    assert!(s.insert_client(&dup).await.is_err());
    assert_eq!(s.clients().await.unwrap(), vec![c.clone()]);
    c.revoked_at = Some(now_ms());
    c.name = "alice2".into();
    assert!(s.update_client(&c).await.unwrap());
    assert_eq!(s.clients().await.unwrap(), vec![c.clone()]);
    dup.id = "cl_missing".into();
    assert!(!s.update_client(&dup).await.unwrap());
    assert!(
        s.set_client_key("cl_test1", "ek-fghij", &"11ee".repeat(16))
            .await
            .unwrap()
    );
    assert!(!s.set_client_key("cl_missing", "ek-x", "22").await.unwrap());
    c.key_prefix = "ek-fghij".into();
    c.key_hash = "11ee".repeat(16);
    assert_eq!(s.clients().await.unwrap(), vec![c.clone()]);

    let mut recs = Vec::new();
    for (key, cost) in [
        (Some("cl_test1"), "0.25"),
        (Some("cl_test1"), "0.5"),
        (None, "1"),
    ] {
        let mut r = record(1, now_ms(), "openai", "gpt-4o-mini", true);
        r.client_key_id = key.map(str::to_string);
        r.cost = Some(ekai_gateway::catalog::Cost {
            input: Decimal::from_str(cost).unwrap(),
            output: Decimal::ZERO,
            cache_read: Decimal::ZERO,
            cache_write: Decimal::ZERO,
            total: Decimal::from_str(cost).unwrap(),
        });
        recs.push(r);
    }
    insert(&s, &recs, 10).await;
    let spent = s
        .spent_by_client_since(month_start(now_ms()))
        .await
        .unwrap();
    assert_eq!(spent.len(), 1, "{spent:?}");
    assert_eq!(
        spent["cl_test1"],
        money::to_nano(Decimal::from_str("0.75").unwrap())
    );
    let b = Budget::load(&s).await.unwrap();
    assert_eq!(
        b.client_spent("cl_test1"),
        Decimal::from_str("0.75").unwrap()
    );
}
both!(clients_are_stored_updated_and_their_spend_summed);

/// Sapphire mode's tables (migration 0004): receipts enter the outbox in the ledger's transaction
/// (completed attempts with parties only, once per request hash), move through sent/failed/mined,
/// and wallet sessions refuse a reused (wallet, nonce).
async fn sapphire_outbox_and_sessions(db: &TestDb) {
    use ekai_gateway::accounting::Parties;
    use ekai_gateway::ledger::store::{OutboxRow, SessionRow};
    let s = db.open().await;
    let parties = Parties {
        owner: [0x11; 20],
        delegate: [0x22; 20],
    };
    let base = now_ms() - 60_000;
    let mut recs: Vec<UsageRecord> = (0..4)
        .map(|i| record(i, base + i as i64, "openai", "gpt-4o-mini", true))
        .collect();
    recs[0].receipt = Some(parties);
    recs[1].receipt = Some(parties);
    recs[2].receipt = Some(parties);
    recs[2].status = 429;
    recs[2].error_kind = Some("rate_limit_error".into());
    let rows: Vec<store::Row> = recs.iter().map(store::Row::from_record).collect();
    let receipts: Vec<OutboxRow> = recs.iter().filter_map(OutboxRow::from_record).collect();
    assert_eq!(receipts.len(), 2, "only completed attempts with parties");
    let r0 = &receipts[0];
    assert_eq!(r0.owner, format!("0x{}", "11".repeat(20)));
    assert_eq!(r0.prompt_tokens, recs[0].usage.input_tokens as i64);
    assert_eq!(r0.completion_tokens, recs[0].usage.output_tokens as i64);
    let expected = ekai_gateway::sapphire::ids::request_hash(
        [0x11; 20].into(),
        [0x22; 20].into(),
        ekai_gateway::sapphire::ids::provider_id("openai"),
        ekai_gateway::sapphire::ids::model_id("gpt-4o-mini"),
        base as u64,
    );
    assert_eq!(r0.request_hash, format!("{expected:#x}"));
    s.insert_batch_with_receipts(&rows, &receipts)
        .await
        .unwrap();
    // The same receipts again (a retried batch) do not duplicate.
    s.insert_batch_with_receipts(&rows[..1], &receipts[..1])
        .await
        .unwrap();
    let all = s.outbox_all().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(s.count_records().await.unwrap(), 5);
    let now = now_ms();
    let due = s.outbox_due(now, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    s.outbox_failed(due[0].id, "node down", now + 60_000, true)
        .await
        .unwrap();
    let due2 = s.outbox_due(now, 10).await.unwrap();
    assert_eq!(due2.len(), 1);
    assert_eq!(due2[0].id, due[1].id);
    s.outbox_sent(due[1].id, "0xabc").await.unwrap();
    s.outbox_mined(due[1].id, None, now).await.unwrap();
    let all = s.outbox_all().await.unwrap();
    assert_eq!(
        (
            all[0].attempts,
            all[0].last_error.as_deref(),
            all[0].mined_at
        ),
        (1, Some("node down"), None)
    );
    assert_eq!(all[1].tx_hash.as_deref(), Some("0xabc"));
    assert!(all[1].sent_at.is_some() && all[1].mined_at == Some(now));
    assert_eq!(s.outbox_counts().await.unwrap(), (1, 1, 0));
    assert!(s.outbox_due(now + 120_000, 10).await.unwrap().len() == 1);

    // Reverts are counted; the one that reaches the cap gives the receipt up for good.
    let id = all[0].id;
    assert!(
        !s.outbox_reverted(id, "logReceipt reverted", now, 2)
            .await
            .unwrap()
    );
    assert_eq!(s.outbox_due(now, 10).await.unwrap().len(), 1, "retried");
    assert!(
        s.outbox_reverted(id, "logReceipt reverted", now, 2)
            .await
            .unwrap()
    );
    assert!(s.outbox_due(now + 3_600_000, 10).await.unwrap().is_empty());
    let all = s.outbox_all().await.unwrap();
    assert_eq!((all[0].reverts, all[0].attempts), (2, 3));
    assert!(all[0].given_up_at.is_some() && all[0].tx_hash.is_none());
    assert_eq!(s.outbox_counts().await.unwrap(), (0, 1, 1));
    let gone = s.outbox_given_up(10).await.unwrap();
    assert_eq!(gone.len(), 1);
    // An operator puts it back: due at once, its reverts forgotten.
    assert_eq!(s.outbox_requeue(Some("0xnone")).await.unwrap(), 0);
    assert_eq!(
        s.outbox_requeue(Some(&gone[0].request_hash)).await.unwrap(),
        1
    );
    assert_eq!(s.outbox_requeue(None).await.unwrap(), 0);
    let due = s.outbox_due(now_ms(), 10).await.unwrap();
    assert_eq!((due.len(), due[0].reverts), (1, 0));
    assert_eq!(s.outbox_counts().await.unwrap(), (1, 1, 0));

    let session = SessionRow {
        token_hash: "h1".into(),
        wallet: "0xabc".into(),
        client_id: "w_abc".into(),
        nonce: "nonce-0001".into(),
        created_at: now,
        expires_at: now + 1000,
    };
    assert!(s.insert_session(&session).await.unwrap());
    let replay = SessionRow {
        token_hash: "h2".into(),
        ..session.clone()
    };
    assert!(!s.insert_session(&replay).await.unwrap(), "nonce reused");
    assert_eq!(s.session("h1").await.unwrap(), Some(session));
    assert_eq!(s.session("h2").await.unwrap(), None);
    assert_eq!(s.delete_expired_sessions(now + 500).await.unwrap(), 0);
    assert_eq!(s.delete_expired_sessions(now + 2000).await.unwrap(), 1);
    assert_eq!(s.session("h1").await.unwrap(), None);
}
both!(sapphire_outbox_and_sessions);

fn x402_entry(i: usize, nano: i64) -> ekai_gateway::accounting::SpendEntry {
    ekai_gateway::accounting::SpendEntry {
        id: format!("0x{:064x}", i + 1),
        request_id: format!("req-{i}"),
        amount_nano: nano,
        payment: ekai_gateway::accounting::Payment {
            amount_atomic: (nano / 1000).to_string(),
            amount_nano: nano,
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            network: "eip155:84532".into(),
            payer: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".into(),
            payee: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
            tx_hash: None,
            version: 2,
        },
    }
}

/// The x402 spend book: concurrent reservations never exceed a cap (the check and the insert are
/// one atomic step), released rows stop counting, settled ones keep counting, and a usage row's paid
/// columns round-trip.
async fn x402_spend_book(db: &TestDb) {
    use ekai_gateway::accounting::{SpendBook, SpendRefused};
    let s = db.open().await;
    let now = now_ms();
    let cent = 10_000_000; // 0.01 USD in nano-USD
    let entries: Vec<_> = (0..20).map(|i| x402_entry(i, cent)).collect();
    let results = futures_util::future::join_all(
        entries
            .iter()
            .map(|e| s.reserve(e, Some(5 * cent), Some(100 * cent), now)),
    )
    .await;
    let ok: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Ok(Ok(()))))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ok.len(), 5, "{results:?}");
    for r in &results {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(SpendRefused::Day {
                cap_nano,
                spent_nano,
            })) => {
                assert_eq!((*cap_nano, *spent_nano), (5 * cent, 5 * cent));
            }
            other => panic!("{other:?}"),
        }
    }
    // One released (never settled), one settled: exactly one more fits.
    s.finish(&entries[ok[0]].id, false, None).await.unwrap();
    s.finish(&entries[ok[1]].id, true, Some("0xabc"))
        .await
        .unwrap();
    let extra = x402_entry(100, cent);
    assert_eq!(
        s.reserve(&extra, Some(5 * cent), None, now).await.unwrap(),
        Ok(())
    );
    let more = x402_entry(101, cent);
    assert!(matches!(
        s.reserve(&more, Some(5 * cent), None, now).await.unwrap(),
        Err(SpendRefused::Day { .. })
    ));
    // The monthly cap counts the whole month; yesterday's spend is outside today's cap.
    let month = x402_entry(102, cent);
    assert!(matches!(
        s.reserve(&month, None, Some(5 * cent), now).await.unwrap(),
        Err(SpendRefused::Month { .. })
    ));
    assert_eq!(s.x402_spent_since(day_start(now)).await.unwrap(), 5 * cent);
    assert_eq!(
        s.x402_spent_since(month_start(now)).await.unwrap(),
        5 * cent
    );

    let mut rec = record(0, now, "x402", "gpt-4o-mini", true);
    rec.payment_method = "x402";
    let mut paid = entries[ok[1]].payment.clone();
    paid.tx_hash = Some("0xabc".into());
    rec.payment = Some(Box::new(paid));
    let plain = record(1, now, "openai", "gpt-4o-mini", true);
    s.insert_batch(&[
        store::Row::from_record(&rec),
        store::Row::from_record(&plain),
    ])
    .await
    .unwrap();
    let f = Filter {
        start_ms: now - HOUR_MS,
        end_ms: now + HOUR_MS,
        ..Filter::default()
    };
    let rows = s.records(&f, 10, 0).await.unwrap();
    let x = rows.iter().find(|r| r.provider == "x402").unwrap();
    assert_eq!(x.payment_method, "x402");
    let p = x.x402.as_ref().unwrap();
    assert_eq!(
        (
            p.amount_atomic.as_str(),
            p.amount_nano,
            p.tx_hash.as_deref()
        ),
        ("10000", cent, Some("0xabc"))
    );
    assert_eq!(p.network, "eip155:84532");
    assert!(
        rows.iter()
            .find(|r| r.provider == "openai")
            .unwrap()
            .x402
            .is_none()
    );
}
both!(x402_spend_book);
