//! DPoP proofs (RFC 9449 §4): the checks a server makes of one before it binds a token to the
//! proof's key or accepts a token bound to it.
//!
//! [`verify`] does every check of RFC 9449 §4.3 that needs no state: one JWT with
//! `typ: dpop+jwt`, an asymmetric `alg`, a public `jwk` (no private members) whose signature
//! verifies, `htm` and `htu` naming this request, `iat` within the window, `ath` for the
//! presented access token and the server's nonce when it gave one. The single use of `jti`
//! (point 12) needs a store shared by every node, so the caller records the returned
//! [`Proof::jti`] for as long as `iat` keeps the proof acceptable.

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the request a proof came with must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method (`htm`).
    pub method: &'a str,
    /// The request's URI; its query and fragment are ignored (`htu`).
    pub uri: &'a str,
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// How old a proof may be, in seconds.
    pub max_age: i64,
    /// How far ahead of `now` a proof's `iat` may be (clock skew), in seconds.
    pub leeway: i64,
    /// The access token presented with the proof, whose hash `ath` must carry.
    pub access_token: Option<&'a str>,
    /// The nonce the server asked for (`DPoP-Nonce`), which `nonce` must carry.
    pub nonce: Option<&'a str>,
}

/// A proof that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key: a bound token's `cnf.jkt`.
    pub jkt: String,
    /// The proof's unique id, for the caller's replay check.
    pub jti: String,
    /// When the proof was made.
    pub iat: i64,
    /// The nonce it carries, if any (checked against [`Expected::nonce`] when that is set).
    pub nonce: Option<String>,
}

/// Why a proof was refused. [`DpopError::UseNonce`] asks the client to retry with the
/// server's nonce (`use_dpop_nonce`); every other case is `invalid_dpop_proof`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Not a DPoP proof the server accepts; the text says which check failed.
    #[error("{0}")]
    Invalid(&'static str),
    /// The server's nonce is missing or another one was sent.
    #[error("the proof must carry the server's DPoP nonce")]
    UseNonce,
}

/// The signing algorithms accepted in proofs: asymmetric, as RFC 9449 §4.3 requires.
pub const ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

/// Members of a JWK that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks `proof` against the request described by `expected` (RFC 9449 §4.3, all but the
/// `jti` replay check, which is the caller's).
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, DpopError> {
    let invalid = DpopError::Invalid;
    let header = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .ok_or(invalid("the DPoP proof is not a JWT"))?;
    if header["typ"] != "dpop+jwt" {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg = header["alg"]
        .as_str()
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or(invalid(
            "the DPoP proof's alg is not an accepted asymmetric algorithm",
        ))?;
    let alg: Algorithm = alg
        .parse()
        .map_err(|_| invalid("the DPoP proof's alg is not supported"))?;
    let jwk = header["jwk"]
        .as_object()
        .ok_or(invalid("the DPoP proof has no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("the DPoP proof's jwk holds a private key"));
    }
    let jkt = thumbprint(&header["jwk"]).ok_or(invalid("the DPoP proof's jwk is malformed"))?;
    let key = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(header["jwk"].clone())
        .ok()
        .and_then(|k| DecodingKey::from_jwk(&k).ok())
        .ok_or(invalid("the DPoP proof's jwk is malformed"))?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|_| invalid("the DPoP proof's signature or claims are invalid"))?
        .claims;
    if claims.htm != expected.method {
        return Err(invalid("the DPoP proof's htm is not this request's method"));
    }
    if !same_target(&claims.htu, expected.uri) {
        return Err(invalid("the DPoP proof's htu is not this request's URI"));
    }
    if claims.iat < expected.now - expected.max_age || claims.iat > expected.now + expected.leeway {
        return Err(invalid(
            "the DPoP proof's iat is outside the accepted window",
        ));
    }
    if let Some(token) = expected.access_token {
        if claims.ath.as_deref() != Some(token_hash(token).as_str()) {
            return Err(invalid(
                "the DPoP proof's ath does not match the access token",
            ));
        }
    }
    if let Some(nonce) = expected.nonce {
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(DpopError::UseNonce);
        }
    }
    if claims.jti.is_empty() {
        return Err(invalid("the DPoP proof has no jti"));
    }
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required members in
/// lexicographic order, without spaces.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let member = |name: &str| jwk[name].as_str().map(str::to_owned);
    let required = match jwk["kty"].as_str()? {
        "EC" => json!({"crv": member("crv")?, "kty": "EC", "x": member("x")?, "y": member("y")?}),
        "OKP" => json!({"crv": member("crv")?, "kty": "OKP", "x": member("x")?}),
        "RSA" => json!({"e": member("e")?, "kty": "RSA", "n": member("n")?}),
        _ => return None,
    };
    // serde_json's map is ordered, so this is the canonical form.
    let canonical = serde_json::to_vec(&required).ok()?;
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, &canonical)))
}

