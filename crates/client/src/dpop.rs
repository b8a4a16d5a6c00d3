//! DPoP (RFC 9449): proof-of-possession tokens, from the client's side.
//!
//! A [`DpopKey`] is the client's P-256 key. Every token request carries a fresh proof made
//! with it (RFC 9449 §5), so the server binds the token to the key's thumbprint (`cnf.jkt`); every
//! resource request carries the token as `Authorization: DPoP` and a proof that also names the
//! token (`ath`, §7). A server may insist on a nonce of its own in proofs (§8 for the
//! authorization server, §9 for a resource server): it answers `use_dpop_nonce` with a
//! `DPoP-Nonce` header, and may send a new `DPoP-Nonce` on any answer. The key remembers the
//! latest nonce per origin, shared by every clone, and puts it in the next proof for that origin
//! (§8.2: "until the authorization server supplies a new nonce"); a nonce is never sent to a
//! server other than the one that issued it (§9).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::jose::{self, Es256Key};
use crate::Error;

/// The `DPoP` request header (RFC 9449 §4.1).
const DPOP: &str = "dpop";
/// The `DPoP-Nonce` response header (RFC 9449 §8).
const DPOP_NONCE: &str = "dpop-nonce";

/// A DPoP key (ES256 on P-256) and the nonces servers gave it. Cheap to clone; clones share the
/// key and the nonces. Its `Debug` shows only the thumbprint.
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<Inner>,
}

struct Inner {
    key: Es256Key,
    /// `{"typ":"dpop+jwt","alg":"ES256","jwk":{...}}`, base64url: the same for every proof.
    header: String,
    /// The latest `DPoP-Nonce` per origin (`scheme://host:port`).
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh random key. Keep it (see [`DpopKey::to_pkcs8`]) as long as the tokens and refresh
    /// tokens bound to it: they are useless without it.
    pub fn generate() -> Result<DpopKey, Error> {
        Ok(Self::from_key(Es256Key::generate()?))
    }

