//! Management operations: create organizations, APIs, clients and grants, rotate secrets and
//! keys. The CLI calls these; an admin HTTP API would call the same functions.

use std::sync::Arc;

use anyhow::Context;
use calyx_core::clock::Clock;

use crate::clock::SystemClock;
use calyx_core::model::{Api, Client, ClientGrant, ClientType, GrantType, Org, SigningAlg};
use calyx_core::store::{Store, StoreError};
use calyx_core::{redirect, ScopeSet};
use calyx_token::seal::Sealer;
use calyx_token::secret::{
    generate_secret, random_alphanumeric, random_id, random_string, SecretHasher,
};
use secrecy::{ExposeSecret, SecretString};

use crate::keys;

/// Why a management operation failed: what the CLI prints and what an HTTP API maps to
/// 400, 404 and 409; anything else is the database's or the machine's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The input is not acceptable (the text says why, for the person who gave it).
    #[error("{0}")]
    Invalid(String),
    /// A scope was asked for beyond what is allowed (OAuth's `invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// Something the operation names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It would break a uniqueness rule.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (key generation, sealing, a worker that died).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Result of a management operation.
pub type ManageResult<T> = Result<T, ManageError>;

fn invalid<T>(why: impl Into<String>) -> ManageResult<T> {
    Err(ManageError::Invalid(why.into()))
}

fn not_found<T>(what: impl Into<String>) -> ManageResult<T> {
    Err(ManageError::NotFound(what.into()))
}

/// Open database plus the secrets needed to write to it correctly.
pub struct Manager {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Secret hashing under the pepper.
    pub hasher: SecretHasher,
    /// Key sealing under the master key.
    pub sealer: Sealer,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Secrets that configure how data is written; `Debug` shows neither.
#[derive(Clone, Default, Debug)]
pub struct Secrets {
    /// The pepper for secret hashes (`CALYX_PEPPER`); generated and stored when absent.
    pub pepper: Option<SecretString>,
    /// The master key sealing private keys (`CALYX_MASTER_KEY`).
    pub master_key: Option<SecretString>,
}

/// A signing key as `keys list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
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

/// Fields of a new API.
#[derive(Debug, Clone)]
pub struct NewApi {
    /// Audience.
    pub audience: String,
    /// Name.
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
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

/// Fields of a new user.
#[derive(Clone, Default)]
pub struct NewUser {
    /// Owning organization id.
    pub org_id: String,
    /// Login name (unique).
    pub username: Option<String>,
    /// Password, hashed with argon2id before storage.
    pub password: Option<String>,
    /// The organization's own id for the user.
    pub external_id: Option<String>,
    /// Contact address.
    pub email: Option<String>,
    /// Allowed scopes per API: `(audience, space-separated scopes)`.
    pub scopes: Vec<(String, String)>,
    /// The most any entry of `scopes` may hold: the registering organization client's grant.
    /// A scope beyond it is refused (`ManageError::InvalidScope`), so registering a user can
    /// never widen what the organization itself may obtain.
    pub ceiling: Option<ScopeSet>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("org_id", &self.org_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

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
}

impl Manager {
    /// Connects, migrates, and settles the pepper.
    pub async fn open(
        database_url: &str,
        max_connections: u32,
        secrets: &Secrets,
    ) -> anyhow::Result<Manager> {
        let mut opts = calyx_store::ConnectOptions::new(database_url);
        opts.max_connections = max_connections;
        let store = calyx_store::connect(&opts)
            .await
            .with_context(|| format!("opening the database {}", redact_url(database_url)))?;
        Self::with_store(store, secrets, Arc::new(SystemClock)).await
    }

