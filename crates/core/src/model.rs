//! The domain: organizations, APIs, clients, client grants and signing keys, as the
//! protocol logic sees them. Times are Unix seconds.

use std::fmt;
use std::str::FromStr;

use crate::ScopeSet;

/// A JWS algorithm an API may sign its access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (RFC 7518 §3.4), the default.
    #[default]
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys (RFC 7518 §3.3).
    RS256,
}

impl SigningAlg {
    /// Every supported algorithm.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256];

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::RS256 => "RS256",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown signing algorithm {s:?} (expected ES256, EdDSA or RS256)")
            })
    }
}

/// An OAuth grant type a client may be allowed to use. Any other `grant_type` gets
/// `unsupported_grant_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(serde::Serialize, utoipa::ToSchema))]
pub enum GrantType {
    /// RFC 6749 §4.4.
    #[cfg_attr(feature = "openapi", serde(rename = "client_credentials"))]
    ClientCredentials,
    /// RFC 6749 §4.1.
    #[cfg_attr(feature = "openapi", serde(rename = "authorization_code"))]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[cfg_attr(feature = "openapi", serde(rename = "refresh_token"))]
    RefreshToken,
    /// RFC 8693.
    #[cfg_attr(
        feature = "openapi",
        serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")
    )]
    TokenExchange,
}

impl GrantType {
    /// Every grant type, in the order the metadata document lists them.
    pub const ALL: [GrantType; 4] = [
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::TokenExchange,
    ];

    /// The `grant_type` wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// Parses a `grant_type` wire value.
    pub fn parse(s: &str) -> Option<Self> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientType {
    /// Has a secret and authenticates with it.
    #[default]
    Confidential,
    /// Has no secret; must use PKCE for the code flow.
    Public,
}

impl ClientType {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

impl FromStr for ClientType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "confidential" => Ok(ClientType::Confidential),
            "public" => Ok(ClientType::Public),
            other => Err(format!(
                "unknown client type {other:?} (expected confidential or public)"
            )),
        }
    }
}

/// A customer of the API provider; owns clients and users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Opaque id, `org_...`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Tokens all its clients together may be issued per hour and per day.
    pub quota: Quota,
    /// Creation time.
    pub created_at: i64,
}

/// A resource server, identified by its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Opaque id, `api_...`.
    pub id: String,
    /// The `aud` of its tokens; what clients send as `audience` or `resource`.
    pub audience: String,
    /// Display name.
    pub name: String,
    /// Scopes the API defines (the reserved user-management scopes are implicit).
    pub scopes: ScopeSet,
    /// Algorithm its tokens are signed with.
    pub alg: SigningAlg,
    /// Lifetime of machine (client-credentials) tokens, seconds.
    pub token_lifetime: i64,
    /// Lifetime of user tokens from the code and refresh grants, seconds.
    pub user_token_lifetime: i64,
    /// Lifetime of delegated user tokens (`/v2/users/{id}/authenticate`), seconds.
    pub delegated_token_lifetime: i64,
    /// Lifetime of refresh tokens, seconds.
    pub refresh_token_lifetime: i64,
    /// What each scope lets an application do, in words for the consent page and the docs
    /// (scope → description); a scope without one is shown by name.
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// Creation time.
    pub created_at: i64,
}

impl Api {
    /// Default machine-token lifetime: one day, as Auth0.
    pub const DEFAULT_TOKEN_LIFETIME: i64 = 86_400;
    /// Default user-token lifetime from the code grant: one hour.
    pub const DEFAULT_USER_TOKEN_LIFETIME: i64 = 3_600;
    /// Default delegated-token lifetime: two hours.
    pub const DEFAULT_DELEGATED_TOKEN_LIFETIME: i64 = 7_200;
    /// Default refresh-token lifetime: 90 days.
    pub const DEFAULT_REFRESH_TOKEN_LIFETIME: i64 = 90 * 86_400;

    /// True when `scope` is defined by this API or is one of the reserved scopes.
    pub fn defines(&self, scope: &str) -> bool {
        self.scopes.contains(scope) || crate::scope::RESERVED_SCOPES.contains(&scope)
    }
}

/// A registered application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The public `client_id`.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Display name, shown on the consent page.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Linked from the consent page.
    pub website_uri: Option<String>,
    /// Linked from the consent page.
    pub privacy_policy_uri: Option<String>,
    /// Linked from the consent page.
    pub tos_uri: Option<String>,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Keyed hash of the current secret (confidential clients only).
    pub secret_hash: Option<Vec<u8>>,
    /// Keyed hash of the secret before the last rotation, accepted until
    /// `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// End of the rotation grace period.
    pub previous_secret_expires_at: Option<i64>,
    /// A disabled client cannot authenticate, obtain tokens or sign users in; its tokens
    /// stop introspecting as active. Reversible, unlike deletion.
    pub disabled: bool,
    /// How it authenticates beyond a secret, and what it must use.
    pub policy: ClientPolicy,
    /// Tokens it may be issued per hour and per day.
    pub quota: Quota,
    /// Creation time.
    pub created_at: i64,
}

