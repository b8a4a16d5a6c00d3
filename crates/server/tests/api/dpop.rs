//! DPoP at the token endpoint (RFC 9449 §5, §6, §8): proofs made with an independent JOSE
//! library (`calyx_testkit::jose`, jwt-compact), never with the server's own code.

use calyx_core::model::{ClientPolicy, ClientType};
use calyx_testkit::jose::{unsigned, Holder, ProofClaims};
use calyx_testkit::{jwt_parts, sign_in, Provisioned, TestServer};
use serde_json::{json, Value};

use crate::authorization_code::third_party;
use crate::{app_and_client, app_and_client_with, spawn_app, spawn_app_with};

/// A token request of `form` as `c` with these `DPoP` header values: status, body, and the
/// `DPoP-Nonce` answered.
async fn with_proofs(
    app: &TestServer,
    c: &Provisioned,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> (u16, Value, Option<String>) {
    let mut req = app.http.post(app.url("/oauth/token"));
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    let mut form = form.to_vec();
    match &c.secret {
        Some(secret) => req = req.basic_auth(&c.client_id, Some(secret)),
        None => form.push(("client_id", &c.client_id)),
    }
    let resp = req.form(&form).send().await.unwrap();
    let status = resp.status().as_u16();
    let nonce = resp
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), nonce)
}

/// A client-credentials request as `c` with one proof.
async fn machine_token(app: &TestServer, c: &Provisioned, proof: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", &c.audience),
    ];
    let (status, body, _) = with_proofs(app, c, &form, &[proof]).await;
    (status, body)
}

fn token_url(app: &TestServer) -> String {
    format!("{}/oauth/token", app.issuer())
}

