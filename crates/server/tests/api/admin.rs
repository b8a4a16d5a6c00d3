//! The management API (`/admin/v1`): every resource and action, its authentication, paging,
//! typed errors, changes that take effect on the serving node before the answer, and the
//! audit log that records them — never with a secret.

use calyx_core::clock::Clock;
use calyx_core::model::{ClientType, GrantType};
use calyx_testkit::admin::call_with;
use calyx_testkit::{eventually, Provisioned, TestServer, SOON};
use serde_json::{json, Value};

use crate::{app_and_client, app_and_client_with, spawn_app};

/// A third-party app (code, refresh and client credentials) with a user, on `app`.
async fn app_client(app: &TestServer) -> Provisioned {
    app.fixture()
        .scopes("read write")
        .app(ClientType::Confidential)
        .grant_types(&[
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ])
        .user("jane", "read write")
        .build()
        .await
}

/// A sign-in's refresh token for `c`.
async fn refresh_token(app: &TestServer, c: &Provisioned) -> String {
    let code = app.sign_in(c).await;
    let (status, t) = app.exchange(c, &code).await;
    assert_eq!(status, 200, "{t}");
    t["refresh_token"].as_str().unwrap().to_owned()
}

/// The status of a client-credentials request by `c` with `secret`.
async fn token_status(app: &TestServer, c: &Provisioned, secret: &str) -> u16 {
    app.post_token_form(&c.client_credentials(secret))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_missing_foreign_or_read_only_token_is_refused_as_rfc_6750_says() {
    let (app, c) = app_and_client().await;
    let admin = app.admin().await;

    let (status, body) = call_with(&app, None, "GET", "/orgs", None).await;
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = call_with(&app, Some("not-a-jwt"), "GET", "/orgs", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // An organization's ordinary token, for another API, opens nothing here.
    let org_token = app.access_token(&c).await;
    let (status, body) = call_with(&app, Some(&org_token), "GET", "/orgs", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // An organization's client cannot be granted the management API, so its org cannot
    // manage the others.
    let (status, body) = admin
        .post(
            &format!("/clients/{}/grants", c.client_id),
            json!({"audience": "urn:calyx:admin", "scopes": "admin:read admin:write"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Read only: every GET, no change.
    let reader = app.admin_with("admin:read").await;
    assert_eq!(reader.get("/orgs").await.0, 200);
    let (status, body) = reader.post("/orgs", json!({"name": "Nope"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    // Write only is not read.
    let writer = app.admin_with("admin:write").await;
    assert_eq!(writer.get("/orgs").await.0, 403);
    assert_eq!(writer.post("/orgs", json!({"name": "Yes"})).await.0, 201);

    // A disabled admin client's token stops working at once.
    let (status, _) = admin
        .patch(
            &format!("/clients/{}", reader.client_id),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(reader.get("/orgs").await.0, 401);

    // Every failure above is a security event.
    eventually(
        SOON,
        "admin authentication failures in the audit log",
        || async {
            let events = admin
                .all("/audit?type=security.admin_auth_failed", 200)
                .await;
            events.len() >= 5
        },
    )
    .await;
}

#[tokio::test]
async fn organizations_page_conflict_update_and_delete() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut made = Vec::new();
    for i in 0..7 {
        let (status, org) = admin
            .post("/orgs", json!({"name": format!("Org {i}")}))
            .await;
        assert_eq!(status, 201, "{org}");
        made.push(org["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = admin.post("/orgs", json!({"name": "Org 3"})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));

    // Pages of 3: every organization exactly once, in id order.
    let all = admin.all("/orgs", 3).await;
    let ids: Vec<&str> = all.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "ordered by id");
    for id in &made {
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id} once");
    }
    for bad in ["?limit=0", "?limit=201", "?limit=x"] {
        let (status, body) = admin.get(&format!("/orgs{bad}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request"))
        );
    }

    let id = &made[0];
    let (status, org) = admin
        .patch(&format!("/orgs/{id}"), json!({"name": "Renamed"}))
        .await;
    assert_eq!((status, org["name"].as_str()), (200, Some("Renamed")));
    let (status, _) = admin
        .patch(&format!("/orgs/{id}"), json!({"name": "Org 4"}))
        .await;
    assert_eq!(status, 409, "a taken name");
    let (status, body) = admin
        .patch(&format!("/orgs/{id}"), json!({"nmae": "typo"}))
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    assert_eq!(admin.get(&format!("/orgs/{id}")).await.1["name"], "Renamed");
    assert_eq!(admin.delete(&format!("/orgs/{id}")).await.0, 204);
    assert_eq!(admin.get(&format!("/orgs/{id}")).await.0, 404);
    assert_eq!(admin.delete(&format!("/orgs/{id}")).await.0, 404);

    // An organization with clients is not deleted out from under them.
    let c = app.fixture().build().await;
    assert_eq!(admin.delete(&format!("/orgs/{}", c.org_id)).await.0, 409);
}

#[tokio::test]
async fn apis_carry_scope_descriptions_and_refuse_unsafe_changes() {
    let (app, c) = app_and_client().await;
    let admin = app.admin().await;
    let (status, api) = admin
        .post(
            "/apis",
            json!({
                "audience": "https://ledger.example.com/",
                "name": "Ledger",
                "scopes": ["read:entries", "write:entries"],
                "scope_descriptions": {"read:entries": "Read your ledger entries"},
                "token_lifetime": 600,
            }),
        )
        .await;
    assert_eq!(status, 201, "{api}");
    assert_eq!(
        api["scope_descriptions"]["read:entries"],
        "Read your ledger entries"
    );
    assert_eq!(api["token_lifetime"], 600);
    let id = api["id"].as_str().unwrap();
    let dup = json!({"audience": "https://ledger.example.com/", "name": "Again", "scopes": "x"});
    assert_eq!(admin.post("/apis", dup).await.0, 409);
    let bad = json!({"audience": "https://x.example/", "name": "X", "scopes": "a",
        "scope_descriptions": {"b": "undefined scope"}});
    assert_eq!(admin.post("/apis", bad).await.0, 400);

    // By id or by audience.
    let by_aud = admin.get("/apis/https:%2F%2Fledger.example.com%2F").await;
    assert_eq!((by_aud.0, by_aud.1["id"].as_str()), (200, Some(id)));
    let (status, api) = admin
        .patch(
            &format!("/apis/{id}"),
            json!({"scope_descriptions": {"write:entries": "Change your ledger"}, "name": "Ledger v2"}),
        )
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(
        api["scope_descriptions"]["write:entries"],
        "Change your ledger"
    );
    assert_eq!(api["name"], "Ledger v2");

    // A scope still granted to a client cannot be removed from its API.
    let (_, api2) = admin
        .get(&format!("/apis/{}", urlencode(&c.audience)))
        .await;
    let api2 = api2["id"].as_str().unwrap().to_owned();
    let (status, body) = admin
        .patch(&format!("/apis/{api2}"), json!({"scopes": "nothing"}))
        .await;
    assert_eq!(status, 409, "{body}");

    // The management API itself is built in.
    let (_, builtin) = admin.get("/apis/urn:calyx:admin").await;
    assert_eq!(builtin["built_in"], true);
    let builtin_id = builtin["id"].as_str().unwrap();
    assert_eq!(admin.delete(&format!("/apis/{builtin_id}")).await.0, 409);

    // Deleting an API takes its grants: the client can no longer get tokens for it.
    assert_eq!(token_status(&app, &c, c.secret()).await, 200);
    assert_eq!(admin.delete(&format!("/apis/{api2}")).await.0, 204);
    assert_ne!(token_status(&app, &c, c.secret()).await, 200);
    assert_eq!(admin.delete(&format!("/apis/{id}")).await.0, 204);
    assert_eq!(admin.get(&format!("/apis/{id}")).await.0, 404);
}

#[tokio::test]
async fn clients_are_created_shown_without_secrets_disabled_and_deleted_at_once() {
    let (app, c) = app_and_client().await;
    let admin = app.admin().await;
    let (status, made) = admin
        .post(
            "/clients",
            json!({"org_id": c.org_id, "name": "Billing sync", "grant_types": ["client_credentials"],
                   "website_uri": "https://billing.example.com/"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(made["client_secret"].as_str().unwrap().len() >= 43);
    let (status, shown) = admin.get(&format!("/clients/{id}")).await;
    assert_eq!(status, 200);
    assert!(shown.get("client_secret").is_none(), "{shown}");
    assert_eq!(shown["disabled"], false);
    assert_eq!(shown["website_uri"], "https://billing.example.com/");
    let unknown_org = json!({"org_id": "org_nope", "name": "X"});
    assert_eq!(admin.post("/clients", unknown_org).await.0, 404);
    let public_cc = json!({"org_id": c.org_id, "name": "X", "type": "public", "grant_types": ["client_credentials"]});
    assert_eq!(admin.post("/clients", public_cc).await.0, 400);

    // The organization's listing holds both of its clients and no other.
    let listed = admin.all(&format!("/clients?org_id={}", c.org_id), 1).await;
    let ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&id.as_str()) && ids.contains(&c.client_id.as_str()));

    // Disabling refuses the very next token request on this node; enabling restores it.
    assert_eq!(token_status(&app, &c, c.secret()).await, 200, "cached");
    let (status, body) = admin
        .patch(
            &format!("/clients/{}", c.client_id),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(true)));
    let resp = app.post_token_form(&c.client_credentials(c.secret())).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // Its tokens no longer act for the organization either.
    let (status, _) = admin
        .patch(
            &format!("/clients/{}", c.client_id),
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(token_status(&app, &c, c.secret()).await, 200);

    // Rotation with no grace: the old secret is refused on the next request.
    let (status, rotated) = admin
        .post(
            &format!("/clients/{}/rotate-secret", c.client_id),
            json!({"grace_seconds": 0}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(token_status(&app, &c, c.secret()).await, 401);
    assert_eq!(token_status(&app, &c, new_secret).await, 200);

    // Deletion: refused at once, and gone.
    assert_eq!(
        admin.delete(&format!("/clients/{}", c.client_id)).await.0,
        204
    );
    assert_eq!(token_status(&app, &c, new_secret).await, 401);
    assert_eq!(admin.get(&format!("/clients/{}", c.client_id)).await.0, 404);
}

#[tokio::test]
async fn grants_refuse_duplicates_and_changes_apply_to_the_next_token() {
    let (app, c) = app_and_client_with(|f| f.default_audience(true)).await;
    let admin = app.admin().await;
    let (_, api) = admin
        .get(&format!("/apis/{}", urlencode(&c.audience)))
        .await;
    let api_id = api["id"].as_str().unwrap().to_owned();
    let grants = format!("/clients/{}/grants", c.client_id);
    let (status, listed) = admin.get(&grants).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["default"], true);

    // Creating it again is a conflict, and leaves the grant (and its default) as it was.
    let (status, body) = admin
        .post(
            &grants,
            json!({"api_id": api_id, "scopes": "read:consumers"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("grant update"));
    let (_, grant) = admin.get(&format!("{grants}/{api_id}")).await;
    assert_eq!(grant["default"], true);
    assert_eq!(
        grant["scopes"],
        json!(["read:consumers", "write:consumers"])
    );

    // Narrowed: the next token holds only what is left.
    let (status, grant) = admin
        .patch(
            &format!("{grants}/{api_id}"),
            json!({"scopes": ["read:consumers"]}),
        )
        .await;
    assert_eq!(status, 200, "{grant}");
    let t = app.token(&c).await;
    assert_eq!(t["scope"], "read:consumers");
    let (status, body) = admin
        .patch(
            &format!("{grants}/{api_id}"),
            json!({"scopes": "undefined"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Deleted: the next token request for that audience is refused.
    assert_eq!(admin.delete(&format!("{grants}/{api_id}")).await.0, 204);
    let (status, _) = app
        .token_as(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("audience", &c.audience),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(admin.get(&format!("{grants}/{api_id}")).await.0, 404);
    // And a new grant by audience works again.
    let (status, _) = admin
        .post(
            &grants,
            json!({"audience": c.audience, "scopes": "read:consumers"}),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn users_are_managed_and_a_deleted_users_refresh_tokens_stop() {
    let app = spawn_app().await;
    let c = app_client(&app).await;
    let admin = app.admin().await;
    let (status, user) = admin
        .post(
            "/users",
            json!({"org_id": c.org_id, "username": "ops-bob", "password": "correct horse battery",
                   "email": "bob@example.com", "allowed_scopes": {c.audience.clone(): "read"}}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["has_password"], true);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    assert_eq!(user["allowed_scopes"][&c.audience], json!(["read"]));
    let id = user["id"].as_str().unwrap().to_owned();
    let dup = json!({"org_id": c.org_id, "username": "ops-bob"});
    assert_eq!(admin.post("/users", dup).await.0, 409);
    let (status, user) = admin
        .patch(
            &format!("/users/{id}"),
            json!({"email": "robert@example.com", "allowed_scopes": {c.audience.clone(): ["read", "write"]}}),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["email"], "robert@example.com");
    assert_eq!(
        user["allowed_scopes"][&c.audience],
        json!(["read", "write"])
    );
    let listed = admin.all(&format!("/users?org_id={}", c.org_id), 1).await;
    assert_eq!(listed.len(), 2, "jane and bob");

    // Jane signs in; deleting her ends the sign-in at once.
    let rt = refresh_token(&app, &c).await;
    assert_eq!(admin.delete(&format!("/users/{}", c.user_id)).await.0, 204);
    let (status, body) = app.refresh(&c, &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(admin.get(&format!("/users/{}", c.user_id)).await.0, 404);
}

#[tokio::test]
async fn families_are_listed_and_revoked_one_by_one_or_per_client() {
    let app = spawn_app().await;
    let c = app_client(&app).await;
    let admin = app.admin().await;
    let first = refresh_token(&app, &c).await;
    let second = refresh_token(&app, &c).await;
    let by_client = admin
        .all(&format!("/families?client_id={}", c.client_id), 1)
        .await;
    assert_eq!(by_client.len(), 2);
    let by_user = admin
        .all(&format!("/families?user_id={}", c.user_id), 50)
        .await;
    assert_eq!(by_user.len(), 2);
    assert_eq!(
        admin.get("/families").await.0,
        400,
        "a client or a user is named"
    );

    // Revoke the first sign-in's family: only its refresh token stops.
    let (_, t) = app.refresh(&c, &first, None).await;
    let first = t["refresh_token"].as_str().unwrap().to_owned();
    let (_, claims) = calyx_testkit::jwt_parts(t["access_token"].as_str().unwrap());
    let sid = claims["sid"].as_str().unwrap();
    let (status, fam) = admin
        .post(&format!("/families/{sid}/revoke"), json!({}))
        .await;
    assert_eq!(status, 200, "{fam}");
    assert!(fam["revoked_at"].is_i64());
    assert_eq!(app.refresh(&c, &first, None).await.0, 400);
    let (status, t) = app.refresh(&c, &second, None).await;
    assert_eq!(status, 200);
    let second = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        admin.post("/families/fam_nope/revoke", json!({})).await.0,
        404
    );

    // Revoke every token of the client.
    let (status, body) = admin
        .post(
            &format!("/clients/{}/revoke-tokens", c.client_id),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["families_revoked"], 1);
    assert_eq!(app.refresh(&c, &second, None).await.0, 400);
}

#[tokio::test]
async fn keys_rotate_and_a_retired_key_leaves_the_jwks_at_once() {
    let (app, c) = app_and_client().await;
    let admin = app.admin().await;
    let (status, keys) = admin.get("/keys").await;
    assert_eq!(status, 200);
    let states: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"current") && states.contains(&"next"),
        "{states:?}"
    );

    let (status, rotated) = admin.post("/keys/rotate", json!({"alg": "ES256"})).await;
    assert_eq!(status, 200, "{rotated}");
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    // The very next token on this node is signed with the promoted key.
    let token = app.access_token(&c).await;
    assert_eq!(calyx_testkit::kid_of(&token), kid);

    let (status, _) = admin.post(&format!("/keys/{kid}/retire"), json!({})).await;
    assert_eq!(status, 200);
    assert!(!app.jwks_kids().await.contains(&kid), "unpublished at once");
    let token = app.access_token(&c).await;
    assert_ne!(calyx_testkit::kid_of(&token), kid, "no longer signs");
    assert_eq!(admin.post("/keys/kid-nope/retire", json!({})).await.0, 404);
    assert_eq!(
        admin.post("/keys/rotate", json!({"alg": "HS256"})).await.0,
        400
    );
}

#[tokio::test]
async fn the_audit_log_records_who_changed_what_and_filters() {
    let (app, c) = app_and_client().await;
    let admin = app.admin().await;
    let t0 = app.clock.now();
    let (_, made) = admin
        .post("/clients", json!({"org_id": c.org_id, "name": "Audited"}))
        .await;
    let id = made["id"].as_str().unwrap().to_owned();
    admin
        .patch(&format!("/clients/{id}"), json!({"disabled": true}))
        .await;
    let events = admin.all(&format!("/audit?client_id={id}"), 200).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["client.created", "client.disabled"]);
    for e in &events {
        assert_eq!(e["actor"], format!("client:{}", admin.client_id));
        assert_eq!(e["address"], "127.0.0.1");
        assert_eq!(e["org_id"], c.org_id.as_str());
        assert!(e["at"].as_i64().unwrap() >= t0);
    }
    assert_eq!(events[1]["detail"]["disabled"], true);

    let only = admin.all("/audit?type=client.disabled", 200).await;
    assert!(only.iter().all(|e| e["type"] == "client.disabled") && !only.is_empty());
    let family = admin.all("/audit?type=client.*", 200).await;
    assert!(family.len() >= 2);
    let by_org = admin.all(&format!("/audit?org_id={}", c.org_id), 200).await;
    assert!(by_org.iter().all(|e| e["org_id"] == c.org_id.as_str()));
    assert!(by_org.len() >= 3, "the fixture's client too");
    let future = admin
        .all(&format!("/audit?since={}", t0 + 3_600), 200)
        .await;
    assert!(future.is_empty());
    let past = admin.all(&format!("/audit?until={t0}"), 200).await;
    assert!(past.iter().all(|e| e["at"].as_i64().unwrap() < t0));
    assert_eq!(admin.get("/audit?type=nonsense").await.0, 400);
    let (status, one) = admin
        .get(&format!("/audit/{}", events[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (status, one["type"].as_str()),
        (200, Some("client.created"))
    );
}

#[tokio::test]
async fn no_secret_appears_in_any_get_listing_or_audit_event() {
    let app = spawn_app().await;
    let c = app_client(&app).await;
    let admin = app.admin().await;
    let mut secrets = vec![c.secret().to_owned(), admin.secret.clone()];
    let (_, made) = admin
        .post("/clients", json!({"org_id": c.org_id, "name": "Second"}))
        .await;
    secrets.push(made["client_secret"].as_str().unwrap().to_owned());
    let id = made["id"].as_str().unwrap();
    let (_, rotated) = admin
        .post(
            &format!("/clients/{id}/rotate-secret"),
            json!({"grace_seconds": 60}),
        )
        .await;
    secrets.push(rotated["client_secret"].as_str().unwrap().to_owned());
    let (_, hook) = admin
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await;
    secrets.push(hook["secret"].as_str().unwrap().to_owned());
    let password = "a password nobody should read";
    admin
        .post(
            "/users",
            json!({"org_id": c.org_id, "username": "pw-user", "password": password}),
        )
        .await;
    let rt = refresh_token(&app, &c).await;
    secrets.push(rt.clone());
    secrets.push(password.to_owned());

    let hook_id = hook["id"].as_str().unwrap();
    let mut seen = String::new();
    for path in [
        "/orgs".to_owned(),
        "/apis".to_owned(),
        "/clients".to_owned(),
        format!("/clients/{id}"),
        format!("/clients/{}/grants", c.client_id),
        "/users".to_owned(),
        "/keys".to_owned(),
        format!("/families?client_id={}", c.client_id),
        "/webhooks".to_owned(),
        format!("/webhooks/{hook_id}"),
        format!("/webhooks/{hook_id}/deliveries"),
        "/audit?limit=200".to_owned(),
    ] {
        let (status, body) = admin.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.push_str(&body.to_string());
    }
    for s in &secrets {
        assert!(!seen.contains(s.as_str()), "a secret is shown by a GET");
    }
    for field in [
        "secret_hash",
        "password_hash",
        "secret_sealed",
        "private_key",
    ] {
        assert!(!seen.contains(field), "{field} is shown by a GET");
    }
}

#[tokio::test]
async fn webhooks_are_managed_and_validated() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for bad in [
        json!({"url": "http://example.com/hook", "events": ["*"]}),
        json!({"url": "https://example.com/hook", "events": []}),
        json!({"url": "https://example.com/hook", "events": ["client.exploded"]}),
        json!({"url": "not a url", "events": ["*"]}),
    ] {
        let (status, body) = admin.post("/webhooks", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, hook) = admin
        .post(
            "/webhooks",
            json!({"url": "https://hooks.example.com/calyx", "events": ["security.*", "client.deleted"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap();
    assert!(hook["secret"].as_str().unwrap().len() >= 43);
    let (_, shown) = admin.get(&format!("/webhooks/{id}")).await;
    assert!(shown.get("secret").is_none());
    let (status, hook) = admin
        .patch(
            &format!("/webhooks/{id}"),
            json!({"disabled": true, "events": ["*"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (hook["disabled"].as_bool(), &hook["events"]),
        (Some(true), &json!(["*"]))
    );
    assert_eq!(admin.all("/webhooks", 1).await.len(), 1);
    assert_eq!(admin.delete(&format!("/webhooks/{id}")).await.0, 204);
    assert_eq!(admin.get(&format!("/webhooks/{id}")).await.0, 404);
}

#[tokio::test]
async fn token_issuance_is_counted_per_client_and_hour() {
    let (app, c) = app_and_client().await;
    let admin = app.admin().await;
    for _ in 0..3 {
        app.access_token(&c).await;
    }
    let path = format!("/clients/{}/usage", c.client_id);
    eventually(
        std::time::Duration::from_secs(12),
        "the usage flush",
        || async {
            let (status, body) = admin.get(&path).await;
            assert_eq!(status, 200);
            let total: i64 = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["tokens"].as_i64().unwrap())
                .sum();
            total == 3
        },
    )
    .await;
}

#[tokio::test]
async fn the_purge_runs_on_demand_and_reports() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (status, report) = admin.post("/purge", json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{report}");
    for field in [
        "codes",
        "families",
        "refresh_tokens",
        "keys",
        "audit_events",
    ] {
        assert!(report[field].is_u64(), "{field}: {report}");
    }
    let reader = app.admin_with("admin:read").await;
    assert_eq!(reader.post("/purge", json!({})).await.0, 403);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Entitlements: set within the API's scopes, replaced, listed, removed; never on the
/// management API or for the operators' organization. Roles: `org_admin` for an
/// organization's users, `operator` only in the operators' organization, never without a
/// password; `/v2/users` cannot make one.
#[tokio::test]
async fn entitlements_and_roles_follow_their_rules() {
    let (app, c) = app_and_client_with(|f| f.scopes("read write")).await;
    let admin = app.admin().await;
    let ent = format!("/orgs/{}/entitlements", c.org_id);
    let api = format!("{ent}/{}", urlencoding(&c.audience));

    let (status, body) = admin
        .call("PUT", &api, Some(json!({"scopes": "read"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scopes"], json!(["read"]));
    let (status, body) = admin
        .call("PUT", &api, Some(json!({"scopes": ["read", "write"]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = admin.get(&ent).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["scopes"], json!(["read", "write"]));
    assert_eq!(list[0]["audience"], c.audience);
    for (path, body, status) in [
        (api.clone(), json!({"scopes": "nope"}), 400),
        (
            format!("{ent}/urn:calyx:admin"),
            json!({"scopes": "admin:read"}),
            400,
        ),
        (
            format!(
                "/orgs/org_calyx_operators/entitlements/{}",
                urlencoding(&c.audience)
            ),
            json!({"scopes": "read"}),
            400,
        ),
        (
            format!("/orgs/org_nobody/entitlements/{}", urlencoding(&c.audience)),
            json!({"scopes": "read"}),
            404,
        ),
        (api.clone(), json!({"scopes": "read", "extra": 1}), 400),
    ] {
        let (got, answer) = admin.call("PUT", &path, Some(body)).await;
        assert_eq!(got, status, "{path}: {answer}");
    }
    assert_eq!(admin.delete(&api).await.0, 204);
    assert_eq!(admin.delete(&api).await.0, 404);
    let (_, events) = admin.get("/audit?type=org.*").await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"org.entitlement_set"), "{kinds:?}");
    assert!(kinds.contains(&"org.entitlement_deleted"), "{kinds:?}");

    // Roles.
    let user = |org: &str, name: &str, role: &str| json!({"org_id": org, "username": name, "password": "long enough pw", "role": role});
    let (status, body) = admin
        .post("/users", user(&c.org_id, "dev-admin", "org_admin"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["role"], "org_admin");
    for (body, why) in [
        (
            user(&c.org_id, "x1", "operator"),
            "operator outside the operators' org",
        ),
        (user(&c.org_id, "x2", "root"), "unknown role"),
        (
            json!({"org_id": c.org_id, "username": "x3", "role": "org_admin"}),
            "a role without a password",
        ),
    ] {
        let (status, answer) = admin.post("/users", body).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    let id = body["id"].as_str().unwrap();
    let (status, body) = admin
        .patch(&format!("/users/{id}"), json!({"role": ""}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("role").is_none(), "{body}");
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
