//! `POST /oauth/token` (alias `/v2/oauth/token`): RFC 6749 §3.2.
//!
//! HTTP → [`TokenParams`] → client authentication (`authn`) → the grant's [`TokenRequest`] →
//! the grant's decision in `calyx_core::grant` → claims and a signature (`issue`) → the
//! response. This path is the product's hot path: for client credentials it reads only
//! in-memory caches and the in-memory key set, and allocates little.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use calyx_core::grant::token_exchange;
use calyx_core::grant::{
    authorization_code, client_credentials, ensure_client_may_use, refresh_token, GrantError,
    Replayed, UserGrant,
};
use calyx_core::model::KeyAuth;
use calyx_core::request::{
    ClientCredentialsRequest, ExchangeRequest, TokenParams, TokenRequest, ACCESS_TOKEN_TYPE,
};
use calyx_core::{ErrorCode, OAuthError};
use calyx_token::Confirmation;

use crate::authn::authenticated_client;
use crate::bearer;
use crate::dpop;
use crate::error::ApiError;
use crate::issue::{self, access_claims, Subject};
use crate::metrics::TokenLabels;
use crate::mtls::{self, ClientCertificate};
use crate::state::{AppState, ClientEntry};

/// Issues a token.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(
        content(
            (TokenParams = "application/x-www-form-urlencoded"),
            (TokenParams = "application/json"),
        ),
        description = "Client credentials (RFC 6749 §4.4), authorization code (§4.1.3) or refresh token (§6). The same names as a form or a JSON object."
    ),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Token issued", body = crate::issue::TokenResponse),
        (status = 400, description = "invalid_request, invalid_scope, invalid_target, unauthorized_client or unsupported_grant_type", body = crate::openapi::OAuthErrorBody),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthErrorBody),
        (status = 403, description = "access_denied: no grant for the audience", body = crate::openapi::OAuthErrorBody),
        (status = 413, description = "invalid_request: body too large", body = crate::openapi::OAuthErrorBody),
        (status = 429, description = "too_many_requests, with Retry-After", body = crate::openapi::OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: database unreachable", body = crate::openapi::OAuthErrorBody),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    cert: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        &state,
        uri.path(),
        &headers,
        cert.as_ref().map(|c| &c.0),
        body,
    )
    .await
}

/// [`token`] without the extractors: what `routes::App` calls when it serves the endpoint
/// ahead of the router. `path` is the path the request was sent to (a DPoP proof names it).
pub(crate) async fn answer(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    cert: Option<&ClientCertificate>,
    body: Body,
) -> Response {
    let mut grant_label = "unknown";
    let result = handle(state, path, headers, cert, body, &mut grant_label).await;
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
    let mut response = match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    // RFC 9449 §8: every answer to a DPoP request carries the nonce to use next.
    if state.config.dpop_nonce && headers.contains_key(&dpop::DPOP) {
        if let Some(nonce) = dpop::nonce_header(state) {
            response.headers_mut().insert(dpop::DPOP_NONCE, nonce);
        }
    }
    response
}

