//! Token validation against a cached JWKS, and the request-level check of both schemes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap, Method, Uri};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use crate::dpop::{self, DpopConfig};
use crate::mtls::{self, CertificateThumbprint};
use crate::{ClientCertificate, GuardError, Refusal};

/// What to accept.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (this API's audience).
    pub audience: String,
    /// Where the keys are; `{issuer}/.well-known/jwks.json` when absent.
    pub jwks_uri: Option<String>,
    /// Accepted algorithms. `none` can never be among them.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two JWKS fetches caused by unknown `kid`s.
    pub min_refetch_interval: Duration,
    /// How many verified tokens to remember (0: verify every time).
    pub cache_capacity: u64,
    /// How DPoP proofs are checked (RFC 9449): the public origin `htu` is built from, the
    /// proofs' time window, the replay record.
    pub dpop: DpopConfig,
}

impl GuardConfig {
    /// Defaults: ES256, EdDSA and RS256; 30 s leeway; at most one refetch per 10 s.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        GuardConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_uri: None,
            algorithms: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
            leeway: Duration::from_secs(30),
            min_refetch_interval: Duration::from_secs(10),
            cache_capacity: 100_000,
            dpop: DpopConfig::default(),
        }
    }

    /// The scheme, host and any path prefix clients address this API by
    /// (`https://api.example.com`): a DPoP proof's `htu` must be this followed by the
    /// request's path. See [`DpopConfig::public_origin`] for what happens without it.
    ///
    /// [`Guard::new`] panics when it is not an absolute `http(s)` URL without credentials,
    /// query or fragment.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.dpop.public_origin = Some(origin.into());
        self
    }

    fn jwks_uri(&self) -> String {
        self.jwks_uri.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/jwks.json",
                self.issuer.trim_end_matches('/')
            )
        })
    }
}

/// RFC 7662 introspection for routes that must see revocations at once.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The introspection endpoint.
    pub endpoint: String,
    /// This API's client id at the issuer.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// How long an "active" answer is reused (zero: ask every time).
    pub cache_ttl: Duration,
}

/// A validated token.
#[derive(Debug, Clone)]
pub struct Verified {
    /// All claims.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The granted scopes.
    pub scopes: HashSet<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// What the token is bound to (its `cnf`, or the introspection answer's).
    binding: Binding,
}

impl Verified {
    /// The `sub` claim.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(|v| v.as_str())
    }

    /// The `client_id` claim.
    pub fn client_id(&self) -> Option<&str> {
        self.claims.get("client_id").and_then(|v| v.as_str())
    }

    /// True when the token holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// The RFC 7638 thumbprint of the key the token is bound to (`cnf.jkt`, RFC 9449 §6), from
    /// the token or the introspection answer. A request passes the guard with a bound token
    /// only under the `DPoP` scheme with a proof made with that key, so `Some` means the
    /// caller proved possession of the key, and `None` that it presented a bearer token.
    pub fn jkt(&self) -> Option<&str> {
        self.binding.jkt.as_deref()
    }

    /// The RFC 8705 §3.1 thumbprint of the client certificate the token is bound to
    /// (`cnf.x5t#S256`), from the token or the introspection answer. A request passes the
    /// guard with such a token only when it came with that certificate
    /// ([`ClientCertificate`]), so `Some` means the caller presented it on a mutual-TLS
    /// connection (as the resource server reported it to the guard).
    pub fn x5t_s256(&self) -> Option<&str> {
        self.binding
            .x5t_s256
            .as_ref()
            .map(CertificateThumbprint::as_str)
    }

    pub(crate) fn certificate_binding(&self) -> Option<&CertificateThumbprint> {
        self.binding.x5t_s256.as_ref()
    }

    /// The scheme a token like this one is accepted with.
    pub(crate) fn scheme(&self) -> crate::Scheme {
        if self.binding.jkt.is_some() {
            crate::Scheme::Dpop
        } else {
            crate::Scheme::Bearer
        }
    }
}

/// A key from the JWKS: the algorithm it declares, if any, and the parsed key.
type Key = (Option<Algorithm>, Arc<DecodingKey>);

/// Validates Bearer tokens. Cheap to clone; share one per API.
#[derive(Clone)]
pub struct Guard(Arc<Inner>);

