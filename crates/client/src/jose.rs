//! The one ES256 (P-256, RFC 7518 §3.4) key the client signs with, for DPoP proofs and client
//! assertions alike: aws-lc-rs signs, the public JWK and its RFC 7638 thumbprint are worked out
//! once when the key is loaded.
//!
//! Hand-written rather than through a JOSE crate: a compact JWS is two base64url parts and a
//! signature over them, and the JOSE crates (jsonwebtoken) parse the PKCS#8 key on every call.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::Error;

/// A P-256 key pair with its public JWK (`kty`, `crv`, `x`, `y`) and thumbprint.
pub(crate) struct Es256Key {
    pair: EcdsaKeyPair,
    jwk: Value,
    thumbprint: String,
}

impl Es256Key {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<Es256Key, Error> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| Error::Key("generating a P-256 key failed".into()))?;
        Self::from_pair(pair)
    }

    /// A key from PKCS#8 DER (RFC 5208/5958), which must hold a P-256 key.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Es256Key, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| Error::Key("not a PKCS#8 P-256 private key".into()))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: EcdsaKeyPair) -> Result<Es256Key, Error> {
        // The uncompressed point (SEC 1 §2.3.3): 0x04, then x and y of 32 bytes each.
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::Key("unexpected P-256 public key encoding".into()));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        // RFC 7638 §3.2: the required members in lexicographic order, no whitespace. x and y
        // are base64url, so nothing needs escaping.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        Ok(Es256Key {
            pair,
            jwk,
            thumbprint,
        })
    }

    /// The private key as PKCS#8 v1 DER, to store it.
    pub(crate) fn to_pkcs8(&self) -> Result<Vec<u8>, Error> {
        self.pair
            .to_pkcs8v1()
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| Error::Key("serializing the key failed".into()))
    }

    /// The public key as a JWK: `kty`, `crv`, `x`, `y` and nothing else.
    pub(crate) fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url.
    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A compact JWS: `header` (already base64url) and `claims`, signed with ES256.
    pub(crate) fn sign(&self, header: &str, claims: &Value) -> Result<String, Error> {
        let mut jws = String::with_capacity(header.len() + 512);
        jws.push_str(header);
        jws.push('.');
        let claims = serde_json::to_vec(claims).map_err(|e| Error::Key(e.to_string()))?;
        URL_SAFE_NO_PAD.encode_string(claims, &mut jws);
        // FIXED signing: r and s, 32 bytes each, as RFC 7518 §3.4 wants (not DER).
        let signature = self
            .pair
            .sign(&SystemRandom::new(), jws.as_bytes())
            .map_err(|_| Error::Key("signing failed".into()))?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(jws)
    }
}

/// A JOSE header, base64url-encoded.
pub(crate) fn encode_header(header: &Value) -> String {
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// Seconds since the epoch by the local clock (0 if the clock is before 1970).
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
