//! Secret rotation (with and without grace) and signing-key rotation on a running server.

use serde_json::Value;

use crate::helpers::{jwt_parts, spawn_app, MachineClient, TestApp};

async fn status_with(app: &TestApp, c: &MachineClient, secret: &str) -> u16 {
    app.post_token_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", secret),
        ("audience", &c.audience),
    ])
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn rotating_a_secret_without_grace_stops_the_old_one_and_starts_the_new_one() {
    let app = spawn_app().await;
    let c = app.machine_client().await;
    assert_eq!(
        status_with(&app, &c, &c.secret).await,
        200,
        "old secret is cached"
    );
    let new = app.manager.rotate_secret(&c.client_id, 0).await.unwrap();
    // The new secret works at once: a failed check re-reads the client from the database.
    assert_eq!(status_with(&app, &c, &new).await, 200);
    // The old one stops (immediately after that re-read, and in any case within one reload).
    app.eventually("the old secret stops working", || async {
        status_with(&app, &c, &c.secret).await == 401
    })
    .await;
}

#[tokio::test]
async fn rotating_a_secret_with_grace_keeps_the_old_one_until_the_grace_ends() {
    let app = spawn_app().await;
    let c = app.machine_client().await;
    let new = app.manager.rotate_secret(&c.client_id, 300).await.unwrap();
    assert_eq!(status_with(&app, &c, &new).await, 200);
    assert_eq!(
        status_with(&app, &c, &c.secret).await,
        200,
        "old secret inside the grace period"
    );
    app.clock.advance(301);
    assert_eq!(
        status_with(&app, &c, &c.secret).await,
        401,
        "old secret after the grace period"
    );
    assert_eq!(status_with(&app, &c, &new).await, 200);
}

#[tokio::test]
async fn key_rotation_takes_effect_on_a_running_server_and_old_tokens_keep_verifying() {
    let app = spawn_app().await;
    let c = app.machine_client().await;
    let old: Value = app.token(&c).await;
    let old_token = old["access_token"].as_str().unwrap().to_owned();
    let (old_header, _) = jwt_parts(&old_token);

    let new_kid = app
        .manager
        .rotate_key(calyx_core::model::SigningAlg::ES256)
        .await
        .unwrap();
    assert_ne!(old_header["kid"], new_kid.as_str());
    app.eventually("new tokens carry the new kid", || async {
        let v = app.token(&c).await;
        jwt_parts(v["access_token"].as_str().unwrap()).0["kid"] == new_kid.as_str()
    })
    .await;

    let jwks = app.jwks().await;
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
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
