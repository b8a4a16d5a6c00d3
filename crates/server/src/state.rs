//! Shared state and the read-through caches in front of the store.
//!
//! The token endpoint's hot path reads clients, their grants and APIs from in-memory caches
//! (moka) and the signing keys from an in-memory [`KeySet`]; it touches the database only on a
//! cache miss. The pages read the branding through the same kind of cache. The `reload` task
//! drops the caches whenever the database's change counter moves,
//! so writes made by the CLI or by another node take effect within one reload interval
//! (100 ms by default).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use calyx_core::clock::Clock;
use calyx_core::grant::{ApiDirectory, Secrets};
use calyx_core::model::{Api, Client, ClientGrant, Quota as TokenQuota, QuotaLimit};
use calyx_core::store::{Store, StoreError, StoreResult};
use calyx_token::seal::Sealer;
use calyx_token::secret::SecretHasher;
use calyx_token::KeySet;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use moka::sync::Cache;

use crate::config::Config;
use crate::manage::{Branding, ManageError, Manager};
use crate::metrics::Metrics;
use crate::throttle::Throttle;
use crate::usage::Usage;

/// A client with its grants, as the token endpoint needs it.
#[derive(Debug)]
pub struct ClientEntry {
    /// The client.
    pub client: Client,
    /// Its grants.
    pub grants: Vec<ClientGrant>,
    /// Tokens issued to it since the last usage flush (shared with [`Usage`]).
    pub issued: Arc<AtomicU64>,
    /// Its quotas and its organization's, in the one order every node counts them in
    /// (client before organization, hour before day); empty when neither has one.
    pub quota_limits: Vec<QuotaLimit>,
}

/// The limits of a client's and its organization's quotas (see [`ClientEntry::quota_limits`]).
fn quota_limits(client: &Client, org_quota: TokenQuota) -> Vec<QuotaLimit> {
    let client_subject = format!("client:{}", client.id);
    let org_subject = format!("org:{}", client.org_id);
    [(&client_subject, client.quota), (&org_subject, org_quota)]
        .into_iter()
        .flat_map(|(subject, q)| {
            [(3600, q.per_hour), (86_400, q.per_day)]
                .into_iter()
                .filter_map(move |(window_secs, limit)| {
                    limit.map(|limit| QuotaLimit {
                        subject: subject.clone(),
                        window_secs,
                        limit,
                    })
                })
        })
        .collect()
}

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// The issuer URL, exactly as it appears in `iss`.
    pub issuer: String,
    /// Keyed hashing of secrets.
    pub hasher: SecretHasher,
    /// Sealing of private keys at rest.
    pub sealer: Arc<Sealer>,
    keys: RwLock<Arc<KeySet>>,
    /// Serialises on-demand loads of a missing signing key.
    pub key_load: tokio::sync::Mutex<()>,
    clients: Cache<String, Arc<ClientEntry>>,
    apis: Cache<String, Arc<Api>>,
    apis_by_id: Cache<String, Arc<Api>>,
    /// The pages' branding (one entry), which every page view, its stylesheet and its icon
    /// read.
    branding: Cache<String, Arc<Branding>>,
    /// Bumped by every [`AppState::invalidate_caches`]; a read that began before a bump does
    /// not leave what it read in the cache.
    cache_epoch: AtomicU64,
    /// Token issuance per client, if limited.
    pub issue_limiter: Option<KeyedLimiter>,
    /// Failed client authentications per client id: 429 for failures past 20 a minute.
    pub client_auth: Throttle,
    /// Failed sign-ins per username, from anywhere: soft (wrong passwords get 429).
    pub login_user: Throttle,
    /// Failed sign-ins per (client address, username): hard (the address is refused).
    pub login_pair: Throttle,
    /// Failed sign-ins per client address, at any username: hard.
    pub login_ip: Throttle,
    /// Failed management API authentications per address: past the quota they are still
    /// refused but no longer each recorded in the audit log.
    pub admin_failures: Throttle,
    /// Seals web state (pending requests, sessions) and leeway successors.
    pub web_sealer: Sealer,
    /// Keys refresh-token tags (`calyx_core::grant::refresh_token`), derived from the pepper.
    pub refresh_tags: SecretHasher,
    /// The CAs of `--tls-client-ca` (mutual TLS), when set.
    pub(crate) client_cas: Option<crate::mtls::TrustedCas>,
    /// The server's DPoP nonces, derived from the pepper.
    pub(crate) dpop_nonces: crate::dpop::Nonces,
    /// Add `Secure` to cookies (the issuer is https).
    pub secure_cookies: bool,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The validated settings (body limits, reuse leeway, optional routes).
    pub config: Config,
    /// The management layer, acting as the server (handlers make a copy per actor).
    pub manager: Manager,
    /// Tokens issued per client, waiting for the next usage flush.
    pub usage: Usage,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// How long a client id, username or address stays blocked.
