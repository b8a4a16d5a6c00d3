//! The storage the protocol needs, as one trait per role (`Orgs`, `Clients`, `RefreshTokens`,
//! ...) and their sum `Store`: the SQLite and PostgreSQL backends in `calyx-store` implement
//! every role, and the server only ever sees `dyn Store` (a trait object offers the methods of
//! its supertraits without importing them).

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditFilter};
use crate::model::{
    Api, Attempt, AuthCode, Client, ClientGrant, Consent, Delivery, Entitlement, Family,
    FamilyFilter, Org, Page, PurgeReport, PushedRequest, QuotaHit, QuotaLimit, RefreshToken,
    RotateOutcome, Rotation, StoredKey, UsageCount, User, Webhook,
};
use crate::ScopeSet;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken (the text names what already exists).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced record does not exist (the text names it).
    #[error("not found: {0}")]
    NotFound(String),
    /// The database cannot be reached right now; the request may succeed later.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else.
    #[error("database error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Liveness, the change counter, and deployment-wide settings.
#[async_trait]
pub trait Meta: Send + Sync {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// A counter that every write to clients, grants, APIs or keys increases (database
    /// triggers do it, so writes from the CLI or another node count too). Servers poll it to
    /// know when to drop their caches.
    async fn change_seq(&self) -> StoreResult<i64>;

    /// Returns the value stored under `key`, storing `value` first if there is none.
    async fn meta_get_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;

    /// The value stored under `key`, if any.
    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>>;

    /// Stores `value` under `key` (replacing any), which every node sees as a change.
    async fn meta_set(&self, key: &str, value: &str) -> StoreResult<()>;

    /// Takes the lease `name` until `until` if nobody holds it at `now` (or `holder` already
    /// does): of any number of nodes asking at once, exactly one gets true. Used to run the
    /// purge on one node at a time.
    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64)
        -> StoreResult<bool>;

    /// The connection pool now, for metrics: open connections, idle ones, and the most it
    /// opens (on SQLite, readers and the writer together).
    fn pool_status(&self) -> PoolStatus;

    /// From now on, calls `observer` after each group commit of refresh rotations with the
    /// batch's size and how long it took, in seconds (the first observer set stays).
    fn observe_rotations(&self, observer: RotationObserver);
}

/// A connection pool's state (see [`Meta::pool_status`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections, busy or idle.
    pub size: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// Called with each rotation batch's size and duration in seconds.
pub type RotationObserver = std::sync::Arc<dyn Fn(usize, f64) + Send + Sync>;

/// Organizations.
#[async_trait]
pub trait Orgs: Send + Sync {
    /// Creates an organization.
    async fn insert_org(&self, org: &Org) -> StoreResult<()>;

    /// Looks an organization up by id.
    async fn org(&self, id: &str) -> StoreResult<Option<Org>>;

    /// Looks an organization up by name.
    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>>;

    /// Organizations ordered by id.
    async fn list_orgs(&self, page: Page<'_>) -> StoreResult<Vec<Org>>;

    /// Renames an organization (`Conflict` when the name is taken). False when unknown.
    async fn update_org(&self, org: &Org) -> StoreResult<bool>;

    /// Deletes an organization that has no clients and no users (`Conflict` when it still
    /// has some). False when unknown.
    async fn delete_org(&self, id: &str) -> StoreResult<bool>;
}

/// APIs (resource servers), by id and by audience.
#[async_trait]
pub trait Apis: Send + Sync {
    /// Creates an API; its audience must be new.
    async fn insert_api(&self, api: &Api) -> StoreResult<()>;

    /// Looks an API up by audience.
    async fn api_by_audience(&self, audience: &str) -> StoreResult<Option<Api>>;

    /// Looks an API up by id.
    async fn api(&self, id: &str) -> StoreResult<Option<Api>>;

    /// Every API.
    async fn apis(&self) -> StoreResult<Vec<Api>>;

    /// APIs ordered by id.
    async fn list_apis(&self, page: Page<'_>) -> StoreResult<Vec<Api>>;

    /// Replaces an API's name, scopes, descriptions, algorithm and lifetimes (the audience
    /// never changes: tokens carry it). False when unknown.
    async fn update_api(&self, api: &Api) -> StoreResult<bool>;

    /// Deletes an API in one transaction: its client grants and user scopes go with it and
    /// every family for it is revoked at `now`. False when unknown.
    async fn delete_api(&self, id: &str, now: i64) -> StoreResult<bool>;

    /// The grants on an API, ordered by client id.
    async fn grants_for_api(&self, api_id: &str) -> StoreResult<Vec<ClientGrant>>;
}

/// Clients, their secrets, and their grants on APIs.
#[async_trait]
pub trait Clients: Send + Sync {
    /// Registers a client.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;

