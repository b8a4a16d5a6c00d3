//! Organizations: the API provider's customers, which own clients and users.

use calyx_core::audit::kind;
use calyx_core::model::Org;
use calyx_core::store::StoreError;
use calyx_token::secret::random_id;
use serde::Deserialize;
use serde_json::json;

use super::views::OrgView;
use super::{conflict, invalid, not_found, probe, About, Listing, ManageError, ManageResult};
use super::{Manager, OPERATOR_ORG_ID};

/// Changes to an organization; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    /// New display name.
    pub name: Option<String>,
    /// Tokens all its clients together may be issued per hour; `null` removes the limit.
    #[serde(default, deserialize_with = "super::clients::present")]
    pub tokens_per_hour: Option<Option<i64>>,
    /// Tokens per day; `null` removes the limit.
    #[serde(default, deserialize_with = "super::clients::present")]
    pub tokens_per_day: Option<Option<i64>>,
}

fn check_name(name: &str) -> ManageResult<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return invalid("the organization name must be 1 to 200 characters");
    }
    Ok(name.to_owned())
}

impl Manager {
    /// Creates an organization.
    pub async fn create_org(&self, name: &str) -> ManageResult<Org> {
        let org = Org {
            id: random_id("org"),
            name: check_name(name)?,
            quota: Default::default(),
            created_at: self.clock.now(),
        };
        self.store
            .insert_org(&org)
            .await
            .map_err(|e| conflict(e, "an organization with that name"))?;
        self.record(kind::ORG_CREATED, about(&org.id), json!({"name": org.name}))
            .await?;
        Ok(org)
    }

    /// An organization by id.
    pub async fn org(&self, id: &str) -> ManageResult<Org> {
        match self.store.org(id).await? {
            Some(o) => Ok(o),
            None => not_found(format!("no organization with id {id}")),
        }
    }

    /// A page of organizations.
    pub async fn list_orgs(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<OrgView>> {
        let rows = self.store.list_orgs(probe(after, limit)).await?;
        Ok(Listing::from_rows(
            rows,
            limit,
            |o| o.id.clone(),
            OrgView::from,
        ))
    }

    /// Renames an organization.
    pub async fn update_org(&self, id: &str, patch: OrgPatch) -> ManageResult<Org> {
        let mut org = self.org(id).await?;
        let mut changed = serde_json::Map::new();
        if let Some(name) = patch.name {
            org.name = check_name(&name)?;
            changed.insert("name".into(), json!(org.name));
        }
        for (what, value, field) in [
            (
                "tokens_per_hour",
                patch.tokens_per_hour,
                &mut org.quota.per_hour,
            ),
            (
                "tokens_per_day",
                patch.tokens_per_day,
                &mut org.quota.per_day,
            ),
        ] {
            if let Some(v) = value {
                *field = v;
                changed.insert(what.into(), json!(v));
            }
        }
        super::clients::check_quota(&org.quota)?;
        if !self
            .store
            .update_org(&org)
            .await
            .map_err(|e| conflict(e, "an organization with that name"))?
        {
            return not_found(format!("no organization with id {id}"));
        }
        self.record(kind::ORG_UPDATED, about(id), changed.into())
            .await?;
        Ok(org)
    }

    /// Deletes an organization that has no clients and no users left.
    pub async fn delete_org(&self, id: &str) -> ManageResult<()> {
        if id == OPERATOR_ORG_ID {
            return Err(ManageError::Conflict(
                "the operators' organization is built in and cannot be deleted".into(),
            ));
        }
        let org = self.org(id).await?;
        match self.store.delete_org(id).await {
            Ok(true) => {}
            Ok(false) => return not_found(format!("no organization with id {id}")),
            Err(StoreError::Conflict(_)) => {
                return Err(ManageError::Conflict(format!(
                    "organization {id} still has clients or users; delete them first"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        self.record(kind::ORG_DELETED, about(id), json!({"name": org.name}))
            .await?;
        Ok(())
    }
}

fn about(org_id: &str) -> About {
    About {
        org_id: Some(org_id.to_owned()),
        target: Some(org_id.to_owned()),
        ..About::default()
    }
}
