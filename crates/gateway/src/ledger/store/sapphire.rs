//! Sapphire mode's tables (migration 0004): wallet sessions and the receipt outbox.

use super::{Store, placeholders};
use crate::accounting::UsageRecord;
use crate::sapphire::ids;
use alloy_primitives::Address;
use sqlx::Row as _;

/// A receipt waiting in (or sent from) the outbox. Hex fields are lower-case `0x…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub request_id: String,
    pub request_hash: String,
    pub owner: String,
    pub delegate: String,
    pub provider_id: String,
    pub model_id: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub timestamp_ms: i64,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub tx_hash: Option<String>,
    pub sent_at: Option<i64>,
    pub mined_at: Option<i64>,
    /// Transactions for it that reverted (each one burnt gas).
    pub reverts: i32,
    /// Set when it was given up after too many reverts: never sent again.
    pub given_up_at: Option<i64>,
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(b))
}

impl OutboxRow {
    /// The receipt of a completed attempt that names its parties (None otherwise: failures and
    /// requests outside Sapphire mode leave no receipt).
    pub fn from_record(r: &UsageRecord) -> Option<OutboxRow> {
        let p = r.receipt?;
        if !(200..300).contains(&r.status) || r.error_kind.is_some() {
            return None;
        }
        let ts = r
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let (owner, delegate) = (Address::from(p.owner), Address::from(p.delegate));
        let pid = ids::provider_id(&r.provider);
        let mid = ids::model_id(&r.requested_model);
        let hash = ids::request_hash(owner, delegate, pid, mid, ts);
        let tokens = |n: u64| i64::try_from(n.min(u64::from(u32::MAX))).unwrap_or(0);
        Some(OutboxRow {
            id: 0,
            request_id: r.request_id.clone(),
            request_hash: hex0x(hash.as_slice()),
            owner: hex0x(owner.as_slice()),
            delegate: hex0x(delegate.as_slice()),
            provider_id: hex0x(pid.as_slice()),
            model_id: hex0x(mid.as_slice()),
            prompt_tokens: tokens(r.usage.input_tokens),
            completion_tokens: tokens(r.usage.output_tokens),
            timestamp_ms: i64::try_from(ts).unwrap_or(i64::MAX),
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            tx_hash: None,
            sent_at: None,
            mined_at: None,
            reverts: 0,
            given_up_at: None,
        })
    }
}

/// A wallet session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub wallet: String,
    pub client_id: String,
    pub nonce: String,
    pub created_at: i64,
    pub expires_at: i64,
}

const OUTBOX_COLUMNS: &str = "id, request_id, request_hash, owner, delegate, provider_id, model_id, \
    prompt_tokens, completion_tokens, timestamp_ms, attempts, next_attempt_at, last_error, tx_hash, sent_at, mined_at, reverts, given_up_at";

pub(super) const OUTBOX_INSERT: &str = "INSERT INTO receipt_outbox (request_id, request_hash, owner, delegate, \
    provider_id, model_id, prompt_tokens, completion_tokens, timestamp_ms, attempts, next_attempt_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0) ON CONFLICT (request_hash) DO NOTHING";

fn outbox_from<R: sqlx::Row>(r: &R) -> Result<OutboxRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'q> sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    i32: for<'q> sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    String: for<'q> sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    Ok(OutboxRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        request_hash: r.try_get("request_hash")?,
        owner: r.try_get("owner")?,
        delegate: r.try_get("delegate")?,
        provider_id: r.try_get("provider_id")?,
        model_id: r.try_get("model_id")?,
        prompt_tokens: r.try_get("prompt_tokens")?,
        completion_tokens: r.try_get("completion_tokens")?,
        timestamp_ms: r.try_get("timestamp_ms")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        tx_hash: r.try_get("tx_hash")?,
        sent_at: r.try_get("sent_at")?,
        mined_at: r.try_get("mined_at")?,
        reverts: r.try_get("reverts")?,
        given_up_at: r.try_get("given_up_at")?,
    })
}