    /// Looks a client up by `client_id`.
    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;

    /// Replaces the secret hash. The old hash stays valid until `previous_expires_at` when
    /// that is given, and stops at once when it is `None`. False when the client is unknown.
    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: Option<i64>,
    ) -> StoreResult<bool>;

    /// Creates or replaces the grant of (client, API). When `grant.is_default` is set, any
    /// other default grant of the client stops being the default.
    async fn upsert_grant(&self, grant: &ClientGrant) -> StoreResult<()>;

    /// Creates the grant of (client, API); `Conflict` when one exists. When
    /// `grant.is_default` is set, any other default grant of the client stops being the
    /// default, in the same transaction.
    async fn insert_grant(&self, grant: &ClientGrant) -> StoreResult<()>;

    /// Replaces the scopes and default flag of an existing grant (as `insert_grant` for the
    /// default). False when there is no such grant.
    async fn update_grant(&self, grant: &ClientGrant) -> StoreResult<bool>;

    /// Deletes the grant of (client, API). False when there is none.
    async fn delete_grant(&self, client_id: &str, api_id: &str) -> StoreResult<bool>;

    /// The client's grants.
    async fn grants_for_client(&self, client_id: &str) -> StoreResult<Vec<ClientGrant>>;

    /// Clients ordered by id, of one organization when `org_id` is given.
    async fn list_clients(&self, org_id: Option<&str>, page: Page<'_>) -> StoreResult<Vec<Client>>;

    /// Replaces a client's registration (name, description, URIs, grant types, disabled);
    /// never its secrets, type, organization or creation time. False when unknown.
    async fn update_client(&self, client: &Client) -> StoreResult<bool>;

    /// Deletes a client in one transaction: its grants go with it and every family of the
    /// client is revoked at `now`. False when unknown.
    async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool>;
}

/// Token signing keys and their next → signing → retired life.
#[async_trait]
pub trait SigningKeys: Send + Sync {
    /// Stores a new signing key.
    async fn insert_key(&self, key: &StoredKey) -> StoreResult<()>;

    /// Keys not retired at `now`, oldest first.
    async fn live_keys(&self, now: i64) -> StoreResult<Vec<StoredKey>>;

    /// Every key, retired ones included, oldest first.
    async fn all_keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// In one transaction: makes the next key `kid` sign from `now` on, and schedules every
    /// other signing key of its algorithm that has no retirement yet to retire at
    /// `retire_previous_at`. False (nothing written) when `kid` is not an unretired next key.
    async fn promote_key(&self, kid: &str, now: i64, retire_previous_at: i64) -> StoreResult<bool>;

    /// Retires `kid` at `now`: it stops signing and leaves the JWKS. False when there is no
    /// such live key.
    async fn retire_key(&self, kid: &str, now: i64) -> StoreResult<bool>;
}

/// Users and the scopes they may grant per API.
#[async_trait]
pub trait Users: Send + Sync {
    /// Creates a user with its allowed scopes per API (`(api_id, scopes)`).
    async fn insert_user(&self, user: &User, scopes: &[(String, ScopeSet)]) -> StoreResult<()>;

    /// Looks a user up by id.
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;

    /// The users with this login name, in every organization (a username is unique only
    /// within its organization), oldest first.
    async fn users_by_username(&self, username: &str) -> StoreResult<Vec<User>>;

    /// Replaces a user's password hash. False when the user is unknown.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool>;

    /// Users ordered by id, of one organization when `org_id` is given.
    async fn list_users(&self, org_id: Option<&str>, page: Page<'_>) -> StoreResult<Vec<User>>;

    /// Replaces a user's username, password hash, external id and email and, when `scopes`
    /// is given, every allowed scope (`(api_id, scopes)`), in one transaction. `Conflict`
    /// when the username or external id is taken in the organization. False when unknown.
    async fn update_user(
        &self,
        user: &User,
        scopes: Option<&[(String, ScopeSet)]>,
    ) -> StoreResult<bool>;

    /// Every allowed-scope entry of a user: `(api_id, scopes)`, ordered by API id.
    async fn all_user_scopes(&self, user_id: &str) -> StoreResult<Vec<(String, ScopeSet)>>;

    /// Deletes a user of `org_id` and, in the same transaction, revokes every grant family of
    /// the user. False when there is no such user in that organization.
    async fn delete_user(&self, org_id: &str, user_id: &str, now: i64) -> StoreResult<bool>;

    /// The scopes the user may grant for the API, if any were set.
    async fn user_scopes(&self, user_id: &str, api_id: &str) -> StoreResult<Option<ScopeSet>>;
}

/// Authorization codes (RFC 6749 §4.1.2), redeemed at most once.
#[async_trait]
pub trait Codes: Send + Sync {
    /// Stores a new authorization code.
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;

