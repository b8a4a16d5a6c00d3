//! Black-box tests: each test starts the real application on port 0 with a fresh database
//! (SQLite, or PostgreSQL when `CALYX_TEST_DATABASE_URL` names a server: `scripts/test` runs
//! the suite both ways) and talks HTTP to it.
//!
//! Every server here is reached through a recording proxy and logs at trace level, for the
//! secret scan that runs after the whole suite (`tests/secret_scan.rs`).

use calyx_testkit::{Config, Fixture, Provisioned, TestServer};

mod admin;
mod authorization_code;
mod client_credentials;
mod concurrency;
mod console;
mod dpop;
mod errors;
mod mtls;
mod ops;
mod pages;
mod par;
mod portal;
mod private_key_jwt;
mod quotas;
mod rate_limits;
mod rotation;
mod slow_clients;
mod third_party_client;
mod users;
mod webhooks;

/// A recorded server with the kit's defaults.
async fn spawn_app() -> TestServer {
    spawn_app_with(|_| {}).await
}

/// A recorded server with the defaults changed by `configure`.
async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::spawn_with(|cfg| {
        cfg.record_into = Some(calyx_testkit::secret_scan_dir!());
        configure(cfg);
    })
    .await
}

/// A recorded server and a machine client with the fixture's defaults.
async fn app_and_client() -> (TestServer, Provisioned) {
    app_and_client_with(|f| f).await
}

/// A recorded server and a machine client with the fixture's defaults changed by `fixture`.
async fn app_and_client_with(
    fixture: impl FnOnce(Fixture<'_>) -> Fixture<'_>,
) -> (TestServer, Provisioned) {
    let app = spawn_app().await;
    let c = fixture(app.fixture()).build().await;
    (app, c)
}

/// A grant change: these scopes, and whether the API is the client's default audience.
fn grant(scopes: &str, default: bool) -> calyx_server::manage::GrantPatch {
    calyx_server::manage::GrantPatch {
        scopes: Some(calyx_server::manage::ScopeList::Words(scopes.into())),
        default: Some(default),
    }
}
