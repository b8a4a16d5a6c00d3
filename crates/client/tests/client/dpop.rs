//! DPoP (RFC 9449) from the client's side, against the in-test mock server.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_client::{
    AuthMethod, AuthorizationRequest, Credentials, DpopKey, Error, RefreshSession, TokenSource,
    TokenType,
};
use jwt_compact::jwk::JsonWebKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mock::{verified, verifying_key, Mock};
use crate::MemoryStore;

const AUD: &str = "https://api.client.test/";

fn secret_creds() -> Credentials {
    Credentials {
        client_id: "c1".into(),
        client_secret: Some("s1".into()),
        method: AuthMethod::Basic,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The header and claims of `proof`, checked the way RFC 9449 §4.3 has a server check them:
/// the ES256 signature against the header's own `jwk`, `typ`, the key being public only, and
/// the key being `key`'s (by an independently computed RFC 7638 thumbprint).
fn check_proof(proof: &str, key: &DpopKey) -> (Value, Value) {
    let (header, _) = calyx_testkit::jwt_parts(proof);
    let (header, claims) = verified(proof, &header["jwk"]);
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwk = header["jwk"].as_object().unwrap();
    let mut members: Vec<_> = jwk.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(
        members,
        ["crv", "kty", "x", "y"],
        "the public key and nothing else"
    );
    let independent = JsonWebKey::from(&verifying_key(&header["jwk"])).thumbprint::<Sha256>();
    assert_eq!(key.thumbprint(), URL_SAFE_NO_PAD.encode(independent));
    assert_eq!(&header["jwk"], key.public_jwk());
    (header, claims)
}

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[test]
fn a_proof_has_the_header_and_claims_of_rfc_9449_and_a_signature_p256_verifies() {
    let key = DpopKey::generate().unwrap();
    let proof = key
        .proof("POST", "https://AS.example.com:443/token?x=1#frag", None)
        .unwrap();
    let (_, claims) = check_proof(&proof, &key);
    let mut members: Vec<_> = claims.as_object().unwrap().keys().cloned().collect();
    members.sort_unstable();
    assert_eq!(members, ["htm", "htu", "iat", "jti"], "no ath, no nonce");
    assert_eq!(claims["htm"], "POST");
    assert_eq!(
        claims["htu"], "https://as.example.com/token",
        "without query and fragment (and normalised)"
    );
    assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 2);
    let jti = claims["jti"].as_str().unwrap();
    assert!(
        URL_SAFE_NO_PAD.decode(jti).unwrap().len() >= 12,
        "at least 96 bits"
    );

    // Another proof: another jti. With a token and a nonce: ath and nonce.
    let other = key
        .proof_with_nonce(
            "GET",
            "https://rs.example.com/v1/x",
            Some("tok"),
            Some("n-1"),
        )
        .unwrap();
    let (_, other) = check_proof(&other, &key);
    assert_ne!(other["jti"], claims["jti"]);
    assert_eq!(other["ath"], ath("tok"));
    assert_eq!(other["nonce"], "n-1");
    assert_eq!(other["htm"], "GET");

    // A key stored and loaded again is the same key.
    let again = DpopKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
    assert_eq!(again.thumbprint(), key.thumbprint());
    let (_, _) = check_proof(&again.proof("GET", "https://a.test/", None).unwrap(), &key);
    assert_ne!(DpopKey::generate().unwrap().thumbprint(), key.thumbprint());
    assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(key.to_pkcs8().unwrap())));
}

#[test]
fn bad_keys_and_urls_are_typed_errors() {
    assert!(matches!(
        DpopKey::from_pkcs8(b"not a key"),
        Err(Error::Key(_))
    ));
    let key = DpopKey::generate().unwrap();
    assert!(matches!(
        key.proof("GET", "not a url", None),
        Err(Error::InvalidUrl(_))
    ));
    assert_eq!(key.nonce_for("not a url"), None);
}

