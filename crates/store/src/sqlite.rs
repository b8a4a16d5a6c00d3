//! The embedded SQLite backend: one file, WAL mode, created on first use.

use std::str::FromStr;
use std::time::Duration;

use calyx_core::store::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::ConnectOptions;

/// A SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run while a write commits.
    reads: SqlitePool,
    /// One connection: SQLite has one writer at a time, and queueing writers here (async,
    /// in order) beats letting them spin in SQLite's busy handler, which sleeps.
    writes: SqlitePool,
    /// Refresh rotations, committed in groups on the write connection (see `batch`).
    rotations: tokio::sync::mpsc::Sender<crate::batch::RotateJob>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database and migrates it.
    ///
    /// WAL lets readers proceed while one writer commits. `synchronous=FULL` makes every
    /// commit durable on power loss before the call returns, which is what "durable before the
    /// response" means; `busy_timeout` lets concurrent writers (another process, the CLI) wait
    /// instead of failing.
    pub async fn connect(opts: &ConnectOptions) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::from_str(&opts.url)
            .map_err(|e| StoreError::Other(Box::new(e)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if opts.sqlite_sync_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect.clone())
            .await
            .map_err(crate::map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writes)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let reads = SqlitePoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(crate::map_err)?;
        let rotations = spawn_rotation_writer(writes.clone());
        Ok(SqliteStore {
            reads,
            writes,
            rotations,
        })
    }

    fn reader(&self) -> &SqlitePool {
        &self.reads
    }

    fn writer(&self) -> &SqlitePool {
        &self.writes
    }
}

crate::queries::impl_store!(SqliteStore);
crate::queries::impl_rotation_writer!(sqlx::Sqlite);
