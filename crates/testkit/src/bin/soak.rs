//! Soak driver, used by `bench/soak`: sustained mixed traffic against one running server,
//! recorded second by second, with a check that no secret reached the server's log.
//!
//! `--concurrency` workers each run a fixed, weighted mix of operations until `--seconds`
//! have passed:
//!
//! - `cc`: a client-credentials token for the machine client, by turns as a form body with
//!   `client_secret_post`, a JSON body, and a form body with HTTP Basic;
//! - `code`: the whole authorization-code flow with PKCE, as a browser with a fresh cookie
//!   jar: `GET /authorize`, the login form, the consent form, the code on the redirect, the
//!   exchange with HTTP Basic (four requests, counted as one operation). The new refresh token
//!   replaces the worker's chain;
//! - `refresh`: the next rotation of the worker's refresh-token chain;
//! - `introspect`: `POST /oauth/introspect` of, by turns, the worker's user access token and
//!   refresh token (as the third-party client) and its org token (as the machine client);
//!   each must be `active`;
//! - `jwks`: `GET /.well-known/jwks.json`.
//!
//! The mix is a smooth weighted round-robin over `--mix` (no randomness: the same weights give
//! the same proportions in every run), given as weights or by name ([`MIXES`]: `default`, and
//! `refresh`, 75 % rotations and 25 % client credentials). Before the clock starts each worker
//! signs in once and gets an org token; that set-up is not part of the record.
//!
//! Every second it records operations completed per kind, HTTP requests, failed operations
//! by kind and by class (transport, 4xx, 429, 5xx, unexpected answer), the latency of each
//! request, the server's resident set (`VmRSS` of `/proc/<pid>/status`) and, with a database
//! URL (`CALYX_DATABASE_URL`), the database's size: a SQLite file with its `-wal`, or
//! PostgreSQL's `pg_database_size`. At the end it writes `<out>.csv`, one row per `--interval`
//! seconds (default 60; the last row may be shorter): the counts, the p99 latency of the
//! interval's requests, its requests per second, and the RSS and database size at its end
//! (`--interval 1` gives the per-second rows of old, whose columns come first). It writes
//! `<out>.svg`, throughput (per second, and the mean per interval), RSS and database size over
//! time, and prints a summary. With `--log` it scans that log for every secret it sent or
//! received (client secrets, their Basic credentials, the password, PKCE verifiers,
//! authorization codes, refresh tokens); without it (a quiet run, the server at `warn`) nothing
//! is scanned and no secret is kept. It exits 1 if any operation failed, if a secret is in the
//! log, or if the RSS grew without bound: the median RSS of the last quarter of the run exceeds
//! the highest RSS of the second quarter (the first is warm-up) by more than max(25 %, 16 MiB)
//! — see [`rss_growth`] for why not maximum against maximum.
//!
//! Secrets come from the environment, never the command line (which other users can read):
//! `SOAK_MACHINE_SECRET`, `SOAK_APP_SECRET`, `SOAK_PASSWORD`.
//!
//! ```text
//! soak --base http://127.0.0.1:PORT --pid PID --seconds 60 --concurrency 32 \
//!   --audience AUD --machine-id ID --app-id ID --redirect-uri URI --username U \
//!   [--log server.log] --out bench/soak-60s [--mix cc=40,refresh=30,...|refresh] \
//!   [--interval 60] [--date TEXT]
//! ```

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use calyx_testkit::browser::try_field;
use calyx_testkit::Scanner;
use calyx_token::secret::random_string;
use clap::Parser;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, Parser)]
#[command(about = "Sustained mixed traffic against a running Calyx server")]
struct Args {
    /// The server's base URL.
    #[arg(long)]
    base: String,
    /// The server's process id, for its resident set.
    #[arg(long)]
    pid: u32,
    /// How long to run the mix.
    #[arg(long)]
    seconds: u64,
    /// Concurrent workers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The audience of the machine client's tokens.
    #[arg(long)]
    audience: String,
    /// The machine (client-credentials) client.
    #[arg(long)]
    machine_id: String,
    #[arg(long, env = "SOAK_MACHINE_SECRET", hide_env_values = true)]
    machine_secret: String,
    /// The third-party client (authorization_code + refresh_token).
    #[arg(long)]
    app_id: String,
    #[arg(long, env = "SOAK_APP_SECRET", hide_env_values = true)]
    app_secret: String,
    /// A redirect URI registered for the third-party client.
    #[arg(long)]
    redirect_uri: String,
    /// The user who signs in.
    #[arg(long)]
    username: String,
    #[arg(long, env = "SOAK_PASSWORD", hide_env_values = true)]
    password: String,
    /// Operation weights, `kind=weight` for cc, code, refresh, introspect, jwks; or the name
    /// of a mix: `default`, `refresh`.
    #[arg(long, env = "SOAK_MIX", default_value = "default")]
    mix: String,
    /// The server's log, scanned for secrets at the end; without it no secret is looked for
    /// (nor kept).
    #[arg(long)]
    log: Option<PathBuf>,
    /// The server's database, whose size is recorded every second: sqlite://PATH (the file
    /// and its -wal) or postgres://...
    #[arg(long, env = "CALYX_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Seconds per row of the CSV and per step of the plot's mean throughput.
    #[arg(long, env = "SOAK_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Output prefix: writes PREFIX.csv and PREFIX.svg.
    #[arg(long)]
    out: PathBuf,
    /// Shown in the plot's title (e.g. the date of the run).
    #[arg(long, default_value = "")]
    date: String,
}

