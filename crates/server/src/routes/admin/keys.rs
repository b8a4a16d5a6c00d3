//! `/admin/v1/keys`: signing keys; rotate, retire.

use axum::extract::Path;
use axum::Json;
use calyx_core::model::SigningAlg;

use super::Caller;
use crate::error::ApiError;
use crate::manage::{KeyInfo, Listing, ManageError};

/// Which algorithm to rotate.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// `ES256` (default), `EdDSA` or `RS256`.
    alg: Option<String>,
}

/// What a rotation did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    /// The key that signs from now on (it was published before).
    kid: String,
    /// The new next key, published now.
    next_kid: String,
}

/// Every signing key with its state.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "admin",
    security(("admin_token" = ["admin:read"])),
    responses((status = 200, description = "Every key, retired ones included", body = Listing<KeyInfo>)))]
pub async fn list(caller: Caller) -> Result<Json<Listing<KeyInfo>>, ApiError> {
    Ok(Json(Listing {
        items: caller.list_keys().await?,
        next_after: None,
    }))
}

/// Rotates: the published next key signs from now on, and a new next key is published.
#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "admin", request_body(content = Option<RotateKeyBody>, content_type = "application/json",
        description = "Optional: the algorithm (default ES256)"),
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Rotated", body = RotatedKey)))]
pub async fn rotate(caller: Caller, body: axum::body::Bytes) -> Result<Json<RotatedKey>, ApiError> {
    let b: RotateKeyBody = super::optional_json(&body)?;
    let alg: SigningAlg = match b.alg {
        Some(a) => a.parse().map_err(ManageError::Invalid)?,
        None => SigningAlg::ES256,
    };
    let r = caller.rotate_key(alg).await?;
    Ok(Json(RotatedKey {
        kid: r.kid,
        next_kid: r.next_kid,
    }))
}

/// Unpublishes a key at once (a compromised key); a successor takes over.
#[utoipa::path(post, path = "/admin/v1/keys/{kid}/retire", tag = "admin",
    security(("admin_token" = ["admin:write"])),
    responses((status = 200, description = "Retired; the keys as they now stand", body = Listing<KeyInfo>)))]
pub async fn retire(
    caller: Caller,
    Path(kid): Path<String>,
) -> Result<Json<Listing<KeyInfo>>, ApiError> {
    caller.retire_key(&kid).await?;
    Ok(Json(Listing {
        items: caller.list_keys().await?,
        next_after: None,
    }))
}
