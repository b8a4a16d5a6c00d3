//! Signing keys as operators see them: list, rotate, retire (the life cycle itself is
//! `crate::keys`).

use anyhow::Context;
use calyx_core::audit::kind;
use calyx_core::model::SigningAlg;
use serde_json::json;

use super::{About, ManageError, ManageResult, Manager};
use crate::keys;

/// A signing key as `keys list` and `GET /admin/v1/keys` show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// Algorithm (`ES256`, `EdDSA` or `RS256`).
    pub alg: &'static str,
    /// `next` (published, signs after the next rotation), `current` (signs), `previous`
    /// (published until its tokens expire) or `retired` (unpublished).
    pub state: &'static str,
    /// Creation time.
    pub created_at: i64,
    /// When it started signing.
    pub promoted_at: Option<i64>,
    /// When it leaves (or left) the JWKS.
    pub retires_at: Option<i64>,
}

fn about(kid: &str) -> About {
    About {
        target: Some(kid.to_owned()),
        ..About::default()
    }
}

impl Manager {
    /// Rotates the signing key of `alg`: the published next key starts signing and a new
    /// next key is published.
    pub async fn rotate_key(&self, alg: SigningAlg) -> ManageResult<keys::Rotated> {
        let r = keys::rotate(&*self.store, &self.sealer, alg, self.clock.now()).await?;
        self.record(
            kind::KEY_ROTATED,
            about(&r.kid),
            json!({"alg": alg.as_str(), "kid": r.kid, "next_kid": r.next_kid}),
        )
        .await?;
        Ok(r)
    }

    /// Unpublishes a key at once (a compromised key); a successor takes over its role.
    pub async fn retire_key(&self, kid: &str) -> ManageResult<SigningAlg> {
        let alg = keys::retire(&*self.store, &self.sealer, kid, self.clock.now())
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("no live signing key with id {kid}")))?;
        self.record(
            kind::KEY_RETIRED,
            about(kid),
            json!({"alg": alg.as_str(), "kid": kid}),
        )
        .await?;
        Ok(alg)
    }

    /// Every signing key, retired ones included, with its state at this moment.
    pub async fn list_keys(&self) -> ManageResult<Vec<KeyInfo>> {
        let now = self.clock.now();
        let all = self
            .store
            .all_keys()
            .await
            .context("reading signing keys")?;
        let current: Vec<&str> = SigningAlg::ALL
            .iter()
            .filter_map(|alg| keys::current_key(&all, *alg, now).map(|k| k.kid.as_str()))
            .collect();
        Ok(all
            .iter()
            .map(|k| KeyInfo {
                kid: k.kid.clone(),
                alg: k.alg.as_str(),
                state: match (k.retires_at, k.promoted_at) {
                    (Some(r), _) if r <= now => "retired",
                    (_, None) => "next",
                    _ if current.contains(&k.kid.as_str()) => "current",
                    _ => "previous",
                },
                created_at: k.created_at,
                promoted_at: k.promoted_at,
                retires_at: k.retires_at,
            })
            .collect())
    }
}
