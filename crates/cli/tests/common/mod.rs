//! What the tests that run `calyx serve` as separate processes on one database share: the
//! third-party app, its API and its user, and a node that notices changes quickly.
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
