//! The integration guide's code samples run as a reader would run them: a real `calyx serve`
//! on a fresh database, an organization, API, entitlement and org admin made with the CLI,
//! an application registered and granted through the portal's forms, then every
//! `<code data-sample=...>` block of `/developers/docs?app=<id>`, HTML-unescaped, run with
//! `scripts/run-sample` and the secret in `CALYX_CLIENT_SECRET`. Each must print a token the
//! server accepts for the API. Only C# may be skipped when .NET is not installed (it has no
//! Debian package); `scripts/setup` (which `scripts/test` runs first) installs the others.

use std::path::{Path, PathBuf};
use std::process::Command;

use calyx_testkit::browser::field;
use calyx_testkit::{html_text, Browser, Calyx};
use serde_json::Value;

mod common;
use common::BIN;

const AUDIENCE: &str = "https://samples.docs.test/?v=1&x=<y>";
const PASSWORD: &str = "sample admin password";
const LANGUAGES: [&str; 6] = ["curl", "python", "node", "java", "go", "csharp"];

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Go and a JDK are required, so that only C# can ever be skipped.
fn ensure_toolchains() {
    for tool in ["curl", "python3", "node", "java", "go"] {
        assert!(
            have(tool),
            "{tool} is missing: scripts/setup installs the samples' toolchains"
        );
    }
}

/// The text of `html` after `start`, up to `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in: {html}"))
        + start.len();
    html[from..].split(end).next().unwrap()
}

/// Every sample block of the page: `(language, source)`.
fn samples(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<code data-sample=\"") {
        rest = &rest[at + "<code data-sample=\"".len()..];
        let (lang, after) = rest.split_once("\">").unwrap();
        let (code, after) = after.split_once("</code>").unwrap();
        out.push((lang.to_owned(), html_text(code)));
        rest = after;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_of_the_guide_gets_a_token_the_server_accepts() {
    ensure_toolchains();
    let calyx = Calyx::on_test_database(BIN).await;
    let org = calyx.json(&["org", "create", "--name", "Samples Inc"]);
    let org = org["org_id"].as_str().unwrap().to_owned();
    calyx.json(&[
        "api",
        "create",
        "--audience",
        AUDIENCE,
        "--name",
        "Samples API",
        "--scopes",
        "read write",
        "--scope-description",
        "read=Read the samples",
    ]);
    calyx.json(&[
        "org",
        "entitle",
        &org,
        "--audience",
        AUDIENCE,
        "--scopes",
        "read write",
    ]);
    calyx.json_with_input(
        &[
            "user",
            "create",
            "--org",
            &org,
            "--username",
            "sample-admin",
            "--password-stdin",
            "--role",
            "org_admin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let node = calyx.serve(&[]);
    let base = node.base.clone();
    // Sign in, as a browser does.
    let browser = Browser::new();
    let http = browser.http.clone();
    let (resp, csrf) = browser
        .sign_in_page(&base, "/developers/", "sample-admin", PASSWORD)
        .await;
    assert_eq!(resp.status(), 303, "signing in");

    // Register an application through the form: the secret is on that page only.
    let resp = http
        .post(format!("{base}/developers/apps/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Sample runner"),
            ("type", "confidential"),
            ("grant_types", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let page = resp.text().await.unwrap();
    let client_id = between(&page, "<code id=\"client-id\">", "<").to_owned();
    let secret = between(&page, "<code id=\"client-secret\">", "<").to_owned();
    let api_id = field(&page, "api_id");

    // Grant it one of the two entitled scopes through the portal.
    let resp = http
        .post(format!("{base}/developers/apps/{client_id}/grants"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("api_id", api_id.as_str()),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    let docs = http
        .get(format!("{base}/developers/docs?app={client_id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!docs.contains(&secret), "the secret is never in the guide");
    let blocks = samples(&docs);
    let langs: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(langs, LANGUAGES);

    // The samples go in the test's own directory, removed with it.
    let dir = calyx.dir();
    let mut ran = Vec::new();
    for (lang, source) in &blocks {
        assert!(
            source.contains(&client_id) && source.contains(AUDIENCE),
            "{source}"
        );
        let file = dir.join(format!("sample-{lang}.txt"));
        std::fs::write(&file, source).unwrap();
        let out = Command::new(scripts().join("run-sample"))
            .arg(lang)
            .arg(&file)
            .env("CALYX_CLIENT_SECRET", &secret)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(3) {
            assert_eq!(lang, "csharp", "only C# may be skipped: {stderr}");
            eprintln!("{lang} sample skipped: {stderr}");
            continue;
        }
        assert!(
            out.status.success(),
            "the {lang} sample failed ({}):\n{source}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        let token = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert_eq!(
            token.split('.').count(),
            3,
            "{lang} printed no JWT: {stdout}"
        );
        let answer: Value = http
            .post(format!("{base}/oauth/introspect"))
            .form(&[
                ("token", token.as_str()),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["active"], true, "{lang}: {answer}");
        let aud = &answer["aud"];
        assert!(
            aud == AUDIENCE
                || aud
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == AUDIENCE)),
            "{lang}: {answer}"
        );
        assert_eq!(answer["scope"], "read", "{lang}: {answer}");
        ran.push(lang.as_str());
    }
    assert!(ran.len() >= 5, "ran {ran:?}");
}