impl Client {
    /// True when the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// How a client authenticates at the token endpoint when not by a secret (RFC 7591 §2
/// `token_endpoint_auth_method`). A confidential client without one uses its secret
/// (`client_secret_basic` or `client_secret_post`); a public client uses none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAuth {
    /// A JWT signed with a key of the client's JWKS (RFC 7523 §2.2, OpenID Connect Core §9).
    PrivateKeyJwt,
    /// A TLS client certificate from a trusted CA with the registered subject (RFC 8705 §2.1).
    TlsClientAuth,
    /// A self-signed TLS client certificate whose key is in the client's JWKS (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

impl KeyAuth {
    /// Every method, as metadata lists them.
    pub const ALL: [KeyAuth; 3] = [
        KeyAuth::PrivateKeyJwt,
        KeyAuth::TlsClientAuth,
        KeyAuth::SelfSignedTlsClientAuth,
    ];

    /// The registered name (RFC 7591 §2, RFC 8705 §2.1.1 and §2.2.1).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAuth::PrivateKeyJwt => "private_key_jwt",
            KeyAuth::TlsClientAuth => "tls_client_auth",
            KeyAuth::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}

impl FromStr for KeyAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAuth::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown token endpoint auth method {s:?} (expected private_key_jwt, \
                     tls_client_auth or self_signed_tls_client_auth)"
                )
            })
    }
}

/// What a client must prove beyond its id, and the keys it proves it with.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClientPolicy {
    /// How it authenticates, when not by a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<KeyAuth>,
    /// Its public keys, inline: a JWK Set (`private_key_jwt`, `self_signed_tls_client_auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where its JWK Set is published, fetched and cached by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The subject distinguished name its certificate must have (`tls_client_auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_subject_dn: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_dpop: bool,
    /// Authorization requests must be pushed first (RFC 9126 §6).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_par: bool,
}

/// How many tokens may be issued in an hour and in a day (fixed windows, UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quota {
    /// Tokens per hour; `None` is no limit.
    pub per_hour: Option<i64>,
    /// Tokens per day; `None` is no limit.
    pub per_day: Option<i64>,
}

impl Quota {
    /// True when either limit is set.
    pub fn is_set(&self) -> bool {
        self.per_hour.is_some() || self.per_day.is_some()
    }
}

/// One limit of a quota: at most `limit` tokens for `subject` in each window of
/// `window_secs` seconds (windows start at multiples of it, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaLimit {
    /// `client:<id>` or `org:<id>`.
    pub subject: String,
    /// 3600 or 86400.
    pub window_secs: i64,
    /// The most tokens per window.
    pub limit: i64,
}

impl QuotaLimit {
    /// The start of the window that holds the instant `now`.
    pub fn window_start(&self, now: i64) -> i64 {
        now - now.rem_euclid(self.window_secs)
    }
}

/// The limit a token would have gone over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaHit {
    /// Its position in the limits counted.
    pub index: usize,
    /// Seconds until its window ends.
    pub retry_after: i64,
}

/// A pushed authorization request (RFC 9126): its parameters, waiting for `/authorize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    /// Keyed hash of the `request_uri`'s random part.
    pub uri_hash: Vec<u8>,
    /// The client that pushed it.
    pub client_id: String,
    /// The authorization request's parameters, as a JSON object of strings.
    pub params: String,
    /// After this it is refused.
    pub expires_at: i64,
}

/// Client X may obtain tokens for API A with at most scopes S.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGrant {
    /// The client.
    pub client_id: String,
    /// The API.
    pub api_id: String,
    /// The API's audience (denormalized for lookups by audience).
    pub audience: String,
    /// The most the client may ask for.
    pub scopes: ScopeSet,
    /// Used when a token request names no audience. At most one per client.
    pub is_default: bool,
}

/// A signing key as stored: the private key is PKCS#8 DER, sealed when a master key is set.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id, published in the JWKS and put in every token header.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// PKCS#8 DER, or its sealed form (see the server's key loading).
    pub private_key: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// When the key started signing; `None` for the *next* key of its algorithm, which is
    /// published before it signs anything. The most recently promoted key of an algorithm
    /// signs.
    pub promoted_at: Option<i64>,
    /// After this time the key is neither used nor published.
    pub retires_at: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("promoted_at", &self.promoted_at)
            .field("retires_at", &self.retires_at)
            .finish()
    }
}

