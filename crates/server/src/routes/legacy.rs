//! `POST /v1/users/authenticate/{user_id}`: the older shape of user delegation, kept for
//! clients already written against it. Off unless `serve --legacy-user-authenticate-v1`.
//!
//! The organization's client sends its own credentials as `Authorization: Bearer
//! <client_id>:<client_secret>` (not an access token) and gets the user's token back as the
//! whole response body, in plain text. The credentials are checked exactly as the token
//! endpoint checks them, throttling included; the token is the one `/v2/users/{id}/authenticate`
//! mints for the client's default audience, which the client's grant for it must allow with
//! `users:authenticate`. Because a secret travels in every request, the route is served only
//! over TLS or on a loopback address (checked at start-up). Errors are JSON, as everywhere.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use calyx_core::client_auth::{bearer_token, ClientAuth, Secret};
use calyx_core::grant::ensure_client_allows;
use calyx_core::grant::token_exchange::{self, OrgSubject, AUTHENTICATE_SCOPE};
use calyx_core::model::GrantType;
use calyx_core::{ErrorCode, OAuthError};

use crate::authn::authenticate;
use crate::error::ApiError;
use crate::issue;
use crate::state::AppState;

/// Mints a user-scoped token and answers it as plain text.
pub async fn authenticate_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let auth = credentials(&headers)?;
    let entry = authenticate(&state, &auth, None).await?;
    let client = &entry.client;
    ensure_client_allows(client, GrantType::ClientCredentials)?;
    let grant = match entry.grants.as_slice() {
        [only] => only,
        grants => grants.iter().find(|g| g.is_default).ok_or_else(|| {
            OAuthError::invalid_request("this client has no default audience to act for")
        })?,
    };
    if !grant.scopes.contains(AUTHENTICATE_SCOPE) {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "this client's grant does not include users:authenticate",
        )
        .into());
    }
    let api = state.api_by_id(&grant.api_id).await?.ok_or_else(|| {
        OAuthError::new(ErrorCode::AccessDenied, "the client's API no longer exists")
    })?;
    let ceiling = grant.scopes.without_reserved();
    let subject = OrgSubject {
        client_id: &client.id,
        org_id: &client.org_id,
        scope: &grant.scopes,
        api: &api,
        grant_scopes: &ceiling,
    };
    let Some(delegation) = token_exchange::delegate(&*state.store, subject, &user_id).await? else {
        return Err(ApiError::NotFound("no such user".into()));
    };
    let claims = issue::delegated_claims(&state, &delegation, &api, &client.id);
    let token = issue::sign(&state, api.alg, &claims).await?;
    let mut resp = (StatusCode::OK, token).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `Authorization: Bearer <client_id>:<client_secret>`, taken literally (no decoding). The
/// secret is split off at the last colon: generated secrets never hold one.
fn credentials(headers: &HeaderMap) -> Result<ClientAuth, ApiError> {
    let refused = || ApiError::OAuth {
        error: OAuthError::new(
            ErrorCode::InvalidClient,
            "send Authorization: Bearer <client_id>:<client_secret>",
        ),
        basic_challenge: false,
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    let credentials = bearer_token(value).ok_or_else(refused)?;
    let (id, secret) = credentials.rsplit_once(':').ok_or_else(refused)?;
    if id.is_empty() || secret.is_empty() || id.contains('\0') {
        return Err(refused());
    }
    Ok(ClientAuth::Post {
        client_id: id.to_owned(),
        secret: Secret::new(secret),
    })
}