#[tokio::test]
async fn a_proof_binds_the_machine_token_to_its_key_and_introspection_shows_it() {
    let (app, c) = app_and_client().await;
    let holder = Holder::new();
    let (status, body) = machine_token(&app, &c, &holder.proof("POST", &token_url(&app))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let (_, claims) = jwt_parts(token);
    assert_eq!(claims["cnf"], json!({"jkt": holder.thumbprint()}));

    let seen = app.introspect(&c, token).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["token_type"], "DPoP");
    assert_eq!(seen["cnf"]["jkt"], holder.thumbprint());

    // Without a proof the same client still gets a Bearer token, with no cnf.
    let bearer = app.token(&c).await;
    assert_eq!(bearer["token_type"], "Bearer");
    let (_, claims) = jwt_parts(bearer["access_token"].as_str().unwrap());
    assert!(claims.get("cnf").is_none());

    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

#[tokio::test]
async fn the_alias_path_takes_proofs_that_name_it() {
    let (app, c) = app_and_client().await;
    let holder = Holder::new();
    let url = format!("{}/v2/oauth/token", app.issuer());
    let resp = app
        .http
        .post(app.url("/v2/oauth/token"))
        .basic_auth(&c.client_id, Some(c.secret()))
        .header("DPoP", holder.proof("POST", &url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", &c.audience),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
}

/// Every refusal RFC 9449 §4.3 names, each answered 400 `invalid_dpop_proof` without a token.
#[tokio::test]
async fn every_bad_proof_is_refused_with_invalid_dpop_proof() {
    let (app, c) = app_and_client().await;
    let holder = Holder::new();
    let other = Holder::new();
    let url = token_url(&app);
    let claims = || ProofClaims::new("POST", &url);
    let now = claims().iat;
    let stale = ProofClaims {
        iat: now - 120,
        ..claims()
    };
    let future = ProofClaims {
        iat: now + 120,
        ..claims()
    };
    let wrong_method = ProofClaims::new("GET", &url);
    let wrong_path = ProofClaims::new("POST", &format!("{}/oauth/revoke", app.issuer()));
    let wrong_host = ProofClaims::new("POST", "https://elsewhere.example/oauth/token");
    let header = json!({"typ": "dpop+jwt", "jwk": holder.jwk()});
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "two DPoP headers",
            vec![holder.proof("POST", &url), holder.proof("POST", &url)],
        ),
        ("not a JWT", vec!["not-a-jwt".into()]),
        ("wrong htm", vec![holder.proof_with(&wrong_method)]),
        ("wrong htu path", vec![holder.proof_with(&wrong_path)]),
        ("wrong htu host", vec![holder.proof_with(&wrong_host)]),
        ("stale iat", vec![holder.proof_with(&stale)]),
        ("iat in the future", vec![holder.proof_with(&future)]),
        ("alg none", vec![unsigned(header, &claims())]),
        (
            "typ JWT",
            vec![holder.proof_with_header(&claims(), "JWT", holder.jwk())],
        ),
        (
            "signed by another key than its jwk",
            vec![holder.proof_with_header(&claims(), "dpop+jwt", other.jwk())],
        ),
    ];
    for (case, proofs) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let form = [
            ("grant_type", "client_credentials"),
            ("audience", &c.audience),
        ];
        let (status, body, _) = with_proofs(&app, &c, &form, &proofs).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{case}: {body}");
        assert!(body.get("access_token").is_none(), "{case}");
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused_on_any_node() {
    let (app, c) = app_and_client().await;
    let second = spawn_app_with(|cfg| cfg.node_of = Some(app.database_url.clone())).await;
    let holder = Holder::new();
    let proof = holder.proof("POST", &token_url(&app));
    assert_eq!(machine_token(&app, &c, &proof).await.0, 200);
    let (status, body) = machine_token(&app, &c, &proof).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // The second node answers under its own issuer, so the proof names that one: its jti is
    // what is replayed.
    let mut claims = ProofClaims::new("POST", &token_url(&second));
    claims.jti = "replayed-everywhere".into();
    let proof = holder.proof_with(&claims);
    assert_eq!(machine_token(&second, &c, &proof).await.0, 200);
    let (status, body) = machine_token(&second, &c, &proof).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
}

#[tokio::test]
async fn two_copies_of_one_proof_at_once_get_one_token() {
    let (app, c) = app_and_client().await;
    let proof = Holder::new().proof("POST", &token_url(&app));
    let attempts = (0..8).map(|_| machine_token(&app, &c, &proof));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_client_that_requires_dpop_gets_no_token_without_a_proof() {
    let (app, c) = app_and_client_with(|f| {
        f.policy(ClientPolicy {
            require_dpop: true,
            ..ClientPolicy::default()
        })
    })
    .await;
    let (status, body) = app.token_response(&c).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (status, body) =
        machine_token(&app, &c, &Holder::new().proof("POST", &token_url(&app))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn with_nonces_on_a_proof_must_carry_the_servers_nonce() {
    let app = spawn_app_with(|cfg| cfg.dpop_nonce = true).await;
    let c = app.fixture().build().await;
    let holder = Holder::new();
    let url = token_url(&app);
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", &c.audience),
    ];

    let (status, body, nonce) = with_proofs(&app, &c, &form, &[&holder.proof("POST", &url)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let nonce = nonce.expect("a DPoP-Nonce header with use_dpop_nonce");

    let forged = holder.proof_with(&ProofClaims::new("POST", &url).with_nonce("1.AAAA"));
    let (status, body, _) = with_proofs(&app, &c, &form, &[&forged]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );

    let proof = holder.proof_with(&ProofClaims::new("POST", &url).with_nonce(&nonce));
    let (status, body, next) = with_proofs(&app, &c, &form, &[&proof]).await;
    assert_eq!(status, 200, "{body}");
    assert!(next.is_some(), "a success names the nonce to use next");

    // The nonce outlives its window by one window, then is refused.
    app.clock.advance(2 * 120 + 1);
    let proof = holder.proof_with(&ProofClaims {
        iat: ProofClaims::new("POST", &url).iat + 2 * 120 + 1,
        ..ProofClaims::new("POST", &url).with_nonce(&nonce)
    });
    let (status, body, _) = with_proofs(&app, &c, &form, &[&proof]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );

    // Without nonces configured, none is sent.
    let (plain, c) = app_and_client().await;
    let (_, _, nonce) = with_proofs(
        &plain,
        &c,
        &[
            ("grant_type", "client_credentials"),
            ("audience", &c.audience),
        ],
        &[&holder.proof("POST", &token_url(&plain))],
    )
    .await;
    assert_eq!(nonce, None);
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A public app's user signs in; the code is redeemed with a proof by `holder`.
async fn public_sign_in(app: &TestServer, holder: &Holder) -> (Provisioned, Value) {
    let tp = third_party(app, ClientType::Public).await;
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = sign_in(
        &app.authorize_url(&tp, &pkce),
        &tp.username,
        calyx_testkit::PASSWORD,
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", calyx_testkit::REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let proof = holder.proof("POST", &token_url(app));
    let (status, body, _) = with_proofs(app, &tp, &form, &[&proof]).await;
    assert_eq!(status, 200, "{body}");
    (tp, body)
}

#[tokio::test]
async fn a_public_clients_refresh_token_works_only_with_its_key() {
    let app = spawn_app().await;
    let holder = Holder::new();
    let (tp, first) = public_sign_in(&app, &holder).await;
    assert_eq!(first["token_type"], "DPoP");
    let rt = first["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let url = token_url(&app);

    // Another key, or none: refused, and the token is not spent.
    let thief = Holder::new();
    let (status, body, _) = with_proofs(&app, &tp, &refresh, &[&thief.proof("POST", &url)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (status, body, _) = with_proofs(&app, &tp, &refresh, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );

    // The key it was bound to: rotated, and the new access token bound again.
    let (status, body, _) = with_proofs(&app, &tp, &refresh, &[&holder.proof("POST", &url)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], holder.thumbprint());

    // Its successor is bound to the same key.
    let next = body["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", next)];
    let (status, _, _) = with_proofs(&app, &tp, &refresh, &[&thief.proof("POST", &url)]).await;
    assert_eq!(status, 400);
    let (status, _, _) = with_proofs(&app, &tp, &refresh, &[&holder.proof("POST", &url)]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_confidential_clients_refresh_token_is_bound_by_its_authentication_not_a_key() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let code = app.sign_in(&tp).await;
    let holder = Holder::new();
    let url = token_url(&app);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", calyx_testkit::REDIRECT),
    ];
    let (status, first, _) = with_proofs(&app, &tp, &form, &[&holder.proof("POST", &url)]).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["token_type"], "DPoP");
    // RFC 9449 §5: a new key may be used on refresh; the access token follows it.
    let rt = first["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let other = Holder::new();
    let (status, body, _) = with_proofs(&app, &tp, &refresh, &[&other.proof("POST", &url)]).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], other.thumbprint());
}
