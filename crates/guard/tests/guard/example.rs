//! The `consumers_api` example, run as the README says, in front of a real Calyx server.

use std::path::PathBuf;
use std::process::Command;

use calyx_testkit::process::spawn_announcing;
use calyx_testkit::{Endpoint, TestServer};
use serde_json::{json, Value};

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
    let app = TestServer::spawn_sqlite().await;
    let issuer = app.issuer().to_owned();
    let aud = "https://api.example.com/";
    let c = app
        .fixture()
        .org("Example Org")
        .api(aud)
        .api_name("Consumers")
        .client_name("c")
        .default_audience(true)
        .build()
        .await;

    let bin = example_binary();
    assert!(
        bin.exists(),
        "cargo test builds the example: {}",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.args([
        "--issuer",
        &issuer,
        "--audience",
        aud,
        "--listen",
        "127.0.0.1:0",
    ]);
    let (_api, api, _) = spawn_announcing(&mut cmd, "consumers API on ");

    let token = |scope: &'static str| app.scoped_token(&c, "", scope);
    let reader = token("read:consumers").await;
    let writer = token("read:consumers write:consumers").await;
    let consumers = Endpoint::new(api);
    let path = "/v1/consumers";
    // Creates Ada as the holder of `token`.
    let create = |token: &str| {
        let req = consumers.http.post(consumers.url(path)).bearer_auth(token);
        req.json(&json!({"name": "Ada"})).send()
    };

    assert_eq!(consumers.get(path).await.status(), 401);
    let resp = consumers.get_as(path, &reader).await;
    assert_eq!(resp.status(), 200);
    let resp = create(&reader).await.unwrap();
    assert_eq!(resp.status(), 403, "write needs write:consumers");
    let created: Value = create(&writer).await.unwrap().json().await.unwrap();
    assert_eq!(created["name"], "Ada");
    let list: Value = consumers.get_as(path, &reader).await.json().await.unwrap();
    assert_eq!(list["consumers"][0]["name"], "Ada");
}
