//! What the tests that run `calyx serve` as a separate process share: a fresh database,
//! provisioning through the CLI, starting a node, and the code and token requests a
//! third-party app makes.
#![allow(dead_code)] // each test binary uses a different part

use std::process::{Child, Command, Stdio};

use serde_json::Value;
use sqlx::{Connection, Executor};

pub const BIN: &str = env!("CARGO_BIN_EXE_calyx");
pub const AUD: &str = "https://crm.multi.test/";
pub const REDIRECT: &str = "https://app.example.com/cb";
pub const PASSWORD: &str = "correct horse battery";

/// A fresh PostgreSQL database when `CALYX_TEST_DATABASE_URL` names a server, else a SQLite
/// file in `dir`.
pub async fn test_database(dir: &std::path::Path) -> String {
    match std::env::var("CALYX_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => fresh_database().await,
        _ => format!("sqlite://{}", dir.join("calyx.db").display()),
    }
}

pub fn admin_url() -> String {
    std::env::var("CALYX_TEST_DATABASE_URL")
        .expect("CALYX_TEST_DATABASE_URL=postgres://... (see scripts/test)")
}

pub async fn fresh_database() -> String {
    let admin = admin_url();
    let name = format!(
        "calyx_t_{}",
        calyx_token::secret::random_alphanumeric(16).to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

pub fn calyx(db: &str, args: &[&str], stdin: Option<&str>) -> Value {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env("CALYX_DATABASE_URL", db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "calyx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub struct Node {
    pub child: Child,
    pub base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn serve(db: &str) -> Node {
    serve_with(db, &[])
}

/// Starts `calyx serve` on a free port with `extra` arguments; returns once it listens.
pub fn serve_with(db: &str, extra: &[&str]) -> Node {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--reload-interval-ms",
            "100",
        ])
        .args(extra)
        .env("CALYX_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the listening line")
        .to_owned();
    Node {
        child,
        base: format!("http://{addr}"),
    }
}

pub struct Fixture {
    pub db: String,
    pub client_id: String,
    pub secret: String,
}

/// An API, a third-party client with refresh, and a user who can sign in.
pub fn provision(db: &str) -> Fixture {
    let org = calyx(db, &["org", "create", "--name", "Multi"], None);
    let org = org["org_id"].as_str().unwrap();
    calyx(
        db,
        &[
            "api",
            "create",
            "--audience",
            AUD,
            "--name",
            "CRM",
            "--scopes",
            "Standard OrgAdmin",
        ],
        None,
    );
    let c = calyx(
        db,
        &[
            "client",
            "create",
            "--org",
            org,
            "--name",
            "App",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "client_credentials",
            "--redirect-uri",
            REDIRECT,
        ],
        None,
    );
    let client_id = c["client_id"].as_str().unwrap().to_owned();
    calyx(
        db,
        &[
            "grant",
            "create",
            "--client",
            &client_id,
            "--audience",
            AUD,
            "--scopes",
            "Standard OrgAdmin",
            "--default",
        ],
        None,
    );
    calyx(
        db,
        &[
            "user",
            "create",
            "--org",
            org,
            "--username",
            "jane",
            "--password-stdin",
            "--audience",
            AUD,
            "--scopes",
            "Standard",
        ],
        Some(PASSWORD),
    );
    Fixture {
        db: db.to_owned(),
        client_id,
        secret: c["client_secret"].as_str().unwrap().to_owned(),
    }
}

pub fn field(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + needle.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Signs jane in at `base` and approves; returns the code.
pub async fn code_at(base: &str, f: &Fixture) -> String {
    Browser::new().code(base, f).await
}

/// A user agent with a cookie jar: it signs jane in once, then each further authorization
/// request goes straight to consent.
pub struct Browser {
    http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { http }
    }

    /// Runs one authorization request through sign-in (when needed) and consent; returns the
    /// code.
    pub async fn code(&self, base: &str, f: &Fixture) -> String {
        let mut html = self
            .http
            .get(format!(
                "{base}/authorize?response_type=code&client_id={}&state=s",
                f.client_id
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if html.contains("name=\"password\"") {
            let form = [
                ("request", field(&html, "request")),
                ("csrf", field(&html, "csrf")),
                ("username", "jane".into()),
                ("password", PASSWORD.into()),
            ];
            html = self
                .http
                .post(format!("{base}/authorize/login"))
                .form(&form)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
        let form = [
            ("request", field(&html, "request")),
            ("csrf", field(&html, "csrf")),
            ("decision", "approve".into()),
        ];
        let resp = self
            .http
            .post(format!("{base}/authorize/consent"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = loc
            .query_pairs()
            .find(|(k, _)| k == "code")
            .expect("a code")
            .1
            .into_owned();
        code
    }
}

pub async fn token(base: &str, f: &Fixture, form: &[(&str, &str)]) -> (u16, Value) {
    try_token(&reqwest::Client::new(), base, f, form)
        .await
        .unwrap()
}

/// A token request with HTTP Basic; a transport error is returned, not a panic.
pub async fn try_token(
    http: &reqwest::Client,
    base: &str,
    f: &Fixture,
    form: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    let resp = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&f.client_id, Some(&f.secret))
        .form(form)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

pub async fn exchange(base: &str, f: &Fixture, code: &str) -> (u16, Value) {
    token(
        base,
        f,
        &[("grant_type", "authorization_code"), ("code", code)],
    )
    .await
}

pub async fn refresh(base: &str, f: &Fixture, rt: &str) -> (u16, Value) {
    token(
        base,
        f,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}