struct Inner {
    cfg: GuardConfig,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Key>>,
    /// One prepared `Validation` per accepted algorithm (issuer, audience, leeway set once).
    validations: Vec<(Algorithm, Validation)>,
    fetch: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
    /// When the JWKS in hand goes stale (its `Cache-Control: max-age` ran out), Unix
    /// seconds; `u64::MAX` until the first fetch.
    stale_at: AtomicU64,
    /// A background refetch is under way.
    refreshing: AtomicBool,
    verified: Cache<[u8; 32], Arc<Verified>>,
    introspection: Option<Introspection>,
    /// Tokens introspection found active, with the binding its answer names.
    active: Cache<[u8; 32], Binding>,
    dpop: dpop::State,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("issuer", &self.0.cfg.issuer)
            .field("audience", &self.0.cfg.audience)
            .finish()
    }
}

impl Guard {
    /// A guard for tokens of `cfg.issuer` meant for `cfg.audience`.
    ///
    /// # Panics
    ///
    /// When `cfg.dpop.public_origin` is set but is not an absolute `http(s)` URL without
    /// credentials, query or fragment.
    pub fn new(cfg: GuardConfig) -> Guard {
        Self::build(cfg, None)
    }

    /// The same, and every token is also checked with the issuer's introspection endpoint.
    pub fn with_introspection(cfg: GuardConfig, introspection: Introspection) -> Guard {
        Self::build(cfg, Some(introspection))
    }