    /// Builds a manager over an open store.
    pub async fn with_store(
        store: Arc<dyn Store>,
        secrets: &Secrets,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Manager> {
        let pepper = match &secrets.pepper {
            Some(p) => p.expose_secret().to_owned(),
            None => store
                .meta_get_or_insert("pepper", &random_string(32))
                .await
                .context("reading the secret-hash pepper from the database")?,
        };
        let sealer = Sealer::new(secrets.master_key.as_ref().map(|k| k.expose_secret()))?;
        Ok(Manager {
            store,
            hasher: SecretHasher::new(pepper.as_bytes()),
            sealer,
            clock,
        })
    }

    /// Creates an organization.
    pub async fn create_org(&self, name: &str) -> ManageResult<Org> {
        let name = name.trim();
        if name.is_empty() {
            return invalid("the organization name must not be empty");
        }
        let org = Org {
            id: random_id("org"),
            name: name.to_owned(),
            created_at: self.clock.now(),
        };
        self.store
            .insert_org(&org)
            .await
            .map_err(|e| conflict(e, "an organization with that name"))?;
        Ok(org)
    }

    /// Creates an API and makes sure a signing key exists for its algorithm.
    pub async fn create_api(&self, new: NewApi) -> ManageResult<Api> {
        if new.audience.trim().is_empty() || new.audience.chars().any(char::is_whitespace) {
            return invalid("the audience must be a non-empty string without spaces");
        }
        let scopes = ScopeSet::parse(&new.scopes)
            .map_err(|e| ManageError::Invalid(format!("--scopes: {}", e.description)))?;
        let lifetime = |v: Option<i64>, d: i64, what: &str| match v {
            Some(s) if s <= 0 => invalid(format!("{what} must be a positive number of seconds")),
            Some(s) => Ok(s),
            None => Ok(d),
        };
        let api = Api {
            id: random_id("api"),
            audience: new.audience,
            name: new.name,
            scopes,
            alg: new.alg,
            token_lifetime: lifetime(
                new.token_lifetime,
                Api::DEFAULT_TOKEN_LIFETIME,
                "--token-lifetime",
            )?,
            user_token_lifetime: lifetime(
                new.user_token_lifetime,
                Api::DEFAULT_USER_TOKEN_LIFETIME,
                "--user-token-lifetime",
            )?,
            delegated_token_lifetime: lifetime(
                new.delegated_token_lifetime,
                Api::DEFAULT_DELEGATED_TOKEN_LIFETIME,
                "--delegated-token-lifetime",
            )?,
            refresh_token_lifetime: lifetime(
                new.refresh_token_lifetime,
                Api::DEFAULT_REFRESH_TOKEN_LIFETIME,
                "--refresh-token-lifetime",
            )?,
            scope_descriptions: Default::default(),
            created_at: self.clock.now(),
        };
        keys::ensure_keys(&*self.store, &self.sealer, [api.alg], self.clock.now()).await?;
        self.store
            .insert_api(&api)
            .await
            .map_err(|e| conflict(e, "an API with that audience"))?;
        Ok(api)
    }

    /// Registers a client; returns it and, for a confidential client, its secret (shown once).
    pub async fn create_client(&self, new: NewClient) -> ManageResult<(Client, Option<String>)> {
        if new.name.trim().is_empty() {
            return invalid("the client name must not be empty");
        }
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
        if new.client_type == ClientType::Public
            && grant_types.contains(&GrantType::ClientCredentials)
        {
            return invalid("a public client cannot use client_credentials: it has no secret");
        }
        for uri in &new.redirect_uris {
            redirect::check_redirect_uri(uri).map_err(ManageError::Invalid)?;
        }
        for (what, uri) in [
            ("the website URI", &new.website_uri),
            ("the privacy policy URI", &new.privacy_policy_uri),
            ("the terms of service URI", &new.tos_uri),
        ] {
            if let Some(uri) = uri {
                redirect::check_link(what, uri).map_err(ManageError::Invalid)?;
            }
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
            return invalid("a client using authorization_code needs at least one --redirect-uri");
        }
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
        let secret = (new.client_type == ClientType::Confidential).then(generate_secret);
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
            created_at: self.clock.now(),
        };
        if self.store.org(&client.org_id).await?.is_none() {
            return not_found(format!("no organization with id {}", client.org_id));
        }
        self.store
            .insert_client(&client)
            .await
            .map_err(|e| conflict(e, "a client with that id"))?;
        Ok((client, secret))
    }

    /// Gives a confidential client a new secret. The old one keeps working for
    /// `grace_seconds` (0 = stops at once). Returns the new secret.
    pub async fn rotate_secret(&self, client_id: &str, grace_seconds: i64) -> ManageResult<String> {
        let Some(client) = self.store.client(client_id).await? else {
            return not_found(format!("no client with id {client_id}"));
        };
        if client.client_type == ClientType::Public {
            return invalid(format!(
                "client {client_id} is public: it has no secret to rotate"
            ));
        }
        if grace_seconds < 0 {
            return invalid("--grace-seconds must not be negative");
        }
        let secret = generate_secret();
        let previous_expires = (grace_seconds > 0).then(|| self.clock.now() + grace_seconds);
        self.store
            .rotate_client_secret(client_id, &self.hasher.hash(&secret), previous_expires)
            .await?;
        Ok(secret)
    }

