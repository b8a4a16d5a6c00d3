//! calyx-client against a real Calyx server.

/// DPoP and `private_key_jwt` against a mock server in the test (the server's own DPoP support
/// is tested in its suite).
mod dpop;
/// Against a third-party issuer (ignored unless `scripts/interop-test` runs it). One test binary
/// for the crate: each binary links the whole server.
mod interop;
mod mock;
mod private_key_jwt;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use calyx_client::{
    delegate, AuthMethod, AuthorizationRequest, Credentials, Endpoints, Error, RefreshSession,
    RefreshStore, TokenSource,
};
use calyx_core::model::{GrantType, User};
use calyx_server::manage::NewUser;
use calyx_testkit::fixture::seed_refresh_token;
use calyx_testkit::{jwt_parts, Browser, TestServer, PASSWORD, REDIRECT};
use futures_util::future::join_all;

const AUD: &str = "https://api.client.test/";
const AUD2: &str = "https://api2.client.test/";

struct World {
    app: TestServer,
    org_id: String,
    creds: Credentials,
}

/// A server (on SQLite) with two APIs, and a client that may use both, with a default grant
/// on the first.
async fn world(rate_limit: u32, token_lifetime: Option<i64>) -> World {
    let app = TestServer::spawn_with(|cfg| {
        cfg.postgres_from_env = false;
        cfg.client_rate_limit = rate_limit;
    })
    .await;
    let c = app
        .fixture()
        .org("Client Org")
        .api(AUD)
        .also_api(AUD2)
        .api_name("API")
        .scopes("read write")
        .token_lifetime(token_lifetime)
        .client_name("Client")
        .grant_types(&[
            GrantType::ClientCredentials,
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
        ])
        .grant("read write users:authenticate")
        .default_audience(true)
        .build()
        .await;
    let creds = Credentials {
        client_id: c.client_id,
        client_secret: c.secret,
        method: AuthMethod::Basic,
    };
    World {
        app,
        org_id: c.org_id,
        creds,
    }
}

impl World {
    async fn endpoints(&self) -> Endpoints {
        Endpoints::discover(&reqwest::Client::new(), &self.app.base)
            .await
            .unwrap()
    }

    /// A user of the org allowed `read` on the first API.
    async fn new_user(&self) -> User {
        let user = NewUser {
            org_id: self.org_id.clone(),
            scopes: vec![(AUD.into(), "read".into())],
            ..Default::default()
        };
        self.app.manager.create_user(user).await.unwrap()
    }

