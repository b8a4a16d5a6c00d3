//! DPoP (RFC 9449 §7) at the resource server: `Authorization: DPoP <token>` with one `DPoP`
//! header holding a proof made with the key the token is bound to (`cnf.jkt`, RFC 9449 §6).
//!
//! The stateless checks of the proof (RFC 9449 §4.3: `typ`, an asymmetric `alg`, a public
//! `jwk`, the signature, `htm`, `htu`, the `iat` window, `ath`) are
//! `calyx_token::dpop::verify`'s. This module adds what needs the request or state:
//!
//! - **Exactly one proof.** No `DPoP` header, two of them, or one holding a comma (two proofs
//!   a proxy folded into one line) is `invalid_dpop_proof` (§4.3, point 1).
//! - **`htu` is the URI the client used**, which behind a proxy is not the one the guard sees.
//!   [`DpopConfig::public_origin`] names it (`https://api.example.com`, or with a path prefix
//!   the proxy strips: `https://example.com/api`), and the request's path is appended: the
//!   path the router received, before any `Router::nest` stripped a prefix (axum's
//!   `OriginalUri`). Without a public origin the guard uses the request's own authority (the
//!   HTTP/2 `:authority`, else `Host`) with `https://` ([`DpopConfig::plain_http`] makes it
//!   `http://` for a development server without TLS). That fallback is right for one service
//!   on one host name, reached directly or through a proxy that keeps `Host`; the scheme is
//!   not taken from the connection because TLS usually ends at the proxy, so the guard would
//!   see `http` where the client wrote `https`. The `Host` header is the client's to choose,
//!   so a deployment with several names or a rewriting proxy should set the public origin;
//!   a `Host` that is not a bare `host[:port]` is refused, so that it cannot smuggle a path
//!   or a fragment into `htu`.
//! - **The binding.** The proof's key thumbprint must be the token's `cnf.jkt` (or, in
//!   introspection mode, the `cnf.jkt` of the introspection answer, RFC 9449 §6.2); a
//!   mismatch is `invalid_token` ("invalid DPoP key binding", §7.1). A bound token sent with
//!   the `Bearer` scheme is refused (§7.2), and so is an unbound one sent with `DPoP`.
//! - **Single use of `jti`** (§11.1). After every other check passed, the proof is recorded
//!   under the SHA-256 of its key thumbprint and `jti` (a hash, so a long `jti` costs no
//!   memory, §11.1), until its `iat` would refuse it anyway (`iat` + [`DpopConfig::max_age`]);
//!   a second use is `invalid_dpop_proof`. The record is **per process**: a proof replayed
//!   against another replica of the API within that window is not caught. The window is short
//!   (a minute by default), the proof only works for the same method, URI and token, and
//!   RFC 9449 §11.1 names exactly this limit of servers without shared state. Only proofs
//!   that passed every check are recorded, so filling the record takes valid bound tokens and
//!   their keys; [`DpopConfig::replay_capacity`] should exceed the DPoP requests one process
//!   serves in a window.
//!
//! The guard sends no `DPoP-Nonce` (§9): without shared state a nonce would be one more
//! per-process record, and `iat` already bounds a proof's life.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::OriginalUri;
use axum::http::{header, Extensions, HeaderMap, Uri};
use calyx_token::dpop::{DpopError, Expected};
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use crate::{mtls, ClientCertificate, Guard, GuardError, Verified};

/// How the guard checks DPoP proofs (RFC 9449). The defaults suit an API reached directly
/// over HTTPS; behind a proxy set [`DpopConfig::public_origin`].
#[derive(Debug, Clone)]
pub struct DpopConfig {
    /// The scheme, host, port and any path prefix clients address this API by
    /// (`https://api.example.com`); a proof's `htu` must be this followed by the request's
    /// path. `None`: the request's own authority (`Host`) with `https://`, or `http://` under
    /// [`DpopConfig::plain_http`] (see the module docs for why and when that is enough).
    pub public_origin: Option<String>,
    /// Without a public origin, `htu` starts with `http://` rather than `https://`: for a
    /// development server without TLS.
    pub plain_http: bool,
    /// How old a proof may be (by its `iat`); also how long its `jti` is remembered.
    pub max_age: Duration,
    /// How far ahead of this server's clock a proof's `iat` may be (the client's clock skew).
    pub leeway: Duration,
    /// How many recent proofs to remember for the replay check.
    pub replay_capacity: u64,
}

