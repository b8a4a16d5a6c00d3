//! calyx-client against a real Calyx server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use calyx_client::{
    delegate, AuthMethod, AuthorizationRequest, Credentials, Endpoints, Error, RefreshSession,
    RefreshStore, TokenSource,
};
use calyx_core::clock::Clock;
use calyx_core::model::{AuthCode, ClientType, Family, GrantType, RefreshToken, SigningAlg};
use calyx_server::clock::SystemClock;
use calyx_server::manage::{Manager, NewApi, NewClient, NewUser, Secrets};
use calyx_server::{Application, Config};
use futures_util::future::join_all;

const AUD: &str = "https://api.client.test/";
const AUD2: &str = "https://api2.client.test/";
const REDIRECT: &str = "https://app.example.com/cb";

struct World {
    base: String,
    manager: Manager,
    org_id: String,
    creds: Credentials,
    _dir: tempfile::TempDir,
}

async fn world(rate_limit: u32, token_lifetime: Option<i64>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Config::new(format!("sqlite://{}", dir.path().join("c.db").display()));
    raw.listen = "127.0.0.1:0".parse().unwrap();
    raw.pepper = Some("p".into());
    raw.client_rate_limit = rate_limit;
    let app = Application::build(raw.validate().unwrap()).await.unwrap();
    let base = app.issuer().to_owned();
    let store = app.state().store.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let manager = Manager::with_store(
        store,
        &Secrets {
            pepper: Some("p".into()),
            master_key: None,
        },
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let org = manager.create_org("Client Org").await.unwrap();
    for aud in [AUD, AUD2] {
        manager
            .create_api(NewApi {
                audience: aud.into(),
                name: "API".into(),
                scopes: "read write".into(),
                alg: SigningAlg::ES256,
                token_lifetime,
                user_token_lifetime: None,
                delegated_token_lifetime: None,
                refresh_token_lifetime: None,
            })
            .await
            .unwrap();
    }
    let (client, secret) = manager
        .create_client(NewClient {
            org_id: org.id.clone(),
            name: "Client".into(),
            client_type: ClientType::Confidential,
            grant_types: vec![
                GrantType::ClientCredentials,
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
            ],
            redirect_uris: vec![REDIRECT.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for aud in [AUD, AUD2] {
        manager
            .create_grant(&client.id, aud, "read write users:authenticate", aud == AUD)
            .await
            .unwrap();
    }
    let creds = Credentials {
        client_id: client.id,
        client_secret: secret,
        method: AuthMethod::Basic,
    };
    World {
        base,
        manager,
        org_id: org.id,
        creds,
        _dir: dir,
    }
}

impl World {
    async fn endpoints(&self) -> Endpoints {
        Endpoints::discover(&reqwest::Client::new(), &self.base)
            .await
            .unwrap()
    }

    async fn issued_count(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| {
                l.starts_with(
                    r#"calyx_token_requests_total{grant="client_credentials",outcome="issued"}"#,
                )
            })
            .and_then(|l| l.split_whitespace().last())
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    }
}

fn exp_of(jwt: &str) -> i64 {
    let payload = jwt.split('.').nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    v["exp"].as_i64().unwrap()
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
            reqwest::Client::new().get(format!("{}/healthz", w.base)),
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
async fn seed_refresh_token(w: &World) -> String {
    let user = w
        .manager
        .create_user(NewUser {
            org_id: w.org_id.clone(),
            scopes: vec![(AUD.into(), "read".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    let api = w.manager.store.api_by_audience(AUD).await.unwrap().unwrap();
    let now = SystemClock.now();
    let (code, rt) = (
        calyx_token::secret::generate_secret(),
        calyx_token::secret::generate_secret(),
    );
    let family = Family {
        id: calyx_token::secret::random_id("fam"),
        client_id: w.creds.client_id.clone(),
        user_id: user.id.clone(),
        org_id: user.org_id.clone(),
        api_id: api.id.clone(),
        scope: calyx_core::ScopeSet::parse("read").unwrap(),
        created_at: now,
        revoked_at: None,
    };
    w.manager
        .store
        .insert_code(&AuthCode {
            code_hash: w.manager.hasher.hash(&code),
            family_id: family.id.clone(),
            client_id: w.creds.client_id.clone(),
            user_id: user.id,
            api_id: api.id,
            scope: family.scope.clone(),
            redirect_uri: REDIRECT.into(),
            redirect_uri_given: false,
            code_challenge: None,
            created_at: now,
            expires_at: now + 600,
            used_at: None,
        })
        .await
        .unwrap();
    let row = RefreshToken {
        token_hash: w.manager.hasher.hash(&rt),
        family_id: family.id.clone(),
        scope: family.scope.clone(),
        created_at: now,
        expires_at: now + 3600,
        used_at: None,
        successor_sealed: None,
    };
    assert!(w
        .manager
        .store
        .redeem_code(&w.manager.hasher.hash(&code), now, &family, Some(&row))
        .await
        .unwrap());
    rt
}

#[tokio::test]
async fn the_refresh_session_stores_each_new_token_before_returning_and_survives_a_restart() {
    let w = world(0, None).await;
    let endpoints = w.endpoints().await;
    let store = Arc::new(MemoryStore::default());
    let first = seed_refresh_token(&w).await;
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
    w.manager
        .create_user(NewUser {
            org_id: w.org_id.clone(),
            username: Some("jane".into()),
            password: Some("correct horse battery".into()),
            scopes: vec![(AUD.into(), "read".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    let endpoints = w.endpoints().await;
    let req = AuthorizationRequest::new(&endpoints, &w.creds.client_id, REDIRECT, None).unwrap();
    assert!(req.url.contains("code_challenge_method=S256"));

    // The user signs in and approves (what a browser would do).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let field = |html: &str, name: &str| {
        let needle = format!("name=\"{name}\" value=\"");
        let start = html.find(&needle).unwrap() + needle.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let html = browser
        .get(&req.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("request", field(&html, "request")),
        ("csrf", field(&html, "csrf")),
        ("username", "jane".into()),
        ("password", "correct horse battery".into()),
    ];
    let html = browser
        .post(format!("{}/authorize/login", w.base))
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("request", field(&html, "request")),
        ("csrf", field(&html, "csrf")),
        ("decision", "approve".into()),
    ];
    let resp = browser
        .post(format!("{}/authorize/consent", w.base))
        .form(&form)
        .send()
        .await
        .unwrap();
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
    let user = w
        .manager
        .create_user(NewUser {
            org_id: w.org_id.clone(),
            scopes: vec![(AUD.into(), "read".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    let t = delegate(&reqwest::Client::new(), &w.base, &org_token.token, &user.id)
        .await
        .unwrap();
    assert!(exp_of(&t.token) > 0);
    let err = delegate(
        &reqwest::Client::new(),
        &w.base,
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
