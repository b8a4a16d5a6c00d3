//! `private_key_jwt` client authentication (OpenID Connect Core §9; RFC 7523 §2.2 and §3):
//! instead of a shared secret, the client signs a short-lived JWT about itself with a private
//! key whose public half the server holds (the client's registered JWKS).
//!
//! Each token request gets a new assertion: a fresh `jti`, because the server remembers the ones
//! it has seen and refuses them again (RFC 7523 §3 item 7) — which also means a retried request
//! (a `Retry-After`, a DPoP nonce) is signed anew, never resent.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::jose::{self, Es256Key};
use crate::Error;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid. Short: it is made for one request and sent at once.
const LIFETIME_SECS: u64 = 60;

/// A client's ES256 (P-256) key for `private_key_jwt`, with its key id and the audience its
/// assertions name. Cheap to clone. Its `Debug` shows the key id only.
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<Es256Key>,
    kid: String,
    audience: Option<String>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Two keys are the same when their key ids and audiences are (the key id names the key).
impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid
            && self.audience == other.audience
            && self.key.thumbprint() == other.key.thumbprint()
    }
}

impl Eq for ClientKey {}

impl ClientKey {
    /// A fresh random key; register [`ClientKey::jwks`] with the server and keep
    /// [`ClientKey::to_pkcs8`].
    pub fn generate() -> Result<ClientKey, Error> {
        Ok(Self::from_key(Es256Key::generate()?))
    }

    /// A key from PKCS#8 DER holding a P-256 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<ClientKey, Error> {
        Ok(Self::from_key(Es256Key::from_pkcs8(der)?))
    }

    fn from_key(key: Es256Key) -> ClientKey {
        ClientKey {
            // RFC 7638 §1 suggests the thumbprint as a key id; every party derives the same.
            kid: key.thumbprint().to_owned(),
            key: Arc::new(key),
            audience: None,
        }
    }

    /// Uses `kid` as the key id (in the assertions' header and the JWKS) instead of the
    /// RFC 7638 thumbprint: for a key registered under another id.
    pub fn with_kid(mut self, kid: impl Into<String>) -> ClientKey {
        self.kid = kid.into();
        self
    }

    /// Addresses the assertions to `audience` — typically the server's issuer identifier —
    /// instead of the token endpoint URL (the default, which RFC 7523 §3 names and every
    /// server accepts).
    pub fn with_audience(mut self, audience: impl Into<String>) -> ClientKey {
        self.audience = Some(audience.into());
        self
    }

    /// The private key as PKCS#8 v1 DER, to store it. Secret: keep it like a password.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, Error> {
        self.key.to_pkcs8()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.key.jwk().clone();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("ES256");
        jwk
    }

    /// The public JWK Set (RFC 7517 §5) to register as the client's `jwks`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// A fresh assertion for `client_id`: `iss` = `sub` = the client id, `aud` = the configured
    /// audience or else `token_endpoint`, a new `jti`, `iat` now and `exp` a minute later;
    /// `alg` ES256 and `kid` in the header.
    pub fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, Error> {
        let now = jose::now();
        let header = jose::encode_header(&json!({
            "alg": "ES256",
            "typ": "JWT",
            "kid": self.kid,
        }));
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.audience.as_deref().unwrap_or(token_endpoint),
            "jti": crate::random(16),
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        self.key.sign(&header, &claims)
    }
}
