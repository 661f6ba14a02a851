//! The batching writer: the one task that writes rows. Batches close at `batch_size` records or
//! `flush` after their first record, whichever comes first; each batch is one transaction.

use super::Counters;
use super::budget::Budget;
use super::store::{OutboxRow, Row, Store};
use crate::accounting::{UsageRecord, log_record};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// Waits between attempts at a failed batch (a locked SQLite file, a Postgres failover).
const RETRY: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];

/// How often the budget re-reads the month-to-date spend and cap (other instances write too).
const BUDGET_REFRESH: Duration = Duration::from_secs(10);

pub(super) struct Writer {
    pub rx: mpsc::Receiver<UsageRecord>,
    pub store: Store,
    pub batch_size: usize,
    pub flush: Duration,
    pub counters: Arc<Counters>,
    pub budget: Budget,
}

impl Writer {
    pub async fn run(mut self) {
        let mut batch: Vec<UsageRecord> = Vec::with_capacity(self.batch_size);
        let mut last_refresh = tokio::time::Instant::now();
        loop {
            let first = tokio::time::timeout(BUDGET_REFRESH, self.rx.recv()).await;
            let closed = match first {
                Err(_) => {
                    self.refresh_budget(&mut last_refresh).await;
                    continue;
                }
                Ok(None) => true,
                Ok(Some(r)) => {
                    batch.push(r);
                    self.fill(&mut batch).await
                }
            };
            if !batch.is_empty() {
                self.write(std::mem::take(&mut batch)).await;
            }
            if closed {
                break;
            }
            if last_refresh.elapsed() >= BUDGET_REFRESH {
                self.refresh_budget(&mut last_refresh).await;
            }
        }
    }

    /// Adds records until the batch is full or `flush` has passed; true when the queue is closed
    /// and empty.
    async fn fill(&mut self, batch: &mut Vec<UsageRecord>) -> bool {
        let deadline = tokio::time::Instant::now() + self.flush;
        while batch.len() < self.batch_size {
            let room = self.batch_size - batch.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(batch, room)).await {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    async fn write(&self, batch: Vec<UsageRecord>) {
        let rows: Vec<Row> = batch.iter().map(Row::from_record).collect();
        let receipts: Vec<OutboxRow> = batch.iter().filter_map(OutboxRow::from_record).collect();
        let mut attempt = 0;
        loop {
            match self
                .store
                .insert_batch_with_receipts(&rows, &receipts)
                .await
            {
                Ok(()) => {
                    self.counters
                        .written
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    self.budget.on_written(&rows);
                    return;
                }
                Err(e) if attempt < RETRY.len() => {
                    tracing::warn!(
                        rows = rows.len(),
                        "ledger: writing a batch failed, retrying: {e}"
                    );
                    tokio::time::sleep(RETRY[attempt]).await;
                    attempt += 1;
                }
                Err(e) => {
                    self.counters
                        .failed
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    tracing::error!(
                        rows = rows.len(),
                        "ledger: a batch could not be written and is lost from the database: {e}; its records follow in the log"
                    );
                    for r in &batch {
                        log_record(r);
                    }
                    return;
                }
            }
        }
    }

    async fn refresh_budget(&self, last: &mut tokio::time::Instant) {
        *last = tokio::time::Instant::now();
        if let Err(e) = self.budget.refresh(&self.store).await {
            tracing::warn!("ledger: refreshing the budget failed: {e}");
        }
    }
}
