//! `/admin/v1/clients`: clients, their secrets, their grants, and the revocation of every
//! token they hold.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use calyx_core::model::{ClientPolicy, ClientType, GrantType, Quota};

use super::{Body, Caller, Query};
use crate::error::ApiError;
use crate::manage::views::{ClientView, CreatedClient, GrantView, UsageView};
use crate::manage::{parse_auth_method, ClientPatch, GrantPatch, Listing, ManageError};
use crate::manage::{NewClient, ScopeList};

/// A new client (the registration fields of an application).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    /// Owning organization.
    org_id: String,
    /// Display name, shown on the consent page.
    name: String,
    /// `confidential` (default; has a secret) or `public` (PKCE, no secret).
    #[serde(rename = "type")]
    client_type: Option<String>,
    /// Grant types; by type when absent.
    #[serde(default)]
    grant_types: Vec<String>,
    /// Redirect URIs, matched exactly.
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Free text.
    description: Option<String>,
    /// Website.
    website_uri: Option<String>,
    /// Privacy policy.
    privacy_policy_uri: Option<String>,
    /// Terms of service.
    tos_uri: Option<String>,
    /// `client_secret_basic` (default for confidential clients), `none` (public),
    /// `private_key_jwt`, `tls_client_auth` or `self_signed_tls_client_auth`.
    token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK Set (`private_key_jwt`, `self_signed_tls_client_auth`).
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK Set (`private_key_jwt`).
    jwks_uri: Option<String>,
    /// The subject DN of the client's certificate (`tls_client_auth`).
    tls_client_auth_subject_dn: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449).
    #[serde(default)]
    require_dpop: bool,
    /// Authorization requests must be pushed first (RFC 9126).
    #[serde(default)]
    require_par: bool,
    /// Tokens per hour.
    tokens_per_hour: Option<i64>,
    /// Tokens per day.
    tokens_per_day: Option<i64>,
}

/// Query of the client listing.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct ClientQuery {
    /// Only this organization's clients.
    org_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// A new secret's grace period.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Seconds the old secret keeps working (0, the default, stops it at once).
    #[serde(default)]
    grace_seconds: i64,
}

/// How many families were revoked.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// Families (sign-ins) revoked.
    families_revoked: u64,
}

/// A new grant.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrantBody {
    /// The API, by id (or audience).
    api_id: Option<String>,
    /// The API by audience (instead of `api_id`).
    audience: Option<String>,
    /// The most the client may ask for.
    scopes: ScopeList,
    /// Make it the client's default audience.
    #[serde(default)]
    default: bool,
}

/// Lists clients.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "admin", params(ClientQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of clients", body = Listing<ClientView>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<ClientQuery>,
) -> Result<Json<Listing<ClientView>>, ApiError> {
    let limit = crate::manage::page_limit(q.limit)?;
    Ok(Json(
        caller
            .list_clients(q.org_id.as_deref(), q.after.as_deref(), limit)
            .await?,
    ))
}

/// Registers a client; the answer holds its secret, which is never shown again.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "admin", request_body = NewClientBody,
    security(("admin_token" = ["admin:write"])),
    responses(
        (status = 201, description = "Created; `client_secret` is shown only here", body = CreatedClient),
        (status = 404, description = "No such organization", body = crate::openapi::OAuthErrorBody),
        (status = 409, description = "The client id exists", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn create(
    caller: Caller,
    Body(b): Body<NewClientBody>,
) -> Result<(StatusCode, Json<CreatedClient>), ApiError> {
    let client_type: ClientType = match b.client_type {
        Some(t) => t.parse().map_err(ManageError::Invalid)?,
        None => ClientType::Confidential,
    };
    let mut grant_types = Vec::new();
    for g in &b.grant_types {
        grant_types.push(
            GrantType::parse(g)
                .ok_or_else(|| ManageError::Invalid(format!("unknown grant type {g:?}")))?,
        );
    }
    let (client, secret) = caller
        .create_client(NewClient {
            org_id: b.org_id,
            client_id: None,
            name: b.name,
            client_type,
            grant_types,
            redirect_uris: b.redirect_uris,
            description: b.description,
            website_uri: b.website_uri,
            privacy_policy_uri: b.privacy_policy_uri,
            tos_uri: b.tos_uri,
            policy: ClientPolicy {
                auth: parse_auth_method(b.token_endpoint_auth_method.as_deref())?,
                jwks: b.jwks,
                jwks_uri: b.jwks_uri,
                tls_subject_dn: b.tls_client_auth_subject_dn,
                require_dpop: b.require_dpop,
                require_par: b.require_par,
            },
            quota: Quota {
                per_hour: b.tokens_per_hour,
                per_day: b.tokens_per_day,
            },
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClient {
            client: client.into(),
            client_secret: secret,
        }),
    ))
}

/// Shows a client (never its secret).
#[utoipa::path(get, path = "/admin/v1/clients/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The client", body = ClientView)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(caller.client(&id).await?.into()))
}

