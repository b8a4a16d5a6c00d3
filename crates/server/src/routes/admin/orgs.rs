//! `/admin/v1/orgs`: organizations.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;

use super::{Body, Caller, PageQuery, Query};
use crate::error::ApiError;
use crate::manage::views::OrgView;
use crate::manage::{Branding, BrandingPatch, EntitlementView, Listing, OrgPatch, ScopeList};

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

/// What an organization is entitled to on one API.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitlementBody {
    /// The most its developers may grant their applications (a subset of the API's scopes).
    scopes: ScopeList,
}

/// Lists an organization's entitlements: what its developers may grant their applications in
/// the developer portal.
#[utoipa::path(get, path = "/admin/v1/orgs/{id}/entitlements", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The entitlements, by API", body = Vec<EntitlementView>)))]
pub async fn entitlements(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EntitlementView>>, ApiError> {
    Ok(Json(caller.entitlements(&id).await?))
}

/// Entitles an organization to at most these scopes of an API (by id or audience), replacing
/// any earlier entitlement on it.
#[utoipa::path(put, path = "/admin/v1/orgs/{id}/entitlements/{api_id}", tag = "admin",
    request_body = EntitlementBody,
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Set", body = EntitlementView)))]
pub async fn set_entitlement(
    caller: Caller,
    Path((id, api)): Path<(String, String)>,
    Body(b): Body<EntitlementBody>,
) -> Result<Json<EntitlementView>, ApiError> {
    Ok(Json(caller.set_entitlement(&id, &api, &b.scopes).await?))
}

/// Removes an organization's entitlement on an API. Grants already made stay.
#[utoipa::path(delete, path = "/admin/v1/orgs/{id}/entitlements/{api_id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 204, description = "Removed")))]
pub async fn delete_entitlement(
    caller: Caller,
    Path((id, api)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.delete_entitlement(&id, &api).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The branding of the login, consent, error, console and portal pages.
#[utoipa::path(get, path = "/admin/v1/branding", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The branding", body = Branding)))]
pub async fn branding(caller: Caller) -> Result<Json<Branding>, ApiError> {
    Ok(Json(caller.branding().await?))
}

/// Changes the branding (name, logo URL, accent colour with at least 4.5:1 contrast on white).
#[utoipa::path(patch, path = "/admin/v1/branding", tag = "admin", request_body = BrandingPatch,
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Updated", body = Branding)))]
pub async fn update_branding(
    caller: Caller,
    Body(patch): Body<BrandingPatch>,
) -> Result<Json<Branding>, ApiError> {
    Ok(Json(caller.update_branding(patch).await?))
}
