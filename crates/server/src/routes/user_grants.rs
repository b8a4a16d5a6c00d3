//! The grants that act for a user: authorization code (RFC 6749 §4.1.3, with PKCE) and
//! refresh token (§6, rotated on every use).
//!
//! Single use is decided by the database, not by this code: `Store::redeem_code` and
//! `Store::rotate_refresh` move a row from unused to used in one conditional statement inside
//! a transaction, so of any number of concurrent presentations exactly one wins. The checks
//! here beforehand (client, redirect URI, verifier, scope) only decide whether to try.

use std::sync::Arc;

use axum::response::Response;
use calyx_core::grant::{decide_scope, ensure_client_allows};
use calyx_core::model::{Api, Family, GrantType, RefreshToken, RotateOutcome};
use calyx_core::params::Params;
use calyx_core::{pkce, ErrorCode, OAuthError, ScopeSet};
use calyx_token::secret::{generate_secret, random_string};
use calyx_token::AccessClaims;

use super::token::issue;
use crate::error::ApiError;
use crate::state::{AppState, ClientEntry};

fn invalid_grant(description: &'static str) -> ApiError {
    OAuthError::new(ErrorCode::InvalidGrant, description).into()
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    state: &AppState,
    entry: &ClientEntry,
    params: &Params,
) -> Result<Response, ApiError> {
    let client = &entry.client;
    ensure_client_allows(client, GrantType::AuthorizationCode)?;
    let code = params.require("code")?;
    let code_hash = state.hasher.hash(code);
    let now = state.clock.now();
    let Some(record) = state.store.code(&code_hash).await? else {
        return Err(invalid_grant("the authorization code is invalid"));
    };
    if record.client_id != client.id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if record.used_at.is_some() {
        state.store.revoke_family(&record.family_id, now).await?;
        tracing::warn!(client_id = %client.id, "authorization code reused; its tokens are revoked");
        return Err(invalid_grant(
            "the authorization code was already used; tokens issued from it are revoked",
        ));
    }
    if now >= record.expires_at {
        return Err(invalid_grant("the authorization code has expired"));
    }
    match (params.get("redirect_uri"), record.redirect_uri_given) {
        (Some(given), _) if given != record.redirect_uri => {
            return Err(invalid_grant(
                "redirect_uri does not match the one the code was issued for",
            ))
        }
        (None, true) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: it was sent in the authorization request",
            )
            .into())
        }
        _ => {}
    }
    match (&record.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(invalid_grant(
                "code_verifier does not match the code_challenge",
            ))
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_request("code_verifier is required (PKCE)").into())
        }
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier sent but no code_challenge was",
            ))
        }
        (None, None) => {}
    }
    let api = load_api(state, &record.api_id).await?;
    let Some(user) = state.store.user(&record.user_id).await? else {
        return Err(invalid_grant("the user no longer exists"));
    };
    let family = Family {
        id: record.family_id.clone(),
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        org_id: user.org_id.clone(),
        api_id: api.id.clone(),
        scope: record.scope.clone(),
        created_at: now,
        revoked_at: None,
    };
    let refresh = client.allows(GrantType::RefreshToken).then(generate_secret);
    let refresh_row = refresh.as_ref().map(|t| RefreshToken {
        token_hash: state.hasher.hash(t),
        family_id: family.id.clone(),
        scope: record.scope.clone(),
        created_at: now,
        expires_at: now + api.refresh_token_lifetime,
        used_at: None,
        successor_sealed: None,
    });
    if !state
        .store
        .redeem_code(&code_hash, now, &family, refresh_row.as_ref())
        .await?
    {
        // Lost the race, or a replay: the winner's tokens must not survive (RFC 6749 §4.1.2).
        state.store.revoke_family(&record.family_id, now).await?;
        tracing::warn!(client_id = %client.id, "authorization code reused; its tokens are revoked");
        return Err(invalid_grant(
            "the authorization code was already used; tokens issued from it are revoked",
        ));
    }
    respond(state, &family, &api, &record.scope, refresh, now).await
}

