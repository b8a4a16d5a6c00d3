//! A client's registered public keys (a JWK Set) and the client assertions signed with them:
//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9).
//!
//! [`ClientKeys::verify`] does every check that needs no state: the header's asymmetric `alg`
//! (no `none`, no HMAC), the key by `kid` (or each key when there is none), the signature,
//! `iss` = `sub` = the client id, an accepted `aud`, `exp` in the future but not too far,
//! `nbf` and `iat` not ahead of the clock, and a `jti`. The single use of `jti` needs a store
//! every node shares, so the caller records [`Assertion::jti`] until [`Assertion::exp`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::dpop::ALGORITHMS;

/// The most keys a client may register.
const MAX_KEYS: usize = 20;

/// The longest an assertion may live: its `jti` is remembered that long.
pub const MAX_LIFETIME: i64 = 3600;

/// Members of a JWK that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A client's public keys, parsed once.
#[derive(Clone)]
pub struct ClientKeys {
    keys: Vec<ClientKey>,
}

#[derive(Clone)]
struct ClientKey {
    kid: Option<String>,
    key: DecodingKey,
    /// The DER of the first certificate of `x5c`, if any (RFC 7517 §4.7).
    certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("ClientKeys").field("kids", &kids).finish()
    }
}

/// Parses a client's JWK Set: 1 to 20 public keys (EC P-256, Ed25519 or RSA), no private
/// members. The message says what is wrong, for the person registering it.
pub fn parse_client_jwks(jwks: &Value) -> Result<ClientKeys, String> {
    let keys = jwks["keys"]
        .as_array()
        .ok_or("the jwks must be a JWK Set: an object with a \"keys\" array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("the jwks must hold 1 to {MAX_KEYS} keys"));
    }
    let parsed = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let object = k
                .as_object()
                .ok_or(format!("key {i} of the jwks is not an object"))?;
            if PRIVATE_MEMBERS.iter().any(|m| object.contains_key(*m)) {
                return Err(format!(
                    "key {i} of the jwks holds private or symmetric key material; register \
                     only public keys"
                ));
            }
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(k.clone())
                .map_err(|e| format!("key {i} of the jwks is not a JWK: {e}"))?;
            let key = DecodingKey::from_jwk(&jwk)
                .map_err(|e| format!("key {i} of the jwks cannot verify signatures: {e}"))?;
            let certificate = k["x5c"][0]
                .as_str()
                .map(|c| {
                    base64::engine::general_purpose::STANDARD
                        .decode(c)
                        .map_err(|_| format!("key {i}'s x5c is not base64 DER"))
                })
                .transpose()?;
            Ok(ClientKey {
                kid: k["kid"].as_str().map(str::to_owned),
                key,
                certificate,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ClientKeys { keys: parsed })
}

/// What an assertion must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The client id: `iss` and `sub`.
    pub client_id: &'a str,
    /// Audiences the server accepts: its issuer and the URL of the endpoint (RFC 7523 §3
    /// point 3; RFC 9126 §2).
    pub audiences: &'a [&'a str],
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// Clock skew allowed, in seconds.
    pub leeway: i64,
}

/// An assertion that passed [`ClientKeys::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Its unique id, for the caller's replay check.
    pub jti: String,
    /// Its expiry: the replay record may go after this.
    pub exp: i64,
}

/// Why an assertion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Its header names a key the registered set does not hold: a cached `jwks_uri` may be
    /// stale, so the caller may fetch it again and retry.
    #[error("the client assertion's key is not among the client's keys")]
    UnknownKey,
    /// Not an assertion the server accepts; the text says which check failed.
    #[error("{0}")]
    Invalid(&'static str),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[&str]) -> bool {
        match self {
            Audience::One(a) => accepted.contains(&a.as_str()),
            Audience::Many(all) => all.iter().any(|a| accepted.contains(&a.as_str())),
        }
    }
}

impl ClientKeys {
    /// True when a key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// DER certificates registered in `x5c` (RFC 8705 §2.2: self-signed client certificates).
    pub fn certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().filter_map(|k| k.certificate.as_deref())
    }

    /// Checks a client assertion (module docs).
    pub fn verify(&self, jwt: &str, expected: &Expected<'_>) -> Result<Assertion, AssertionError> {
        use AssertionError::Invalid;
        let header = jwt
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .ok_or(Invalid("the client assertion is not a JWT"))?;
        let alg = header["alg"]
            .as_str()
            .filter(|a| ALGORITHMS.contains(a))
            .and_then(|a| a.parse::<Algorithm>().ok())
            .ok_or(Invalid(
                "the client assertion's alg must be ES256, EdDSA, RS256 or PS256",
            ))?;
        let candidates: Vec<&ClientKey> = match header["kid"].as_str() {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => self.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(AssertionError::UnknownKey);
        }
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = candidates
            .iter()
            .find_map(|k| jsonwebtoken::decode::<Claims>(jwt, &k.key, &validation).ok())
            .ok_or(Invalid(
                "the client assertion's signature does not verify with the client's keys, or \
                 its claims are malformed",
            ))?
            .claims;
        if claims.iss != expected.client_id || claims.sub != expected.client_id {
            return Err(Invalid(
                "the client assertion's iss and sub must both be the client id",
            ));
        }
        if !claims.aud.contains_any(expected.audiences) {
            return Err(Invalid(
                "the client assertion's aud must be the issuer or this endpoint's URL",
            ));
        }
        let now = expected.now;
        if claims.exp <= now - expected.leeway {
            return Err(Invalid("the client assertion has expired"));
        }
        if claims.exp > now + MAX_LIFETIME {
            return Err(Invalid(
                "the client assertion's exp is more than an hour ahead",
            ));
        }
        if claims.nbf.is_some_and(|t| t > now + expected.leeway)
            || claims.iat.is_some_and(|t| t > now + expected.leeway)
        {
            return Err(Invalid("the client assertion is not valid yet"));
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 512)
            .ok_or(Invalid("the client assertion needs a jti"))?;
        Ok(Assertion {
            jti,
            exp: claims.exp,
        })
    }
}
