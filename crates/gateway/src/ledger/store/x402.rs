//! The x402 spend book in the ledger database (`x402_payments`, migration 0003): reservations are
//! taken in one conditional INSERT, so the check against the caps and the reservation are one
//! atomic step. SQLite runs a writing statement under its single write lock; Postgres takes a
//! transaction-scoped advisory lock first, so gateways sharing one database serialise too.

use super::{Store, placeholders};
use crate::accounting::{SpendBook, SpendEntry, SpendRefused};
use crate::ledger::time::{day_start, month_start, now_ms};
use futures_util::future::BoxFuture;

/// Serialises reservations between gateway instances on one Postgres.
const SPEND_LOCK: i64 = 0x656b_6169_7834_3032; // "ekaix402"

const SPENT: &str = "(SELECT CAST(COALESCE(SUM(amount_nano), 0) AS BIGINT) FROM x402_payments \
     WHERE state <> 'released' AND created_at >= ?)";

impl Store {
    /// Reserved-or-settled nano-USD since `since_ms`.
    pub async fn x402_spent_since(&self, since_ms: i64) -> Result<i64, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query_scalar::<_, i64>(&placeholders(pg, &format!("SELECT {SPENT}")))
                .bind(since_ms)
                .fetch_one(pool)
                .await
        })
    }

    async fn x402_reserve(
        &self,
        e: &SpendEntry,
        day_cap: i64,
        month_cap: i64,
        at: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "INSERT INTO x402_payments (id, request_id, created_at, state, amount_atomic, amount_nano, \
             asset, network, payer, payee, updated_at) \
             SELECT ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ? \
             WHERE {SPENT} + ? <= ? AND {SPENT} + ? <= ?"
        );
        let p = &e.payment;
        dispatch!(self, |pool, pg| {
            let sql = placeholders(pg, &sql);
            let mut tx = pool.begin().await?;
            if pg {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SPEND_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query(&sql)
                .bind(&e.id)
                .bind(&e.request_id)
                .bind(at)
                .bind(&p.amount_atomic)
                .bind(e.amount_nano)
                .bind(&p.asset)
                .bind(&p.network)
                .bind(&p.payer)
                .bind(&p.payee)
                .bind(at)
                .bind(day_start(at))
                .bind(e.amount_nano)
                .bind(day_cap)
                .bind(month_start(at))
                .bind(e.amount_nano)
                .bind(month_cap)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(done == 1)
        })
    }

    async fn x402_finish(
        &self,
        id: &str,
        settled: bool,
        tx_hash: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query(&placeholders(
                pg,
                "UPDATE x402_payments SET state = ?, tx_hash = ?, updated_at = ? WHERE id = ?",
            ))
            .bind(if settled { "settled" } else { "released" })
            .bind(tx_hash)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

impl SpendBook for Store {
    fn reserve<'a>(
        &'a self,
        e: &'a SpendEntry,
        per_day_nano: Option<i64>,
        per_month_nano: Option<i64>,
        now: i64,
    ) -> BoxFuture<'a, Result<Result<(), SpendRefused>, String>> {
        Box::pin(async move {
            let day_cap = per_day_nano.unwrap_or(i64::MAX);
            let month_cap = per_month_nano.unwrap_or(i64::MAX);
            let ok = self
                .x402_reserve(e, day_cap, month_cap, now)
                .await
                .map_err(|err| err.to_string())?;
            if ok {
                return Ok(Ok(()));
            }
            // Refused: read which cap (for the message only; the decision was atomic).
            let month = self
                .x402_spent_since(month_start(now))
                .await
                .map_err(|err| err.to_string())?;
            if month.saturating_add(e.amount_nano) > month_cap {
                return Ok(Err(SpendRefused::Month {
                    cap_nano: month_cap,
                    spent_nano: month,
                }));
            }
            let day = self
                .x402_spent_since(day_start(now))
                .await
                .map_err(|err| err.to_string())?;
            Ok(Err(SpendRefused::Day {
                cap_nano: day_cap,
                spent_nano: day,
            }))
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        settled: bool,
        tx: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.x402_finish(id, settled, tx)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