async fn handle(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    cert: Option<&ClientCertificate>,
    body: Body,
    grant_label: &mut &'static str,
) -> Result<Response, ApiError> {
    let proof = dpop::header(headers)?;
    let params = TokenParams::parse(super::read_params(state, headers, body).await?)?;
    let grant_type = params.grant_type()?;
    *grant_label = grant_type.as_str();
    let entry = authenticated_client(state, headers, params.credentials(), cert).await?;
    ensure_client_may_use(&entry.client, grant_type)?;
    // What is issued is bound to a DPoP key or a client certificate, if either came along; the
    // Bearer path (neither, and a client that requires neither) skips it all.
    let cnf = if proof.is_some() || cert.is_some() || entry.client.policy.require_dpop {
        Box::pin(binding(state, &entry, proof, cert, path)).await?
    } else {
        None
    };
    if !entry.quota_limits.is_empty() {
        Box::pin(count_against_quotas(state, &entry)).await?;
    }
    let issued = match params.into_request(grant_type)? {
        TokenRequest::ClientCredentials(request) => {
            client_credentials(state, &entry, &request, cnf).await
        }
        TokenRequest::AuthorizationCode(mut request) => {
            let (store, client, now) = (&*state.store, &entry.client, state.clock.now());
            request.dpop_jkt = cnf.as_ref().and_then(|c| c.jkt.clone());
            let grant = authorization_code::redeem(store, state, state, client, request, now);
            user_grant(state, &entry, grant.await, cnf).await
        }
        TokenRequest::RefreshToken(mut request) => {
            let (store, client, now) = (&*state.store, &entry.client, state.clock.now());
            let leeway = state.config.refresh_reuse_leeway;
            request.dpop_jkt = cnf.as_ref().and_then(|c| c.jkt.clone());
            let grant = refresh_token::rotate(store, state, state, client, request, now, leeway);
            user_grant(state, &entry, grant.await, cnf).await
        }
        TokenRequest::TokenExchange(request) => token_exchange(state, &entry, &request, cnf).await,
    };
    if issued.is_ok() {
        // Usage per client and hour: one atomic add; `usage` flushes it off this path.
        entry
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    issued
}

/// The binding of what a request is issued: the key of its DPoP proof (RFC 9449 §5; refused
/// without one when the client requires it) and the certificate a client authenticated with
/// (RFC 8705 §3).
async fn binding(
    state: &AppState,
    entry: &ClientEntry,
    proof: Option<&str>,
    cert: Option<&ClientCertificate>,
    path: &str,
) -> Result<Option<Confirmation>, ApiError> {
    let jkt = match proof {
        Some(proof) => Some(dpop::accept(state, proof, path).await?),
        None if entry.client.policy.require_dpop => {
            return Err(dpop::invalid(
                "this client must send a DPoP proof with every token request",
            )
            .into())
        }
        None => None,
    };
    let x5t_s256 = match (entry.client.policy.auth, cert) {
        (Some(KeyAuth::TlsClientAuth | KeyAuth::SelfSignedTlsClientAuth), Some(cert)) => {
            Some(mtls::thumbprint(&cert.0))
        }
        _ => None,
    };
    Ok((jkt.is_some() || x5t_s256.is_some()).then_some(Confirmation { jkt, x5t_s256 }))
}

/// Counts the request against the client's and its organization's quotas, on every node's
/// shared count; refused (429) when one is used up. Counted before the grant runs, so that a
/// refused request never spends a code or a refresh token.
async fn count_against_quotas(state: &AppState, entry: &ClientEntry) -> Result<(), ApiError> {
    let limits = &entry.quota_limits;
    match state.store.count_token(limits, state.clock.now()).await? {
        Ok(()) => Ok(()),
        Err(hit) => {
            let limit = &limits[hit.index];
            Err(ApiError::QuotaExceeded {
                retry_after: hit.retry_after.max(1) as u64,
                limit: limit.limit,
                whose: if limit.subject.starts_with("org:") {
                    "organization"
                } else {
                    "client"
                },
                window: if limit.window_secs == 3600 {
                    "hour"
                } else {
                    "day"
                },
            })
        }
    }
}

/// RFC 6749 §4.4: a machine token for the requested (or default) audience.
async fn client_credentials(
    state: &AppState,
    entry: &ClientEntry,
    request: &ClientCredentialsRequest,
    cnf: Option<Confirmation>,
) -> Result<Response, ApiError> {
    let client = &entry.client;
    let decision = client_credentials::decide(request, &entry.grants)?;
    let api = state.api(&decision.grant.audience).await?.ok_or_else(|| {
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
    let mut claims = access_claims(
        state,
        Subject::Client,
        &api,
        &client.id,
        &client.org_id,
        &decision.scope,
    );
    claims.cnf = cnf;
    issue::respond(state, api.alg, claims, None, None).await
}

/// The answer to a code redemption or a refresh rotation.
async fn user_grant(
    state: &AppState,
    entry: &ClientEntry,
    grant: Result<UserGrant, GrantError>,
    cnf: Option<Confirmation>,
) -> Result<Response, ApiError> {
    let grant = grant.map_err(|e| grant_error(state, entry, e))?;
    let family = &grant.family;
    let mut claims = access_claims(
        state,
        Subject::SignedIn {
            user_id: &family.user_id,
            sid: &family.id,
        },
        &grant.api,
        &family.client_id,
        &family.org_id,
        &grant.scope,
    );
    claims.cnf = cnf;
    issue::respond(state, grant.api.alg, claims, grant.refresh_token, None).await
}

/// A refused grant as an answer; a replayed code or refresh token is logged and recorded in
/// the audit log (and so sent to subscribed webhooks) as the security event it is.
fn grant_error(state: &AppState, entry: &ClientEntry, e: GrantError) -> ApiError {
    if let GrantError::Replayed {
        what, family_id, ..
    } = &e
    {
        let client_id = &entry.client.id;
        let kind = match what {
            Replayed::Code => {
                tracing::warn!(%client_id, family = %family_id,
                    "authorization code reused; its tokens are revoked");
                calyx_core::audit::kind::CODE_REUSED
            }
            Replayed::RefreshToken => {
                state.metrics.refresh_reuse_detected.inc();
                tracing::warn!(%client_id, family = %family_id,
                    "refresh token reused; family revoked");
                calyx_core::audit::kind::REFRESH_TOKEN_REUSED
            }
        };
        state.security_event(
            kind,
            crate::manage::About {
                org_id: Some(entry.client.org_id.clone()),
                client_id: Some(client_id.clone()),
                user_id: None,
                target: Some(family_id.clone()),
            },
            serde_json::json!({"family_id": family_id, "family_revoked": true}),
            None,
        );
    }
    e.into()
}

/// RFC 8693: the standard form of `/v2/users/{id}/authenticate`. The organization's client
/// authenticates and presents its own org token as `subject_token` with `requested_subject`
/// = the user id.
async fn token_exchange(
    state: &AppState,
    entry: &ClientEntry,
    request: &ExchangeRequest,
    cnf: Option<Confirmation>,
) -> Result<Response, ApiError> {
    let invalid_grant = |why| ApiError::from(OAuthError::new(ErrorCode::InvalidGrant, why));
    let org = match bearer::org_token(state, &request.subject_token).await? {
        Ok(org) => org,
        Err(bearer::Problem::Invalid(why)) => return Err(invalid_grant(why)),
        Err(bearer::Problem::UserToken) => {
            return Err(invalid_grant(
                "the subject_token must be the organization's token, not a user token",
            ))
        }
    };
    let delegation = token_exchange::exchange(&*state.store, &entry.client, request, org.subject())
        .await
        .map_err(|e| grant_error(state, entry, e))?;
    let mut claims = issue::delegated_claims(state, &delegation, &org.api, &org.claims.client_id);
    claims.cnf = cnf;
    issue::respond(state, org.api.alg, claims, None, Some(ACCESS_TOKEN_TYPE)).await
}

fn error_label(e: &ApiError) -> &'static str {
    match e {
        ApiError::OAuth { error, .. } => error.code.as_str(),
        ApiError::TooLarge(_) | ApiError::BodyTimeout(_) | ApiError::BodyUnreadable => {
            "invalid_request"
        }
        ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => "too_many_requests",
        ApiError::Bearer { .. } => "invalid_token",
        ApiError::NotFound(_) => "not_found",
        ApiError::MethodNotAllowed => "method_not_allowed",
        ApiError::Conflict(_) => "conflict",
        ApiError::Unavailable(_) => "temporarily_unavailable",
        ApiError::Internal(_) => "server_error",
    }
}
