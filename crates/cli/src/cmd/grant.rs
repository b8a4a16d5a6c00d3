//! `calyx grant create`.

use calyx_server::manage::Manager;
use serde_json::json;

use crate::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Let a client get tokens for an API, with at most the given scopes.
    Create {
        /// The client id.
        #[arg(long)]
        client: String,
        /// The API's audience.
        #[arg(long)]
        audience: String,
        /// Space-separated scopes (the API's, or users:write / users:authenticate).
        #[arg(long, default_value = "")]
        scopes: String,
        /// Use this audience when a token request names none.
        #[arg(long)]
        default: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    let Command::Create {
        client,
        audience,
        scopes,
        default,
        json,
    } = c;
    let g = m.create_grant(&client, &audience, &scopes, default).await?;
    print(
        json,
        json!({"client_id": g.client_id, "audience": g.audience, "scopes": g.scopes.to_string(), "default": g.is_default}),
        &[
            ("client_id", g.client_id.clone()),
            ("audience", g.audience.clone()),
            ("scopes", g.scopes.to_string()),
        ],
    );
    Ok(())
}
