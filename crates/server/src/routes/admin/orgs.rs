//! `/admin/v1/orgs`: organizations.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;

use super::{Body, Caller, PageQuery, Query};
use crate::error::ApiError;
use crate::manage::views::OrgView;
use crate::manage::{Listing, OrgPatch};

/// A new organization.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Display name, unique.
    name: String,
}

/// Lists organizations.
#[utoipa::path(get, path = "/admin/v1/orgs", tag = "admin", params(PageQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of organizations", body = Listing<OrgView>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Listing<OrgView>>, ApiError> {
    let (after, limit) = q.page()?;
    Ok(Json(caller.list_orgs(after, limit).await?))
}

/// Creates an organization.
#[utoipa::path(post, path = "/admin/v1/orgs", tag = "admin", request_body = NewOrg,
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 201, description = "Created", body = OrgView),
        (status = 409, description = "An organization with that name exists", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn create(
    caller: Caller,
    Body(new): Body<NewOrg>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let org = caller.create_org(&new.name).await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// Shows an organization.
#[utoipa::path(get, path = "/admin/v1/orgs/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The organization", body = OrgView)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(caller.org(&id).await?.into()))
}

/// Renames an organization.
#[utoipa::path(patch, path = "/admin/v1/orgs/{id}", tag = "admin", request_body = OrgPatch,
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 200, description = "Updated", body = OrgView),
        (status = 409, description = "The name is taken", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(patch): Body<OrgPatch>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(caller.update_org(&id, patch).await?.into()))
}

/// Deletes an organization that has no clients and no users.
#[utoipa::path(delete, path = "/admin/v1/orgs/{id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "It still has clients or users", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn delete(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.delete_org(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
