//! `/admin/v1/webhooks`: subscriptions to audit events, and their deliveries.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;

use super::{Body, Caller, PageQuery, Query};
use crate::error::ApiError;
use crate::manage::views::{CreatedWebhook, DeliveryView, WebhookView};
use crate::manage::{Listing, NewWebhook, WebhookPatch};

/// Lists subscriptions.
#[utoipa::path(get, path = "/admin/v1/webhooks", tag = "admin", params(PageQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of webhooks", body = Listing<WebhookView>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Listing<WebhookView>>, ApiError> {
    let (after, limit) = q.page()?;
    Ok(Json(caller.list_webhooks(after, limit).await?))
}

/// Subscribes a URL to event types; the answer holds the signing secret, shown only here.
#[utoipa::path(post, path = "/admin/v1/webhooks", tag = "admin", request_body = NewWebhook,
    security(("admin_token" = ["admin:write"])),
    responses((status = 201, description = "Created; `secret` is shown only here", body = CreatedWebhook)))]
pub async fn create(
    caller: Caller,
    Body(new): Body<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let (hook, secret) = caller.create_webhook(new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: hook.into(),
            secret,
        }),
    ))
}

/// Shows a subscription (never its secret).
#[utoipa::path(get, path = "/admin/v1/webhooks/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The webhook", body = WebhookView)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(caller.webhook(&id).await?.into()))
}

/// Changes a subscription's URL, events, or disabled flag.
#[utoipa::path(patch, path = "/admin/v1/webhooks/{id}", tag = "admin", request_body = WebhookPatch,
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Updated", body = WebhookView)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(patch): Body<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(caller.update_webhook(&id, patch).await?.into()))
}

/// Deletes a subscription and its deliveries.
#[utoipa::path(delete, path = "/admin/v1/webhooks/{id}", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries and where each stands.
#[utoipa::path(get, path = "/admin/v1/webhooks/{id}/deliveries", tag = "admin", params(PageQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of deliveries", body = Listing<DeliveryView>)))]
pub async fn deliveries(
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Listing<DeliveryView>>, ApiError> {
    let (after, limit) = q.page()?;
    Ok(Json(caller.list_deliveries(&id, after, limit).await?))
}
