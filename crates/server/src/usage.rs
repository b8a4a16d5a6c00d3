//! Tokens issued per client per hour, counted in memory and flushed to the database every
//! few seconds (`usage_hourly`), for usage charts and quotas.
//!
//! The token endpoint adds one to an atomic counter that the cached client entry already
//! holds ([`crate::state::ClientEntry::issued`]): no lookup, no lock, no database write on
//! its path. The flush swaps each counter to zero and adds what it took to the current
//! hour's row; a failed write puts the counts back for the next flush. A count lands in the
//! hour of the flush that carries it, at most one flush interval late.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calyx_core::model::UsageCount;

use crate::state::AppState;

/// How often counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The counters of every client seen since start-up.
#[derive(Debug, Default)]
pub struct Usage {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Usage {
    /// The counter of `client_id` (made on first use; cache misses only).
    pub fn counter(&self, client_id: &str) -> Arc<AtomicU64> {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(client_id.to_owned()).or_default().clone()
    }

    /// Takes every non-zero count, leaving zeros; forgets counters nobody else holds.
    pub fn drain(&self) -> Vec<(String, u64)> {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        map.retain(|id, c| {
            let n = c.swap(0, Ordering::Relaxed);
            if n > 0 {
                out.push((id.clone(), n));
            }
            n > 0 || Arc::strong_count(c) > 1
        });
        out
    }

    /// Puts counts back (their write failed).
    pub fn restore(&self, counts: &[(String, u64)]) {
        for (id, n) in counts {
            self.counter(id).fetch_add(*n, Ordering::Relaxed);
        }
    }
}

/// Writes the counts once; returns how many clients had any.
pub async fn flush(state: &AppState) -> usize {
    let counts = state.usage.drain();
    if counts.is_empty() {
        return 0;
    }
    let now = state.clock.now();
    let hour = now - now.rem_euclid(3_600);
    let rows: Vec<UsageCount> = counts
        .iter()
        .map(|(id, n)| UsageCount {
            client_id: id.clone(),
            hour,
            count: i64::try_from(*n).unwrap_or(i64::MAX),
        })
        .collect();
    if let Err(e) = state.store.add_usage(&rows).await {
        tracing::warn!(error = ?e, "writing usage counts; kept for the next flush");
        state.usage.restore(&counts);
    }
    counts.len()
}

/// Flushes every [`FLUSH_EVERY`] until aborted.
pub async fn run(state: AppState) {
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        flush(&state).await;
    }
}
