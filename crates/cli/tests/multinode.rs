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

/// How long a change may take to reach another node.
const PROPAGATION: Duration = Duration::from_millis(250);

/// Sends `request` to a node until `refused` says it was refused; returns how long after
/// `since` that was. Fails after two seconds.
async fn refused_after<F, Fut>(since: Instant, mut request: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if request().await {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "the change never reached the node"
        );
    }
}

/// An admin token for node `node`, from an admin client made in the database.
async fn admin_token(calyx: &Calyx, node: &calyx_testkit::Endpoint) -> calyx_testkit::Admin {
    let manager = calyx_testkit::fixture::open_manager(calyx.database_url()).await;
    calyx_testkit::Admin::create(&manager, node, "admin:read admin:write").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: run by scripts/test with CALYX_TEST_DATABASE_URL"]
async fn a_change_at_one_node_is_refused_at_the_other_within_250_ms() {
    let calyx = Calyx::new(BIN, &fresh_database().await);
    let f = provision(&calyx).await;
    // A poll every 5 s: what reaches node B within 250 ms came by LISTEN/NOTIFY.
    let (a, b) = (
        calyx.serve(&["--reload-interval-ms", "5000"]),
        calyx.serve(&["--reload-interval-ms", "5000"]),
    );
    let admin = admin_token(&calyx, &a).await;
    let works = |node: &calyx_testkit::ServeProcess| {
        let node = (*node).clone();
        let f = f.clone();
        async move { node.token_as(&f, &CLIENT_CREDENTIALS).await.0 == 200 }
    };
    assert!(
        works(&a).await && works(&b).await,
        "both nodes have it cached"
    );
    let mut report = Vec::new();

    // A disabled client: refused by A's very next request, and by B within the bound.
    let (status, _) = admin
        .patch(
            &format!("/clients/{}", f.client_id),
            serde_json::json!({"disabled": true}),
        )
        .await;
    let t0 = Instant::now();
    assert_eq!(status, 200);
    assert!(
        !works(&a).await,
        "refused by the serving node's next request"
    );
    let took = refused_after(t0, || async { !works(&b).await }).await;
    report.push(("disabled client", took));
    admin
        .patch(
            &format!("/clients/{}", f.client_id),
            serde_json::json!({"disabled": false}),
        )
        .await;
    let t0 = Instant::now();
    refused_after(t0, || async { works(&b).await }).await;

    // A secret rotated without grace.
    let (status, rotated) = admin
        .post(
            &format!("/clients/{}/rotate-secret", f.client_id),
            serde_json::json!({"grace_seconds": 0}),
        )
        .await;
    let t0 = Instant::now();
    assert_eq!(status, 200);
    assert!(!works(&a).await);
    let took = refused_after(t0, || async { !works(&b).await }).await;
    report.push(("secret rotated without grace", took));
    let mut f = f.clone();
    f.secret = Some(rotated["client_secret"].as_str().unwrap().to_owned());

    // A retired key leaves B's JWKS.
    let (_, rotated) = admin.post("/keys/rotate", serde_json::json!({})).await;
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    refused_after(Instant::now(), || async {
        b.jwks_kids().await.contains(&kid)
    })
    .await;
    let (status, _) = admin
        .post(&format!("/keys/{kid}/retire"), serde_json::json!({}))
        .await;
    let t0 = Instant::now();
    assert_eq!(status, 200);
    assert!(!a.jwks_kids().await.contains(&kid));
    let took = refused_after(t0, || async { !b.jwks_kids().await.contains(&kid) }).await;
    report.push(("retired key", took));

    // A revoked family and a deleted user are decided by the database: refused at once.
    let code = a.sign_in(&f).await;
    let (_, t) = a.exchange(&f, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let (_, claims) = calyx_testkit::jwt_parts(t["access_token"].as_str().unwrap());
    let sid = claims["sid"].as_str().unwrap();
    admin
        .post(&format!("/families/{sid}/revoke"), serde_json::json!({}))
        .await;
    let t0 = Instant::now();
    let took = refused_after(t0, || async { b.refresh(&f, &rt, None).await.0 == 400 }).await;
    report.push(("revoked family", took));
    let code = a.sign_in(&f).await;
    let (_, t) = a.exchange(&f, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    admin.delete(&format!("/users/{}", f.user_id)).await;
    let t0 = Instant::now();
    let took = refused_after(t0, || async { b.refresh(&f, &rt, None).await.0 == 400 }).await;
    report.push(("deleted user", took));

    eprintln!("propagation to the other node: {report:?}");
    for (what, took) in report {
        assert!(took <= PROPAGATION, "{what}: {took:?} > {PROPAGATION:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: run by scripts/test with CALYX_TEST_DATABASE_URL"]
async fn a_cli_change_is_refused_by_running_nodes_within_250_ms() {
    let calyx = Calyx::new(BIN, &fresh_database().await);
    let f = provision(&calyx).await;
    let nodes = [
        calyx.serve(&["--reload-interval-ms", "5000"]),
        calyx.serve(&["--reload-interval-ms", "5000"]),
    ];
    for node in &nodes {
        assert_eq!(node.token_as(&f, &CLIENT_CREDENTIALS).await.0, 200);
    }
    let out = calyx
        .command()
        .args(["client", "disable", &f.client_id])
        .output()
        .unwrap();
    let t0 = Instant::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in &nodes {
        let took = refused_after(t0, || async {
            node.token_as(&f, &CLIENT_CREDENTIALS).await.0 == 401
        })
        .await;
        eprintln!("CLI disable reached {} after {took:?}", node.base);
        assert!(took <= PROPAGATION, "{took:?}");
    }
}
