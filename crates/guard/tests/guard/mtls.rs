//! Certificate-bound access tokens (RFC 8705 §3) through the layer and the guard. Tokens are
//! signed with the real server's key and carry `cnf.x5t#S256`, as the server issues them to a
//! client that authenticated with mutual TLS; certificates are made by rcgen, and their
//! thumbprints computed here with sha2, not by the code under test.
//!
//! The API is served over plain TCP: a test middleware stands in for the TLS accept loop and
//! puts the certificate named by the `x-test-client-certificate` header (base64url DER) into
//! the request's extensions, where a real server puts the certificate of the handshake.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use calyx_core::clock::Clock;
use calyx_guard::{
    Authenticated, ClientCertificate, Guard, GuardConfig, GuardError, GuardLayer, Scheme,
};
use calyx_testkit::jose::Holder;
use calyx_testkit::SystemClock;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::dpop::{assert_dpop_refusal, proof, ALGS};
use super::{answer, calyx, listen, World};

/// The header the test middleware reads the connection's certificate from.
const CERTIFICATE_HEADER: &str = "x-test-client-certificate";

/// A client certificate (self-signed, by rcgen) and its RFC 8705 §3.1 thumbprint.
struct Certificate {
    der: Vec<u8>,
    x5t: String,
}

impl Certificate {
    fn new() -> Self {
        let der = rcgen::generate_simple_self_signed(vec!["client.example".to_owned()])
            .unwrap()
            .cert
            .der()
            .to_vec();
        let x5t = URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
        Certificate { der, x5t }
    }

    /// What the resource server hands the guard.
    fn client_certificate(&self) -> ClientCertificate {
        ClientCertificate::new(self.der.clone())
    }
}

/// Stands in for the TLS accept loop: the certificate of the "connection" into the extensions.
async fn tls_accept_loop(mut req: Request, next: Next) -> Response {
    let der = req
        .headers()
        .get(CERTIFICATE_HEADER)
        .map(|v| URL_SAFE_NO_PAD.decode(v.as_bytes()).unwrap());
    if let Some(der) = der {
        req.extensions_mut().insert(ClientCertificate::new(der));
    }
    next.run(req).await
}

