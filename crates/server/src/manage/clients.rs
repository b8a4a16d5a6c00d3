//! Clients (applications), their secrets and their grants on APIs; admin clients, which hold
//! grants on the management API.

use calyx_core::audit::kind;
use calyx_core::model::{
    Api, Client, ClientGrant, ClientPolicy, ClientType, GrantType, KeyAuth, Quota,
};
use calyx_core::redirect;
use calyx_core::store::StoreError;
use calyx_token::secret::{generate_secret, random_alphanumeric};
use serde::Deserialize;
use serde_json::json;

use super::views::{ClientView, GrantView, UsageView};
use super::OPERATOR_ORG_ID;
use super::{conflict, invalid, not_found, parse_scopes, probe, About, Listing, ManageError};
use super::{ManageResult, Manager, ScopeList, ADMIN_AUDIENCE, ADMIN_READ, ADMIN_WRITE};

/// Fields of a new client.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Owning organization id.
    pub org_id: String,
    /// Chosen client id; generated when absent.
    pub client_id: Option<String>,
    /// Name.
    pub name: String,
    /// Type.
    pub client_type: ClientType,
    /// Allowed grants; defaults by type when empty.
    pub grant_types: Vec<GrantType>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Website.
    pub website_uri: Option<String>,
    /// Privacy policy.
    pub privacy_policy_uri: Option<String>,
    /// Terms of service.
    pub tos_uri: Option<String>,
    /// Key-based authentication and what the client must use (DPoP, PAR).
    pub policy: ClientPolicy,
    /// Tokens per hour and per day.
    pub quota: Quota,
}

/// Changes to a client's registration; absent fields stay as they are, and an empty text
/// clears an optional one. The type, organization and secret are not changed here.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    /// Display name.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Website.
    pub website_uri: Option<String>,
    /// Privacy policy.
    pub privacy_policy_uri: Option<String>,
    /// Terms of service.
    pub tos_uri: Option<String>,
    /// Redirect URIs (replaces the list).
    pub redirect_uris: Option<Vec<String>>,
    /// Grant types (replaces the list).
    pub grant_types: Option<Vec<String>>,
    /// Disable (true) or enable (false).
    pub disabled: Option<bool>,
    /// `private_key_jwt`, `tls_client_auth`, `self_signed_tls_client_auth`, or
    /// `client_secret_basic` to go back to the secret (RFC 7591 §2).
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK Set (replaces the registered one); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    pub jwks: Option<Option<serde_json::Value>>,
    /// Where the client's JWK Set is published; empty clears it.
    pub jwks_uri: Option<String>,
    /// The subject DN of the client's certificate (`tls_client_auth`); empty clears it.
    pub tls_client_auth_subject_dn: Option<String>,
    /// Every token request must carry a DPoP proof.
    pub require_dpop: Option<bool>,
    /// Authorization requests must be pushed (RFC 9126).
    pub require_par: Option<bool>,
    /// Tokens per hour; `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    pub tokens_per_hour: Option<Option<i64>>,
    /// Tokens per day; `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    pub tokens_per_day: Option<Option<i64>>,
}

/// The key-based method named `method` (RFC 7591 §2 names): `None` for the secret methods and
/// `none`, which the client's type already decides.
pub fn parse_auth_method(method: Option<&str>) -> ManageResult<Option<KeyAuth>> {
    match method {
        None | Some("client_secret_basic" | "client_secret_post" | "none") => Ok(None),
        Some(other) => other.parse().map(Some).map_err(ManageError::Invalid),
    }
}

/// A member that is present, even as `null`: `Some(None)` clears, absence keeps.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Changes to a grant; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantPatch {
    /// The most the client may ask for (replaces the list).
    pub scopes: Option<ScopeList>,
    /// Make this the client's default audience (true), or stop it being one (false).
    pub default: Option<bool>,
}

/// Checks a client's registration: grant types fit the type, URIs are acceptable, a client
/// of the code flow has a redirect URI.
fn check_registration(c: &Client) -> ManageResult<()> {
    if c.name.trim().is_empty() || c.name.len() > 200 || c.name.chars().any(char::is_control) {
        return invalid("the client name must be 1 to 200 characters");
    }
    if c.client_type == ClientType::Public && c.allows(GrantType::ClientCredentials) {
        return invalid("a public client cannot use client_credentials: it has no secret");
    }
    for uri in &c.redirect_uris {
        redirect::check_redirect_uri(uri).map_err(ManageError::Invalid)?;
    }
    for (what, uri) in [
        ("the website URI", &c.website_uri),
        ("the privacy policy URI", &c.privacy_policy_uri),
        ("the terms of service URI", &c.tos_uri),
    ] {
        if let Some(uri) = uri {
            redirect::check_link(what, uri).map_err(ManageError::Invalid)?;
        }
    }
    if c.allows(GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        return invalid("a client using authorization_code needs at least one redirect URI");
    }
    check_policy(c)?;
    check_quota(&c.quota)
}