/// The operations of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Cc,
    Code,
    Refresh,
    Introspect,
    Jwks,
}

const KINDS: [Kind; 5] = [
    Kind::Cc,
    Kind::Code,
    Kind::Refresh,
    Kind::Introspect,
    Kind::Jwks,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cc => "cc",
            Kind::Code => "code",
            Kind::Refresh => "refresh",
            Kind::Introspect => "introspect",
            Kind::Jwks => "jwks",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name() == s)
    }
}

/// Why an operation failed.
enum Failure {
    /// No answer: connection refused or reset, timeout.
    Transport(String),
    /// An answer with a status other than the one expected.
    Status(u16, String),
    /// The expected status with content that is wrong (e.g. a live token reported inactive).
    Unexpected(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(e) => write!(f, "no answer: {e}"),
            Failure::Status(s, body) => write!(f, "status {s}: {body}"),
            Failure::Unexpected(what) => write!(f, "{what}"),
        }
    }
}

/// The classes failures are counted in.
const CLASSES: [&str; 5] = ["transport", "4xx", "429", "5xx", "unexpected"];

impl Failure {
    fn class(&self) -> usize {
        match self {
            Failure::Transport(_) => 0,
            Failure::Status(429, _) => 2,
            Failure::Status(s, _) if *s >= 500 => 3,
            Failure::Status(s, _) if *s >= 400 => 1,
            Failure::Status(..) | Failure::Unexpected(_) => 4,
        }
    }
}

/// One second of the run.
#[derive(Clone, Default)]
struct Second {
    ops: [u64; 5],
    requests: u64,
    errors: [u64; 5],
    classes: [u64; 5],
    latencies_us: Vec<u32>,
    rss_kb: u64,
    /// The database's size at the end of the second, when it is known.
    db_bytes: Option<u64>,
}

fn percentile_ms(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p) as usize).min(v.len() - 1);
    f64::from(v[i]) / 1000.0
}

/// Every secret the driver sent or received, by what it is.
type Secrets = Scanner<&'static str>;

/// What every worker writes to. Nothing but secrets is recorded until [`Recorder::begin`]:
/// the set-up is not part of the per-second record.
struct Recorder {
    /// Whether secrets are kept, for a log scan.
    scan: bool,
    start: OnceLock<Instant>,
    seconds: Mutex<Vec<Second>>,
    by_kind_us: Mutex<[Vec<u32>; 5]>,
    secrets: Mutex<Secrets>,
    first_failures: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(seconds: u64, scan: bool) -> Recorder {
        Recorder {
            scan,
            start: OnceLock::new(),
            seconds: Mutex::new(vec![Second::default(); seconds.max(1) as usize]),
            by_kind_us: Mutex::default(),
            secrets: Mutex::default(),
            first_failures: Mutex::default(),
        }
    }