    fn build(cfg: GuardConfig, introspection: Option<Introspection>) -> Guard {
        let ttl = introspection
            .as_ref()
            .map(|i| i.cache_ttl)
            .unwrap_or_default()
            .max(Duration::from_millis(1));
        let validations = cfg
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.set_issuer(&[&cfg.issuer]);
                v.set_audience(&[&cfg.audience]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.validate_nbf = true;
                v.leeway = cfg.leeway.as_secs();
                (*alg, v)
            })
            .collect();
        Guard(Arc::new(Inner {
            dpop: dpop::State::new(&cfg.dpop),
            verified: Cache::builder()
                .max_capacity(cfg.cache_capacity)
                .expire_after(ExpireAtTokenExpiry)
                .build(),
            active: Cache::builder()
                .max_capacity(cfg.cache_capacity)
                .time_to_live(ttl)
                .build(),
            cfg,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
            keys: RwLock::default(),
            validations,
            fetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            stale_at: AtomicU64::new(u64::MAX),
            refreshing: AtomicBool::new(false),
            introspection,
        }))
    }

    /// A guard that starts with `jwks` already loaded (it still refetches from
    /// `cfg.jwks_uri` on an unknown `kid`, after the refetch interval).
    pub fn from_jwks(cfg: GuardConfig, jwks: &JwkSet) -> Guard {
        let guard = Self::build(cfg, None);
        guard.install(keys_of(jwks), DEFAULT_JWKS_MAX_AGE);
        if let Ok(mut last) = guard.0.fetch.try_lock() {
            *last = Some(Instant::now());
        }
        guard
    }

    /// What the guard holds for DPoP.
    pub(crate) fn dpop_state(&self) -> &dpop::State {
        &self.0.dpop
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.0.fetches.load(Ordering::Relaxed)
    }

    /// Checks the credentials of a request: `Authorization: Bearer <token>` with a token bound
    /// to no key, or `Authorization: DPoP <token>` with one `DPoP` proof made with the key the
    /// token is bound to ([`Guard::validate_dpop`], the `htu` built as [`DpopConfig`] says).
    /// A token bound to a client certificate (`cnf.x5t#S256`, RFC 8705 §3) also needs the
    /// [`ClientCertificate`] the resource server put in the request's extensions to be that
    /// certificate. The refusal names the scheme the request used, for its challenge. Scopes
    /// are the caller's to check
    /// ([`GuardLayer::require_scopes`](crate::GuardLayer::require_scopes)).
    pub async fn authorize(&self, parts: &Parts) -> Result<Arc<Verified>, Refusal> {
        self.authorize_request(&parts.method, &parts.uri, &parts.headers, &parts.extensions)
            .await
    }

    /// [`Guard::authorize`] on borrowed parts, so that the layer need not take its request
    /// apart. The `Bearer` path reads nothing but the `Authorization` header, and the
    /// extensions only for a certificate-bound token.
    pub(crate) async fn authorize_request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<Arc<Verified>, Refusal> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(Refusal::bearer(GuardError::Missing))?;
        let (scheme, token) = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, t)| (scheme, t.trim()))
            .filter(|(_, t)| !t.is_empty())
            .ok_or(Refusal::bearer(GuardError::InvalidToken(
                "the Authorization header must be: Bearer <token> or DPoP <token>",
            )))?;
        if scheme.eq_ignore_ascii_case("bearer") {
            let bearer = async {
                let verified = self.bearer(token).await?;
                mtls::confirm(&verified, || extensions.get::<ClientCertificate>())?;
                Ok(verified)
            };
            bearer.await.map_err(Refusal::bearer)
        } else if scheme.eq_ignore_ascii_case("dpop") {
            self.authorize_dpop(token, method.as_str(), uri, headers, extensions)
                .await
                .map_err(Refusal::dpop)
        } else {
            Err(Refusal::bearer(GuardError::InvalidToken(
                "the Authorization header must be: Bearer <token> or DPoP <token>",
            )))
        }
    }

    /// Validates a bearer token (the part after `Bearer `). A token bound to a key (`cnf.jkt`,
    /// in the token or in the introspection answer) is refused: it is only good with a proof
    /// of the key (RFC 9449 §7.2; [`Guard::validate_dpop`]). So is a token bound to a client
    /// certificate (`cnf.x5t#S256`): it is only good with that certificate (RFC 8705 §3;
    /// [`Guard::validate_with_certificate`]).
    ///
    /// The JWKS is kept for its `Cache-Control: max-age` and then refetched in the background;
    /// a key it no longer lists stops verifying from then on, cached tokens included.
    pub async fn validate(&self, token: &str) -> Result<Arc<Verified>, GuardError> {
        self.validate_with_certificate(token, None).await
    }

    /// The token of the `Bearer` scheme: verified, and bound to no DPoP key. Its certificate
    /// binding is the caller's to check.
    pub(crate) async fn bearer(&self, token: &str) -> Result<Arc<Verified>, GuardError> {
        let verified = self.verified(token).await?;
        if verified.binding.jkt.is_some() {
            return Err(GuardError::InvalidToken(
                "a DPoP-bound token must be sent with the DPoP scheme and a proof",
            ));
        }
        Ok(verified)
    }

    /// The token checks both schemes share: signature, claims, the cache, introspection; the
    /// bindings read but not enforced.
    pub(crate) async fn verified(&self, token: &str) -> Result<Arc<Verified>, GuardError> {
        // One clock read serves the staleness check and the cached token's expiry.
        let now = now();
        self.refresh_if_stale(now);
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let caching = self.0.cfg.cache_capacity > 0;
        let cached = if caching {
            self.0.verified.get(&digest)
        } else {
            None
        };
        let verified = match cached {
            // Saturating: an `exp` near i64::MAX is a token that never expires, not a panic.
            Some(v) if v.exp.saturating_add(self.0.cfg.leeway.as_secs() as i64) > now => v,
            _ => {
                let v = Arc::new(self.validate_cold(token).await?);
                if caching {
                    self.0.verified.insert(digest, v.clone());
                }
                v
            }
        };
        match &self.0.introspection {
            None => Ok(verified),
            Some(i) => {
                let introspected = self.introspect(i, token, digest).await?;
                bind(verified, introspected)
            }
        }
    }

    async fn validate_cold(&self, token: &str) -> Result<Verified, GuardError> {
        let cfg = &self.0.cfg;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| GuardError::InvalidToken("malformed token"))?;
        if !cfg.algorithms.contains(&header.alg) {
            return Err(GuardError::InvalidToken("algorithm not accepted"));
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(GuardError::InvalidToken(
                "not an access token (typ must be at+jwt)",
            ));
        }
        let kid = header.kid.ok_or(GuardError::InvalidToken("no kid"))?;
        let (key_alg, key) = self.key(&kid).await?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(GuardError::InvalidToken("algorithm does not match the key"));
        }
        let v = self
            .0
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .map(|(_, v)| v)
            .ok_or(GuardError::InvalidToken("algorithm not accepted"))?;
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, v)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind;
                    GuardError::InvalidToken(match e.kind() {
                        ErrorKind::ExpiredSignature => "expired",
                        ErrorKind::ImmatureSignature => "not yet valid",
                        ErrorKind::InvalidIssuer => "wrong issuer",
                        ErrorKind::InvalidAudience => "wrong audience",
                        ErrorKind::InvalidSignature => "bad signature",
                        _ => "invalid token",
                    })
                })?;
        let claims = data.claims;
        // jsonwebtoken also takes an array of issuers that holds ours; RFC 9068 §4 wants `iss`
        // to be exactly the issuer identifier.
        if claims.get("iss").and_then(|v| v.as_str()) != Some(cfg.issuer.as_str()) {
            return Err(GuardError::InvalidToken("wrong issuer"));
        }
        let exp = claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or(GuardError::InvalidToken("no exp"))?;
        let binding = binding(claims.get("cnf"))?;
        let scopes = claims
            .get("scope")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Verified {
            claims,
            scopes,
            exp,
            binding,
        })
    }

    /// The key for `kid`, fetching the JWKS when it is unknown and the last fetch is older
    /// than the refetch interval. Concurrent misses share one fetch.
    async fn key(&self, kid: &str) -> Result<Key, GuardError> {
        if let Some(k) = self.cached_key(kid) {
            return Ok(k);
        }
        let mut last = self.0.fetch.lock().await;
        if let Some(k) = self.cached_key(kid) {
            return Ok(k); // fetched while we waited
        }
        if last.is_some_and(|t| t.elapsed() < self.0.cfg.min_refetch_interval) {
            return Err(GuardError::InvalidToken("unknown key id"));
        }
        *last = Some(Instant::now());
        let Some((keys, max_age)) = Box::pin(self.fetch_jwks()).await else {
            return Err(GuardError::Unavailable);
        };
        self.install(keys, max_age);
        self.cached_key(kid)
            .ok_or(GuardError::InvalidToken("unknown key id"))
    }

    /// Fetches the JWKS: its keys and how long it may be kept (`Cache-Control: max-age`).
    async fn fetch_jwks(&self) -> Option<(HashMap<String, Key>, Duration)> {
        self.0.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = async {
            let resp = self.0.http.get(self.0.cfg.jwks_uri()).send().await.ok()?;
            let resp = resp.error_for_status().ok()?;
            let max_age = resp
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .map_or(DEFAULT_JWKS_MAX_AGE, max_age);
            Some((keys_of(&resp.json::<JwkSet>().await.ok()?), max_age))
        }
        .await;
        if fetched.is_none() {
            tracing::warn!(uri = %self.0.cfg.jwks_uri(), "fetching the JWKS failed");
        }
        fetched
    }

    /// Replaces the keys in hand with a freshly fetched set, kept for `max_age`. A key the
    /// issuer stopped publishing is dropped, and so is every verified token in the cache, so
    /// that tokens signed with a retired (perhaps compromised) key stop passing.
    fn install(&self, keys: HashMap<String, Key>, max_age: Duration) {
        let dropped = {
            let mut held = self.0.keys.write().unwrap_or_else(|e| e.into_inner());
            let dropped = held.keys().any(|kid| !keys.contains_key(kid));
            *held = keys;
            dropped
        };
        if dropped {
            self.0.verified.invalidate_all();
            self.0.active.invalidate_all();
        }
        let ttl = max_age.clamp(MIN_JWKS_MAX_AGE, MAX_JWKS_MAX_AGE);
        self.stale_after(ttl);
    }

    /// Starts a background refetch when the JWKS in hand has outlived its `max-age`; the
    /// request that notices goes on with the keys in hand.
    fn refresh_if_stale(&self, now: i64) {
        if (now.max(0) as u64) < self.0.stale_at.load(Ordering::Acquire)
            || self.0.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let guard = self.clone();
        tokio::spawn(async move {
            match guard.fetch_jwks().await {
                Some((keys, max_age)) => guard.install(keys, max_age),
                // Try again after the refetch interval; keep the keys in hand meanwhile.
                None => guard.stale_after(guard.0.cfg.min_refetch_interval.max(MIN_JWKS_MAX_AGE)),
            }
            guard.0.refreshing.store(false, Ordering::Release);
        });
    }

    /// The JWKS in hand goes stale `ttl` from now.
    fn stale_after(&self, ttl: Duration) {
        let at = (now().max(0) as u64).saturating_add(ttl.as_secs());
        self.0.stale_at.store(at, Ordering::Release);
    }

    fn cached_key(&self, kid: &str) -> Option<Key> {
        self.0
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    /// Asks the issuer whether the token is active; the binding its answer names.
    async fn introspect(
        &self,
        i: &Introspection,
        token: &str,
        digest: [u8; 32],
    ) -> Result<Binding, GuardError> {
        if !i.cache_ttl.is_zero() {
            if let Some(binding) = self.0.active.get(&digest) {
                return Ok(binding);
            }
        }
        let resp = self
            .0
            .http
            .post(&i.endpoint)
            .basic_auth(&i.client_id, Some(&i.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|_| GuardError::Unavailable)?;
        let body: serde_json::Value = resp
            .error_for_status()
            .map_err(|_| GuardError::Unavailable)?
            .json()
            .await
            .map_err(|_| GuardError::Unavailable)?;
        if body["active"] != true {
            return Err(GuardError::InvalidToken("revoked"));
        }
        // RFC 9449 §6.2 and RFC 8705 §3.2: the binding travels as the same `cnf` member, at
        // the top level.
        let binding = binding(body.get("cnf"))?;
        if !i.cache_ttl.is_zero() {
            self.0.active.insert(digest, binding.clone());
        }
        Ok(binding)
    }
}

/// How long a JWKS is kept when its response names no `max-age`.
const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// Bounds on a JWKS `max-age`: no refetch more than once a second, none kept beyond a day.
const MIN_JWKS_MAX_AGE: Duration = Duration::from_secs(1);
const MAX_JWKS_MAX_AGE: Duration = Duration::from_secs(86_400);

/// The `max-age` of a `Cache-Control` value (`no-cache` and `no-store` count as 0).
fn max_age(cache_control: &str) -> Duration {
    let mut age = DEFAULT_JWKS_MAX_AGE;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Duration::ZERO;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            if let Ok(n) = n.trim_matches('"').parse::<u64>() {
                age = Duration::from_secs(n);
            }
        }
    }
    age
}

