//! `calyx org create | list | show | update | delete`.

use calyx_server::manage::views::OrgView;
use calyx_server::manage::{Manager, OrgPatch, ScopeList};
use serde_json::json;

use crate::output::{print, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an organization.
    Create {
        /// Display name (unique).
        #[arg(long)]
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Every organization.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One organization.
    Show {
        /// The organization id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Rename an organization, or set its token quotas.
    Update {
        /// The organization id.
        id: String,
        /// New display name (unique).
        #[arg(long)]
        name: Option<String>,
        /// Tokens all its clients together may get per hour ("none" removes the limit).
        #[arg(long, value_parser = super::client::parse_quota)]
        tokens_per_hour: Option<super::client::Limit>,
        /// Tokens per day ("none" removes the limit).
        #[arg(long, value_parser = super::client::parse_quota)]
        tokens_per_day: Option<super::client::Limit>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Delete an organization that has no clients and no users left.
    Delete {
        /// The organization id.
        id: String,
    },
    /// Let the organization's admins grant their applications at most these scopes of an API
    /// in the developer portal (replaces an earlier entitlement on it).
    Entitle {
        /// The organization id.
        id: String,
        /// The API's audience (or id).
        #[arg(long)]
        audience: String,
        /// Space-separated scopes of that API.
        #[arg(long)]
        scopes: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// What the organization is entitled to, per API.
    Entitlements {
        /// The organization id.
        id: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove the organization's entitlement on an API (grants already made stay).
    Unentitle {
        /// The organization id.
        id: String,
        /// The API's audience (or id).
        #[arg(long)]
        audience: String,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Entitle {
            id,
            audience,
            scopes,
            json,
        } => {
            let e = m
                .set_entitlement(&id, &audience, &ScopeList::Words(scopes))
                .await?;
            show(json, &e)?;
        }
        Command::Entitlements { id, json } => {
            for e in m.entitlements(&id).await? {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!("{}\t{}", e.audience, e.scopes.join(" "));
                }
            }
        }
        Command::Unentitle { id, audience } => {
            m.delete_entitlement(&id, &audience).await?;
            eprintln!("removed the entitlement of {id} on {audience}");
        }
        Command::Create { name, json } => {
            let org = m.create_org(&name).await?;
            print(
                json,
                json!({"org_id": org.id, "name": org.name}),
                &[("org_id", org.id.clone())],
            );
        }
        Command::List { json } => {
            super::list(
                json,
                &["ID", "NAME", "CREATED_AT"],
                |o: &OrgView| vec![o.id.clone(), o.name.clone(), o.created_at.to_string()],
                |after, limit| async move { m.list_orgs(after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => show(json, &OrgView::from(m.org(&id).await?))?,
        Command::Update {
            id,
            name,
            tokens_per_hour,
            tokens_per_day,
            json,
        } => {
            let patch = OrgPatch {
                name,
                tokens_per_hour: tokens_per_hour.map(|l| l.0),
                tokens_per_day: tokens_per_day.map(|l| l.0),
            };
            let org = m.update_org(&id, patch).await?;
            show(json, &OrgView::from(org))?;
        }
        Command::Delete { id } => {
            m.delete_org(&id).await?;
            eprintln!("deleted organization {id}");
        }
    }
    Ok(())
}
