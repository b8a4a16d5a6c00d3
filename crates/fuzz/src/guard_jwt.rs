//! The resource-server guard: `calyx_guard::Guard::validate` (RFC 9068 §4, RFC 7519).
//!
//! The first byte picks a mode (its value modulo 3, so `0`, `1` and `2` in a text file work):
//!
//! - `0`: the rest is the token as it arrives. Nothing the fuzzer writes carries a signature of
//!   the harness key unless it copied one from the corpus, so an accepted token must carry
//!   exactly the signature that key makes over its first two segments (Ed25519 signatures are
//!   deterministic), as well as pass every claim check below.
//! - `1`: the rest is the claims JSON. The harness signs it with [`calyx_token::SigningKey`] (the
//!   header the server uses), so the claim checks are fuzzed behind a valid signature, and the
//!   answer is compared with a model of the rules in both directions.
//! - `2`: the rest is a JWS header JSON, `\n`, then the claims JSON, both signed as they are
//!   with the same key: the header checks (`alg`, `typ`, `kid`) behind a valid signature.
//!
//! The guard under test has its verified-token cache off, so every input is validated in full;
//! a second guard with the cache on must give the same answer, twice (the second is a hit).
//!
//! Time: expiry is checked against the system clock (by jsonwebtoken). The properties read the
//! clock before and after validating and only insist where the answer is the same anywhere in
//! between, so a replay never depends on when it runs. Seeds use `exp` 4102444800 (2100).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_guard::{Guard, GuardConfig, GuardError, Verified};
use calyx_token::{SigningAlg, SigningKey};
use serde_json::{json, Value};

/// The issuer the guard requires.
pub const ISSUER: &str = "https://auth.calyx.test";
/// The audience the guard requires.
pub const AUDIENCE: &str = "https://api.calyx.test/";
const LEEWAY: i64 = 30;

struct Harness {
    rt: tokio::runtime::Runtime,
    /// Cache off: validates every token in full.
    guard: Guard,
    /// Cache on: must agree with `guard`, on a miss and on a hit.
    cached: Guard,
    key: SigningKey,
    pair: Ed25519KeyPair,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        // A fixed Ed25519 key (RFC 8410 PKCS#8 v1 around a constant seed), so that signatures,
        // the `kid` and therefore the corpus mean the same in every run.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(b"calyx fuzz: a fixed Ed25519 key.");
        let key = SigningKey::from_pkcs8(SigningAlg::EdDSA, &der).expect("the fixed key");
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("the fixed key");
        let jwks = serde_json::from_value(json!({ "keys": [key.public_jwk()] })).expect("JWKS");
        let mut cfg = GuardConfig::new(ISSUER, AUDIENCE);
        cfg.leeway = Duration::from_secs(LEEWAY as u64);
        // Never fetch: an unknown `kid` is refused at once instead of going to the network.
        cfg.jwks_uri = Some("http://127.0.0.1:9/jwks.json".into());
        cfg.min_refetch_interval = Duration::MAX;
        cfg.cache_capacity = 0;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _entered = rt.enter();
        let guard = Guard::from_jwks(cfg.clone(), &jwks);
        cfg.cache_capacity = 1024;
        let cached = Guard::from_jwks(cfg, &jwks);
        drop(_entered);
        Harness {
            rt,
            guard,
            cached,
            key,
            pair,
        }
    })
}

/// The `kid` of the harness key.
pub fn kid() -> &'static str {
    harness().key.kid()
}

/// `claims` signed by the harness key with the server's header, as the server would issue it.
pub fn sign_claims(claims: &Value) -> String {
    harness().key.sign(claims).expect("signing")
}

/// `header` and `payload` signed as they are (compact JWS over their base64url forms).
pub fn sign_raw(header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let sig = harness().pair.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
    token
}