/// Changes a client's registration; `{"disabled": true}` disables it at once.
#[utoipa::path(patch, path = "/admin/v1/clients/{id}", tag = "admin", request_body = ClientPatch,
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Updated", body = ClientView)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(patch): Body<ClientPatch>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(caller.update_client(&id, patch).await?.into()))
}

/// Deletes a client: its grants go and every family of it is revoked.
#[utoipa::path(delete, path = "/admin/v1/clients/{id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.delete_client(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a confidential client a new secret, shown only in this answer.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/rotate-secret", tag = "admin",
    request_body(content = Option<RotateBody>, content_type = "application/json",
        description = "Optional: the grace period (default 0)"), security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "The new secret, shown only here", body = CreatedClient)))]
pub async fn rotate_secret(
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<CreatedClient>, ApiError> {
    let grace = super::optional_json::<RotateBody>(&body)?.grace_seconds;
    let (client, secret) = caller.rotate_secret(&id, grace).await?;
    Ok(Json(CreatedClient {
        client: client.into(),
        client_secret: Some(secret),
    }))
}

/// Revokes every family (sign-in) of a client.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/revoke-tokens", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Revoked", body = Revoked)))]
pub async fn revoke_tokens(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let n = caller.revoke_client_tokens(&id).await?;
    Ok(Json(Revoked {
        families_revoked: n,
    }))
}

/// A client's grants.
#[utoipa::path(get, path = "/admin/v1/clients/{id}/grants", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "Every grant of the client", body = Listing<GrantView>)))]
pub async fn list_grants(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Listing<GrantView>>, ApiError> {
    Ok(Json(Listing {
        items: caller.list_grants(&id).await?,
        next_after: None,
    }))
}

/// Lets the client obtain tokens for an API; 409 when it already has a grant for it.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/grants", tag = "admin",
    request_body = NewGrantBody, security(("admin_token" = ["admin:write"])),
    responses(
        (status = 201, description = "Created", body = GrantView),
        (status = 409, description = "The client already has a grant for that API", body = crate::openapi::OAuthErrorBody),
    ))]
pub async fn create_grant(
    caller: Caller,
    Path(id): Path<String>,
    Body(b): Body<NewGrantBody>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    let api = b
        .api_id
        .or(b.audience)
        .ok_or_else(|| ManageError::Invalid("name the API with api_id (or audience)".into()))?;
    let grant = caller
        .create_grant(&id, &api, &b.scopes.joined(), b.default)
        .await?;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

/// The client's grant for an API.
#[utoipa::path(get, path = "/admin/v1/clients/{id}/grants/{api_id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The grant", body = GrantView)))]
pub async fn show_grant(
    caller: Caller,
    Path((id, api_id)): Path<(String, String)>,
) -> Result<Json<GrantView>, ApiError> {
    Ok(Json(caller.grant(&id, &api_id).await?.into()))
}

/// Changes a grant's scopes or default flag.
#[utoipa::path(patch, path = "/admin/v1/clients/{id}/grants/{api_id}", tag = "admin",
    request_body = GrantPatch, security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Updated", body = GrantView)))]
pub async fn update_grant(
    caller: Caller,
    Path((id, api_id)): Path<(String, String)>,
    Body(patch): Body<GrantPatch>,
) -> Result<Json<GrantView>, ApiError> {
    Ok(Json(caller.update_grant(&id, &api_id, patch).await?.into()))
}

/// Removes the client's grant for an API.
#[utoipa::path(delete, path = "/admin/v1/clients/{id}/grants/{api_id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_grant(
    caller: Caller,
    Path((id, api_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.delete_grant(&id, &api_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the usage listing.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct UsageQuery {
    /// From this time on (Unix seconds; default the last 7 days).
    since: Option<i64>,
}

/// Tokens issued to the client per hour.
#[utoipa::path(get, path = "/admin/v1/clients/{id}/usage", tag = "admin", params(UsageQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "Hourly counts, oldest first", body = Listing<UsageView>)))]
pub async fn usage(
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<UsageQuery>,
) -> Result<Json<Listing<UsageView>>, ApiError> {
    let since = q.since.unwrap_or_else(|| caller.clock.now() - 7 * 86_400);
    Ok(Json(Listing {
        items: caller.client_usage(&id, since).await?,
        next_after: None,
    }))
}
