//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3): assertions made with an
//! independent JOSE library (`calyx_testkit::jose`, jwt-compact), never the server's code.

use std::sync::{Arc, Mutex};

use calyx_core::model::{ClientPolicy, KeyAuth};
use calyx_testkit::jose::{unsigned, AssertionClaims, Holder};
use calyx_testkit::{Provisioned, TestServer};
use serde_json::{json, Value};

use crate::app_and_client_with;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A machine client registered for `private_key_jwt` with `holder`'s public key inline.
async fn keyed_client(holder: &Holder) -> (TestServer, Provisioned) {
    let jwks = holder.jwks();
    app_and_client_with(|f| {
        f.policy(ClientPolicy {
            auth: Some(KeyAuth::PrivateKeyJwt),
            jwks: Some(jwks),
            ..ClientPolicy::default()
        })
    })
    .await
}

/// POSTs `form` plus the assertion to `path`: status and body.
async fn post_with_assertion(
    app: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    assertion: &str,
) -> (u16, Value) {
    let mut form = form.to_vec();
    form.push(("client_assertion_type", JWT_BEARER));
    form.push(("client_assertion", assertion));
    let resp = app
        .http
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn token_with(app: &TestServer, c: &Provisioned, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", &c.audience),
    ];
    post_with_assertion(app, "/oauth/token", &form, assertion).await
}

fn token_url(app: &TestServer) -> String {
    format!("{}/oauth/token", app.issuer())
}