    /// Lets a client obtain tokens for the API with `audience`, with at most `scopes`.
    pub async fn create_grant(
        &self,
        client_id: &str,
        audience: &str,
        scopes: &str,
        is_default: bool,
    ) -> ManageResult<ClientGrant> {
        let Some(api) = self.store.api_by_audience(audience).await? else {
            return not_found(format!("no API with audience {audience}"));
        };
        if self.store.client(client_id).await?.is_none() {
            return not_found(format!("no client with id {client_id}"));
        }
        let scopes = ScopeSet::parse(scopes)
            .map_err(|e| ManageError::Invalid(format!("--scopes: {}", e.description)))?;
        let unknown: Vec<&str> = scopes.iter().filter(|s| !api.defines(s)).collect();
        if !unknown.is_empty() {
            return invalid(format!(
                "the API {audience} does not define the scopes: {}",
                unknown.join(" ")
            ));
        }
        let grant = ClientGrant {
            client_id: client_id.to_owned(),
            api_id: api.id,
            audience: api.audience,
            scopes,
            is_default,
        };
        self.store.upsert_grant(&grant).await?;
        Ok(grant)
    }

    /// Creates a user; the password is stored only as an argon2id hash.
    pub async fn create_user(&self, new: NewUser) -> ManageResult<calyx_core::model::User> {
        create_user(&*self.store, &*self.clock, new).await
    }

    /// Rotates the signing key of `alg`: the published next key starts signing and a new
    /// next key is published.
    pub async fn rotate_key(&self, alg: SigningAlg) -> ManageResult<keys::Rotated> {
        Ok(keys::rotate(&*self.store, &self.sealer, alg, self.clock.now()).await?)
    }

    /// Unpublishes a key at once (a compromised key); a successor takes over its role.
    pub async fn retire_key(&self, kid: &str) -> ManageResult<SigningAlg> {
        keys::retire(&*self.store, &self.sealer, kid, self.clock.now())
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("no live signing key with id {kid}")))
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

fn conflict(e: StoreError, what: &str) -> ManageError {
    match e {
        StoreError::Conflict(_) => ManageError::Conflict(format!("{what} already exists")),
        other => ManageError::Store(other),
    }
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Creates a user (the CLI and `POST /v2/users` both come here). Allowed scopes must be
/// defined by their API; the reserved user-management scopes are never allowed to users.
pub async fn create_user(
    store: &dyn Store,
    clock: &dyn Clock,
    new: NewUser,
) -> ManageResult<calyx_core::model::User> {
    if store.org(&new.org_id).await?.is_none() {
        return invalid(format!("no organization with id {}", new.org_id));
    }
    if new.password.is_some() && new.username.is_none() {
        return invalid("a password needs a username to sign in with");
    }
    for (what, v) in [
        ("username", &new.username),
        ("external_id", &new.external_id),
        ("email", &new.email),
    ] {
        if let Some(v) = v {
            if v.trim().is_empty() || v.len() > 255 || v.chars().any(char::is_control) {
                return invalid(format!(
                    "{what} must be 1 to 255 characters with no control characters"
                ));
            }
        }
    }
    let mut scopes = Vec::new();
    for (audience, list) in &new.scopes {
        let Some(api) = store.api_by_audience(audience).await? else {
            return invalid(format!("no API with audience {audience}"));
        };
        let set = ScopeSet::parse(list)
            .map_err(|e| ManageError::Invalid(format!("scopes: {}", e.description)))?;
        let unknown: Vec<&str> = set.iter().filter(|s| !api.scopes.contains(s)).collect();
        if !unknown.is_empty() {
            return invalid(format!(
                "the API {audience} does not define the scopes: {}",
                unknown.join(" ")
            ));
        }
        if let Some(r) = set
            .iter()
            .find(|s| calyx_core::scope::RESERVED_SCOPES.contains(s))
        {
            return invalid(format!(
                "{r} is reserved for organization tokens and cannot be given to a user"
            ));
        }
        if let Some(ceiling) = &new.ceiling {
            let beyond: Vec<&str> = set.difference(ceiling).collect();
            if !beyond.is_empty() {
                return Err(ManageError::InvalidScope(format!(
                    "allowed_scopes goes beyond what this client is granted for {audience}: {}",
                    beyond.join(" ")
                )));
            }
        }
        scopes.push((api.id, set));
    }
    let password_hash = match new.password {
        Some(p) if p.chars().count() < 8 => {
            return invalid("the password must be at least 8 characters")
        }
        Some(p) => Some(
            tokio::task::spawn_blocking(move || crate::passwords::hash(&p))
                .await
                .map_err(anyhow::Error::new)??,
        ),
        None => None,
    };
    let user = calyx_core::model::User {
        id: random_id("usr"),
        org_id: new.org_id,
        username: new.username,
        password_hash,
        external_id: new.external_id,
        email: new.email,
        created_at: clock.now(),
    };
    match store.insert_user(&user, &scopes).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict(_)) => Err(ManageError::Conflict(
            "a user with that username or external id already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