fn keys_of(set: &JwkSet) -> HashMap<String, Key> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(id), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else {
            continue;
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        keys.insert(id, (alg, Arc::new(key)));
    }
    keys
}

/// What a token is bound to: a DPoP key (`cnf.jkt`, RFC 9449 §6.1), a client certificate
/// (`cnf.x5t#S256`, RFC 8705 §3.1), both, or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Binding {
    jkt: Option<Arc<str>>,
    x5t_s256: Option<CertificateThumbprint>,
}

/// The binding of a `cnf` claim (RFC 7800 §3.1). No `cnf`, or one with neither member (another
/// confirmation method), binds the token to nothing; a `cnf` that is not an object, a `jkt`
/// that is not a non-empty string, or an `x5t#S256` that is not the base64url of a SHA-256
/// hash is refused rather than ignored.
fn binding(cnf: Option<&serde_json::Value>) -> Result<Binding, GuardError> {
    let Some(cnf) = cnf else {
        return Ok(Binding::default());
    };
    let cnf = cnf
        .as_object()
        .ok_or(GuardError::InvalidToken("malformed cnf claim"))?;
    let jkt = match cnf.get("jkt") {
        None => None,
        Some(serde_json::Value::String(jkt)) if !jkt.is_empty() => Some(Arc::from(jkt.as_str())),
        Some(_) => return Err(GuardError::InvalidToken("malformed cnf.jkt")),
    };
    let x5t_s256 = cnf
        .get("x5t#S256")
        .map(CertificateThumbprint::parse)
        .transpose()?;
    Ok(Binding { jkt, x5t_s256 })
}

