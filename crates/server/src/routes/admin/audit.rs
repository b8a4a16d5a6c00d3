//! `/admin/v1/audit` (read only) and `/admin/v1/purge`.

use axum::extract::Path;
use axum::Json;
use calyx_core::audit::{AuditEvent, AuditFilter};
use calyx_core::model::PurgeReport;

use super::{Caller, Query};
use crate::error::ApiError;
use crate::manage::Listing;

/// Query of the audit listing; every field narrows it.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// An event type (`client.disabled`), a family (`security.*`) or `*`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Events about this organization.
    org_id: Option<String>,
    /// Events about this client.
    client_id: Option<String>,
    /// Events about this user.
    user_id: Option<String>,
    /// At or after this time (Unix seconds).
    since: Option<i64>,
    /// Before this time (Unix seconds).
    until: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// Whether the purge only counts.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeBody {
    /// Count what would go, remove nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Lists audit events, oldest first.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin", params(AuditQuery),
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "A page of events", body = Listing<AuditEvent>)))]
pub async fn list(
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Listing<AuditEvent>>, ApiError> {
    let limit = crate::manage::page_limit(q.limit)?;
    let filter = AuditFilter {
        kind: q.kind,
        org_id: q.org_id,
        client_id: q.client_id,
        user_id: q.user_id,
        since: q.since,
        until: q.until,
    };
    Ok(Json(
        caller
            .list_audit(&filter, q.after.as_deref(), limit)
            .await?,
    ))
}

/// Shows one audit event.
#[utoipa::path(get, path = "/admin/v1/audit/{id}", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "The event", body = AuditEvent)))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<AuditEvent>, ApiError> {
    Ok(Json(caller.audit_event(&id).await?))
}

/// Runs the purge now (it also runs on a schedule).
#[utoipa::path(post, path = "/admin/v1/purge", tag = "admin", request_body(content = Option<PurgeBody>, content_type = "application/json",
        description = "Optional: dry_run"),
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "What was removed (or would be)", body = PurgeReport)))]
pub async fn purge(caller: Caller, body: axum::body::Bytes) -> Result<Json<PurgeReport>, ApiError> {
    let b: PurgeBody = super::optional_json(&body)?;
    Ok(Json(caller.purge(b.dry_run).await?))
}
