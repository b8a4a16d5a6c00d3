//! [`Fixture`]: provisioning with defaults, through the management operations the CLI uses
//! (`calyx_server::manage`). A test names only what differs from the defaults:
//!
//! ```text
//! server.fixture().build()                        // a machine client granted the whole API
//! server.fixture().scopes("read").alg(EdDSA)      // ... on an API of its own kind
//! server.fixture().app(ClientType::Public).user("jane")   // a third-party app and a user
//! ```
//!
//! Defaults: a new organization and a new API (unique names, so that fixtures in one database
//! never collide) with scopes `read:consumers write:consumers` signed with ES256; a
//! confidential client-credentials client granted every scope of the API (not as its default
//! audience); no user.

use calyx_core::grant::{refresh_token, Secrets};
use calyx_core::model::{
    Api, AuthCode, ClientPolicy, ClientType, Family, FamilyToken, GrantType, Quota, SigningAlg,
    User,
};
use calyx_core::ScopeSet;
use calyx_server::manage::{Manager, NewApi, NewClient, NewUser};
use calyx_token::seal::Sealer;
use calyx_token::secret::{generate_secret, random_id, SecretHasher};

/// The redirect URI of the third-party apps the fixtures register.
pub const REDIRECT: &str = "https://app.example.com/cb";
/// The password of the users the fixtures create.
pub const PASSWORD: &str = "correct horse battery";
/// The scopes of a fixture's API unless told otherwise.
pub const DEFAULT_SCOPES: &str = "read:consumers write:consumers";

/// A manager on the database at `url` (migrated; the pepper is the one the database keeps,
/// as for `calyx` commands and `calyx serve` without `CALYX_PEPPER`).
pub async fn open_manager(url: &str) -> Manager {
    Manager::open(url, 2, &calyx_server::manage::Secrets::default())
        .await
        .unwrap()
}

/// A unique-enough suffix for names within one database.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", calyx_token::secret::random_string(6))
}

/// What a fixture made.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The organization.
    pub org_id: String,
    /// The client.
    pub client_id: String,
    /// Its secret; `None` for a public client.
    pub secret: Option<String>,
    /// The (first) API's audience.
    pub audience: String,
    /// The client's redirect URI ([`REDIRECT`]), if it has one.
    pub redirect_uri: Option<&'static str>,
    /// The user's login name; empty when the fixture made no user.
    pub username: String,
    /// The user's id; empty when the fixture made no user.
    pub user_id: String,
}

impl Provisioned {
    /// The client's secret (panics for a public client).
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("a confidential client")
    }

    /// A client-credentials form for the client's audience, authenticated with
    /// `client_secret_post` and `secret` (RFC 6749 §2.3.1, §4.4.2).
    pub fn client_credentials<'a>(&'a self, secret: &'a str) -> [(&'static str, &'a str); 4] {
        [
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", secret),
            ("audience", &self.audience),
        ]
    }
}

/// A provisioning plan with defaults; [`Fixture::build`] carries it out.
#[must_use = "a fixture does nothing until built"]
pub struct Fixture<'a> {
    manager: &'a Manager,
    org: Option<String>,
    audiences: Vec<String>,
    api_name: String,
    scopes: String,
    alg: SigningAlg,
    token_lifetime: Option<i64>,
    client: NewClient,
    granted: Option<String>,
    default_grant: bool,
    user: Option<(String, String)>,
}

