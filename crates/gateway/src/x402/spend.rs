//! The spend book kept in memory, for a gateway without a ledger database: the caps hold within
//! this process and reset when it restarts (the ledger's `Store` is the persisted book).

use crate::accounting::{SpendBook, SpendEntry, SpendRefused};
use crate::ledger::time::{day_start, month_start};
use futures_util::future::BoxFuture;
use std::sync::Mutex;

#[derive(Debug)]
struct Entry {
    id: String,
    at_ms: i64,
    nano: i64,
    released: bool,
}

#[derive(Debug, Default)]
pub struct MemoryBook {
    entries: Mutex<Vec<Entry>>,
}

impl MemoryBook {
    pub fn new() -> Self {
        Self::default()
    }
}

fn spent(entries: &[Entry], since: i64) -> i64 {
    entries
        .iter()
        .filter(|e| !e.released && e.at_ms >= since)
        .map(|e| e.nano)
        .sum()
}

impl SpendBook for MemoryBook {
    fn reserve<'a>(
        &'a self,
        e: &'a SpendEntry,
        per_day_nano: Option<i64>,
        per_month_nano: Option<i64>,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Result<(), SpendRefused>, String>> {
        Box::pin(async move {
            let mut entries = self
                .entries
                .lock()
                .map_err(|_| "the spend book's lock is poisoned".to_string())?;
            let month = spent(&entries, month_start(now_ms));
            if let Some(cap) = per_month_nano
                && month.saturating_add(e.amount_nano) > cap
            {
                return Ok(Err(SpendRefused::Month {
                    cap_nano: cap,
                    spent_nano: month,
                }));
            }
            let day = spent(&entries, day_start(now_ms));
            if let Some(cap) = per_day_nano
                && day.saturating_add(e.amount_nano) > cap
            {
                return Ok(Err(SpendRefused::Day {
                    cap_nano: cap,
                    spent_nano: day,
                }));
            }
            // Older than this month: never counted again.
            let keep_from = month_start(now_ms);
            entries.retain(|x| x.at_ms >= keep_from);
            entries.push(Entry {
                id: e.id.clone(),
                at_ms: now_ms,
                nano: e.amount_nano,
                released: false,
            });
            Ok(Ok(()))
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        settled: bool,
        _tx: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut entries = self
                .entries
                .lock()
                .map_err(|_| "the spend book's lock is poisoned".to_string())?;
            if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
                e.released = !settled;
            }
            Ok(())
        })
    }
}