#[tokio::test]
async fn the_token_source_retries_once_with_the_servers_nonce_and_uses_the_latest_one_next() {
    let mock = Mock::start().await;
    mock.require_as_nonce("as-first");
    mock.rotate_as_nonce();
    let key = DpopKey::generate().unwrap();
    let source = TokenSource::new(reqwest::Client::new(), mock.endpoints(), secret_creds())
        .with_dpop(key.clone());

    let token = source.token(AUD, Some("read")).await.unwrap();
    assert_eq!(token.token_type, TokenType::DPoP);
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 2, "one refusal, one retry");
    let (_, first) = check_proof(seen[0].dpop.as_deref().unwrap(), &key);
    let (_, retry) = check_proof(seen[1].dpop.as_deref().unwrap(), &key);
    assert_eq!(first.get("nonce"), None);
    assert_eq!(retry["nonce"], "as-first");
    assert_ne!(first["jti"], retry["jti"], "a fresh proof");
    for claims in [&first, &retry] {
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], mock.token_endpoint());
        assert_eq!(claims.get("ath"), None, "no ath at the token endpoint");
    }
    // The success rotated the nonce; the key remembers the latest, for that origin only.
    let rotated = key.nonce_for(&mock.token_endpoint()).unwrap();
    assert_ne!(rotated, "as-first");
    assert_eq!(key.nonce_for("https://elsewhere.test/token"), None);

    // The next token (another audience) carries it at once: one request, no refusal.
    let second = source
        .token("https://api2.client.test/", None)
        .await
        .unwrap();
    assert_eq!(second.token_type, TokenType::DPoP);
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].proof_claims()["nonce"], rotated.as_str());
    // Cached tokens need no proof at all.
    source.token(AUD, Some("read")).await.unwrap();
    assert_eq!(mock.seen_at("/token").len(), 3);
}

#[tokio::test]
async fn a_second_use_dpop_nonce_is_returned_as_an_error_not_retried_forever() {
    let mock = Mock::start().await;
    mock.never_satisfied();
    let source = TokenSource::new(reqwest::Client::new(), mock.endpoints(), secret_creds())
        .with_dpop(DpopKey::generate().unwrap());
    let err = source.token(AUD, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { status: 400, error, .. } if error == "use_dpop_nonce"),
        "{err:?}"
    );
    assert_eq!(mock.seen_at("/token").len(), 2);
}

#[tokio::test]
async fn a_use_dpop_nonce_without_a_nonce_or_without_dpop_is_not_retried() {
    let mock = Mock::start().await;
    mock.answer(400, serde_json::json!({"error": "use_dpop_nonce"}));
    let source = TokenSource::new(reqwest::Client::new(), mock.endpoints(), secret_creds())
        .with_dpop(DpopKey::generate().unwrap());
    let err = source.token(AUD, None).await.unwrap_err();
    assert!(matches!(&err, Error::OAuth { error, .. } if error == "use_dpop_nonce"));
    assert_eq!(
        mock.seen_at("/token").len(),
        1,
        "no DPoP-Nonce header: no retry"
    );
}

#[tokio::test]
async fn resource_requests_carry_the_token_as_dpop_with_ath_and_follow_the_resource_servers_nonce()
{
    let mock = Mock::start().await;
    mock.require_rs_nonce("rs-1");
    let key = DpopKey::generate().unwrap();
    let source = TokenSource::new(reqwest::Client::new(), mock.endpoints(), secret_creds())
        .with_dpop(key.clone());
    let http = reqwest::Client::new();
    let url = format!("{}/resource?page=2", mock.base);

    let resp = source.send(http.get(&url), AUD).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "retried with the resource server's nonce"
    );
    let token = source.token(AUD, None).await.unwrap().token;
    let seen = mock.seen_at("/resource");
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some(&*format!("DPoP {token}")));
        let (_, claims) = check_proof(s.dpop.as_deref().unwrap(), &key);
        assert_eq!(claims["ath"], ath(&token));
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], format!("{}/resource", mock.base));
    }
    assert_eq!(seen[0].proof_claims().get("nonce"), None);
    assert_eq!(seen[1].proof_claims()["nonce"], "rs-1");
    assert_eq!(key.nonce_for(&url).as_deref(), Some("rs-1"));

    // Decorating a request by hand: the remembered nonce is in it from the start.
    let req = source.authorize(http.post(&url), AUD).await.unwrap();
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    key.remember_nonce(&resp);
    let last = mock.seen_at("/resource").pop().unwrap();
    let (_, claims) = check_proof(last.dpop.as_deref().unwrap(), &key);
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["nonce"], "rs-1");

    // The same with DpopKey::send and a token from elsewhere.
    let resp = key.send(http.delete(&url), "another-token").await.unwrap();
    assert_eq!(resp.status(), 200);
    let last = mock.seen_at("/resource").pop().unwrap();
    assert_eq!(last.proof_claims()["ath"], ath("another-token"));
    assert_eq!(last.proof_claims()["htm"], "DELETE");
}

