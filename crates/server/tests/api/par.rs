//! Pushed authorization requests (RFC 9126): `POST /oauth/par`, then `/authorize` with the
//! `request_uri`, once.

use calyx_core::model::{ClientPolicy, ClientType};
use calyx_testkit::jose::Holder;
use calyx_testkit::{location_params, param, sign_in, Provisioned, TestServer, PASSWORD, REDIRECT};
use serde_json::Value;

use crate::authorization_code::third_party;
use crate::spawn_app;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The parameters of a good authorization request for `tp`.
fn request(tp: &Provisioned) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", tp.client_id.clone()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "pushed-state".into()),
        ("scope", "Standard".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

/// Pushes `form` as `tp` (HTTP Basic for a confidential client): status and body.
async fn push(app: &TestServer, tp: &Provisioned, form: &[(&str, String)]) -> (u16, Value) {
    let mut req = app.http.post(app.url("/oauth/par")).form(form);
    if let Some(secret) = &tp.secret {
        req = req.basic_auth(&tp.client_id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status == 201 {
        assert_eq!(resp.headers()["cache-control"], "no-store");
    }
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn authorize_url(app: &TestServer, client_id: &str, request_uri: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    format!("{}/authorize?{query}", app.base)
}

#[tokio::test]
async fn a_pushed_request_signs_the_user_in_once() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let (status, body) = push(&app, &tp, &request(&tp)).await;
    assert_eq!(status, 201, "{body}");
    let uri = body["request_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    assert_eq!(body["expires_in"], 90);

    let url = authorize_url(&app, &tp.client_id, uri);
    let code = sign_in(&url, &tp.username, PASSWORD).await;
    let (status, token) = app
        .token_as(
            &tp,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        token["scope"], "Standard",
        "the pushed scope, not the account's all"
    );

    // Used once: the same link again is an error page, not a redirect.
    let resp = app.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("invalid_request_uri"));

    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        format!("{}/oauth/par", app.issuer())
    );
}

#[tokio::test]
async fn a_pushed_request_is_checked_as_authorize_would_check_it() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let other = third_party(&app, ClientType::Confidential).await;
    let with = |name: &'static str, value: &str| {
        let mut form: Vec<_> = request(&tp)
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect();
        if !value.is_empty() {
            form.push((name, value.to_owned()));
        }
        form
    };
    for (case, form, error) in [
        (
            "unregistered redirect URI",
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        ("no state", with("state", ""), "invalid_request"),
        (
            "a scope beyond the grant",
            with("scope", "OrgAdmin Nonsense"),
            "invalid_scope",
        ),
        (
            "a request_uri inside",
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            "invalid_request",
        ),
        (
            "another client's id",
            with("client_id", &other.client_id),
            "invalid_request",
        ),
        (
            "response_type token",
            with("response_type", "token"),
            "unsupported_response_type",
        ),
    ] {
        let (status, body) = push(&app, &tp, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{case}: {body}"
        );
    }
    let wrong = Provisioned {
        secret: Some("wrong".into()),
        ..tp.clone()
    };
    let (status, body) = push(&app, &wrong, &request(&tp)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}

#[tokio::test]
async fn a_request_uri_expires_and_belongs_to_the_client_that_pushed_it() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let other = third_party(&app, ClientType::Confidential).await;

    let (_, body) = push(&app, &tp, &request(&tp)).await;
    let uri = body["request_uri"].as_str().unwrap();
    let resp = app
        .http
        .get(authorize_url(&app, &other.client_id, uri))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "another client cannot use it");

    let (_, body) = push(&app, &tp, &request(&tp)).await;
    let uri = body["request_uri"].as_str().unwrap();
    app.clock.advance(91);
    let resp = app
        .http
        .get(authorize_url(&app, &tp.client_id, uri))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "expired");
    let forged = "urn:ietf:params:oauth:request_uri:made-up";
    let resp = app
        .http
        .get(authorize_url(&app, &tp.client_id, forged))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "never pushed");
}

#[tokio::test]
async fn a_client_that_requires_par_is_refused_a_plain_request_and_served_a_pushed_one() {
    let app = spawn_app().await;
    let tp = app
        .fixture()
        .scopes("Standard")
        .app(ClientType::Public)
        .policy(ClientPolicy {
            require_par: true,
            ..ClientPolicy::default()
        })
        .user("jane", "Standard")
        .build()
        .await;
    let plain = app.authorize_url(
        &tp,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let resp = app.http.get(&plain).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let (to, params) = location_params(&resp);
    assert_eq!(to, REDIRECT);
    assert_eq!(param(&params, "error"), Some("invalid_request"));

    // A public client pushes with its client_id alone.
    let (status, body) = push(&app, &tp, &request(&tp)).await;
    assert_eq!(status, 201, "{body}");
    let url = authorize_url(&app, &tp.client_id, body["request_uri"].as_str().unwrap());
    let code = sign_in(&url, &tp.username, PASSWORD).await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn a_private_key_jwt_client_pushes_with_an_assertion_addressed_to_the_issuer() {
    let app = spawn_app().await;
    let holder = Holder::new();
    let tp = app
        .fixture()
        .scopes("Standard")
        .app(ClientType::Confidential)
        .policy(ClientPolicy {
            auth: Some(calyx_core::model::KeyAuth::PrivateKeyJwt),
            jwks: Some(holder.jwks()),
            ..ClientPolicy::default()
        })
        .user("jane", "Standard")
        .build()
        .await;
    let mut form = request(&tp);
    form.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
    ));
    form.push((
        "client_assertion",
        holder.assertion(&tp.client_id, app.issuer()),
    ));
    let (status, body) = push(&app, &tp, &form).await;
    assert_eq!(status, 201, "{body}");
}