    /// Starts the clock; returns the start.
    fn begin(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    /// The second now falls in (requests finishing after the end count in the last one).
    fn bucket(&self, seconds: &[Second]) -> Option<usize> {
        let start = self.start.get()?;
        Some((start.elapsed().as_secs() as usize).min(seconds.len() - 1))
    }

    fn request(&self, kind: Kind, took: Duration) {
        let us = took.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut s = self.seconds.lock().unwrap();
        let Some(i) = self.bucket(&s) else { return };
        s[i].requests += 1;
        s[i].latencies_us.push(us);
        drop(s);
        self.by_kind_us.lock().unwrap()[kind as usize].push(us);
    }

    fn done(&self, kind: Kind, result: &Result<(), Failure>) {
        let mut s = self.seconds.lock().unwrap();
        let Some(i) = self.bucket(&s) else { return };
        match result {
            Ok(()) => s[i].ops[kind as usize] += 1,
            Err(f) => {
                s[i].errors[kind as usize] += 1;
                s[i].classes[f.class()] += 1;
                drop(s);
                let mut first = self.first_failures.lock().unwrap();
                if first.len() < 20 {
                    first.push(format!("{} in second {}: {f}", kind.name(), i + 1));
                }
            }
        }
    }

    /// Keeps a secret to look for in the log.
    fn secret(&self, what: &'static str, s: &str) {
        if !self.scan {
            return;
        }
        self.secrets.lock().unwrap().add(what, s);
    }
}

/// Shared by the workers: the clients, credentials and recorder.
struct Ctx {
    args: Args,
    http: reqwest::Client,
    rec: Recorder,
    /// The database whose size is recorded, if known.
    db: Option<Database>,
}

/// One worker's live credentials.
#[derive(Default)]
struct Worker {
    refresh_token: Option<String>,
    user_token: Option<String>,
    org_token: Option<String>,
    /// How many operations of each kind this worker has started: picks the variant.
    turns: [u64; 5],
}

impl Ctx {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.args.base)
    }

    /// A POST to `path` as the third-party client (HTTP Basic).
    fn as_app(&self, path: &str) -> reqwest::RequestBuilder {
        let a = &self.args;
        self.http
            .post(self.url(path))
            .basic_auth(&a.app_id, Some(&a.app_secret))
    }

    /// Sends a request, times it to the end of the body, and checks the status.
    async fn call(
        &self,
        kind: Kind,
        req: reqwest::RequestBuilder,
        expect: u16,
    ) -> Result<(reqwest::header::HeaderMap, String), Failure> {
        let (_, headers, body) = self.call_expecting(kind, req, &[expect]).await?;
        Ok((headers, body))
    }

    /// [`Ctx::call`] for a request that may be answered with any of `expect`: the status too.
    async fn call_expecting(
        &self,
        kind: Kind,
        req: reqwest::RequestBuilder,
        expect: &[u16],
    ) -> Result<(u16, reqwest::header::HeaderMap, String), Failure> {
        let t = Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await;
        self.rec.request(kind, t.elapsed());
        let body = body.map_err(|e| Failure::Transport(e.to_string()))?;
        if !expect.contains(&status) {
            let mut short = body;
            short.truncate(200);
            return Err(Failure::Status(status, short));
        }
        Ok((status, headers, body))
    }

    async fn json(&self, kind: Kind, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let (_, body) = self.call(kind, req, 200).await?;
        serde_json::from_str(&body).map_err(|e| Failure::Unexpected(format!("not JSON: {e}")))
    }

    async fn client_credentials(&self, w: &mut Worker) -> Result<(), Failure> {
        let a = &self.args;
        let url = self.url("/oauth/token");
        let req = match w.turns[Kind::Cc as usize] % 3 {
            0 => self.http.post(url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", a.machine_id.as_str()),
                ("client_secret", a.machine_secret.as_str()),
                ("audience", a.audience.as_str()),
            ]),
            1 => self.http.post(url).json(&json!({
                "grant_type": "client_credentials",
                "client_id": a.machine_id,
                "client_secret": a.machine_secret,
                "audience": a.audience,
            })),
            _ => self
                .http
                .post(url)
                .basic_auth(&a.machine_id, Some(&a.machine_secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("audience", a.audience.as_str()),
                ]),
        };
        let v = self.json(Kind::Cc, req).await?;
        w.org_token = Some(string(&v, "access_token")?);
        Ok(())
    }

    /// The authorization-code flow as a browser runs it, then the exchange.
    async fn code_flow(&self, w: &mut Worker) -> Result<(), Failure> {
        let a = &self.args;
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let verifier = random_string(32);
        self.rec.secret("PKCE verifier", &verifier);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_string(16);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", a.app_id.as_str()),
                ("redirect_uri", a.redirect_uri.as_str()),
                ("state", state.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let (_, login) = self
            .call(
                Kind::Code,
                browser.get(self.url(&format!("/authorize?{query}"))),
                200,
            )
            .await?;
        let credentials = [
            ("username", a.username.as_str()),
            ("password", a.password.as_str()),
        ];
        let (status, headers, consent) = self
            .submit(
                &browser,
                &login,
                "/authorize/login",
                &credentials,
                &[200, 303],
            )
            .await?;
        // A user who approved this application before is sent straight back with the code:
        // the consent is remembered.
        let headers = if status == 303 {
            headers
        } else {
            let approve = [("decision", "approve")];
            self.submit(&browser, &consent, "/authorize/consent", &approve, &[303])
                .await?
                .1
        };
        let location = headers
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url::Url::parse(l).ok())
            .ok_or_else(|| Failure::Unexpected("no usable Location after consent".into()))?;
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(state.as_str()) {
            return Err(Failure::Unexpected("state not echoed".into()));
        }
        let code = param("code").ok_or_else(|| Failure::Unexpected("no code".into()))?;
        self.rec.secret("authorization code", &code);
        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", a.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        self.user_tokens(w, Kind::Code, &exchange).await
    }

    /// Posts the hidden fields of `page` (`request`, `csrf`) and `fields` to `path`, as the
    /// page's form does, and checks the status is one of `expect`.
    async fn submit(
        &self,
        browser: &reqwest::Client,
        page: &str,
        path: &str,
        fields: &[(&str, &str)],
        expect: &[u16],
    ) -> Result<(u16, reqwest::header::HeaderMap, String), Failure> {
        let (request, csrf) = (hidden(page, "request")?, hidden(page, "csrf")?);
        let mut form = vec![("request", request.as_str()), ("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let req = browser.post(self.url(path)).form(&form);
        self.call_expecting(Kind::Code, req, expect).await
    }

    /// A token request as the third-party client, whose tokens become the worker's.
    async fn user_tokens(
        &self,
        w: &mut Worker,
        kind: Kind,
        form: &[(&str, &str)],
    ) -> Result<(), Failure> {
        let v = self
            .json(kind, self.as_app("/oauth/token").form(form))
            .await?;
        let rt = string(&v, "refresh_token")?;
        self.rec.secret("refresh token", &rt);
        w.refresh_token = Some(rt);
        w.user_token = Some(string(&v, "access_token")?);
        Ok(())
    }

    async fn refresh(&self, w: &mut Worker) -> Result<(), Failure> {
        let Some(rt) = w.refresh_token.take() else {
            // The chain broke earlier (and was counted then): sign in again.
            return self.code_flow(w).await;
        };
        let rotation = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        self.user_tokens(w, Kind::Refresh, &rotation).await
    }

    async fn introspect(&self, w: &mut Worker) -> Result<(), Failure> {
        let a = &self.args;
        let url = self.url("/oauth/introspect");
        let turn = w.turns[Kind::Introspect as usize] % 3;
        // By turns the app's user access token, its refresh token, and the org token; the
        // org token when the app's is missing.
        let as_app = match turn {
            0 => w.user_token.as_deref().map(|t| (t, "user access token")),
            1 => w.refresh_token.as_deref().map(|t| (t, "refresh token")),
            _ => None,
        };
        let (req, what) = match (as_app, &w.org_token) {
            (Some((t, what)), _) => (self.as_app("/oauth/introspect").form(&[("token", t)]), what),
            (None, Some(t)) => (
                self.http.post(url).form(&[
                    ("token", t.as_str()),
                    ("client_id", a.machine_id.as_str()),
                    ("client_secret", a.machine_secret.as_str()),
                ]),
                "org token",
            ),
            (None, None) => return Err(Failure::Unexpected("no token to introspect".into())),
        };
        let v = self.json(Kind::Introspect, req).await?;
        if v["active"] != json!(true) {
            return Err(Failure::Unexpected(format!(
                "live {what} reported inactive"
            )));
        }
        Ok(())
    }

    async fn jwks(&self) -> Result<(), Failure> {
        let v = self
            .json(
                Kind::Jwks,
                self.http.get(self.url("/.well-known/jwks.json")),
            )
            .await?;
        match v["keys"].as_array() {
            Some(keys) if !keys.is_empty() => Ok(()),
            _ => Err(Failure::Unexpected("JWKS without keys".into())),
        }
    }

    async fn run(&self, kind: Kind, w: &mut Worker) -> Result<(), Failure> {
        let r = match kind {
            Kind::Cc => self.client_credentials(w).await,
            Kind::Code => self.code_flow(w).await,
            Kind::Refresh => self.refresh(w).await,
            Kind::Introspect => self.introspect(w).await,
            Kind::Jwks => self.jwks().await,
        };
        w.turns[kind as usize] += 1;
        r
    }
}

/// The value of a hidden form field.
fn hidden(html: &str, name: &str) -> Result<String, Failure> {
    try_field(html, name).ok_or_else(|| Failure::Unexpected(format!("no {name} field on the page")))
}

fn string(v: &Value, name: &str) -> Result<String, Failure> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::Unexpected(format!("no {name} in the answer")))
}