/// A person who signs in on the login page, or whom an organization registers (`/v2/users`).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Opaque id, `usr_...`; the `sub` of the user's tokens.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Login name, unique across the deployment.
    pub username: Option<String>,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// The organization's own id for the user, unique within the organization.
    pub external_id: Option<String>,
    /// Contact address.
    pub email: Option<String>,
    /// What the user may do beyond signing in to applications.
    pub role: Option<Role>,
    /// Creation time.
    pub created_at: i64,
}

/// What a user may do on Calyx's own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An operator of the deployment (a user of the built-in operators' organization): signs
    /// in to the console and manages everything.
    Operator,
    /// An organization's developer: signs in to the developer portal and registers the
    /// organization's applications, within what the organization is entitled to.
    OrgAdmin,
}

impl Role {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::OrgAdmin => "org_admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(Role::Operator),
            "org_admin" => Ok(Role::OrgAdmin),
            other => Err(format!(
                "unknown role {other:?} (expected operator or org_admin)"
            )),
        }
    }
}

/// What an organization's own developers may grant the organization's applications on one
/// API, through the developer portal. Operators are not bound by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The organization.
    pub org_id: String,
    /// The API.
    pub api_id: String,
    /// The most any application of the organization may be granted on it.
    pub scopes: ScopeSet,
}

/// A user's remembered approval of an application's access to one API: the consent page is
/// skipped while a request asks for no more than this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The user who approved.
    pub user_id: String,
    /// The application.
    pub client_id: String,
    /// The API.
    pub api_id: String,
    /// What was approved.
    pub scope: ScopeSet,
    /// When it was last approved.
    pub granted_at: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("username", &self.username)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// An authorization code, stored by its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// Keyed hash of the code.
    pub code_hash: Vec<u8>,
    /// The family its tokens will belong to (created when the code is redeemed).
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who approved it.
    pub user_id: String,
    /// The API.
    pub api_id: String,
    /// Approved scopes.
    pub scope: ScopeSet,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the token request
    /// must repeat it).
    pub redirect_uri_given: bool,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// End of validity (creation + 10 minutes).
    pub expires_at: i64,
    /// When it was redeemed.
    pub used_at: Option<i64>,
}

/// The chain of one authorization: its code, and every refresh and access token descended
/// from it. Revoking the family revokes all of them.
///
/// The family row is also where its refresh token lives: one row per sign-in, updated in
/// place by each rotation (see [`FamilyToken`]), so storage grows with what is live and not
/// with how often it is refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Opaque id, `fam_...`; the `sid` claim of its access tokens.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The user's organization.
    pub org_id: String,
    /// The API.
    pub api_id: String,
    /// The scopes approved at consent; no token of the family can exceed them, and its
    /// refresh tokens carry exactly them (RFC 6749 §6).
    pub scope: ScopeSet,
    /// Creation time.
    pub created_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// The family's current refresh token, when it has one (a client without the
    /// `refresh_token` grant gets none; a family from before generation tokens holds its
    /// tokens in the legacy table until its first rotation).
    pub token: Option<FamilyToken>,
    /// The thumbprint of the DPoP key a public client proved when the code was redeemed: its
    /// refresh tokens are then accepted only with a proof by that key (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
}

/// A family's current refresh token: its generation and keyed hash, never the token.
///
/// A refresh token names its family and generation and carries a tag under a key derived from
/// the pepper (`calyx_core::grant::refresh_token`), so a spent token is recognised as genuine
/// without keeping a row for it.
#[derive(Clone, PartialEq, Eq)]
pub struct FamilyToken {
    /// 1 for the token issued with the code, one more at each rotation.
    pub generation: i64,
    /// Keyed hash of the token.
    pub token_hash: Vec<u8>,
    /// When it was issued.
    pub issued_at: i64,
    /// Its expiry.
    pub expires_at: i64,
}

impl fmt::Debug for FamilyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FamilyToken")
            .field("generation", &self.generation)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A refresh token of the earlier format (one row per rotation, looked up by its keyed hash),
/// kept so that tokens issued before generation tokens still work: rotating one moves its
/// family to generation tokens, and its rows go as they expire.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Keyed hash of the token.
    pub token_hash: Vec<u8>,
    /// Its family.
    pub family_id: String,
    /// Its scope (RFC 6749 §6: identical along the chain).
    pub scope: ScopeSet,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When it was spent.
    pub used_at: Option<i64>,
    /// The successor, sealed, kept only when a reuse leeway is configured.
    pub successor_sealed: Option<Vec<u8>>,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("family_id", &self.family_id)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

