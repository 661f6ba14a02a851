//! What the gateway knows about each upstream attempt once it is over, and the seam the usage
//! ledger plugs into.
//!
//! A [`Record`] guard is created per attempt and submits its [`UsageRecord`] to the [`Sink`] exactly
//! once: by `finish`/`fail`, or by `Drop` when the request's future was dropped because the client hung
//! up (then it is marked `client_disconnected`). Sinks must not block: the ledger's sink only hands
//! the record to its batching writer.

use crate::catalog::Cost;
use ekai_wire::canonical::{Dialect, Usage};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One row of the ledger: one attempt of one request.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub request_id: String,
    /// 1 for the first upstream tried, 2 for the first fallback, …
    pub attempt: u32,
    pub started_at: SystemTime,
    /// The client key's id, once client keys exist.
    pub client_key_id: Option<String>,
    pub client_dialect: Dialect,
    pub requested_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub status: u16,
    /// Canonical error kind (`rate_limit_error`, `timeout_error`, …) when the attempt failed.
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub usage: Usage,
    /// The provider reported no usage; the counts are the gateway's estimate.
    pub usage_estimated: bool,
    /// None when the catalog has no price for this model on this provider (never a silent $0).
    pub cost: Option<Cost>,
    pub streamed: bool,
    pub client_disconnected: bool,
    pub first_byte: Option<Duration>,
    pub total: Duration,
    /// `api_key`, or `x402` when the attempt paid per request.
    pub payment_method: &'static str,
    /// Sapphire mode: who the on-chain usage receipt names (a completed attempt with parties gets
    /// a receipt in the outbox, written with its ledger row).
    pub receipt: Option<Parties>,
    /// What an x402 attempt paid (None for key-paid attempts).
    pub payment: Option<Box<Payment>>,
}

/// One x402 payment as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The signed `value`, in the asset's smallest unit (decimal text: it is a uint256).
    pub amount_atomic: String,
    /// The same in nano-USD (the asset is a 6-decimal USD stablecoin).
    pub amount_nano: i64,
    pub asset: String,
    /// As the relay named it (`base`, `eip155:8453`, …).
    pub network: String,
    pub payer: String,
    pub payee: String,
    /// From the settlement header; None when the relay sent none.
    pub tx_hash: Option<String>,
    /// x402 protocol version (1 or 2).
    pub version: u8,
}

/// One payment's reservation against the x402 spending caps.
#[derive(Debug, Clone)]
pub struct SpendEntry {
    /// The authorization nonce (0x-hex): unique per signature.
    pub id: String,
    pub request_id: String,
    pub amount_nano: i64,
    pub payment: Payment,
}

/// Why a reservation was refused: the cap and what is already spent or reserved in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendRefused {
    Day { cap_nano: i64, spent_nano: i64 },
    Month { cap_nano: i64, spent_nano: i64 },
}

/// The persisted x402 spend: reservations are taken atomically BEFORE a payment is signed, so
/// concurrent requests (and several gateways on one Postgres) never sign past a cap together.
pub trait SpendBook: Send + Sync {
    /// Reserves `e` when the UTC day's and month's reserved-or-settled totals plus it stay within
    /// the caps (None = no cap). `Ok(Err(_))` is a refusal, `Err` a storage failure.
    fn reserve<'a>(
        &'a self,
        e: &'a SpendEntry,
        per_day_nano: Option<i64>,
        per_month_nano: Option<i64>,
        now_ms: i64,
    ) -> futures_util::future::BoxFuture<'a, Result<Result<(), SpendRefused>, String>>;

    /// Settled (the money moved, `tx` from the settlement header) or released (no settlement
    /// happened: the reservation no longer counts).
    fn finish<'a>(
        &'a self,
        id: &'a str,
        settled: bool,
        tx: Option<&'a str>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>>;
}

/// The two addresses of a Sapphire receipt: `owner` pays, `delegate` called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    pub owner: [u8; 20],
    pub delegate: [u8; 20],
}

