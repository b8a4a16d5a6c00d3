//! DPoP-bound tokens (RFC 9449 §7) through the layer and the guard. Tokens are signed with the
//! real server's key and carry `cnf.jkt`, as the server issues them to a DPoP client; proofs
//! are made with `calyx_testkit::jose` (jwt-compact on RustCrypto), not with the code under
//! test.

use std::sync::{Arc, Mutex};

use axum::http::Request;
use axum::routing::post;
use axum::{Json, Router};
use calyx_core::clock::Clock;
use calyx_core::model::SigningAlg;
use calyx_guard::{Guard, GuardConfig, GuardError, Introspection, Scheme};
use calyx_testkit::jose::{self, Holder, ProofClaims};
use calyx_testkit::SystemClock;
use calyx_token::SigningKey;
use serde_json::{json, Value};

use super::{answer, calyx, jwks_server, listen, serve_api, World};

/// The algorithms every `DPoP` challenge offers (`calyx_token::dpop::ALGORITHMS`).
pub(super) const ALGS: &str = r#"algs="ES256 EdDSA RS256 PS256""#;

/// The API behind a guard whose public origin is the API's own address: its base URL.
async fn dpop_api(w: &World) -> String {
    api_with(w, |cfg, origin| cfg.public_origin(origin)).await
}

/// The API behind a guard configured by `configure` (given the API's base URL).
async fn api_with(w: &World, configure: impl FnOnce(GuardConfig, &str) -> GuardConfig) -> String {
    let (listener, origin) = listen().await;
    serve_api(listener, Guard::new(configure(w.config(), &origin)));
    origin
}

/// An access token for the world's client bound to `holder`'s key, signed with the issuer's
/// current key: the claims the server issues to a DPoP client.
async fn bound_token(w: &World, holder: &Holder, scope: &str) -> String {
    let now = SystemClock.now();
    w.forge(
        json!({"iss": w.issuer, "aud": w.audience, "sub": format!("{}@clients", w.client_id),
        "exp": now + 600, "iat": now, "jti": format!("at-{now}-{scope}"), "client_id": w.client_id,
        "scope": scope, "cnf": {"jkt": holder.thumbprint()}}),
    )
    .await
}

/// A correct proof for `GET url` with `token`.
pub(super) fn proof(holder: &Holder, url: &str, token: &str) -> String {
    holder.proof_with(&ProofClaims::new("GET", url).for_token(token))
}

/// `GET url` with `authorization` and one `DPoP` header per proof: status, challenge, body.
async fn get(url: &str, authorization: Option<String>, proofs: &[String]) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    for p in proofs {
        req = req.header("dpop", p);
    }
    answer(req).await
}