pub(crate) const BLOCK_SECS: i64 = 60;
/// Failed authentications allowed per client id per minute before it is blocked.
const AUTH_FAILURES_PER_MINUTE: u32 = 20;
/// Failed sign-ins allowed per username per minute before wrong passwords get 429 (the right
/// one still signs in).
const LOGIN_FAILURES_PER_USER_PER_MINUTE: u32 = 5;
/// Failed sign-ins allowed per (address, username) per minute before that address is refused
/// for that username.
const LOGIN_FAILURES_PER_PAIR_PER_MINUTE: u32 = 10;
/// Failed sign-ins allowed per client address per minute.
const LOGIN_FAILURES_PER_IP_PER_MINUTE: u32 = 20;

/// Failed management API authentications recorded per address per minute.
const ADMIN_FAILURES_RECORDED_PER_MINUTE: u32 = 10;

fn per_minute(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("a non-zero quota")
}

impl AppState {
    /// Builds the state on the manager's store, hasher, sealer and clock, serving as
    /// `issuer` with `keys`.
    pub fn new(
        p: Manager,
        issuer: String,
        keys: KeySet,
        config: Config,
        client_cas: Option<crate::mtls::TrustedCas>,
    ) -> AppState {
        let manager = p.acting_as(crate::manage::Actor::calyx(None));
        let cache_ttl = Duration::from_secs(60);
        let web_sealer = web_sealer(&p.hasher);
        let refresh_tags = refresh_tags(&p.hasher);
        let dpop_nonces = crate::dpop::Nonces::new(&p.hasher);
        let secure_cookies = issuer.starts_with("https://");
        AppState(Arc::new(Inner {
            store: p.store,
            clock: p.clock,
            issuer,
            hasher: p.hasher,
            sealer: p.sealer,
            keys: RwLock::new(Arc::new(keys)),
            key_load: tokio::sync::Mutex::new(()),
            clients: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(cache_ttl)
                .build(),
            apis: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(cache_ttl)
                .build(),
            apis_by_id: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(cache_ttl)
                .build(),
            branding: Cache::builder()
                .max_capacity(1)
                .time_to_live(cache_ttl)
                .build(),
            cache_epoch: AtomicU64::new(0),
            issue_limiter: NonZeroU32::new(config.client_rate_limit)
                .map(|n| RateLimiter::keyed(Quota::per_second(n))),
            client_auth: Throttle::new(per_minute(AUTH_FAILURES_PER_MINUTE), BLOCK_SECS),
            login_user: Throttle::new(per_minute(LOGIN_FAILURES_PER_USER_PER_MINUTE), BLOCK_SECS),
            login_pair: Throttle::new(per_minute(LOGIN_FAILURES_PER_PAIR_PER_MINUTE), BLOCK_SECS),
            login_ip: Throttle::new(per_minute(LOGIN_FAILURES_PER_IP_PER_MINUTE), BLOCK_SECS),
            admin_failures: Throttle::new(
                per_minute(ADMIN_FAILURES_RECORDED_PER_MINUTE),
                BLOCK_SECS,
            ),
            web_sealer,
            refresh_tags,
            dpop_nonces,
            client_cas,
            secure_cookies,
            metrics: Metrics::default(),
            config,
            manager,
            usage: Usage::default(),
        }))
    }

    /// The key set in force.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the key set.
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// The client and its grants if cached.
    pub fn cached_client(&self, client_id: &str) -> Option<Arc<ClientEntry>> {
        self.clients.get(client_id)
    }

    /// The client and its grants, from the cache or the store.
    pub async fn client_entry(&self, client_id: &str) -> StoreResult<Option<Arc<ClientEntry>>> {
        match self.cached_client(client_id) {
            Some(hit) => Ok(Some(hit)),
            None => self.load_client_entry(client_id).await,
        }
    }

    /// Reads the client from the store and refreshes the cache (used on a miss, and to
    /// re-check a failed secret in case it was rotated since it was cached).
    pub async fn load_client_entry(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Arc<ClientEntry>>> {
        let epoch = self.cache_epoch.load(Ordering::SeqCst);
        let client = self.store.client(client_id).await?;
        // The grants are read for an unknown client too, so that an unknown client id and a
        // wrong secret cost the same work and cannot be told apart by timing.
        let grants = self.store.grants_for_client(client_id).await?;
        let Some(client) = client else {
            self.clients.invalidate(client_id);
            return Ok(None);
        };
        let issued = self.usage.counter(client_id);
        let org_quota = match self.store.org(&client.org_id).await? {
            Some(org) => org.quota,
            None => TokenQuota::default(),
        };
        let entry = Arc::new(ClientEntry {
            quota_limits: quota_limits(&client, org_quota),
            client,
            grants,
            issued,
        });
        self.cache_if_current(&self.clients, client_id, entry.clone(), epoch);
        Ok(Some(entry))
    }

    /// Caches `value` unless the caches were invalidated since `epoch` was read: a row read
    /// just before a change (a rotated secret, say) must not outlive the change in the cache.
    fn cache_if_current<V: Clone + Send + Sync + 'static>(
        &self,
        cache: &Cache<String, V>,
        key: &str,
        value: V,
        epoch: u64,
    ) {
        cache.insert(key.to_owned(), value);
        // `invalidate_caches` bumps the epoch before dropping the entries: either the bump is
        // seen here, or the drop comes after this insert.
        if self.cache_epoch.load(Ordering::SeqCst) != epoch {
            cache.invalidate(key);
        }
    }

