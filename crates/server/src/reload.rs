//! Keeps a running server in step with the database.
//!
//! Every `interval` the task reads the change counter that database triggers bump on any write
//! to clients, grants, APIs or keys. When it moves — a CLI command, another node — the client
//! and API caches are dropped and the key set is reloaded, so a rotated key signs and is
//! published within one interval (100 ms by default), on every node. Once a minute the key set is
//! reloaded regardless, which is when retired keys leave the JWKS, and idle rate-limiter state
//! is pruned.

use std::time::Duration;

use crate::keys;
use crate::state::AppState;

const FULL_RELOAD_EVERY: Duration = Duration::from_secs(60);

/// Runs until the task is aborted.
pub async fn run(state: AppState, interval: Duration, mut last_seq: i64) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_full = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
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
