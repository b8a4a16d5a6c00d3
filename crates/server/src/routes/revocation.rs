//! RFC 7009 revocation and RFC 7662 introspection. Both require client authentication.
//!
//! A refresh token is looked up by its keyed hash; anything else is tried as one of this
//! server's JWTs. Revoking a refresh token revokes its whole family; revoking an access token
//! records its `jti` until it would have expired. A client may revoke only tokens issued to
//! it (a public client too, RFC 7009 §5). Introspection needs a confidential client: it may
//! introspect refresh tokens issued to it and any access token (resource servers register as
//! confidential clients to do so); a public client, which proves nothing by naming its id, is
//! refused with 401.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use calyx_core::grant::refresh_token;
use calyx_core::model::ClientType;
use calyx_core::request::TokenOnlyParams;
use calyx_core::{ErrorCode, OAuthError};
use serde_json::json;

use super::read_params;
use crate::authn::authenticated_client;
use crate::error::ApiError;
use crate::mtls::ClientCertificate;
use crate::state::AppState;

/// Revokes a token (RFC 7009). Always 200 for a well-formed request, whether or not the
/// token was known.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenOnlyParams, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Revoked, or unknown"),
        (status = 400, description = "invalid_request", body = crate::openapi::OAuthErrorBody),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match do_revoke(&state, &headers, body, cert.as_ref().map(|c| &c.0)).await {
        Ok(()) => {
            let mut resp = StatusCode::OK.into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn do_revoke(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    cert: Option<&ClientCertificate>,
) -> Result<(), ApiError> {
    let params = TokenOnlyParams::parse(read_params(state, headers, body).await?)?;
    let entry = authenticated_client(state, headers, params.credentials(), cert).await?;
    let token = params.token()?;
    let now = state.clock.now();
    if let Some(found) = refresh_token::describe(state.store.as_ref(), state, token, now).await? {
        if found.family.client_id == entry.client.id {
            state.store.revoke_family(&found.family.id, now).await?;
        }
        return Ok(());
    }
    if let Ok(claims) = state.keys().verify(token, state.clock.now()) {
        if claims.client_id == entry.client.id && claims.iss == state.issuer {
            state.store.revoke_jti(&claims.jti, claims.exp).await?;
        }
    }
    Ok(())
}

/// Describes a token (RFC 7662): `{"active": false}` for anything unknown, expired or revoked.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = TokenOnlyParams, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "RFC 7662 introspection response", body = Object),
        (status = 400, description = "invalid_request", body = crate::openapi::OAuthErrorBody),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthErrorBody),
        (status = 429, description = "Too many failed client authentications", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn introspect(
    State(state): State<AppState>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match do_introspect(&state, &headers, body, cert.as_ref().map(|c| &c.0)).await {
        Ok(v) => {
            let mut resp = Json(v).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn do_introspect(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    cert: Option<&ClientCertificate>,
) -> Result<serde_json::Value, ApiError> {
    let params = TokenOnlyParams::parse(read_params(state, headers, body).await?)?;
    let entry = authenticated_client(state, headers, params.credentials(), cert).await?;
    if entry.client.client_type == ClientType::Public {
        // A public client proves nothing by naming its id (RFC 7662 §2.1 wants the caller
        // authorized): it may not learn about tokens, its own or anyone else's.
        return Err(ApiError::OAuth {
            error: OAuthError::new(
                ErrorCode::InvalidClient,
                "introspection needs a confidential client's credentials",
            ),
            basic_challenge: false,
        });
    }
    let token = params.token()?;
    let now = state.clock.now();
    let inactive = json!({"active": false});
    if let Some(found) = refresh_token::describe(state.store.as_ref(), state, token, now).await? {
        let family = found.family;
        if !found.live || family.client_id != entry.client.id {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true, "token_type": "refresh_token", "scope": family.scope.to_string(),
            "client_id": family.client_id, "sub": family.user_id, "sid": family.id,
            "exp": found.expires_at, "iat": found.issued_at, "iss": state.issuer,
        }));
    }
    let Ok(claims) = state.keys().verify(token, state.clock.now()) else {
        return Ok(inactive);
    };
    if claims.iss != state.issuer
        || claims.exp <= now
        || state.store.jti_revoked(&claims.jti).await?
    {
        return Ok(inactive);
    }
    // A token of a client since deleted or disabled is no longer active.
    match state.client_entry(&claims.client_id).await? {
        Some(c) if !c.client.disabled => {}
        _ => return Ok(inactive),
    }
    let for_user = !claims.sub.ends_with("@clients");
    if for_user && state.store.user(&claims.sub).await?.is_none() {
        return Ok(inactive);
    }
    if let Some(sid) = &claims.sid {
        match state.store.family(sid).await? {
            Some(f) if f.revoked_at.is_none() => {}
            _ => return Ok(inactive),
        }
    }
    // A bound token's `cnf` comes along (RFC 9449 §6.2, RFC 8705 §3.2), so a resource server
    // that introspects can check the binding.
    let bound = claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some());
    let mut v = serde_json::to_value(&claims).map_err(anyhow::Error::new)?;
    v["active"] = json!(true);
    v["token_type"] = json!(if bound { "DPoP" } else { "Bearer" });
    Ok(v)
}
