//! The organization's user registry and delegation.
//!
//! Every endpoint takes the organization's machine token (`Authorization: Bearer`), checked in
//! `bearer`: `users:write` to register, list, read and delete; `users:authenticate` to mint a
//! user-scoped token. An organization only ever sees its own users: another org's user is a
//! 404, exactly as if it did not exist.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use calyx_core::grant::token_exchange::{self, AUTHENTICATE_SCOPE};
use calyx_core::model::Page;
use calyx_core::model::User;
use calyx_core::request::PageParams;
use calyx_core::OAuthError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bearer::{self, OrgToken};
use crate::error::ApiError;
use crate::issue;
use crate::manage::{Actor, NewUser};
use crate::state::AppState;

const WRITE: &str = "users:write";
const AUTHENTICATE: &str = AUTHENTICATE_SCOPE;

/// Body of `POST /v2/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUserBody {
    /// The organization's own id for the user; unique within the organization.
    external_id: Option<String>,
    /// Login name, unique across the deployment.
    username: Option<String>,
    /// Contact address.
    email: Option<String>,
    /// The scopes the user may hold for the org token's API, space-separated or as a list.
    /// Defaults to the org token's own scopes (less the reserved ones).
    #[schema(value_type = Option<String>)]
    allowed_scopes: Option<ScopesField>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopesField {
    Text(String),
    List(Vec<String>),
}

/// A user as the registry shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    user_id: String,
    org_id: String,
    external_id: Option<String>,
    username: Option<String>,
    email: Option<String>,
    /// The scopes the user may hold for the org token's API.
    allowed_scopes: String,
    created_at: i64,
}

/// A page of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    users: Vec<UserView>,
    /// Pass as `after` to get the next page; absent on the last page.
    next_after: Option<String>,
}

/// A delegated user token (the camel-case `expiresIn` existing clients read, beside RFC 6749's `expires_in`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DelegatedToken {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(rename = "expiresIn")]
    expires_in_camel: i64,
}

/// Registers a user of the caller's organization.
#[utoipa::path(post, path = "/v2/users", tag = "users",
    request_body(content = NewUserBody, content_type = "application/json"),
    security(("org_token" = ["users:write"])),
    responses(
        (status = 201, description = "Registered", body = UserView),
        (status = 400, description = "invalid_request", body = crate::openapi::OAuthErrorBody),
        (status = 409, description = "The username or external id is taken", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let org = bearer::require(&state, &headers, WRITE).await?;
    if !super::has_content_type(&headers, "application/json") {
        return Err(OAuthError::invalid_request("Content-Type must be application/json").into());
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::invalid_request(format!("the body is not JSON: {e}")))?;
    if !body.is_object() {
        return Err(OAuthError::invalid_request("the body must be a JSON object").into());
    }
    let body: NewUserBody = serde_json::from_value(body)
        .map_err(|e| OAuthError::invalid_request(format!("the body is not a valid user: {e}")))?;
    let scopes = match body.allowed_scopes {
        None => org.scope.intersection(&org.grant_scopes).to_string(),
        Some(ScopesField::Text(s)) => s,
        Some(ScopesField::List(l)) => l.join(" "),
    };
    let new = NewUser {
        org_id: org.org_id.clone(),
        username: body.username,
        password: None,
        external_id: body.external_id,
        email: body.email,
        scopes: vec![(org.api.audience.clone(), scopes)],
        ceiling: Some(org.grant_scopes.clone()),
        // An organization's backend registers end users, never admins of the portal.
        role: None,
    };
    let user = state
        .manager
        .acting_as(Actor::org_client(&org.claims.client_id, None))
        .create_user(new)
        .await
        .map_err(ApiError::from)?;
    let view = view(&state, &org, user).await?;
    let location = HeaderValue::from_str(&format!("/v2/users/{}", view.user_id));
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = location {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Lists the caller's users, oldest id first, `limit` (1–200, default 50) at a time.
#[utoipa::path(get, path = "/v2/users", tag = "users",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)"),
        ("after" = Option<String>, Query, description = "The next_after of the previous page"),
    ),
    security(("org_token" = ["users:write"])),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "invalid_request: a bad limit", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<UserPage>, ApiError> {
    let org = bearer::require(&state, &headers, WRITE).await?;
    let PageParams { limit, after } = PageParams::parse(q.unwrap_or_default().as_bytes())?;
    let users = state
        .store
        .list_users(
            Some(&org.org_id),
            Page {
                after: after.as_deref(),
                limit: limit + 1,
            },
        )
        .await?;
    let more = users.len() as i64 > limit;
    let mut views = Vec::with_capacity(users.len());
    for u in users.into_iter().take(limit as usize) {
        views.push(view(&state, &org, u).await?);
    }
    let next_after = if more {
        views.last().map(|v| v.user_id.clone())
    } else {
        None
    };
    Ok(Json(UserPage {
        users: views,
        next_after,
    }))
}

/// One user of the caller's organization.
#[utoipa::path(get, path = "/v2/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "The user id")),
    security(("org_token" = ["users:write"])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user in this organization", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let org = bearer::require(&state, &headers, WRITE).await?;
    let user = own_user(&state, &org.org_id, &id).await?;
    Ok(Json(view(&state, &org, user).await?))
}

/// Deletes a user; every token issued for the user stops working.
#[utoipa::path(delete, path = "/v2/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "The user id")),
    security(("org_token" = ["users:write"])),
    responses(
        (status = 204, description = "Deleted; the user's tokens are revoked"),
        (status = 404, description = "No such user in this organization", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let org = bearer::require(&state, &headers, WRITE).await?;
    if !id.contains('\0')
        && state
            .store
            .delete_user(&org.org_id, &id, state.clock.now())
            .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such_user())
    }
}

/// Mints a user-scoped token for the org token's API.
#[utoipa::path(post, path = "/v2/users/{user_id}/authenticate", tag = "users",
    params(("user_id" = String, Path, description = "The user id")),
    security(("org_token" = ["users:authenticate"])),
    responses(
        (status = 200, description = "A user-scoped token", body = DelegatedToken),
        (status = 404, description = "No such user in this organization", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn authenticate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let org = bearer::require(&state, &headers, AUTHENTICATE).await?;
    let Some(delegation) = token_exchange::delegate(&*state.store, org.subject(), &id).await?
    else {
        return Err(no_such_user());
    };
    let claims = issue::delegated_claims(&state, &delegation, &org.api, &org.claims.client_id);
    let expires_in = claims.exp - claims.iat;
    let access_token = issue::sign(&state, org.api.alg, &claims).await?;
    let mut resp = Json(DelegatedToken {
        access_token,
        token_type: "Bearer",
        expires_in,
        expires_in_camel: expires_in,
    })
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The user, if it belongs to the organization `org_id`; otherwise 404, as if absent.
async fn own_user(state: &AppState, org_id: &str, id: &str) -> Result<User, ApiError> {
    token_exchange::org_user(&*state.store, org_id, id)
        .await?
        .ok_or_else(no_such_user)
}

fn no_such_user() -> ApiError {
    ApiError::NotFound("no such user".into())
}

async fn view(state: &AppState, org: &OrgToken, u: User) -> Result<UserView, ApiError> {
    let allowed = state
        .store
        .user_scopes(&u.id, &org.api.id)
        .await?
        .unwrap_or_default();
    Ok(UserView {
        user_id: u.id,
        org_id: u.org_id,
        external_id: u.external_id,
        username: u.username,
        email: u.email,
        allowed_scopes: allowed.to_string(),
        created_at: u.created_at,
    })
}