/// The API behind a guard whose public origin is the API's own address: its base URL.
/// `/v1/consumers` (read) answers with the caller and both bindings of its token.
async fn mtls_api(w: &World) -> String {
    async fn list(Authenticated(t): Authenticated) -> Json<Value> {
        Json(json!({"caller": t.subject(), "jkt": t.jkt(), "x5t": t.x5t_s256()}))
    }
    let (listener, origin) = listen().await;
    let guard = Guard::new(w.config().public_origin(&origin));
    let app = Router::new()
        .route(
            "/v1/consumers",
            get(list).layer(GuardLayer::new(guard).require_scopes(&["read:consumers"])),
        )
        .layer(middleware::from_fn(tls_accept_loop));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

/// An access token for the world's client with `cnf`, signed with the issuer's current key.
async fn token_with_cnf(w: &World, cnf: Value) -> String {
    let now = SystemClock.now();
    w.forge(
        json!({"iss": w.issuer, "aud": w.audience, "sub": format!("{}@clients", w.client_id),
        "exp": now + 600, "iat": now, "jti": format!("at-{now}-{cnf}"), "client_id": w.client_id,
        "scope": "read:consumers", "cnf": cnf}),
    )
    .await
}

/// `GET url` with `authorization`, a `DPoP` header when `proof` is given, over a "connection"
/// with `certificate`: status, challenge, body.
async fn send(
    url: &str,
    authorization: String,
    proof: Option<&str>,
    certificate: Option<&Certificate>,
) -> (u16, String, Value) {
    let mut req = reqwest::Client::new()
        .get(url)
        .header("authorization", authorization);
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    if let Some(c) = certificate {
        req = req.header(CERTIFICATE_HEADER, URL_SAFE_NO_PAD.encode(&c.der));
    }
    answer(req).await
}

/// Asserts a 401 `invalid_token` in the `Bearer` challenge, `DPoP` offered beside (RFC 9449
/// §7.2), its description starting with `why`.
#[track_caller]
fn assert_bearer_refusal(what: &str, (status, challenge, body): &(u16, String, Value), why: &str) {
    assert_eq!(*status, 401, "{what}: {body}");
    assert_eq!(body["error"], "invalid_token", "{what}: {body}");
    assert!(
        challenge.starts_with(&format!(
            r#"Bearer realm="api", error="invalid_token", error_description="{why}"#
        )),
        "{what}: {challenge}"
    );
    assert!(
        challenge.ends_with(&format!(r#", DPoP realm="api", {ALGS}"#)),
        "{what}: {challenge}"
    );
}

#[tokio::test]
async fn a_token_bound_to_a_certificate_passes_with_it_and_the_handler_sees_the_thumbprint() {
    let w = calyx().await;
    let api = mtls_api(&w).await;
    let cert = Certificate::new();
    let t = token_with_cnf(&w, json!({"x5t#S256": cert.x5t})).await;
    let url = format!("{api}/v1/consumers");
    // Twice: the second request finds the token, and its thumbprint, in the cache.
    for _ in 0..2 {
        let (status, _, body) = send(&url, format!("Bearer {t}"), None, Some(&cert)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["x5t"], cert.x5t);
        assert_eq!(body["jkt"], Value::Null);
        assert_eq!(body["caller"], format!("{}@clients", w.client_id));
    }

    // The same without the layer.
    let guard = Guard::new(w.config());
    let client_certificate = cert.client_certificate();
    assert_eq!(client_certificate.thumbprint(), cert.x5t);
    assert_eq!(client_certificate.der(), cert.der);
    let v = guard
        .validate_with_certificate(&t, Some(&client_certificate))
        .await
        .unwrap();
    assert_eq!(v.x5t_s256(), Some(cert.x5t.as_str()));
}

#[tokio::test]
async fn a_certificate_bound_token_without_a_certificate_is_refused() {
    let w = calyx().await;
    let api = mtls_api(&w).await;
    let cert = Certificate::new();
    let t = token_with_cnf(&w, json!({"x5t#S256": cert.x5t})).await;
    let url = format!("{api}/v1/consumers");
    let r = send(&url, format!("Bearer {t}"), None, None).await;
    assert_bearer_refusal(
        "no certificate",
        &r,
        "the token is bound to a client certificate",
    );

    let guard = Guard::new(w.config());
    for refused in [
        guard.validate(&t).await,
        guard.validate_with_certificate(&t, None).await,
    ] {
        assert!(
            matches!(refused, Err(GuardError::InvalidToken(_))),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn a_certificate_bound_token_with_another_certificate_is_refused() {
    let w = calyx().await;
    let api = mtls_api(&w).await;
    let (cert, other) = (Certificate::new(), Certificate::new());
    let t = token_with_cnf(&w, json!({"x5t#S256": cert.x5t})).await;
    let url = format!("{api}/v1/consumers");
    let r = send(&url, format!("Bearer {t}"), None, Some(&other)).await;
    assert_bearer_refusal("another certificate", &r, "invalid certificate binding");
    // Nothing about the refusal sticks to the token: with its certificate it passes.
    let (status, _, body) = send(&url, format!("Bearer {t}"), None, Some(&cert)).await;
    assert_eq!(status, 200, "{body}");

    let guard = Guard::new(w.config());
    assert_eq!(
        guard
            .validate_with_certificate(&t, Some(&other.client_certificate()))
            .await
            .unwrap_err(),
        GuardError::InvalidToken(
            "invalid certificate binding: the client certificate is not the one the token is \
             bound to"
        )
    );
}

#[tokio::test]
async fn a_malformed_x5t_s256_is_refused_even_with_the_certificate_it_means() {
    let w = calyx().await;
    let api = mtls_api(&w).await;
    let cert = Certificate::new();
    let sha256 = Sha256::digest(&cert.der);
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    let url = format!("{api}/v1/consumers");
    let cases = [
        ("a number", json!(42)),
        ("null", json!(null)),
        ("an array", json!([cert.x5t])),
        ("an object", json!({"x5t#S256": cert.x5t})),
        ("empty", json!("")),
        ("padded", json!(URL_SAFE.encode(sha256))),
        ("hex", json!(hex)),
        ("with a space", json!(format!("{} ", cert.x5t))),
        (
            "a SHA-1 thumbprint",
            json!(URL_SAFE_NO_PAD.encode([0x5a; 20])),
        ),
    ];
    for (what, x5t) in cases {
        let t = token_with_cnf(&w, json!({ "x5t#S256": x5t })).await;
        let r = send(&url, format!("Bearer {t}"), None, Some(&cert)).await;
        assert_bearer_refusal(what, &r, "malformed cnf.x5t#S256");
    }
}

#[tokio::test]
async fn a_token_bound_to_no_certificate_is_unaffected_by_one() {
    let w = calyx().await;
    let api = mtls_api(&w).await;
    let cert = Certificate::new();
    let url = format!("{api}/v1/consumers");
    let unbound = w.token(&w.audience, "read:consumers").await;
    // Another confirmation method (RFC 7800 §3.4) binds the token to nothing the guard checks.
    let other_method = token_with_cnf(&w, json!({"kid": "a-key-of-the-client"})).await;
    for t in [unbound, other_method] {
        for certificate in [None, Some(&cert)] {
            let (status, _, body) = send(&url, format!("Bearer {t}"), None, certificate).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["x5t"], Value::Null);
        }
    }
}

#[tokio::test]
async fn a_token_bound_to_a_dpop_key_and_a_certificate_needs_both() {
    let w = calyx().await;
    let api = mtls_api(&w).await;
    let (holder, thief) = (Holder::new(), Holder::new());
    let (cert, other) = (Certificate::new(), Certificate::new());
    let t = token_with_cnf(
        &w,
        json!({"jkt": holder.thumbprint(), "x5t#S256": cert.x5t}),
    )
    .await;
    let url = format!("{api}/v1/consumers");
    let dpop = format!("DPoP {t}");

    // Refused for its certificate, a request does not spend its proof.
    let p = proof(&holder, &url, &t);
    for (what, certificate) in [("no certificate", None), ("another", Some(&other))] {
        let r = send(&url, dpop.clone(), Some(&p), certificate).await;
        assert_dpop_refusal(what, &r, "invalid_token");
        assert!(r.1.contains("certificate"), "{what}: {}", r.1);
    }
    let (status, _, body) = send(&url, dpop.clone(), Some(&p), Some(&cert)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jkt"], holder.thumbprint());
    assert_eq!(body["x5t"], cert.x5t);

    // The certificate does not stand in for the proof, nor for the proof's key.
    let r = send(&url, dpop.clone(), None, Some(&cert)).await;
    assert_dpop_refusal("no proof", &r, "invalid_dpop_proof");
    let r = send(
        &url,
        dpop.clone(),
        Some(&proof(&thief, &url, &t)),
        Some(&cert),
    )
    .await;
    assert_dpop_refusal("another key", &r, "invalid_token");
    assert!(r.1.contains("invalid DPoP key binding"), "{}", r.1);
    // Nor for the scheme: a DPoP-bound token is no bearer token.
    let r = send(&url, format!("Bearer {t}"), None, Some(&cert)).await;
    assert_bearer_refusal("the Bearer scheme", &r, "a DPoP-bound token");

    // The same without the layer.
    let guard = Guard::new(w.config());
    let refused = guard
        .validate_dpop(&t, &proof(&holder, &url, &t), "GET", &url)
        .await;
    assert!(
        matches!(refused, Err(GuardError::InvalidToken(_))),
        "{refused:?}"
    );
    let v = guard
        .validate_dpop_with_certificate(
            &t,
            &proof(&holder, &url, &t),
            "GET",
            &url,
            Some(&cert.client_certificate()),
        )
        .await
        .unwrap();
    assert_eq!(
        (v.jkt(), v.x5t_s256()),
        (Some(holder.thumbprint()), Some(cert.x5t.as_str()))
    );
}

#[tokio::test]
async fn introspection_mode_enforces_the_certificate_the_introspection_answer_names() {
    let (cert, other) = (Certificate::new(), Certificate::new());
    let answer = Arc::new(Mutex::new(
        json!({"active": true, "cnf": {"x5t#S256": cert.x5t}}),
    ));
    let cfg = GuardConfig::new("https://issuer.example", "https://api.example/");
    // The token itself names no certificate: the introspection answer binds it.
    let (guard, key, claims, t) = super::dpop::introspecting_guard(cfg, answer.clone()).await;
    let request = |certificate: Option<&Certificate>| {
        let mut req = axum::http::Request::get("/v1/consumers")
            .header("authorization", format!("Bearer {t}"))
            .body(())
            .unwrap();
        if let Some(c) = certificate {
            req.extensions_mut().insert(c.client_certificate());
        }
        req.into_parts().0
    };

    let ok = guard.authorize(&request(Some(&cert))).await.unwrap();
    assert_eq!(ok.x5t_s256(), Some(cert.x5t.as_str()));
    for (what, certificate) in [("no certificate", None), ("another", Some(&other))] {
        let refused = guard.authorize(&request(certificate)).await.unwrap_err();
        assert_eq!(refused.scheme, Scheme::Bearer, "{what}");
        assert!(
            matches!(refused.error, GuardError::InvalidToken(_)),
            "{what}: {refused:?}"
        );
    }

    // A token that names another certificate than the answer is refused with either.
    let mut bound_elsewhere = claims.clone();
    bound_elsewhere["cnf"] = json!({"x5t#S256": other.x5t});
    let t2 = key.sign(&bound_elsewhere).unwrap();
    for c in [&cert, &other] {
        assert_eq!(
            guard
                .validate_with_certificate(&t2, Some(&c.client_certificate()))
                .await
                .unwrap_err(),
            GuardError::InvalidToken(
                "the token's cnf.x5t#S256 differs from the introspection answer's"
            )
        );
    }

    // A malformed thumbprint in the answer is refused like one in the token.
    *answer.lock().unwrap() = json!({"active": true, "cnf": {"x5t#S256": 7}});
    assert_eq!(
        guard
            .validate_with_certificate(&t, Some(&cert.client_certificate()))
            .await
            .unwrap_err(),
        GuardError::InvalidToken("malformed cnf.x5t#S256")
    );

    // Without cnf in the answer the token is a plain bearer token again.
    *answer.lock().unwrap() = json!({"active": true});
    let bearer = guard.validate(&t).await.unwrap();
    assert_eq!(bearer.x5t_s256(), None);
}