/// Whether `htu` names `uri`, query and fragment aside, after RFC 3986 §6.2.2–6.2.3
/// normalisation (case of scheme and host, default port, empty path).
fn same_target(htu: &str, uri: &str) -> bool {
    let target = |s: &str| {
        let mut u = url::Url::parse(s).ok()?;
        u.set_query(None);
        u.set_fragment(None);
        Some(u)
    };
    matches!((target(htu), target(uri)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    const URI: &str = "https://as.example.com/oauth/token";
    const NOW: i64 = 1_800_000_000;

    fn key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref()).unwrap()
    }

    fn public_jwk(key: &EcdsaKeyPair) -> Value {
        let point = key.public_key().as_ref();
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
    }

    /// A proof signed by `signer` whose header and claims are as given: built here with
    /// aws-lc-rs, not with the verifier's JOSE library.
    fn proof(signer: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", b64(&header), b64(&claims));
        let sig = signer.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn header(key: &EcdsaKeyPair) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)})
    }

    fn claims() -> Value {
        json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URI, "iat": NOW})
    }

    fn expected() -> Expected<'static> {
        Expected {
            method: "POST",
            uri: URI,
            now: NOW,
            max_age: 60,
            leeway: 5,
            access_token: None,
            nonce: None,
        }
    }

    #[test]
    fn a_good_proof_gives_its_key_thumbprint_and_jti() {
        let k = key();
        let p = proof(&k, header(&k), claims());
        let got = verify(&p, &expected()).unwrap();
        assert_eq!(got.jkt, thumbprint(&public_jwk(&k)).unwrap());
        assert_eq!(got.jti, "e1j3V_bKic8-LAEB");
        // htu may differ in query, fragment, host case and default port.
        let mut c = claims();
        c["htu"] = json!("https://AS.example.com:443/oauth/token?x=1#f");
        assert!(verify(&proof(&k, header(&k), c), &expected()).is_ok());
    }

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_refusal_rfc_9449_names() {
        let k = key();
        let other = key();
        let with = |f: &dyn Fn(&mut Value, &mut Value)| {
            let (mut h, mut c) = (header(&k), claims());
            f(&mut h, &mut c);
            proof(&k, h, c)
        };
        let cases: Vec<(&str, String)> = vec![
            ("typ", with(&|h, _| h["typ"] = json!("JWT"))),
            ("alg none", with(&|h, _| h["alg"] = json!("none"))),
            ("alg HS256", with(&|h, _| h["alg"] = json!("HS256"))),
            ("no jwk", with(&|h, _| h["jwk"] = Value::Null)),
            ("private jwk", with(&|h, _| h["jwk"]["d"] = json!("AAAA"))),
            ("wrong key", with(&|h, _| h["jwk"] = public_jwk(&other))),
            ("htm", with(&|_, c| c["htm"] = json!("GET"))),
            (
                "htu",
                with(&|_, c| c["htu"] = json!("https://as.example.com/oauth/par")),
            ),
            (
                "htu host",
                with(&|_, c| c["htu"] = json!("https://evil.example/oauth/token")),
            ),
            ("stale iat", with(&|_, c| c["iat"] = json!(NOW - 61))),
            ("future iat", with(&|_, c| c["iat"] = json!(NOW + 6))),
            ("no jti", with(&|_, c| c["jti"] = json!(""))),
            ("no iat", with(&|_, c| c["iat"] = Value::Null)),
            ("not a JWT", "abc".to_owned()),
        ];
        for (what, p) in cases {
            assert!(
                matches!(verify(&p, &expected()), Err(DpopError::Invalid(_))),
                "{what} was accepted"
            );
        }
    }

    #[test]
    fn ath_and_nonce_bind_the_proof_to_a_token_and_a_server_challenge() {
        let k = key();
        let token = "eyJhbGciOiJFUzI1NiJ9.e30.sig";
        let mut c = claims();
        c["ath"] = json!(token_hash(token));
        c["nonce"] = json!("n-0S6_WzA2Mj");
        let p = proof(&k, header(&k), c);
        let bound = Expected {
            access_token: Some(token),
            nonce: Some("n-0S6_WzA2Mj"),
            ..expected()
        };
        assert!(verify(&p, &bound).is_ok());
        let other_token = Expected {
            access_token: Some("another.token.here"),
            ..bound
        };
        assert!(matches!(
            verify(&p, &other_token),
            Err(DpopError::Invalid(_))
        ));
        let new_nonce = Expected {
            nonce: Some("fresh"),
            ..bound
        };
        assert_eq!(verify(&p, &new_nonce), Err(DpopError::UseNonce));
        let no_nonce = proof(&k, header(&k), claims());
        let nonce_asked = Expected {
            nonce: Some("n-0S6_WzA2Mj"),
            ..expected()
        };
        assert_eq!(verify(&no_nonce, &nonce_asked), Err(DpopError::UseNonce));
    }
}
