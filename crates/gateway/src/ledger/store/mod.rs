//! The ledger's database: one schema, two engines. SQL is written once with `?` placeholders
//! (rewritten to `$n` for Postgres) and runs on either pool through [`dispatch!`]; only opening the
//! pool and the migration files differ per engine.

pub mod postgres;
pub mod sqlite;

use super::money::{from_nano, to_nano};
use super::time::{day_start, hour_start};
use crate::accounting::UsageRecord;
use crate::catalog::{Cost, Price};
use sqlx::Row as _;
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// Runs `$body` with `$pool` bound to the engine's pool and `$pg` telling which engine it is. The body
/// is compiled once per engine, so it may use any sqlx API both drivers implement.
macro_rules! dispatch {
    ($store:expr, |$pool:ident, $pg:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.pool;
                let $pg = false;
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                let $pg = true;
                $body
            }
        }
    };
}

/// Binds a list of [`Arg`]s onto a query.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::I(v) => q.bind(*v),
                Arg::T(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

mod clients;
mod x402;
pub use clients::ClientRow;
mod sapphire;
pub use sapphire::{OutboxRow, SessionRow};

#[derive(Debug, Clone)]
pub enum Arg {
    I(i64),
    T(String),
}

/// `?` → `$1, $2, …` for Postgres. Our SQL never has `?` inside a string literal.
pub fn placeholders(pg: bool, sql: &str) -> Cow<'_, str> {
    if !pg {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A ledger row as stored: money in nano-USD, times in unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub request_id: String,
    pub attempt: i32,
    pub started_at: i64,
    pub client_key_id: Option<String>,
    pub client_dialect: String,
    pub requested_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub status: i32,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    /// None when unpriced.
    pub cost: Option<NanoCost>,
    pub usage_estimated: bool,
    pub streamed: bool,
    pub client_disconnected: bool,
    pub first_byte_ms: Option<i64>,
    pub total_ms: i64,
    pub payment_method: String,
    /// What the row paid through x402 (None for key-paid rows).
    pub x402: Option<X402Paid>,
}

/// The x402 payment of one ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X402Paid {
    pub amount_atomic: String,
    pub amount_nano: i64,
    pub asset: String,
    pub network: String,
    pub payer: String,
    pub payee: String,
    pub tx_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NanoCost {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_write: i64,
    /// Always the sum of the stored components, so rollups of components and totals agree.
    pub total: i64,
}

impl NanoCost {
    pub fn from_cost(c: &Cost) -> NanoCost {
        let (input, output, cache_read, cache_write) = (
            to_nano(c.input),
            to_nano(c.output),
            to_nano(c.cache_read),
            to_nano(c.cache_write),
        );
        NanoCost {
            input,
            output,
            cache_read,
            cache_write,
            total: input + output + cache_read + cache_write,
        }
    }

    pub fn to_cost(self) -> Cost {
        Cost {
            input: from_nano(self.input),
            output: from_nano(self.output),
            cache_read: from_nano(self.cache_read),
            cache_write: from_nano(self.cache_write),
            total: from_nano(self.total),
        }
    }
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Row {
    pub fn from_record(r: &UsageRecord) -> Row {
        let started_at = r
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0);
        Row {
            id: 0,
            request_id: r.request_id.clone(),
            attempt: i32::try_from(r.attempt).unwrap_or(i32::MAX),
            started_at,
            client_key_id: r.client_key_id.clone(),
            client_dialect: r.client_dialect.as_str().to_string(),
            requested_model: r.requested_model.clone(),
            provider: r.provider.clone(),
            upstream_model: r.upstream_model.clone(),
            status: i32::from(r.status),
            error_kind: r.error_kind.clone(),
            error: r.error.clone(),
            input_tokens: tokens(r.usage.input_tokens),
            output_tokens: tokens(r.usage.output_tokens),
            cache_read_tokens: tokens(r.usage.cache_read_tokens),
            cache_write_tokens: tokens(r.usage.cache_write_tokens),
            reasoning_tokens: tokens(r.usage.reasoning_tokens),
            cost: r.cost.as_ref().map(NanoCost::from_cost),
            usage_estimated: r.usage_estimated,
            streamed: r.streamed,
            client_disconnected: r.client_disconnected,
            first_byte_ms: r.first_byte.map(millis),
            total_ms: millis(r.total),
            payment_method: r.payment_method.to_string(),
            x402: r.payment.as_ref().map(|p| X402Paid {
                amount_atomic: p.amount_atomic.clone(),
                amount_nano: p.amount_nano,
                asset: p.asset.clone(),
                network: p.network.clone(),
                payer: p.payer.clone(),
                payee: p.payee.clone(),
                tx_hash: p.tx_hash.clone(),
            }),
        }
    }

    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error_kind.is_some()
    }

    pub fn usage(&self) -> ekai_wire::canonical::Usage {
        let u = |n: i64| u64::try_from(n).unwrap_or(0);
        ekai_wire::canonical::Usage {
            input_tokens: u(self.input_tokens),
            output_tokens: u(self.output_tokens),
            cache_read_tokens: u(self.cache_read_tokens),
            cache_write_tokens: u(self.cache_write_tokens),
            reasoning_tokens: u(self.reasoning_tokens),
        }
    }
}

