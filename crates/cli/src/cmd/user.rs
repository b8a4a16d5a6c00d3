//! `calyx user create`.

use std::io::Read;

use anyhow::Context;
use calyx_server::manage::{Manager, NewUser};
use serde_json::json;

use crate::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a user who can sign in on the login page and approve applications.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Owning organization id.
    #[arg(long)]
    org: String,
    /// Login name (unique).
    #[arg(long)]
    username: Option<String>,
    /// Read the password from standard input (never from the command line, where other
    /// users could see it).
    #[arg(long)]
    password_stdin: bool,
    /// The organization's own id for the user.
    #[arg(long)]
    external_id: Option<String>,
    /// Contact address.
    #[arg(long)]
    email: Option<String>,
    /// The API the scopes below are for.
    #[arg(long, requires = "scopes")]
    audience: Option<String>,
    /// Space-separated scopes the account may grant for that API.
    #[arg(long, requires = "audience")]
    scopes: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    let Command::Create(a) = c;
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from standard input")?;
        Some(s.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        None
    };
    let user = m
        .create_user(NewUser {
            org_id: a.org,
            username: a.username,
            password,
            external_id: a.external_id,
            email: a.email,
            scopes: a.audience.zip(a.scopes).into_iter().collect(),
            ceiling: None,
        })
        .await?;
    print(
        a.json,
        json!({"user_id": user.id}),
        &[("user_id", user.id.clone())],
    );
    Ok(())
}