#[tokio::test]
async fn a_client_authenticates_with_an_assertion_at_every_endpoint() {
    let holder = Holder::new();
    let (app, c) = keyed_client(&holder).await;
    assert!(
        c.secret.is_none(),
        "a private_key_jwt client is given no secret"
    );

    // Addressed to the token endpoint, or to the issuer (both RFC 7523 §3 and RFC 9126 §2).
    let (status, body) =
        token_with(&app, &c, &holder.assertion(&c.client_id, &token_url(&app))).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = token_with(&app, &c, &holder.assertion(&c.client_id, app.issuer())).await;
    assert_eq!(status, 200, "{body}");

    // Without client_id in the form too: the assertion's sub names the client.
    let (status, body) = post_with_assertion(
        &app,
        "/oauth/introspect",
        &[("token", &token)],
        &holder.assertion(&c.client_id, app.issuer()),
    )
    .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (status, _) = post_with_assertion(
        &app,
        "/oauth/revoke",
        &[("token", &token), ("client_id", &c.client_id)],
        &holder.assertion(&c.client_id, app.issuer()),
    )
    .await;
    assert_eq!(status, 200);

    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")));
    assert!(metadata["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("ES256")));
}

/// Every refusal RFC 7523 §3 names (and a few of RFC 7521 §4.2), each 401 `invalid_client`
/// or 400 `invalid_request`, never a token.
#[tokio::test]
async fn every_bad_assertion_is_refused() {
    let holder = Holder::new();
    let (app, c) = keyed_client(&holder).await;
    let other = Holder::new();
    let good = || AssertionClaims::new(&c.client_id, &token_url(&app));
    let now = good().iat;
    let used = holder.assertion(&c.client_id, &token_url(&app));
    assert_eq!(token_with(&app, &c, &used).await.0, 200);
    let cases: Vec<(&str, String)> = vec![
        ("a replayed jti", used),
        (
            "wrong aud",
            holder.assertion(&c.client_id, "https://elsewhere.example/token"),
        ),
        (
            "iss another client",
            holder.assertion_with(&AssertionClaims {
                iss: "someone-else".into(),
                ..good()
            }),
        ),
        (
            "sub another client",
            holder.assertion_with(&AssertionClaims {
                sub: "someone-else".into(),
                ..good()
            }),
        ),
        (
            "expired",
            holder.assertion_with(&AssertionClaims {
                exp: now - 120,
                ..good()
            }),
        ),
        (
            "exp more than an hour ahead",
            holder.assertion_with(&AssertionClaims {
                exp: now + 7200,
                ..good()
            }),
        ),
        (
            "issued in the future",
            holder.assertion_with(&AssertionClaims {
                iat: now + 600,
                ..good()
            }),
        ),
        (
            "no jti",
            holder.assertion_with(&AssertionClaims {
                jti: String::new(),
                ..good()
            }),
        ),
        (
            "alg none",
            unsigned(json!({"typ": "JWT", "kid": holder.kid()}), &good()),
        ),
        (
            "signed by a key the client did not register",
            other.assertion_with(&good()),
        ),
        ("not a JWT", "not.a.jwt".into()),
    ];
    for (case, assertion) in cases {
        let (status, body) = token_with(&app, &c, &assertion).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}: {body}");
    }

    // Two methods at once, or a wrong assertion type: refused before any key is looked at.
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", &c.audience),
        ("client_assertion_type", "urn:example:other"),
        (
            "client_assertion",
            &holder.assertion(&c.client_id, app.issuer()),
        ),
    ];
    let resp = app
        .http
        .post(app.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, body) = post_with_assertion(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "x"),
            ("client_id", &c.client_id),
        ],
        &holder.assertion(&c.client_id, app.issuer()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A secret is no way in for a key-based client.
    let resp = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some("anything"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", &c.audience),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn one_assertion_sent_many_times_at_once_gets_one_token() {
    let holder = Holder::new();
    let (app, c) = keyed_client(&holder).await;
    let assertion = holder.assertion(&c.client_id, &token_url(&app));
    let attempts = (0..8).map(|_| token_with(&app, &c, &assertion));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_client_with_a_secret_cannot_authenticate_with_an_assertion() {
    let holder = Holder::new();
    let (app, c) = app_and_client_with(|f| f).await;
    let (status, body) = token_with(&app, &c, &holder.assertion(&c.client_id, app.issuer())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}

/// A JWK Set served over HTTP, replaceable while the test runs, counting its fetches.
struct Published {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<Mutex<u32>>,
}

async fn publish(jwks: Value) -> Published {
    let jwks = Arc::new(Mutex::new(jwks));
    let fetches = Arc::new(Mutex::new(0));
    let (served, counted) = (jwks.clone(), fetches.clone());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (served, counted) = (served.clone(), counted.clone());
            async move {
                *counted.lock().unwrap() += 1;
                axum::Json(served.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Published { url, jwks, fetches }
}

#[tokio::test]
async fn a_jwks_uri_is_fetched_once_and_again_when_the_client_rotates_its_key() {
    let first = Holder::new();
    let published = publish(first.jwks()).await;
    let uri = published.url.clone();
    let (app, c) = app_and_client_with(|f| {
        f.policy(ClientPolicy {
            auth: Some(KeyAuth::PrivateKeyJwt),
            jwks_uri: Some(uri),
            ..ClientPolicy::default()
        })
    })
    .await;
    for _ in 0..3 {
        let (status, body) =
            token_with(&app, &c, &first.assertion(&c.client_id, app.issuer())).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(*published.fetches.lock().unwrap(), 1, "the set is cached");

    // The client publishes a new key and signs with it: its new kid makes the server look again.
    let second = Holder::new();
    *published.jwks.lock().unwrap() = second.jwks();
    let (status, body) = token_with(&app, &c, &second.assertion(&c.client_id, app.issuer())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(*published.fetches.lock().unwrap(), 2);

    // An unknown kid again within seconds: refused without another fetch.
    let stranger = Holder::new();
    let (status, _) = token_with(&app, &c, &stranger.assertion(&c.client_id, app.issuer())).await;
    assert_eq!(status, 401);
    assert_eq!(
        *published.fetches.lock().unwrap(),
        2,
        "refetches are rate-limited"
    );
}

#[tokio::test]
async fn registration_refuses_private_keys_and_a_method_without_keys() {
    let app = crate::spawn_app().await;
    let admin = app.admin().await;
    let org = app.manager.create_org("Keys Inc").await.unwrap();
    let holder = Holder::new();
    let mut private = holder.jwks();
    private["keys"][0]["d"] = json!("c2VjcmV0");
    for (body, why) in [
        (
            json!({"org_id": org.id, "name": "a", "token_endpoint_auth_method": "private_key_jwt"}),
            "no keys",
        ),
        (
            json!({"org_id": org.id, "name": "b", "token_endpoint_auth_method": "private_key_jwt", "jwks": private}),
            "a private key",
        ),
        (
            json!({"org_id": org.id, "name": "c", "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": "no"}}),
            "not a set",
        ),
        (
            json!({"org_id": org.id, "name": "d", "type": "public", "grant_types": ["authorization_code"], "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": holder.jwks()}),
            "a public client",
        ),
        (
            json!({"org_id": org.id, "name": "e", "token_endpoint_auth_method": "client_secret_jwt"}),
            "an unsupported method",
        ),
    ] {
        let (status, body) = admin.post("/clients", body).await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    let (status, body) = admin
        .post(
            "/clients",
            json!({"org_id": org.id, "name": "ok", "token_endpoint_auth_method": "private_key_jwt", "jwks": holder.jwks()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("client_secret").is_none(), "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
}