impl<'a> Fixture<'a> {
    /// The defaults, on `manager`'s database.
    pub fn new(manager: &'a Manager) -> Fixture<'a> {
        Fixture {
            manager,
            org: None,
            audiences: Vec::new(),
            api_name: "Test API".into(),
            scopes: DEFAULT_SCOPES.into(),
            alg: SigningAlg::ES256,
            token_lifetime: None,
            client: NewClient {
                name: "Test client".into(),
                client_type: ClientType::Confidential,
                grant_types: vec![GrantType::ClientCredentials],
                ..NewClient::default()
            },
            granted: None,
            default_grant: false,
            user: None,
        }
    }

    /// The organization's name (default: unique).
    pub fn org(mut self, name: &str) -> Self {
        self.org = Some(name.into());
        self
    }

    /// The API's audience (default: a unique `https://api-….example.com/`).
    pub fn api(mut self, audience: &str) -> Self {
        self.audiences = vec![audience.into()];
        self
    }

    /// Another API like the first, with the same grant.
    pub fn also_api(mut self, audience: &str) -> Self {
        if self.audiences.is_empty() {
            self.audiences
                .push(format!("https://{}.example.com/", unique("api")));
        }
        self.audiences.push(audience.into());
        self
    }

    /// The API's name.
    pub fn api_name(mut self, name: &str) -> Self {
        self.api_name = name.into();
        self
    }

    /// The API's scopes, space-separated (and what is granted, unless [`Fixture::grant`]).
    pub fn scopes(mut self, scopes: &str) -> Self {
        self.scopes = scopes.into();
        self
    }

    /// The API's signing algorithm.
    pub fn alg(mut self, alg: SigningAlg) -> Self {
        self.alg = alg;
        self
    }

    /// The API's machine-token lifetime, seconds.
    pub fn token_lifetime(mut self, seconds: Option<i64>) -> Self {
        self.token_lifetime = seconds;
        self
    }

    /// The client's id (default: generated).
    pub fn client_id(mut self, id: &str) -> Self {
        self.client.client_id = Some(id.into());
        self
    }

    /// The client's name.
    pub fn client_name(mut self, name: &str) -> Self {
        self.client.name = name.into();
        self
    }

    /// A third-party application instead of a machine client: `authorization_code` and
    /// `refresh_token`, redirecting to [`REDIRECT`], with website, privacy and terms links,
    /// granted by default for its API.
    pub fn app(mut self, client_type: ClientType) -> Self {
        self.client = NewClient {
            name: self.client.name,
            client_type,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec![REDIRECT.into()],
            website_uri: Some("https://app.example.com/".into()),
            privacy_policy_uri: Some("https://app.example.com/privacy".into()),
            tos_uri: Some("https://app.example.com/terms".into()),
            ..NewClient::default()
        };
        self.default_grant = true;
        self
    }

    /// The client's policy: key-based authentication, DPoP, PAR (after [`Fixture::app`],
    /// which starts the client afresh).
    pub fn policy(mut self, policy: ClientPolicy) -> Self {
        self.client.policy = policy;
        self
    }

    /// The client's token quota.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.client.quota = quota;
        self
    }

    /// The client's grant types.
    pub fn grant_types(mut self, grant_types: &[GrantType]) -> Self {
        self.client.grant_types = grant_types.to_vec();
        if grant_types.contains(&GrantType::AuthorizationCode)
            && self.client.redirect_uris.is_empty()
        {
            self.client.redirect_uris = vec![REDIRECT.into()];
        }
        self
    }

    /// The scopes granted to the client (default: all of the API's).
    pub fn grant(mut self, scopes: &str) -> Self {
        self.granted = Some(scopes.into());
        self
    }

    /// Makes the first API the client's default audience (or not).
    pub fn default_audience(mut self, default: bool) -> Self {
        self.default_grant = default;
        self
    }

    /// A user `username` (made unique) with password [`PASSWORD`] in the organization,
    /// allowed `scopes` of the first API.
    pub fn user(mut self, username: &str, scopes: &str) -> Self {
        self.user = Some((username.into(), scopes.into()));
        self
    }