/// Where finished records go. Implementations must return at once.
pub trait Sink: Send + Sync {
    fn submit(&self, record: UsageRecord);
}

/// Spending control: a request is admitted with its expected cost held, and the hold is settled
/// with the actual cost when its record is written. Implemented by the ledger's monthly budget.
pub trait Budget: Send + Sync {
    /// Err carries the message the client sees.
    fn admit(&self, expected: rust_decimal::Decimal) -> Result<Box<dyn Hold>, String>;
}

/// What `TokenLimits::reserve` returns.
pub type Reserving<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Box<dyn Hold>, crate::error::GatewayError>>
            + Send
            + 'a,
    >,
>;

/// A client's token limits: a request's estimated tokens are reserved at admission (Err is the
/// refusal to send); the hold gives them back when the request's record is written, which is
/// when its real tokens are counted.
pub trait TokenLimits: Send + Sync {
    fn reserve(&self, estimated_tokens: u64) -> Reserving<'_>;
}

/// A client's budget caps shared by every instance (Redis): the request's expected cost is
/// reserved where all instances see it, beside the ledger's own (per-process) reservation.
pub trait SharedBudget: Send + Sync {
    fn reserve(&self, expected: rust_decimal::Decimal) -> Reserving<'_>;
}

/// An admitted request's expected cost; dropping it unsettled releases it.
pub trait Hold: Send {
    fn settle(self: Box<Self>, actual: Option<rust_decimal::Decimal>);
}

/// Several holds settled together (the gateway's cap and the client's).
pub struct Holds(Vec<Box<dyn Hold>>);

impl Holds {
    /// None for no hold, the hold itself for one, a `Holds` for several.
    pub fn combine(mut holds: Vec<Box<dyn Hold>>) -> Option<Box<dyn Hold>> {
        match holds.len() {
            0 => None,
            1 => holds.pop(),
            _ => Some(Box::new(Holds(holds))),
        }
    }
}

impl Hold for Holds {
    fn settle(self: Box<Self>, actual: Option<rust_decimal::Decimal>) {
        for h in self.0 {
            h.settle(actual);
        }
    }
}

/// The sink used when no ledger is configured: a structured log line per record.
pub struct LogSink;

impl Sink for LogSink {
    fn submit(&self, r: UsageRecord) {
        log_record(&r);
    }
}

/// One structured line per record, at the given level (the field list is written once).
macro_rules! record_event {
    ($level:expr, $r:expr) => {{
        let r: &UsageRecord = $r;
        tracing::event!(
            target: "ekai::usage",
            $level,
            request_id = %r.request_id,
            attempt = r.attempt,
            dialect = r.client_dialect.as_str(),
            model = %r.requested_model,
            provider = %r.provider,
            upstream_model = %r.upstream_model,
            status = r.status,
            error = r.error.as_deref().unwrap_or(""),
            input_tokens = r.usage.input_tokens,
            output_tokens = r.usage.output_tokens,
            cache_read_tokens = r.usage.cache_read_tokens,
            cache_write_tokens = r.usage.cache_write_tokens,
            reasoning_tokens = r.usage.reasoning_tokens,
            usage_estimated = r.usage_estimated,
            cost_usd = %r.cost.map(|c| c.total.to_string()).unwrap_or_else(|| "unpriced".into()),
            streamed = r.streamed,
            client_disconnected = r.client_disconnected,
            first_byte_ms = r.first_byte.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
            total_ms = r.total.as_secs_f64() * 1000.0,
            "request finished"
        );
    }};
}

/// The record as an info line: the only copy of it when there is no ledger or the ledger lost it.
pub fn log_record(r: &UsageRecord) {
    record_event!(tracing::Level::INFO, r);
}

/// The record as a debug line: the ledger already keeps it (`RUST_LOG=ekai::usage=debug` shows it).
/// At info this costs nothing on the hot path; formatting ~20 fields per request was measured at
/// 20–30% of the gateway's CPU.
pub fn trace_record(r: &UsageRecord) {
    record_event!(tracing::Level::DEBUG, r);
}

