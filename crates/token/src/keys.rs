//! Signing keys and the JWKS.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::AccessClaims;
use serde_json::json;

pub use calyx_core::model::SigningAlg;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The stored key is not a valid PKCS#8 key of its algorithm.
    #[error("signing key {kid} is not a valid {alg} PKCS#8 key")]
    BadKey {
        /// Key id.
        kid: String,
        /// Algorithm it claims.
        alg: &'static str,
    },
    /// The crypto library failed (key generation or signing).
    #[error("cryptographic operation failed")]
    Crypto,
    /// The claims could not be serialized.
    #[error("serializing claims: {0}")]
    Claims(#[from] serde_json::Error),
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A parsed private key with its precomputed JWS header and public JWK.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: Pair,
    header_b64: String,
    jwk: serde_json::Value,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl SigningKey {
    /// Generates a new key; returns its PKCS#8 DER (to store) alongside the parsed key.
    pub fn generate(alg: SigningAlg) -> Result<(Vec<u8>, SigningKey), TokenError> {
        let rng = SystemRandom::new();
        let der = match alg {
            SigningAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| TokenError::Crypto)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| TokenError::Crypto)?
                .as_ref()
                .to_vec(),
            SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(|_| TokenError::Crypto)?
                .as_ref()
                .to_vec(),
        };
        let key = SigningKey::from_pkcs8(alg, &der)?;
        Ok((der, key))
    }

    /// Parses a PKCS#8 DER key. The key id is the RFC 7638 thumbprint of the public key, so
    /// the same key always has the same `kid` on every node.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<SigningKey, TokenError> {
        let bad = || TokenError::BadKey {
            kid: String::new(),
            alg: alg.as_str(),
        };
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let (pair, members) = match alg {
            SigningAlg::ES256 => {
                let p = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| bad())?;
                // Uncompressed SEC1 point: 0x04 || X (32) || Y (32).
                let point = p.public_key().as_ref().to_vec();
                if point.len() != 65 {
                    return Err(bad());
                }
                let m = json!({"crv": "P-256", "kty": "EC", "x": b64(&point[1..33]), "y": b64(&point[33..])});
                (Pair::Ec(p), m)
            }
            SigningAlg::EdDSA => {
                let p = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| bad())?;
                let m = json!({"crv": "Ed25519", "kty": "OKP", "x": b64(p.public_key().as_ref())});
                (Pair::Ed(p), m)
            }
            SigningAlg::RS256 => {
                let p = RsaKeyPair::from_pkcs8(der).map_err(|_| bad())?;
                let public = p.public_key();
                let m = json!({
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                });
                (Pair::Rsa(p), m)
            }
        };
        let kid = crate::dpop::thumbprint(&members).ok_or_else(bad)?;
        let mut jwk = members;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        let header = json!({"alg": alg.as_str(), "kid": kid, "typ": "at+jwt"});
        let header_b64 = b64(&serde_json::to_vec(&header)?);
        Ok(SigningKey {
            kid,
            alg,
            pair,
            header_b64,
            jwk,
            rng: SystemRandom::new(),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public JWK (RFC 7517), with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// Signs `claims` as a compact JWS with header `{"alg","kid","typ":"at+jwt"}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, TokenError> {
        let payload = serde_json::to_vec(claims)?;
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 360);
        out.push_str(&self.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let signing_input = out.as_bytes();
        match &self.pair {
            Pair::Ec(p) => {
                let sig = p
                    .sign(&self.rng, signing_input)
                    .map_err(|_| TokenError::Crypto)?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut out);
            }
            Pair::Ed(p) => {
                let sig = p.sign(signing_input);
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut out);
            }
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &self.rng, signing_input, &mut sig)
                    .map_err(|_| TokenError::Crypto)?;
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(&sig, &mut out);
            }
        }
        Ok(out)
    }
}

/// The keys in force. The newest signing key of each algorithm signs; every key is published,
/// so that tokens signed before a rotation keep verifying and the *next* keys (published,
/// not yet signing) are known to resource servers before a rotation makes them sign.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    signers: Vec<Arc<SigningKey>>,
    verifiers: Vec<(String, jsonwebtoken::Algorithm, jsonwebtoken::DecodingKey)>,
    jwks: Arc<str>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("keys", &self.keys).finish()
    }
}

/// Why a presented token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a JWS, unknown `kid`, wrong `typ`, bad signature or expired.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
}

impl KeySet {
    /// Builds the set from keys given oldest first, every one of them able to sign.
    pub fn new(keys: Vec<SigningKey>) -> KeySet {
        KeySet::with_next(keys, Vec::new())
    }

    /// Builds the set from the signing keys (oldest promotion first) and the next keys, which
    /// are published but never sign.
    pub fn with_next(signing: Vec<SigningKey>, next: Vec<SigningKey>) -> KeySet {
        let signers: Vec<Arc<SigningKey>> = signing.into_iter().map(Arc::new).collect();
        let keys: Vec<Arc<SigningKey>> = signers
            .iter()
            .cloned()
            .chain(next.into_iter().map(Arc::new))
            .collect();
        let jwks = json!({"keys": keys.iter().rev().map(|k| k.public_jwk()).collect::<Vec<_>>()});
        let verifiers = keys
            .iter()
            .filter_map(|k| {
                let jwk: jsonwebtoken::jwk::Jwk =
                    serde_json::from_value(k.public_jwk().clone()).ok()?;
                let alg = match k.alg {
                    SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
                    SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
                    SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
                };
                Some((
                    k.kid.clone(),
                    alg,
                    jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?,
                ))
            })
            .collect();
        KeySet {
            keys,
            signers,
            verifiers,
            jwks: jwks.to_string().into(),
        }
    }

    /// Verifies a token this server signed: known `kid`, the key's own algorithm, `typ`
    /// `at+jwt`, signature, and `exp` against `now` (the caller's clock, no leeway). Issuer and
    /// audience are the caller's to check.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, VerifyError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid("not a JWS"))?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(VerifyError::Invalid("not an RFC 9068 access token"));
        }
        let kid = header.kid.ok_or(VerifyError::Invalid("no kid"))?;
        let (_, alg, key) = self
            .verifiers
            .iter()
            .find(|(k, _, _)| *k == kid)
            .ok_or(VerifyError::Invalid("unknown kid"))?;
        if header.alg != *alg {
            return Err(VerifyError::Invalid("algorithm does not match the key"));
        }
        let mut v = jsonwebtoken::Validation::new(*alg);
        v.validate_aud = false;
        // Expiry is checked below against the caller's clock, not the system's.
        v.validate_exp = false;
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &v)
            .map(|d| d.claims)
            .map_err(|_| VerifyError::Invalid("bad signature"))?;
        if claims.exp <= now {
            return Err(VerifyError::Invalid("expired"));
        }
        Ok(claims)
    }

    /// The key that signs for `alg`: the most recently promoted of that algorithm.
    pub fn signer(&self, alg: SigningAlg) -> Option<&Arc<SigningKey>> {
        self.signers.iter().rev().find(|k| k.alg == alg)
    }

    /// The JWKS document (RFC 7517 §5): next keys first, then the signing keys, newest first.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }
}
