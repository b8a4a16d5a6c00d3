//! Style B: an organization registers its users and mints user-scoped tokens for them.

use calyx_core::clock::Clock;
use calyx_core::model::SigningAlg;
use calyx_testkit::{basic, eventually, jwt_parts, Provisioned, TestServer, SOON};
use calyx_token::{AccessClaims, SigningKey};
use serde_json::{json, Value};

use crate::spawn_app;

const ORG_SCOPES: &str = "read:consumers write:consumers users:write users:authenticate";

/// An org client whose token may manage users, and its org token.
async fn org(app: &TestServer, scopes: &str) -> (Provisioned, String) {
    let c = app.fixture().scopes(scopes).build().await;
    let token = app.access_token(&c).await;
    (c, token)
}

async fn call(
    app: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = app.http.request(method.parse().unwrap(), app.url(path));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    assert!(status < 500, "{method} {path} → {status}: {text}");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

/// A server and an org client allowed [`ORG_SCOPES`], with its org token.
async fn app_and_org() -> (TestServer, Provisioned, String) {
    let app = spawn_app().await;
    let (c, token) = org(&app, ORG_SCOPES).await;
    (app, c, token)
}

/// `GET path`, as `token`.
async fn get_as(
    app: &TestServer,
    path: &str,
    token: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    call(app, "GET", path, Some(token), None).await
}

/// `POST /v2/users` with `body`, as `token`.
async fn post_user(
    app: &TestServer,
    token: &str,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    call(app, "POST", "/v2/users", Some(token), Some(body)).await
}

/// `POST /v2/users/{user}/authenticate`, as `token`.
async fn authenticate(
    app: &TestServer,
    token: &str,
    user: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let path = format!("/v2/users/{user}/authenticate");
    call(app, "POST", &path, Some(token), None).await
}

async fn register(app: &TestServer, token: &str, body: Value) -> Value {
    let (status, v, headers) = post_user(app, token, body).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        headers["location"],
        format!("/v2/users/{}", v["user_id"].as_str().unwrap()).as_str()
    );
    v
}