/// A key-based method has the keys or subject it needs, and the keys are public keys.
fn check_policy(c: &Client) -> ManageResult<()> {
    let p = &c.policy;
    if let Some(jwks) = &p.jwks {
        calyx_token::assertion::parse_client_jwks(jwks).map_err(ManageError::Invalid)?;
    }
    if let Some(uri) = &p.jwks_uri {
        redirect::check_link("the jwks_uri", uri).map_err(ManageError::Invalid)?;
    }
    if let Some(dn) = &p.tls_subject_dn {
        if dn.trim().is_empty() || dn.len() > 1000 || dn.chars().any(char::is_control) {
            return invalid("the TLS client subject DN must be 1 to 1000 characters");
        }
    }
    let Some(method) = p.auth else {
        return Ok(());
    };
    if c.client_type == ClientType::Public {
        return invalid(format!(
            "a public client cannot use {}: it authenticates with none",
            method.as_str()
        ));
    }
    match method {
        KeyAuth::PrivateKeyJwt if p.jwks.is_some() == p.jwks_uri.is_some() => {
            invalid("private_key_jwt needs the client's keys: either jwks or jwks_uri")
        }
        KeyAuth::TlsClientAuth if p.tls_subject_dn.is_none() => {
            invalid("tls_client_auth needs the certificate's subject DN")
        }
        KeyAuth::SelfSignedTlsClientAuth if p.jwks.is_none() => {
            invalid("self_signed_tls_client_auth needs the client's certificates in jwks (x5c)")
        }
        _ => Ok(()),
    }
}

pub(super) fn check_quota(q: &Quota) -> ManageResult<()> {
    for limit in [q.per_hour, q.per_day].into_iter().flatten() {
        if !(0..=1_000_000_000_000).contains(&limit) {
            return invalid("a token quota must be a whole number from 0 to 10^12");
        }
    }
    Ok(())
}

fn about(c: &Client) -> About {
    About {
        org_id: Some(c.org_id.clone()),
        client_id: Some(c.id.clone()),
        target: Some(c.id.clone()),
        ..About::default()
    }
}

/// An optional text field from a patch: empty clears it.
fn optional(v: String) -> Option<String> {
    let v = v.trim().to_owned();
    (!v.is_empty()).then_some(v)
}

impl Manager {
    /// Registers a client; returns it and, for a confidential client, its secret (shown once).
    pub async fn create_client(&self, new: NewClient) -> ManageResult<(Client, Option<String>)> {
        let (client, secret) = self.insert_client(new).await?;
        self.record(
            kind::CLIENT_CREATED,
            about(&client),
            json!({
                "name": client.name,
                "type": client.client_type.as_str(),
                "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                "redirect_uris": client.redirect_uris,
            }),
        )
        .await?;
        Ok((client, secret))
    }

