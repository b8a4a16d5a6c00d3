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
use calyx_core::model::{ClientType, KeyAuth};
use calyx_core::request::BodyCredentials;
use calyx_core::OAuthError;
use calyx_token::assertion::{self, AssertionError};

use crate::client_keys;
use crate::error::ApiError;
use crate::mtls::{self, ClientCertificate, PeerCertificates};
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
    cert: Option<&ClientCertificate>,
) -> Result<Arc<ClientEntry>, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let auth = client_auth::extract(authorization, body).map_err(|e| ApiError::OAuth {
        error: e.error,
        basic_challenge: e.basic_tried,
    })?;
    authenticate(state, &auth, cert.map(|c| &*c.0)).await
}

/// Authenticates the client: from the cache when the cached secret matches, else from the
/// database (see the module header for how failures are answered).
pub(crate) async fn authenticate(
    state: &AppState,
    auth: &ClientAuth,
    cert: Option<&PeerCertificates>,
) -> Result<Arc<ClientEntry>, ApiError> {
    if let ClientAuth::Assertion { .. } = auth {
        return Box::pin(authenticate_by_assertion(state, auth)).await;
    }
    let now = state.clock.now();
    if let Some(entry) = state.cached_client(auth.client_id()) {
        if credentials_match(state, &entry, auth, cert, now) {
            return enabled(entry, auth);
        }
    }
    // Boxed: the hot path's future stays as small as it was.
    let entry = Box::pin(authenticate_from_database(state, auth, cert, now)).await?;
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
    cert: Option<&PeerCertificates>,
    now: i64,
) -> Result<Arc<ClientEntry>, ApiError> {
    let id = auth.client_id();
    let floor = tokio::time::Instant::now() + FAILURE_FLOOR;
    match state.load_client_entry(id).await? {
        Some(entry) => {
            if credentials_match(state, &entry, auth, cert, now) {
                return Ok(entry);
            }
        }
        None => {
            if let Some(secret) = auth.secret() {
                state.hasher.verify(secret.expose(), &[0; 32]);
            }
        }
    }
    Err(refuse(state, auth, floor, now).await)
}

/// The answer to a failed authentication, given once it has taken [`FAILURE_FLOOR`]: 401, or
/// 429 for a client id blocked after too many failures (the module header).
async fn refuse(
    state: &AppState,
    auth: &ClientAuth,
    floor: tokio::time::Instant,
    now: i64,
) -> ApiError {
    let id = auth.client_id();
    tokio::time::sleep_until(floor).await;
    if let Some(wait) = state.client_auth.blocked_for(id, now) {
        return ApiError::RateLimited {
            retry_after: wait as u64,
        };
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
    ApiError::OAuth {
        error: OAuthError::invalid_client(),
        basic_challenge: auth.is_basic(),
    }
}

/// `private_key_jwt` (RFC 7523 §2.2, §3): the assertion verifies with one of the client's
/// registered keys and its `jti` has not been used before, on any node. Refusals are
/// answered like a wrong secret; the reason goes to the log.
async fn authenticate_by_assertion(
    state: &AppState,
    auth: &ClientAuth,
) -> Result<Arc<ClientEntry>, ApiError> {
    let ClientAuth::Assertion {
        client_id,
        assertion,
    } = auth
    else {
        unreachable!("called for assertions only");
    };
    let now = state.clock.now();
    let floor = tokio::time::Instant::now() + FAILURE_FLOOR;
    let entry = match state.cached_client(client_id) {
        Some(entry) => Some(entry),
        None => state.load_client_entry(client_id).await?,
    };
    let verdict = match &entry {
        Some(entry) if entry.client.policy.auth == Some(KeyAuth::PrivateKeyJwt) => {
            check_assertion(state, &entry.client, assertion.expose(), now).await?
        }
        Some(_) => Err("the client is not registered for private_key_jwt".into()),
        None => Err("no such client".into()),
    };
    match (verdict, entry) {
        (Ok(()), Some(entry)) => enabled(entry, auth),
        (Err(why), _) => {
            tracing::info!(client_id = %client_id, reason = %why, "client assertion refused");
            Err(refuse(state, auth, floor, now).await)
        }
        (Ok(()), None) => unreachable!("an assertion is checked only for a known client"),
    }
}

/// Verifies `jwt` for `client` and records its `jti`: `Err` says why it was refused.
async fn check_assertion(
    state: &AppState,
    client: &calyx_core::model::Client,
    jwt: &str,
    now: i64,
) -> Result<Result<(), String>, ApiError> {
    let base = state.issuer.trim_end_matches('/');
    let endpoints = ASSERTION_PATHS.map(|p| format!("{base}{p}"));
    let mut audiences = vec![state.issuer.as_str()];
    audiences.extend(endpoints.iter().map(String::as_str));
    let expected = assertion::Expected {
        client_id: &client.id,
        audiences: &audiences,
        now,
        leeway: ASSERTION_LEEWAY,
    };
    let keys = match client_keys::keys(client, false).await {
        Ok(keys) => keys,
        Err(why) => return Ok(Err(why)),
    };
    let mut verified = keys.verify(jwt, &expected);
    if verified == Err(AssertionError::UnknownKey) && client.policy.jwks_uri.is_some() {
        // The client may have rotated its keys since the set was cached.
        if let Ok(fresh) = client_keys::keys(client, true).await {
            verified = fresh.verify(jwt, &expected);
        }
    }
    let assertion = match verified {
        Ok(a) => a,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let input = format!("assertion\0{}\0{}", client.id, assertion.jti);
    let key = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    if !state
        .store
        .use_once(key.as_ref(), assertion.exp + ASSERTION_LEEWAY + 1)
        .await?
    {
        return Ok(Err("the client assertion's jti was used before".into()));
    }
    Ok(Ok(()))
}

/// Mutual TLS (RFC 8705 §2): the connection's certificate is the client's (see `mtls`).
fn certificate_matches(
    state: &AppState,
    client: &calyx_core::model::Client,
    method: KeyAuth,
    cert: &PeerCertificates,
) -> bool {
    match method {
        KeyAuth::TlsClientAuth => match (&state.client_cas, &client.policy.tls_subject_dn) {
            (Some(cas), Some(dn)) => mtls::ca_issued_with_subject(cas, cert, dn),
            _ => false,
        },
        KeyAuth::SelfSignedTlsClientAuth => client_keys::inline(client)
            .is_ok_and(|keys| mtls::is_registered(cert, keys.certificates())),
        KeyAuth::PrivateKeyJwt => false,
    }
}

/// Where a client assertion may be addressed besides the issuer: the endpoints that take
/// client authentication (RFC 7523 §3 point 3 names the token endpoint; RFC 9126 §2 the
/// issuer for PAR).
const ASSERTION_PATHS: [&str; 5] = [
    "/oauth/token",
    "/v2/oauth/token",
    "/oauth/par",
    "/oauth/revoke",
    "/oauth/introspect",
];

/// Clock skew allowed on an assertion's times, seconds.
const ASSERTION_LEEWAY: i64 = 30;

fn credentials_match(
    state: &AppState,
    entry: &ClientEntry,
    auth: &ClientAuth,
    cert: Option<&PeerCertificates>,
    now: i64,
) -> bool {
    let c = &entry.client;
    if let Some(method) = c.policy.auth {
        // A client registered for a key-based method proves itself with its key, never a
        // secret it may still hold from before.
        return matches!(auth, ClientAuth::None { .. })
            && cert.is_some_and(|cert| certificate_matches(state, c, method, cert));
    }
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