/// The mixes `--mix` takes by name.
const MIXES: [(&str, &str); 2] = [
    // Every flow: client credentials 40 %, rotations 30 %, introspection 15 %, JWKS 14.9 %,
    // and a sign-in now and then.
    (
        "default",
        "cc=400,refresh=300,introspect=150,jwks=149,code=1",
    ),
    // Refresh-heavy: 75 % rotations, 25 % client credentials — the share measured against the
    // refresh-token table's growth, where every rotation writes.
    ("refresh", "refresh=3,cc=1"),
];

/// `cc=400,code=5,...` or the name of one of [`MIXES`] → weights.
fn parse_mix(s: &str) -> anyhow::Result<Vec<(Kind, u32)>> {
    let s = MIXES.iter().find(|(name, _)| *name == s).map_or(s, |m| m.1);
    let mut mix = Vec::new();
    for part in s.split(',') {
        let (k, w) = part
            .split_once('=')
            .with_context(|| format!("{part:?} is not kind=weight"))?;
        let kind = Kind::parse(k).with_context(|| format!("unknown kind {k:?}"))?;
        let weight: u32 = w.parse().with_context(|| format!("weight of {k}"))?;
        if weight > 0 {
            mix.push((kind, weight));
        }
    }
    if mix.is_empty() {
        bail!("the mix is empty");
    }
    Ok(mix)
}