/// Sums over a set of rows (one rollup cell, one group, or a whole range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost: NanoCost,
    /// Rows with no price: counted here, contributing nothing to `cost`.
    pub unpriced: i64,
    pub total_ms: i64,
}

impl Totals {
    pub fn of_row(r: &Row) -> Totals {
        Totals {
            requests: 1,
            errors: i64::from(r.is_error()),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            cost: r.cost.unwrap_or_default(),
            unpriced: i64::from(r.cost.is_none()),
            total_ms: r.total_ms,
        }
    }

    pub fn add(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost.input += o.cost.input;
        self.cost.output += o.cost.output;
        self.cost.cache_read += o.cost.cache_read;
        self.cost.cache_write += o.cost.cache_write;
        self.cost.total += o.cost.total;
        self.unpriced += o.unpriced;
        self.total_ms += o.total_ms;
    }

    /// Input (which includes cache reads and writes, canonical convention) plus output.
    pub fn total_tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens
    }
}

/// (bucket start, provider, model, client key or ''), borrowed from the batch's rows.
type CellKey<'a> = (i64, &'a str, &'a str, &'a str);

pub(crate) const ROLLUPS: [&str; 2] = ["usage_hourly", "usage_daily"];

const ROW_COLUMNS: &str = "request_id, attempt, started_at, client_key_id, client_dialect, requested_model, \
    provider, upstream_model, status, error_kind, error, input_tokens, output_tokens, cache_read_tokens, \
    cache_write_tokens, reasoning_tokens, cost_input, cost_output, cost_cache_read, cost_cache_write, \
    cost_total, priced, usage_estimated, streamed, client_disconnected, first_byte_ms, total_ms, payment_method, \
    x402_amount_atomic, x402_amount_nano, x402_asset, x402_network, x402_payer, x402_payee, x402_tx_hash";
const ROW_ARITY: usize = 35;
/// Rows per INSERT statement: 35 binds each stays under SQLite's 32,766 and Postgres' 65,535 limits.
/// A batch is inserted in multi-row statements of these sizes only. sqlx prepares and caches one
/// statement per SQL text and connection; one text per batch length made the cache (and memory)
/// grow with every new batch size seen (measured: ~0.4 KB per request under load).
const CHUNK_SIZES: [usize; 4] = [128, 32, 8, 1];

/// The summed columns of a rollup cell, in [`totals_args`] order.
const SUMS: [&str; 14] = [
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_input",
    "cost_output",
    "cost_cache_read",
    "cost_cache_write",
    "cost_total",
    "unpriced",
    "total_ms",
];
const CELL_ARITY: usize = 4 + SUMS.len();
/// Cells per rollup upsert, as [`CHUNK_SIZES`] for rows. Batches have from one to a few dozen
/// cells, so every power of two: few statements per batch, and still few texts.
const CELL_CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// `items` cut into chunks of the sizes in `sizes`, largest first (the last size must be 1).
fn fixed_chunks<'a, T>(items: &'a [T], sizes: &[usize]) -> Vec<&'a [T]> {
    let mut out = Vec::new();
    let mut rest = items;
    for &size in sizes {
        while rest.len() >= size {
            let (chunk, r) = rest.split_at(size);
            out.push(chunk);
            rest = r;
        }
    }
    out
}

/// `(?, ?, …), (?, …)`: `rows` groups of `arity` placeholders.
fn values_list(rows: usize, arity: usize) -> String {
    let one = format!("({})", vec!["?"; arity].join(", "));
    vec![one.as_str(); rows].join(", ")
}