impl Default for DpopConfig {
    /// No public origin (`Host`, `https://`); proofs live 60 s, 5 s of clock skew;
    /// 1,000,000 proofs remembered.
    fn default() -> Self {
        DpopConfig {
            public_origin: None,
            plain_http: false,
            max_age: Duration::from_secs(60),
            leeway: Duration::from_secs(5),
            replay_capacity: 1_000_000,
        }
    }
}

/// What a guard holds for DPoP: the origin parsed once, and the proofs seen.
pub(crate) struct State {
    origin: Option<String>,
    plain_http: bool,
    max_age: i64,
    leeway: i64,
    /// SHA-256 of (thumbprint, `jti`) → the Unix second from which the proof is stale.
    seen: Cache<[u8; 32], i64>,
}

impl State {
    /// # Panics
    ///
    /// When `public_origin` is set but is not an absolute `http` or `https` URL without
    /// credentials, query or fragment: a misconfiguration is reported at start-up, not as a
    /// refusal of every request.
    pub(crate) fn new(cfg: &DpopConfig) -> State {
        State {
            origin: cfg.public_origin.as_deref().map(origin),
            plain_http: cfg.plain_http,
            max_age: secs(cfg.max_age),
            leeway: secs(cfg.leeway),
            seen: Cache::builder()
                .max_capacity(cfg.replay_capacity)
                .expire_after(ExpireWhenStale)
                .build(),
        }
    }

    /// The `htu` a proof for this request must carry: the public origin (or this request's
    /// authority) and the path the router received.
    fn htu(&self, uri: &Uri, headers: &HeaderMap, extensions: &Extensions) -> Option<String> {
        let path = extensions.get::<OriginalUri>().map_or(uri, |o| &o.0).path();
        if let Some(origin) = &self.origin {
            return Some(format!("{origin}{path}"));
        }
        let host = match uri.authority() {
            Some(a) => a.as_str(),
            None => headers.get(header::HOST)?.to_str().ok()?,
        };
        if !is_host_and_port(host) {
            return None;
        }
        let scheme = if self.plain_http { "http" } else { "https" };
        Some(format!("{scheme}://{host}{path}"))
    }

    /// Records a proof that passed every other check; false when it was recorded before.
    fn first_use(&self, jkt: &str, jti: &str, iat: i64) -> bool {
        let mut h = Sha256::new();
        h.update(jkt.as_bytes());
        h.update([0]);
        h.update(jti.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        // `or_insert_with` lets exactly one of concurrent first uses insert (moka coalesces
        // them), so two racing copies of a proof cannot both pass.
        self.seen
            .entry(key)
            .or_insert_with(|| stale_from(iat, self.max_age))
            .is_fresh()
    }
}

/// The first Unix second at which a proof made at `iat` is too old: `verify` accepts it while
/// `now <= iat + max_age`, in whole seconds.
fn stale_from(iat: i64, max_age: i64) -> i64 {
    iat.saturating_add(max_age).saturating_add(1)
}

/// Proofs are forgotten once their `iat` refuses them anyway.
struct ExpireWhenStale;

impl moka::Expiry<[u8; 32], i64> for ExpireWhenStale {
    fn expire_after_create(&self, _: &[u8; 32], stale: &i64, _: Instant) -> Option<Duration> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let ms = stale.saturating_mul(1000).saturating_sub(now_ms);
        Some(Duration::from_millis(ms.max(0) as u64))
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `public_origin` checked and without its trailing `/`, ready for a path to be appended.
fn origin(public_origin: &str) -> String {
    let url = url::Url::parse(public_origin).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    let Some(url) = url else {
        panic!(
            "calyx-guard: the DPoP public origin must be an absolute http(s) URL without \
             credentials, query or fragment, such as https://api.example.com: {public_origin:?}"
        );
    };
    url.as_str().trim_end_matches('/').to_owned()
}

/// True when `host` is a bare `host[:port]` (a name, an IPv4 address or a bracketed IPv6
/// address): nothing that would end the authority of a URL built from it.
fn is_host_and_port(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:[]".contains(&b))
}

/// The one proof of a request (RFC 9449 §4.3: "not more than one DPoP HTTP request header").
fn single_proof(headers: &HeaderMap) -> Result<&str, GuardError> {
    let mut proofs = headers.get_all("dpop").iter();
    let proof = proofs
        .next()
        .ok_or(GuardError::InvalidDpopProof("no DPoP header"))?;
    if proofs.next().is_some() {
        return Err(GuardError::InvalidDpopProof("more than one DPoP header"));
    }
    proof
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|p| !p.contains(','))
        .ok_or(GuardError::InvalidDpopProof(
            "the DPoP header must hold one proof JWT",
        ))
}

impl Guard {
    /// Validates a DPoP-bound token and its proof (RFC 9449 §7.1): the token as
    /// [`Guard::validate`] does, then the proof for `method` on `htu` (the URI the client
    /// used, without query) with `ath` for `token`, made with the key of the token's
    /// `cnf.jkt`, and not used before in this process.
    ///
    /// [`GuardLayer`](crate::GuardLayer) and [`Guard::authorize`] call this with the `htu`
    /// they build from [`DpopConfig`]; call it yourself when you know the public URI better.
    ///
    /// A token also bound to a client certificate (`cnf.x5t#S256`, RFC 8705 §3) is refused
    /// here: it needs [`Guard::validate_dpop_with_certificate`].
    pub async fn validate_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        htu: &str,
    ) -> Result<Arc<Verified>, GuardError> {
        self.dpop(token, proof, method, htu, || None).await
    }

