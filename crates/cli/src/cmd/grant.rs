//! `calyx grant create | list | update | delete`: which client may get tokens for which API,
//! with at most which scopes.

use calyx_server::manage::views::GrantView;
use calyx_server::manage::{GrantPatch, Manager, ScopeList};
use serde_json::json;

use crate::output::{print, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Let a client get tokens for an API, with at most the given scopes. Refused when the
    /// client already has a grant for that API: change it with `grant update`.
    Create {
        /// The client id.
        #[arg(long)]
        client: String,
        /// The API's audience (or id).
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
    /// A client's grants.
    List {
        /// The client id.
        #[arg(long)]
        client: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Change a grant's scopes or whether it is the client's default audience.
    Update {
        /// The client id.
        #[arg(long)]
        client: String,
        /// The API's audience (or id).
        #[arg(long)]
        audience: String,
        /// Space-separated scopes (replaces the list).
        #[arg(long)]
        scopes: Option<String>,
        /// Make this the client's default audience (true), or stop it being one (false).
        #[arg(long)]
        default: Option<bool>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Stop a client getting tokens for an API.
    Delete {
        /// The client id.
        #[arg(long)]
        client: String,
        /// The API's audience (or id).
        #[arg(long)]
        audience: String,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create {
            client,
            audience,
            scopes,
            default,
            json,
        } => {
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
        }
        Command::List { client, json } => {
            let grants = m.list_grants(&client).await?;
            super::list_all(
                json,
                &["AUDIENCE", "DEFAULT", "SCOPES"],
                |g: &GrantView| {
                    vec![
                        g.audience.clone(),
                        g.default.to_string(),
                        g.scopes.join(" "),
                    ]
                },
                &grants,
            )?;
        }
        Command::Update {
            client,
            audience,
            scopes,
            default,
            json,
        } => {
            let patch = GrantPatch {
                scopes: scopes.map(ScopeList::Words),
                default,
            };
            let g = m.update_grant(&client, &audience, patch).await?;
            show(json, &GrantView::from(g))?;
        }
        Command::Delete { client, audience } => {
            m.delete_grant(&client, &audience).await?;
            eprintln!("deleted the grant of client {client} for {audience}");
        }
    }
    Ok(())
}
