//! Style A: machine-to-machine tokens with an audience.

use calyx_core::model::SigningAlg;
use serde_json::{json, Value};

use calyx_testkit::{basic, eventually, jwt_parts, SOON};

use crate::{app_and_client, app_and_client_with, spawn_app};

#[tokio::test]
async fn form_body_with_client_secret_post_gets_a_verifiable_rfc9068_token() {
    let (app, c) = app_and_client().await;
    let resp = app.post_token_form(&c.client_credentials(c.secret())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["expires_in"], 86400,
        "Auth0-style default machine-token lifetime"
    );
    assert_eq!(body["scope"], "read:consumers write:consumers");

    let token = body["access_token"].as_str().unwrap();
    let claims = app.verify(token, &c.audience).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["sub"], format!("{}@clients", c.client_id));
    assert_eq!(claims["aud"], c.audience);
    assert_eq!(claims["client_id"], c.client_id);
    assert_eq!(claims["scope"], "read:consumers write:consumers");
    assert!(claims["org_id"].as_str().unwrap().starts_with("org_"));
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86400
    );
    let (header, _) = jwt_parts(token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
}

#[tokio::test]
async fn json_body_works_like_the_form() {
    let (app, c) = app_and_client().await;
    let body = json!({
        "client_id": c.client_id, "client_secret": c.secret(),
        "audience": c.audience, "grant_type": "client_credentials",
    });
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        let resp = app
            .post_raw("/oauth/token", Some(ct), None, body.to_string())
            .await;
        assert_eq!(resp.status(), 200, "{ct}");
        let v: Value = resp.json().await.unwrap();
        app.verify(v["access_token"].as_str().unwrap(), &c.audience)
            .await;
    }
}

#[tokio::test]
async fn basic_auth_works_on_both_token_paths() {
    let (app, c) = app_and_client().await;
    for path in ["/oauth/token", "/v2/oauth/token"] {
        let resp = app
            .post_raw(
                path,
                Some("application/x-www-form-urlencoded"),
                Some(&basic(&c.client_id, c.secret())),
                format!(
                    "grant_type=client_credentials&audience={}",
                    urlenc(&c.audience)
                ),
            )
            .await;
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn basic_auth_id_that_needs_urlencoding_is_decoded_per_rfc6749() {
    let app = spawn_app().await;
    let id = "partner:app+1 é&x=y";
    let c = app
        .fixture()
        .org("Enc Org")
        .api("https://enc.example.com/")
        .api_name("Enc")
        .scopes("read")
        .client_id(id)
        .client_name("Enc")
        .default_audience(true)
        .build()
        .await;
    let secret = c.secret();

    let resp = app
        .post_raw(
            "/oauth/token",
            Some("application/x-www-form-urlencoded"),
            Some(&basic(id, secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let (_, claims) = jwt_parts(v["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], id);
    // And the same id in a form body (client_secret_post).
    let resp = app
        .post_token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn resource_and_default_audience_select_the_api() {
    let (app, c) = app_and_client().await;
    // RFC 8707 resource.
    let resp = app
        .post_token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", c.secret()),
            ("resource", &c.audience),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    app.verify(v["access_token"].as_str().unwrap(), &c.audience)
        .await;

    // Neither: no default yet → invalid_request; after marking the grant default → that API.
    let no_aud = [
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", c.secret()),
    ];
    let resp = app.post_token_form(&no_aud).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("audience"));

    app.manager
        .update_grant(
            &c.client_id,
            &c.audience,
            crate::grant("read:consumers", true),
        )
        .await
        .unwrap();
    eventually(SOON, "the default audience is used", || async {
        let resp = app.post_token_form(&no_aud).await;
        resp.status() == 200
    })
    .await;
    let v: Value = app.post_token_form(&no_aud).await.json().await.unwrap();
    let claims = app
        .verify(v["access_token"].as_str().unwrap(), &c.audience)
        .await;
    assert_eq!(claims["scope"], "read:consumers");
}

#[tokio::test]
async fn scope_defaults_to_the_grant_narrows_on_request_and_refuses_extras() {
    let (app, c) = app_and_client().await;
    let ask = |scope: &'static str| {
        let (c, app) = (&c, &app);
        async move {
            let mut form = c.client_credentials(c.secret()).to_vec();
            form.push(("scope", scope));
            app.post_token_form(&form).await
        }
    };
    let v: Value = ask("read:consumers").await.json().await.unwrap();
    assert_eq!(v["scope"], "read:consumers");
    let claims = app
        .verify(v["access_token"].as_str().unwrap(), &c.audience)
        .await;
    assert_eq!(claims["scope"], "read:consumers");

    // An empty scope counts as omitted (RFC 6749 §3.1): everything granted.
    let v: Value = ask("").await.json().await.unwrap();
    assert_eq!(v["scope"], "read:consumers write:consumers");

    let resp = ask("read:consumers admin").await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_scope");
    assert!(v["error_description"].as_str().unwrap().contains("admin"));
}

#[tokio::test]
async fn expires_in_follows_the_api_setting() {
    let (app, c) = app_and_client_with(|f| f.scopes("read").token_lifetime(Some(600))).await;
    let v = app.token(&c).await;
    assert_eq!(v["expires_in"], 600);
    let claims = app
        .verify(v["access_token"].as_str().unwrap(), &c.audience)
        .await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn eddsa_and_rs256_apis_sign_with_their_algorithm() {
    let app = spawn_app().await;
    for (alg, name) in [(SigningAlg::EdDSA, "EdDSA"), (SigningAlg::RS256, "RS256")] {
        let c = app.fixture().scopes("read").alg(alg).build().await;
        // The server picks up the new key within its reload interval.
        eventually(SOON, "a key for the new algorithm is loaded", || async {
            app.token_response(&c).await.0 == 200
        })
        .await;
        let v = app.token(&c).await;
        let token = v["access_token"].as_str().unwrap();
        let (header, _) = jwt_parts(token);
        assert_eq!(header["alg"], name);
        app.verify(token, &c.audience).await;
    }
}

#[tokio::test]
async fn the_database_never_holds_a_client_secret() {
    let (app, c) = app_and_client().await;
    app.token(&c).await;
    let rotated = app.manager.rotate_secret(&c.client_id, 60).await.unwrap().1;
    let dump = app.database_bytes();
    assert!(!dump.is_empty());
    for (name, bytes) in dump {
        for secret in [c.secret(), &rotated] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{name} contains a client secret"
            );
        }
    }
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