/// One cycle of smooth weighted round-robin: each kind appears as often as its weight,
/// spread out rather than in runs.
fn schedule(mix: &[(Kind, u32)]) -> Vec<Kind> {
    let total: i64 = mix.iter().map(|(_, w)| i64::from(*w)).sum();
    let mut current = vec![0i64; mix.len()];
    (0..total)
        .map(|_| {
            for (c, (_, w)) in current.iter_mut().zip(mix) {
                *c += i64::from(*w);
            }
            // The first of the largest, so ties go to the kind listed first.
            let mut best = 0;
            for i in 1..mix.len() {
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            mix[best].0
        })
        .collect()
}

/// The resident set of `pid` in KiB, or 0 when it is gone.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Where the database's size is read.
enum Database {
    /// The file; its `-wal` beside it counts too.
    Sqlite(PathBuf),
    Postgres(sqlx::PgPool),
}

impl Database {
    async fn open(url: &str) -> anyhow::Result<Database> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if !url.starts_with("postgres") {
            bail!("the database URL is neither sqlite: nor postgres:");
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .context("connecting to the database for its size")?;
        Ok(Database::Postgres(pool))
    }

    /// What the plot says is measured.
    fn what(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "SQLite file + WAL",
            Database::Postgres(_) => "pg_database_size",
        }
    }

    /// The size now; `None` when it cannot be read.
    async fn bytes(&self) -> Option<u64> {
        match self {
            Database::Sqlite(path) => {
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                let main = std::fs::metadata(path).ok()?.len();
                Some(main + std::fs::metadata(wal).map_or(0, |m| m.len()))
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar::<_, i64>("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await
                    .ok()
                    .map(|n| n as u64)
            }
        }
    }
}

/// The growth rule (see the header): (highest RSS of the 2nd quarter, median of the last
/// quarter, allowed growth, grew too much). `None` when the run is too short for quarters.
///
/// Each sign-in's argon2 takes 19 MiB, which the allocator keeps for a while afterwards, so
/// the RSS moves in steps of about 20 MB with the sign-ins of the last seconds (with no
/// sign-ins it is flat). The second quarter's highest value spans that band; the last
/// quarter's median ignores a burst of sign-ins but not a leak.
fn rss_growth(rss: &[u64]) -> Option<(u64, u64, u64, bool)> {
    let n = rss.len();
    if n < 8 {
        return None;
    }
    let q2 = *rss[n / 4..n / 2].iter().max()?;
    let mut last = rss[n - n / 4..].to_vec();
    last.sort_unstable();
    let q4 = last[last.len() / 2];
    let allowed = (q2 / 4).max(16 * 1024);
    Some((q2, q4, allowed, q4 > q2 + allowed))
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `interval` seconds of the run, summed: one row of the CSV.
struct Interval {
    /// The last second it covers (1-based, as the old per-second rows counted).
    end: usize,
    /// How many seconds it covers (the last interval may be short).
    len: usize,
    total: Second,
    p99_ms: f64,
}

impl Interval {
    fn per_second(&self) -> f64 {
        self.total.requests as f64 / self.len as f64
    }
}

/// The run in rows of `interval` seconds: counts summed, p99 over all their requests, the RSS
/// and database size of their last second.
fn intervals(seconds: &[Second], interval: usize) -> Vec<Interval> {
    let mut out = Vec::new();
    for (i, chunk) in seconds.chunks(interval).enumerate() {
        let mut total = Second::default();
        for s in chunk {
            for k in 0..5 {
                total.ops[k] += s.ops[k];
                total.errors[k] += s.errors[k];
                total.classes[k] += s.classes[k];
            }
            total.requests += s.requests;
            total.latencies_us.extend_from_slice(&s.latencies_us);
        }
        let last = chunk.last().expect("chunks are never empty");
        (total.rss_kb, total.db_bytes) = (last.rss_kb, last.db_bytes);
        let p99_ms = percentile_ms(&mut total.latencies_us, 0.99);
        total.latencies_us = Vec::new();
        let (end, len) = (i * interval + chunk.len(), chunk.len());
        out.push(Interval {
            end,
            len,
            total,
            p99_ms,
        });
    }
    out
}

fn write_csv(path: &Path, rows: &[Interval]) -> anyhow::Result<()> {
    let mut out = String::from("second,requests");
    for k in KINDS {
        out.push_str(&format!(",{}", k.name()));
    }
    out.push_str(",errors");
    for c in CLASSES {
        out.push_str(&format!(",err_{c}"));
    }
    for k in KINDS {
        out.push_str(&format!(",err_{}", k.name()));
    }
    out.push_str(",p99_ms,rss_mb,requests_per_s,db_mb\n");
    for row in rows {
        let s = &row.total;
        out.push_str(&format!("{},{}", row.end, s.requests));
        for n in s.ops {
            out.push_str(&format!(",{n}"));
        }
        out.push_str(&format!(",{}", s.errors.iter().sum::<u64>()));
        for n in s.classes.iter().chain(&s.errors) {
            out.push_str(&format!(",{n}"));
        }
        let db = s
            .db_bytes
            .map_or(String::new(), |b| format!("{:.1}", mb(b / 1024)));
        out.push_str(&format!(
            ",{:.2},{:.1},{:.1},{db}\n",
            row.p99_ms,
            mb(s.rss_kb),
            row.per_second()
        ));
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// One of the plot's charts: seconds along x (0 to `x_max`), 0 to `y_max` up.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart with its caption and labelled axes on `area`.
fn chart_on<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    x_max: f64,
    y_max: f64,
    y_desc: &str,
) -> anyhow::Result<Chart<'a, 'b>> {
    let whole = |v: &f64| format!("{v:.0}");
    // Small values (a database of a few MB) get a decimal, or the labels repeat.
    let y_label = |v: &f64| {
        if y_max < 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.0}")
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .x_label_formatter(&whole)
        .y_label_formatter(&y_label)
        .draw()?;
    Ok(chart)
}

/// The chart's legend, framed, at `position`.
fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// What the plot shows besides the per-second record.
struct PlotExtras<'a> {
    /// The rows of the CSV, drawn as the mean throughput per interval (when longer than 1 s).
    rows: &'a [Interval],
    interval: u64,
    /// The limit of the RSS check, a dashed line over the last quarter.
    rss_limit: Option<u64>,
    /// What the database size is (a panel of its own when there is one).
    db: Option<&'static str>,
}

fn plot(
    path: &Path,
    title: &str,
    seconds: &[Second],
    extras: &PlotExtras<'_>,
) -> anyhow::Result<()> {
    let n = seconds.len() as f64;
    let height = if extras.db.is_some() { 1120 } else { 820 };
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 24))?;
    let (top, bottom) = root.split_vertically(480);
    let (bottom, db_area) = match extras.db {
        Some(_) => {
            let (rss, db) = bottom.split_vertically(300);
            (rss, Some(db))
        }
        None => (bottom, None),
    };

    let total: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (i as f64 + 1.0, s.requests as f64))
        .collect();
    let peak = total.iter().map(|p| p.1).fold(1.0, f64::max);
    let mut chart = chart_on(
        &top,
        "Throughput (per second)",
        n,
        peak * 1.35,
        "per second",
    )?;
    let mut series = vec![("HTTP requests".to_owned(), BLACK, total)];
    let colors = [BLUE, GREEN, MAGENTA, CYAN, RGBColor(230, 140, 0)];
    for (k, color) in KINDS.into_iter().zip(colors) {
        if seconds.iter().all(|s| s.ops[k as usize] == 0) {
            continue; // not in the mix
        }
        let label = match k {
            Kind::Code => "code flows (4 requests each)".to_owned(),
            k => format!("{} operations", k.name()),
        };
        let points = seconds
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64 + 1.0, s.ops[k as usize] as f64))
            .collect();
        series.push((label, color, points));
    }
    let errors: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (i as f64 + 1.0, s.errors.iter().sum::<u64>() as f64))
        .collect();
    series.push(("failed operations".to_owned(), RED, errors));
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if extras.interval > 1 {
        // A step per interval, at its mean: the trend of a long run, under the noise.
        let steps = extras.rows.iter().flat_map(|r| {
            let (from, to) = ((r.end - r.len) as f64, r.end as f64);
            [(from, r.per_second()), (to, r.per_second())]
        });
        let brown = RGBColor(140, 70, 0);
        chart
            .draw_series(LineSeries::new(steps, brown.stroke_width(4)))?
            .label(format!("HTTP requests, mean per {} s", extras.interval))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], brown.stroke_width(4))
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;

    let rss: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (i as f64 + 1.0, mb(s.rss_kb)))
        .collect();
    let rss_limit = extras.rss_limit;
    let rss_peak = rss
        .iter()
        .map(|p| p.1)
        .chain(rss_limit.map(mb))
        .fold(1.0, f64::max);
    let mut chart = chart_on(
        &bottom,
        "Server resident set (VmRSS)",
        n,
        rss_peak * 1.25,
        "MB",
    )?;
    chart
        .draw_series(LineSeries::new(rss, BLUE.stroke_width(2)))?
        .label("RSS")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if let Some(limit) = rss_limit {
        let from = (n - (seconds.len() / 4) as f64).max(0.0);
        chart
            .draw_series(DashedLineSeries::new(
                [(from, mb(limit)), (n, mb(limit))],
                8,
                6,
                RED.stroke_width(2),
            ))?
            .label("limit for the last quarter's median")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

    if let (Some(what), Some(area)) = (extras.db, &db_area) {
        let size: Vec<(f64, f64)> = seconds
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as f64 + 1.0, mb(s.db_bytes? / 1024))))
            .collect();
        let peak = size.iter().map(|p| p.1).fold(1.0, f64::max);
        let caption = format!("Database size ({what})");
        let mut chart = chart_on(area, &caption, n, peak * 1.25, "MB")?;
        chart
            .draw_series(LineSeries::new(size, GREEN.stroke_width(2)))?
            .label("database")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present()?;
    Ok(())
}

