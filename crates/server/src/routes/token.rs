//! `POST /oauth/token` (alias `/v2/oauth/token`): RFC 6749 §3.2.
//!
//! HTTP → [`Params`] + [`ClientAuth`] → client authentication → the grant's decision → a
//! signed JWT. This path is the product's hot path: it reads only in-memory caches and the
//! in-memory key set, and allocates little.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use calyx_core::client_auth::{self, ClientAuth};
use calyx_core::grant::{self, decide_scope, ensure_client_allows, grant_for, target_audience};
use calyx_core::model::{ClientType, GrantType, SigningAlg};
use calyx_core::params::Params;
use calyx_core::{ErrorCode, OAuthError};
use calyx_token::secret::random_string;
use calyx_token::{AccessClaims, SigningKey};
use serde::Serialize;

use crate::error::ApiError;
use crate::keys;
use crate::metrics::TokenLabels;
use crate::state::{AppState, ClientEntry};

/// The least time a failed client authentication takes once it reaches the database: longer
/// than the reads take, so an unknown client id and a wrong secret are answered alike. Only
/// failures wait; it also slows guessing.
const FAILURE_FLOOR: std::time::Duration = std::time::Duration::from_millis(10);

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// A new refresh token (code and refresh grants, when the client may refresh); the one
    /// presented is spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The access token, a JWT (RFC 9068).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// Issues a token.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(
        content(
            (crate::openapi::TokenRequest = "application/x-www-form-urlencoded"),
            (crate::openapi::TokenRequest = "application/json"),
        ),
        description = "Client credentials (RFC 6749 §4.4), authorization code (§4.1.3) or refresh token (§6). The same names as a form or a JSON object."
    ),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_scope, invalid_target, unauthorized_client or unsupported_grant_type", body = crate::openapi::OAuthErrorBody),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthErrorBody),
        (status = 403, description = "access_denied: no grant for the audience", body = crate::openapi::OAuthErrorBody),
        (status = 413, description = "invalid_request: body too large", body = crate::openapi::OAuthErrorBody),
        (status = 429, description = "too_many_requests, with Retry-After", body = crate::openapi::OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: database unreachable", body = crate::openapi::OAuthErrorBody),
    )
)]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let mut grant_label = "unknown";
    let result = handle(&state, &headers, body, &mut grant_label).await;
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => error_label(e),
    };
    state
        .metrics
        .token_requests
        .get_or_create(&TokenLabels {
            grant: grant_label,
            outcome,
        })
        .inc();
    state
        .metrics
        .token_latency
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    grant_label: &mut &'static str,
) -> Result<Response, ApiError> {
    let params = read_params(state, headers, body).await?;
    let grant_type = grant::grant_type(&params)?;
    *grant_label = grant_type.as_str();
    let entry = authenticated_client(state, headers, &params).await?;
    match grant_type {
        GrantType::ClientCredentials => client_credentials(state, &entry, &params).await,
        GrantType::AuthorizationCode => {
            super::user_grants::authorization_code(state, &entry, &params).await
        }
        GrantType::RefreshToken => super::user_grants::refresh_token(state, &entry, &params).await,
        GrantType::TokenExchange => {
            super::user_grants::token_exchange(state, &entry, &params).await
        }
    }
}

/// Reads the body as a form or a JSON object, within the size limit.
pub(crate) async fn read_params(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Params, ApiError> {
    let is_form = super::has_content_type(headers, "application/x-www-form-urlencoded");
    let is_json = super::has_content_type(headers, "application/json");
    if !is_form && !is_json {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )
        .into());
    }
    let bytes = super::read_body(state, headers, body).await?;
    let params = if is_form {
        Params::from_form(&bytes)?
    } else {
        Params::from_json(&bytes)?
    };
    Ok(params)
}

/// Extracts and checks the client authentication of a request (RFC 6749 §2.3): the token,
/// revocation and introspection endpoints all go through here.
pub(crate) async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<ClientEntry>, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let auth = client_auth::extract(authorization, params).map_err(|e| ApiError::OAuth {
        error: e.error,
        basic_challenge: e.basic_tried,
    })?;
    authenticate(state, &auth).await
}

