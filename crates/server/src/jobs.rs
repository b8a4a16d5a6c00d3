//! The background jobs of `serve`, besides `reload`: the usage flush (`usage`), webhook
//! delivery (`webhooks`) and the scheduled purge, which runs on one node at a time: each
//! node tries to take the `purge` lease in the database, and only the one that gets it
//! purges until the next interval. The purge's rows, duration and failures are metrics
//! (`calyx_purge_*`, `calyx_purged_rows_total`).

use std::time::Duration;

use crate::state::AppState;

/// Runs the purge every `every`, when this node holds the lease.
pub async fn purge(state: AppState, every: Duration) {
    let node = calyx_token::secret::random_id("node");
    let secs = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = state.clock.now();
        // Held a little short of the interval, so the next run is never blocked by this one.
        match state
            .store
            .take_lease("purge", &node, now, now + secs - secs / 10)
            .await
        {
            Ok(true) => {
                let started = std::time::Instant::now();
                let result = state.manager.purge(false).await;
                let seconds = started.elapsed().as_secs_f64();
                match result {
                    Ok(report) => {
                        let now = state.clock.now();
                        state.metrics.purge_succeeded(&report, seconds, now);
                        tracing::info!(?report, "purged");
                    }
                    Err(e) => {
                        state.metrics.purge_failed(seconds);
                        tracing::warn!(error = ?e, "purging");
                    }
                }
            }
            Ok(false) => tracing::debug!("another node holds the purge lease"),
            Err(e) => tracing::warn!(error = ?e, "taking the purge lease"),
        }
    }
}

/// Spawns every job; they stop when the returned handles are aborted.
pub fn spawn(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut jobs = vec![
        tokio::spawn(crate::usage::run(state.clone())),
        tokio::spawn(crate::webhooks::run(state.clone())),
    ];
    if !state.config.purge_interval.is_zero() {
        jobs.push(tokio::spawn(purge(
            state.clone(),
            state.config.purge_interval,
        )));
    }
    jobs
}
