//! `grant_type=refresh_token` (RFC 6749 §6), rotated on every use (RFC 9700 §4.14.2).
//!
//! [`RefreshTokens::rotate_refresh`] spends the presented token and stores its successor
//! atomically, so of any number of concurrent presentations exactly one rotates. A spent token
//! presented again revokes the family, unless it comes back within the configured leeway and
//! its successor is still unused: then the same successor is handed out again (a client that
//! lost the first response can retry).

use crate::grant::{
    decide_scope, invalid_grant, ApiDirectory, GrantError, Replayed, Secrets, UserGrant,
};
use crate::model::{Client, RefreshToken, RotateOutcome, Rotation};
use crate::request::RefreshRequest;
use crate::store::{RefreshTokens, StoreError};
use crate::{ErrorCode, OAuthError};

/// Rotates the presented refresh token of `client`. `leeway` is in seconds (0: any reuse
/// revokes the family).
pub async fn rotate<S>(
    store: &S,
    apis: &dyn ApiDirectory,
    secrets: &dyn Secrets,
    client: &Client,
    request: RefreshRequest,
    now: i64,
    leeway: i64,
) -> Result<UserGrant, GrantError>
where
    S: RefreshTokens + ?Sized,
{
    let old_hash = secrets.hash(&request.refresh_token);
    let Some((old, family)) = store.refresh_token(&old_hash).await? else {
        return Err(invalid_grant("the refresh token is invalid"));
    };
    if family.client_id != client.id {
        // Not this client's token: refuse without spending it.
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // RFC 6749 §6: a narrower scope is allowed, a wider one is not.
    let scope = decide_scope(request.scope.as_deref(), &old.scope)?;
    let Some(api) = apis.api_by_id(&family.api_id).await? else {
        return Err(invalid_grant("the API this grant was for no longer exists"));
    };
    let successor = secrets.generate();
    let successor_row = RefreshToken {
        token_hash: secrets.hash(&successor),
        family_id: family.id.clone(),
        scope: old.scope.clone(),
        created_at: now,
        expires_at: now + api.refresh_token_lifetime,
        used_at: None,
        successor_sealed: (leeway > 0).then(|| secrets.seal(successor.as_bytes())),
    };
    let rotation = Rotation {
        old_hash,
        successor: successor_row,
        now,
        leeway,
    };
    let refresh_token = match store.rotate_refresh(rotation).await? {
        RotateOutcome::Rotated => successor,
        RotateOutcome::Retried(sealed) => secrets
            .open(&sealed)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| StoreError::Other("the sealed successor could not be opened".into()))?,
        RotateOutcome::Reused => {
            return Err(GrantError::Replayed {
                what: Replayed::RefreshToken,
                family_id: family.id,
                error: OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the refresh token was already used; the authorization is revoked",
                ),
            })
        }
        RotateOutcome::Invalid => {
            return Err(invalid_grant("the refresh token is expired or revoked"))
        }
    };
    Ok(UserGrant {
        family,
        api,
        scope,
        refresh_token: Some(refresh_token),
    })
}