/// `grant_type=refresh_token`.
pub async fn refresh_token(
    state: &AppState,
    entry: &ClientEntry,
    params: &Params,
) -> Result<Response, ApiError> {
    let client = &entry.client;
    ensure_client_allows(client, GrantType::RefreshToken)?;
    let presented = params.require("refresh_token")?;
    let old_hash = state.hasher.hash(presented);
    let now = state.clock.now();
    let Some((old, family)) = state.store.refresh_token(&old_hash).await? else {
        return Err(invalid_grant("the refresh token is invalid"));
    };
    if family.client_id != client.id {
        // Not this client's token: refuse without spending it.
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // RFC 6749 §6: a narrower scope is allowed, a wider one is not.
    let scope = decide_scope(params.get("scope"), &old.scope)?;
    let api = load_api(state, &family.api_id).await?;
    let successor = generate_secret();
    let leeway = state.refresh_reuse_leeway;
    let successor_row = RefreshToken {
        token_hash: state.hasher.hash(&successor),
        family_id: family.id.clone(),
        scope: old.scope.clone(),
        created_at: now,
        expires_at: now + api.refresh_token_lifetime,
        used_at: None,
        successor_sealed: (leeway > 0).then(|| state.web_sealer.seal(successor.as_bytes())),
    };
    match state
        .store
        .rotate_refresh(&old_hash, &successor_row, now, leeway)
        .await?
    {
        RotateOutcome::Rotated => respond(state, &family, &api, &scope, Some(successor), now).await,
        RotateOutcome::Retried(sealed) => {
            let again = state
                .web_sealer
                .open(&sealed)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| anyhow::anyhow!("the sealed successor could not be opened"))?;
            respond(state, &family, &api, &scope, Some(again), now).await
        }
        RotateOutcome::Reused => {
            tracing::warn!(client_id = %client.id, family = %family.id, "refresh token reused; family revoked");
            Err(invalid_grant(
                "the refresh token was already used; the authorization is revoked",
            ))
        }
        RotateOutcome::Invalid => Err(invalid_grant("the refresh token is expired or revoked")),
    }
}

async fn load_api(state: &AppState, api_id: &str) -> Result<Arc<Api>, ApiError> {
    state
        .api_by_id(api_id)
        .await?
        .ok_or_else(|| invalid_grant("the API this grant was for no longer exists"))
}

async fn respond(
    state: &AppState,
    family: &Family,
    api: &Api,
    scope: &ScopeSet,
    refresh_token: Option<String>,
    now: i64,
) -> Result<Response, ApiError> {
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: family.user_id.clone(),
        aud: api.audience.clone(),
        exp: now + api.user_token_lifetime,
        iat: now,
        jti: random_string(16),
        client_id: family.client_id.clone(),
        scope: scope.to_string(),
        org_id: Some(family.org_id.clone()),
        sid: Some(family.id.clone()),
    };
    issue(state, api.alg, claims, refresh_token).await
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): the standard form
/// of `/v2/users/{id}/authenticate`. The organization's client authenticates and presents its
/// own org token as `subject_token` with `requested_subject` = the user id.
pub async fn token_exchange(
    state: &AppState,
    entry: &ClientEntry,
    params: &Params,
) -> Result<Response, ApiError> {
    const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
    let client = &entry.client;
    // Delegation extends the organization's machine access, so a client that may use
    // client_credentials may exchange its own tokens too.
    if !client.allows(GrantType::TokenExchange) {
        ensure_client_allows(client, GrantType::ClientCredentials)?;
    }
    let subject = params.require("subject_token")?;
    match params.get("subject_token_type") {
        None | Some(ACCESS_TOKEN_TYPE) | Some("urn:ietf:params:oauth:token-type:jwt") => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE}"
            ))
            .into())
        }
    }
    let user_id = params.require("requested_subject")?;
    let org = match crate::bearer::org_token(state, subject).await? {
        Ok(org) => org,
        Err(crate::bearer::Problem::Invalid(why)) => {
            return Err(OAuthError::new(ErrorCode::InvalidGrant, why).into())
        }
        Err(crate::bearer::Problem::UserToken) => {
            return Err(invalid_grant(
                "the subject_token must be the organization's token, not a user token",
            ))
        }
    };
    if org.claims.client_id != client.id {
        return Err(invalid_grant(
            "the subject_token was issued to another client",
        ));
    }
    if !org.scope.contains("users:authenticate") {
        return Err(OAuthError::invalid_scope(
            "the subject_token lacks the users:authenticate scope",
        )
        .into());
    }
    if let Some(aud) = params.get("audience").or(params.get("resource")) {
        if aud != org.api.audience {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the audience must be the subject_token's",
            )
            .into());
        }
    }
    let user = match super::users::own_user(state, &org.org_id, user_id).await {
        Ok(u) => u,
        Err(ApiError::NotFound(_)) => {
            return Err(invalid_grant("no such user in this organization"))
        }
        Err(e) => return Err(e),
    };
    let (access_token, expires_in, scope) = super::users::delegated_token(
        state,
        &org.claims.client_id,
        &org.api,
        &org.grant_scopes,
        &user,
    )
    .await?;
    Ok(super::token::token_response(&serde_json::json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": scope.to_string(),
    })))
}
