//! `calyx api create | list | show | update | delete`.

use std::collections::BTreeMap;

use calyx_core::model::SigningAlg;
use calyx_server::manage::views::ApiView;
use calyx_server::manage::{ApiPatch, Manager, NewApi, ScopeList};
use serde_json::json;

use crate::output::{print, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register an API (resource server).
    Create(CreateArgs),
    /// Every API, the management API's own included.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One API.
    Show {
        /// The API id or its audience.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change an API's name, scopes, descriptions, algorithm or lifetimes (never its
    /// audience: tokens in flight carry it).
    Update(UpdateArgs),
    /// Delete an API: its grants go, and every sign-in for it is revoked.
    Delete {
        /// The API id or its audience.
        id: String,
    },
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
    /// What a scope lets an application do, as SCOPE=TEXT (repeatable); shown on the consent
    /// page.
    #[arg(long = "scope-description", value_parser = parse_description)]
    scope_descriptions: Vec<(String, String)>,
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

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The API id or its audience.
    id: String,
    /// New display name.
    #[arg(long)]
    name: Option<String>,
    /// Every scope the API defines, space-separated (replaces the list). A scope still
    /// granted to a client cannot be removed: update the grant first.
    #[arg(long)]
    scopes: Option<String>,
    /// Set what a scope lets an application do, as SCOPE=TEXT (repeatable); SCOPE= removes
    /// the description. Others stay as they are.
    #[arg(long = "scope-description", value_parser = parse_description)]
    scope_descriptions: Vec<(String, String)>,
    /// Signing algorithm of its tokens from now on.
    #[arg(long)]
    alg: Option<SigningAlg>,
    /// Machine-token lifetime, seconds.
    #[arg(long)]
    token_lifetime: Option<i64>,
    /// User-token lifetime (code and refresh grants), seconds.
    #[arg(long)]
    user_token_lifetime: Option<i64>,
    /// Delegated user-token lifetime, seconds.
    #[arg(long)]
    delegated_token_lifetime: Option<i64>,
    /// Refresh-token lifetime, seconds.
    #[arg(long)]
    refresh_token_lifetime: Option<i64>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `SCOPE=TEXT` (the text may be empty).
fn parse_description(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((scope, text)) if !scope.trim().is_empty() => {
            Ok((scope.trim().to_owned(), text.trim().to_owned()))
        }
        _ => Err(format!("expected SCOPE=TEXT, got {s:?}")),
    }
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create(a) => {
            let api = m
                .create_api(NewApi {
                    audience: a.audience,
                    scope_descriptions: a.scope_descriptions.into_iter().collect(),
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
        }
        Command::List { json } => {
            super::list(
                json,
                &["ID", "AUDIENCE", "ALG", "NAME", "SCOPES"],
                |a: &ApiView| {
                    vec![
                        a.id.clone(),
                        a.audience.clone(),
                        a.alg.clone(),
                        a.name.clone(),
                        a.scopes.join(" "),
                    ]
                },
                |after, limit| async move { m.list_apis(after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => show(json, &ApiView::from(m.api(&id).await?))?,
        Command::Update(a) => {
            let descriptions: BTreeMap<String, String> = a.scope_descriptions.into_iter().collect();
            let patch = ApiPatch {
                name: a.name,
                scopes: a.scopes.map(ScopeList::Words),
                scope_descriptions: (!descriptions.is_empty()).then_some(descriptions),
                alg: a.alg.map(|alg| alg.as_str().to_owned()),
                token_lifetime: a.token_lifetime,
                user_token_lifetime: a.user_token_lifetime,
                delegated_token_lifetime: a.delegated_token_lifetime,
                refresh_token_lifetime: a.refresh_token_lifetime,
            };
            let api = m.update_api(&a.id, patch).await?;
            show(a.json, &ApiView::from(api))?;
        }
        Command::Delete { id } => {
            m.delete_api(&id).await?;
            eprintln!("deleted API {id}");
        }
    }
    Ok(())
}