/// The INSERT of `rows` usage rows, for SQLite (`pg` false) or Postgres.
///
/// On SQLite it is `INSERT OR FAIL`: with the default conflict action (ABORT) a multi-row INSERT
/// must be able to undo its own rows alone, so SQLite writes every page it touches to a statement
/// journal first (a temporary file once past 64 KiB, created and deleted per statement); FAIL
/// keeps the rows written before a failing one, which changes nothing here because any error
/// fails and rolls back the whole batch's transaction.
fn insert_rows_sql(pg: bool, rows: usize) -> String {
    let verb = if pg { "INSERT" } else { "INSERT OR FAIL" };
    let sql = format!(
        "{verb} INTO usage_records ({ROW_COLUMNS}) VALUES {}",
        values_list(rows, ROW_ARITY)
    );
    placeholders(pg, &sql).into_owned()
}

/// The additive upsert of `cells` distinct cells into a rollup table. One statement may not
/// touch a cell twice (Postgres refuses it), so callers pass distinct cells.
fn rollup_upsert_sql(pg: bool, table: &str, cells: usize) -> String {
    let set: Vec<String> = SUMS
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} (bucket_start, provider, model, client_key_id, {}) VALUES {} \
         ON CONFLICT (bucket_start, provider, model, client_key_id) DO UPDATE SET {}",
        SUMS.join(", "),
        values_list(cells, CELL_ARITY),
        set.join(", ")
    );
    placeholders(pg, &sql).into_owned()
}

/// The batch statements' texts, built once: every batch runs the same few.
struct BatchSql {
    /// Per `CHUNK_SIZES` entry.
    rows: Vec<String>,
    /// Per rollup table, per `CELL_CHUNKS` entry.
    cells: [Vec<String>; 2],
}

impl BatchSql {
    fn get(pg: bool) -> &'static BatchSql {
        static SQL: std::sync::OnceLock<[BatchSql; 2]> = std::sync::OnceLock::new();
        let both = SQL.get_or_init(|| {
            [false, true].map(|pg| BatchSql {
                rows: CHUNK_SIZES
                    .iter()
                    .map(|&n| insert_rows_sql(pg, n))
                    .collect(),
                cells: ROLLUPS.map(|t| {
                    CELL_CHUNKS
                        .iter()
                        .map(|&n| rollup_upsert_sql(pg, t, n))
                        .collect()
                }),
            })
        });
        &both[usize::from(pg)]
    }

    fn rows(&self, n: usize) -> &str {
        let i = CHUNK_SIZES.iter().position(|&s| s == n).unwrap_or(0);
        &self.rows[i]
    }

    fn cells(&self, table: usize, n: usize) -> &str {
        let i = CELL_CHUNKS.iter().position(|&s| s == n).unwrap_or(0);
        &self.cells[table][i]
    }
}

