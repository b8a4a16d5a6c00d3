//! Security events reach the audit log and, through the outbox, subscribed webhooks: signed,
//! retried with the same event id until the receiver accepts, with the delivery state
//! visible in the management API.

use std::time::Duration;

use calyx_core::model::{ClientType, GrantType};
use calyx_testkit::{eventually, Receiver};
use serde_json::json;

use crate::spawn_app;

#[tokio::test]
async fn a_reused_refresh_token_is_an_audit_event_and_a_signed_webhook_retried_until_accepted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    // The receiver fails the first delivery: the sender must retry, with the same event id.
    let receiver = Receiver::start(1).await;
    let (status, hook) = admin
        .post(
            "/webhooks",
            json!({"url": receiver.url, "events": ["security.refresh_token_reused"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let hook_id = hook["id"].as_str().unwrap().to_owned();

    let c = app
        .fixture()
        .app(ClientType::Confidential)
        .grant_types(&[GrantType::AuthorizationCode, GrantType::RefreshToken])
        .user("jane", "read:consumers")
        .build()
        .await;
    let code = app.sign_in(&c).await;
    let (_, t) = app.exchange(&c, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.refresh(&c, &rt, None).await.0, 200);
    let (status, body) = app.refresh(&c, &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The audit event.
    let event = eventually(
        Duration::from_secs(5),
        "the reuse in the audit log",
        || async {
            let events = admin
                .all("/audit?type=security.refresh_token_reused", 200)
                .await;
            events.into_iter().next()
        },
    )
    .await;
    assert_eq!(event["client_id"], c.client_id.as_str());
    assert_eq!(event["actor"], "calyx");
    assert_eq!(event["detail"]["family_revoked"], true);

    // Two attempts (500, then accepted), the same event id, each signed.
    let got = eventually(Duration::from_secs(10), "the retried delivery", || async {
        let got = receiver.received();
        (got.len() >= 2).then_some(got)
    })
    .await;
    assert_eq!((got[0].status, got[1].status), (500, 204));
    for r in &got {
        assert_eq!(r.event_id, event["id"].as_str().unwrap());
        assert_eq!(r.json()["id"], event["id"]);
        assert_eq!(r.json()["type"], "security.refresh_token_reused");
        assert!(r.signed_with(&secret), "the signature verifies");
        assert!(!r.signed_with("another secret"));
    }
    let mut tampered = got[1].clone();
    tampered.body = tampered.body.replace("reused", "REUSED");
    assert!(
        !tampered.signed_with(&secret),
        "a changed body fails the check"
    );

    // The delivery's state in the API.
    eventually(
        Duration::from_secs(5),
        "the delivery marked delivered",
        || async {
            let deliveries = admin
                .all(&format!("/webhooks/{hook_id}/deliveries"), 50)
                .await;
            deliveries.len() == 1
                && deliveries[0]["state"] == "delivered"
                && deliveries[0]["attempts"] == 2
                && deliveries[0]["event_id"] == event["id"]
        },
    )
    .await;
}

#[tokio::test]
async fn only_subscribed_event_types_are_delivered() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let receiver = Receiver::start(0).await;
    admin
        .post(
            "/webhooks",
            json!({"url": receiver.url, "events": ["org.*"]}),
        )
        .await;
    admin.post("/orgs", json!({"name": "Delivered"})).await;
    let (_, c) = admin.post("/orgs", json!({"name": "Also delivered"})).await;
    admin
        .post(
            "/clients",
            json!({"org_id": c["id"], "name": "Not delivered"}),
        )
        .await;
    let got = eventually(Duration::from_secs(5), "two org events", || async {
        let got = receiver.received();
        (got.len() >= 2).then_some(got)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_later = receiver.received();
    assert_eq!(got_later.len(), 2, "client.created was not subscribed");
    assert!(got.iter().all(|r| r.json()["type"] == "org.created"));
}
