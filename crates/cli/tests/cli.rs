//! The `calyx` binary, driven as an operator would: subprocesses, flags, stdout, signals.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calyx_server::manage::{Manager, Secrets};
use calyx_testkit::{eventually, jwt_parts, kid_of, Browser, Calyx, Endpoint, Scanner};
use calyx_testkit::{ServeProcess, SystemClock, SOON};
use serde_json::Value;

mod common;
use common::{grant_read_by_default, provision_machine_client};

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
    // The demo operator signs in to the console, the demo developer to the portal.
    for (label, landing) in [("console", "/console/"), ("portal", "/developers/")] {
        let line = banner
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("a {label} line in {banner}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[1], format!("{}{landing}", server.base), "{line}");
        let (username, password) = (words[2], words[4]);
        let b = Browser::new();
        let (resp, _) = b
            .sign_in_page(&server.base, landing, username, password)
            .await;
        assert_eq!(resp.status(), 303, "{label}: {line}");
        assert_eq!(resp.headers()["location"], landing);
        let page = b.open(&format!("{}{landing}", server.base)).await;
        assert_eq!(page.status, 200, "{label}: {}", page.html);
    }
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

/// `calyx ARGS --json`, which must succeed: one JSON value per line (JSON Lines).
fn json_lines(env: &Calyx, args: &[&str]) -> Vec<Value> {
    let out = env.command().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "calyx {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("calyx {args:?} printed {l} ({e})"))
        })
        .collect()
}

