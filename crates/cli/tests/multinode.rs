//! Several `calyx serve` processes on one PostgreSQL database.
//!
//! These need a PostgreSQL server: `scripts/test` runs them with
//! `CALYX_TEST_DATABASE_URL=postgres://...` (and `--include-ignored`); without it they are
//! ignored rather than silently passing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

mod common;
use common::*;

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: run by scripts/test with CALYX_TEST_DATABASE_URL"]
async fn two_nodes_share_keys_codes_and_exactly_once_semantics() {
    let db = fresh_database().await;
    let f = provision(&db);
    let (a, b) = (serve(&db), serve(&db));

    // A token from node A verifies with node B's JWKS.
    let (status, t) = token(&a.base, &f, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", b.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(&kid(access)).expect("A's key is in B's JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[AUD]);
    v.set_issuer(&[a.base.as_str()]);
    jsonwebtoken::decode::<Value>(
        access,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .expect("verifies");

    // A code issued through A is redeemed at B.
    let code = code_at(&a.base, &f).await;
    let (status, t) = exchange(&b.base, &f, &code).await;
    assert_eq!(status, 200, "{t}");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();

    // 32 simultaneous refreshes of one token, spread over both nodes: exactly one winner.
    let nodes = [a.base.clone(), b.base.clone()];
    let results = join_all((0..32).map(|i| refresh(&nodes[i % 2], &f, &rt))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        results
            .iter()
            .filter(|r| r.0 != 200)
            .all(|r| r.1["error"] == "invalid_grant"),
        "{statuses:?}"
    );

    // The same for one code.
    let code = code_at(&b.base, &f).await;
    let results = join_all((0..32).map(|i| exchange(&nodes[i % 2], &f, &code))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );

    // A key rotated through the CLI is used by both nodes within the reload interval
    // (100 ms here, 1 s by default; documented in docs/deploy.md).
    let rotated = calyx(&f.db, &["keys", "rotate"], None);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let started = Instant::now();
    for node in &nodes {
        loop {
            let (_, t) = token(node, &f, &[("grant_type", "client_credentials")]).await;
            if kid(t["access_token"].as_str().unwrap()) == new_kid {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{node} did not pick up the rotated key"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (target, up2, conns2) = (target.to_owned(), up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: run by scripts/test with CALYX_TEST_DATABASE_URL"]
async fn a_database_outage_gives_503_and_service_resumes_without_a_restart() {
    let db = fresh_database().await;
    let f = provision(&db);
    let url = url::Url::parse(&db).unwrap();
    let proxy = Proxy::start(&format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432)
    ))
    .await;
    let mut via_proxy = url.clone();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let node = serve(via_proxy.as_str());

    let code = code_at(&node.base, &f).await;
    let (status, t) = exchange(&node.base, &f, &code).await;
    assert_eq!(status, 200);
    let mut rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        reqwest::get(format!("{}/readyz", node.base))
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.cut();
    let ready = reqwest::get(format!("{}/readyz", node.base)).await.unwrap();
    assert_eq!(ready.status(), 503, "readiness reflects the database");
    let (status, body) = refresh(&node.base, &f, &rt).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = refresh(&node.base, &f, &rt).await;
        if status == 200 {
            rt = body["refresh_token"].as_str().unwrap().to_owned();
            break;
        }
        assert_eq!(status, 503, "only 503 while recovering: {body}");
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        refresh(&node.base, &f, &rt).await.0,
        200,
        "the rotated token works"
    );
    assert_eq!(
        reqwest::get(format!("{}/readyz", node.base))
            .await
            .unwrap()
            .status(),
        200
    );
}
