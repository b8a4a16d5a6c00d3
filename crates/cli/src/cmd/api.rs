//! `calyx api create`.

use calyx_core::model::SigningAlg;
use calyx_server::manage::{Manager, NewApi};
use serde_json::json;

use crate::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register an API (resource server).
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The audience clients ask tokens for, e.g. https://api.example.com/
    #[arg(long)]
    audience: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Space-separated scopes the API defines.
    #[arg(long, default_value = "")]
    scopes: String,
    /// Signing algorithm of its tokens.
    #[arg(long, default_value = "ES256")]
    alg: SigningAlg,
    /// Machine-token lifetime, seconds [default: 86400].
    #[arg(long)]
    token_lifetime: Option<i64>,
    /// User-token lifetime (code and refresh grants), seconds [default: 3600].
    #[arg(long)]
    user_token_lifetime: Option<i64>,
    /// Delegated user-token lifetime, seconds [default: 7200].
    #[arg(long)]
    delegated_token_lifetime: Option<i64>,
    /// Refresh-token lifetime, seconds [default: 7776000 = 90 days].
    #[arg(long)]
    refresh_token_lifetime: Option<i64>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    let Command::Create(a) = c;
    let api = m
        .create_api(NewApi {
            audience: a.audience,
            scope_descriptions: Default::default(),
            name: a.name,
            scopes: a.scopes,
            alg: a.alg,
            token_lifetime: a.token_lifetime,
            user_token_lifetime: a.user_token_lifetime,
            delegated_token_lifetime: a.delegated_token_lifetime,
            refresh_token_lifetime: a.refresh_token_lifetime,
        })
        .await?;
    print(
        a.json,
        json!({"api_id": api.id, "audience": api.audience}),
        &[
            ("api_id", api.id.clone()),
            ("audience", api.audience.clone()),
        ],
    );
    Ok(())
}