    /// Looks a code up by its hash.
    async fn code(&self, code_hash: &[u8]) -> StoreResult<Option<AuthCode>>;

    /// In one transaction: marks the code used if it is still unused and creates its family
    /// with its first refresh token (`family.token`). False (and nothing written) when the
    /// code was already used: exactly one caller can ever get true for a code.
    async fn redeem_code(&self, code_hash: &[u8], now: i64, family: &Family) -> StoreResult<bool>;
}

/// Refresh tokens and the grant families they belong to (RFC 6749 §6; rotation and reuse
/// detection as in RFC 9700 §4.14.2).
#[async_trait]
pub trait RefreshTokens: Send + Sync {
    /// A family by id, with its current refresh token.
    async fn family(&self, id: &str) -> StoreResult<Option<Family>>;

    /// Revokes a family (idempotent).
    async fn revoke_family(&self, id: &str, now: i64) -> StoreResult<()>;

    /// Families ordered by id, narrowed by client and user.
    async fn list_families(
        &self,
        filter: &FamilyFilter,
        page: Page<'_>,
    ) -> StoreResult<Vec<Family>>;

    /// Revokes every live family of a client at `now`; returns how many.
    async fn revoke_client_families(&self, client_id: &str, now: i64) -> StoreResult<u64>;

    /// A refresh token of the earlier format with its family, by the token's hash.
    async fn refresh_token(&self, token_hash: &[u8])
        -> StoreResult<Option<(RefreshToken, Family)>>;

    /// Replaces the family's current refresh token with `rotation.successor` if the presented
    /// token is it (same generation and hash, unexpired, family not revoked), atomically: of
    /// any number of concurrent calls with one token, on any number of nodes, exactly one
    /// sees `Rotated`, and the family's row is all that is written. A token of an older
    /// generation (its tag was checked by the caller) revokes the family (`Reused`), unless
    /// it is the one just before the current one, spent less than `leeway` seconds ago
    /// (`Retried`, with the current token sealed). A legacy token is spent in the legacy
    /// table, with the same outcomes, and its family moves to generation tokens.
    async fn rotate_refresh(&self, rotation: Rotation) -> StoreResult<RotateOutcome>;
}

/// Revoked access tokens, by `jti` (RFC 7009).
#[async_trait]
pub trait Revocations: Send + Sync {
    /// Records a revoked access token (by `jti`) until it would have expired anyway.
    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> StoreResult<()>;

    /// True when the access token with this `jti` was revoked.
    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool>;
}

/// What may be used once, on any node: the ids of DPoP proofs (RFC 9449 §11.1) and client
/// assertions (RFC 7523 §3), and pushed authorization requests (RFC 9126 §2.2).
#[async_trait]
pub trait OneTime: Send + Sync {
    /// Marks `key` used until `expires_at`. True the first time, false ever after (until the
    /// purge removes it, when whatever it stood for has expired): one winner across nodes.
    /// Durable when it returns.
    async fn use_once(&self, key: &[u8], expires_at: i64) -> StoreResult<bool>;

    /// Stores a pushed authorization request.
    async fn push_request(&self, pushed: &PushedRequest) -> StoreResult<()>;

    /// Takes the pushed request with this hash: returns and deletes it in one statement, so it
    /// is taken once. An expired one is deleted and not returned.
    async fn take_pushed_request(
        &self,
        uri_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<PushedRequest>>;
}

/// Token quotas, counted in the database so that every node shares them.
#[async_trait]
pub trait Quotas: Send + Sync {
    /// Counts one token against every limit, or against none: `Err` names the first exhausted
    /// limit and the seconds until its window ends. Durable when it returns; concurrent
    /// counts on every node behave as if run one after another.
    async fn count_token(
        &self,
        limits: &[QuotaLimit],
        now: i64,
    ) -> StoreResult<Result<(), QuotaHit>>;

    /// Tokens counted in the current window of each limit, in order (for the console).
    async fn quota_used(&self, limits: &[QuotaLimit], now: i64) -> StoreResult<Vec<i64>>;
}

/// The audit log and the webhook outbox it feeds.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends an event and, in the same transaction, queues its deliveries (the outbox):
    /// an event is never recorded without its deliveries, nor delivered without being
    /// recorded.
    async fn append_audit(&self, event: &AuditEvent, deliveries: &[Delivery]) -> StoreResult<()>;