/// The refresh token a rotation was asked with.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// A generation token whose tag checked out: its generation and keyed hash.
    Generation {
        /// The generation it names.
        generation: i64,
        /// Its keyed hash.
        token_hash: Vec<u8>,
    },
    /// A token of the earlier format, by its keyed hash.
    Legacy {
        /// Its keyed hash.
        token_hash: Vec<u8>,
    },
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presented::Generation { generation, .. } => f
                .debug_struct("Generation")
                .field("generation", generation)
                .finish_non_exhaustive(),
            Presented::Legacy { .. } => f.debug_struct("Legacy").finish_non_exhaustive(),
        }
    }
}

/// One refresh-token rotation, as the store performs it: if `presented` is the family's
/// current token, replace it with `successor` in the family's row.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The family named by the presented token.
    pub family_id: String,
    /// The presented token.
    pub presented: Presented,
    /// The new current token (its generation is the presented one's plus one; 1 when a
    /// legacy token is rotated).
    pub successor: FamilyToken,
    /// The successor, sealed, kept only when a reuse leeway is configured, so that a retry
    /// of the presented token within the leeway gets the same successor.
    pub successor_sealed: Option<Vec<u8>>,
    /// The time of the rotation.
    pub now: i64,
    /// Seconds within which a spent token may be retried and get the same successor.
    pub leeway: i64,
}

/// What happened when a refresh token was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// It was live; it is now spent and its successor stored.
    Rotated,
    /// It was spent within the reuse leeway and its successor is still unused: the caller may
    /// hand out the same successor again (its sealed form).
    Retried(Vec<u8>),
    /// It was already spent: the whole family is now revoked.
    Reused,
    /// Unknown, expired, or its family is revoked.
    Invalid,
}

/// One page of a listing: items ordered by id, after a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page<'a> {
    /// Only ids greater than this one.
    pub after: Option<&'a str>,
    /// At most this many items.
    pub limit: i64,
}

/// Which grant families a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyFilter {
    /// Only this client's families.
    pub client_id: Option<String>,
    /// Only this user's families.
    pub user_id: Option<String>,
}

/// A webhook subscription: audit events of the listed types are POSTed to `url`, signed with
/// the subscription's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Opaque id, `whk_...`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types delivered (`*` for every type).
    pub events: Vec<String>,
    /// The signing secret, sealed under the master key: it must be recoverable to sign, so
    /// it cannot be a hash like client secrets.
    pub secret_sealed: Vec<u8>,
    /// A disabled webhook gets no new deliveries.
    pub disabled: bool,
    /// Creation time.
    pub created_at: i64,
}

impl Webhook {
    /// True when events of type `kind` go to this webhook.
    pub fn wants(&self, kind: &str) -> bool {
        !self.disabled
            && self
                .events
                .iter()
                .any(|e| crate::audit::kind::matches(e, kind))
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Where a webhook delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet accepted by the receiver; will be tried (again) at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the retry window.
    Failed,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One event on its way to one webhook (the outbox row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Opaque id, `dlv_...`.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The audit event's id: the same on every attempt, so receivers can drop repeats.
    pub event_id: String,
    /// The JSON body POSTed, fixed when the event happened.
    pub payload: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// When it is next due (pending deliveries).
    pub next_attempt_at: i64,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event was queued.
    pub created_at: i64,
    /// When the receiver accepted it.
    pub delivered_at: Option<i64>,
}

/// The result of one delivery attempt, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub id: String,
    /// Its new state.
    pub state: DeliveryState,
    /// When it is next due, if still pending.
    pub next_attempt_at: i64,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<i64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The time of the attempt.
    pub at: i64,
}

/// Tokens issued to one client in one hour (usage charts and quotas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    /// The client.
    pub client_id: String,
    /// The hour, as Unix seconds at its start.
    pub hour: i64,
    /// Tokens issued.
    pub count: i64,
}

/// What a purge removed (or, with a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    /// Authorization codes past their expiry.
    pub codes: u64,
    /// Grant families that are revoked, or whose every token has expired.
    pub families: u64,
    /// Refresh tokens past their expiry, or of a purged family.
    pub refresh_tokens: u64,
    /// Revoked access-token ids past the token's expiry.
    pub revoked_jtis: u64,
    /// Retired signing keys (every token they signed has expired).
    pub keys: u64,
    /// Audit events older than the retention.
    pub audit_events: u64,
    /// Webhook deliveries finished (delivered or failed) before the audit retention.
    pub deliveries: u64,
    /// Single-use ids (DPoP proofs, client assertions) and pushed authorization requests past
    /// their lifetime.
    pub used_ids: u64,
}
