//! What the management API answers and `calyx ... --json` prints: one shape per resource, with
//! no secret or hash in any of them. A secret appears only in the `Created*` types, returned
//! once by the call that makes it.

use std::collections::BTreeMap;

use calyx_core::model::{
    Api, Client, ClientGrant, ClientType, Delivery, Family, Org, User, Webhook,
};
use serde::Serialize;
use utoipa::ToSchema;

/// An organization.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgView {
    /// `org_...`.
    pub id: String,
    /// Display name, unique.
    pub name: String,
    /// Tokens all its clients together may be issued per hour, if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_hour: Option<i64>,
    /// Tokens per day, if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Org> for OrgView {
    fn from(o: Org) -> Self {
        OrgView {
            id: o.id,
            name: o.name,
            tokens_per_hour: o.quota.per_hour,
            tokens_per_day: o.quota.per_day,
            created_at: o.created_at,
        }
    }
}

/// An API (resource server).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiView {
    /// `api_...`.
    pub id: String,
    /// The `aud` of its tokens.
    pub audience: String,
    /// Display name.
    pub name: String,
    /// The scopes it defines.
    pub scopes: Vec<String>,
    /// What each scope lets an application do (shown on consent and in the docs).
    pub scope_descriptions: BTreeMap<String, String>,
    /// `ES256`, `EdDSA` or `RS256`.
    pub alg: String,
    /// Machine-token lifetime, seconds.
    pub token_lifetime: i64,
    /// User-token lifetime (code and refresh grants), seconds.
    pub user_token_lifetime: i64,
    /// Delegated-token lifetime, seconds.
    pub delegated_token_lifetime: i64,
    /// Refresh-token lifetime, seconds.
    pub refresh_token_lifetime: i64,
    /// True for the management API's own audience, which cannot be changed or deleted.
    pub built_in: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Api> for ApiView {
    fn from(a: Api) -> Self {
        ApiView {
            built_in: a.audience == super::ADMIN_AUDIENCE,
            id: a.id,
            audience: a.audience,
            name: a.name,
            scopes: a.scopes.iter().map(str::to_owned).collect(),
            scope_descriptions: a.scope_descriptions,
            alg: a.alg.as_str().to_owned(),
            token_lifetime: a.token_lifetime,
            user_token_lifetime: a.user_token_lifetime,
            delegated_token_lifetime: a.delegated_token_lifetime,
            refresh_token_lifetime: a.refresh_token_lifetime,
            created_at: a.created_at,
        }
    }
}

/// A client (application). Its secret is never shown again after creation or rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientView {
    /// The public `client_id`.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Website.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website_uri: Option<String>,
    /// Privacy policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_policy_uri: Option<String>,
    /// Terms of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// `confidential` or `public`.
    #[serde(rename = "type")]
    pub client_type: String,
    /// A disabled client can neither authenticate nor use its tokens here.
    pub disabled: bool,
    /// Until when the secret before the last rotation is still accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<i64>,
    /// How it authenticates at the token endpoint (RFC 7591 §2): `client_secret_basic`
    /// (or `_post`), `none`, `private_key_jwt`, `tls_client_auth` or
    /// `self_signed_tls_client_auth`.
    pub token_endpoint_auth_method: String,
    /// Its public keys (a JWK Set), when registered inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where its JWK Set is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The subject DN its TLS certificate must have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449).
    pub require_dpop: bool,
    /// Authorization requests must be pushed first (RFC 9126).
    pub require_par: bool,
    /// Tokens per hour, if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_hour: Option<i64>,
    /// Tokens per day, if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Client> for ClientView {
    fn from(c: Client) -> Self {
        ClientView {
            id: c.id,
            org_id: c.org_id,
            name: c.name,
            description: c.description,
            website_uri: c.website_uri,
            privacy_policy_uri: c.privacy_policy_uri,
            tos_uri: c.tos_uri,
            redirect_uris: c.redirect_uris,
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            client_type: c.client_type.as_str().to_owned(),
            disabled: c.disabled,
            previous_secret_expires_at: c.previous_secret_expires_at,
            token_endpoint_auth_method: match (c.policy.auth, c.client_type) {
                (Some(method), _) => method.as_str(),
                (None, ClientType::Public) => "none",
                (None, ClientType::Confidential) => "client_secret_basic",
            }
            .to_owned(),
            jwks: c.policy.jwks,
            jwks_uri: c.policy.jwks_uri,
            tls_client_auth_subject_dn: c.policy.tls_subject_dn,
            require_dpop: c.policy.require_dpop,
            require_par: c.policy.require_par,
            tokens_per_hour: c.quota.per_hour,
            tokens_per_day: c.quota.per_day,
            created_at: c.created_at,
        }
    }
}