/// The verified token with the binding the introspection answer names, member by member: the
/// same as the token's, or the only one when the token carries none.
fn bind(verified: Arc<Verified>, answer: Binding) -> Result<Arc<Verified>, GuardError> {
    let own = &verified.binding;
    let jkt = adopt(
        &own.jkt,
        answer.jkt,
        "the token's cnf.jkt differs from the introspection answer's",
    )?;
    let x5t_s256 = adopt(
        &own.x5t_s256,
        answer.x5t_s256,
        "the token's cnf.x5t#S256 differs from the introspection answer's",
    )?;
    if jkt.is_none() && x5t_s256.is_none() {
        return Ok(verified);
    }
    let mut bound = Verified::clone(&verified);
    if jkt.is_some() {
        bound.binding.jkt = jkt;
    }
    if x5t_s256.is_some() {
        bound.binding.x5t_s256 = x5t_s256;
    }
    Ok(Arc::new(bound))
}

/// The introspection answer's member when the token has none; `None` when the token's own
/// stands (the answer names none, or the same).
fn adopt<T: PartialEq>(
    own: &Option<T>,
    answer: Option<T>,
    differs: &'static str,
) -> Result<Option<T>, GuardError> {
    match (own, answer) {
        (_, None) => Ok(None),
        (Some(own), Some(answer)) if *own == answer => Ok(None),
        (Some(_), Some(_)) => Err(GuardError::InvalidToken(differs)),
        (None, Some(answer)) => Ok(Some(answer)),
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Cached verified tokens leave the cache when they expire.
struct ExpireAtTokenExpiry;

impl moka::Expiry<[u8; 32], Arc<Verified>> for ExpireAtTokenExpiry {
    fn expire_after_create(&self, _: &[u8; 32], v: &Arc<Verified>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs((v.exp - now()).clamp(0, 86_400) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calyx_token::{SigningAlg, SigningKey};
    use serde_json::json;

    const ISS: &str = "https://auth.example.com";
    const AUD: &str = "https://api.example.com/";

    fn guard(key: &SigningKey, cache_capacity: u64) -> Guard {
        let jwks = serde_json::from_value(json!({ "keys": [key.public_jwk()] })).unwrap();
        let mut cfg = GuardConfig::new(ISS, AUD);
        cfg.cache_capacity = cache_capacity;
        Guard::from_jwks(cfg, &jwks)
    }

    fn claims(iss: serde_json::Value, exp: i64) -> serde_json::Value {
        json!({"iss": iss, "sub": "s@clients", "aud": AUD, "exp": exp})
    }

    #[test]
    fn the_jwks_max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=60"), Duration::from_secs(60));
        assert_eq!(max_age("Max-Age=5, public"), Duration::from_secs(5));
        assert_eq!(max_age("no-cache"), Duration::ZERO);
        assert_eq!(max_age("public"), DEFAULT_JWKS_MAX_AGE);
        assert_eq!(max_age("max-age=x"), DEFAULT_JWKS_MAX_AGE);
    }

    /// Found by the `guard_jwt` fuzz target: jsonwebtoken accepts `iss` as an array that
    /// holds the issuer.
    #[tokio::test]
    async fn an_array_of_issuers_is_not_the_issuer() {
        let (_, key) = SigningKey::generate(SigningAlg::EdDSA).unwrap();
        let g = guard(&key, 0);
        let far = 4_102_444_800;
        assert!(g
            .validate(&key.sign(&claims(json!(ISS), far)).unwrap())
            .await
            .is_ok());
        for iss in [json!([ISS]), json!([ISS, "https://evil.example"])] {
            let token = key.sign(&claims(iss, far)).unwrap();
            assert_eq!(
                g.validate(&token).await.unwrap_err(),
                GuardError::InvalidToken("wrong issuer")
            );
        }
    }

    /// Found by the `guard_jwt` fuzz target: a cache hit added the leeway to `exp` unchecked,
    /// which overflowed (a panic in debug builds) for `exp` near `i64::MAX`.
    #[tokio::test]
    async fn a_cached_token_with_the_largest_exp_stays_valid() {
        let (_, key) = SigningKey::generate(SigningAlg::EdDSA).unwrap();
        let g = guard(&key, 16);
        let token = key.sign(&claims(json!(ISS), i64::MAX)).unwrap();
        for _ in 0..2 {
            assert_eq!(g.validate(&token).await.unwrap().exp, i64::MAX);
        }
    }
}
