//! `spawn_app()` and typed helpers.
//!
//! Every test body runs on SQLite by default and on PostgreSQL when
//! `CALYX_TEST_DATABASE_URL` names a server (`scripts/test` runs the suite both ways): each
//! test then gets a database of its own, created here.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use calyx_core::model::{ClientType, GrantType, SigningAlg};
use calyx_server::clock::OffsetClock;
use calyx_server::manage::{Manager, NewApi, NewClient, Secrets};
use calyx_server::{Application, Config};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

/// A running application with its own database.
pub struct TestApp {
    /// The server's address as clients see it (through the recording proxy).
    pub base: String,
    /// The server's own socket, for tests about connections themselves.
    pub direct: std::net::SocketAddr,
    pub http: reqwest::Client,
    pub manager: Manager,
    pub clock: OffsetClock,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A confidential client with a grant on a fresh API.
#[derive(Debug, Clone)]
pub struct MachineClient {
    pub client_id: String,
    pub secret: String,
    pub audience: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = match postgres_admin_url() {
        Some(admin) => fresh_postgres_database(&admin).await,
        None => format!("sqlite://{}", dir.path().join("calyx.db").display()),
    };
    // Clients reach the server through a recording proxy, and the server logs at trace level,
    // for the secret scan that runs after the whole suite (tests/secret_scan.rs).
    crate::traffic::capture_server_logs();
    let proxy = crate::traffic::Proxy::bind().await;
    let mut raw = Config::new(&url);
    raw.issuer = Some(format!("http://{}", proxy.addr()));
    raw.db_max_connections = 4;
    raw.listen = "127.0.0.1:0".parse().unwrap();
    raw.reload_interval = Duration::from_millis(100);
    raw.pepper = Some("test-pepper".into());
    configure(&mut raw);
    let secrets = Secrets {
        pepper: raw.pepper.clone(),
        master_key: raw.master_key.clone(),
    };
    let clock = OffsetClock::new();
    let app = Application::build_with_clock(raw.validate().unwrap(), Arc::new(clock.clone()))
        .await
        .expect("the application builds");
    let direct = app.local_addr();
    let base = format!("http://{}", proxy.addr());
    proxy.start(direct);
    let store = app.state().store.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let manager = Manager::with_store(store, &secrets, Arc::new(clock.clone()))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        direct,
        http,
        manager,
        clock,
        dir,
        database_url: url,
        _shutdown: tx,
    }
}

/// The PostgreSQL server to test against, if any.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("CALYX_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// Creates an empty database for one test and returns its URL.
async fn fresh_postgres_database(admin: &str) -> String {
    use sqlx::{Connection, Executor};
    let name = format!(
        "calyx_t_{}",
        calyx_token::secret::random_alphanumeric(16).to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connecting to the test PostgreSQL");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

impl TestApp {
    /// Every byte the database holds: its files for SQLite, a `pg_dump` for PostgreSQL.
    pub fn database_bytes(&self) -> Vec<(String, Vec<u8>)> {
        match &self.database_url {
            url if url.starts_with("postgres") => {
                let out = std::process::Command::new("pg_dump")
                    .arg("--dbname")
                    .arg(url)
                    .output()
                    .expect("pg_dump");
                assert!(
                    out.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                vec![("pg_dump".into(), out.stdout)]
            }
            _ => std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| {
                    let path = e.unwrap().path();
                    (path.display().to_string(), std::fs::read(&path).unwrap())
                })
                .collect(),
        }
    }
}

/// A unique-enough suffix for names within one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", calyx_token::secret::random_string(6))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an org, an API with `scopes` and `alg`, and a confidential client granted `scopes`.
    pub async fn machine_client_with(
        &self,
        scopes: &str,
        alg: SigningAlg,
        lifetime: Option<i64>,
    ) -> MachineClient {
        self.machine_client_granted(scopes, scopes, alg, lifetime)
            .await
    }

    /// Creates an org, an API defining `api_scopes`, and a confidential client granted
    /// `granted` (a subset, plus any reserved `users:*` scopes).
    pub async fn machine_client_granted(
        &self,
        api_scopes: &str,
        granted: &str,
        alg: SigningAlg,
        lifetime: Option<i64>,
    ) -> MachineClient {
        let scopes = api_scopes;
        let org = self.manager.create_org(&unique("org")).await.unwrap();
        let audience = format!("https://{}.example.com/", unique("api"));
        self.manager
            .create_api(NewApi {
                audience: audience.clone(),
                name: "Test API".into(),
                scopes: scopes.into(),
                alg,
                token_lifetime: lifetime,
                user_token_lifetime: None,
                delegated_token_lifetime: None,
                refresh_token_lifetime: None,
            })
            .await
            .unwrap();
        let (client, secret) = self
            .manager
            .create_client(NewClient {
                org_id: org.id,
                name: "Test client".into(),
                client_type: ClientType::Confidential,
                grant_types: vec![GrantType::ClientCredentials],
                ..NewClient::default()
            })
            .await
            .unwrap();
        self.manager
            .create_grant(&client.id, &audience, granted, false)
            .await
            .unwrap();
        MachineClient {
            client_id: client.id,
            secret: secret.unwrap(),
            audience,
        }
    }

    pub async fn machine_client(&self) -> MachineClient {
        self.machine_client_with("read:consumers write:consumers", SigningAlg::ES256, None)
            .await
    }

    /// POSTs a form body to the token endpoint.
    pub async fn post_token_form(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token"))
            .form(pairs)
            .send()
            .await
            .unwrap()
    }

    /// POSTs a raw body with a content type (and optional Authorization) to `path`.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }

    /// A client-credentials request with client_secret_post: status and body.
    pub async fn token_response(&self, c: &MachineClient) -> (u16, Value) {
        let resp = self
            .post_token_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.client_id),
                ("client_secret", &c.secret),
                ("audience", &c.audience),
            ])
            .await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A client-credentials token with client_secret_post, asserting success.
    pub async fn token(&self, c: &MachineClient) -> Value {
        let (status, body) = self.token_response(c).await;
        assert_eq!(status, 200, "token request failed: {body}");
        body
    }

    /// GETs `path` and parses the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn jwks(&self) -> JwkSet {
        serde_json::from_value(self.get_json("/.well-known/jwks.json").await).unwrap()
    }

    /// Verifies `token` with jsonwebtoken (an implementation independent of Calyx's signer)
    /// against the published JWKS, checking signature, `iss`, `aud`, `exp` and `typ`.
    pub async fn verify(&self, token: &str, audience: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("a JWS header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 typ");
        let kid = header.kid.clone().expect("a kid");
        let jwks = self.jwks().await;
        let jwk = jwks
            .find(&kid)
            .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut v = Validation::new(header.alg);
        v.set_audience(&[audience]);
        v.set_issuer(&[self.base.as_str()]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .expect("the token verifies")
            .claims
    }

    /// Polls `check` every 50 ms for up to 5 s; the server picks up database changes within
    /// its reload interval (100 ms in tests).
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..100 {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Decodes a JWT's header and claims without verifying (for assertions on their contents).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let dec = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    (dec(it.next().unwrap()), dec(it.next().unwrap()))
}
