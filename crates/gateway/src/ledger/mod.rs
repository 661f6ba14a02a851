//! The usage ledger: every [`UsageRecord`] the proxy produces becomes one row in SQLite or Postgres.
//!
//! Request handlers never wait on the database: [`Ledger`] implements [`Sink`] by handing the record
//! to a bounded queue; the writer task (owned here, joined by [`Ledger::shutdown`]) writes batches,
//! each one transaction with its rollups. When the queue is full the configured [`OnFull`] policy
//! applies, and every record that still cannot be queued is counted and logged, never lost silently.

pub mod budget;
pub mod money;
pub mod query;
pub mod store;
pub mod time;
mod writer;

use crate::accounting::{Sink, UsageRecord, log_record, trace_record};
use crate::config::{LedgerConfig, OnFull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

pub use budget::{Budget, BudgetExceeded, Reservation};
pub use store::Store;

/// How long `on_full = "block"` may hold a submitter before the record is counted as dropped.
/// Short on purpose: the submitter is a request's task, and the stall is the backpressure.
const BLOCK_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct Counters {
    /// Records handed to the queue.
    pub queued: AtomicU64,
    /// Records committed to the database.
    pub written: AtomicU64,
    /// Records refused because the queue stayed full (or the ledger was shut down).
    pub dropped: AtomicU64,
    /// Submissions that had to wait for room (`on_full = "block"`).
    pub blocked: AtomicU64,
    /// Records lost because their batch could not be written after retries (also logged in full).
    pub failed: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    pub queued: u64,
    pub written: u64,
    pub dropped: u64,
    pub blocked: u64,
    pub failed: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            queued: self.queued.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    /// None once shutdown has begun: dropping the sender is what lets the writer drain and stop.
    tx: RwLock<Option<mpsc::Sender<UsageRecord>>>,
    on_full: OnFull,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The ledger handle. Cheap to clone; every clone submits to the same writer.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    store: Store,
    budget: Budget,
}

/// What [`Ledger::shutdown`] observed.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    pub counters: CounterSnapshot,
    /// False when the deadline passed before the writer finished (rows still queued are lost).
    pub drained: bool,
}

impl Ledger {
    /// Opens the database (creating and migrating it) and starts the writer.
    pub async fn open(cfg: &LedgerConfig) -> anyhow::Result<Ledger> {
        let store = Store::open(&cfg.database_url).await?;
        Self::with_store(store, cfg).await
    }

    pub async fn with_store(store: Store, cfg: &LedgerConfig) -> anyhow::Result<Ledger> {
        let budget = Budget::load(&store).await?;
        let (tx, rx) = mpsc::channel(cfg.queue_size.max(1));
        let counters = Arc::new(Counters::default());
        let w = writer::Writer {
            rx,
            store: store.clone(),
            batch_size: cfg.batch_size.max(1),
            flush: cfg.flush,
            counters: Arc::clone(&counters),
            budget: budget.clone(),
        };
        // Owned: the handle is kept in `Shared::writer` and joined by `Ledger::shutdown`.
        #[allow(clippy::disallowed_methods)]
        let handle = tokio::spawn(w.run());
        Ok(Ledger {
            shared: Arc::new(Shared {
                tx: RwLock::new(Some(tx)),
                on_full: cfg.on_full,
                counters,
                writer: Mutex::new(Some(handle)),
            }),
            store,
            budget,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// Closes the queue, lets the writer write everything already queued, and waits for it (up to
    /// `deadline`). Records submitted afterwards are counted as dropped and logged.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        if let Ok(mut tx) = self.shared.tx.write() {
            tx.take();
        }
        let handle = self.shared.writer.lock().ok().and_then(|mut h| h.take());
        let drained = match handle {
            Some(h) => match tokio::time::timeout(deadline, h).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    tracing::error!("ledger writer failed: {e}");
                    false
                }
                Err(_) => false,
            },
            None => true,
        };
        ShutdownReport {
            counters: self.counters(),
            drained,
        }
    }

    fn dropped(&self, r: &UsageRecord, why: &str) {
        let n = self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            request_id = %r.request_id,
            dropped_total = n,
            "ledger: usage record not stored ({why}); it is logged below instead"
        );
        log_record(r);
    }
}

impl Sink for Ledger {
    fn submit(&self, record: UsageRecord) {
        trace_record(&record);
        let tx = match self.shared.tx.read() {
            Ok(guard) => guard.clone(),
            Err(_) => None,
        };
        let Some(tx) = tx else {
            self.dropped(&record, "the ledger is shut down");
            return;
        };
        let mut record = match tx.try_send(record) {
            Ok(()) => {
                self.shared.counters.queued.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(TrySendError::Closed(r)) => {
                self.dropped(&r, "the writer has stopped");
                return;
            }
            Err(TrySendError::Full(r)) => r,
        };
        if self.shared.on_full == OnFull::Block {
            self.shared.counters.blocked.fetch_add(1, Ordering::Relaxed);
            // `submit` is synchronous and may run on a runtime worker (or in a Drop), where
            // `blocking_send` would panic; polling with short sleeps is the bounded wait.
            let until = Instant::now() + BLOCK_TIMEOUT;
            while Instant::now() < until {
                std::thread::sleep(Duration::from_micros(500));
                record = match tx.try_send(record) {
                    Ok(()) => {
                        self.shared.counters.queued.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(TrySendError::Closed(r)) => {
                        self.dropped(&r, "the writer has stopped");
                        return;
                    }
                    Err(TrySendError::Full(r)) => r,
                };
            }
        }
        self.dropped(&record, "the ledger queue is full");
    }
}