#[tokio::test]
async fn a_bearer_answer_to_a_dpop_request_is_presented_as_bearer() {
    // A server without DPoP ignores the proof (RFC 9449 §5) and issues a Bearer token.
    let mock = Mock::start().await;
    mock.answer(
        200,
        serde_json::json!({"access_token": "plain", "token_type": "bearer", "expires_in": 60}),
    );
    let source = TokenSource::new(reqwest::Client::new(), mock.endpoints(), secret_creds())
        .with_dpop(DpopKey::generate().unwrap());
    let token = source.token(AUD, None).await.unwrap();
    assert_eq!(token.token_type, TokenType::Bearer);
    let req = source
        .authorize(reqwest::Client::new().get("http://rs.test/"), AUD)
        .await
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(req.headers()["authorization"], "Bearer plain");
    assert!(req.headers().get("dpop").is_none());
}

#[tokio::test]
async fn token_responses_the_client_cannot_use_are_typed_errors_not_panics() {
    let mock = Mock::start().await;
    let plain = TokenSource::new(reqwest::Client::new(), mock.endpoints(), secret_creds());
    let cases = [
        // A type the client does not understand (RFC 6749 §7.1: must not use it).
        serde_json::json!({"access_token": "t", "token_type": "mac"}),
        // DPoP-bound, but no proof was sent: the token could never be used.
        serde_json::json!({"access_token": "t", "token_type": "DPoP"}),
        // Not a token response.
        serde_json::json!({"token_type": "Bearer"}),
        serde_json::json!({"access_token": "t", "expires_in": -5}),
        serde_json::json!([1, 2, 3]),
    ];
    for body in cases {
        mock.answer(200, body.clone());
        let err = plain.token(AUD, None).await.unwrap_err();
        assert!(matches!(err, Error::InvalidResponse(_)), "{body}: {err:?}");
    }
    // An absurd lifetime is bounded, not an overflow.
    mock.answer(
        200,
        serde_json::json!({"access_token": "t", "token_type": "Bearer", "expires_in": u64::MAX}),
    );
    let t = plain.token(AUD, None).await.unwrap();
    assert_eq!(t.token, "t");
    // Errors that are not JSON.
    mock.answer(500, Value::String("<html>".into()));
    let err = plain.token("https://other.test/", None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse(_)), "{err:?}");
}

#[tokio::test]
async fn the_refresh_session_and_the_code_exchange_send_proofs_too() {
    let mock = Mock::start().await;
    mock.require_as_nonce("as-n");
    let key = DpopKey::generate().unwrap();
    let http = reqwest::Client::new();
    let public = Credentials {
        client_id: "spa".into(),
        client_secret: None,
        method: AuthMethod::Basic,
    };

    // The code exchange binds the tokens to the key (and meets the nonce).
    let req =
        AuthorizationRequest::new(&mock.endpoints(), "spa", "https://app.test/cb", None).unwrap();
    let callback = format!("https://app.test/cb?code=the-code&state={}", req.state);
    let tokens = req
        .exchange_with_dpop(&http, &mock.endpoints(), &public, &key, &callback)
        .await
        .unwrap();
    assert_eq!(tokens.token_type, TokenType::DPoP);
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].form["grant_type"], "authorization_code");
    assert_eq!(seen[1].proof_claims()["nonce"], "as-n");

    // The refresh session refreshes with proofs from the same key, the nonce already known.
    let store = std::sync::Arc::new(MemoryStore::default());
    *store.token.lock().unwrap() = tokens.refresh_token.clone();
    let session = RefreshSession::new(http.clone(), mock.endpoints(), public, store.clone())
        .with_dpop(key.clone());
    let t = session.token().await.unwrap();
    assert_eq!(t.token_type, TokenType::DPoP);
    assert_eq!(session.access_token().await.unwrap(), t.token, "cached");
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 3, "the remembered nonce: no refusal");
    assert_eq!(seen[2].form["grant_type"], "refresh_token");
    let (_, claims) = check_proof(seen[2].dpop.as_deref().unwrap(), &key);
    assert_eq!(claims["nonce"], "as-n");
    assert_ne!(
        store.token.lock().unwrap().clone(),
        tokens.refresh_token,
        "rotated and saved"
    );
}
