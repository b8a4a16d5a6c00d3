//! The `consumers_api` example, run as the README says, in front of a real Calyx server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use calyx_core::model::{ClientType, GrantType, SigningAlg};
use calyx_server::clock::SystemClock;
use calyx_server::manage::{Manager, NewApi, NewClient, Secrets};
use calyx_server::{Application, Config};
use serde_json::{json, Value};

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo test` builds the examples next to the test binaries: target/<profile>/examples/.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("consumers_api")
}

#[tokio::test]
async fn consumers_api_enforces_read_and_write_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Config::new(format!("sqlite://{}", dir.path().join("c.db").display()));
    raw.listen = "127.0.0.1:0".parse().unwrap();
    raw.pepper = Some("p".into());
    let app = Application::build(raw.validate().unwrap()).await.unwrap();
    let issuer = app.issuer().to_owned();
    let store = app.state().store.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let m = Manager::with_store(
        store,
        &Secrets {
            pepper: Some("p".into()),
            master_key: None,
        },
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let org = m.create_org("Example Org").await.unwrap();
    let aud = "https://api.example.com/";
    m.create_api(NewApi {
        audience: aud.into(),
        name: "Consumers".into(),
        scopes: "read:consumers write:consumers".into(),
        alg: SigningAlg::ES256,
        token_lifetime: None,
        user_token_lifetime: None,
        delegated_token_lifetime: None,
        refresh_token_lifetime: None,
    })
    .await
    .unwrap();
    let (client, secret) = m
        .create_client(NewClient {
            org_id: org.id,
            name: "c".into(),
            client_type: ClientType::Confidential,
            grant_types: vec![GrantType::ClientCredentials],
            ..Default::default()
        })
        .await
        .unwrap();
    m.create_grant(&client.id, aud, "read:consumers write:consumers", true)
        .await
        .unwrap();

    let bin = example_binary();
    assert!(
        bin.exists(),
        "cargo test builds the example: {}",
        bin.display()
    );
    let mut child = Reaped(
        Command::new(bin)
            .args([
                "--issuer",
                &issuer,
                "--audience",
                aud,
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let api = line
        .trim()
        .strip_prefix("consumers API on ")
        .expect("the address line")
        .to_owned();

    let http = reqwest::Client::new();
    let token = |scope: &'static str| {
        let (http, issuer, id, secret) = (
            http.clone(),
            issuer.clone(),
            client.id.clone(),
            secret.clone().unwrap(),
        );
        async move {
            let v: Value = http
                .post(format!("{issuer}/oauth/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let reader = token("read:consumers").await;
    let writer = token("read:consumers write:consumers").await;
    let url = format!("{api}/v1/consumers");

    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let resp = http.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(&url)
        .bearer_auth(&reader)
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "write needs write:consumers");
    let created: Value = http
        .post(&url)
        .bearer_auth(&writer)
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["name"], "Ada");
    let list: Value = http
        .get(&url)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["consumers"][0]["name"], "Ada");
}