impl Store {
    /// Pending receipts whose next attempt is due, oldest first.
    pub async fn outbox_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        dispatch!(self, |pool, pg| {
            let rows = sqlx::query(&placeholders(
                pg,
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM receipt_outbox WHERE mined_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?"
                ),
            ))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(outbox_from).collect()
        })
    }

    /// Every receipt (tests, operators), oldest first.
    pub async fn outbox_all(&self) -> Result<Vec<OutboxRow>, sqlx::Error> {
        dispatch!(self, |pool, _pg| {
            let rows = sqlx::query(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM receipt_outbox ORDER BY id"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(outbox_from).collect()
        })
    }

    /// (pending, mined, given up) counts.
    pub async fn outbox_counts(&self) -> Result<(i64, i64, i64), sqlx::Error> {
        dispatch!(self, |pool, _pg| {
            let r = sqlx::query(
                "SELECT CAST(COALESCE(SUM(CASE WHEN mined_at IS NULL AND given_up_at IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
                 CAST(COALESCE(SUM(CASE WHEN mined_at IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS mined, \
                 CAST(COALESCE(SUM(CASE WHEN given_up_at IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS given_up FROM receipt_outbox",
            )
            .fetch_one(pool)
            .await?;
            Ok((
                r.try_get("pending")?,
                r.try_get("mined")?,
                r.try_get("given_up")?,
            ))
        })
    }

    /// Puts given-up receipts back in the queue (all, or the one with `request_hash`), their
    /// reverts forgotten: sent at the sender's next round. How many were re-queued.
    pub async fn outbox_requeue(&self, request_hash: Option<&str>) -> Result<u64, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let sql = match request_hash {
                Some(_) => {
                    "UPDATE receipt_outbox SET given_up_at = NULL, reverts = 0, next_attempt_at = 0 \
                     WHERE given_up_at IS NOT NULL AND request_hash = ?"
                }
                None => {
                    "UPDATE receipt_outbox SET given_up_at = NULL, reverts = 0, next_attempt_at = 0 \
                     WHERE given_up_at IS NOT NULL"
                }
            };
            let sql = placeholders(pg, sql);
            let mut q = sqlx::query(&sql);
            if let Some(h) = request_hash {
                q = q.bind(h);
            }
            Ok(q.execute(pool).await?.rows_affected())
        })
    }

    /// The receipts given up (newest first, at most `limit`), for operators.
    pub async fn outbox_given_up(&self, limit: usize) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        dispatch!(self, |pool, pg| {
            let rows = sqlx::query(&placeholders(
                pg,
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM receipt_outbox WHERE given_up_at IS NOT NULL ORDER BY given_up_at DESC, id DESC LIMIT ?"
                ),
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(outbox_from).collect()
        })
    }

    /// Remembers the transaction sent for a receipt (before waiting for it to be mined, so a
    /// restart can look it up instead of sending a second one).
    pub async fn outbox_sent(&self, id: i64, tx_hash: &str) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query(&placeholders(
                pg,
                "UPDATE receipt_outbox SET tx_hash = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?",
            ))
            .bind(tx_hash)
            .bind(crate::ledger::time::now_ms())
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn outbox_mined(
        &self,
        id: i64,
        tx_hash: Option<&str>,
        at_ms: i64,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query(&placeholders(
                pg,
                "UPDATE receipt_outbox SET mined_at = ?, tx_hash = COALESCE(?, tx_hash), last_error = NULL WHERE id = ?",
            ))
            .bind(at_ms)
            .bind(tx_hash)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A failed attempt: retried at `next_ms`. `forget_tx` drops a transaction known not to land.
    pub async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_ms: i64,
        forget_tx: bool,
    ) -> Result<(), sqlx::Error> {
        let error: String = error.chars().take(500).collect();
        dispatch!(self, |pool, pg| {
            let sql = if forget_tx {
                "UPDATE receipt_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, tx_hash = NULL WHERE id = ?"
            } else {
                "UPDATE receipt_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?"
            };
            sqlx::query(&placeholders(pg, sql))
                .bind(error)
                .bind(next_ms)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// A transaction for the receipt reverted: counted, and the receipt is retried at `next_ms`
    /// unless this was revert number `max_reverts`, which gives it up (never sent again). True
    /// when it was given up.
    pub async fn outbox_reverted(
        &self,
        id: i64,
        error: &str,
        next_ms: i64,
        max_reverts: u32,
    ) -> Result<bool, sqlx::Error> {
        let error: String = error.chars().take(500).collect();
        let max = i64::from(max_reverts);
        let now = crate::ledger::time::now_ms();
        dispatch!(self, |pool, pg| {
            let given_up: Option<i64> = sqlx::query_scalar(&placeholders(
                pg,
                "UPDATE receipt_outbox SET attempts = attempts + 1, reverts = reverts + 1, last_error = ?, \
                 next_attempt_at = ?, tx_hash = NULL, \
                 given_up_at = CASE WHEN reverts + 1 >= ? THEN ? ELSE NULL END \
                 WHERE id = ? RETURNING given_up_at",
            ))
            .bind(error)
            .bind(next_ms)
            .bind(max)
            .bind(now)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten();
            Ok(given_up.is_some())
        })
    }

    /// Stores a new session; false when this wallet already used the nonce (a replayed login).
    pub async fn insert_session(&self, s: &SessionRow) -> Result<bool, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let r = sqlx::query(&placeholders(
                pg,
                "INSERT INTO wallet_sessions (token_hash, wallet, client_id, nonce, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (wallet, nonce) DO NOTHING",
            ))
            .bind(&s.token_hash)
            .bind(&s.wallet)
            .bind(&s.client_id)
            .bind(&s.nonce)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Forgets sessions that expired before `now_ms`. Their nonces may go too: a login message is
    /// only accepted before its `expiresAt`, which is the session's expiry, so it cannot be replayed.
    pub async fn delete_expired_sessions(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let r = sqlx::query(&placeholders(
                pg,
                "DELETE FROM wallet_sessions WHERE expires_at < ?",
            ))
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(r.rows_affected())
        })
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let r = sqlx::query(&placeholders(
                pg,
                "SELECT token_hash, wallet, client_id, nonce, created_at, expires_at FROM wallet_sessions WHERE token_hash = ?",
            ))
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some(SessionRow {
                    token_hash: r.try_get("token_hash")?,
                    wallet: r.try_get("wallet")?,
                    client_id: r.try_get("client_id")?,
                    nonce: r.try_get("nonce")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })),
            }
        })
    }
}