    /// The API with this audience, from the cache or the store.
    pub async fn api(&self, audience: &str) -> StoreResult<Option<Arc<Api>>> {
        self.read_through(&self.apis, audience, || {
            self.store.api_by_audience(audience)
        })
        .await
    }

    /// The pages' branding, from the cache or the store.
    pub async fn branding(&self) -> StoreResult<Arc<Branding>> {
        let read = self.read_through(&self.branding, "branding", || async {
            // Reading the branding fails only in the store (a malformed value reads as the
            // default).
            match self.manager.branding().await {
                Ok(b) => Ok(Some(b)),
                Err(ManageError::Store(e)) => Err(e),
                Err(other) => Err(StoreError::Other(other.into())),
            }
        });
        Ok(read.await?.unwrap_or_default())
    }

    /// The API with this id, from the cache or the store.
    pub async fn api_by_id(&self, id: &str) -> StoreResult<Option<Arc<Api>>> {
        self.read_through(&self.apis_by_id, id, || self.store.api(id))
            .await
    }

    /// `cache[key]`, or what `load` reads, cached unless the caches were dropped meanwhile.
    async fn read_through<V, F, Fut>(
        &self,
        cache: &Cache<String, Arc<V>>,
        key: &str,
        load: F,
    ) -> StoreResult<Option<Arc<V>>>
    where
        V: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = StoreResult<Option<V>>>,
    {
        if let Some(hit) = cache.get(key) {
            return Ok(Some(hit));
        }
        let epoch = self.cache_epoch.load(Ordering::SeqCst);
        let Some(value) = load().await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        self.cache_if_current(cache, key, value.clone(), epoch);
        Ok(Some(value))
    }

    /// Applies a change made through this node before it answers: drops the caches and
    /// reloads the key set, so the very next request here sees the change (other nodes
    /// follow through `reload`).
    pub async fn apply_change(&self) {
        self.invalidate_caches();
        match crate::keys::load_keyset(&*self.store, &self.sealer, self.clock.now()).await {
            Ok(set) => self.set_keys(set),
            Err(e) => tracing::error!(error = ?e, "reloading signing keys after a change"),
        }
    }

    /// Records a security event in the audit log off the request's path: the answer does
    /// not wait for it, and a failure to record is logged rather than answered.
    pub fn security_event(
        &self,
        kind: &'static str,
        about: crate::manage::About,
        detail: serde_json::Value,
        address: Option<String>,
    ) {
        let manager = self.manager.acting_as(crate::manage::Actor::calyx(address));
        tokio::spawn(async move {
            if let Err(e) = manager.record(kind, about, detail).await {
                tracing::error!(error = ?e, kind, "recording a security event");
            }
        });
    }

    /// Drops every cached client and API.
    pub fn invalidate_caches(&self) {
        self.cache_epoch.fetch_add(1, Ordering::SeqCst);
        self.clients.invalidate_all();
        self.apis.invalidate_all();
        self.apis_by_id.invalidate_all();
        self.branding.invalidate_all();
    }
}

#[async_trait::async_trait]
impl ApiDirectory for AppState {
    async fn api_by_id(&self, id: &str) -> StoreResult<Option<Arc<Api>>> {
        AppState::api_by_id(self, id).await
    }
}

/// The sealer of web state and leeway successors, derived from the pepper.
pub fn web_sealer(hasher: &SecretHasher) -> Sealer {
    Sealer::from_key(&hasher.derive_key(b"calyx/web-state/v1"))
}

/// The key of refresh-token tags, derived from the pepper.
pub fn refresh_tags(hasher: &SecretHasher) -> SecretHasher {
    SecretHasher::new(&hasher.derive_key(b"calyx/refresh-tag/v1"))
}

/// The pepper-keyed hash, the random generator, the refresh-token tags and the web sealer, as the grant flows take
/// them.
impl Secrets for AppState {
    fn hash(&self, secret: &str) -> Vec<u8> {
        self.hasher.hash(secret)
    }

    fn generate(&self) -> String {
        calyx_token::secret::generate_secret()
    }

    fn tag(&self, message: &str) -> Vec<u8> {
        self.refresh_tags.hash(message)
    }

    fn id(&self, prefix: &str) -> String {
        calyx_token::secret::random_id(prefix)
    }

    fn seal(&self, plain: &[u8]) -> Vec<u8> {
        self.web_sealer.seal(plain)
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.web_sealer.open(sealed).ok()
    }
}
