//! Keeps a running server in step with the database.
//!
//! The task reads the change counter that database triggers bump on any write to clients,
//! grants, APIs or keys: at once when PostgreSQL announces a change (`LISTEN calyx_change`,
//! delivered at the writer's commit), and every `interval` regardless — the poll is all SQLite
//! has, and on PostgreSQL it is the safety net for announcements lost while the listening
//! connection was down. When the counter moves — an admin call on another node, a CLI
//! command — the client and API caches are dropped and the key set is reloaded, so a disabled
//! client, a rotated secret or a retired key stops working on every node within a few
//! milliseconds of the commit on PostgreSQL and within one interval (100 ms by default) on
//! SQLite. Once a minute the key set is
//! reloaded regardless, which is when retired keys leave the JWKS, and idle rate-limiter state
//! is pruned.

use std::time::Duration;

use calyx_store::listen::ChangeListener;

use crate::keys;
use crate::state::AppState;

const FULL_RELOAD_EVERY: Duration = Duration::from_secs(60);

/// Runs until the task is aborted.
pub async fn run(state: AppState, interval: Duration, mut last_seq: i64) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_full = tokio::time::Instant::now();
    let mut listener = match ChangeListener::connect(&state.config.database_url).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = ?e, "listening for database changes; polling only");
            None
        }
    };
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            announced = next_change(&mut listener) => {
                if let Err(e) = announced {
                    tracing::warn!(error = ?e, "listening for database changes");
                    tokio::time::sleep(interval).await;
                }
            }
        }
        let seq = match state.store.change_seq().await {
            Ok(seq) => seq,
            Err(e) => {
                tracing::warn!(error = ?e, "reading the change counter");
                continue;
            }
        };
        let full = last_full.elapsed() >= FULL_RELOAD_EVERY;
        if seq != last_seq || full {
            if seq != last_seq {
                state.invalidate_caches();
            }
            match keys::load_keyset(&*state.store, &state.sealer, state.clock.now()).await {
                Ok(set) => {
                    state.set_keys(set);
                    last_seq = seq;
                    last_full = tokio::time::Instant::now();
                    tracing::debug!(seq, "reloaded configuration and keys");
                }
                Err(e) => {
                    tracing::error!(error = ?e, "reloading signing keys; keeping the current set")
                }
            }
        }
        if full {
            if let Some(l) = &state.issue_limiter {
                l.retain_recent();
            }
            for t in [
                &state.client_auth,
                &state.login_user,
                &state.login_pair,
                &state.login_ip,
            ] {
                t.retain_recent();
            }
        }
    }
}

/// The next announcement, or never without a listener.
async fn next_change(
    listener: &mut Option<ChangeListener>,
) -> Result<(), calyx_core::store::StoreError> {
    match listener {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}
