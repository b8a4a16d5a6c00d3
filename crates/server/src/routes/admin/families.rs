//! `/admin/v1/families`: each sign-in's chain of tokens; revoke one.

use axum::extract::Path;
use axum::Json;
use calyx_core::model::FamilyFilter;

use super::{Caller, Query};
use crate::error::ApiError;
use crate::manage::views::FamilyView;
use crate::manage::{Listing, ManageError};

/// Query of the family listing: by client or by user (at least one).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct FamilyQuery {
    /// Only this client's families.
    client_id: Option<String>,
    /// Only this user's families.
    user_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// Lists a client's or a user's families.
#[utoipa::path(get, path = "/admin/v1/families", tag = "admin", params(FamilyQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of families", body = Listing<FamilyView>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<FamilyQuery>,
) -> Result<Json<Listing<FamilyView>>, ApiError> {
    if q.client_id.is_none() && q.user_id.is_none() {
        return Err(ManageError::Invalid("name a client_id or a user_id".into()).into());
    }
    let limit = crate::manage::page_limit(q.limit)?;
    let filter = FamilyFilter {
        client_id: q.client_id,
        user_id: q.user_id,
    };
    Ok(Json(
        caller
            .list_families(&filter, q.after.as_deref(), limit)
            .await?,
    ))
}

/// Shows a family.
#[utoipa::path(get, path = "/admin/v1/families/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The family", body = FamilyView)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<FamilyView>, ApiError> {
    Ok(Json(caller.family(&id).await?.into()))
}

/// Revokes a family: its refresh tokens stop at once, its access tokens stop introspecting.
#[utoipa::path(post, path = "/admin/v1/families/{id}/revoke", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Revoked", body = FamilyView)))]
pub async fn revoke(caller: Caller, Path(id): Path<String>) -> Result<Json<FamilyView>, ApiError> {
    Ok(Json(caller.revoke_family(&id).await?.into()))
}
