//! Per-client issuance limits and client-authentication failure throttling.

use calyx_testkit::Provisioned;

use crate::{app_and_client, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_client_over_its_issuance_rate_gets_429_with_retry_after() {
    let app = spawn_app_with(|cfg| cfg.client_rate_limit = 2).await;
    let c = app.fixture().build().await;
    let form = c.client_credentials(c.secret());
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let resp = app.post_token_form(&form).await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body: serde_json::Value = resp.json().await.unwrap();
            limited = Some((retry, body));
        }
    }
    assert_eq!(&statuses[..2], &[200, 200], "the burst is served");
    let (retry, body) = limited.expect("a request beyond the rate is refused");
    assert!(retry >= 1);
    assert_eq!(body["error"], "too_many_requests");
    // Another client is not affected.
    let other = app.fixture().build().await;
    app.token(&other).await;
}

#[tokio::test]
async fn repeated_authentication_failures_are_throttled_without_locking_out_the_owner() {
    let (app, c) = app_and_client().await;
    let wrong = wrong_secret(&c);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(app.post_token_form(&wrong).await.status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(
        *statuses.last().unwrap(),
        429,
        "guessing is slowed: {statuses:?}"
    );
    // The real secret still works while guesses are being refused.
    app.token(&c).await;
    // The block is one security event in the audit log, not one per failure.
    let admin = app.admin().await;
    let path = format!(
        "/audit?type=security.client_throttled&client_id={}",
        c.client_id
    );
    let events = calyx_testkit::eventually(calyx_testkit::SOON, "the throttling event", || async {
        let events = admin.all(&path, 50).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn the_owner_gets_in_while_blocked_even_when_the_client_is_not_cached() {
    let (app, c) = app_and_client().await;
    let wrong = wrong_secret(&c);
    for _ in 0..25 {
        app.post_token_form(&wrong).await;
    }
    assert_eq!(app.post_token_form(&wrong).await.status(), 429);
    // Any configuration change makes every node drop its cached clients.
    app.fixture().build().await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    app.token(&c).await;
    assert_eq!(app.post_token_form(&wrong).await.status(), 429);
}

/// A client-credentials request for `c` with a wrong secret.
fn wrong_secret(c: &Provisioned) -> [(&'static str, &str); 4] {
    c.client_credentials("guess")
}

/// Unknown client ids and wrong secrets do the same work, so that timing does not reveal
/// which client ids exist. Paired requests, alternating which goes first: with equal work,
/// each is the slower one about half the time (a systematic difference, such as one database
/// read more, makes one of them slower in nearly every pair).
#[tokio::test]
async fn an_unknown_client_and_a_wrong_secret_cannot_be_told_apart_by_timing() {
    let app = spawn_app().await;
    // Each client gets fewer wrong secrets than would block it.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(app.fixture().build().await);
    }
    let http = reqwest::Client::new();
    let url = format!("http://{}/oauth/token", app.direct);
    let timed = |id: String| {
        let (http, url) = (&http, &url);
        async move {
            let started = std::time::Instant::now();
            let resp = http
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", "not-the-secret"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401);
            resp.bytes().await.unwrap();
            started.elapsed()
        }
    };
    for c in &clients {
        timed(c.client_id.clone()).await; // warm the connection and the caches
    }
    let pairs = 112;
    let mut wrong_secret_slower = 0;
    for i in 0..pairs {
        let known = clients[i % clients.len()].client_id.clone();
        let unknown = calyx_token::secret::random_alphanumeric(24);
        let (k, u) = if i % 2 == 0 {
            let k = timed(known).await;
            (k, timed(unknown).await)
        } else {
            let u = timed(unknown).await;
            (timed(known).await, u)
        };
        if k > u {
            wrong_secret_slower += 1;
        }
    }
    let share = wrong_secret_slower as f64 / pairs as f64;
    eprintln!("the wrong secret was slower in {wrong_secret_slower} of {pairs} pairs");
    assert!(
        (0.2..=0.8).contains(&share),
        "the wrong secret was slower in {wrong_secret_slower} of {pairs} pairs"
    );
}