/// The batch's rollup cells per table (hourly, daily), sorted so that two instances upserting the
/// same cells lock them in the same order (no deadlock between concurrent Postgres writers).
fn rollup_cells(rows: &[Row]) -> [Vec<(CellKey<'_>, Totals)>; 2] {
    let mut hourly: HashMap<CellKey<'_>, Totals> = HashMap::new();
    let mut daily: HashMap<CellKey<'_>, Totals> = HashMap::new();
    for r in rows {
        let t = Totals::of_row(r);
        let key = r.client_key_id.as_deref().unwrap_or_default();
        for (map, bucket) in [
            (&mut hourly, hour_start(r.started_at)),
            (&mut daily, day_start(r.started_at)),
        ] {
            map.entry((bucket, &r.provider, &r.upstream_model, key))
                .or_default()
                .add(&t);
        }
    }
    [hourly, daily].map(|m| {
        let mut v: Vec<(CellKey<'_>, Totals)> = m.into_iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    })
}

fn totals_args(t: &Totals) -> [i64; 14] {
    [
        t.requests,
        t.errors,
        t.input_tokens,
        t.output_tokens,
        t.cache_read_tokens,
        t.cache_write_tokens,
        t.reasoning_tokens,
        t.cost.input,
        t.cost.output,
        t.cost.cache_read,
        t.cost.cache_write,
        t.cost.total,
        t.unpriced,
        t.total_ms,
    ]
}

/// SELECT list summing a rollup table into [`Totals`] columns.
const ROLLUP_SUMS: &str = "CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
    CAST(COALESCE(SUM(errors), 0) AS BIGINT) AS errors, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens, \
    CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens, \
    CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens, \
    CAST(COALESCE(SUM(cost_input), 0) AS BIGINT) AS cost_input, \
    CAST(COALESCE(SUM(cost_output), 0) AS BIGINT) AS cost_output, \
    CAST(COALESCE(SUM(cost_cache_read), 0) AS BIGINT) AS cost_cache_read, \
    CAST(COALESCE(SUM(cost_cache_write), 0) AS BIGINT) AS cost_cache_write, \
    CAST(COALESCE(SUM(cost_total), 0) AS BIGINT) AS cost_total, \
    CAST(COALESCE(SUM(unpriced), 0) AS BIGINT) AS unpriced, \
    CAST(COALESCE(SUM(total_ms), 0) AS BIGINT) AS total_ms";

/// The same sums computed from raw rows (for the edges of a range that do not fill a bucket).
const RECORD_SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS requests, \
    CAST(COALESCE(SUM(CASE WHEN status >= 400 OR error_kind IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
    CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens, \
    CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens, \
    CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens, \
    CAST(COALESCE(SUM(cost_input), 0) AS BIGINT) AS cost_input, \
    CAST(COALESCE(SUM(cost_output), 0) AS BIGINT) AS cost_output, \
    CAST(COALESCE(SUM(cost_cache_read), 0) AS BIGINT) AS cost_cache_read, \
    CAST(COALESCE(SUM(cost_cache_write), 0) AS BIGINT) AS cost_cache_write, \
    CAST(COALESCE(SUM(cost_total), 0) AS BIGINT) AS cost_total, \
    CAST(COALESCE(SUM(CASE WHEN priced THEN 0 ELSE 1 END), 0) AS BIGINT) AS unpriced, \
    CAST(COALESCE(SUM(total_ms), 0) AS BIGINT) AS total_ms";

fn totals_from_row<R: sqlx::Row>(row: &R) -> Result<Totals, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let g = |c: &str| row.try_get::<i64, _>(c);
    Ok(Totals {
        requests: g("requests")?,
        errors: g("errors")?,
        input_tokens: g("input_tokens")?,
        output_tokens: g("output_tokens")?,
        cache_read_tokens: g("cache_read_tokens")?,
        cache_write_tokens: g("cache_write_tokens")?,
        reasoning_tokens: g("reasoning_tokens")?,
        cost: NanoCost {
            input: g("cost_input")?,
            output: g("cost_output")?,
            cache_read: g("cost_cache_read")?,
            cache_write: g("cost_cache_write")?,
            total: g("cost_total")?,
        },
        unpriced: g("unpriced")?,
        total_ms: g("total_ms")?,
    })
}

/// Where a piece of a time range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Daily,
    Hourly,
    Records,
}

/// Splits `[start, end)` so that whole days come from the daily rollup, whole hours from the hourly
/// one and only the ragged edges from raw rows: exact totals at rollup speed.
pub fn plan(start: i64, end: i64, allow_daily: bool) -> Vec<(Source, i64, i64)> {
    use super::time::{DAY_MS, HOUR_MS};
    let ceil = |t: i64, unit: i64| -(-t).div_euclid(unit) * unit;
    let mut out = Vec::new();
    if start >= end {
        return out;
    }
    let mut hour_pieces = Vec::new();
    let (ds, de) = (ceil(start, DAY_MS), day_start(end));
    if allow_daily && ds < de {
        out.push((Source::Daily, ds, de));
        hour_pieces.push((start, ds));
        hour_pieces.push((de, end));
    } else {
        hour_pieces.push((start, end));
    }
    for (a, b) in hour_pieces {
        if a >= b {
            continue;
        }
        let (hs, he) = (ceil(a, HOUR_MS), hour_start(b));
        if hs < he {
            out.push((Source::Hourly, hs, he));
            if a < hs {
                out.push((Source::Records, a, hs));
            }
            if he < b {
                out.push((Source::Records, he, b));
            }
        } else {
            out.push((Source::Records, a, b));
        }
    }
    out
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub start_ms: i64,
    pub end_ms: i64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Hour,
    Day,
    Provider,
    Model,
    Key,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "hour" => GroupBy::Hour,
            "day" => GroupBy::Day,
            "provider" => GroupBy::Provider,
            "model" => GroupBy::Model,
            "key" => GroupBy::Key,
            _ => return None,
        })
    }
}

impl Store {
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::Postgres(postgres::PostgresStore::open(url).await?)
        } else if url.starts_with("sqlite:") {
            Store::Sqlite(sqlite::SqliteStore::open(url).await?)
        } else {
            anyhow::bail!("unsupported DATABASE_URL scheme (use sqlite://PATH or postgres://…)");
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Applies the embedded migrations not yet recorded in `schema_migrations`, all in one
    /// transaction (DDL is transactional in both engines), under an advisory lock on Postgres.
    pub async fn migrate(&self) -> anyhow::Result<Vec<i64>> {
        dispatch!(self, |pool, pg| {
            let migrations = if pg {
                postgres::MIGRATIONS
            } else {
                sqlite::MIGRATIONS
            };
            let mut tx = pool.begin().await?;
            if pg {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(postgres::MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let mut applied = Vec::new();
            for (version, name, sql) in migrations {
                let done: Option<i64> = sqlx::query_scalar(&placeholders(
                    pg,
                    "SELECT version FROM schema_migrations WHERE version = ?",
                ))
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?;
                if done.is_some() {
                    continue;
                }
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query(&placeholders(
                    pg,
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                ))
                .bind(*version)
                .bind(*name)
                .bind(super::time::now_ms())
                .execute(&mut *tx)
                .await?;
                applied.push(*version);
            }
            tx.commit().await?;
            Ok(applied)
        })
    }

    /// Inserts `rows` and adds them to the hourly and daily rollups in ONE transaction: either all
    /// of the batch is visible (rows and sums agree) or none of it.
    pub async fn insert_batch(&self, rows: &[Row]) -> Result<(), sqlx::Error> {
        self.insert_batch_with_receipts(rows, &[]).await
    }

    /// As [`Store::insert_batch`], with the batch's Sapphire receipts queued in the outbox in the
    /// same transaction: a usage row and its receipt are written together or not at all.
    pub async fn insert_batch_with_receipts(
        &self,
        rows: &[Row],
        receipts: &[OutboxRow],
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let cells = rollup_cells(rows);
        // `$conn.begin()` is `Pool::begin` for Postgres and `Connection::begin` for SQLite's
        // writer connection; the rest is the same text for both engines.
        macro_rules! write_batch {
            ($conn:expr, $pg:expr) => {{
                let sql = BatchSql::get($pg);
                let mut tx = $conn.begin().await?;
                for chunk in fixed_chunks(rows, &CHUNK_SIZES) {
                    let mut q = sqlx::query(sql.rows(chunk.len()));
                    for r in chunk {
                        let c = r.cost;
                        q = q
                            .bind(&r.request_id)
                            .bind(r.attempt)
                            .bind(r.started_at)
                            .bind(&r.client_key_id)
                            .bind(&r.client_dialect)
                            .bind(&r.requested_model)
                            .bind(&r.provider)
                            .bind(&r.upstream_model)
                            .bind(r.status)
                            .bind(&r.error_kind)
                            .bind(&r.error)
                            .bind(r.input_tokens)
                            .bind(r.output_tokens)
                            .bind(r.cache_read_tokens)
                            .bind(r.cache_write_tokens)
                            .bind(r.reasoning_tokens)
                            .bind(c.map(|c| c.input))
                            .bind(c.map(|c| c.output))
                            .bind(c.map(|c| c.cache_read))
                            .bind(c.map(|c| c.cache_write))
                            .bind(c.map(|c| c.total))
                            .bind(c.is_some())
                            .bind(r.usage_estimated)
                            .bind(r.streamed)
                            .bind(r.client_disconnected)
                            .bind(r.first_byte_ms)
                            .bind(r.total_ms)
                            .bind(&r.payment_method);
                        let p = r.x402.as_ref();
                        q = q
                            .bind(p.map(|p| p.amount_atomic.as_str()))
                            .bind(p.map(|p| p.amount_nano))
                            .bind(p.map(|p| p.asset.as_str()))
                            .bind(p.map(|p| p.network.as_str()))
                            .bind(p.map(|p| p.payer.as_str()))
                            .bind(p.map(|p| p.payee.as_str()))
                            .bind(p.and_then(|p| p.tx_hash.as_deref()));
                    }
                    q.execute(&mut *tx).await?;
                }
                for (table, cells) in cells.iter().enumerate() {
                    for chunk in fixed_chunks(cells, &CELL_CHUNKS) {
                        let mut q = sqlx::query(sql.cells(table, chunk.len()));
                        for (k, t) in chunk {
                            q = q.bind(k.0).bind(k.1).bind(k.2).bind(k.3);
                            for v in totals_args(t) {
                                q = q.bind(v);
                            }
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                let outbox = placeholders($pg, sapphire::OUTBOX_INSERT);
                for o in receipts {
                    sqlx::query(&outbox)
                        .bind(&o.request_id)
                        .bind(&o.request_hash)
                        .bind(&o.owner)
                        .bind(&o.delegate)
                        .bind(&o.provider_id)
                        .bind(&o.model_id)
                        .bind(o.prompt_tokens)
                        .bind(o.completion_tokens)
                        .bind(o.timestamp_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }};
        }
        match self {
            Store::Sqlite(s) => {
                use sqlx::Connection as _;
                let mut held = s.writer.lock().await;
                let conn = match held.as_mut() {
                    Some(c) => c,
                    None => held.insert(s.pool.acquire().await?.detach()),
                };
                let written: Result<(), sqlx::Error> = async { write_batch!(conn, false) }.await;
                if written.is_err() {
                    *held = None;
                }
                written
            }
            Store::Postgres(s) => write_batch!(&s.pool, true),
        }
    }

    fn filter_sql(f: &Filter, source: Source, lo: i64, hi: i64) -> (String, Vec<Arg>) {
        let (time, model, key) = match source {
            Source::Records => (
                "started_at",
                "upstream_model",
                "COALESCE(client_key_id, '')",
            ),
            _ => ("bucket_start", "model", "client_key_id"),
        };
        let mut sql = format!("{time} >= ? AND {time} < ?");
        let mut args = vec![Arg::I(lo), Arg::I(hi)];
        for (col, v) in [("provider", &f.provider), (model, &f.model), (key, &f.key)] {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                args.push(Arg::T(v.clone()));
            }
        }
        (sql, args)
    }

    /// Totals over `f`'s range, grouped (`None` = one group with key ""). Group keys are text: the
    /// bucket start in ms for hour/day, else the provider, model or key ('' = no key).
    pub async fn aggregate(
        &self,
        f: &Filter,
        group: Option<GroupBy>,
    ) -> Result<Vec<(String, Totals)>, sqlx::Error> {
        use super::time::{DAY_MS, HOUR_MS};
        let mut merged: HashMap<String, Totals> = HashMap::new();
        for (source, lo, hi) in plan(f.start_ms, f.end_ms, group != Some(GroupBy::Hour)) {
            let (table, time, model, key, sums) = match source {
                Source::Daily => (
                    "usage_daily",
                    "bucket_start",
                    "model",
                    "client_key_id",
                    ROLLUP_SUMS,
                ),
                Source::Hourly => (
                    "usage_hourly",
                    "bucket_start",
                    "model",
                    "client_key_id",
                    ROLLUP_SUMS,
                ),
                Source::Records => (
                    "usage_records",
                    "started_at",
                    "upstream_model",
                    "COALESCE(client_key_id, '')",
                    RECORD_SUMS,
                ),
            };
            let g = match group {
                None => "CAST('' AS TEXT)".to_string(),
                Some(GroupBy::Hour) => format!("CAST(({time} / {HOUR_MS}) * {HOUR_MS} AS TEXT)"),
                Some(GroupBy::Day) => format!("CAST(({time} / {DAY_MS}) * {DAY_MS} AS TEXT)"),
                Some(GroupBy::Provider) => "provider".to_string(),
                Some(GroupBy::Model) => model.to_string(),
                Some(GroupBy::Key) => key.to_string(),
            };
            let (cond, args) = Self::filter_sql(f, source, lo, hi);
            let group_clause = if group.is_some() { " GROUP BY g" } else { "" };
            let sql = format!("SELECT {g} AS g, {sums} FROM {table} WHERE {cond}{group_clause}");
            let part: Vec<(String, Totals)> = dispatch!(self, |pool, pg| {
                let sql = placeholders(pg, &sql);
                let rows = bind_args!(sqlx::query(&sql), &args).fetch_all(pool).await?;
                let mut v = Vec::with_capacity(rows.len());
                for r in &rows {
                    v.push((r.try_get::<String, _>("g")?, totals_from_row(r)?));
                }
                v
            });
            for (k, t) in part {
                if t.requests != 0 || t.cost.total != 0 {
                    merged.entry(k).or_default().add(&t);
                }
            }
        }
        let mut out: Vec<(String, Totals)> = merged.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        if group.is_none() && out.is_empty() {
            out.push((String::new(), Totals::default()));
        }
        Ok(out)
    }

    /// Raw rows in `f`'s range, newest first.
    pub async fn records(
        &self,
        f: &Filter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Row>, sqlx::Error> {
        let (cond, mut args) = Self::filter_sql(f, Source::Records, f.start_ms, f.end_ms);
        args.push(Arg::I(limit));
        args.push(Arg::I(offset));
        self.select_rows(
            format!("{cond} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"),
            args,
        )
        .await
    }

    /// Rows in `f`'s range with id > `after_id`, by id (stable paging while rows are rewritten).
    async fn records_after(
        &self,
        f: &Filter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Row>, sqlx::Error> {
        let (cond, mut args) = Self::filter_sql(f, Source::Records, f.start_ms, f.end_ms);
        args.push(Arg::I(after_id));
        args.push(Arg::I(limit));
        self.select_rows(format!("{cond} AND id > ? ORDER BY id LIMIT ?"), args)
            .await
    }

    async fn select_rows(&self, tail: String, args: Vec<Arg>) -> Result<Vec<Row>, sqlx::Error> {
        let sql = format!("SELECT id, {ROW_COLUMNS} FROM usage_records WHERE {tail}");
        dispatch!(self, |pool, pg| {
            let sql = placeholders(pg, &sql);
            let rows = bind_args!(sqlx::query(&sql), &args).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let priced: bool = r.try_get("priced")?;
                let nano = |c: &str| {
                    r.try_get::<Option<i64>, _>(c)
                        .map(Option::unwrap_or_default)
                };
                let cost = if priced {
                    Some(NanoCost {
                        input: nano("cost_input")?,
                        output: nano("cost_output")?,
                        cache_read: nano("cost_cache_read")?,
                        cache_write: nano("cost_cache_write")?,
                        total: nano("cost_total")?,
                    })
                } else {
                    None
                };
                out.push(Row {
                    id: r.try_get("id")?,
                    request_id: r.try_get("request_id")?,
                    attempt: r.try_get("attempt")?,
                    started_at: r.try_get("started_at")?,
                    client_key_id: r.try_get("client_key_id")?,
                    client_dialect: r.try_get("client_dialect")?,
                    requested_model: r.try_get("requested_model")?,
                    provider: r.try_get("provider")?,
                    upstream_model: r.try_get("upstream_model")?,
                    status: r.try_get("status")?,
                    error_kind: r.try_get("error_kind")?,
                    error: r.try_get("error")?,
                    input_tokens: r.try_get("input_tokens")?,
                    output_tokens: r.try_get("output_tokens")?,
                    cache_read_tokens: r.try_get("cache_read_tokens")?,
                    cache_write_tokens: r.try_get("cache_write_tokens")?,
                    reasoning_tokens: r.try_get("reasoning_tokens")?,
                    cost,
                    usage_estimated: r.try_get("usage_estimated")?,
                    streamed: r.try_get("streamed")?,
                    client_disconnected: r.try_get("client_disconnected")?,
                    first_byte_ms: r.try_get("first_byte_ms")?,
                    total_ms: r.try_get("total_ms")?,
                    payment_method: r.try_get("payment_method")?,
                    x402: match r.try_get::<Option<String>, _>("x402_amount_atomic")? {
                        None => None,
                        Some(amount_atomic) => Some(X402Paid {
                            amount_atomic,
                            amount_nano: r
                                .try_get::<Option<i64>, _>("x402_amount_nano")?
                                .unwrap_or_default(),
                            asset: r
                                .try_get::<Option<String>, _>("x402_asset")?
                                .unwrap_or_default(),
                            network: r
                                .try_get::<Option<String>, _>("x402_network")?
                                .unwrap_or_default(),
                            payer: r
                                .try_get::<Option<String>, _>("x402_payer")?
                                .unwrap_or_default(),
                            payee: r
                                .try_get::<Option<String>, _>("x402_payee")?
                                .unwrap_or_default(),
                            tx_hash: r.try_get("x402_tx_hash")?,
                        }),
                    },
                });
            }
            Ok(out)
        })
    }

    pub async fn count_records(&self) -> Result<i64, sqlx::Error> {
        dispatch!(self, |pool, _pg| {
            sqlx::query_scalar::<_, i64>("SELECT CAST(COUNT(*) AS BIGINT) FROM usage_records")
                .fetch_one(pool)
                .await
        })
    }

    /// This database's id: `proposed` if no instance stored one before, else the stored one (the
    /// first writer wins, so every instance over the database reads the same).
    pub async fn deployment_id(&self, proposed: &str) -> Result<String, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query(&placeholders(
                pg,
                "INSERT INTO deployment (k, id) VALUES (1, ?) ON CONFLICT (k) DO NOTHING",
            ))
            .bind(proposed)
            .execute(pool)
            .await?;
            sqlx::query_scalar::<_, String>("SELECT id FROM deployment WHERE k = 1")
                .fetch_one(pool)
                .await
        })
    }

    /// The stored monthly cap: (amount in nano-USD or None, alert only).
    pub async fn get_budget(&self) -> Result<(Option<i64>, bool), sqlx::Error> {
        dispatch!(self, |pool, _pg| {
            let row = sqlx::query("SELECT amount_nano, alert_only FROM budget WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            match row {
                Some(r) => Ok((r.try_get("amount_nano")?, r.try_get("alert_only")?)),
                None => Ok((None, false)),
            }
        })
    }

    pub async fn set_budget(
        &self,
        amount_nano: Option<i64>,
        alert_only: bool,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query(&placeholders(
                pg,
                "INSERT INTO budget (id, amount_nano, alert_only, updated_at) VALUES (1, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET amount_nano = excluded.amount_nano, \
                 alert_only = excluded.alert_only, updated_at = excluded.updated_at",
            ))
            .bind(amount_nano)
            .bind(alert_only)
            .bind(super::time::now_ms())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Cost (nano-USD) recorded since `since_ms`, from the daily rollups (`since_ms` is a day start).
    pub async fn spent_since(&self, since_ms: i64) -> Result<i64, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query_scalar::<_, i64>(&placeholders(
                pg,
                "SELECT CAST(COALESCE(SUM(cost_total), 0) AS BIGINT) FROM usage_daily WHERE bucket_start >= ?",
            ))
            .bind(since_ms)
            .fetch_one(pool)
            .await
        })
    }

    /// Recomputes the cost of every row started in `[start, end)` from its token counts with
    /// `price`, and moves the rollups by the difference, one transaction per page of rows. Rows whose
    /// model `price` does not know are left unchanged. Returns (rows examined, rows changed).
    pub async fn reprice(
        &self,
        start: i64,
        end: i64,
        price: &dyn Fn(&str, &str) -> Option<Price>,
    ) -> anyhow::Result<(u64, u64)> {
        const PAGE: i64 = 1000;
        let (mut examined, mut changed) = (0u64, 0u64);
        let mut after_id = 0i64;
        loop {
            let f = Filter {
                start_ms: start,
                end_ms: end,
                ..Filter::default()
            };
            let page = self.records_after(&f, after_id, PAGE).await?;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            let mut updates = Vec::new();
            let mut deltas = Vec::new();
            for r in &page {
                examined += 1;
                // A model with no current price keeps what it has: a catalog gap must not erase
                // costs that were known when the request ran.
                let Some(p) = price(&r.provider, &r.upstream_model) else {
                    continue;
                };
                let n = NanoCost::from_cost(&p.cost(&r.usage()));
                let new = Some(n);
                if new == r.cost {
                    continue;
                }
                changed += 1;
                let old = r.cost.unwrap_or_default();
                let delta = Totals {
                    cost: NanoCost {
                        input: n.input - old.input,
                        output: n.output - old.output,
                        cache_read: n.cache_read - old.cache_read,
                        cache_write: n.cache_write - old.cache_write,
                        total: n.total - old.total,
                    },
                    unpriced: -i64::from(r.cost.is_none()),
                    ..Totals::default()
                };
                let mut moved = r.clone();
                moved.cost = new;
                deltas.push((moved.clone(), delta));
                updates.push(moved);
            }
            if !updates.is_empty() {
                self.apply_reprice(&updates, &deltas).await?;
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        Ok((examined, changed))
    }

    async fn apply_reprice(
        &self,
        rows: &[Row],
        deltas: &[(Row, Totals)],
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let mut tx = pool.begin().await?;
            let upd = placeholders(
                pg,
                "UPDATE usage_records SET cost_input = ?, cost_output = ?, cost_cache_read = ?, \
                 cost_cache_write = ?, cost_total = ?, priced = ? WHERE id = ?",
            );
            for r in rows {
                let c = r.cost;
                sqlx::query(&upd)
                    .bind(c.map(|c| c.input))
                    .bind(c.map(|c| c.output))
                    .bind(c.map(|c| c.cache_read))
                    .bind(c.map(|c| c.cache_write))
                    .bind(c.map(|c| c.total))
                    .bind(c.is_some())
                    .bind(r.id)
                    .execute(&mut *tx)
                    .await?;
            }
            // One statement per row: several rows may move the same cell.
            for (table, bucket) in [hour_start as fn(i64) -> i64, day_start]
                .into_iter()
                .enumerate()
            {
                let sql = BatchSql::get(pg).cells(table, 1);
                for (r, d) in deltas {
                    let mut q = sqlx::query(sql)
                        .bind(bucket(r.started_at))
                        .bind(&r.provider)
                        .bind(&r.upstream_model)
                        .bind(r.client_key_id.clone().unwrap_or_default());
                    for v in totals_args(d) {
                        q = q.bind(v);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            tx.commit().await
        })
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    #[test]
    fn every_batch_length_uses_the_same_few_statement_sizes() {
        for n in 0..700usize {
            let rows: Vec<usize> = (0..n).collect();
            for sizes in [&CHUNK_SIZES[..], &CELL_CHUNKS[..]] {
                let chunks = fixed_chunks(&rows, sizes);
                assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), n);
                assert!(chunks.iter().all(|c| sizes.contains(&c.len())));
                assert_eq!(chunks.concat(), rows, "order kept");
            }
        }
    }
}
