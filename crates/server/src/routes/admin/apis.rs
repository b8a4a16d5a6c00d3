//! `/admin/v1/apis`: APIs (resource servers), their scopes and descriptions.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;

use super::{Body, Caller, PageQuery, Query};
use crate::error::ApiError;
use crate::manage::views::ApiView;
use crate::manage::{ApiPatch, Listing, ManageError, NewApi, ScopeList};

/// A new API.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiBody {
    /// The `aud` of its tokens; unique, never changed.
    audience: String,
    /// Display name.
    name: String,
    /// The scopes it defines.
    #[serde(default)]
    scopes: Option<ScopeList>,
    /// What each scope lets an application do.
    #[serde(default)]
    scope_descriptions: BTreeMap<String, String>,
    /// `ES256` (default), `EdDSA` or `RS256`.
    alg: Option<String>,
    /// Machine-token lifetime, seconds (default 86400).
    token_lifetime: Option<i64>,
    /// User-token lifetime, seconds (default 3600).
    user_token_lifetime: Option<i64>,
    /// Delegated-token lifetime, seconds (default 7200).
    delegated_token_lifetime: Option<i64>,
    /// Refresh-token lifetime, seconds (default 90 days).
    refresh_token_lifetime: Option<i64>,
}

/// Lists APIs.
#[utoipa::path(get, path = "/admin/v1/apis", tag = "admin", params(PageQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of APIs", body = Listing<ApiView>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Listing<ApiView>>, ApiError> {
    let (after, limit) = q.page()?;
    Ok(Json(caller.list_apis(after, limit).await?))
}

/// Creates an API (and a signing key for its algorithm, if there is none).
#[utoipa::path(post, path = "/admin/v1/apis", tag = "admin", request_body = NewApiBody,
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 201, description = "Created", body = ApiView),
        (status = 409, description = "An API with that audience exists", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn create(
    caller: Caller,
    Body(b): Body<NewApiBody>,
) -> Result<(StatusCode, Json<ApiView>), ApiError> {
    let alg = match b.alg {
        Some(a) => a.parse().map_err(ManageError::Invalid)?,
        None => Default::default(),
    };
    let api = caller
        .create_api(NewApi {
            audience: b.audience,
            name: b.name,
            scopes: b.scopes.map(|s| s.joined()).unwrap_or_default(),
            scope_descriptions: b.scope_descriptions,
            alg,
            token_lifetime: b.token_lifetime,
            user_token_lifetime: b.user_token_lifetime,
            delegated_token_lifetime: b.delegated_token_lifetime,
            refresh_token_lifetime: b.refresh_token_lifetime,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(api.into())))
}

/// Shows an API (by id or audience).
#[utoipa::path(get, path = "/admin/v1/apis/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The API", body = ApiView)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<ApiView>, ApiError> {
    Ok(Json(caller.api(&id).await?.into()))
}

/// Changes an API's name, scopes, descriptions, algorithm or lifetimes.
#[utoipa::path(patch, path = "/admin/v1/apis/{id}", tag = "admin", request_body = ApiPatch,
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 200, description = "Updated", body = ApiView),
        (status = 409, description = "A removed scope is still granted, or the API is built in", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(patch): Body<ApiPatch>,
) -> Result<Json<ApiView>, ApiError> {
    Ok(Json(caller.update_api(&id, patch).await?.into()))
}

/// Deletes an API: its grants go, and every family for it is revoked.
#[utoipa::path(delete, path = "/admin/v1/apis/{id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The API is built in", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn delete(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.delete_api(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
