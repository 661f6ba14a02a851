//! Postgres: for several gateway instances sharing one ledger. Rows are insert-only and rollups are
//! additive upserts, so concurrent writers never overwrite each other.

use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "usage",
        include_str!("../../../migrations/postgres/0001_usage.sql"),
    ),
    (
        2,
        "clients",
        include_str!("../../../migrations/postgres/0002_clients.sql"),
    ),
    (
        3,
        "x402",
        include_str!("../../../migrations/postgres/0003_x402.sql"),
    ),
    (
        4,
        "sapphire",
        include_str!("../../../migrations/postgres/0004_sapphire.sql"),
    ),
    (
        5,
        "unused_indexes",
        include_str!("../../../migrations/postgres/0005_unused_indexes.sql"),
    ),
    (
        6,
        "receipt_reverts",
        include_str!("../../../migrations/postgres/0006_receipt_reverts.sql"),
    ),
    (
        7,
        "deployment",
        include_str!("../../../migrations/postgres/0007_deployment.sql"),
    ),
];

/// Serialises migrations between instances starting at the same time.
pub const MIGRATION_LOCK: i64 = 0x656b_6169_6c65_6467; // "ekailedg"

#[derive(Clone)]
pub struct PostgresStore {
    pub pool: sqlx::PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str) -> anyhow::Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStore { pool })
    }
}