/// A client just created or given a new secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// The secret (confidential clients); store it now, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Client X may obtain tokens for API A with at most these scopes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantView {
    /// The client.
    pub client_id: String,
    /// The API.
    pub api_id: String,
    /// The API's audience.
    pub audience: String,
    /// The most the client may ask for.
    pub scopes: Vec<String>,
    /// Used when a token request names no audience.
    pub default: bool,
}

impl From<ClientGrant> for GrantView {
    fn from(g: ClientGrant) -> Self {
        GrantView {
            client_id: g.client_id,
            api_id: g.api_id,
            audience: g.audience,
            scopes: g.scopes.iter().map(str::to_owned).collect(),
            default: g.is_default,
        }
    }
}

/// A user. The password is never shown; `has_password` says whether one is set.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRecord {
    /// `usr_...`.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Login name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The organization's own id for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Contact address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    /// `operator` or `org_admin`: what the user may do on the console or the portal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// The most the user may grant, per API audience.
    pub allowed_scopes: BTreeMap<String, Vec<String>>,
    /// Unix seconds.
    pub created_at: i64,
}

impl UserRecord {
    /// The view of `u` with its allowed scopes (audience → scopes).
    pub fn new(u: User, allowed_scopes: BTreeMap<String, Vec<String>>) -> UserRecord {
        UserRecord {
            has_password: u.password_hash.is_some(),
            role: u.role.map(|r| r.as_str()),
            id: u.id,
            org_id: u.org_id,
            username: u.username,
            external_id: u.external_id,
            email: u.email,
            allowed_scopes,
            created_at: u.created_at,
        }
    }
}

/// A grant family: one sign-in's chain of code, refresh and access tokens.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyView {
    /// `fam_...`, the `sid` of its access tokens.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The user's organization.
    pub org_id: String,
    /// The API.
    pub api_id: String,
    /// The consented scopes.
    pub scope: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

impl From<Family> for FamilyView {
    fn from(f: Family) -> Self {
        FamilyView {
            id: f.id,
            client_id: f.client_id,
            user_id: f.user_id,
            org_id: f.org_id,
            api_id: f.api_id,
            scope: f.scope.to_string(),
            created_at: f.created_at,
            revoked_at: f.revoked_at,
        }
    }
}

/// A webhook subscription. Its signing secret is shown only at creation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    /// `whk_...`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types (or `family.*`, or `*`).
    pub events: Vec<String>,
    /// A disabled webhook gets no new deliveries.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        WebhookView {
            id: w.id,
            url: w.url,
            events: w.events,
            disabled: w.disabled,
            created_at: w.created_at,
        }
    }
}

/// A webhook just created: the only time its signing secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The key of the `Calyx-Signature` HMAC; store it now, it is not shown again.
    pub secret: String,
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `dlv_...`.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The audit event (the same on every attempt).
    pub event_id: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When a pending delivery is next tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// The receiver's last HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the event was queued.
    pub created_at: i64,
    /// When the receiver accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let pending = d.state == calyx_core::model::DeliveryState::Pending;
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            state: d.state.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: pending.then_some(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// Tokens issued to a client in one hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageView {
    /// The hour's start, Unix seconds.
    pub hour: i64,
    /// Tokens issued in it.
    pub tokens: i64,
}