/// The guard that makes sure an attempt is accounted exactly once.
pub struct Record {
    pub data: UsageRecord,
    started: Instant,
    sink: Arc<dyn Sink>,
    written: bool,
    /// Prices usage when it is set (None = unpriced).
    price: Option<crate::catalog::Price>,
    /// The request's budget hold, settled with this attempt's cost.
    hold: Option<Box<dyn Hold>>,
}

impl Record {
    pub fn new(
        data: UsageRecord,
        price: Option<crate::catalog::Price>,
        sink: Arc<dyn Sink>,
        started: Instant,
    ) -> Self {
        Record {
            data,
            started,
            sink,
            written: false,
            price,
            hold: None,
        }
    }

    /// When this attempt started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// This attempt carries the request's cost: settle the budget hold with it.
    pub fn attach_hold(&mut self, hold: Option<Box<dyn Hold>>) {
        self.hold = hold;
    }

    /// Sets the usage reported by the provider (or estimated, when `estimated`), and its cost.
    pub fn set_usage(&mut self, usage: Usage, estimated: bool) {
        self.data.usage = usage;
        self.data.usage_estimated = estimated;
        self.data.cost = self.price.as_ref().map(|p| p.cost(&usage));
    }

    /// The attempt ended normally (whatever its status).
    pub fn finish(mut self) {
        self.write();
    }

    /// The attempt ended with an error before any response body reached the client.
    pub fn fail(mut self, status: u16, kind: &str, message: &str) {
        self.data.status = status;
        self.data.error_kind = Some(kind.to_string());
        self.data.error = Some(message.to_string());
        self.write();
    }

    fn write(&mut self) {
        if self.written {
            return;
        }
        self.written = true;
        self.data.total = self.started.elapsed();
        if let Some(h) = self.hold.take() {
            h.settle(self.data.cost.map(|c| c.total));
        }
        // Written once: move the record out, leaving an allocation-free husk behind.
        let husk = self.data.clone_scalars();
        self.sink.submit(std::mem::replace(&mut self.data, husk));
    }
}

impl UsageRecord {
    /// A copy of the fixed-size fields with every string empty (no allocation).
    fn clone_scalars(&self) -> UsageRecord {
        UsageRecord {
            request_id: String::new(),
            attempt: self.attempt,
            started_at: self.started_at,
            client_key_id: None,
            client_dialect: self.client_dialect,
            requested_model: String::new(),
            provider: String::new(),
            upstream_model: String::new(),
            status: self.status,
            error_kind: None,
            error: None,
            usage: self.usage,
            usage_estimated: self.usage_estimated,
            cost: self.cost,
            streamed: self.streamed,
            client_disconnected: self.client_disconnected,
            first_byte: self.first_byte,
            total: self.total,
            payment_method: self.payment_method,
            receipt: self.receipt,
            payment: None,
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.written {
            self.data.client_disconnected = true;
            self.write();
        }
    }
}

/// A sink that forwards every record to `inner` and also publishes it to live subscribers (the
/// dashboard's `/admin/stream`). Publishing never blocks: a subscriber that falls more than the
/// channel's capacity behind skips what it missed (`RecvError::Lagged`).
pub struct BroadcastSink {
    inner: Arc<dyn Sink>,
    tx: tokio::sync::broadcast::Sender<Arc<UsageRecord>>,
}

impl BroadcastSink {
    pub fn new(inner: Arc<dyn Sink>, capacity: usize) -> Self {
        let (tx, _) = tokio::sync::broadcast::channel(capacity.max(1));
        BroadcastSink { inner, tx }
    }

    /// The channel's sender: `subscribe()` on it for a live feed.
    pub fn sender(&self) -> tokio::sync::broadcast::Sender<Arc<UsageRecord>> {
        self.tx.clone()
    }
}

impl Sink for BroadcastSink {
    fn submit(&self, record: UsageRecord) {
        if self.tx.receiver_count() > 0 {
            // Err only when every receiver is gone in between: nothing to do.
            let _ = self.tx.send(Arc::new(record.clone()));
        }
        self.inner.submit(record);
    }
}