/// Authenticates the client (RFC 6749 §2.3). Unknown client and wrong secret fail alike, and
/// take the same time: a failed check always reads the client and its grants from the
/// database (it may have been rotated since it was cached), an unknown id is checked against a
/// dummy hash, and the answer waits until [`FAILURE_FLOOR`] after that read began, so that what
/// still differs (decoding a row or none) cannot be timed.
///
/// After [`crate::state::Inner::client_auth`]'s quota of failures a client id is blocked for a minute:
/// further *failed* attempts get 429. A correct secret still succeeds while blocked — cached
/// or not — so an attacker who knows a client id cannot lock its owner out.
pub(crate) async fn authenticate(
    state: &AppState,
    auth: &ClientAuth,
) -> Result<Arc<ClientEntry>, ApiError> {
    let now = state.clock.now();
    if let Some(entry) = state.cached_client(auth.client_id()) {
        if credentials_match(state, &entry, auth, now) {
            return Ok(entry);
        }
    }
    // Boxed: the hot path's future stays as small as it was.
    Box::pin(authenticate_from_database(state, auth, now)).await
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
    state.client_auth.fail(id, now);
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

/// RFC 6749 §4.4: a machine token for the requested (or default) audience.
async fn client_credentials(
    state: &AppState,
    entry: &ClientEntry,
    params: &Params,
) -> Result<Response, ApiError> {
    let client = &entry.client;
    ensure_client_allows(client, GrantType::ClientCredentials)?;
    let audience = target_audience(params, &entry.grants)?;
    let grant = grant_for(&entry.grants, audience)?;
    let scope = decide_scope(params.get("scope"), &grant.scopes)?;
    let api = state.api(audience).await?.ok_or_else(|| {
        OAuthError::new(
            ErrorCode::AccessDenied,
            "this client is not authorized for the requested audience",
        )
    })?;
    if let Some(limiter) = &state.issue_limiter {
        if let Err(not_until) = limiter.check_key(&client.id) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ApiError::RateLimited {
                retry_after: wait.as_secs_f64().ceil() as u64,
            });
        }
    }
    let now = state.clock.now();
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: format!("{}@clients", client.id),
        aud: api.audience.clone(),
        exp: now + api.token_lifetime,
        iat: now,
        jti: random_string(16),
        client_id: client.id.clone(),
        scope: scope.to_string(),
        org_id: Some(client.org_id.clone()),
        sid: None,
    };
    issue(state, api.alg, claims, None).await
}

/// Signs `claims` with the current key of `alg` and answers with an RFC 6749 §5.1 response
/// (`expires_in` from the claims, so it always matches the token).
pub(crate) async fn issue(
    state: &AppState,
    alg: SigningAlg,
    claims: AccessClaims,
    refresh_token: Option<String>,
) -> Result<Response, ApiError> {
    let access_token = sign_access_token(state, alg, &claims).await?;
    Ok(token_response(&TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
        scope: claims.scope,
        refresh_token,
    }))
}

/// Signs `claims` with the current key of `alg`.
pub(crate) async fn sign_access_token(
    state: &AppState,
    alg: SigningAlg,
    claims: &AccessClaims,
) -> Result<String, ApiError> {
    let keys = state.keys();
    let key = match keys.signer(alg) {
        Some(key) => key,
        // Boxed: the cold path adds nothing to the hot path's future.
        None => &Box::pin(load_signer(state, alg)).await?,
    };
    Ok(key.sign(claims).map_err(anyhow::Error::new)?)
}

/// The signing key of an algorithm the in-memory key set lacks — an API created with a new
/// algorithm on a running server, before the reload task has seen it. The set is reloaded
/// from the database, and a key is created there if none exists, so a configuration change
/// never surfaces as an error. Concurrent callers share one load.
async fn load_signer(state: &AppState, alg: SigningAlg) -> Result<Arc<SigningKey>, ApiError> {
    let _one_at_a_time = state.key_load.lock().await;
    if let Some(key) = state.keys().signer(alg) {
        return Ok(key.clone());
    }
    let now = state.clock.now();
    let mut set = keys::load_keyset(&*state.store, &state.sealer, now).await?;
    if set.signer(alg).is_none() {
        keys::ensure_keys(&*state.store, &state.sealer, [alg], now).await?;
        set = keys::load_keyset(&*state.store, &state.sealer, now).await?;
    }
    let key = set
        .signer(alg)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no signing key for {alg} could be loaded"))?;
    state.set_keys(set);
    Ok(key)
}

/// A JSON token response with `Cache-Control: no-store` (RFC 6749 §5.1).
pub(crate) fn token_response<T: Serialize>(body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

fn error_label(e: &ApiError) -> &'static str {
    match e {
        ApiError::OAuth { error, .. } => error.code.as_str(),
        ApiError::TooLarge(_) | ApiError::BodyTimeout(_) | ApiError::BodyUnreadable => {
            "invalid_request"
        }
        ApiError::RateLimited { .. } => "too_many_requests",
        ApiError::Bearer { .. } => "invalid_token",
        ApiError::NotFound(_) => "not_found",
        ApiError::MethodNotAllowed => "method_not_allowed",
        ApiError::Conflict(_) => "conflict",
        ApiError::Unavailable(_) => "temporarily_unavailable",
        ApiError::Internal(_) => "server_error",
    }
}