    /// A key from PKCS#8 DER holding a P-256 private key (e.g. from [`DpopKey::to_pkcs8`], or
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER`).
    pub fn from_pkcs8(der: &[u8]) -> Result<DpopKey, Error> {
        Ok(Self::from_key(Es256Key::from_pkcs8(der)?))
    }

    fn from_key(key: Es256Key) -> DpopKey {
        let header = jose::encode_header(&json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": key.jwk(),
        }));
        DpopKey {
            inner: Arc::new(Inner {
                key,
                header,
                nonces: Mutex::default(),
            }),
        }
    }

    /// The private key as PKCS#8 v1 DER, to store it. Secret: keep it like a password.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, Error> {
        self.inner.key.to_pkcs8()
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key: what a bound token's `cnf.jkt` holds
    /// (RFC 9449 §6), and what `dpop_jkt` names in an authorization request (§10).
    pub fn thumbprint(&self) -> &str {
        self.inner.key.thumbprint()
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`): what every proof's header carries.
    pub fn public_jwk(&self) -> &Value {
        self.inner.key.jwk()
    }

    /// A proof for a request of `method` to `url`, with the nonce last heard from `url`'s
    /// origin, if any. With `access_token` (a resource request), it carries `ath`.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, Error> {
        let url = parse(url)?;
        let nonce = self.nonce_at(&url);
        self.make_proof(method, url, access_token, nonce.as_deref())
    }

    /// A proof with the given `nonce` (or none), whatever was remembered.
    pub fn proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, Error> {
        self.make_proof(method, parse(url)?, access_token, nonce)
    }

    /// RFC 9449 §4.2: `jti` (128 random bits), `htm`, `htu` (without query and fragment),
    /// `iat`, and `ath` and `nonce` when there are ones.
    fn make_proof(
        &self,
        method: &str,
        mut url: url::Url,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, Error> {
        url.set_query(None);
        url.set_fragment(None);
        let mut claims = Map::new();
        claims.insert("jti".into(), crate::random(16).into());
        claims.insert("htm".into(), method.into());
        claims.insert("htu".into(), String::from(url).into());
        claims.insert("iat".into(), jose::now().into());
        if let Some(token) = access_token {
            claims.insert("ath".into(), ath(token).into());
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        self.inner
            .key
            .sign(&self.inner.header, &Value::Object(claims))
    }

    /// The nonce last heard from `url`'s origin.
    pub fn nonce_for(&self, url: &str) -> Option<String> {
        self.nonce_at(&url::Url::parse(url).ok()?)
    }

    fn nonce_at(&self, url: &url::Url) -> Option<String> {
        self.nonces().get(&origin(url)).cloned()
    }

    /// Remembers the `DPoP-Nonce` of a response, if it has one, for the origin that sent it.
    /// [`DpopKey::send`] and the token requests do this themselves; call it after sending a
    /// request decorated by [`DpopKey::authorize`].
    pub fn remember_nonce(&self, response: &reqwest::Response) {
        self.remember(response.url(), response.headers());
    }

    /// Remembers the `DPoP-Nonce` in `headers` for `url`'s origin; true if there was one.
    pub(crate) fn remember(&self, url: &url::Url, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if nonce.is_empty() {
            return false;
        }
        self.nonces().insert(origin(url), nonce.to_owned());
        true
    }

    fn nonces(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.inner
            .nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `Authorization: DPoP <access_token>` and a `DPoP` proof for the request's method
    /// and URL, with `ath` (RFC 9449 §7.1) and the origin's nonce if one is known.
    pub fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        access_token: &str,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let (client, request) = req.build_split();
        let mut request = request?;
        self.decorate(&mut request, access_token)?;
        Ok(reqwest::RequestBuilder::from_parts(client, request))
    }

    fn decorate(&self, request: &mut reqwest::Request, access_token: &str) -> Result<(), Error> {
        let nonce = self.nonce_at(request.url());
        let proof = self.make_proof(
            request.method().as_str(),
            request.url().clone(),
            Some(access_token),
            nonce.as_deref(),
        )?;
        let authorization = HeaderValue::try_from(format!("DPoP {access_token}"))
            .map_err(|_| Error::InvalidResponse("the access token is not a header value".into()))?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(
            DPOP,
            HeaderValue::try_from(proof).map_err(|e| Error::Key(e.to_string()))?,
        );
        Ok(())
    }

    /// Sends the request with [`DpopKey::authorize`]'s headers and remembers the answer's
    /// nonce. When the resource server answers 401 with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` and a `DPoP-Nonce` (RFC 9449 §9), sends it once more with a
    /// fresh proof holding that nonce — unless the body cannot be replayed (a stream), in which
    /// case the 401 is returned.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        access_token: &str,
    ) -> Result<reqwest::Response, Error> {
        let (client, request) = req.build_split();
        let request = request?;
        let url = request.url().clone();
        let retry = request.try_clone();
        let mut first = request;
        self.decorate(&mut first, access_token)?;
        let resp = client.execute(first).await?;
        // The nonce belongs to whoever answered (after any redirect); only the request's own
        // origin asking for one is a reason to send the request again.
        let answered = resp.url().clone();
        let got_nonce =
            self.remember(&answered, resp.headers()) && origin(&answered) == origin(&url);
        match retry {
            Some(mut again) if got_nonce && asks_for_nonce(&resp) => {
                tracing::debug!(
                    origin = %origin(&url),
                    "resource server asked for a DPoP nonce; retrying once"
                );
                self.decorate(&mut again, access_token)?;
                let resp = client.execute(again).await?;
                self.remember_nonce(&resp);
                Ok(resp)
            }
            _ => Ok(resp),
        }
    }
}

/// A 401 whose `WWW-Authenticate` has the `use_dpop_nonce` error (RFC 9449 §7.1, §9): the
/// error code exists only for the DPoP scheme, so finding it is enough.
fn asks_for_nonce(resp: &reqwest::Response) -> bool {
    resp.status() == reqwest::StatusCode::UNAUTHORIZED
        && resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("use_dpop_nonce"))
}

/// `ath` (RFC 9449 §4.2): the base64url SHA-256 of the access token's ASCII.
fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

fn parse(url: &str) -> Result<url::Url, Error> {
    url::Url::parse(url).map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))
}

/// True when an RFC 6749 §5.2 error asks for a DPoP nonce (RFC 9449 §8).
pub(crate) fn is_nonce_error(error: &str) -> bool {
    error == "use_dpop_nonce"
}