    /// Events ordered by id (oldest first), narrowed by `filter`.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: Page<'_>,
    ) -> StoreResult<Vec<AuditEvent>>;

    /// One event.
    async fn audit_event(&self, id: &str) -> StoreResult<Option<AuditEvent>>;
}

/// Webhook subscriptions and their deliveries.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Creates a webhook.
    async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;

    /// One webhook.
    async fn webhook(&self, id: &str) -> StoreResult<Option<Webhook>>;

    /// Webhooks ordered by id.
    async fn list_webhooks(&self, page: Page<'_>) -> StoreResult<Vec<Webhook>>;

    /// Every webhook that is not disabled.
    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// Replaces a webhook's URL, events and disabled flag. False when unknown.
    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<bool>;

    /// Deletes a webhook and its deliveries. False when unknown.
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool>;

    /// Claims up to `limit` pending deliveries due at `now` that no worker holds, holding
    /// them until `lease_until`: two nodes never claim one delivery at the same time, and a
    /// delivery claimed by a node that died is claimed again once its lease lapses.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;

    /// Records the outcome of an attempt and releases the claim.
    async fn finish_delivery(&self, attempt: &Attempt) -> StoreResult<()>;

    /// A webhook's deliveries ordered by id.
    async fn list_deliveries(&self, webhook_id: &str, page: Page<'_>)
        -> StoreResult<Vec<Delivery>>;
}

/// Usage counters and the removal of what is no longer live.
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Adds the counts to the per-client, per-hour totals.
    async fn add_usage(&self, counts: &[UsageCount]) -> StoreResult<()>;

    /// A client's hourly counts from `since` on, oldest first.
    async fn usage(&self, client_id: &str, since: i64) -> StoreResult<Vec<UsageCount>>;

    /// Removes (or with `dry_run` only counts) what is dead at `now`: expired codes, revoked
    /// families and families whose refresh token expired (when `now` is past the family's
    /// access tokens too, `access_grace` seconds), expired legacy refresh tokens and
    /// revoked-token ids, keys retired before `now`, usage older than `audit_before`,
    /// audit events and finished deliveries older than `audit_before`.
    ///
    /// It deletes in batches of at most `batch` rows, each its own short transaction, so
    /// that rotations and sign-ins wait for one batch at most, never for the whole purge.
    async fn purge(
        &self,
        now: i64,
        access_grace: i64,
        audit_before: i64,
        dry_run: bool,
        batch: i64,
    ) -> StoreResult<PurgeReport>;
}

/// What the pages for people keep: organizations' entitlements and users' remembered consents.
#[async_trait]
pub trait People: Send + Sync {
    /// Sets (inserts or replaces) an organization's entitlement on an API.
    async fn set_entitlement(&self, entitlement: &Entitlement) -> StoreResult<()>;

    /// Removes an organization's entitlement on an API; false if it had none.
    async fn delete_entitlement(&self, org_id: &str, api_id: &str) -> StoreResult<bool>;

    /// An organization's entitlements, by API id.
    async fn entitlements(&self, org_id: &str) -> StoreResult<Vec<Entitlement>>;

    /// Remembers (inserts or replaces) a user's consent.
    async fn remember_consent(&self, consent: &Consent) -> StoreResult<()>;

    /// The user's remembered consent for an application on an API.
    async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
        api_id: &str,
    ) -> StoreResult<Option<Consent>>;

    /// Every consent the user has given, oldest application first.
    async fn consents(&self, user_id: &str) -> StoreResult<Vec<Consent>>;

    /// Forgets every consent the user gave the application and revokes the grant families
    /// of that user and application, in one transaction; false if there was no consent.
    async fn forget_consent(&self, user_id: &str, client_id: &str, now: i64) -> StoreResult<bool>;
}

/// Everything Calyx persists, as the sum of its roles. Each method is one atomic unit: it
/// commits before returning. Implemented for every type that implements all the roles; the
/// server holds an `Arc<dyn Store>`.
pub trait Store:
    Meta
    + Orgs
    + Apis
    + Clients
    + SigningKeys
    + Users
    + Codes
    + RefreshTokens
    + Revocations
    + OneTime
    + Quotas
    + Audit
    + Webhooks
    + Housekeeping
    + People
    + 'static
{
}

impl<T> Store for T where
    T: Meta
        + Orgs
        + Apis
        + Clients
        + SigningKeys
        + Users
        + Codes
        + RefreshTokens
        + Revocations
        + OneTime
        + Quotas
        + Audit
        + Webhooks
        + Housekeeping
        + People
        + 'static
{
}
