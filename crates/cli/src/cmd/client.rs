//! `calyx client create` and `calyx client rotate-secret`.

use calyx_core::model::{ClientType, GrantType};
use calyx_server::manage::{Manager, NewClient};
use serde_json::json;

use crate::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a client; prints its secret once.
    Create(CreateArgs),
    /// Give a client a new secret; prints it once.
    RotateSecret {
        /// The client id.
        client_id: String,
        /// Seconds the old secret keeps working (0 = it stops now).
        #[arg(long, default_value_t = 0)]
        grace_seconds: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Owning organization id.
    #[arg(long)]
    org: String,
    /// Display name, shown on the consent page.
    #[arg(long)]
    name: String,
    /// Choose the client id instead of generating one.
    #[arg(long)]
    client_id: Option<String>,
    /// confidential (has a secret) or public (PKCE, no secret).
    #[arg(long = "type", default_value = "confidential")]
    client_type: ClientType,
    /// Allowed grant (repeatable): client_credentials, authorization_code, refresh_token.
    #[arg(long = "grant-type", value_parser = parse_grant)]
    grant_types: Vec<GrantType>,
    /// Registered redirect URI (repeatable), matched exactly.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Description.
    #[arg(long)]
    description: Option<String>,
    /// Website, linked from the consent page.
    #[arg(long)]
    website_uri: Option<String>,
    /// Privacy policy, linked from the consent page.
    #[arg(long)]
    privacy_policy_uri: Option<String>,
    /// Terms of service, linked from the consent page.
    #[arg(long)]
    tos_uri: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    GrantType::parse(s).ok_or_else(|| format!("unknown grant type {s:?}"))
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create(a) => {
            let (client, secret) = m
                .create_client(NewClient {
                    org_id: a.org,
                    client_id: a.client_id,
                    name: a.name,
                    client_type: a.client_type,
                    grant_types: a.grant_types,
                    redirect_uris: a.redirect_uris,
                    description: a.description,
                    website_uri: a.website_uri,
                    privacy_policy_uri: a.privacy_policy_uri,
                    tos_uri: a.tos_uri,
                })
                .await?;
            let mut lines = vec![("client_id", client.id.clone())];
            if let Some(s) = &secret {
                lines.push(("client_secret", s.clone()));
                lines.push(("", "(the secret is shown only this once)".into()));
            }
            print(
                a.json,
                json!({"client_id": client.id, "client_secret": secret}),
                &lines,
            );
        }
        Command::RotateSecret {
            client_id,
            grace_seconds,
            json,
        } => {
            let (_, secret) = m.rotate_secret(&client_id, grace_seconds).await?;
            print(
                json,
                json!({"client_id": client_id, "client_secret": secret}),
                &[
                    ("client_id", client_id.clone()),
                    ("client_secret", secret.clone()),
                    ("", "(the secret is shown only this once)".into()),
                ],
            );
        }
    }
    Ok(())
}
