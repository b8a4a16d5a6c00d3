//! APIs (resource servers): their audience, scopes with descriptions, signing algorithm and
//! token lifetimes; and the built-in API of the management API itself.

use std::collections::BTreeMap;

use calyx_core::audit::kind;
use calyx_core::model::{Api, SigningAlg};
use calyx_core::store::StoreError;
use calyx_core::ScopeSet;
use calyx_token::secret::random_id;
use serde::Deserialize;
use serde_json::json;

use super::views::ApiView;
use super::{conflict, invalid, not_found, parse_scopes, probe, About, Listing, ManageError};
use super::{ManageResult, Manager, ScopeList, ADMIN_AUDIENCE, ADMIN_READ, ADMIN_WRITE};
use crate::keys;

/// Fields of a new API.
#[derive(Debug, Clone, Default)]
pub struct NewApi {
    /// Audience.
    pub audience: String,
    /// Name.
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// What each scope lets an application do.
    pub scope_descriptions: BTreeMap<String, String>,
    /// Signing algorithm.
    pub alg: SigningAlg,
    /// Machine-token lifetime.
    pub token_lifetime: Option<i64>,
    /// User-token lifetime.
    pub user_token_lifetime: Option<i64>,
    /// Delegated-token lifetime.
    pub delegated_token_lifetime: Option<i64>,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: Option<i64>,
}

/// Changes to an API; absent fields stay as they are. The audience never changes: tokens in
/// flight carry it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    /// Display name.
    pub name: Option<String>,
    /// Every scope the API defines (replaces the list). A scope still granted to a client
    /// cannot be removed.
    pub scopes: Option<ScopeList>,
    /// Descriptions to set (an empty text removes one).
    pub scope_descriptions: Option<BTreeMap<String, String>>,
    /// `ES256`, `EdDSA` or `RS256`.
    pub alg: Option<String>,
    /// Machine-token lifetime, seconds.
    pub token_lifetime: Option<i64>,
    /// User-token lifetime, seconds.
    pub user_token_lifetime: Option<i64>,
    /// Delegated-token lifetime, seconds.
    pub delegated_token_lifetime: Option<i64>,
    /// Refresh-token lifetime, seconds.
    pub refresh_token_lifetime: Option<i64>,
}

fn lifetime(v: Option<i64>, default: i64, what: &str) -> ManageResult<i64> {
    match v {
        Some(s) if s <= 0 => invalid(format!("{what} must be a positive number of seconds")),
        Some(s) => Ok(s),
        None => Ok(default),
    }
}

/// Checks descriptions: each names a scope of the API and is short, printable text.
fn check_descriptions(scopes: &ScopeSet, d: &BTreeMap<String, String>) -> ManageResult<()> {
    for (scope, text) in d {
        if !scopes.contains(scope) {
            return invalid(format!(
                "scope_descriptions names {scope}, which the API does not define"
            ));
        }
        if text.len() > 300 || text.chars().any(char::is_control) {
            return invalid(format!(
                "the description of {scope} must be at most 300 characters of text"
            ));
        }
    }
    Ok(())
}

fn about(api: &Api) -> About {
    About {
        target: Some(api.id.clone()),
        ..About::default()
    }
}

impl Manager {
    /// Creates an API and makes sure a signing key exists for its algorithm.
    pub async fn create_api(&self, new: NewApi) -> ManageResult<Api> {
        let api = self.insert_api(new).await?;
        self.record(
            kind::API_CREATED,
            about(&api),
            json!({"audience": api.audience, "name": api.name, "scopes": api.scopes.to_string()}),
        )
        .await?;
        Ok(api)
    }