    async fn issued_count(&self) -> u64 {
        self.app
            .metric(r#"calyx_token_requests_total{grant="client_credentials",outcome="issued"}"#)
            .await
    }
}

fn exp_of(jwt: &str) -> i64 {
    jwt_parts(jwt).1["exp"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_callers_cause_exactly_one_token_request() {
    let w = world(0, None).await;
    let source = TokenSource::new(reqwest::Client::new(), w.endpoints().await, w.creds.clone());
    let tokens = join_all((0..1000).map(|_| source.token(AUD, None))).await;
    let first = tokens[0].as_ref().unwrap().token.clone();
    assert!(tokens.iter().all(|t| t.as_ref().unwrap().token == first));
    assert_eq!(w.issued_count().await, 1);
    // Attaching it to a request.
    let req = source
        .authorize(
            reqwest::Client::new().get(format!("{}/healthz", w.app.base)),
            AUD,
        )
        .await
        .unwrap();
    let built = req.build().unwrap();
    assert_eq!(
        built.headers()["authorization"],
        format!("Bearer {first}").as_str()
    );
    assert_eq!(w.issued_count().await, 1, "still cached");
}

#[tokio::test]
async fn tokens_are_renewed_before_expiry_and_never_handed_out_expired() {
    let w = world(0, Some(10)).await;
    let source = TokenSource::new(reqwest::Client::new(), w.endpoints().await, w.creds.clone());
    let mut seen = std::collections::HashSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        let t = source.token(AUD, None).await.unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(exp_of(&t.token) > now, "handed an expired token");
        seen.insert(t.token);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.len() >= 2, "renewed: {} distinct tokens", seen.len());
    assert!(
        w.issued_count().await <= 3,
        "not a request per call: {}",
        w.issued_count().await
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured() {
    let w = world(1, None).await;
    let source = TokenSource::new(reqwest::Client::new(), w.endpoints().await, w.creds.clone());
    source.token(AUD, None).await.unwrap();
    let started = Instant::now();
    // A second token right away is over the 1/s limit: the client waits as told, then succeeds.
    source
        .token(AUD2, None)
        .await
        .expect("succeeds after waiting");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
}

#[derive(Default)]
struct MemoryStore {
    token: Mutex<Option<String>>,
    saves: AtomicUsize,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl RefreshStore for MemoryStore {
    async fn load(&self) -> Result<Option<String>, String> {
        Ok(self.token.lock().unwrap().clone())
    }
    async fn save(&self, t: &str) -> Result<(), String> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("disk full".into());
        }
        *self.token.lock().unwrap() = Some(t.to_owned());
        self.saves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A live refresh token for a new user, seeded through the store.
async fn seed_refresh_token_for_new_user(w: &World) -> String {
    let m = &w.app.manager;
    let user = w.new_user().await;
    let api = m.store.api_by_audience(AUD).await.unwrap().unwrap();
    let scope = calyx_core::ScopeSet::parse("read").unwrap();
    seed_refresh_token(m, &w.creds.client_id, &user, &api, scope, 3600).await
}

#[tokio::test]
async fn the_refresh_session_stores_each_new_token_before_returning_and_survives_a_restart() {
    let w = world(0, None).await;
    let endpoints = w.endpoints().await;
    let store = Arc::new(MemoryStore::default());
    let first = seed_refresh_token_for_new_user(&w).await;
    *store.token.lock().unwrap() = Some(first.clone());

    let session = RefreshSession::new(
        reqwest::Client::new(),
        endpoints.clone(),
        w.creds.clone(),
        store.clone(),
    );
    session.access_token().await.unwrap();
    let second = store.token.lock().unwrap().clone().unwrap();
    assert_ne!(second, first, "the rotated token was saved");
    assert_eq!(store.saves.load(Ordering::SeqCst), 1);
    session.access_token().await.unwrap();
    assert_eq!(
        store.saves.load(Ordering::SeqCst),
        1,
        "the access token is reused while valid"
    );

    // A "restart": a new session that only has the store.
    let restarted = RefreshSession::new(
        reqwest::Client::new(),
        endpoints.clone(),
        w.creds.clone(),
        store.clone(),
    );
    restarted
        .access_token()
        .await
        .expect("rotation continues from the stored token");
    assert_eq!(store.saves.load(Ordering::SeqCst), 2);

    // When the store cannot save, no token is handed out.
    store.fail.store(true, Ordering::SeqCst);
    let third = RefreshSession::new(
        reqwest::Client::new(),
        endpoints,
        w.creds.clone(),
        store.clone(),
    );
    assert!(matches!(third.access_token().await, Err(Error::Store(_))));
}

#[tokio::test]
async fn the_authorization_helper_checks_state_and_exchanges_with_pkce() {
    let w = world(0, None).await;
    w.app
        .manager
        .create_user(NewUser {
            org_id: w.org_id.clone(),
            username: Some("jane".into()),
            password: Some(PASSWORD.into()),
            scopes: vec![(AUD.into(), "read".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    let endpoints = w.endpoints().await;
    let req = AuthorizationRequest::new(&endpoints, &w.creds.client_id, REDIRECT, None).unwrap();
    assert!(req.url.contains("code_challenge_method=S256"));

    // The user signs in and approves (what a browser would do).
    let browser = Browser::new();
    let consent = browser.sign_in(&req.url, "jane", PASSWORD).await;
    let resp = browser.decide(&consent, "approve").await;
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();

    let http = reqwest::Client::new();
    let forged = callback.replace(&format!("state={}", req.state), "state=forged");
    assert!(matches!(
        req.exchange(&http, &endpoints, &w.creds, &forged).await,
        Err(Error::StateMismatch)
    ));
    let tokens = req
        .exchange(&http, &endpoints, &w.creds, &callback)
        .await
        .expect("the code exchange");
    assert!(tokens.refresh_token.is_some());
}

#[tokio::test]
async fn the_delegation_helper_gets_a_user_token() {
    let w = world(0, None).await;
    let source = TokenSource::new(reqwest::Client::new(), w.endpoints().await, w.creds.clone());
    let org_token = source.token(AUD, None).await.unwrap();
    let user = w.new_user().await;
    let t = delegate(
        &reqwest::Client::new(),
        &w.app.base,
        &org_token.token,
        &user.id,
    )
    .await
    .unwrap();
    assert!(exp_of(&t.token) > 0);
    let err = delegate(
        &reqwest::Client::new(),
        &w.app.base,
        &org_token.token,
        "usr_nobody",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::OAuth { status: 404, .. }), "{err:?}");
}

#[tokio::test]
async fn client_secret_post_works_too_and_errors_are_typed() {
    let w = world(0, None).await;
    let creds = Credentials {
        method: AuthMethod::Post,
        ..w.creds.clone()
    };
    let source = TokenSource::new(reqwest::Client::new(), w.endpoints().await, creds.clone());
    source
        .token(AUD, Some("read"))
        .await
        .expect("client_secret_post");
    let err = source.token(AUD, Some("admin")).await.unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { status: 400, error, .. } if error == "invalid_scope"),
        "{err:?}"
    );
    let wrong = Credentials {
        client_secret: Some("wrong".into()),
        ..creds
    };
    let err = TokenSource::new(reqwest::Client::new(), w.endpoints().await, wrong)
        .token(AUD, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { status: 401, error, .. } if error == "invalid_client"),
        "{err:?}"
    );
}
