//! The `calyx` binary, driven as an operator would: subprocesses, flags, stdout, signals.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use calyx_testkit::{eventually, jwt_parts, kid_of, Browser, Calyx, Endpoint, Scanner};
use calyx_testkit::{ServeProcess, SOON};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_calyx");

/// `calyx` in a temporary directory of its own, on a SQLite file there.
fn env() -> Calyx {
    Calyx::in_temp_dir(BIN)
}

/// Starts `calyx serve` (at the default reload interval: what an operator gets) with `extra`
/// arguments, logging at trace level to a file in the directory.
fn serve(env: &Calyx, extra: &[&str]) -> ServeProcess {
    let log = env.dir().join(format!("server-{}.log", extra.len()));
    env.serve_logged(extra, &log)
}

/// A client-credentials request with `client_secret_post`: status and body.
async fn token(node: &Endpoint, id: &str, secret: &str, audience: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    if let Some(a) = audience {
        form.push(("audience", a));
    }
    let resp = node.post_token_form(&form).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `calyx grant create`: `read:consumers` of `audience` for `client`, its default audience.
fn grant_read_by_default(env: &Calyx, client: &str, audience: &str) {
    env.json(&[
        "grant",
        "create",
        "--client",
        client,
        "--audience",
        audience,
        "--scopes",
        "read:consumers",
        "--default",
    ]);
}

/// "<file> contains <secret>" for every file in `dir` that holds one of `needles`.
fn files_containing(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut scanner = Scanner::new();
    for n in needles {
        scanner.add(*n, n);
    }
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mut found: Vec<&str> = scanner.found_in(&std::fs::read(&path).unwrap());
        found.sort_unstable();
        found.dedup();
        for n in found {
            hits.push(format!("{} contains {n}", path.display()));
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread")]
async fn provision_with_the_cli_then_rotate_secret_and_key_on_a_running_server() {
    let env = env();
    let out = env.command().arg("migrate").output().unwrap();
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
    grant_read_by_default(&env, &id, aud);

    let server = serve(&env, &[]);
    let (status, body) = token(&server, &id, &secret, None).await;
    assert_eq!(status, 200, "default audience: {body}");
    let first_token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["scope"], "read:consumers");

    // Secret rotation through the CLI while the server runs.
    let rotated = env.json(&["client", "rotate-secret", &id, "--grace-seconds", "0"]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(token(&server, &id, &new_secret, Some(aud)).await.0, 200);
    eventually(SOON, "the old secret stops", || async {
        token(&server, &id, &secret, Some(aud)).await.0 == 401
    })
    .await;

    // Key rotation through the CLI while the server runs.
    let rotated_key = env.json(&["keys", "rotate"]);
    let new_kid = rotated_key["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid_of(&first_token), new_kid);
    eventually(SOON, "new tokens use the new key", || async {
        let (_, b) = token(&server, &id, &new_secret, Some(aud)).await;
        kid_of(b["access_token"].as_str().unwrap()) == new_kid
    })
    .await;

    let log = server.log.clone().unwrap();
    server.terminate();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("shut down cleanly"),
        "graceful shutdown is logged"
    );
    // Neither the trace-level logs nor the database files hold a secret.
    let leaks = files_containing(env.dir(), &[&secret, &new_secret]);
    assert!(leaks.is_empty(), "{leaks:?}");
    assert!(
        logs.contains("client authentication failed"),
        "failures are logged (without the secret)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_dev_prints_credentials_and_a_curl_that_returns_a_token() {
    let env = env();
    let server = serve(&env, &["--dev"]);
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
    let (_, demo_token) = token(&server, "demo-m2m", demo_secret, None).await;
    let (_, claims) = jwt_parts(demo_token["access_token"].as_str().unwrap());
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
    grant_read_by_default(&env, app_id, "https://api.example.com/");
    let browser = Browser::new();
    let url = format!(
        "{}/authorize?response_type=code&client_id={app_id}&state=s1",
        server.base
    );
    // The running server picks the new client up within its reload interval.
    let login = eventually(SOON, "the login page for the new client", || async {
        let page = browser.open(&url).await;
        (page.status == 200).then_some(page)
    })
    .await;
    let resp = browser.log_in(&login, "demo", &password).await;
    let consent = (resp.status().as_u16(), resp.text().await.unwrap());
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
    let log = server.log.clone().unwrap();
    server.terminate();
    // The demo secret is printed to stdout for the developer, never logged.
    let secret_line = banner
        .lines()
        .find(|l| l.trim_start().starts_with("client_secret"))
        .unwrap();
    let secret = secret_line.split_whitespace().last().unwrap();
    assert!(!std::fs::read_to_string(log).unwrap().contains(secret));

    // Running --dev again is idempotent and prints a fresh, working secret.
    let again = serve(&env, &["--dev"]);
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
    assert_eq!(token(&again, "demo-m2m", secret2, None).await.0, 200);
    again.terminate();
}

#[test]
fn a_non_loopback_http_issuer_is_refused_without_insecure_http() {
    let env = env();
    let out = env
        .command()
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
        .command()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "plain HTTP on all interfaces is refused too"
    );
}

#[tokio::test]
async fn serve_over_tls_with_rustls() {
    let env = env();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = env.dir().join("cert.pem");
    let key_path = env.dir().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = serve(
        &env,
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let meta: Value = http
        .get(format!(
            "https://localhost:{port}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta["issuer"].as_str().unwrap().starts_with("https://"));
    server.terminate();
}

#[test]
fn user_create_reads_the_password_from_stdin() {
    let env = env();
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
        let args = [
            "user",
            "create",
            "--org",
            org_id,
            "--username",
            "jane",
            "--password-stdin",
            "--audience",
            "https://crm.acme.test/",
            "--scopes",
            "Standard",
            "--json",
        ];
        env.run_with_input(&args, password)
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
    assert!(files_containing(env.dir(), &["correct horse battery"]).is_empty());
}

/// An org, an API and a client-credentials client with a default grant, made with the CLI;
/// returns (client id, secret, audience).
fn provision_machine_client(env: &Calyx, alg: &str) -> (String, String, String) {
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
    grant_read_by_default(env, &id, &aud);
    (
        id,
        client["client_secret"].as_str().unwrap().to_owned(),
        aud,
    )
}

/// The time from `calyx client rotate-secret --grace-seconds 0` returning to the old secret's
/// last successful token request, while a client keeps using the old secret back to back
/// against a server at its default settings.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_rotated_without_grace_stops_working_within_250_ms_on_a_running_server() {
    let env = env();
    let (id, mut secret, aud) = provision_machine_client(&env, "ES256");
    let server = serve(&env, &[]);
    let mut windows = Vec::new();
    for _ in 0..3 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // A client on a thread (and runtime) of its own, so that nothing here slows it.
        let hammer = {
            let (stop, node, id, old, aud) = (
                stop.clone(),
                Endpoint::new(server.base.clone()),
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
                    let mut last_ok = None;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if token(&node, &id, &old, Some(&aud)).await.0 == 200 {
                            last_ok = Some(Instant::now());
                        }
                    }
                    last_ok
                })
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rotated = env.json(&["client", "rotate-secret", &id, "--grace-seconds", "0"]);
        let returned = Instant::now();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let last_ok = hammer
            .join()
            .unwrap()
            .expect("the old secret worked before");
        windows.push(last_ok.saturating_duration_since(returned));
        secret = rotated["client_secret"].as_str().unwrap().to_owned();
        assert_eq!(token(&server, &id, &secret, Some(&aud)).await.0, 200);
    }
    eprintln!("old secret's last success after rotate-secret returned: {windows:?}");
    let worst = windows.iter().max().unwrap();
    assert!(
        *worst < Duration::from_millis(250),
        "the old secret kept working for {worst:?} after the rotation returned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_with_a_new_algorithm_made_while_the_server_runs_gets_tokens_at_once() {
    let env = env();
    env.json(&["org", "create", "--name", "Warmup"]);
    // A long reload interval: only the on-demand key load can make the first request work.
    let server = serve(&env, &["--reload-interval-ms", "600000"]);
    let (id, secret, aud) = provision_machine_client(&env, "EdDSA");
    let (status, body) = token(&server, &id, &secret, Some(&aud)).await;
    assert_eq!(status, 200, "{body}");
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_list_shows_each_state_and_retire_unpublishes_at_once() {
    let env = env();
    let (id, secret, aud) = provision_machine_client(&env, "ES256");
    let server = serve(&env, &[]);
    let list = || -> Vec<Value> {
        let out = env
            .command()
            .args(["keys", "list", "--json"])
            .output()
            .unwrap();
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
    let (_, body) = token(&server, &id, &secret, Some(&aud)).await;
    assert_eq!(kid_of(body["access_token"].as_str().unwrap()), current);

    let retired = env.json(&["keys", "retire", &current]);
    assert_eq!(retired["state"], "retired");
    eventually(SOON, "the retired key leaves the JWKS", || async {
        !server.jwks_kids().await.contains(&current)
    })
    .await;
    let (_, body) = token(&server, &id, &secret, Some(&aud)).await;
    assert_eq!(kid_of(body["access_token"].as_str().unwrap()), next);
    assert_eq!(states(&list()), ["retired", "current", "next"]);
    let out = env
        .command()
        .args(["keys", "retire", &current])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a retired key cannot be retired again"
    );
}
