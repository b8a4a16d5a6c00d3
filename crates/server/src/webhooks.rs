//! Webhook delivery: the worker that empties the outbox.
//!
//! Each audit event of a subscribed type is queued, in the event's own transaction, as one
//! delivery per webhook (`Audit::append_audit`). This worker claims due deliveries (a lease,
//! so two nodes never send one at the same time and a node that dies mid-delivery hands it on
//! when the lease lapses), POSTs each, and records the outcome: a 2xx is delivered; anything
//! else is tried again after 1, 2, 4, ... seconds (at most an hour apart) until 24 hours
//! after the event, then marked failed. Delivery is at least once: a receiver drops repeats
//! by the event id, which every attempt carries.
//!
//! Each request is signed: `Calyx-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`
//! under the webhook's secret, so a receiver can check it came from here and is fresh.

use std::time::Duration;

use aws_lc_rs::hmac;
use calyx_core::model::{Attempt, Delivery, DeliveryState};

use crate::state::AppState;

/// How often the outbox is polled when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);
/// How long a claimed delivery is held before another node may take it.
const LEASE_SECS: i64 = 60;
/// Deliveries claimed at once.
const BATCH: i64 = 16;
/// A receiver has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries are retried until this long after the event.
const RETRY_WINDOW_SECS: i64 = 24 * 3_600;
/// The longest wait between attempts.
const MAX_BACKOFF_SECS: i64 = 3_600;

/// The signature header's value for `body` sent at `t`.
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// The wait before attempt `attempts + 1`, after `attempts` failures.
fn backoff(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    2_i64.pow(exp).min(MAX_BACKOFF_SECS)
}

/// Runs until aborted.
pub async fn run(state: AppState) {
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Calyx-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = ?e, "building the webhook HTTP client; webhooks stay queued");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = state.manager.outbox.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        loop {
            let now = state.clock.now();
            let due = match state
                .store
                .claim_deliveries(now, now + LEASE_SECS, BATCH)
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = ?e, "claiming webhook deliveries");
                    break;
                }
            };
            if due.is_empty() {
                break;
            }
            let sends = due.into_iter().map(|d| deliver(&state, &http, d));
            futures_util::future::join_all(sends).await;
        }
    }
}

/// Sends one delivery and records the outcome.
async fn deliver(state: &AppState, http: &reqwest::Client, d: Delivery) {
    let now = state.clock.now();
    let (status, error) = match send(state, http, &d, now).await {
        Ok(status) if (200..300).contains(&status) => (Some(status), None),
        Ok(status) => (
            Some(status),
            Some(format!("the receiver answered {status}")),
        ),
        Err(why) => (None, Some(why)),
    };
    let attempts = d.attempts + 1;
    let (state_after, next) = match &error {
        None => (DeliveryState::Delivered, now),
        Some(_) => {
            let next = now + backoff(attempts);
            if next > d.created_at + RETRY_WINDOW_SECS {
                (DeliveryState::Failed, next)
            } else {
                (DeliveryState::Pending, next)
            }
        }
    };
    if let Some(why) = &error {
        tracing::info!(delivery = %d.id, event = %d.event_id, attempts, %why, "webhook delivery failed");
    }
    let attempt = Attempt {
        id: d.id.clone(),
        state: state_after,
        next_attempt_at: next,
        status,
        error,
        at: now,
    };
    if let Err(e) = state.store.finish_delivery(&attempt).await {
        tracing::warn!(error = ?e, delivery = %d.id, "recording a webhook attempt; it will be retried");
    }
}

/// POSTs the delivery; the receiver's status, or why there was none.
async fn send(
    state: &AppState,
    http: &reqwest::Client,
    d: &Delivery,
    now: i64,
) -> Result<i64, String> {
    let hook = match state.store.webhook(&d.webhook_id).await {
        Ok(Some(h)) => h,
        Ok(None) => return Err("the webhook was deleted".into()),
        Err(e) => return Err(format!("reading the webhook: {e}")),
    };
    let secret = state
        .manager
        .webhook_secret(&hook.secret_sealed)
        .map_err(|e| e.to_string())?;
    let resp = http
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Calyx-Signature", signature(&secret, now, &d.payload))
        .header("Calyx-Event-Id", &d.event_id)
        .header("Calyx-Delivery-Id", &d.id)
        .body(d.payload.clone())
        .send()
        .await
        .map_err(|e| format!("sending: {e}"))?;
    Ok(i64::from(resp.status().as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_an_hour() {
        assert_eq!(
            (1..=6).map(backoff).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32]
        );
        assert_eq!(backoff(13), 3_600);
        assert_eq!(backoff(1_000), 3_600);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body_in_hex() {
        // The signed text is "0.what do ya want for nothing?" (the digest computed apart).
        assert_eq!(
            signature(b"Jefe", 0, "what do ya want for nothing?"),
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }
}