/// Every worker signs in once and gets an org token, a few at a time: each sign-in is an
/// argon2 verification holding 19 MiB.
async fn set_up(ctx: &Arc<Ctx>, concurrency: usize) -> anyhow::Result<Vec<Worker>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(4));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (ctx, gate) = (ctx.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.expect("open semaphore");
                let mut w = Worker::default();
                ctx.code_flow(&mut w).await?;
                ctx.client_credentials(&mut w).await?;
                Ok::<_, Failure>(w)
            })
        })
        .collect();
    let mut workers = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(w) => workers.push(w),
            Err(f) => bail!("setting up a worker: {f}"),
        }
    }
    Ok(workers)
}

/// Runs the mix on every worker until `seconds` have passed, sampling the server's RSS and
/// the database's size at the end of each second. Returns the elapsed time.
async fn run_mix(
    ctx: &Arc<Ctx>,
    workers: Vec<Worker>,
    deck: Arc<Vec<Kind>>,
    seconds: u64,
) -> anyhow::Result<f64> {
    let start = ctx.rec.begin();
    let deadline = start + Duration::from_secs(seconds);
    let sampler = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::from_std(start + Duration::from_secs(1)),
                Duration::from_secs(1),
            );
            for i in 0..seconds as usize {
                tick.tick().await;
                let kb = rss_kb(ctx.args.pid);
                let db = match &ctx.db {
                    Some(db) => db.bytes().await,
                    None => None,
                };
                let mut s = ctx.rec.seconds.lock().unwrap();
                (s[i].rss_kb, s[i].db_bytes) = (kb, db);
            }
        })
    };
    let n = workers.len();
    let tasks: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            let (ctx, deck) = (ctx.clone(), deck.clone());
            tokio::spawn(async move {
                // Workers start at different places in the deck.
                let mut at = i * deck.len() / n;
                while Instant::now() < deadline {
                    let kind = deck[at % deck.len()];
                    at += 1;
                    let r = ctx.run(kind, &mut w).await;
                    ctx.rec.done(kind, &r);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    sampler.await?;
    Ok(elapsed)
}

/// What the log scan found.
struct Scan {
    lines: u64,
    bytes: u64,
    /// Kind of secret → the log lines it is on.
    leaks: BTreeMap<&'static str, Vec<u64>>,
}

fn scan_log(path: &Path, secrets: &Secrets) -> anyhow::Result<Scan> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening the log {}", path.display()))?;
    let mut scan = Scan {
        lines: 0,
        bytes: 0,
        leaks: BTreeMap::new(),
    };
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.context("reading the log")?;
        scan.lines += 1;
        scan.bytes += line.len() as u64 + 1;
        for what in secrets.found_in(&line) {
            scan.leaks.entry(what).or_default().push(scan.lines);
        }
    }
    Ok(scan)
}

