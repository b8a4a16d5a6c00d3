//! Grant families: each sign-in's chain of code, refresh tokens and access tokens. Revoking
//! one ends that sign-in everywhere (RFC 6749 §10.4, RFC 9700 §4.14.2).

use calyx_core::audit::kind;
use calyx_core::model::{Family, FamilyFilter};
use serde_json::json;

use super::views::FamilyView;
use super::{not_found, probe, About, Listing, ManageResult, Manager};

impl Manager {
    /// A family by id.
    pub async fn family(&self, id: &str) -> ManageResult<Family> {
        match self.store.family(id).await? {
            Some(f) => Ok(f),
            None => not_found(format!("no grant family with id {id}")),
        }
    }

    /// A page of families, narrowed by client and user.
    pub async fn list_families(
        &self,
        filter: &FamilyFilter,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<FamilyView>> {
        let rows = self
            .store
            .list_families(filter, probe(after, limit))
            .await?;
        Ok(Listing::from_rows(
            rows,
            limit,
            |f| f.id.clone(),
            FamilyView::from,
        ))
    }

    /// Revokes a family: its refresh tokens stop working at once and its access tokens stop
    /// introspecting as active.
    pub async fn revoke_family(&self, id: &str) -> ManageResult<Family> {
        let f = self.family(id).await?;
        self.store.revoke_family(id, self.clock.now()).await?;
        self.record(
            kind::FAMILY_REVOKED,
            About {
                org_id: Some(f.org_id.clone()),
                client_id: Some(f.client_id.clone()),
                user_id: Some(f.user_id.clone()),
                target: Some(f.id.clone()),
            },
            json!({"already_revoked": f.revoked_at.is_some()}),
        )
        .await?;
        self.family(id).await
    }
}