    async fn insert_client(&self, new: NewClient) -> ManageResult<(Client, Option<String>)> {
        let grant_types = if new.grant_types.is_empty() {
            match new.client_type {
                ClientType::Confidential => vec![GrantType::ClientCredentials],
                ClientType::Public => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            }
        } else {
            let mut g = new.grant_types.clone();
            g.dedup();
            g
        };
        let id = match new.client_id {
            Some(id) => {
                if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
                    return invalid(
                        "a client id must be 1 to 255 characters with no control characters",
                    );
                }
                id
            }
            None => random_alphanumeric(24),
        };
        let secret = (new.client_type == ClientType::Confidential && new.policy.auth.is_none())
            .then(generate_secret);
        let client = Client {
            id,
            org_id: new.org_id,
            name: new.name,
            description: new.description,
            website_uri: new.website_uri,
            privacy_policy_uri: new.privacy_policy_uri,
            tos_uri: new.tos_uri,
            redirect_uris: new.redirect_uris,
            grant_types,
            client_type: new.client_type,
            secret_hash: secret.as_deref().map(|s| self.hasher.hash(s)),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            disabled: false,
            policy: new.policy,
            quota: new.quota,
            created_at: self.clock.now(),
        };
        check_registration(&client)?;
        if self.store.org(&client.org_id).await?.is_none() {
            return not_found(format!("no organization with id {}", client.org_id));
        }
        self.store
            .insert_client(&client)
            .await
            .map_err(|e| conflict(e, "a client with that id"))?;
        Ok((client, secret))
    }

    /// A client by id.
    pub async fn client(&self, id: &str) -> ManageResult<Client> {
        match self.store.client(id).await? {
            Some(c) => Ok(c),
            None => not_found(format!("no client with id {id}")),
        }
    }

    /// A page of clients, of one organization when `org_id` is given.
    pub async fn list_clients(
        &self,
        org_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<ClientView>> {
        let rows = self.store.list_clients(org_id, probe(after, limit)).await?;
        Ok(Listing::from_rows(
            rows,
            limit,
            |c| c.id.clone(),
            ClientView::from,
        ))
    }

    /// Changes a client's registration, or disables or enables it.
    pub async fn update_client(&self, id: &str, patch: ClientPatch) -> ManageResult<Client> {
        let mut c = self.client(id).await?;
        let mut changed = serde_json::Map::new();
        if let Some(name) = patch.name {
            c.name = name.trim().to_owned();
            changed.insert("name".into(), json!(c.name));
        }
        for (what, value, field) in [
            ("description", patch.description, &mut c.description),
            ("website_uri", patch.website_uri, &mut c.website_uri),
            (
                "privacy_policy_uri",
                patch.privacy_policy_uri,
                &mut c.privacy_policy_uri,
            ),
            ("tos_uri", patch.tos_uri, &mut c.tos_uri),
        ] {
            if let Some(v) = value {
                *field = optional(v);
                changed.insert(what.into(), json!(field));
            }
        }
        if let Some(uris) = patch.redirect_uris {
            c.redirect_uris = uris;
            changed.insert("redirect_uris".into(), json!(c.redirect_uris));
        }
        if let Some(grants) = patch.grant_types {
            let mut parsed = Vec::new();
            for g in &grants {
                let g = GrantType::parse(g)
                    .ok_or_else(|| ManageError::Invalid(format!("unknown grant type {g:?}")))?;
                if !parsed.contains(&g) {
                    parsed.push(g);
                }
            }
            if parsed.is_empty() {
                return invalid("a client needs at least one grant type");
            }
            c.grant_types = parsed;
            changed.insert("grant_types".into(), json!(grants));
        }
        if let Some(method) = patch.token_endpoint_auth_method {
            c.policy.auth = parse_auth_method(Some(&method))?;
            if c.policy.auth.is_none() && c.secret_hash.is_none() {
                return invalid("the client has no secret: rotate one with rotate-secret first");
            }
            changed.insert("token_endpoint_auth_method".into(), json!(method));
        }
        if let Some(jwks) = patch.jwks {
            changed.insert("jwks".into(), json!(jwks.is_some()));
            c.policy.jwks = jwks;
        }
        for (what, value, field) in [
            ("jwks_uri", patch.jwks_uri, &mut c.policy.jwks_uri),
            (
                "tls_client_auth_subject_dn",
                patch.tls_client_auth_subject_dn,
                &mut c.policy.tls_subject_dn,
            ),
        ] {
            if let Some(v) = value {
                *field = optional(v);
                changed.insert(what.into(), json!(field));
            }
        }
        for (what, value, field) in [
            (
                "require_dpop",
                patch.require_dpop,
                &mut c.policy.require_dpop,
            ),
            ("require_par", patch.require_par, &mut c.policy.require_par),
        ] {
            if let Some(v) = value {
                *field = v;
                changed.insert(what.into(), json!(v));
            }
        }
        for (what, value, field) in [
            (
                "tokens_per_hour",
                patch.tokens_per_hour,
                &mut c.quota.per_hour,
            ),
            ("tokens_per_day", patch.tokens_per_day, &mut c.quota.per_day),
        ] {
            if let Some(v) = value {
                *field = v;
                changed.insert(what.into(), json!(v));
            }
        }
        let flipped = patch.disabled.filter(|d| *d != c.disabled);
        if let Some(d) = flipped {
            c.disabled = d;
            changed.insert("disabled".into(), json!(d));
        }
        check_registration(&c)?;
        if !self.store.update_client(&c).await? {
            return not_found(format!("no client with id {id}"));
        }
        let kind = match flipped {
            Some(true) => kind::CLIENT_DISABLED,
            Some(false) => kind::CLIENT_ENABLED,
            None => kind::CLIENT_UPDATED,
        };
        self.record(kind, about(&c), changed.into()).await?;
        Ok(c)
    }

    /// Disables (or enables) a client: a disabled one cannot authenticate, and its tokens are
    /// refused here.
    pub async fn set_client_disabled(&self, id: &str, disabled: bool) -> ManageResult<Client> {
        self.update_client(
            id,
            ClientPatch {
                disabled: Some(disabled),
                ..ClientPatch::default()
            },
        )
        .await
    }

    /// Deletes a client: its grants go and every family of it is revoked.
    pub async fn delete_client(&self, id: &str) -> ManageResult<()> {
        let c = self.client(id).await?;
        if !self.store.delete_client(id, self.clock.now()).await? {
            return not_found(format!("no client with id {id}"));
        }
        self.record(kind::CLIENT_DELETED, about(&c), json!({"name": c.name}))
            .await?;
        Ok(())
    }

    /// Gives a confidential client a new secret. The old one keeps working for
    /// `grace_seconds` (0 = stops at once). Returns the client and the new secret.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        grace_seconds: i64,
    ) -> ManageResult<(Client, String)> {
        let c = self.client(client_id).await?;
        if c.client_type == ClientType::Public {
            return invalid(format!(
                "client {client_id} is public: it has no secret to rotate"
            ));
        }
        if !(0..=30 * 86_400).contains(&grace_seconds) {
            return invalid("the grace period must be 0 to 2592000 seconds (30 days)");
        }
        let secret = generate_secret();
        let previous_expires = (grace_seconds > 0).then(|| self.clock.now() + grace_seconds);
        self.store
            .rotate_client_secret(client_id, &self.hasher.hash(&secret), previous_expires)
            .await?;
        self.record(
            kind::CLIENT_SECRET_ROTATED,
            about(&c),
            json!({"grace_seconds": grace_seconds}),
        )
        .await?;
        let c = self.client(client_id).await?;
        Ok((c, secret))
    }

    /// Revokes every family of a client (every sign-in's refresh and access tokens); returns
    /// how many.
    pub async fn revoke_client_tokens(&self, client_id: &str) -> ManageResult<u64> {
        let c = self.client(client_id).await?;
        let n = self
            .store
            .revoke_client_families(client_id, self.clock.now())
            .await?;
        self.record(
            kind::CLIENT_TOKENS_REVOKED,
            about(&c),
            json!({"families_revoked": n}),
        )
        .await?;
        Ok(n)
    }

    /// Tokens issued to a client per hour from `since` on (counted by every node, flushed
    /// every few seconds).
    pub async fn client_usage(&self, client_id: &str, since: i64) -> ManageResult<Vec<UsageView>> {
        self.client(client_id).await?;
        let rows = self.store.usage(client_id, since).await?;
        Ok(rows
            .into_iter()
            .map(|u| UsageView {
                hour: u.hour,
                tokens: u.count,
            })
            .collect())
    }

    /// Lets a client obtain tokens for an API (by id or audience), with at most `scopes`.
    /// Refused when the client already has a grant for it: use [`Manager::update_grant`].
    pub async fn create_grant(
        &self,
        client_id: &str,
        api: &str,
        scopes: &str,
        is_default: bool,
    ) -> ManageResult<ClientGrant> {
        let api = self.api(api).await?;
        let c = self.client(client_id).await?;
        if api.audience == ADMIN_AUDIENCE && c.org_id != OPERATOR_ORG_ID {
            // An organization's client holding admin scopes would manage every other
            // organization: only admin clients may be granted the management API.
            return invalid(format!(
                "only admin clients (calyx admin create-client) may hold a grant for {ADMIN_AUDIENCE}"
            ));
        }
        let grant = ClientGrant {
            client_id: c.id.clone(),
            scopes: grant_scopes(&api, scopes)?,
            api_id: api.id,
            audience: api.audience,
            is_default,
        };
        match self.store.insert_grant(&grant).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(ManageError::Conflict(format!(
                    "client {client_id} already has a grant for {}; use grant update",
                    grant.audience
                )))
            }
            Err(e) => return Err(e.into()),
        }
        self.record(
            kind::GRANT_CREATED,
            grant_about(&c, &grant),
            json!({"audience": grant.audience, "scopes": grant.scopes.to_string(), "default": is_default}),
        )
        .await?;
        Ok(grant)
    }

    /// A client's grants.
    pub async fn list_grants(&self, client_id: &str) -> ManageResult<Vec<GrantView>> {
        self.client(client_id).await?;
        let grants = self.store.grants_for_client(client_id).await?;
        Ok(grants.into_iter().map(GrantView::from).collect())
    }

    /// The grant of a client for an API (by id or audience).
    pub async fn grant(&self, client_id: &str, api: &str) -> ManageResult<ClientGrant> {
        Ok(self.grant_with_owners(client_id, api).await?.2)
    }

    /// The client, the API and the client's grant for it, each read once.
    async fn grant_with_owners(
        &self,
        client_id: &str,
        api: &str,
    ) -> ManageResult<(Client, Api, ClientGrant)> {
        let api = self.api(api).await?;
        let client = self.client(client_id).await?;
        let grant = self
            .store
            .grants_for_client(client_id)
            .await?
            .into_iter()
            .find(|g| g.api_id == api.id)
            .ok_or_else(|| {
                ManageError::NotFound(format!(
                    "client {client_id} has no grant for {}",
                    api.audience
                ))
            })?;
        Ok((client, api, grant))
    }

    /// Changes a grant's scopes or default flag.
    pub async fn update_grant(
        &self,
        client_id: &str,
        api: &str,
        patch: GrantPatch,
    ) -> ManageResult<ClientGrant> {
        let (c, api, mut grant) = self.grant_with_owners(client_id, api).await?;
        let mut changed = serde_json::Map::new();
        if let Some(scopes) = patch.scopes {
            grant.scopes = grant_scopes(&api, &scopes.joined())?;
            changed.insert("scopes".into(), json!(grant.scopes.to_string()));
        }
        if let Some(d) = patch.default {
            grant.is_default = d;
            changed.insert("default".into(), json!(d));
        }
        if !self.store.update_grant(&grant).await? {
            return not_found(format!(
                "client {client_id} has no grant for {}",
                api.audience
            ));
        }
        changed.insert("audience".into(), json!(grant.audience));
        self.record(kind::GRANT_UPDATED, grant_about(&c, &grant), changed.into())
            .await?;
        Ok(grant)
    }

    /// Removes a client's grant for an API.
    pub async fn delete_grant(&self, client_id: &str, api: &str) -> ManageResult<()> {
        let (c, _, grant) = self.grant_with_owners(client_id, api).await?;
        if !self.store.delete_grant(client_id, &grant.api_id).await? {
            return not_found(format!(
                "client {client_id} has no grant for {}",
                grant.audience
            ));
        }
        self.record(
            kind::GRANT_DELETED,
            grant_about(&c, &grant),
            json!({"audience": grant.audience}),
        )
        .await?;
        Ok(())
    }

    /// Creates an admin client: a confidential client of the operators' organization with a
    /// default grant on the management API for `scopes` (`admin:read`, `admin:write`).
    pub async fn create_admin_client(
        &self,
        name: &str,
        scopes: &str,
    ) -> ManageResult<(Client, String)> {
        let scopes = parse_scopes("scopes", scopes)?;
        if let Some(s) = scopes
            .iter()
            .find(|s| *s != ADMIN_READ && *s != ADMIN_WRITE)
        {
            return invalid(format!(
                "an admin client's scopes are {ADMIN_READ} and {ADMIN_WRITE}, not {s}"
            ));
        }
        self.ensure_operator_org().await?;
        self.ensure_admin_api().await?;
        let (client, secret) = self
            .create_client(NewClient {
                org_id: OPERATOR_ORG_ID.into(),
                name: name.into(),
                client_type: ClientType::Confidential,
                grant_types: vec![GrantType::ClientCredentials],
                description: Some("Calls the Calyx management API".into()),
                ..NewClient::default()
            })
            .await?;
        self.create_grant(&client.id, ADMIN_AUDIENCE, &scopes.to_string(), true)
            .await?;
        let secret = secret.ok_or_else(|| anyhow::anyhow!("a confidential client has a secret"))?;
        Ok((client, secret))
    }

    /// Makes sure the operators' organization exists (idempotent).
    pub async fn ensure_operator_org(&self) -> ManageResult<()> {
        if self.store.org(OPERATOR_ORG_ID).await?.is_some() {
            return Ok(());
        }
        let org = calyx_core::model::Org {
            id: OPERATOR_ORG_ID.into(),
            name: "Calyx operators".into(),
            quota: Quota::default(),
            created_at: self.clock.now(),
        };
        match self.store.insert_org(&org).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Scopes for a grant on `api`: defined by it (or reserved).
fn grant_scopes(api: &Api, scopes: &str) -> ManageResult<calyx_core::ScopeSet> {
    let scopes = parse_scopes("scopes", scopes)?;
    let unknown: Vec<&str> = scopes.iter().filter(|s| !api.defines(s)).collect();
    if !unknown.is_empty() {
        return invalid(format!(
            "the API {} does not define the scopes: {}",
            api.audience,
            unknown.join(" ")
        ));
    }
    Ok(scopes)
}

fn grant_about(c: &Client, g: &ClientGrant) -> About {
    About {
        org_id: Some(c.org_id.clone()),
        client_id: Some(c.id.clone()),
        target: Some(g.api_id.clone()),
        ..About::default()
    }
}
