//! Several `calyx serve` processes on one PostgreSQL database.
//!
//! These need a PostgreSQL server: `scripts/test` runs them with
//! `CALYX_TEST_DATABASE_URL=postgres://...` (and `--include-ignored`); without it they are
//! ignored rather than silently passing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calyx_testkit::database::fresh_database;
use calyx_testkit::kid_of as kid;
use calyx_testkit::{eventually, Calyx};
use futures_util::future::join_all;

mod common;
use common::*;

const CLIENT_CREDENTIALS: [(&str, &str); 1] = [("grant_type", "client_credentials")];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: run by scripts/test with CALYX_TEST_DATABASE_URL"]
async fn two_nodes_share_keys_codes_and_exactly_once_semantics() {
    let calyx = Calyx::new(BIN, &fresh_database().await);
    let f = provision(&calyx).await;
    let (a, b) = (serve(&calyx), serve(&calyx));

    // A token from node A verifies with node B's JWKS.
    let (status, t) = a.token_as(&f, &CLIENT_CREDENTIALS).await;
    assert_eq!(status, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    assert!(
        b.jwks().await.find(&kid(access)).is_some(),
        "A's key is in B's JWKS"
    );
    b.verify_from(&a.base, access, AUD).await;

    // A code issued through A is redeemed at B.
    let code = a.sign_in(&f).await;
    let (status, t) = b.exchange(&f, &code).await;
    assert_eq!(status, 200, "{t}");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();

    // 32 simultaneous refreshes of one token, spread over both nodes: exactly one winner.
    let nodes = [&a, &b];
    let results = join_all((0..32).map(|i| nodes[i % 2].refresh(&f, &rt, None))).await;
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
    let code = b.sign_in(&f).await;
    let results = join_all((0..32).map(|i| nodes[i % 2].exchange(&f, &code))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );

    // A key rotated through the CLI is used by both nodes within the reload interval
    // (100 ms here, 1 s by default; documented in docs/deploy.md).
    let rotated = calyx.json(&["keys", "rotate"]);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let started = Instant::now();
    for node in nodes {
        let what = format!("{} to pick up the rotated key", node.base);
        let within = Duration::from_secs(3).saturating_sub(started.elapsed());
        eventually(within, &what, || async {
            let (_, t) = node.token_as(&f, &CLIENT_CREDENTIALS).await;
            kid(t["access_token"].as_str().unwrap()) == new_kid
        })
        .await;
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
    let f = provision(&Calyx::new(BIN, &db)).await;
    let url = url::Url::parse(&db).unwrap();
    let proxy = Proxy::start(&format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432)
    ))
    .await;
    let mut via_proxy = url.clone();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let node = serve(&Calyx::new(BIN, via_proxy.as_str()));

    let code = node.sign_in(&f).await;
    let (status, t) = node.exchange(&f, &code).await;
    assert_eq!(status, 200);
    let mut rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(node.status_of("/readyz").await, 200);

    proxy.cut();
    assert_eq!(
        node.status_of("/readyz").await,
        503,
        "readiness reflects the database"
    );
    let (status, body) = node.refresh(&f, &rt, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());

    proxy.restore();
    rt = eventually(Duration::from_secs(15), "service to resume", || async {
        let (status, body) = node.refresh(&f, &rt, None).await;
        if status == 200 {
            return Some(body["refresh_token"].as_str().unwrap().to_owned());
        }
        assert_eq!(status, 503, "only 503 while recovering: {body}");
        None
    })
    .await;
    assert_eq!(
        node.refresh(&f, &rt, None).await.0,
        200,
        "the rotated token works"
    );
    assert_eq!(node.status_of("/readyz").await, 200);
}