/// `calyx ARGS` without `--json`, which must succeed: what it printed.
fn text(env: &Calyx, args: &[&str]) -> String {
    let out = env.command().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "calyx {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `calyx ARGS`, which must fail: its one-line error.
fn refused(env: &Calyx, args: &[&str]) -> String {
    let out = env.command().args(args).output().unwrap();
    assert!(
        !out.status.success(),
        "calyx {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "a refusal prints nothing on stdout");
    String::from_utf8(out.stderr).unwrap()
}

/// `calyx ... delete ...`, which must succeed and print nothing on stdout.
fn delete(env: &Calyx, args: &[&str]) {
    assert_eq!(text(env, args), "", "calyx {args:?} prints nothing");
}

/// The keys of a JSON object, in order.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn orgs_are_listed_to_the_last_page_shown_updated_and_deleted() {
    let env = env();
    // More than one page of 200, made in-process and without an fsync per commit: 204
    // `calyx org create` runs would be slow.
    let store = calyx_store::connect(&calyx_store::ConnectOptions {
        sqlite_sync_full: false,
        ..calyx_store::ConnectOptions::new(env.database_url())
    })
    .await
    .unwrap();
    let m = Manager::with_store(store, &Secrets::default(), Arc::new(SystemClock))
        .await
        .unwrap();
    for i in 0..204 {
        m.create_org(&format!("Org {i:03}")).await.unwrap();
    }
    let id = env.json(&["org", "create", "--name", "Acme"])["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = json_lines(&env, &["org", "list"]);
    assert_eq!(listed.len(), 205, "every page is read");
    let ids: Vec<&str> = listed.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "in id order, each once");
    let acme = listed.iter().find(|o| o["id"] == id.as_str()).unwrap();
    assert_eq!(acme["name"], "Acme");
    assert_eq!(keys(acme), ["created_at", "id", "name"], "the OrgView");
    let table = text(&env, &["org", "list"]);
    assert_eq!(table.lines().count(), 206, "a header and a row each");
    assert!(table.starts_with("ID "), "{table}");

    assert_eq!(env.json(&["org", "show", &id]), *acme);
    assert!(text(&env, &["org", "show", &id]).contains("name        Acme\n"));
    let updated = env.json(&["org", "update", &id, "--name", "Acme Corp"]);
    assert_eq!(updated["name"], "Acme Corp");
    assert_eq!(env.json(&["org", "show", &id])["name"], "Acme Corp");
    let err = refused(&env, &["org", "update", &id, "--name", "Org 000"]);
    assert!(
        err.starts_with("error: ") && err.contains("already exists"),
        "{err}"
    );

    delete(&env, &["org", "delete", &id]);
    let err = refused(&env, &["org", "show", &id]);
    assert_eq!(err, format!("error: no organization with id {id}\n"));
}

#[test]
fn apis_are_listed_shown_by_id_or_audience_updated_and_deleted() {
    let env = env();
    let aud = "https://crm.acme.test/";
    env.json(&[
        "api",
        "create",
        "--audience",
        aud,
        "--name",
        "CRM",
        "--scopes",
        "read write",
        "--scope-description",
        "read=Read the records",
    ]);
    let listed = json_lines(&env, &["api", "list"]);
    let api = listed.iter().find(|a| a["audience"] == aud).unwrap();
    assert_eq!(api["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(
        api["scope_descriptions"],
        serde_json::json!({"read": "Read the records"})
    );
    let id = api["id"].as_str().unwrap();
    assert_eq!(env.json(&["api", "show", aud]), *api);
    assert_eq!(env.json(&["api", "show", id]), *api);

    let updated = env.json(&[
        "api",
        "update",
        id,
        "--name",
        "CRM v2",
        "--scopes",
        "read write admin",
        "--scope-description",
        "admin=Everything",
        "--scope-description",
        "read=",
        "--token-lifetime",
        "600",
    ]);
    assert_eq!(updated["name"], "CRM v2");
    assert_eq!(
        updated["scopes"],
        serde_json::json!(["admin", "read", "write"])
    );
    assert_eq!(
        updated["scope_descriptions"],
        serde_json::json!({"admin": "Everything"}),
        "read= removed one, the others stay"
    );
    assert_eq!(updated["token_lifetime"], 600);
    assert_eq!(updated["user_token_lifetime"], api["user_token_lifetime"]);
    assert_eq!(env.json(&["api", "show", id]), updated);
    let err = refused(
        &env,
        &["api", "update", id, "--scope-description", "nope=x"],
    );
    assert!(err.contains("does not define"), "{err}");

    delete(&env, &["api", "delete", aud]);
    assert!(refused(&env, &["api", "show", id]).contains("no API"));
}

#[test]
fn clients_are_listed_by_org_shown_without_their_secret_updated_and_deleted() {
    let env = env();
    let acme = env.json(&["org", "create", "--name", "Acme"])["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = env.json(&["org", "create", "--name", "Other"])["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let backend = env.json(&["client", "create", "--org", &acme, "--name", "Backend"]);
    let id = backend["client_id"].as_str().unwrap();
    let secret = backend["client_secret"].as_str().unwrap();
    let app = env.json(&[
        "client",
        "create",
        "--org",
        &other,
        "--name",
        "App",
        "--type",
        "public",
        "--redirect-uri",
        "https://app.other.test/cb",
    ]);
    let app_id = app["client_id"].as_str().unwrap();
    assert!(app.get("client_secret").is_none_or(Value::is_null));

    let mine = json_lines(&env, &["client", "list", "--org", &acme]);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], id);
    assert_eq!(mine[0]["type"], "confidential");
    assert_eq!(mine[0]["disabled"], false);
    assert_eq!(json_lines(&env, &["client", "list"]).len(), 2);
    let shown = env.json(&["client", "show", id]);
    assert_eq!(shown, mine[0]);
    assert!(shown.get("client_secret").is_none());
    for out in [
        text(&env, &["client", "list"]),
        text(&env, &["client", "show", id]),
        shown.to_string(),
    ] {
        assert!(!out.contains(secret), "{out}");
    }

    let updated = env.json(&[
        "client",
        "update",
        id,
        "--name",
        "Nightly jobs",
        "--description",
        "Runs at night",
        "--website-uri",
        "https://acme.test/",
    ]);
    assert_eq!(updated["name"], "Nightly jobs");
    assert_eq!(updated["description"], "Runs at night");
    assert_eq!(updated["website_uri"], "https://acme.test/");
    let cleared = env.json(&["client", "update", id, "--description", ""]);
    assert!(cleared.get("description").is_none(), "\"\" removes it");
    assert_eq!(cleared["website_uri"], "https://acme.test/");
    let moved = env.json(&[
        "client",
        "update",
        app_id,
        "--redirect-uri",
        "https://app.other.test/cb2",
    ]);
    assert_eq!(
        moved["redirect_uris"],
        serde_json::json!(["https://app.other.test/cb2"])
    );
    let err = refused(
        &env,
        &[
            "client",
            "update",
            app_id,
            "--grant-type",
            "client_credentials",
        ],
    );
    assert!(err.contains("public client"), "{err}");

    delete(&env, &["client", "delete", id]);
    assert!(refused(&env, &["client", "show", id]).contains("no client with id"));
    assert!(json_lines(&env, &["client", "list", "--org", &acme]).is_empty());
}

#[test]
fn users_are_listed_shown_updated_one_api_at_a_time_and_deleted() {
    let env = env();
    let org = env.json(&["org", "create", "--name", "Acme"])["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (crm, billing) = ("https://crm.acme.test/", "https://billing.acme.test/");
    for (aud, scopes) in [(crm, "Standard OrgAdmin"), (billing, "read")] {
        env.json(&[
            "api",
            "create",
            "--audience",
            aud,
            "--name",
            "API",
            "--scopes",
            scopes,
        ]);
    }
    let id = env.json(&[
        "user",
        "create",
        "--org",
        &org,
        "--username",
        "jane",
        "--audience",
        crm,
        "--scopes",
        "Standard",
    ])["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = json_lines(&env, &["user", "list", "--org", &org]);
    assert_eq!(listed.len(), 1);
    let jane = &listed[0];
    assert_eq!(jane["id"], id.as_str());
    assert_eq!(jane["username"], "jane");
    assert_eq!(jane["has_password"], false);
    assert_eq!(
        jane["allowed_scopes"],
        serde_json::json!({crm: ["Standard"]})
    );
    assert_eq!(env.json(&["user", "show", &id]), *jane);

    let updated = env.json(&[
        "user",
        "update",
        &id,
        "--email",
        "jane@acme.test",
        "--audience",
        billing,
        "--scopes",
        "read",
    ]);
    assert_eq!(updated["email"], "jane@acme.test");
    assert_eq!(
        updated["allowed_scopes"],
        serde_json::json!({crm: ["Standard"], billing: ["read"]}),
        "the other API's scopes stay"
    );
    let updated = env.json(&["user", "update", &id, "--audience", crm, "--scopes", ""]);
    assert_eq!(
        updated["allowed_scopes"],
        serde_json::json!({billing: ["read"]})
    );
    let updated = env.json_with_input(
        &["user", "update", &id, "--password-stdin"],
        "a brand new password\n",
    );
    assert_eq!(updated["has_password"], true);
    assert!(files_containing(env.dir(), &["a brand new password"]).is_empty());

    delete(&env, &["user", "delete", &id]);
    assert!(refused(&env, &["user", "show", &id]).contains("no user with id"));
}

#[test]
fn grant_create_refuses_to_overwrite_and_update_and_delete_change_the_grant() {
    let env = env();
    let (id, _, aud) = provision_machine_client(&env, "ES256");
    // `provision_machine_client` granted read:consumers by default; the API also has write.
    env.json(&[
        "api",
        "update",
        &aud,
        "--scopes",
        "read:consumers write:consumers",
    ]);
    let err = refused(
        &env,
        &[
            "grant",
            "create",
            "--client",
            &id,
            "--audience",
            &aud,
            "--scopes",
            "read:consumers write:consumers",
        ],
    );
    assert!(
        err.contains("already has a grant") && err.contains("grant update"),
        "{err}"
    );
    let grants = json_lines(&env, &["grant", "list", "--client", &id]);
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["scopes"], serde_json::json!(["read:consumers"]));
    assert_eq!(
        grants[0]["default"], true,
        "the refused create changed nothing"
    );

    let updated = env.json(&[
        "grant",
        "update",
        "--client",
        &id,
        "--audience",
        &aud,
        "--scopes",
        "read:consumers write:consumers",
    ]);
    assert_eq!(
        updated["scopes"],
        serde_json::json!(["read:consumers", "write:consumers"])
    );
    assert_eq!(updated["default"], true, "--default absent: unchanged");
    let updated = env.json(&[
        "grant",
        "update",
        "--client",
        &id,
        "--audience",
        &aud,
        "--default",
        "false",
    ]);
    assert_eq!(updated["default"], false);
    assert_eq!(
        json_lines(&env, &["grant", "list", "--client", &id]),
        [updated]
    );

    delete(
        &env,
        &["grant", "delete", "--client", &id, "--audience", &aud],
    );
    assert!(json_lines(&env, &["grant", "list", "--client", &id]).is_empty());
    let err = refused(
        &env,
        &["grant", "delete", "--client", &id, "--audience", &aud],
    );
    assert!(err.contains("has no grant"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_client_is_refused_tokens_on_a_running_server_until_enabled() {
    let env = env();
    let (id, secret, aud) = provision_machine_client(&env, "ES256");
    let server = serve(&env, &[]);
    assert_eq!(token(&server, &id, &secret, Some(&aud)).await.0, 200);
    let disabled = env.json(&["client", "disable", &id]);
    assert_eq!(disabled["disabled"], true);
    eventually(SOON, "the disabled client is refused", || async {
        token(&server, &id, &secret, Some(&aud)).await.0 == 401
    })
    .await;
    let enabled = env.json(&["client", "enable", &id]);
    assert_eq!(enabled["disabled"], false);
    eventually(SOON, "the enabled client gets tokens again", || async {
        token(&server, &id, &secret, Some(&aud)).await.0 == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_client_gets_admin_tokens_and_the_api_answers_what_the_cli_prints() {
    let env = env();
    provision_machine_client(&env, "ES256");
    let admin = env.json(&[
        "admin",
        "create-client",
        "--name",
        "ops",
        "--scopes",
        "admin:read",
    ]);
    assert_eq!(keys(&admin), ["client_id", "client_secret"]);
    let (id, secret) = (
        admin["client_id"].as_str().unwrap(),
        admin["client_secret"].as_str().unwrap(),
    );
    let err = refused(
        &env,
        &["admin", "create-client", "--name", "x", "--scopes", "read"],
    );
    assert!(err.contains("admin:read"), "{err}");

    let server = serve(&env, &[]);
    let (status, body) = token(&server, id, secret, Some("urn:calyx:admin")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "admin:read");
    let (status, _) = token(&server, id, secret, None).await;
    assert_eq!(status, 200, "the management API is its default audience");
    // The same views, whichever way they are asked for.
    let resp = server
        .get_as(
            "/admin/v1/clients?limit=200",
            body["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(
        page["items"].as_array().unwrap(),
        &json_lines(&env, &["client", "list"])
    );
}

#[test]
fn the_audit_log_shows_the_cli_s_changes_by_its_os_user_and_no_secret() {
    let env = env();
    let (id, secret, _) = provision_machine_client(&env, "ES256");
    let rotated = env.json(&["client", "rotate-secret", &id, "--grace-seconds", "60"]);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    env.json(&["client", "disable", &id]);
    let as_ops = |args: &[&str]| {
        let out = env
            .command()
            .env("USER", "ops-test")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    as_ops(&["client", "enable", &id]);

    let events = json_lines(&env, &["audit", "list", "--client", &id]);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "client.created",
            "grant.created",
            "client.secret_rotated",
            "client.disabled",
            "client.enabled"
        ]
    );
    assert!(events
        .iter()
        .all(|e| e["actor"].as_str().unwrap().starts_with("cli:")));
    assert_eq!(events[4]["actor"], "cli:ops-test");
    assert_eq!(events[2]["detail"]["grace_seconds"], 60);
    assert_eq!(
        env.json(&["audit", "show", events[3]["id"].as_str().unwrap()]),
        events[3]
    );

    let all = [
        as_ops(&["audit", "list", "--json"]),
        as_ops(&["audit", "list"]),
    ];
    for out in &all {
        assert!(!out.contains(&secret) && !out.contains(new_secret), "{out}");
    }
    assert!(all[0].lines().count() >= 7, "org and API too: {}", all[0]);
    let disabled = json_lines(&env, &["audit", "list", "--type", "client.disabled"]);
    assert_eq!(disabled, [events[3].clone()]);
    let clients = json_lines(
        &env,
        &["audit", "list", "--type", "client.*", "--since", "-1h"],
    );
    assert_eq!(clients.len(), 4);
    assert!(json_lines(&env, &["audit", "list", "--until", "-1d"]).is_empty());
    let at = events[0]["at"].as_i64().unwrap().to_string();
    assert!(!json_lines(&env, &["audit", "list", "--since", &at]).is_empty());
    let err = refused(&env, &["audit", "list", "--since", "yesterday"]);
    assert!(err.contains("Unix seconds"), "{err}");
}

#[test]
fn purge_dry_run_prints_a_report_and_removes_nothing() {
    let env = env();
    provision_machine_client(&env, "ES256");
    let before = json_lines(&env, &["audit", "list"]).len();
    let report = env.json(&["purge", "--dry-run", "--audit-retention-days", "1"]);
    for field in [
        "codes",
        "families",
        "refresh_tokens",
        "revoked_jtis",
        "keys",
        "audit_events",
        "deliveries",
    ] {
        assert!(report[field].is_u64(), "{field} in {report}");
    }
    assert_eq!(report["audit_events"], 0, "today's events are kept");
    assert_eq!(json_lines(&env, &["audit", "list"]).len(), before);
    assert!(text(&env, &["purge"]).contains("audit_events"));
    let err = refused(&env, &["purge", "--audit-retention-days", "0"]);
    assert!(err.contains("audit-retention-days"), "{err}");
}

#[test]
fn webhooks_print_their_secret_once_and_list_their_deliveries() {
    let env = env();
    let created = env.json(&[
        "webhook",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--event",
        "client.*",
        "--event",
        "security.*",
    ]);
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(
        created["events"],
        serde_json::json!(["client.*", "security.*"])
    );
    let err = refused(
        &env,
        &[
            "webhook",
            "create",
            "--url",
            "http://example.com/",
            "--event",
            "*",
        ],
    );
    assert!(err.contains("https"), "{err}");

    // No server runs, so the event's delivery stays pending.
    provision_machine_client(&env, "ES256");
    let deliveries = json_lines(&env, &["webhook", "deliveries", id]);
    assert_eq!(deliveries.len(), 1, "client.created only: {deliveries:?}");
    assert_eq!(deliveries[0]["state"], "pending");
    let event = env.json(&["audit", "show", deliveries[0]["event_id"].as_str().unwrap()]);
    assert_eq!(event["type"], "client.created");

    let updated = env.json(&[
        "webhook",
        "update",
        id,
        "--disabled",
        "true",
        "--event",
        "*",
    ]);
    assert_eq!(updated["disabled"], true);
    assert_eq!(updated["events"], serde_json::json!(["*"]));
    let listed = json_lines(&env, &["webhook", "list"]);
    assert_eq!(listed, std::slice::from_ref(&updated));
    assert_eq!(env.json(&["webhook", "show", id]), updated);
    for out in [
        text(&env, &["webhook", "list"]),
        text(&env, &["webhook", "show", id]),
        text(&env, &["webhook", "deliveries", id]),
        text(&env, &["audit", "list", "--json"]),
    ] {
        assert!(!out.contains(secret), "{out}");
    }
    delete(&env, &["webhook", "delete", id]);
    assert!(json_lines(&env, &["webhook", "list"]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn families_are_listed_by_client_or_user_and_revoked() {
    let env = env();
    let m = calyx_testkit::fixture::open_manager(env.database_url()).await;
    let p = calyx_testkit::Fixture::new(&m)
        .app(calyx_core::model::ClientType::Confidential)
        .user("jane", "read:consumers")
        .build()
        .await;
    let user = m.user(&p.user_id).await.unwrap();
    let api = m.api(&p.audience).await.unwrap();
    let scope = calyx_core::ScopeSet::parse("read:consumers").unwrap();
    for _ in 0..2 {
        calyx_testkit::fixture::seed_refresh_token(
            &m,
            &p.client_id,
            &user,
            &api,
            scope.clone(),
            600,
        )
        .await;
    }

    let by_client = json_lines(&env, &["family", "list", "--client", &p.client_id]);
    assert_eq!(by_client.len(), 2);
    assert_eq!(
        json_lines(&env, &["family", "list", "--user", &p.user_id]),
        by_client
    );
    assert_eq!(by_client[0]["scope"], "read:consumers");
    assert!(by_client[0].get("revoked_at").is_none());
    let fam = by_client[0]["id"].as_str().unwrap();
    assert_eq!(env.json(&["family", "show", fam]), by_client[0]);
    let revoked = env.json(&["family", "revoke", fam]);
    assert!(revoked["revoked_at"].is_i64());
    assert!(refused(&env, &["family", "list"]).contains("--client"));

    let out = env.json(&["client", "revoke-tokens", &p.client_id]);
    assert_eq!(out["families_revoked"], 1, "the other one");
    let after = json_lines(&env, &["family", "list", "--client", &p.client_id]);
    assert!(after.iter().all(|f| f["revoked_at"].is_i64()), "{after:?}");
}

/// The people behind the pages: `operator create` makes a console operator (password from
/// stdin only), `user create --role org_admin` a portal admin, `org entitle` what the portal
/// may grant, `branding set` the pages' look (refusing a colour too light to read).
#[test]
fn operators_org_admins_entitlements_and_branding_from_the_cli() {
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
        "read write delete",
    ]);

    let out = env.run_with_input(
        &[
            "operator",
            "create",
            "--username",
            "ops",
            "--password-stdin",
            "--json",
        ],
        "operator password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let op: Value = serde_json::from_slice(&out.stdout).unwrap();
    let op_id = op["user_id"].as_str().unwrap();
    let shown = env.json(&["user", "show", op_id]);
    assert_eq!(shown["role"], "operator");
    assert_eq!(shown["org_id"], "org_calyx_operators");
    assert!(
        refused(&env, &["operator", "create", "--username", "nopw"]).contains("--password-stdin")
    );

    let out = env.run_with_input(
        &[
            "user",
            "create",
            "--org",
            org_id,
            "--username",
            "dev",
            "--password-stdin",
            "--role",
            "org_admin",
            "--json",
        ],
        "developer password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run_with_input(
        &[
            "user",
            "create",
            "--org",
            org_id,
            "--username",
            "sneaky",
            "--password-stdin",
            "--role",
            "operator",
        ],
        "developer password\n",
    );
    assert!(
        !out.status.success(),
        "an organization's user cannot be an operator"
    );
    let listed = text(&env, &["user", "list", "--org", org_id]);
    assert!(
        listed.contains("ROLE") && listed.contains("org_admin"),
        "{listed}"
    );

    let e = env.json(&[
        "org",
        "entitle",
        org_id,
        "--audience",
        "https://crm.acme.test/",
        "--scopes",
        "read write",
    ]);
    assert_eq!(e["scopes"], serde_json::json!(["read", "write"]));
    assert!(refused(
        &env,
        &[
            "org",
            "entitle",
            org_id,
            "--audience",
            "https://crm.acme.test/",
            "--scopes",
            "admin"
        ]
    )
    .contains("does not define"));
    let lines = json_lines(&env, &["org", "entitlements", org_id]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["audience"], "https://crm.acme.test/");
    text(
        &env,
        &[
            "org",
            "unentitle",
            org_id,
            "--audience",
            "https://crm.acme.test/",
        ],
    );
    assert!(json_lines(&env, &["org", "entitlements", org_id]).is_empty());

    assert!(refused(&env, &["branding", "set", "--color", "#dddddd"]).contains("4.5:1"));
    let b = env.json(&[
        "branding",
        "set",
        "--name",
        "Acme Giving",
        "--color",
        "#7A1F5C",
    ]);
    assert_eq!(b["name"], "Acme Giving");
    assert_eq!(b["color"], "#7a1f5c");
    assert_eq!(env.json(&["branding", "show"])["name"], "Acme Giving");
}

#[test]
fn stronger_client_settings_are_set_shown_and_changed_from_the_cli() {
    let env = env();
    let org = env.json(&["org", "create", "--name", "Keys"])["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let holder = calyx_testkit::jose::Holder::new();
    let jwks = env.dir().join("keys.json");
    std::fs::write(&jwks, holder.jwks().to_string()).unwrap();
    let created = env.json(&[
        "client",
        "create",
        "--org",
        &org,
        "--name",
        "Signer",
        "--token-endpoint-auth-method",
        "private_key_jwt",
        "--jwks",
        jwks.to_str().unwrap(),
        "--require-dpop",
        "--tokens-per-hour",
        "5",
    ]);
    assert!(created["client_secret"].is_null(), "{created}");
    let id = created["client_id"].as_str().unwrap();
    let shown = env.json(&["client", "show", id]);
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(shown["jwks"], holder.jwks());
    assert_eq!(shown["require_dpop"], true);
    assert_eq!(shown["tokens_per_hour"], 5);

    let updated = env.json(&[
        "client",
        "update",
        id,
        "--require-dpop",
        "false",
        "--require-par",
        "--tokens-per-hour",
        "none",
        "--tokens-per-day",
        "50",
    ]);
    assert_eq!(updated["require_dpop"], false);
    assert_eq!(updated["require_par"], true);
    assert!(updated.get("tokens_per_hour").is_none(), "{updated}");
    assert_eq!(updated["tokens_per_day"], 50);

    let org_shown = env.json(&["org", "update", &org, "--tokens-per-day", "100"]);
    assert_eq!(org_shown["tokens_per_day"], 100);
    let why = refused(
        &env,
        &[
            "client",
            "create",
            "--org",
            &org,
            "--name",
            "NoKeys",
            "--token-endpoint-auth-method",
            "private_key_jwt",
        ],
    );
    assert!(why.contains("jwks"), "{why}");
}