    /// [`Guard::validate_dpop`] for a request that came with `certificate` (the client
    /// certificate of its mutual-TLS connection, if any): a token bound to a DPoP key and to a
    /// certificate (`cnf.x5t#S256`, RFC 8705 §3) passes only with a proof of the key *and*
    /// that certificate.
    pub async fn validate_dpop_with_certificate(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        htu: &str,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Arc<Verified>, GuardError> {
        self.dpop(token, proof, method, htu, || certificate).await
    }

    /// The `DPoP` scheme's checks; `certificate` is asked for only when the token is bound to
    /// one.
    async fn dpop<'a>(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        htu: &str,
        certificate: impl FnOnce() -> Option<&'a ClientCertificate>,
    ) -> Result<Arc<Verified>, GuardError> {
        let verified = self.verified(token).await?;
        let Some(jkt) = verified.jkt() else {
            return Err(GuardError::InvalidToken(
                "the DPoP scheme needs a DPoP-bound token (cnf.jkt)",
            ));
        };
        // Before the proof: it is stateless and costs no signature check.
        mtls::confirm(&verified, certificate)?;
        let state = self.dpop_state();
        let expected = Expected {
            method,
            uri: htu,
            now: crate::guard::now(),
            max_age: state.max_age,
            leeway: state.leeway,
            access_token: Some(token),
            nonce: None,
        };
        let proof = calyx_token::dpop::verify(proof, &expected).map_err(|e| match e {
            DpopError::Invalid(why) => GuardError::InvalidDpopProof(why),
            // The guard never asks for a nonce, so `verify` has none to miss.
            DpopError::UseNonce => GuardError::InvalidDpopProof("unexpected nonce"),
        })?;
        if proof.jkt != jkt {
            return Err(GuardError::InvalidToken(
                "invalid DPoP key binding: the proof's key is not the one the token is bound to",
            ));
        }
        if !state.first_use(&proof.jkt, &proof.jti, proof.iat) {
            return Err(GuardError::InvalidDpopProof(
                "the DPoP proof was used before (jti)",
            ));
        }
        Ok(verified)
    }

