//! The `calyx` binary, driven as an operator would: subprocesses, flags, stdout, signals.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_calyx");

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("calyx.db").display())
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env("CALYX_DATABASE_URL", self.db_url())
            .env_remove("RUST_LOG");
        c
    }

    /// Runs a command that must succeed and print one JSON object.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(args).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "calyx {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "calyx {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Starts `calyx serve` on a free port with trace logging to a file; returns the child,
    /// its base URL and the lines it printed up to the address.
    fn serve(&self, extra: &[&str]) -> Server {
        let log = self.dir.path().join(format!("server-{}.log", extra.len()));
        let mut child = self
            .cmd()
            // The default reload interval: what an operator gets.
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "serve exited early: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            printed.push_str(&line);
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                break a.to_owned();
            }
        };
        // Keep reading (the --dev banner) in the background so the pipe never fills.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Server {
            child,
            addr,
            printed,
            more: rx,
            log,
        }
    }
}

struct Server {
    child: Child,
    addr: String,
    printed: String,
    more: std::sync::mpsc::Receiver<String>,
    log: PathBuf,
}

impl Server {
    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> PathBuf {
        let pid = self.child.id().to_string();
        // The shell's builtin kill: no dependency on a kill binary being installed.
        let kill = format!("kill -TERM {pid}");
        assert!(Command::new("sh")
            .args(["-c", &kill])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
                return self.log.clone();
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn token(base: &str, id: &str, secret: &str, audience: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    if let Some(a) = audience {
        form.push(("audience", a));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{base}/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files_containing(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                hits.push(format!("{} contains {n}", path.display()));
            }
        }
    }
    hits
}

#[test]
fn provision_with_the_cli_then_rotate_secret_and_key_on_a_running_server() {
    let env = Env::new();
    let out = env.cmd().arg("migrate").output().unwrap();
    assert!(out.status.success());
    let org = env.json(&["org", "create", "--name", "Acme"]);
    let org_id = org["org_id"].as_str().unwrap();
    let aud = "https://api.acme.test/";
    let api = env.json(&[
        "api",
        "create",
        "--audience",
        aud,
        "--name",
        "Acme API",
        "--scopes",
        "read:consumers write:consumers",
    ]);
    assert_eq!(api["audience"], aud);
    assert!(api["api_id"].as_str().unwrap().starts_with("api_"));
    let client = env.json(&[
        "client",
        "create",
        "--org",
        org_id,
        "--name",
        "Backend",
        "--grant-type",
        "client_credentials",
    ]);
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256-bit secret");
    env.json(&[
        "grant",
        "create",
        "--client",
        &id,
        "--audience",
        aud,
        "--scopes",
        "read:consumers",
        "--default",
    ]);

    let server = env.serve(&[]);
    let base = server.base();
    let (status, body) = token(&base, &id, &secret, None);
    assert_eq!(status, 200, "default audience: {body}");
    let first_token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["scope"], "read:consumers");

    // Secret rotation through the CLI while the server runs.
    let rotated = env.json(&["client", "rotate-secret", &id, "--grace-seconds", "0"]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(token(&base, &id, &new_secret, Some(aud)).0, 200);
    eventually("the old secret stops", || {
        token(&base, &id, &secret, Some(aud)).0 == 401
    });

    // Key rotation through the CLI while the server runs.
    let rotated_key = env.json(&["keys", "rotate"]);
    let new_kid = rotated_key["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid_of(&first_token), new_kid);
    eventually("new tokens use the new key", || {
        let (_, b) = token(&base, &id, &new_secret, Some(aud));
        kid_of(b["access_token"].as_str().unwrap()) == new_kid
    });

    let log = server.terminate();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("shut down cleanly"),
        "graceful shutdown is logged"
    );
    // Neither the trace-level logs nor the database files hold a secret.
    let leaks = files_containing(env.dir.path(), &[&secret, &new_secret]);
    assert!(leaks.is_empty(), "{leaks:?}");
    assert!(
        logs.contains("client authentication failed"),
        "failures are logged (without the secret)"
    );
}

#[test]
fn serve_dev_prints_credentials_and_a_curl_that_returns_a_token() {
    let env = Env::new();
    let server = env.serve(&["--dev"]);
    let mut banner = server.printed.clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !banner.contains("-d audience=") {
        let line = server
            .more
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the dev banner");
        banner.push_str(&line);
        banner.push('\n');
    }
    assert!(banner.contains("client_secret"));
    let user_line = banner
        .lines()
        .find(|l| l.trim_start().starts_with("user "))
        .expect("a demo user");
    let password = user_line.split_whitespace().nth(3).unwrap().to_owned();
    assert!(password.len() >= 16, "{user_line}");
    // The demo user can sign in on the login page: register a third-party app in the demo org
    // (its id is in a demo token's org_id claim), then sign in through /authorize.
    let demo_secret = banner
        .lines()
        .find(|l| l.trim_start().starts_with("client_secret"))
        .unwrap();
    let demo_secret = demo_secret.split_whitespace().last().unwrap();
    let (_, demo_token) = token(&server.base(), "demo-m2m", demo_secret, None);
    let payload = demo_token["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(&base64_url_decode(&payload)).unwrap();
    let org_id = claims["org_id"].as_str().unwrap();
    let app = env.json(&[
        "client",
        "create",
        "--org",
        org_id,
        "--name",
        "Demo App",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "https://app.example.com/cb",
    ]);
    let app_id = app["client_id"].as_str().unwrap();
    env.json(&[
        "grant",
        "create",
        "--client",
        app_id,
        "--audience",
        "https://api.example.com/",
        "--scopes",
        "read:consumers",
        "--default",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let consent = rt.block_on(async {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let url = format!(
            "{}/authorize?response_type=code&client_id={app_id}&state=s1",
            server.base()
        );
        let mut html = String::new();
        for _ in 0..100 {
            // The running server picks the new client up within its reload interval.
            let resp = http.get(&url).send().await.unwrap();
            if resp.status() == 200 {
                html = resp.text().await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let field = |name: &str| {
            let needle = format!("name=\"{name}\" value=\"");
            let start = html.find(&needle).expect("the login form") + needle.len();
            html[start..].split('"').next().unwrap().to_owned()
        };
        let form = [
            ("request", field("request")),
            ("csrf", field("csrf")),
            ("username", "demo".into()),
            ("password", password.clone()),
        ];
        let resp = http
            .post(format!("{}/authorize/login", server.base()))
            .form(&form)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    assert_eq!(consent.0, 200, "the demo user signs in: {}", consent.1);
    assert!(consent.1.contains("Allow") && consent.1.contains("Demo App"));
    let start = banner.find("curl -s").unwrap();
    let curl: String = banner[start..]
        .lines()
        .take(5)
        .collect::<Vec<_>>()
        .join("\n");
    let out = Command::new("sh").arg("-c").arg(&curl).output().unwrap();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the printed curl returns JSON: {curl}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 86400);
    let log = server.terminate();
    // The demo secret is printed to stdout for the developer, never logged.
    let secret_line = banner
        .lines()
        .find(|l| l.trim_start().starts_with("client_secret"))
        .unwrap();
    let secret = secret_line.split_whitespace().last().unwrap();
    assert!(!std::fs::read_to_string(log).unwrap().contains(secret));

    // Running --dev again is idempotent and prints a fresh, working secret.
    let again = env.serve(&["--dev"]);
    let mut banner2 = String::new();
    while !banner2.contains("client_secret ") {
        banner2.push_str(&again.more.recv_timeout(Duration::from_secs(5)).unwrap());
        banner2.push('\n');
    }
    let secret2 = banner2
        .lines()
        .find(|l| l.trim_start().starts_with("client_secret"))
        .unwrap();
    let secret2 = secret2.split_whitespace().last().unwrap();
    assert_eq!(token(&again.base(), "demo-m2m", secret2, None).0, 200);
    again.terminate();
}

#[test]
fn a_non_loopback_http_issuer_is_refused_without_insecure_http() {
    let env = Env::new();
    let out = env
        .cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "http://auth.example.com",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-http"), "{err}");
    let out = env
        .cmd()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "plain HTTP on all interfaces is refused too"
    );
}

#[test]
fn serve_over_tls_with_rustls() {
    let env = Env::new();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = env.dir.path().join("cert.pem");
    let key_path = env.dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = env.serve(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let meta: Value = rt.block_on(async {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        http.get(format!(
            "https://localhost:{port}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    });
    assert!(meta["issuer"].as_str().unwrap().starts_with("https://"));
    server.terminate();
}

#[test]
fn user_create_reads_the_password_from_stdin() {
    use std::io::Write;
    let env = Env::new();
    let org = env.json(&["org", "create", "--name", "Acme"]);
    let org_id = org["org_id"].as_str().unwrap();
    env.json(&[
        "api",
        "create",
        "--audience",
        "https://crm.acme.test/",
        "--name",
        "CRM",
        "--scopes",
        "Standard OrgAdmin",
    ]);
    let run = |password: &str| {
        let mut child = env
            .cmd()
            .args([
                "user",
                "create",
                "--org",
                org_id,
                "--username",
                "jane",
                "--password-stdin",
            ])
            .args([
                "--audience",
                "https://crm.acme.test/",
                "--scopes",
                "Standard",
                "--json",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = run("short\n");
    assert!(!short.status.success(), "short passwords are refused");
    let out = run("correct horse battery\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["user_id"].as_str().unwrap().starts_with("usr_"));
    let again = run("correct horse battery\n");
    assert!(!again.status.success(), "usernames are unique");
    // The password never reaches the database in plaintext.
    assert!(files_containing(env.dir.path(), &["correct horse battery"]).is_empty());
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// An org, an API and a client-credentials client with a default grant, made with the CLI;
/// returns (client id, secret, audience).
fn provision_machine_client(env: &Env, alg: &str) -> (String, String, String) {
    let org = env.json(&["org", "create", "--name", "Acme"]);
    let aud = format!("https://api-{}.acme.test/", alg.to_lowercase());
    env.json(&[
        "api",
        "create",
        "--audience",
        &aud,
        "--name",
        "Acme API",
        "--scopes",
        "read:consumers",
        "--alg",
        alg,
    ]);
    let client = env.json(&[
        "client",
        "create",
        "--org",
        org["org_id"].as_str().unwrap(),
        "--name",
        "Backend",
    ]);
    let id = client["client_id"].as_str().unwrap().to_owned();
    env.json(&[
        "grant",
        "create",
        "--client",
        &id,
        "--audience",
        &aud,
        "--scopes",
        "read:consumers",
        "--default",
    ]);
    (
        id,
        client["client_secret"].as_str().unwrap().to_owned(),
        aud,
    )
}

/// The time from `calyx client rotate-secret --grace-seconds 0` returning to the old secret's
/// last successful token request, while a client keeps using the old secret back to back
/// against a server at its default settings.
#[test]
fn a_secret_rotated_without_grace_stops_working_within_250_ms_on_a_running_server() {
    let env = Env::new();
    let (id, mut secret, aud) = provision_machine_client(&env, "ES256");
    let server = env.serve(&[]);
    let base = server.base();
    let mut windows = Vec::new();
    for _ in 0..3 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hammer = {
            let (stop, base, id, old, aud) = (
                stop.clone(),
                base.clone(),
                id.clone(),
                secret.clone(),
                aud.clone(),
            );
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let http = reqwest::Client::new();
                    let mut last_ok = None;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let resp = http
                            .post(format!("{base}/oauth/token"))
                            .form(&[
                                ("grant_type", "client_credentials"),
                                ("client_id", id.as_str()),
                                ("client_secret", old.as_str()),
                                ("audience", aud.as_str()),
                            ])
                            .send()
                            .await
                            .unwrap();
                        if resp.status() == 200 {
                            last_ok = Some(Instant::now());
                        }
                    }
                    last_ok
                })
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        let rotated = env.json(&["client", "rotate-secret", &id, "--grace-seconds", "0"]);
        let returned = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let last_ok = hammer
            .join()
            .unwrap()
            .expect("the old secret worked before");
        windows.push(last_ok.saturating_duration_since(returned));
        secret = rotated["client_secret"].as_str().unwrap().to_owned();
        assert_eq!(token(&base, &id, &secret, Some(&aud)).0, 200);
    }
    eprintln!("old secret's last success after rotate-secret returned: {windows:?}");
    let worst = windows.iter().max().unwrap();
    assert!(
        *worst < Duration::from_millis(250),
        "the old secret kept working for {worst:?} after the rotation returned"
    );
}

#[test]
fn an_api_with_a_new_algorithm_made_while_the_server_runs_gets_tokens_at_once() {
    let env = Env::new();
    env.json(&["org", "create", "--name", "Warmup"]);
    // A long reload interval: only the on-demand key load can make the first request work.
    let server = env.serve(&["--reload-interval-ms", "600000"]);
    let (id, secret, aud) = provision_machine_client(&env, "EdDSA");
    let (status, body) = token(&server.base(), &id, &secret, Some(&aud));
    assert_eq!(status, 200, "{body}");
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
}

#[test]
fn keys_list_shows_each_state_and_retire_unpublishes_at_once() {
    let env = Env::new();
    let (id, secret, aud) = provision_machine_client(&env, "ES256");
    let server = env.serve(&[]);
    let base = server.base();
    let list = || -> Vec<Value> {
        let out = env.cmd().args(["keys", "list", "--json"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let states = |keys: &[Value]| -> Vec<String> {
        keys.iter()
            .map(|k| k["state"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = list();
    assert_eq!(states(&before), ["current", "next"], "{before:?}");
    let current = before[0]["kid"].as_str().unwrap().to_owned();
    let next = before[1]["kid"].as_str().unwrap().to_owned();
    let (_, body) = token(&base, &id, &secret, Some(&aud));
    assert_eq!(kid_of(body["access_token"].as_str().unwrap()), current);

    let retired = env.json(&["keys", "retire", &current]);
    assert_eq!(retired["state"], "retired");
    let jwks_kids = || -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let v: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        })
    };
    eventually("the retired key leaves the JWKS", || {
        !jwks_kids().contains(&current)
    });
    let (_, body) = token(&base, &id, &secret, Some(&aud));
    assert_eq!(kid_of(body["access_token"].as_str().unwrap()), next);
    assert_eq!(states(&list()), ["retired", "current", "next"]);
    let out = env
        .cmd()
        .args(["keys", "retire", &current])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a retired key cannot be retired again"
    );
}
