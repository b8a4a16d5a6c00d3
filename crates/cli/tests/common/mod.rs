//! What the tests that run `calyx` as separate processes share: the third-party app, its API
//! and its user, a node that notices changes quickly, and a machine client made with the CLI.
#![allow(dead_code)] // each test binary uses a different part

use calyx_core::model::{ClientType, GrantType};
use calyx_testkit::fixture::{open_manager, Fixture};
use calyx_testkit::{Calyx, Provisioned, ServeProcess};

pub const BIN: &str = env!("CARGO_BIN_EXE_calyx");
pub const AUD: &str = "https://crm.multi.test/";

/// An API, a third-party client with refresh (and client credentials), and a user who can
/// sign in, all in the database `calyx` uses.
pub async fn provision(calyx: &Calyx) -> Provisioned {
    let manager = open_manager(calyx.database_url()).await;
    Fixture::new(&manager)
        .org("Multi")
        .api(AUD)
        .api_name("CRM")
        .scopes("Standard OrgAdmin")
        .client_name("App")
        .app(ClientType::Confidential)
        .grant_types(&[
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ])
        .user("jane", "Standard")
        .build()
        .await
}

/// Starts `calyx serve` on a free port, reloading every 100 ms; returns once it listens.
pub fn serve(calyx: &Calyx) -> ServeProcess {
    calyx.serve(&["--reload-interval-ms", "100"])
}

/// `calyx grant create`: `read:consumers` of `audience` for `client`, its default audience.
pub fn grant_read_by_default(env: &Calyx, client: &str, audience: &str) {
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

/// An org, an API and a client-credentials client with a default grant, made with the CLI;
/// returns (client id, secret, audience).
pub fn provision_machine_client(env: &Calyx, alg: &str) -> (String, String, String) {
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
