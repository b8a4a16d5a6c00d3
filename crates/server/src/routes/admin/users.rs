//! `/admin/v1/users`: users of every organization.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;

use super::{Body, Caller, Query};
use crate::error::ApiError;
use crate::manage::views::UserRecord;
use crate::manage::{Listing, ManageError, NewUser, ScopeList, UserPatch};

/// A new user.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRecord {
    /// Owning organization.
    org_id: String,
    /// Login name, unique within the organization.
    username: Option<String>,
    /// Password (at least 8 characters), stored only as an argon2id hash.
    password: Option<String>,
    /// The organization's own id for the user.
    external_id: Option<String>,
    /// Contact address.
    email: Option<String>,
    /// `operator` (users of `org_calyx_operators`: the console) or `org_admin` (the
    /// developer portal of the user's organization).
    role: Option<String>,
    /// The most the user may grant, per API audience.
    #[serde(default)]
    allowed_scopes: BTreeMap<String, ScopeList>,
}

/// Query of the user listing.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct UserQuery {
    /// Only this organization's users.
    org_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// Lists users.
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin", params(UserQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of users", body = Listing<UserRecord>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<UserQuery>,
) -> Result<Json<Listing<UserRecord>>, ApiError> {
    let limit = crate::manage::page_limit(q.limit)?;
    Ok(Json(
        caller
            .list_users(q.org_id.as_deref(), q.after.as_deref(), limit)
            .await?,
    ))
}

/// Creates a user.
#[utoipa::path(post, path = "/admin/v1/users", tag = "admin", request_body = NewUserRecord,
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 201, description = "Created", body = UserRecord),
        (status = 409, description = "The username or external id is taken in the organization", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn create(
    caller: Caller,
    Body(b): Body<NewUserRecord>,
) -> Result<(StatusCode, Json<UserRecord>), ApiError> {
    let role = match b.role.as_deref() {
        None => None,
        Some(r) => Some(r.parse().map_err(ManageError::Invalid)?),
    };
    let user = caller
        .create_user(NewUser {
            role,
            org_id: b.org_id,
            username: b.username,
            password: b.password,
            external_id: b.external_id,
            email: b.email,
            scopes: b
                .allowed_scopes
                .into_iter()
                .map(|(a, s)| (a, s.joined()))
                .collect(),
            ceiling: None,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(caller.user_view(user).await?)))
}

/// Shows a user (never a password).
#[utoipa::path(get, path = "/admin/v1/users/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The user", body = UserRecord)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<UserRecord>, ApiError> {
    let user = caller.user(&id).await?;
    Ok(Json(caller.user_view(user).await?))
}

/// Changes a user.
#[utoipa::path(patch, path = "/admin/v1/users/{id}", tag = "admin", request_body = UserPatch,
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Updated", body = UserRecord)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<UserRecord>, ApiError> {
    let user = caller.update_user(&id, patch).await?;
    Ok(Json(caller.user_view(user).await?))
}

/// Deletes a user and revokes every family of the user.
#[utoipa::path(delete, path = "/admin/v1/users/{id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.delete_user(None, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
