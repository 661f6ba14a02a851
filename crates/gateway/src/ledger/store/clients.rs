//! The `clients` table (migration 0002): client keys, stored as keyed hashes, with their policy.

use super::{Store, placeholders};
use sqlx::Row as _;
use std::collections::HashMap;

/// One client as stored. `tags` and `policy` are JSON text; the key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub tags: String,
    pub policy: String,
    /// JSON object: provider → sealed key (see `clients::seal`).
    pub upstream_keys: String,
}

const COLUMNS: &str = "id, name, key_prefix, key_hash, created_at, expires_at, revoked_at, tags, policy, upstream_keys";

fn from_row<R: sqlx::Row>(r: &R) -> Result<ClientRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ClientRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        key_prefix: r.try_get("key_prefix")?,
        key_hash: r.try_get("key_hash")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        tags: r.try_get("tags")?,
        policy: r.try_get("policy")?,
        upstream_keys: r.try_get("upstream_keys")?,
    })
}

impl Store {
    /// Every client, revoked ones included, oldest first.
    pub async fn clients(&self) -> Result<Vec<ClientRow>, sqlx::Error> {
        dispatch!(self, |pool, _pg| {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM clients ORDER BY created_at, id"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(from_row).collect()
        })
    }

    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool, pg| {
            sqlx::query(&placeholders(
                pg,
                &format!("INSERT INTO clients ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            ))
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.key_prefix)
            .bind(&c.key_hash)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.revoked_at)
            .bind(&c.tags)
            .bind(&c.policy)
            .bind(&c.upstream_keys)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Writes the mutable fields (name, expiry, revocation, tags, policy); false when no such id.
    pub async fn update_client(&self, c: &ClientRow) -> Result<bool, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let r = sqlx::query(&placeholders(
                pg,
                "UPDATE clients SET name = ?, expires_at = ?, revoked_at = ?, tags = ?, policy = ?, upstream_keys = ? WHERE id = ?",
            ))
            .bind(&c.name)
            .bind(c.expires_at)
            .bind(c.revoked_at)
            .bind(&c.tags)
            .bind(&c.policy)
            .bind(&c.upstream_keys)
            .bind(&c.id)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Replaces a client's key (its shown prefix and hash); false when no such id.
    pub async fn set_client_key(
        &self,
        id: &str,
        key_prefix: &str,
        key_hash: &str,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let r = sqlx::query(&placeholders(
                pg,
                "UPDATE clients SET key_prefix = ?, key_hash = ? WHERE id = ?",
            ))
            .bind(key_prefix)
            .bind(key_hash)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Cost (nano-USD) per client key recorded since `since_ms` (a day start), from the daily rollups.
    pub async fn spent_by_client_since(
        &self,
        since_ms: i64,
    ) -> Result<HashMap<String, i64>, sqlx::Error> {
        dispatch!(self, |pool, pg| {
            let rows = sqlx::query(&placeholders(
                pg,
                "SELECT client_key_id, CAST(COALESCE(SUM(cost_total), 0) AS BIGINT) AS spent FROM usage_daily \
                 WHERE bucket_start >= ? AND client_key_id <> '' GROUP BY client_key_id",
            ))
            .bind(since_ms)
            .fetch_all(pool)
            .await?;
            let mut out = HashMap::new();
            for r in &rows {
                out.insert(
                    r.try_get::<String, _>("client_key_id")?,
                    r.try_get::<i64, _>("spent")?,
                );
            }
            Ok(out)
        })
    }
}