    /// The `DPoP` scheme of a request: one proof, the `htu` from the configuration, then
    /// [`Guard::validate_dpop_with_certificate`] with the request's [`ClientCertificate`].
    pub(crate) async fn authorize_dpop(
        &self,
        token: &str,
        method: &str,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<Arc<Verified>, GuardError> {
        // Both before the token: they cost no signature check.
        let proof = single_proof(headers)?;
        let htu =
            self.dpop_state()
                .htu(uri, headers, extensions)
                .ok_or(GuardError::InvalidDpopProof(
                    "the request names no host to check the proof's htu against",
                ))?;
        self.dpop(token, proof, method, &htu, || {
            extensions.get::<ClientCertificate>()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn state(cfg: DpopConfig) -> State {
        State::new(&cfg)
    }

    fn headers(host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        h
    }

    #[test]
    fn htu_is_the_public_origin_and_the_path_the_router_received() {
        let s = state(DpopConfig {
            public_origin: Some("https://API.example.com/api/".into()),
            ..DpopConfig::default()
        });
        let uri: Uri = "/consumers?page=2".parse().unwrap();
        let mut ext = Extensions::new();
        assert_eq!(
            s.htu(&uri, &headers("internal:8080"), &ext).as_deref(),
            Some("https://api.example.com/api/consumers")
        );
        ext.insert(OriginalUri("/v1/consumers".parse().unwrap()));
        assert_eq!(
            s.htu(&uri, &headers("internal:8080"), &ext).as_deref(),
            Some("https://api.example.com/api/v1/consumers")
        );
    }

    #[test]
    fn without_a_public_origin_htu_is_https_on_the_host_header() {
        let s = state(DpopConfig::default());
        let uri: Uri = "/v1/consumers".parse().unwrap();
        let ext = Extensions::new();
        assert_eq!(
            s.htu(&uri, &headers("api.example.com"), &ext).as_deref(),
            Some("https://api.example.com/v1/consumers")
        );
        let plain = state(DpopConfig {
            plain_http: true,
            ..DpopConfig::default()
        });
        assert_eq!(
            plain.htu(&uri, &headers("[::1]:3000"), &ext).as_deref(),
            Some("http://[::1]:3000/v1/consumers")
        );
        // An HTTP/2 request's :authority comes first.
        let absolute: Uri = "https://h2.example.com/v1/consumers".parse().unwrap();
        assert_eq!(
            s.htu(&absolute, &headers("other.example"), &ext).as_deref(),
            Some("https://h2.example.com/v1/consumers")
        );
    }

    #[test]
    fn a_host_header_that_is_not_a_bare_host_and_port_names_no_htu() {
        let s = state(DpopConfig::default());
        let uri: Uri = "/admin".parse().unwrap();
        for host in [
            "api.example.com/v1/consumers#",
            "api.example.com/v1/consumers?",
            "user@api.example.com",
            "api.example.com\\x",
            "",
        ] {
            let h = HeaderMap::from_iter([(header::HOST, HeaderValue::from_str(host).unwrap())]);
            assert_eq!(s.htu(&uri, &h, &Extensions::new()), None, "{host}");
        }
        assert_eq!(s.htu(&uri, &HeaderMap::new(), &Extensions::new()), None);
    }

    #[test]
    #[should_panic(expected = "public origin")]
    fn a_public_origin_with_a_query_is_refused_at_start_up() {
        state(DpopConfig {
            public_origin: Some("https://api.example.com/?x=1".into()),
            ..DpopConfig::default()
        });
    }

    #[test]
    fn a_proof_is_remembered_per_key_until_its_iat_refuses_it() {
        let s = state(DpopConfig::default());
        let now = crate::guard::now();
        assert!(s.first_use("key-a", "jti-1", now));
        assert!(!s.first_use("key-a", "jti-1", now), "the same proof again");
        assert!(s.first_use("key-b", "jti-1", now), "another key's jti");
        assert!(s.first_use("key-a", "jti-2", now));
        // A proof already stale when recorded is forgotten at once.
        assert!(s.first_use("key-a", "old", now - 3600));
        s.seen.run_pending_tasks();
        assert!(s.first_use("key-a", "old", now - 3600));
        assert_eq!(stale_from(100, 60), 161);
    }

    #[test]
    fn one_dpop_header_holding_one_proof_is_required() {
        let mut h = HeaderMap::new();
        assert_eq!(
            single_proof(&h),
            Err(GuardError::InvalidDpopProof("no DPoP header"))
        );
        h.append("dpop", HeaderValue::from_static("a.b.c"));
        assert_eq!(single_proof(&h), Ok("a.b.c"));
        h.append("dpop", HeaderValue::from_static("d.e.f"));
        assert_eq!(
            single_proof(&h),
            Err(GuardError::InvalidDpopProof("more than one DPoP header"))
        );
        let folded = HeaderMap::from_iter([(
            header::HeaderName::from_static("dpop"),
            HeaderValue::from_static("a.b.c, d.e.f"),
        )]);
        assert!(single_proof(&folded).is_err());
    }
}
