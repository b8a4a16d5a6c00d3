//! `calyx user create | list | show | update | delete`. Passwords are read from standard input
//! only, and never shown.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::Context;
use calyx_core::model::Role;
use calyx_server::manage::views::UserRecord;
use calyx_server::manage::{Manager, NewUser, ScopeList, UserPatch, OPERATOR_ORG_ID};
use serde_json::json;

use crate::output::{opt, print, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a user who can sign in on the login page and approve applications.
    Create(CreateArgs),
    /// Every user, or an organization's.
    List {
        /// Only this organization's users.
        #[arg(long)]
        org: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One user, with the scopes they may grant.
    Show {
        /// The user id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's names, password or allowed scopes.
    Update(UpdateArgs),
    /// Delete a user and revoke every sign-in of theirs.
    Delete {
        /// The user id.
        id: String,
    },
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
    /// `org_admin`: may sign in to the developer portal (/developers/) and register the
    /// organization's applications. (Operators: `calyx operator create`.)
    #[arg(long)]
    role: Option<String>,
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

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The user id.
    id: String,
    /// Login name (unique; "" removes it, which a user with a password cannot do).
    #[arg(long)]
    username: Option<String>,
    /// Read a new password from standard input (at least 8 characters).
    #[arg(long)]
    password_stdin: bool,
    /// The organization's own id for the user ("" removes it).
    #[arg(long)]
    external_id: Option<String>,
    /// Contact address ("" removes it).
    #[arg(long)]
    email: Option<String>,
    /// `org_admin`, `operator`, or "" for none.
    #[arg(long)]
    role: Option<String>,
    /// The API the scopes below are for; the user's scopes for other APIs stay as they are.
    #[arg(long, requires = "scopes")]
    audience: Option<String>,
    /// Space-separated scopes the account may grant for that API ("" removes the API).
    #[arg(long, requires = "audience")]
    scopes: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The password on standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

/// `calyx operator create`: a user of the operators' organization who signs in to the
/// console (/console/).
#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Create an operator (the password is read from standard input).
    Create {
        /// Login name (unique).
        #[arg(long)]
        username: String,
        /// Contact address.
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run_operator(m: &Manager, c: OperatorCommand) -> anyhow::Result<()> {
    let OperatorCommand::Create {
        username,
        email,
        password_stdin,
        json,
    } = c;
    anyhow::ensure!(
        password_stdin,
        "an operator signs in with a password: pass --password-stdin and give it on standard input"
    );
    m.ensure_operator_org().await?;
    let user = m
        .create_user(NewUser {
            org_id: OPERATOR_ORG_ID.into(),
            username: Some(username),
            password: Some(read_password()?),
            email,
            role: Some(Role::Operator),
            ..NewUser::default()
        })
        .await?;
    print(
        json,
        json!({"user_id": user.id}),
        &[("user_id", user.id.clone())],
    );
    Ok(())
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create(a) => {
            let password = a.password_stdin.then(read_password).transpose()?;
            let user = m
                .create_user(NewUser {
                    org_id: a.org,
                    username: a.username,
                    password,
                    external_id: a.external_id,
                    email: a.email,
                    scopes: a.audience.zip(a.scopes).into_iter().collect(),
                    ceiling: None,
                    role: a
                        .role
                        .as_deref()
                        .map(str::parse)
                        .transpose()
                        .map_err(anyhow::Error::msg)?,
                })
                .await?;
            print(
                a.json,
                json!({"user_id": user.id}),
                &[("user_id", user.id.clone())],
            );
        }
        Command::List { org, json } => {
            let org = org.as_deref();
            super::list(
                json,
                &["ID", "ORG", "USERNAME", "EXTERNAL_ID", "EMAIL", "ROLE"],
                |u: &UserRecord| {
                    vec![
                        u.id.clone(),
                        u.org_id.clone(),
                        opt(&u.username),
                        opt(&u.external_id),
                        opt(&u.email),
                        u.role.unwrap_or("-").to_owned(),
                    ]
                },
                |after, limit| async move { m.list_users(org, after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => {
            let view = m.user_view(m.user(&id).await?).await?;
            show(json, &view)?;
        }
        Command::Update(a) => {
            let password = a.password_stdin.then(read_password).transpose()?;
            // The patch replaces every audience's entry; the flags change one.
            let allowed_scopes = match a.audience.zip(a.scopes) {
                Some((audience, scopes)) => {
                    let current = m.user_view(m.user(&a.id).await?).await?.allowed_scopes;
                    let mut all: BTreeMap<String, ScopeList> = current
                        .into_iter()
                        .map(|(aud, s)| (aud, ScopeList::List(s)))
                        .collect();
                    if scopes.trim().is_empty() {
                        all.remove(&audience);
                    } else {
                        all.insert(audience, ScopeList::Words(scopes));
                    }
                    Some(all)
                }
                None => None,
            };
            let patch = UserPatch {
                username: a.username,
                password,
                external_id: a.external_id,
                email: a.email,
                role: a.role,
                allowed_scopes,
            };
            let user = m.update_user(&a.id, patch).await?;
            show(a.json, &m.user_view(user).await?)?;
        }
        Command::Delete { id } => {
            m.delete_user(None, &id).await?;
            eprintln!("deleted user {id}");
        }
    }
    Ok(())
}
