//! SQLite: the default store, one file beside the gateway.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "usage",
        include_str!("../../../migrations/sqlite/0001_usage.sql"),
    ),
    (
        2,
        "clients",
        include_str!("../../../migrations/sqlite/0002_clients.sql"),
    ),
    (
        3,
        "x402",
        include_str!("../../../migrations/sqlite/0003_x402.sql"),
    ),
    (
        4,
        "sapphire",
        include_str!("../../../migrations/sqlite/0004_sapphire.sql"),
    ),
    (
        5,
        "unused_indexes",
        include_str!("../../../migrations/sqlite/0005_unused_indexes.sql"),
    ),
    (
        6,
        "receipt_reverts",
        include_str!("../../../migrations/sqlite/0006_receipt_reverts.sql"),
    ),
    (
        7,
        "deployment",
        include_str!("../../../migrations/sqlite/0007_deployment.sql"),
    ),
];

#[derive(Clone)]
pub struct SqliteStore {
    pub pool: sqlx::SqlitePool,
    /// The connection usage batches are written on, taken out of the pool at the first batch. The
    /// pool hands out its idle connections in turn, and a SQLite connection drops its page cache
    /// when another connection has written since its last transaction: each batch written on
    /// another connection than the previous one re-read every page it touched. Dropped after a
    /// failed batch, so that the retry starts on a fresh connection.
    pub(super) writer: Arc<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>,
}

/// The file path inside `sqlite://PATH[?query]` (None for in-memory databases).
fn file_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then_some(path)
}

impl SqliteStore {
    pub async fn open(url: &str) -> anyhow::Result<SqliteStore> {
        if let Some(parent) = file_path(url).and_then(|p| std::path::Path::new(p).parent())
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create the ledger directory {}: {e}",
                    parent.display()
                )
            })?;
        }
        // WAL lets /usage read while the writer commits; NORMAL is durable across a process crash
        // (the WAL is fsynced at checkpoints; only an OS crash can lose the last transactions).
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(SqliteStore {
            pool,
            writer: Arc::default(),
        })
    }
}