    /// Creates it all.
    pub async fn build(self) -> Provisioned {
        let m = self.manager;
        let org_name = self.org.unwrap_or_else(|| unique("org"));
        let org = m.create_org(&org_name).await.unwrap();
        let mut audiences = self.audiences;
        if audiences.is_empty() {
            audiences.push(format!("https://{}.example.com/", unique("api")));
        }
        for audience in &audiences {
            m.create_api(NewApi {
                audience: audience.clone(),
                scope_descriptions: Default::default(),
                name: self.api_name.clone(),
                scopes: self.scopes.clone(),
                alg: self.alg,
                token_lifetime: self.token_lifetime,
                user_token_lifetime: None,
                delegated_token_lifetime: None,
                refresh_token_lifetime: None,
            })
            .await
            .unwrap();
        }
        let redirect_uri = (!self.client.redirect_uris.is_empty()).then_some(REDIRECT);
        let (client, secret) = m
            .create_client(NewClient {
                org_id: org.id.clone(),
                ..self.client
            })
            .await
            .unwrap();
        let granted = self.granted.unwrap_or_else(|| self.scopes.clone());
        for (i, audience) in audiences.iter().enumerate() {
            m.create_grant(&client.id, audience, &granted, self.default_grant && i == 0)
                .await
                .unwrap();
        }
        let audience = audiences.swap_remove(0);
        let (mut username, mut user_id) = (String::new(), String::new());
        if let Some((name, scopes)) = self.user {
            username = unique(&name);
            user_id = m
                .create_user(NewUser {
                    org_id: org.id.clone(),
                    username: Some(username.clone()),
                    password: Some(PASSWORD.into()),
                    scopes: vec![(audience.clone(), scopes)],
                    ..NewUser::default()
                })
                .await
                .unwrap()
                .id;
        }
        Provisioned {
            org_id: org.id,
            audience,
            client_id: client.id,
            secret,
            redirect_uri,
            username,
            user_id,
        }
    }
}

/// A live refresh token for `user` and client `client_id` on `api`, seeded straight through
/// the store as if a code (for [`REDIRECT`]) had been redeemed at consent: no browser, no
/// password hashing. It expires after `lifetime` seconds.
pub async fn seed_refresh_token(
    m: &Manager,
    client_id: &str,
    user: &User,
    api: &Api,
    scope: ScopeSet,
    lifetime: i64,
) -> String {
    let now = m.clock.now();
    let code = generate_secret();
    let id = random_id("fam");
    let (rt, token_hash) = refresh_token::mint(&SeedSecrets::new(m), &id, 1);
    let family = Family {
        id,
        client_id: client_id.to_owned(),
        user_id: user.id.clone(),
        org_id: user.org_id.clone(),
        api_id: api.id.clone(),
        scope,
        created_at: now,
        revoked_at: None,
        token: Some(FamilyToken {
            generation: 1,
            token_hash,
            issued_at: now,
            expires_at: now + lifetime,
        }),
        dpop_jkt: None,
    };
    m.store
        .insert_code(&AuthCode {
            code_hash: m.hasher.hash(&code),
            family_id: family.id.clone(),
            client_id: client_id.to_owned(),
            user_id: user.id.clone(),
            api_id: api.id.clone(),
            scope: family.scope.clone(),
            redirect_uri: REDIRECT.into(),
            redirect_uri_given: false,
            code_challenge: None,
            created_at: now,
            expires_at: now + 600,
            used_at: None,
        })
        .await
        .unwrap();
    assert!(m
        .store
        .redeem_code(&m.hasher.hash(&code), now, &family)
        .await
        .unwrap());
    rt
}

/// The server's secrets, derived from the manager's pepper as `AppState` derives them, so
/// that a seeded refresh token is one the server accepts.
pub struct SeedSecrets {
    hasher: SecretHasher,
    tags: SecretHasher,
    sealer: Sealer,
}

impl SeedSecrets {
    /// The secrets of the server that `m`'s pepper configures.
    pub fn new(m: &Manager) -> Self {
        SeedSecrets {
            hasher: m.hasher.clone(),
            tags: calyx_server::refresh_tags(&m.hasher),
            sealer: calyx_server::web_sealer(&m.hasher),
        }
    }
}

impl Secrets for SeedSecrets {
    fn hash(&self, secret: &str) -> Vec<u8> {
        self.hasher.hash(secret)
    }
    fn generate(&self) -> String {
        generate_secret()
    }
    fn tag(&self, message: &str) -> Vec<u8> {
        self.tags.hash(message)
    }
    fn id(&self, prefix: &str) -> String {
        random_id(prefix)
    }
    fn seal(&self, plain: &[u8]) -> Vec<u8> {
        self.sealer.seal(plain)
    }
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.sealer.open(sealed).ok()
    }
}
