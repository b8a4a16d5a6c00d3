//! # calyx-store
//!
//! sqlx implementations of [`calyx_core::store::Store`]: `SqliteStore` and `PgStore`, each
//! with its own migrations and connection settings.
//!
//! `SqliteStore` and `PgStore` are two explicit implementations of the role traits rather than
//! one generic over `sqlx::Database`: sqlx has no driver-independent `rows_affected`, and a
//! generic version would need some twenty `Executor`/`IntoArguments`/`Encode`/`Decode`/
//! `FromRow` bounds, most of them higher-ranked, repeated on each of the nine role impls
//! because Rust does not carry where-clauses over from a helper trait. Written out, every
//! method is plain sqlx code that rustfmt, clippy and the IDE check, and a backend can differ
//! where it must: SQLite sends reads to a pool of readers and writes to its single writer
//! connection, and PostgreSQL takes row locks up front in key order. What the two have in
//! common is shared: the SQL text (`sql.rs`), the row mapping (`rows.rs`), and the
//! group-commit writer with the rotation it runs (`batch.rs`) and the batched purge
//! (`purge.rs`), the two places generic over the database, with [`RowsAffected`] standing in
//! for the driver-independent `rows_affected` sqlx lacks. The price is that a new method is
//! written twice, which the contract tests (`tests/contract.rs`, run on both backends) keep
//! honest.
#![warn(missing_docs)]

use std::sync::Arc;

use calyx_core::store::{Store, StoreError};

mod batch;
pub mod listen;
pub mod postgres;
mod purge;
mod rows;
mod sql;
pub mod sqlite;

/// How many rows a statement changed, for the code generic over the database.
pub(crate) trait RowsAffected {
    /// Rows inserted, updated or deleted.
    fn rows(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// Connection settings shared by every backend.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `sqlite://path` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Largest number of pooled connections (SQLite: read connections; it adds one writer).
    pub max_connections: u32,
    /// SQLite only: fsync every commit (`true`, power-loss durable) or only at WAL
    /// checkpoints (`false`, durable across process crashes, faster).
    pub sqlite_sync_full: bool,
}

impl ConnectOptions {
    /// Defaults for `url`: 8 connections, or on SQLite two read connections per core up to
    /// 8. Each SQLite connection is a thread of its own holding its own page cache (about
    /// 1.2 MB resident under load), and reads beyond two per core add no throughput: on two
    /// cores, 4 readers rotate refresh tokens as fast as 8 with 5 MB less resident
    /// (bench/RESULTS.md).
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let max_connections = if url.starts_with("sqlite:") {
            let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
            (2 * cores).min(8) as u32
        } else {
            8
        };
        ConnectOptions {
            url,
            max_connections,
            sqlite_sync_full: true,
        }
    }
}

/// Opens the database named by the URL, runs pending migrations, and returns the store.
pub async fn connect(opts: &ConnectOptions) -> Result<Arc<dyn Store>, StoreError> {
    if opts.url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(opts).await?))
    } else if opts.url.starts_with("postgres:") || opts.url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(opts).await?))
    } else {
        Err(StoreError::Other(
            format!(
                "unsupported database URL {:?}: expected sqlite://PATH or postgres://...",
                opts.url
                    .split_once("://")
                    .map(|(s, _)| s)
                    .unwrap_or(&opts.url)
            )
            .into(),
        ))
    }
}

/// Maps a sqlx error onto the store's error kinds: uniqueness → `Conflict`, connection-level
/// failures → `Unavailable`, the rest → `Other`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(db.message().to_owned())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        // PostgreSQL shutting down or restarting (admin_shutdown, crash_shutdown,
        // cannot_connect_now): the next attempt may succeed.
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P03")) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        _ => StoreError::Other(Box::new(e)),
    }
}

/// `delete_org`'s refusal: the organization still has clients or users.
pub(crate) fn org_in_use(id: &str) -> StoreError {
    StoreError::Conflict(format!("organization {id} still has clients or users"))
}

/// Maps an error of `delete_org`'s `DELETE`: a foreign-key violation there means a client or
/// user of the organization was added meanwhile, so the organization is in use (`Conflict`),
/// not missing.
pub(crate) fn org_delete_err(id: &str, e: sqlx::Error) -> StoreError {
    match map_err(e) {
        StoreError::NotFound(_) => org_in_use(id),
        other => other,
    }
}
