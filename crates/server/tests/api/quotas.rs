//! Token quotas per client and per organization, per hour and per day: counted in the
//! database, so every node shares them; 429 with `Retry-After` and `RateLimit-*` when used up.

use calyx_core::model::Quota;
use calyx_testkit::{eventually, Provisioned, TestServer, SOON};
use serde_json::{json, Value};

use crate::{app_and_client_with, spawn_app_with};

/// A client-credentials request: status, `Retry-After`, `RateLimit-Limit` and the body.
async fn attempt(app: &TestServer, c: &Provisioned) -> (u16, Option<u64>, Option<i64>, Value) {
    let resp = app
        .http
        .post(app.url("/oauth/token"))
        .form(&c.client_credentials(c.secret()))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse::<i64>().unwrap())
    };
    let retry_after = header("retry-after").map(|v| v as u64);
    let limit = header("ratelimit-limit");
    let status = resp.status().as_u16();
    (status, retry_after, limit, resp.json().await.unwrap())
}

fn per_hour(n: i64) -> Quota {
    Quota {
        per_hour: Some(n),
        per_day: None,
    }
}

#[tokio::test]
async fn a_clients_hourly_quota_refuses_the_next_token_until_the_hour_ends() {
    let (app, c) = app_and_client_with(|f| f.quota(per_hour(3))).await;
    for n in 1..=3 {
        let (status, _, _, body) = attempt(&app, &c).await;
        assert_eq!(status, 200, "token {n}: {body}");
    }
    let (status, retry_after, limit, body) = attempt(&app, &c).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "too_many_requests");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("3 tokens per hour"));
    let retry_after = retry_after.expect("Retry-After");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(limit, Some(3));

    app.clock.advance(retry_after as i64);
    let (status, _, _, body) = attempt(&app, &c).await;
    assert_eq!(status, 200, "a new hour: {body}");
}

#[tokio::test]
async fn an_organizations_daily_quota_is_shared_by_its_clients() {
    let app = spawn_app_with(|_| {}).await;
    let first = app.fixture().build().await;
    let (client, secret) = app
        .manager
        .create_client(calyx_server::manage::NewClient {
            org_id: first.org_id.clone(),
            name: "Second".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.manager
        .create_grant(
            &client.id,
            &first.audience,
            calyx_testkit::fixture::DEFAULT_SCOPES,
            false,
        )
        .await
        .unwrap();
    let second = Provisioned {
        client_id: client.id,
        secret,
        ..first.clone()
    };
    let admin = app.admin().await;
    let (status, body) = admin
        .patch(
            &format!("/orgs/{}", first.org_id),
            json!({"tokens_per_day": 4}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens_per_day"], 4);
    // The change reaches the running server's cached clients within its reload interval.
    for c in [&first, &second] {
        for _ in 0..2 {
            let (status, _, _, body) = attempt(&app, c).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let (status, _, limit, body) = attempt(&app, &second).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("organization"));
    assert_eq!(limit, Some(4));
    let (status, _, _, _) = attempt(&app, &first).await;
    assert_eq!(status, 429);

    // Removing the limit lets both through again.
    let (status, _) = admin
        .patch(
            &format!("/orgs/{}", first.org_id),
            json!({"tokens_per_day": null}),
        )
        .await;
    assert_eq!(status, 200);
    eventually(SOON, "the limit removed", || async {
        attempt(&app, &first).await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn two_nodes_share_one_quota_and_the_429_comes_at_the_right_count() {
    let (app, c) = app_and_client_with(|f| f.quota(per_hour(7))).await;
    let second = spawn_app_with(|cfg| cfg.node_of = Some(app.database_url.clone())).await;
    let attempts = (0..20).map(|i| {
        let node = if i % 2 == 0 { &app } else { &second };
        attempt(node, &c)
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, ..)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        13,
        "{statuses:?}"
    );
    assert_eq!(attempt(&second, &c).await.0, 429);
}

#[tokio::test]
async fn a_quota_set_on_a_running_server_applies_to_the_next_request() {
    let (app, c) = app_and_client_with(|f| f).await;
    assert_eq!(attempt(&app, &c).await.0, 200);
    let admin = app.admin().await;
    let (status, body) = admin
        .patch(
            &format!("/clients/{}", c.client_id),
            json!({"tokens_per_hour": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens_per_hour"], 0);
    eventually(SOON, "a zero quota", || async {
        attempt(&app, &c).await.0 == 429
    })
    .await;
    let (status, body) = admin
        .patch(
            &format!("/clients/{}", c.client_id),
            json!({"tokens_per_hour": -1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