/// The header the server signs with: `{"alg":"EdDSA","kid":…,"typ":"at+jwt"}`.
pub fn server_header() -> Vec<u8> {
    serde_json::to_vec(&json!({"alg": "EdDSA", "kid": kid(), "typ": "at+jwt"})).expect("JSON")
}

/// Validates one token; panics when a property fails.
pub fn guard_jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = validate(&String::from_utf8_lossy(rest), None);
        }
        1 => match serde_json::from_slice::<Value>(rest) {
            Ok(claims) => {
                let _ = validate(&sign_claims(&claims), Some(&claims));
            }
            Err(_) => {
                // Behind a good signature, claims that are not JSON are still refused.
                let token = sign_raw(&server_header(), rest);
                assert!(validate(&token, None).is_err(), "accepted: {token}");
            }
        },
        _ => {
            let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (rest[..i].to_vec(), &rest[i + 1..]),
                None => (server_header(), rest),
            };
            let _ = validate(&sign_raw(&header, payload), None);
        }
    }
}

/// What the model says of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject(&'static str),
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The model of the claim rules (RFC 9068 §4, Calyx's guard docs): `iss` is exactly the issuer
/// (a string), `aud` is the audience or an array of strings holding it, `sub` is a string,
/// `exp` an integer that has not passed at `now` (with leeway), `nbf` absent or a number that
/// has.
fn expect(claims: &Value, now: i64) -> Expect {
    let Some(c) = claims.as_object() else {
        return Expect::Reject("claims are not an object");
    };
    if c.get("iss") != Some(&json!(ISSUER)) {
        return Expect::Reject("iss is not the issuer");
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(a)) => a.iter().all(Value::is_string) && a.iter().any(|v| v == AUDIENCE),
        _ => false,
    };
    if !aud_ok {
        return Expect::Reject("aud does not hold the audience");
    }
    if !c.get("sub").is_some_and(Value::is_string) {
        return Expect::Reject("sub is not a string");
    }
    // A Bearer presentation with no client certificate: a token bound to a DPoP key (any
    // `cnf.jkt`) or to a certificate (any `cnf.x5t#S256`) is refused, and so is a `cnf` that
    // is not an object (RFC 9449 §7.2, RFC 8705 §3, RFC 7800 §3.1).
    match c.get("cnf") {
        None => {}
        Some(Value::Object(cnf)) if !cnf.contains_key("jkt") && !cnf.contains_key("x5t#S256") => {}
        Some(Value::Object(_)) => return Expect::Reject("bound to a key or certificate"),
        Some(_) => return Expect::Reject("cnf is not an object"),
    }
    let Some(exp) = c
        .get("exp")
        .and_then(Value::as_u64)
        .and_then(|e| i64::try_from(e).ok())
    else {
        return Expect::Reject("exp is not a non-negative 64-bit integer");
    };
    if exp < now - LEEWAY {
        return Expect::Reject("expired");
    }
    match c.get("nbf") {
        None => Expect::Accept,
        Some(Value::Number(n)) => {
            // jsonwebtoken reads a non-negative integer, or a float that it rounds.
            let nbf = match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => u as f64,
                (None, Some(f)) if f >= 0.0 && f < u64::MAX as f64 => f.round(),
                _ => return Expect::Reject("nbf is not a non-negative number"),
            };
            if nbf > (now + LEEWAY) as f64 {
                Expect::Reject("not yet valid")
            } else {
                Expect::Accept
            }
        }
        Some(_) => Expect::Reject("nbf is not a number"),
    }
}

