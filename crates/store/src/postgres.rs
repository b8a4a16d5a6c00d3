//! The PostgreSQL backend, for several stateless `calyx serve` nodes sharing one database.
//!
//! The statements are the same as SQLite's (`queries.rs`); what differs is connection setup
//! and migrations. Exactly-once for codes and refresh tokens holds across nodes because the
//! gate is a conditional `UPDATE ... WHERE used_at IS NULL`: under READ COMMITTED a second
//! writer waits for the first's row lock, then re-checks the condition and finds nothing to
//! update. No in-process lock is involved.

use std::str::FromStr;
use std::time::Duration;

use calyx_core::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::ConnectOptions;

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Refresh rotations, committed in groups (see `batch`).
    rotations: tokio::sync::mpsc::Sender<crate::batch::RotateJob>,
}

impl PgStore {
    /// Connects and migrates (migrations take an advisory lock, so nodes starting together
    /// apply each one once).
    ///
    /// A short acquire timeout makes requests fail fast with 503 while the database is down,
    /// and the pool reconnects by itself when it is back.
    pub async fn connect(opts: &ConnectOptions) -> Result<PgStore, StoreError> {
        let connect =
            PgConnectOptions::from_str(&opts.url).map_err(|e| StoreError::Other(Box::new(e)))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .test_before_acquire(true)
            .connect_with(connect)
            .await
            .map_err(crate::map_err)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let rotations = spawn_rotation_writer(pool.clone());
        Ok(PgStore { pool, rotations })
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }
}

crate::queries::impl_store!(PgStore);
crate::queries::impl_rotation_writer!(sqlx::Postgres);
