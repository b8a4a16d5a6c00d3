//! Client authentication (RFC 6749 §2.3) for every endpoint that takes it: token,
//! revocation, introspection and the legacy delegation route.
//!
//! Unknown client and wrong secret fail alike, and take the same time: a failed check always
//! reads the client and its grants from the database (it may have been rotated since it was
//! cached), an unknown id is checked against a dummy hash, and the answer waits until
//! [`FAILURE_FLOOR`] after that read began, so that what still differs (decoding a row or
//! none) cannot be timed.
//!
//! After [`crate::state::Inner::client_auth`]'s quota of failures a client id is blocked for a
//! minute: further *failed* attempts get 429. A correct secret still succeeds while blocked —
//! cached or not — so an attacker who knows a client id cannot lock its owner out.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use calyx_core::client_auth::{self, ClientAuth};
use calyx_core::model::ClientType;
use calyx_core::request::BodyCredentials;
use calyx_core::OAuthError;

use crate::error::ApiError;
use crate::state::{AppState, ClientEntry};

/// The least time a failed client authentication takes once it reaches the database: longer
/// than the reads take, so an unknown client id and a wrong secret are answered alike. Only
/// failures wait; it also slows guessing.
const FAILURE_FLOOR: std::time::Duration = std::time::Duration::from_millis(10);

/// Extracts and checks the client authentication of a request: the `Authorization` header
/// and the credentials in the body.
pub(crate) async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    body: BodyCredentials<'_>,
) -> Result<Arc<ClientEntry>, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let auth = client_auth::extract(authorization, body).map_err(|e| ApiError::OAuth {
        error: e.error,
        basic_challenge: e.basic_tried,
    })?;
    authenticate(state, &auth).await
}

/// Authenticates the client: from the cache when the cached secret matches, else from the
/// database (see the module header for how failures are answered).
pub(crate) async fn authenticate(
    state: &AppState,
    auth: &ClientAuth,
) -> Result<Arc<ClientEntry>, ApiError> {
    let now = state.clock.now();
    if let Some(entry) = state.cached_client(auth.client_id()) {
        if credentials_match(state, &entry, auth, now) {
            return enabled(entry, auth);
        }
    }
    // Boxed: the hot path's future stays as small as it was.
    let entry = Box::pin(authenticate_from_database(state, auth, now)).await?;
    enabled(entry, auth)
}

/// A disabled client is refused once it has proved who it is (so the answer tells nobody
/// else that the client id exists).
fn enabled(entry: Arc<ClientEntry>, auth: &ClientAuth) -> Result<Arc<ClientEntry>, ApiError> {
    crate::telemetry::note_client(&entry);
    if entry.client.disabled {
        return Err(ApiError::OAuth {
            error: OAuthError::new(
                calyx_core::ErrorCode::InvalidClient,
                "this client is disabled; ask the API provider to enable it",
            ),
            basic_challenge: auth.is_basic(),
        });
    }
    Ok(entry)
}

/// The rest of [`authenticate`]: not cached, or the cached secret did not match.
async fn authenticate_from_database(
    state: &AppState,
    auth: &ClientAuth,
    now: i64,
) -> Result<Arc<ClientEntry>, ApiError> {
    let id = auth.client_id();
    let floor = tokio::time::Instant::now() + FAILURE_FLOOR;
    match state.load_client_entry(id).await? {
        Some(entry) => {
            if credentials_match(state, &entry, auth, now) {
                return Ok(entry);
            }
        }
        None => {
            if let Some(secret) = auth.secret() {
                state.hasher.verify(secret.expose(), &[0; 32]);
            }
        }
    }
    tokio::time::sleep_until(floor).await;
    if let Some(wait) = state.client_auth.blocked_for(id, now) {
        return Err(ApiError::RateLimited {
            retry_after: wait as u64,
        });
    }
    tracing::info!(client_id = %id, "client authentication failed");
    // The failure that trips the block is still answered 401; later ones get 429.
    if let (_, true) = state.client_auth.fail_and_tell(id, now) {
        state.security_event(
            calyx_core::audit::kind::CLIENT_THROTTLED,
            crate::manage::About {
                client_id: Some(id.to_owned()),
                target: Some(id.to_owned()),
                ..Default::default()
            },
            serde_json::json!({"blocked_seconds": crate::state::BLOCK_SECS}),
            None,
        );
    }
    Err(ApiError::OAuth {
        error: OAuthError::invalid_client(),
        basic_challenge: auth.is_basic(),
    })
}

fn credentials_match(state: &AppState, entry: &ClientEntry, auth: &ClientAuth, now: i64) -> bool {
    let c = &entry.client;
    match (c.client_type, auth.secret()) {
        (ClientType::Public, None) => true,
        (ClientType::Public, Some(_)) | (ClientType::Confidential, None) => false,
        (ClientType::Confidential, Some(secret)) => {
            let secret = secret.expose();
            let current = c
                .secret_hash
                .as_deref()
                .is_some_and(|h| state.hasher.verify(secret, h));
            current
                || match (&c.previous_secret_hash, c.previous_secret_expires_at) {
                    (Some(h), Some(until)) if now < until => state.hasher.verify(secret, h),
                    _ => false,
                }
        }
    }
}
