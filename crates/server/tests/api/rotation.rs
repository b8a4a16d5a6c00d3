//! Secret rotation (with and without grace) and signing-key rotation on a running server.

use calyx_core::model::SigningAlg;
use serde_json::Value;

use calyx_testkit::{eventually, jwt_parts, Provisioned, TestServer, SOON};

use crate::{app_and_client, app_and_client_with};

async fn status_with(app: &TestServer, c: &Provisioned, secret: &str) -> u16 {
    app.post_token_form(&c.client_credentials(secret))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn rotating_a_secret_without_grace_stops_the_old_one_and_starts_the_new_one() {
    let (app, c) = app_and_client().await;
    assert_eq!(
        status_with(&app, &c, c.secret()).await,
        200,
        "old secret is cached"
    );
    let new = app.manager.rotate_secret(&c.client_id, 0).await.unwrap().1;
    // The new secret works at once: a failed check re-reads the client from the database.
    assert_eq!(status_with(&app, &c, &new).await, 200);
    // The old one stops (immediately after that re-read, and in any case within one reload).
    eventually(SOON, "the old secret stops working", || async {
        status_with(&app, &c, c.secret()).await == 401
    })
    .await;
}

#[tokio::test]
async fn rotating_a_secret_with_grace_keeps_the_old_one_until_the_grace_ends() {
    let (app, c) = app_and_client().await;
    let new = app
        .manager
        .rotate_secret(&c.client_id, 300)
        .await
        .unwrap()
        .1;
    assert_eq!(status_with(&app, &c, &new).await, 200);
    assert_eq!(
        status_with(&app, &c, c.secret()).await,
        200,
        "old secret inside the grace period"
    );
    app.clock.advance(301);
    assert_eq!(
        status_with(&app, &c, c.secret()).await,
        401,
        "old secret after the grace period"
    );
    assert_eq!(status_with(&app, &c, &new).await, 200);
}

#[tokio::test]
async fn key_rotation_takes_effect_on_a_running_server_and_old_tokens_keep_verifying() {
    let (app, c) = app_and_client().await;
    let old: Value = app.token(&c).await;
    let old_token = old["access_token"].as_str().unwrap().to_owned();
    let (old_header, _) = jwt_parts(&old_token);

    let new_kid = app
        .manager
        .rotate_key(calyx_core::model::SigningAlg::ES256)
        .await
        .unwrap()
        .kid;
    assert_ne!(old_header["kid"], new_kid.as_str());
    eventually(SOON, "new tokens carry the new kid", || async {
        let v = app.token(&c).await;
        jwt_parts(v["access_token"].as_str().unwrap()).0["kid"] == new_kid.as_str()
    })
    .await;

    let kids = app.jwks_kids().await;
    assert!(kids.contains(&new_kid), "the new key is published");
    assert!(
        kids.contains(&old_header["kid"].as_str().unwrap().to_owned()),
        "the old key is still published"
    );
    app.verify(&old_token, &c.audience).await;
    let fresh = app.token(&c).await;
    app.verify(fresh["access_token"].as_str().unwrap(), &c.audience)
        .await;
}

#[tokio::test]
async fn an_api_with_a_new_algorithm_signs_at_once_on_a_running_server() {
    // A reload interval far longer than the test: only the on-demand load can help.
    let app =
        crate::spawn_app_with(|cfg| cfg.reload_interval = std::time::Duration::from_secs(3600))
            .await;
    for alg in [SigningAlg::EdDSA, SigningAlg::RS256] {
        let c = app
            .fixture()
            .scopes("read:consumers")
            .alg(alg)
            .build()
            .await;
        let resp = app.token_response(&c).await;
        assert_eq!(resp.0, 200, "{alg}: {}", resp.1);
        let token = resp.1["access_token"].as_str().unwrap();
        assert_eq!(jwt_parts(token).0["alg"], alg.as_str());
        app.verify(token, &c.audience).await;
    }
}

#[tokio::test]
async fn the_next_key_is_published_before_it_signs_and_a_rotation_promotes_it() {
    let (app, c) = app_and_client().await;
    let before = app.jwks_kids().await;
    assert_eq!(
        before.len(),
        2,
        "the current and the next ES256 key: {before:?}"
    );
    let signing = jwt_parts(app.token(&c).await["access_token"].as_str().unwrap()).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let next: Vec<&String> = before.iter().filter(|k| **k != signing).collect();
    assert_eq!(next.len(), 1);

    let rotated = app.manager.rotate_key(SigningAlg::ES256).await.unwrap();
    assert_eq!(&rotated.kid, next[0], "the published next key is promoted");
    eventually(
        SOON,
        "new tokens are signed by the promoted key",
        || async {
            jwt_parts(app.token(&c).await["access_token"].as_str().unwrap()).0["kid"]
                == rotated.kid.as_str()
        },
    )
    .await;
    let after = app.jwks_kids().await;
    assert!(after.contains(&signing), "the previous key stays published");
    assert!(
        after.contains(&rotated.next_kid),
        "a new next key is published"
    );
    assert_eq!(after.len(), 3);
    let listed = app.manager.list_keys().await.unwrap();
    let state_of = |kid: &str| listed.iter().find(|k| k.kid == kid).unwrap().state;
    assert_eq!(state_of(&signing), "previous");
    assert_eq!(state_of(&rotated.kid), "current");
    assert_eq!(state_of(&rotated.next_kid), "next");
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_at_once_and_its_tokens_stop_being_accepted() {
    let (app, c) =
        app_and_client_with(|f| f.scopes("read:consumers users:write users:authenticate")).await;
    let token = app.access_token(&c).await;
    let kid = jwt_parts(&token).0["kid"].as_str().unwrap().to_owned();
    let users = |t: String| {
        let app = &app;
        async move { app.get_as("/v2/users", &t).await.status().as_u16() }
    };
    assert_eq!(users(token.clone()).await, 200);

    let alg = app.manager.retire_key(&kid).await.unwrap();
    assert_eq!(alg, SigningAlg::ES256);
    eventually(SOON, "the retired key leaves the JWKS", || async {
        !app.jwks_kids().await.contains(&kid)
    })
    .await;
    assert_eq!(users(token.clone()).await, 401, "its tokens are refused");
    // Signing goes on with the key that was next, and a new next key is published.
    let fresh = app.access_token(&c).await;
    assert_ne!(jwt_parts(&fresh).0["kid"], kid.as_str());
    assert_eq!(users(fresh).await, 200);
    assert_eq!(app.jwks_kids().await.len(), 2);
    assert!(
        app.manager.retire_key(&kid).await.is_err(),
        "already retired"
    );
    assert!(app.manager.retire_key("no-such-kid").await.is_err());
}
