//! Change announcements: PostgreSQL delivers a `NOTIFY calyx_change` at the commit of every
//! write that bumps the change counter (migration 0004's trigger), so a server can drop its
//! caches at once instead of at its next poll. SQLite has no such channel; its servers poll.

use sqlx::postgres::PgListener;

use calyx_core::store::StoreError;

use crate::map_err;

/// The channel the change trigger notifies.
pub const CHANNEL: &str = "calyx_change";

/// A subscription to change announcements.
#[derive(Debug)]
pub struct ChangeListener(PgListener);

impl ChangeListener {
    /// Subscribes, for a database that announces changes (PostgreSQL); `None` for one that
    /// does not (SQLite).
    pub async fn connect(url: &str) -> Result<Option<ChangeListener>, StoreError> {
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return Ok(None);
        }
        let mut listener = PgListener::connect(url).await.map_err(map_err)?;
        listener.listen(CHANNEL).await.map_err(map_err)?;
        Ok(Some(ChangeListener(listener)))
    }

    /// Waits for the next announcement. A lost connection is re-established here (sqlx
    /// re-subscribes); what was announced meanwhile is what the poll is for.
    pub async fn next(&mut self) -> Result<(), StoreError> {
        self.0.recv().await.map_err(map_err)?;
        Ok(())
    }
}