/// Validates `token` with both guards and checks the answers; `claims`, when given, are what
/// was signed, for the model. Returns the answer of the guard without a cache.
fn validate(token: &str, claims: Option<&Value>) -> Result<(), GuardError> {
    let h = harness();
    let before = now();
    let fresh = h.rt.block_on(h.guard.validate(token));
    let miss = h.rt.block_on(h.cached.validate(token));
    let hit = h.rt.block_on(h.cached.validate(token));
    let after = now();

    // The guard read the clock somewhere between `before` and `after`: the model insists only
    // where it answers the same at both ends.
    if let Some(claims) = claims {
        let (a, b) = (expect(claims, before), expect(claims, after));
        if a == b {
            match (&fresh, a) {
                (Ok(_), Expect::Reject(why)) => panic!("accepted, but {why}: {token}"),
                (Err(e), Expect::Accept) => {
                    panic!("refused ({e}), but every claim is good: {token}")
                }
                _ => {}
            }
        }
    }
    for v in [&fresh, &miss, &hit].into_iter().flatten() {
        check_accepted(token, v, before, after);
    }
    // The cache changes nothing but speed: the same answer on a miss and on a hit, unless
    // the clock crossed `exp` or `nbf` in between.
    if !near_time_boundary(token, before, after) {
        let reason = |r: &Result<_, GuardError>| r.as_ref().err().cloned();
        assert_eq!(reason(&fresh), reason(&miss), "cache miss differs: {token}");
        assert_eq!(reason(&fresh), reason(&hit), "cache hit differs: {token}");
    }
    fresh.map(|_| ())
}

/// True when the token's `exp` or `nbf` (leeway applied) falls within a second of the time
/// the guards were running, so that their answers may differ.
fn near_time_boundary(token: &str, before: i64, after: i64) -> bool {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok());
    let Some(claims) = claims else {
        return false;
    };
    let near = |t: f64| t >= (before - 1) as f64 && t <= (after + 1) as f64;
    let at = |name: &str| claims.get(name).and_then(Value::as_f64).map(f64::round);
    at("exp").is_some_and(|e| near(e + LEEWAY as f64))
        || at("nbf").is_some_and(|n| near(n - LEEWAY as f64))
}

/// What every accepted token must be: signed by the harness key over exactly what was read,
/// with the header and claims the guard requires, and handed to the application unchanged.
fn check_accepted(token: &str, v: &Verified, before: i64, after: i64) {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        panic!("accepted without three segments: {token}");
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .unwrap_or_else(|e| panic!("accepted a segment that is not base64url ({e}): {token}"))
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    assert_eq!(
        decode(signature),
        harness().pair.sign(signing_input.as_bytes()).as_ref(),
        "accepted a signature the key did not make: {token}"
    );

    let header: Value = serde_json::from_slice(&decode(header)).expect("header JSON");
    assert_eq!(header["alg"], "EdDSA", "{token}");
    assert_eq!(header["kid"], kid(), "{token}");
    let typ = header["typ"].as_str().unwrap_or("").to_ascii_lowercase();
    assert!(
        typ == "at+jwt" || typ == "application/at+jwt",
        "typ {typ:?} accepted: {token}"
    );

    let claims: serde_json::Map<String, Value> =
        serde_json::from_slice(&decode(payload)).expect("claims JSON");
    assert_eq!(
        v.claims, claims,
        "the application sees other claims than were signed"
    );
    assert_eq!(claims.get("iss"), Some(&json!(ISSUER)), "iss: {token}");
    match &claims["aud"] {
        Value::String(a) => assert_eq!(a, AUDIENCE, "{token}"),
        Value::Array(a) => assert!(a.iter().any(|x| x == AUDIENCE), "{token}"),
        other => panic!("aud {other} accepted: {token}"),
    }
    assert!(claims["sub"].is_string(), "{token}");
    assert_eq!(claims["exp"].as_i64(), Some(v.exp), "{token}");
    assert!(
        v.exp.saturating_add(LEEWAY) >= before,
        "expired token accepted: {token}"
    );
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_f64().expect("a numeric nbf");
        assert!(
            nbf >= 0.0 && nbf.round() <= (after + LEEWAY) as f64,
            "token not yet valid accepted: {token}"
        );
    }
    let scopes: std::collections::HashSet<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(v.scopes, scopes, "{token}");
    assert_eq!(v.subject(), claims["sub"].as_str());
}