#[tokio::test]
async fn register_list_get_and_delete_within_the_org() {
    let (app, _, token) = app_and_org().await;
    let u = register(
        &app,
        &token,
        json!({"external_id": "cust-1", "email": "a@example.com"}),
    )
    .await;
    assert!(u["user_id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(u["external_id"], "cust-1");
    assert_eq!(
        u["allowed_scopes"], "read:consumers write:consumers",
        "defaults to the org's, less reserved"
    );
    let u2 = register(
        &app,
        &token,
        json!({"external_id": "cust-2", "allowed_scopes": ["read:consumers"]}),
    )
    .await;
    assert_eq!(u2["allowed_scopes"], "read:consumers");

    let (status, page, _) = get_as(&app, "/v2/users?limit=1", &token).await;
    assert_eq!(status, 200);
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_str().unwrap().to_owned();
    let (_, page2, _) = get_as(&app, &format!("/v2/users?limit=1&after={after}"), &token).await;
    assert_eq!(page2["users"].as_array().unwrap().len(), 1);
    assert!(page2["next_after"].is_null());
    let mut ids = vec![
        page["users"][0]["user_id"].clone(),
        page2["users"][0]["user_id"].clone(),
    ];
    ids.sort_by_key(|v| v.to_string());
    let mut want = vec![u["user_id"].clone(), u2["user_id"].clone()];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(ids, want);

    let path = format!("/v2/users/{}", u["user_id"].as_str().unwrap());
    let (status, got, _) = get_as(&app, &path, &token).await;
    assert_eq!((status, &got["external_id"]), (200, &json!("cust-1")));
    assert_eq!(call(&app, "DELETE", &path, Some(&token), None).await.0, 204);
    assert_eq!(get_as(&app, &path, &token).await.0, 404);
    assert_eq!(call(&app, "DELETE", &path, Some(&token), None).await.0, 404);
}

#[tokio::test]
async fn another_organizations_token_sees_nothing() {
    let app = spawn_app().await;
    let (_, a) = org(&app, ORG_SCOPES).await;
    let (_, b) = org(&app, ORG_SCOPES).await;
    let u = register(&app, &a, json!({"external_id": "shared-id"})).await;
    let id = u["user_id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/v2/users/{id}")),
        ("DELETE", format!("/v2/users/{id}")),
        ("POST", format!("/v2/users/{id}/authenticate")),
    ] {
        let (status, body, _) = call(&app, method, &path, Some(&b), None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, page, _) = get_as(&app, "/v2/users", &b).await;
    assert_eq!(page["users"], json!([]));
    // The same external id is free in another organization, but not twice in one.
    register(&app, &b, json!({"external_id": "shared-id"})).await;
    let (status, body, _) = post_user(&app, &a, json!({"external_id": "shared-id"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "conflict"));
    // The user still exists for its own organization.
    assert_eq!(get_as(&app, &format!("/v2/users/{id}"), &a).await.0, 200);
}

#[tokio::test]
async fn authenticate_returns_a_user_scoped_token_for_the_org_audience() {
    let (app, c, token) = app_and_org().await;
    let user = json!({"external_id": "x", "allowed_scopes": "read:consumers"});
    let u = register(&app, &token, user).await;
    let id = u["user_id"].as_str().unwrap();
    let (status, body, headers) = authenticate(&app, &token, id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["expiresIn"], 7200);
    let claims = app
        .verify(body["access_token"].as_str().unwrap(), &c.audience)
        .await;
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["aud"], c.audience);
    assert_eq!(
        claims["scope"], "read:consumers",
        "the user's scopes, never users:*"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        7200
    );

    // RFC 8693 token exchange gives the equivalent token.
    let (status, ex) = exchange(&app, &c, &token, id, Some(ACCESS_TOKEN_TYPE)).await;
    assert_eq!(status, 200);
    assert_eq!(
        ex["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(ex["expires_in"], 7200);
    let ex_claims = app
        .verify(ex["access_token"].as_str().unwrap(), &c.audience)
        .await;
    for k in ["sub", "aud", "scope", "client_id", "org_id"] {
        assert_eq!(ex_claims[k], claims[k], "{k}");
    }
    // Another client cannot exchange this org's token.
    let (other, _) = org(&app, ORG_SCOPES).await;
    let (status, _) = exchange(&app, &other, &token, id, None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_missing_scope_is_403_insufficient_scope() {
    let app = spawn_app().await;
    let (_, writer) = org(&app, "read:consumers users:write").await;
    let (_, reader) = org(&app, "read:consumers").await;
    let (status, body, headers) = post_user(&app, &reader, json!({})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "insufficient_scope")
    );
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer")
            && challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(r#"scope="users:write""#),
        "{challenge}"
    );
    let u = register(&app, &writer, json!({})).await;
    let (status, _, headers) = authenticate(&app, &writer, u["user_id"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains(r#"scope="users:authenticate""#));
}

#[tokio::test]
async fn a_user_scoped_token_cannot_act_for_its_organization() {
    let (app, _, token) = app_and_org().await;
    let u = register(&app, &token, json!({})).await;
    let id = u["user_id"].as_str().unwrap();
    let (_, t, _) = authenticate(&app, &token, id).await;
    let user_token = t["access_token"].as_str().unwrap();
    for (method, path) in [
        ("GET", "/v2/users".to_owned()),
        ("POST", format!("/v2/users/{id}/authenticate")),
        ("DELETE", format!("/v2/users/{id}")),
    ] {
        let (status, _, headers) =
            call(&app, method, &path, Some(user_token), Some(json!({}))).await;
        assert!(status == 401 || status == 403, "{method} {path}: {status}");
        assert!(headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn bad_bearer_tokens_get_401_with_a_challenge() {
    let (app, c, token) = app_and_org().await;
    // Wrong issuer, signed with this server's own key.
    let now = app.clock.now();
    let stored = app.manager.store.live_keys(now).await.unwrap();
    let der = app.manager.sealer.open(&stored[0].private_key).unwrap();
    let key = SigningKey::from_pkcs8(stored[0].alg, &der).unwrap();
    let claims = |iss: &str| AccessClaims {
        iss: iss.into(),
        sub: format!("{}@clients", c.client_id),
        aud: c.audience.clone(),
        exp: now + 600,
        iat: now,
        jti: "j".into(),
        client_id: c.client_id.clone(),
        scope: ORG_SCOPES.into(),
        org_id: Some("org_x".into()),
        sid: None,
        cnf: None,
    };
    let wrong_issuer = key.sign(&claims("https://evil.example.com")).unwrap();
    // Signed by a key this server does not have.
    let (_, stranger) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let foreign = stranger.sign(&claims(&app.base)).unwrap();
    // Tampered signature.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("not a JWT", Some("Bearer not.a.jwt".into())),
        ("no scheme", Some(token.clone())),
        ("Basic scheme", Some(basic("a", "b"))),
        ("tampered", Some(format!("Bearer {tampered}"))),
        ("foreign key", Some(format!("Bearer {foreign}"))),
        ("wrong issuer", Some(format!("Bearer {wrong_issuer}"))),
    ];
    for (name, authorization) in cases {
        let mut req = app.http.get(app.url("/v2/users"));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{name}");
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer realm=\"calyx\""),
            "{name}: {challenge}"
        );
        if name != "missing" {
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{name}: {challenge}"
            );
        }
    }
    // Expired.
    app.clock.advance(86_401);
    let (status, body, _) = get_as(&app, "/v2/users", &token).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (401, "invalid_token")
    );
}

#[tokio::test]
async fn deleting_a_user_makes_its_tokens_inactive() {
    let (app, c, token) = app_and_org().await;
    let u = register(&app, &token, json!({"external_id": "bye"})).await;
    let id = u["user_id"].as_str().unwrap();
    let (_, t, _) = authenticate(&app, &token, id).await;
    let user_token = t["access_token"].as_str().unwrap().to_owned();
    let introspect = |tok: String| {
        let (app, c) = (&app, &c);
        async move { app.introspect(c, &tok).await["active"].as_bool().unwrap() }
    };
    assert!(introspect(user_token.clone()).await);
    assert_eq!(
        call(
            &app,
            "DELETE",
            &format!("/v2/users/{id}"),
            Some(&token),
            None
        )
        .await
        .0,
        204
    );
    assert!(!introspect(user_token).await);
    assert!(
        introspect(token).await,
        "the org token itself is unaffected"
    );
}

#[tokio::test]
async fn malformed_registrations_get_400_invalid_request() {
    let (app, _, token) = app_and_org().await;
    let bad: [(&str, &str); 5] = [
        ("application/json", "{"),
        ("application/json", "[]"),
        ("application/json", r#"{"allowed_scopes": "admin"}"#),
        ("application/json", r#"{"allowed_scopes": "users:write"}"#),
        ("text/plain", "{}"),
    ];
    for (ct, body) in bad {
        let resp = app
            .http
            .post(app.url("/v2/users"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            (status.as_u16(), v["error"].as_str().unwrap()),
            (400, "invalid_request"),
            "{ct} {body}: {v}"
        );
    }
    for query in ["limit=0", "limit=", "limit=201", "limit=x"] {
        let (status, _, _) = get_as(&app, &format!("/v2/users?{query}"), &token).await;
        assert_eq!(status, 400, "{query}");
    }
    let (status, _, _) = get_as(&app, "/v2/users?after=%00", &token).await;
    assert_eq!(status, 400);
    for method in ["GET", "DELETE"] {
        assert_eq!(
            call(&app, method, "/v2/users/usr_%00x", Some(&token), None)
                .await
                .0,
            404
        );
    }
}

/// An org client granted only `read:consumers` (plus user management) on an API that also
/// defines `write:consumers` and `read:credit.score`; returns it and its org token.
async fn narrow_org(app: &TestServer) -> (Provisioned, String) {
    let c = app
        .fixture()
        .scopes("read:consumers write:consumers read:credit.score")
        .grant("read:consumers users:write users:authenticate")
        .build()
        .await;
    let token = app.access_token(&c).await;
    (c, token)
}

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An RFC 8693 token exchange of an org token for a token for `user`, as client `c`.
async fn exchange(
    app: &TestServer,
    c: &Provisioned,
    org_token: &str,
    user: &str,
    subject_token_type: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", org_token),
        ("requested_subject", user),
    ];
    if let Some(t) = subject_token_type {
        form.push(("subject_token_type", t));
    }
    app.token_as(c, &form).await
}

#[tokio::test]
async fn a_user_cannot_be_given_scopes_beyond_the_org_clients_grant() {
    let app = spawn_app().await;
    let (c, token) = narrow_org(&app).await;
    for scopes in [
        json!("write:consumers"),
        json!(["read:consumers", "read:credit.score"]),
    ] {
        let (status, v, _) = post_user(&app, &token, json!({"allowed_scopes": scopes})).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_scope")),
            "{v}"
        );
    }
    // Within the grant: accepted, and the minted tokens hold exactly that.
    let u = register(&app, &token, json!({"allowed_scopes": "read:consumers"})).await;
    let id = u["user_id"].as_str().unwrap();
    let (status, body, _) = authenticate(&app, &token, id).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "read:consumers");
    assert_eq!(claims["client_id"], c.client_id.as_str());

    // The grant narrows after registration: minting intersects with the grant as it is now.
    app.manager
        .update_grant(
            &c.client_id,
            &c.audience,
            crate::grant("users:write users:authenticate", true),
        )
        .await
        .unwrap();
    eventually(SOON, "tokens follow the narrowed grant", || async {
        let (status, body, _) = authenticate(&app, &token, id).await;
        status == 200 && jwt_parts(body["access_token"].as_str().unwrap()).1["scope"] == ""
    })
    .await;
    let (status, ex) = exchange(&app, &c, &token, id, None).await;
    assert_eq!(status, 200, "{ex}");
    assert_eq!(ex["scope"], "", "the exchange intersects too");
}

#[tokio::test]
async fn a_username_is_unique_per_organization_and_reveals_nothing_across_them() {
    let app = spawn_app().await;
    let (_, a) = org(&app, ORG_SCOPES).await;
    let (_, b) = org(&app, ORG_SCOPES).await;
    register(&app, &a, json!({"username": "jane"})).await;
    // Org B may have its own jane: a refusal here would tell B that some org has one.
    register(&app, &b, json!({"username": "jane"})).await;
    let (status, v, _) = post_user(&app, &b, json!({"username": "jane"})).await;
    assert_eq!(status, 409, "within one org the name is taken: {v}");
}

async fn legacy(app: &TestServer, user: &str, authorization: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/users/authenticate/{user}")))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_legacy_v1_authenticate_is_off_unless_enabled() {
    let (app, c, token) = app_and_org().await;
    let u = register(&app, &token, json!({"allowed_scopes": "read:consumers"})).await;
    let resp = legacy(
        &app,
        u["user_id"].as_str().unwrap(),
        &format!("Bearer {}:{}", c.client_id, c.secret()),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
}

#[tokio::test]
async fn the_legacy_v1_authenticate_answers_the_user_token_as_plain_text() {
    let app = crate::spawn_app_with(|cfg| cfg.legacy_user_authenticate_v1 = true).await;
    let (c, token) = org(&app, ORG_SCOPES).await;
    let u = register(&app, &token, json!({"allowed_scopes": "read:consumers"})).await;
    let id = u["user_id"].as_str().unwrap();
    let good = format!("Bearer {}:{}", c.client_id, c.secret());

    let resp = legacy(&app, id, &good).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let user_token = resp.text().await.unwrap();
    let claims = app.verify(&user_token, &c.audience).await;
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["scope"], "read:consumers");

    // Errors are JSON, as the sample decodes them.
    let (other, other_token) = org(&app, ORG_SCOPES).await;
    let theirs = register(&app, &other_token, json!({})).await;
    for (auth, user, status, error) in [
        (
            format!("Bearer {}:wrong", c.client_id),
            id,
            401,
            "invalid_client",
        ),
        (format!("Bearer {}", c.client_id), id, 401, "invalid_client"),
        (
            format!("Basic {}:{}", c.client_id, c.secret()),
            id,
            401,
            "invalid_client",
        ),
        (
            good.clone(),
            theirs["user_id"].as_str().unwrap(),
            404,
            "not_found",
        ),
        (good.clone(), "usr_nobody", 404, "not_found"),
    ] {
        let resp = legacy(&app, user, &auth).await;
        assert_eq!(resp.status(), status, "{auth}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], error, "{auth}");
    }
    // Another organization's client cannot reach this user.
    let resp = legacy(
        &app,
        id,
        &format!("Bearer {}:{}", other.client_id, other.secret()),
    )
    .await;
    assert_eq!(resp.status(), 404);

    // Throttled like the token endpoint: after 20 failures a minute, 429.
    let mut last = 0;
    for _ in 0..25 {
        last = legacy(&app, id, &format!("Bearer {}:wrong", c.client_id))
            .await
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    assert_eq!(
        legacy(&app, id, &good).await.status(),
        200,
        "the owner still gets in"
    );
}
