//! `calyx admin create-client`: a client of Calyx's own management API (`/admin/v1`), which
//! gets admin tokens with client credentials for the audience `urn:calyx:admin`.

use calyx_server::manage::{Manager, ADMIN_READ, ADMIN_WRITE};
use serde_json::json;

use crate::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an admin client in the operators' organization, with a default grant on the
    /// management API; prints its secret once.
    CreateClient {
        /// Display name (who or what uses it).
        #[arg(long)]
        name: String,
        /// Space-separated scopes: admin:read (read everything), admin:write (change
        /// everything).
        #[arg(long, default_value_t = format!("{ADMIN_READ} {ADMIN_WRITE}"))]
        scopes: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    let Command::CreateClient { name, scopes, json } = c;
    let (client, secret) = m.create_admin_client(&name, &scopes).await?;
    print(
        json,
        json!({"client_id": client.id, "client_secret": secret}),
        &[
            ("client_id", client.id.clone()),
            ("client_secret", secret.clone()),
            ("", "(the secret is shown only this once)".into()),
        ],
    );
    Ok(())
}