    async fn insert_api(&self, new: NewApi) -> ManageResult<Api> {
        if new.audience.trim().is_empty()
            || new.audience.len() > 255
            || new
                .audience
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return invalid("the audience must be 1 to 255 characters without spaces");
        }
        if new.name.trim().is_empty() {
            return invalid("the API name must not be empty");
        }
        let scopes = parse_scopes("scopes", &new.scopes)?;
        let descriptions: BTreeMap<String, String> = new
            .scope_descriptions
            .into_iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .collect();
        check_descriptions(&scopes, &descriptions)?;
        let api = Api {
            id: random_id("api"),
            audience: new.audience,
            name: new.name.trim().to_owned(),
            scopes,
            alg: new.alg,
            token_lifetime: lifetime(
                new.token_lifetime,
                Api::DEFAULT_TOKEN_LIFETIME,
                "token_lifetime",
            )?,
            user_token_lifetime: lifetime(
                new.user_token_lifetime,
                Api::DEFAULT_USER_TOKEN_LIFETIME,
                "user_token_lifetime",
            )?,
            delegated_token_lifetime: lifetime(
                new.delegated_token_lifetime,
                Api::DEFAULT_DELEGATED_TOKEN_LIFETIME,
                "delegated_token_lifetime",
            )?,
            refresh_token_lifetime: lifetime(
                new.refresh_token_lifetime,
                Api::DEFAULT_REFRESH_TOKEN_LIFETIME,
                "refresh_token_lifetime",
            )?,
            scope_descriptions: descriptions,
            created_at: self.clock.now(),
        };
        keys::ensure_keys(&*self.store, &self.sealer, [api.alg], self.clock.now()).await?;
        self.store
            .insert_api(&api)
            .await
            .map_err(|e| conflict(e, "an API with that audience"))?;
        Ok(api)
    }

    /// An API by id or by audience.
    pub async fn api(&self, id_or_audience: &str) -> ManageResult<Api> {
        if let Some(api) = self.store.api(id_or_audience).await? {
            return Ok(api);
        }
        match self.store.api_by_audience(id_or_audience).await? {
            Some(api) => Ok(api),
            None => not_found(format!("no API with id or audience {id_or_audience}")),
        }
    }

    /// A page of APIs.
    pub async fn list_apis(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<ApiView>> {
        let rows = self.store.list_apis(probe(after, limit)).await?;
        Ok(Listing::from_rows(
            rows,
            limit,
            |a| a.id.clone(),
            ApiView::from,
        ))
    }

    /// Changes an API's name, scopes, descriptions, algorithm or lifetimes.
    pub async fn update_api(&self, id: &str, patch: ApiPatch) -> ManageResult<Api> {
        let mut api = self.api(id).await?;
        if api.audience == ADMIN_AUDIENCE {
            return Err(ManageError::Conflict(
                "the management API's audience is built in and cannot be changed".into(),
            ));
        }
        let mut changed = serde_json::Map::new();
        if let Some(name) = patch.name {
            if name.trim().is_empty() {
                return invalid("the API name must not be empty");
            }
            api.name = name.trim().to_owned();
            changed.insert("name".into(), json!(api.name));
        }
        if let Some(scopes) = patch.scopes {
            let scopes = parse_scopes("scopes", &scopes.joined())?;
            let mut in_use = Vec::new();
            for g in self.store.grants_for_api(&api.id).await? {
                for s in g.scopes.difference(&scopes) {
                    if !calyx_core::scope::RESERVED_SCOPES.contains(&s) {
                        in_use.push(format!("{s} (client {})", g.client_id));
                    }
                }
            }
            if !in_use.is_empty() {
                return Err(ManageError::Conflict(format!(
                    "these scopes are still granted; update the grants first: {}",
                    in_use.join(", ")
                )));
            }
            api.scope_descriptions.retain(|s, _| scopes.contains(s));
            api.scopes = scopes;
            changed.insert("scopes".into(), json!(api.scopes.to_string()));
        }
        if let Some(d) = patch.scope_descriptions {
            for (scope, text) in d {
                if text.trim().is_empty() {
                    api.scope_descriptions.remove(&scope);
                } else {
                    api.scope_descriptions.insert(scope, text);
                }
            }
            check_descriptions(&api.scopes, &api.scope_descriptions)?;
            changed.insert("scope_descriptions".into(), json!(api.scope_descriptions));
        }
        if let Some(alg) = patch.alg {
            api.alg = alg.parse().map_err(ManageError::Invalid)?;
            keys::ensure_keys(&*self.store, &self.sealer, [api.alg], self.clock.now()).await?;
            changed.insert("alg".into(), json!(api.alg.as_str()));
        }
        for (what, value, field) in [
            (
                "token_lifetime",
                patch.token_lifetime,
                &mut api.token_lifetime,
            ),
            (
                "user_token_lifetime",
                patch.user_token_lifetime,
                &mut api.user_token_lifetime,
            ),
            (
                "delegated_token_lifetime",
                patch.delegated_token_lifetime,
                &mut api.delegated_token_lifetime,
            ),
            (
                "refresh_token_lifetime",
                patch.refresh_token_lifetime,
                &mut api.refresh_token_lifetime,
            ),
        ] {
            if value.is_some() {
                *field = lifetime(value, *field, what)?;
                changed.insert(what.into(), json!(*field));
            }
        }
        if !self.store.update_api(&api).await? {
            return not_found(format!("no API with id {id}"));
        }
        self.record(kind::API_UPDATED, about(&api), changed.into())
            .await?;
        Ok(api)
    }

    /// Deletes an API: its grants go, and every family for it is revoked.
    pub async fn delete_api(&self, id: &str) -> ManageResult<()> {
        let api = self.api(id).await?;
        if api.audience == ADMIN_AUDIENCE {
            return Err(ManageError::Conflict(
                "the management API's audience is built in and cannot be deleted".into(),
            ));
        }
        if !self.store.delete_api(&api.id, self.clock.now()).await? {
            return not_found(format!("no API with id {id}"));
        }
        self.record(
            kind::API_DELETED,
            about(&api),
            json!({"audience": api.audience}),
        )
        .await?;
        Ok(())
    }

    /// Makes sure the management API's audience exists (idempotent, and safe when several
    /// nodes start at once).
    pub async fn ensure_admin_api(&self) -> ManageResult<Api> {
        if let Some(api) = self.store.api_by_audience(ADMIN_AUDIENCE).await? {
            return Ok(api);
        }
        let new = NewApi {
            audience: ADMIN_AUDIENCE.into(),
            name: "Calyx management API".into(),
            scopes: format!("{ADMIN_READ} {ADMIN_WRITE}"),
            scope_descriptions: BTreeMap::from([
                (
                    ADMIN_READ.into(),
                    "Read every setting and the audit log".into(),
                ),
                (ADMIN_WRITE.into(), "Change every setting".into()),
            ]),
            // An admin token lives an hour, not a machine token's day.
            token_lifetime: Some(3_600),
            ..NewApi::default()
        };
        match self.insert_api(new).await {
            Ok(api) => Ok(api),
            Err(ManageError::Conflict(_)) | Err(ManageError::Store(StoreError::Conflict(_))) => {
                self.api(ADMIN_AUDIENCE).await
            }
            Err(e) => Err(e),
        }
    }
}
