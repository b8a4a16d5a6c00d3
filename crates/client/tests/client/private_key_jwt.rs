//! `private_key_jwt` (OpenID Connect Core §9, RFC 7523) from the client's side, against the
//! in-test mock server.

use std::sync::Arc;

use calyx_client::{
    AuthorizationRequest, ClientKey, Credentials, DpopKey, Error, RefreshSession, TokenSource,
};
use serde_json::Value;

use crate::mock::{verified, Mock, Seen};
use crate::MemoryStore;

const AUD: &str = "https://api.client.test/";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The assertion a token request carried, checked as a server would: the parameters (and no
/// secret anywhere), the signature against the key the registered JWKS names by `kid`, and the
/// claims of RFC 7523 §3 for `client_id` addressed to `audience`.
fn check_assertion(seen: &Seen, jwks: &Value, client_id: &str, audience: &str) -> Value {
    assert_eq!(seen.form["client_assertion_type"], ASSERTION_TYPE);
    assert_eq!(
        seen.form["client_id"], client_id,
        "RFC 7521 §4.2: the same client"
    );
    assert!(!seen.form.contains_key("client_secret"));
    assert_eq!(seen.authorization, None, "no Basic");
    let assertion = &seen.form["client_assertion"];
    let (header, _) = calyx_testkit::jwt_parts(assertion);
    let kid = header["kid"].as_str().expect("a kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the kid is in the JWKS");
    let (header, claims) = verified(assertion, jwk);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["iss"], client_id);
    assert_eq!(claims["sub"], client_id);
    assert_eq!(claims["aud"], audience);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 60);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((iat - now).abs() <= 2);
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    claims
}

#[test]
fn the_jwks_publishes_the_public_key_only_with_its_kid() {
    let key = ClientKey::generate().unwrap();
    let jwks = key.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], key.kid());
    assert!(jwk.get("d").is_none(), "no private part");
    // The default kid is the RFC 7638 thumbprint; another can be set.
    let named = key.clone().with_kid("k-2025");
    assert_eq!(named.jwks()["keys"][0]["kid"], "k-2025");
    assert_eq!(named.jwks()["keys"][0]["x"], jwk["x"]);
    // Stored and loaded: the same key.
    let again = ClientKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
    assert_eq!(again.jwks(), jwks);
    assert!(matches!(
        ClientKey::from_pkcs8(&[0x30, 0]),
        Err(Error::Key(_))
    ));
    assert!(!format!("{key:?}").contains("\"d\""));
}

#[test]
fn an_assertion_has_the_claims_of_rfc_7523_and_verifies_with_the_published_jwks() {
    let key = ClientKey::generate().unwrap();
    let a = key.assertion("c1", "https://as.test/token").unwrap();
    let (_, claims) = verified(&a, &key.jwks()["keys"][0]);
    assert_eq!(claims["aud"], "https://as.test/token");
    let b = key.assertion("c1", "https://as.test/token").unwrap();
    assert_ne!(
        calyx_testkit::jwt_parts(&b).1["jti"],
        claims["jti"],
        "a fresh jti each time"
    );
    let to_issuer = key.with_audience("https://as.test");
    let c = to_issuer.assertion("c1", "https://as.test/token").unwrap();
    assert_eq!(calyx_testkit::jwt_parts(&c).1["aud"], "https://as.test");
}

#[tokio::test]
async fn the_token_source_authenticates_with_a_fresh_assertion_per_request() {
    let mock = Mock::start().await;
    let key = ClientKey::generate().unwrap();
    let jwks = key.jwks();
    let source = TokenSource::new(
        reqwest::Client::new(),
        mock.endpoints(),
        Credentials::private_key_jwt("c1", key),
    );
    source.token(AUD, Some("read")).await.unwrap();
    source
        .token("https://api2.client.test/", None)
        .await
        .unwrap();
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 2);
    let a = check_assertion(&seen[0], &jwks, "c1", &mock.token_endpoint());
    let b = check_assertion(&seen[1], &jwks, "c1", &mock.token_endpoint());
    assert_ne!(a["jti"], b["jti"]);
    assert_eq!(seen[0].form["grant_type"], "client_credentials");
    assert_eq!(seen[0].form["scope"], "read");
}

#[tokio::test]
async fn a_dpop_nonce_retry_is_signed_anew_and_the_audience_can_be_the_issuer() {
    // A server that checks the client before the proof has spent the first assertion's jti
    // by the time it asks for a nonce: the retry must carry a new one.
    let mock = Mock::start().await;
    mock.require_as_nonce("n-1");
    let key = ClientKey::generate()
        .unwrap()
        .with_audience(mock.base.clone());
    let jwks = key.jwks();
    let source = TokenSource::new(
        reqwest::Client::new(),
        mock.endpoints(),
        Credentials::private_key_jwt("c1", key),
    )
    .with_dpop(DpopKey::generate().unwrap());
    source.token(AUD, None).await.unwrap();
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 2);
    let a = check_assertion(&seen[0], &jwks, "c1", &mock.base);
    let b = check_assertion(&seen[1], &jwks, "c1", &mock.base);
    assert_ne!(a["jti"], b["jti"], "the retry is authenticated anew");
}

#[tokio::test]
async fn the_refresh_session_and_the_code_exchange_authenticate_with_private_key_jwt() {
    let mock = Mock::start().await;
    let key = ClientKey::generate().unwrap();
    let jwks = key.jwks();
    let creds = Credentials::private_key_jwt("web-app", key);
    let http = reqwest::Client::new();

    let req = AuthorizationRequest::new(&mock.endpoints(), "web-app", "https://app.test/cb", None)
        .unwrap();
    let callback = format!("https://app.test/cb?code=c0de&state={}", req.state);
    let tokens = req
        .exchange(&http, &mock.endpoints(), &creds, &callback)
        .await
        .unwrap();
    let seen = mock.seen_at("/token");
    check_assertion(&seen[0], &jwks, "web-app", &mock.token_endpoint());
    assert_eq!(seen[0].form["code"], "c0de");
    assert_eq!(seen[0].form["code_verifier"], req.pkce_verifier);

    let store = Arc::new(MemoryStore::default());
    *store.token.lock().unwrap() = tokens.refresh_token;
    let session = RefreshSession::new(http, mock.endpoints(), creds, store);
    session.access_token().await.unwrap();
    let seen = mock.seen_at("/token");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].form["grant_type"], "refresh_token");
    check_assertion(&seen[1], &jwks, "web-app", &mock.token_endpoint());
}
