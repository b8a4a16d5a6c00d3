//! DPoP proofs (RFC 9449 §4.2) and client assertions (RFC 7523 §2.2) as a client makes them,
//! built with `jwt-compact` on RustCrypto's P-256: a JOSE implementation independent of the
//! server's (`jsonwebtoken` over aws-lc-rs), so that a test never checks Calyx's code with
//! Calyx's code.
//!
//! [`Holder`] is one key pair. [`ProofClaims`] and [`AssertionClaims`] start from what a
//! correct client sends and let a test change one member to make the refusal it is about.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::Es256;
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A client's P-256 key pair: the proof-of-possession key of DPoP, or the key of
/// `private_key_jwt` (published in the client's JWKS).
pub struct Holder {
    key: p256::ecdsa::SigningKey,
    jwk: Value,
    thumbprint: String,
    kid: String,
}

impl Default for Holder {
    fn default() -> Self {
        Self::new()
    }
}

impl Holder {
    /// A fresh random key.
    pub fn new() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let public = JsonWebKey::from(key.verifying_key());
        let thumbprint = URL_SAFE_NO_PAD.encode(public.thumbprint::<Sha256>());
        let jwk = serde_json::to_value(&public).expect("a JWK serializes");
        drop(public);
        Self {
            key,
            jwk,
            kid: thumbprint[..16].to_owned(),
            thumbprint,
        }
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The RFC 7638 thumbprint of the public key: what `cnf.jkt` of a bound token holds.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The key id this holder puts in its assertions' headers and its JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A JWK Set with the public key, as a client registers it for `private_key_jwt`.
    pub fn jwks(&self) -> Value {
        let mut key = self.jwk.clone();
        key["kid"] = json!(self.kid);
        key["use"] = json!("sig");
        key["alg"] = json!("ES256");
        json!({ "keys": [key] })
    }

    /// A DPoP proof for `method` on `url`, made now, with a fresh `jti`.
    pub fn proof(&self, method: &str, url: &str) -> String {
        self.proof_with(&ProofClaims::new(method, url))
    }

    /// A DPoP proof with the given claims, signed with this key, the public key in the header.
    pub fn proof_with(&self, claims: &ProofClaims) -> String {
        self.proof_with_header(claims, "dpop+jwt", &self.jwk)
    }

    /// A proof with another `typ` or another `jwk` in its header (for refusals).
    pub fn proof_with_header(&self, claims: &ProofClaims, typ: &str, jwk: &Value) -> String {
        #[derive(Serialize)]
        struct Extra<'a> {
            jwk: &'a Value,
        }
        let header = Header::new(Extra { jwk }).with_token_type(typ);
        let claims = Claims::new(claims);
        Es256
            .token(&header, &claims, &self.key)
            .expect("ES256 signs")
    }

    /// A client assertion (RFC 7523 §2.2) for `client_id` addressed to `audience`, valid for
    /// a minute, with a fresh `jti`.
    pub fn assertion(&self, client_id: &str, audience: &str) -> String {
        self.assertion_with(&AssertionClaims::new(client_id, audience))
    }

    /// A client assertion with the given claims, `kid` in the header.
    pub fn assertion_with(&self, claims: &AssertionClaims) -> String {
        let header = Header::empty()
            .with_key_id(&self.kid)
            .with_token_type("JWT");
        Es256
            .token(&header, &Claims::new(claims), &self.key)
            .expect("ES256 signs")
    }
}

/// The claims of a DPoP proof (RFC 9449 §4.2), filled in as a correct client would.
#[derive(Debug, Clone, Serialize)]
pub struct ProofClaims {
    /// Unique per proof.
    pub jti: String,
    /// The request's method.
    pub htm: String,
    /// The request's URI without query and fragment.
    pub htu: String,
    /// Creation time, seconds since the epoch.
    pub iat: i64,
    /// The hash of the access token sent with the proof (resource requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ath: Option<String>,
    /// The server's nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl ProofClaims {
    /// Claims for `method` on `url`, made now, with a fresh `jti`.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            jti: fresh_id(),
            htm: method.to_owned(),
            htu: url.to_owned(),
            iat: now(),
            ath: None,
            nonce: None,
        }
    }

    /// With `ath` for `access_token`.
    pub fn for_token(mut self, access_token: &str) -> Self {
        self.ath = Some(ath(access_token));
        self
    }

    /// With the server's nonce.
    pub fn with_nonce(mut self, nonce: &str) -> Self {
        self.nonce = Some(nonce.to_owned());
        self
    }
}

/// The claims of a client assertion (RFC 7523 §3), filled in as a correct client would.
#[derive(Debug, Clone, Serialize)]
pub struct AssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id.
    pub sub: String,
    /// The authorization server's issuer or token endpoint.
    pub aud: Value,
    /// Unique per assertion.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Creation time.
    pub iat: i64,
}

impl AssertionClaims {
    /// Claims for `client_id` addressed to `audience`, valid for a minute.
    pub fn new(client_id: &str, audience: &str) -> Self {
        let now = now();
        Self {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud: json!(audience),
            jti: fresh_id(),
            exp: now + 60,
            iat: now,
        }
    }
}

/// `ath` (RFC 9449 §4.2): the base64url SHA-256 of an access token.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// An unsecured JWT (`alg: none`, RFC 7519 §6) with the given header members and claims: what
/// every verifier must refuse.
pub fn unsigned(header: Value, claims: &impl Serialize) -> String {
    let mut header = header;
    header["alg"] = json!("none");
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = serde_json::to_value(claims).expect("claims serialize");
    format!("{}.{}.", part(&header), part(&claims))
}

fn fresh_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}
