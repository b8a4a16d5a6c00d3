//! Row shapes and their conversion to the domain model. Lists are stored as text: scopes,
//! grant types and webhook event types space-separated, redirect URIs one per line (neither
//! may contain a space or a newline); scope descriptions and audit details as JSON text.

use std::collections::BTreeMap;

use calyx_core::audit::AuditEvent;
use calyx_core::model::{
    Api, AuthCode, Client, ClientGrant, Consent, Delivery, DeliveryState, Entitlement, Family,
    FamilyToken, GrantType, Org, Quota, RefreshToken, SigningAlg, StoredKey, UsageCount, User,
    Webhook,
};
use calyx_core::store::{StoreError, StoreResult};
use calyx_core::ScopeSet;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("stored {what} is invalid: {detail}").into())
}

pub(crate) fn scopes(s: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(s).map_err(|e| corrupt("scope", e))
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    id: String,
    name: String,
    created_at: i64,
    tokens_per_hour: Option<i64>,
    tokens_per_day: Option<i64>,
}

impl From<OrgRow> for Org {
    fn from(r: OrgRow) -> Org {
        Org {
            id: r.id,
            name: r.name,
            quota: Quota {
                per_hour: r.tokens_per_hour,
                per_day: r.tokens_per_day,
            },
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiRow {
    id: String,
    audience: String,
    name: String,
    scopes: String,
    alg: String,
    token_lifetime: i64,
    user_token_lifetime: i64,
    delegated_token_lifetime: i64,
    refresh_token_lifetime: i64,
    scope_descriptions: String,
    created_at: i64,
}

impl TryFrom<ApiRow> for Api {
    type Error = StoreError;
    fn try_from(r: ApiRow) -> Result<Api, StoreError> {
        Ok(Api {
            scopes: scopes(&r.scopes)?,
            alg: r.alg.parse::<SigningAlg>().map_err(|e| corrupt("alg", e))?,
            id: r.id,
            audience: r.audience,
            name: r.name,
            token_lifetime: r.token_lifetime,
            user_token_lifetime: r.user_token_lifetime,
            delegated_token_lifetime: r.delegated_token_lifetime,
            refresh_token_lifetime: r.refresh_token_lifetime,
            scope_descriptions: serde_json::from_str::<BTreeMap<String, String>>(
                &r.scope_descriptions,
            )
            .map_err(|e| corrupt("scope descriptions", e))?,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    id: String,
    org_id: String,
    name: String,
    description: Option<String>,
    website_uri: Option<String>,
    privacy_policy_uri: Option<String>,
    tos_uri: Option<String>,
    redirect_uris: String,
    grant_types: String,
    client_type: String,
    secret_hash: Option<Vec<u8>>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    disabled: bool,
    created_at: i64,
    policy: String,
    tokens_per_hour: Option<i64>,
    tokens_per_day: Option<i64>,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Client, StoreError> {
        let grant_types = r
            .grant_types
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type", g)))
            .collect::<Result<_, _>>()?;
        Ok(Client {
            redirect_uris: r.redirect_uris.lines().map(str::to_owned).collect(),
            grant_types,
            client_type: r
                .client_type
                .parse()
                .map_err(|e| corrupt("client type", e))?,
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            website_uri: r.website_uri,
            privacy_policy_uri: r.privacy_policy_uri,
            tos_uri: r.tos_uri,
            secret_hash: r.secret_hash,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: r.previous_secret_expires_at,
            disabled: r.disabled,
            policy: serde_json::from_str(&r.policy).map_err(|e| corrupt("client policy", e))?,
            quota: Quota {
                per_hour: r.tokens_per_hour,
                per_day: r.tokens_per_day,
            },
            created_at: r.created_at,
        })
    }
}

/// The stored form of a client's policy: a JSON object.
pub(crate) fn client_policy(c: &Client) -> String {
    serde_json::to_string(&c.policy).expect("a policy serializes")
}

/// The stored forms of a client's list fields.
pub(crate) fn client_lists(c: &Client) -> (String, String) {
    let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    (c.redirect_uris.join("\n"), grant_types.join(" "))
}

/// The stored form of an API's scope descriptions: a JSON object, scope → description.
pub(crate) fn scope_descriptions(a: &Api) -> String {
    // A map of strings to strings always serializes.
    serde_json::to_string(&a.scope_descriptions).unwrap_or_else(|_| "{}".to_owned())
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    client_id: String,
    api_id: String,
    audience: String,
    scopes: String,
    is_default: bool,
}

impl TryFrom<GrantRow> for ClientGrant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<ClientGrant, StoreError> {
        Ok(ClientGrant {
            scopes: scopes(&r.scopes)?,
            client_id: r.client_id,
            api_id: r.api_id,
            audience: r.audience,
            is_default: r.is_default,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    alg: String,
    private_key: Vec<u8>,
    created_at: i64,
    promoted_at: Option<i64>,
    retires_at: Option<i64>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<StoredKey, StoreError> {
        Ok(StoredKey {
            alg: r.alg.parse().map_err(|e| corrupt("alg", e))?,
            kid: r.kid,
            private_key: r.private_key,
            created_at: r.created_at,
            promoted_at: r.promoted_at,
            retires_at: r.retires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    org_id: String,
    username: Option<String>,
    password_hash: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
    role: Option<String>,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            org_id: r.org_id,
            username: r.username,
            password_hash: r.password_hash,
            external_id: r.external_id,
            email: r.email,
            // Written only from `Role::as_str`; anything else reads as no role.
            role: r.role.and_then(|r| r.parse().ok()),
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    code_hash: Vec<u8>,
    family_id: String,
    client_id: String,
    user_id: String,
    api_id: String,
    scope: String,
    redirect_uri: String,
    redirect_uri_given: bool,
    code_challenge: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<CodeRow> for AuthCode {
    type Error = StoreError;
    fn try_from(r: CodeRow) -> Result<AuthCode, StoreError> {
        Ok(AuthCode {
            scope: scopes(&r.scope)?,
            code_hash: r.code_hash,
            family_id: r.family_id,
            client_id: r.client_id,
            user_id: r.user_id,
            api_id: r.api_id,
            redirect_uri: r.redirect_uri,
            redirect_uri_given: r.redirect_uri_given,
            code_challenge: r.code_challenge,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    id: String,
    client_id: String,
    user_id: String,
    org_id: String,
    api_id: String,
    scope: String,
    created_at: i64,
    revoked_at: Option<i64>,
    token_generation: i64,
    token_hash: Option<Vec<u8>>,
    token_issued_at: Option<i64>,
    token_expires_at: Option<i64>,
    dpop_jkt: Option<String>,
}

/// A family's current refresh token from its columns: none before its first generation token.
fn family_token(
    generation: i64,
    hash: Option<Vec<u8>>,
    issued_at: Option<i64>,
    expires_at: Option<i64>,
) -> Option<FamilyToken> {
    match (generation, hash, issued_at, expires_at) {
        (1.., Some(token_hash), Some(issued_at), Some(expires_at)) => Some(FamilyToken {
            generation,
            token_hash,
            issued_at,
            expires_at,
        }),
        _ => None,
    }
}

impl TryFrom<FamilyRow> for Family {
    type Error = StoreError;
    fn try_from(r: FamilyRow) -> Result<Family, StoreError> {
        Ok(Family {
            scope: scopes(&r.scope)?,
            id: r.id,
            client_id: r.client_id,
            user_id: r.user_id,
            org_id: r.org_id,
            api_id: r.api_id,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            token: family_token(
                r.token_generation,
                r.token_hash,
                r.token_issued_at,
                r.token_expires_at,
            ),
            dpop_jkt: r.dpop_jkt,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshFamilyRow {
    token_hash: Vec<u8>,
    family_id: String,
    scope: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    successor_sealed: Option<Vec<u8>>,
    client_id: String,
    user_id: String,
    org_id: String,
    api_id: String,
    family_scope: String,
    family_created_at: i64,
    revoked_at: Option<i64>,
    token_generation: i64,
    family_token_hash: Option<Vec<u8>>,
    token_issued_at: Option<i64>,
    token_expires_at: Option<i64>,
    dpop_jkt: Option<String>,
}

impl TryFrom<RefreshFamilyRow> for (RefreshToken, Family) {
    type Error = StoreError;
    fn try_from(r: RefreshFamilyRow) -> Result<(RefreshToken, Family), StoreError> {
        let family = Family {
            id: r.family_id.clone(),
            client_id: r.client_id,
            user_id: r.user_id,
            org_id: r.org_id,
            api_id: r.api_id,
            scope: scopes(&r.family_scope)?,
            created_at: r.family_created_at,
            revoked_at: r.revoked_at,
            token: family_token(
                r.token_generation,
                r.family_token_hash,
                r.token_issued_at,
                r.token_expires_at,
            ),
            dpop_jkt: r.dpop_jkt,
        };
        let token = RefreshToken {
            token_hash: r.token_hash,
            family_id: r.family_id,
            scope: scopes(&r.scope)?,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            successor_sealed: r.successor_sealed,
        };
        Ok((token, family))
    }
}

/// `(api_id, scopes)` of a user's allowed scopes.
pub(crate) fn user_scopes(
    rows: Vec<(String, String)>,
) -> Result<Vec<(String, ScopeSet)>, StoreError> {
    rows.into_iter()
        .map(|(api_id, s)| Ok((api_id, scopes(&s)?)))
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: String,
    at: i64,
    kind: String,
    actor: String,
    org_id: Option<String>,
    client_id: Option<String>,
    user_id: Option<String>,
    target: Option<String>,
    address: Option<String>,
    detail: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            detail: serde_json::from_str(&r.detail).map_err(|e| corrupt("audit detail", e))?,
            id: r.id,
            at: r.at,
            kind: r.kind,
            actor: r.actor,
            org_id: r.org_id,
            client_id: r.client_id,
            user_id: r.user_id,
            target: r.target,
            address: r.address,
        })
    }
}

/// The stored form of an audit event's detail: JSON text.
pub(crate) fn audit_detail(e: &AuditEvent) -> String {
    e.detail.to_string()
}

/// The audit filter's type as the listing binds it: `(exact, LIKE prefix pattern)`. `*` and
/// no filter bind neither; `security.*` binds the pattern `security.%`, with `%`, `_` and
/// `\` of the prefix escaped so that they match themselves.
pub(crate) fn audit_kind(kind: Option<&str>) -> (Option<String>, Option<String>) {
    match kind {
        None | Some("*") => (None, None),
        Some(k) => match k.strip_suffix('*') {
            Some(prefix) => {
                let mut pattern = String::with_capacity(prefix.len() + 1);
                for c in prefix.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
                pattern.push('%');
                (None, Some(pattern))
            }
            None => (Some(k.to_owned()), None),
        },
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WebhookRow {
    id: String,
    url: String,
    events: String,
    secret_sealed: Vec<u8>,
    disabled: bool,
    created_at: i64,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Webhook {
        Webhook {
            events: r
                .events
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            id: r.id,
            url: r.url,
            secret_sealed: r.secret_sealed,
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

/// The stored form of a webhook's event types.
pub(crate) fn webhook_events(w: &Webhook) -> String {
    w.events.join(" ")
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: String,
    webhook_id: String,
    event_id: String,
    payload: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            state: DeliveryState::parse(&r.state)
                .ok_or_else(|| corrupt("delivery state", &r.state))?,
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            payload: r.payload,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        })
    }
}

/// Deliveries in id order (a claim's `RETURNING` has no order of its own).
pub(crate) fn deliveries(rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>, StoreError> {
    let mut out = rows
        .into_iter()
        .map(Delivery::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[derive(sqlx::FromRow)]
pub(crate) struct UsageRow {
    client_id: String,
    hour: i64,
    count: i64,
}

impl From<UsageRow> for UsageCount {
    fn from(r: UsageRow) -> UsageCount {
        UsageCount {
            client_id: r.client_id,
            hour: r.hour,
            count: r.count,
        }
    }
}

/// An entitlement row: `(org_id, api_id, scopes)`.
pub(crate) fn entitlement(r: (String, String, String)) -> StoreResult<Entitlement> {
    Ok(Entitlement {
        org_id: r.0,
        api_id: r.1,
        scopes: scopes(&r.2)?,
    })
}

/// A consent row: `(user_id, client_id, api_id, scope, granted_at)`.
pub(crate) fn consent(r: (String, String, String, String, i64)) -> StoreResult<Consent> {
    Ok(Consent {
        user_id: r.0,
        client_id: r.1,
        api_id: r.2,
        scope: scopes(&r.3)?,
        granted_at: r.4,
    })
}
