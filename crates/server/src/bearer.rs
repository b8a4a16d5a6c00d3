//! Org-scoped Bearer tokens, checked as a resource server would (RFC 6750): the user
//! registry endpoints and the RFC 8693 token exchange both act for an organization and accept
//! only its machine token.
//!
//! A token is an org token when this server signed it (known `kid`, `typ` `at+jwt`, valid
//! signature, not expired), its `iss` is this issuer, its `aud` is an API registered here,
//! its `jti` is not revoked, and it is a client-credentials token (`sub` =
//! `{client_id}@clients`, no `sid`). A user-scoped token is never an org token.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use calyx_core::client_auth::bearer_token;
use calyx_core::grant::token_exchange::OrgSubject;
use calyx_core::model::Api;
use calyx_core::ScopeSet;
use calyx_token::AccessClaims;

use crate::error::ApiError;
use crate::state::AppState;

/// A validated org token.
#[derive(Debug)]
pub struct OrgToken {
    /// Its claims.
    pub claims: AccessClaims,
    /// The organization it acts for.
    pub org_id: String,
    /// The API it is for.
    pub api: Arc<Api>,
    /// Its scopes.
    pub scope: ScopeSet,
    /// What the token's client is granted for the API now (reserved scopes removed): the
    /// most a user it registers or authenticates may hold.
    pub grant_scopes: ScopeSet,
}

impl OrgToken {
    /// What the token says, as the delegation decisions take it.
    pub fn subject(&self) -> OrgSubject<'_> {
        OrgSubject {
            client_id: &self.claims.client_id,
            org_id: &self.org_id,
            scope: &self.scope,
            api: &self.api,
            grant_scopes: &self.grant_scopes,
        }
    }
}

/// Why a token is not an acceptable org token.
#[derive(Debug)]
pub enum Problem {
    /// Not valid here at all.
    Invalid(&'static str),
    /// Valid, but a user-scoped token.
    UserToken,
}

/// Checks a token string; database errors are returned as such.
pub async fn org_token(
    state: &AppState,
    token: &str,
) -> Result<Result<OrgToken, Problem>, ApiError> {
    let Ok(claims) = state.keys().verify(token, state.clock.now()) else {
        return Ok(Err(Problem::Invalid(
            "the token is malformed, expired or not signed by this server",
        )));
    };
    if claims.iss != state.issuer {
        return Ok(Err(Problem::Invalid(
            "the token was issued by another server",
        )));
    }
    let Some(api) = state.api(&claims.aud).await? else {
        return Ok(Err(Problem::Invalid(
            "the token's audience is not an API of this server",
        )));
    };
    if state.store.jti_revoked(&claims.jti).await? {
        return Ok(Err(Problem::Invalid("the token was revoked")));
    }
    let is_machine = claims.sid.is_none() && claims.sub == format!("{}@clients", claims.client_id);
    if !is_machine {
        return Ok(Err(Problem::UserToken));
    }
    let Some(org_id) = claims.org_id.clone() else {
        return Ok(Err(Problem::Invalid("the token names no organization")));
    };
    let Some(client) = state.client_entry(&claims.client_id).await? else {
        return Ok(Err(Problem::Invalid("the token's client no longer exists")));
    };
    if client.client.disabled {
        return Ok(Err(Problem::Invalid("the token's client is disabled")));
    }
    let grant_scopes = client
        .grants
        .iter()
        .find(|g| g.api_id == api.id)
        .map(|g| g.scopes.without_reserved())
        .unwrap_or_default();
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    Ok(Ok(OrgToken {
        claims,
        org_id,
        api,
        scope,
        grant_scopes,
    }))
}

/// The org token of a request's `Authorization: Bearer` header, holding `required`.
pub async fn require(
    state: &AppState,
    headers: &HeaderMap,
    required: &'static str,
) -> Result<OrgToken, ApiError> {
    let unauthorized = |error: Option<&'static str>, description: &str| ApiError::Bearer {
        error,
        description: description.to_owned(),
        scope: None,
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            None,
            "a Bearer token is required (Authorization: Bearer <org token>)",
        ));
    };
    let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
        unauthorized(
            Some("invalid_token"),
            "the Authorization header must be: Bearer <token>",
        )
    })?;
    let org = match org_token(state, token).await? {
        Ok(org) => org,
        Err(Problem::Invalid(why)) => return Err(unauthorized(Some("invalid_token"), why)),
        Err(Problem::UserToken) => {
            return Err(ApiError::Bearer {
                error: Some("insufficient_scope"),
                description:
                    "a user-scoped token cannot act for its organization; use the org token".into(),
                scope: Some(required),
            })
        }
    };
    if !org.scope.contains(required) {
        return Err(ApiError::Bearer {
            error: Some("insufficient_scope"),
            description: format!("this endpoint needs the {required} scope"),
            scope: Some(required),
        });
    }
    Ok(org)
}
