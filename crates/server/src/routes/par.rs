//! `POST /oauth/par`: pushed authorization requests (RFC 9126).
//!
//! The client authenticates as at the token endpoint and sends the authorization request's
//! parameters in the body. They are checked here exactly as `/authorize` would check them
//! (client, redirect URI, `response_type`, `state`, PKCE, audience and scope), so a bad
//! request fails now, as JSON, rather than in the user's browser. What passes is stored
//! without the client's credentials under a keyed hash of a fresh `request_uri`, for
//! [`LIFETIME`] seconds; `/authorize?client_id=..&request_uri=..` takes it once.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use calyx_core::authorize;
use calyx_core::model::PushedRequest;
use calyx_core::request::{AuthorizeParams, TokenOnlyParams};
use calyx_core::{redirect, OAuthError};
use calyx_token::secret::random_string;
use serde_json::json;

use super::read_params;
use crate::authn::authenticated_client;
use crate::error::ApiError;
use crate::mtls::ClientCertificate;
use crate::state::AppState;

/// Seconds a pushed request waits for `/authorize` (RFC 9126 §2.2 suggests 5 to 600).
pub(crate) const LIFETIME: i64 = 90;

/// The client's credentials, which are not kept with the request.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion_type", "client_assertion"];

/// Pushes an authorization request (RFC 9126 §2.1).
#[utoipa::path(post, path = "/oauth/par", tag = "oauth",
    request_body(content = Object, content_type = "application/x-www-form-urlencoded",
        description = "The authorization request's parameters (as for GET /authorize) and the client's authentication (as for the token endpoint)"),
    security((), ("client_basic" = [])),
    responses(
        (status = 201, description = "`{\"request_uri\", \"expires_in\"}`", body = Object),
        (status = 400, description = "invalid_request, invalid_scope, invalid_target, unauthorized_client", body = crate::openapi::OAuthErrorBody),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn par(
    State(state): State<AppState>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match push(&state, &headers, body, cert.as_ref().map(|c| &c.0)).await {
        Ok(v) => {
            let mut resp = (StatusCode::CREATED, Json(v)).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn push(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    cert: Option<&ClientCertificate>,
) -> Result<serde_json::Value, ApiError> {
    let params = read_params(state, headers, body).await?;
    let credentials = TokenOnlyParams::parse(params.clone())?;
    let entry = authenticated_client(state, headers, credentials.credentials(), cert).await?;
    let mut request = AuthorizeParams::from_params(params.clone())?;
    if request.request_uri.is_some() {
        return Err(
            OAuthError::invalid_request("a pushed request cannot carry a request_uri").into(),
        );
    }
    let client = &entry.client;
    if request
        .client_id
        .as_deref()
        .is_some_and(|id| id != client.id)
    {
        return Err(
            OAuthError::invalid_request("client_id differs from the authenticated client").into(),
        );
    }
    request.client_id = Some(client.id.clone());
    let redirect = redirect::resolve(request.redirect_uri.as_deref(), &client.redirect_uris)
        .map_err(|e| OAuthError::invalid_request(e.description().to_owned()))?;
    if redirect::reserved_parameter(&redirect.uri).is_some() {
        return Err(OAuthError::invalid_request(
            "the redirect URI must not carry code, state, error or iss in its query",
        )
        .into());
    }
    authorize::validate(&request, client, &entry.grants, redirect)?;
    let request_uri = format!("{}{}", authorize::REQUEST_URI_PREFIX, random_string(32));
    let pushed = PushedRequest {
        uri_hash: state.hasher.hash(&request_uri),
        client_id: client.id.clone(),
        params: params.to_form(&CREDENTIALS, &client.id),
        expires_at: state.clock.now() + LIFETIME,
    };
    state.store.push_request(&pushed).await?;
    Ok(json!({"request_uri": request_uri, "expires_in": LIFETIME}))
}