/// Asserts a `DPoP` challenge alone with `error`, and the same code in the body.
#[track_caller]
pub(super) fn assert_dpop_refusal(
    what: &str,
    (status, challenge, body): &(u16, String, Value),
    error: &str,
) {
    assert_eq!(*status, 401, "{what}: {body}");
    assert!(
        challenge.starts_with(&format!(r#"DPoP realm="api", error="{error}""#)),
        "{what}: {challenge}"
    );
    assert!(challenge.ends_with(ALGS), "{what}: {challenge}");
    assert!(
        !challenge.contains("Bearer"),
        "{what}: a DPoP client is offered no Bearer scheme: {challenge}"
    );
    assert_eq!(body["error"], error, "{what}: {body}");
}

#[tokio::test]
async fn a_bound_token_with_a_proof_of_its_key_passes_and_the_handler_sees_the_key() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let holder = Holder::new();
    let t = bound_token(&w, &holder, "read:consumers").await;
    let url = format!("{api}/v1/consumers");
    // Twice, each with a fresh proof: the second request finds the token in the cache.
    for _ in 0..2 {
        let (status, _, body) =
            get(&url, Some(format!("DPoP {t}")), &[proof(&holder, &url, &t)]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["jkt"], holder.thumbprint());
        assert_eq!(body["caller"], format!("{}@clients", w.client_id));
    }
    // The scheme's name is case-insensitive (RFC 9110 §11.1).
    let (status, _, body) = get(&url, Some(format!("dpop {t}")), &[proof(&holder, &url, &t)]).await;
    assert_eq!(status, 200, "{body}");

    // A scope the token lacks: 403, in the DPoP challenge.
    let new = format!("{api}/v1/consumers/new");
    let (status, challenge, body) =
        get(&new, Some(format!("DPoP {t}")), &[proof(&holder, &new, &t)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    assert_eq!(
        challenge,
        format!(r#"DPoP realm="api", error="insufficient_scope", scope="write:consumers", {ALGS}"#)
    );
}

#[tokio::test]
async fn a_bound_token_sent_as_a_bearer_token_is_refused() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let holder = Holder::new();
    let t = bound_token(&w, &holder, "read:consumers").await;
    let url = format!("{api}/v1/consumers");
    // With or without a proof beside it: the Bearer scheme is no way to use a bound token.
    for proofs in [vec![], vec![proof(&holder, &url, &t)]] {
        let (status, challenge, body) = get(&url, Some(format!("Bearer {t}")), &proofs).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{body}"
        );
        // RFC 9449 §7.2: the error in the Bearer challenge, DPoP offered beside it.
        assert!(
            challenge.starts_with(r#"Bearer realm="api", error="invalid_token", error_description="a DPoP-bound token"#),
            "{challenge}"
        );
        assert!(
            challenge.ends_with(&format!(r#", DPoP realm="api", {ALGS}"#)),
            "{challenge}"
        );
    }
    let guard = Guard::new(w.config());
    assert!(matches!(
        guard.validate(&t).await,
        Err(GuardError::InvalidToken(_))
    ));
}

#[tokio::test]
async fn an_unbound_token_sent_with_the_dpop_scheme_is_refused() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let holder = Holder::new();
    let url = format!("{api}/v1/consumers");
    let unbound = w.token(&w.audience, "read:consumers").await;
    let r = get(
        &url,
        Some(format!("DPoP {unbound}")),
        &[proof(&holder, &url, &unbound)],
    )
    .await;
    assert_dpop_refusal("unbound token", &r, "invalid_token");
    // The same token is still good as what it is: a bearer token.
    let (status, _, body) = get(&url, Some(format!("Bearer {unbound}")), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jkt"], Value::Null);
}

#[tokio::test]
async fn a_request_without_credentials_is_offered_both_schemes_without_an_error() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let (status, challenge, _) = get(&format!("{api}/v1/consumers"), None, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!(r#"Bearer realm="api", DPoP realm="api", {ALGS}"#)
    );
}

#[tokio::test]
async fn every_bad_proof_is_401_invalid_dpop_proof_in_a_dpop_challenge() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let holder = Holder::new();
    let t = bound_token(&w, &holder, "read:consumers").await;
    let other_token = bound_token(&w, &holder, "read:consumers write:consumers").await;
    let url = format!("{api}/v1/consumers");
    let now = SystemClock.now();
    let good = || ProofClaims::new("GET", &url).for_token(&t);
    let with = |f: &dyn Fn(&mut ProofClaims)| {
        let mut c = good();
        f(&mut c);
        holder.proof_with(&c)
    };
    // What is wrong, the DPoP headers, and the check that must say so.
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("no DPoP header", vec![], "no DPoP header"),
        (
            "two DPoP headers",
            vec![proof(&holder, &url, &t), proof(&holder, &url, &t)],
            "more than one DPoP header",
        ),
        (
            "two proofs folded into one header",
            vec![format!(
                "{}, {}",
                proof(&holder, &url, &t),
                proof(&holder, &url, &t)
            )],
            "must hold one proof",
        ),
        ("not a JWT", vec!["not-a-proof".into()], "not a JWT"),
        (
            "wrong htm",
            vec![with(&|c| c.htm = "POST".into())],
            "htm is not",
        ),
        (
            "wrong htu: another path",
            vec![with(&|c| c.htu = format!("{api}/v1/consumers/new"))],
            "htu is not",
        ),
        (
            "wrong htu: another origin",
            vec![with(&|c| {
                c.htu = "https://api.example.com/v1/consumers".into()
            })],
            "htu is not",
        ),
        (
            "stale iat",
            vec![with(&|c| c.iat = now - 120)],
            "iat is outside",
        ),
        (
            "future iat",
            vec![with(&|c| c.iat = now + 60)],
            "iat is outside",
        ),
        (
            "no ath",
            vec![with(&|c| c.ath = None)],
            "ath does not match",
        ),
        (
            "ath of another token",
            vec![with(&|c| c.ath = Some(jose::ath(&other_token)))],
            "ath does not match",
        ),
        (
            "alg none",
            vec![jose::unsigned(
                json!({"typ": "dpop+jwt", "jwk": holder.jwk()}),
                &good(),
            )],
            "alg is not an accepted asymmetric algorithm",
        ),
        (
            "typ JWT",
            vec![holder.proof_with_header(&good(), "JWT", holder.jwk())],
            "typ must be dpop+jwt",
        ),
        (
            "the header's jwk is not the key that signed",
            vec![holder.proof_with_header(&good(), "dpop+jwt", Holder::new().jwk())],
            "signature",
        ),
    ];
    for (what, proofs, why) in cases {
        let r = get(&url, Some(format!("DPoP {t}")), &proofs).await;
        assert_dpop_refusal(what, &r, "invalid_dpop_proof");
        assert!(r.1.contains(why), "{what}: {}", r.1);
    }
    // None of those spent anything: a good proof still passes.
    let (status, _, body) = get(&url, Some(format!("DPoP {t}")), &[proof(&holder, &url, &t)]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let holder = Holder::new();
    let t = bound_token(&w, &holder, "read:consumers").await;
    let url = format!("{api}/v1/consumers");
    let once = proof(&holder, &url, &t);
    let (status, _, body) = get(&url, Some(format!("DPoP {t}")), std::slice::from_ref(&once)).await;
    assert_eq!(status, 200, "{body}");
    let r = get(&url, Some(format!("DPoP {t}")), &[once]).await;
    assert_dpop_refusal("replayed jti", &r, "invalid_dpop_proof");
    assert!(r.1.contains("used before"), "{}", r.1);
    // A proof made again with the same jti is the same proof as far as replay goes.
    let mut again = ProofClaims::new("GET", &url).for_token(&t);
    again.jti = "fixed-jti".into();
    let (status, _, body) = get(
        &url,
        Some(format!("DPoP {t}")),
        &[holder.proof_with(&again)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = get(
        &url,
        Some(format!("DPoP {t}")),
        &[holder.proof_with(&again)],
    )
    .await;
    assert_dpop_refusal("jti reused in a new proof", &r, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_proof_made_with_another_key_than_the_token_is_bound_to_is_refused() {
    let w = calyx().await;
    let api = dpop_api(&w).await;
    let (holder, thief) = (Holder::new(), Holder::new());
    let t = bound_token(&w, &holder, "read:consumers").await;
    let url = format!("{api}/v1/consumers");
    // The thief's proof is a good proof in itself, for this request and this token.
    let r = get(&url, Some(format!("DPoP {t}")), &[proof(&thief, &url, &t)]).await;
    assert_dpop_refusal("another key", &r, "invalid_token");
    assert!(r.1.contains("invalid DPoP key binding"), "{}", r.1);
}

#[tokio::test]
async fn without_a_public_origin_htu_is_the_request_host_with_https_or_http_by_a_flag() {
    let w = calyx().await;
    let holder = Holder::new();
    let t = bound_token(&w, &holder, "read:consumers").await;

    // The default: https on the Host header (TLS usually ends at a proxy in front).
    let api = api_with(&w, |cfg, _| cfg).await;
    let url = format!("{api}/v1/consumers");
    let https = url.replacen("http://", "https://", 1);
    let (status, _, body) = get(
        &url,
        Some(format!("DPoP {t}")),
        &[proof(&holder, &https, &t)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = get(&url, Some(format!("DPoP {t}")), &[proof(&holder, &url, &t)]).await;
    assert_dpop_refusal("http where https is assumed", &r, "invalid_dpop_proof");

    // `plain_http`: a development server without TLS.
    let api = api_with(&w, |mut cfg, _| {
        cfg.dpop.plain_http = true;
        cfg
    })
    .await;
    let url = format!("{api}/v1/consumers");
    let (status, _, body) = get(&url, Some(format!("DPoP {t}")), &[proof(&holder, &url, &t)]).await;
    assert_eq!(status, 200, "{body}");
    let elsewhere = url.replacen("127.0.0.1", "localhost", 1);
    let r = get(
        &url,
        Some(format!("DPoP {t}")),
        &[proof(&holder, &elsewhere, &t)],
    )
    .await;
    assert_dpop_refusal("another host", &r, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_public_origin_with_a_path_prefix_and_a_nested_router_make_the_whole_htu() {
    let w = calyx().await;
    let holder = Holder::new();
    let t = bound_token(&w, &holder, "read:consumers").await;
    let (listener, origin) = listen().await;
    // As a proxy that serves the API under /api and strips the prefix would have it.
    let public = "https://example.com/api";
    serve_api(listener, Guard::new(w.config().public_origin(public)));
    // The layer sits inside the router nested under /nested: htu names the whole path.
    let url = format!("{origin}/nested/consumers");
    let htu = format!("{public}/nested/consumers");
    let (status, _, body) = get(&url, Some(format!("DPoP {t}")), &[proof(&holder, &htu, &t)]).await;
    assert_eq!(status, 200, "{body}");
    for wrong in [format!("{public}/consumers"), url.clone()] {
        let r = get(
            &url,
            Some(format!("DPoP {t}")),
            &[proof(&holder, &wrong, &t)],
        )
        .await;
        assert_dpop_refusal(&wrong, &r, "invalid_dpop_proof");
    }
}

/// An introspection endpoint that answers `answer` to every request.
async fn introspection_server(answer: Arc<Mutex<Value>>) -> String {
    let app = Router::new().route(
        "/introspect",
        post(move || {
            let answer = answer.clone();
            async move { Json(answer.lock().unwrap().clone()) }
        }),
    );
    let (listener, origin) = listen().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("{origin}/introspect")
}

/// A guard in introspection mode whose introspection endpoint answers `answer` (which the
/// test may change), with a fresh issuer key serving its JWKS; that key, and claims and a
/// token of its issuer that name no binding themselves, so that only the answer binds them.
pub(super) async fn introspecting_guard(
    mut cfg: GuardConfig,
    answer: Arc<Mutex<serde_json::Value>>,
) -> (Guard, SigningKey, serde_json::Value, String) {
    let (_, key) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let jwks = Arc::new(Mutex::new(json!({"keys": [key.public_jwk()]})));
    cfg.jwks_uri = Some(jwks_server(jwks).await);
    let guard = Guard::with_introspection(
        cfg,
        Introspection {
            endpoint: introspection_server(answer).await,
            client_id: "api".into(),
            client_secret: "secret".into(),
            cache_ttl: std::time::Duration::ZERO,
        },
    );
    let now = SystemClock.now();
    let claims = json!({"iss": "https://issuer.example", "aud": "https://api.example/",
        "sub": "s@clients", "exp": now + 600, "scope": "read:consumers"});
    let token = key.sign(&claims).unwrap();
    (guard, key, claims, token)
}

#[tokio::test]
async fn introspection_mode_enforces_the_binding_the_introspection_answer_names() {
    let (holder, other) = (Holder::new(), Holder::new());
    let answer = Arc::new(Mutex::new(
        json!({"active": true, "token_type": "DPoP", "cnf": {"jkt": holder.thumbprint()}}),
    ));
    let cfg = GuardConfig::new("https://issuer.example", "https://api.example/")
        .public_origin("https://api.example");
    // The token itself names no key: the introspection answer binds it.
    let (guard, key, claims, t) = introspecting_guard(cfg, answer.clone()).await;
    let url = "https://api.example/v1/consumers";
    let request = |proof: String| {
        let req = Request::get("/v1/consumers")
            .header("authorization", format!("DPoP {t}"))
            .header("dpop", proof)
            .body(())
            .unwrap();
        req.into_parts().0
    };

    let ok = guard
        .authorize(&request(proof(&holder, url, &t)))
        .await
        .unwrap();
    assert_eq!(ok.jkt(), Some(holder.thumbprint()));
    let refused = guard
        .authorize(&request(proof(&other, url, &t)))
        .await
        .unwrap_err();
    assert_eq!(refused.scheme, Scheme::Dpop);
    assert!(
        matches!(refused.error, GuardError::InvalidToken(_)),
        "{refused:?}"
    );
    assert!(
        matches!(guard.validate(&t).await, Err(GuardError::InvalidToken(_))),
        "the Bearer scheme is refused for a token bound by introspection"
    );

    // A token that names another key than the introspection answer is refused either way.
    let mut bound_elsewhere = claims.clone();
    bound_elsewhere["cnf"] = json!({"jkt": other.thumbprint()});
    let t2 = key.sign(&bound_elsewhere).unwrap();
    assert!(matches!(
        guard
            .validate_dpop(&t2, &proof(&other, url, &t2), "GET", url)
            .await,
        Err(GuardError::InvalidToken(_))
    ));

    // Without cnf in the answer the token is a bearer token again.
    *answer.lock().unwrap() = json!({"active": true});
    let bearer = guard.validate(&t).await.unwrap();
    assert_eq!(bearer.jkt(), None);
}