fn join<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> String) -> String {
    items.into_iter().map(f).collect::<Vec<_>>().join(", ")
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let mix = parse_mix(&args.mix)?;
    let (seconds, concurrency, pid) = (args.seconds, args.concurrency, args.pid);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let rec = Recorder::new(seconds, args.log.is_some());
    rec.secret("client secret", &args.machine_secret);
    rec.secret("client secret", &args.app_secret);
    rec.secret("password", &args.password);
    for (id, s) in [
        (&args.machine_id, &args.machine_secret),
        (&args.app_id, &args.app_secret),
    ] {
        rec.secret("Basic credential", &STANDARD.encode(format!("{id}:{s}")));
    }
    let db = match &args.database_url {
        Some(url) => Some(Database::open(url).await?),
        None => None,
    };
    let ctx = Arc::new(Ctx {
        args,
        http,
        rec,
        db,
    });

    let t = Instant::now();
    let workers = set_up(&ctx, concurrency).await?;
    let rss_start = rss_kb(pid);
    println!(
        "set up {concurrency} workers in {:.1} s; RSS {:.1} MB",
        t.elapsed().as_secs_f64(),
        mb(rss_start)
    );
    let elapsed = run_mix(&ctx, workers, Arc::new(schedule(&mix)), seconds).await?;
    let rss_end = rss_kb(pid);

    // Every task is done: the recorder is ours, and the log is complete.
    let ctx = Arc::into_inner(ctx).expect("no task holds the context");
    let secrets = ctx.rec.secrets.into_inner().unwrap();
    let scan = match &ctx.args.log {
        Some(log) => Some(scan_log(log, &secrets)?),
        None => None,
    };

    let per_second = ctx.rec.seconds.into_inner().unwrap();
    let interval = ctx.args.interval;
    let rows = intervals(&per_second, interval as usize);
    let csv = ctx.args.out.with_extension("csv");
    let svg = ctx.args.out.with_extension("svg");
    write_csv(&csv, &rows)?;
    let rss: Vec<u64> = per_second.iter().map(|s| s.rss_kb).collect();
    let growth = rss_growth(&rss);
    let traffic = match ctx.args.mix.as_str() {
        "default" => "mixed traffic".to_owned(),
        "refresh" => "refresh-heavy traffic".to_owned(),
        weights => format!("mix {weights}"),
    };
    let mut title = format!("Calyx soak: {seconds} s, {concurrency} workers, {traffic}");
    if !ctx.args.date.is_empty() {
        title = format!("{title} — {}", ctx.args.date);
    }
    let extras = PlotExtras {
        rows: &rows,
        interval,
        rss_limit: growth.map(|(q2, _, a, _)| q2 + a),
        db: ctx.db.as_ref().map(Database::what),
    };
    plot(&svg, &title, &per_second, &extras)?;

    // The summary.
    let mut ops = [0u64; 5];
    let mut errors = [0u64; 5];
    let mut classes = [0u64; 5];
    for s in &per_second {
        for k in 0..5 {
            ops[k] += s.ops[k];
            errors[k] += s.errors[k];
            classes[k] += s.classes[k];
        }
    }
    let weights: u32 = mix.iter().map(|(_, w)| w).sum();
    println!(
        "soak: {seconds} s, {concurrency} workers, mix {}",
        join(&mix, |(k, w)| format!(
            "{} {:.1}%",
            k.name(),
            100.0 * f64::from(*w) / f64::from(weights)
        ))
    );
    let requests: u64 = per_second.iter().map(|s| s.requests).sum();
    println!("requests: {requests} ({:.0}/s)", requests as f64 / elapsed);
    if per_second.len() >= 4 {
        let q = per_second.len() / 4;
        println!(
            "requests/s by quarter: {}",
            join(per_second.chunks(q).take(4), |c| format!(
                "{:.0}",
                c.iter().map(|s| s.requests).sum::<u64>() as f64 / c.len() as f64
            ))
        );
    }
    if rows.len() > 1 {
        println!(
            "requests/s per {interval} s: {}",
            join(&rows, |r| format!("{:.0}", r.per_second()))
        );
    }
    let mut by_kind = ctx.rec.by_kind_us.into_inner().unwrap();
    for k in KINDS {
        let (i, l) = (k as usize, &mut by_kind[k as usize]);
        if ops[i] + errors[i] == 0 && !mix.iter().any(|(m, _)| *m == k) {
            continue;
        }
        println!(
            "  {:<10} {:>9} ops {:>8.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  failed {}",
            k.name(),
            ops[i],
            ops[i] as f64 / elapsed,
            percentile_ms(l, 0.50),
            percentile_ms(l, 0.99),
            errors[i]
        );
    }
    let failed: u64 = errors.iter().sum();
    println!(
        "failed operations: {failed} ({})",
        join(CLASSES.iter().zip(classes), |(c, n)| format!("{c} {n}"))
    );
    for f in ctx.rec.first_failures.into_inner().unwrap() {
        println!("  {f}");
    }
    let rss_peak = rss.iter().copied().chain([rss_start, rss_end]).max();
    println!(
        "RSS: start {:.1} MB, peak {:.1} MB, end {:.1} MB",
        mb(rss_start),
        mb(rss_peak.unwrap_or(0)),
        mb(rss_end)
    );
    let mut reasons = Vec::new();
    match growth {
        Some((q2, q4, allowed, grew)) => {
            println!(
                "RSS growth: highest {:.1} MB in the 2nd quarter, median {:.1} MB in the \
                 last (allowed +{:.1} MB): {}",
                mb(q2),
                mb(q4),
                mb(allowed),
                if grew { "GREW" } else { "ok" }
            );
            if grew {
                reasons.push("RSS grew beyond the limit".to_owned());
            }
        }
        None => println!("RSS growth: run too short to judge (fewer than 8 seconds)"),
    }
    if let Some(what) = &extras.db {
        let sizes: Vec<u64> = per_second.iter().filter_map(|s| s.db_bytes).collect();
        if let (Some(first), Some(last)) = (sizes.first(), sizes.last()) {
            println!(
                "database ({what}): {:.1} MB after the first second, {:.1} MB at the end{}",
                mb(first / 1024),
                mb(last / 1024),
                if rows.len() > 1 {
                    format!(
                        "; per {interval} s: {}",
                        join(&rows, |r| r
                            .total
                            .db_bytes
                            .map_or("-".to_owned(), |b| format!("{:.1}", mb(b / 1024))))
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    match &scan {
        Some(scan) => {
            println!(
                "log: {} lines ({:.1} MB) scanned for {} secrets ({}); leaks: {}",
                scan.lines,
                scan.bytes as f64 / 1e6,
                secrets.len(),
                join(secrets.counts(), |(w, n)| format!(
                    "{n} {w}{}",
                    if *n == 1 { "" } else { "s" }
                )),
                scan.leaks.values().map(Vec::len).sum::<usize>()
            );
            for (what, at) in &scan.leaks {
                println!(
                    "  LEAK: a {what} on log line(s) {}",
                    join(at.iter().take(5), u64::to_string)
                );
                reasons.push(format!("a {what} is in the log"));
            }
        }
        None => println!("log: not scanned for secrets (no --log: a quiet run)"),
    }
    if failed > 0 {
        reasons.push(format!("{failed} failed operations"));
    }
    println!("wrote {} and {}", csv.display(), svg.display());
    if reasons.is_empty() {
        println!("SOAK PASSED");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("SOAK FAILED: {}", reasons.join("; "));
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_follows_the_weights_and_spreads_them() {
        let deck = schedule(&[(Kind::Cc, 3), (Kind::Jwks, 1)]);
        assert_eq!(deck, [Kind::Cc, Kind::Cc, Kind::Jwks, Kind::Cc]);
    }

    #[test]
    fn a_named_mix_stands_for_its_weights() {
        let refresh = parse_mix("refresh").unwrap();
        assert_eq!(refresh, [(Kind::Refresh, 3), (Kind::Cc, 1)]);
        assert_eq!(
            parse_mix("default").unwrap(),
            parse_mix(MIXES[0].1).unwrap()
        );
        assert!(parse_mix("refreshes").is_err());
    }

    #[test]
    fn a_structured_refresh_token_is_found_by_its_secret_part() {
        let rec = Recorder::new(1, true);
        let secret = "k".repeat(43);
        let token = format!("fam_0123456789abcdefghijkl.7.{secret}.TAGTAGTAGTAGTAGTAGTAGT");
        rec.secret("refresh token", &token);
        rec.secret("password", "a-password-that-is-only-32-chars");
        let secrets = rec.secrets.into_inner().unwrap();
        assert_eq!(
            secrets
                .found_in(format!("token={token}&x").as_bytes())
                .len(),
            1
        );
        assert!(secrets
            .found_in(b"family fam_0123456789abcdefghijkl revoked")
            .is_empty());
        assert_eq!(
            secrets.found_in(b"a-password-that-is-only-32-chars").len(),
            1
        );
    }

    #[test]
    fn intervals_sum_their_seconds_and_end_with_their_last_samples() {
        let seconds: Vec<Second> = (1..=5u64)
            .map(|i| Second {
                requests: i * 10,
                latencies_us: vec![i as u32 * 1000],
                rss_kb: i,
                db_bytes: Some(i * 1024),
                ..Second::default()
            })
            .collect();
        let rows = intervals(&seconds, 2);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.end, r.len, r.total.requests, r.total.rss_kb))
            .collect();
        assert_eq!(summary, [(2, 2, 30, 2), (4, 2, 70, 4), (5, 1, 50, 5)]);
        assert_eq!(rows[1].per_second(), 35.0);
        assert_eq!(
            (rows[1].p99_ms, rows[2].total.db_bytes),
            (4.0, Some(5 * 1024))
        );
    }

    #[test]
    fn rss_may_grow_by_a_quarter_or_16_mib_whichever_is_more() {
        let flat = [100_000u64; 16];
        assert!(!rss_growth(&flat).unwrap().3);
        let mut leak = flat;
        leak[12..].copy_from_slice(&[126_000; 4]);
        assert!(rss_growth(&leak).unwrap().3);
        let mut small = [10_000u64; 16];
        small[12..].copy_from_slice(&[26_000; 4]);
        assert!(!rss_growth(&small).unwrap().3, "16 MiB is always allowed");
        let mut burst = flat;
        burst[13] = 160_000;
        assert!(!rss_growth(&burst).unwrap().3, "one burst is not growth");
        let mut band = flat;
        band[5] = 140_000;
        band[12..].copy_from_slice(&[140_000, 140_000, 100_000, 160_000]);
        assert!(
            !rss_growth(&band).unwrap().3,
            "within the band seen after warm-up"
        );
    }
}
