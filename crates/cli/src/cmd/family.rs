//! `calyx family list | show | revoke`: grant families, each one sign-in's chain of code,
//! refresh and access tokens. Revoking one ends that sign-in (RFC 6749 §10.4).

use calyx_core::model::FamilyFilter;
use calyx_server::manage::views::FamilyView;
use calyx_server::manage::Manager;

use crate::output::{opt, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A client's or a user's families (both: the user's with that client).
    #[command(group(clap::ArgGroup::new("whose").args(["client", "user"]).required(true).multiple(true)))]
    List {
        /// Families of this client.
        #[arg(long)]
        client: Option<String>,
        /// Families of this user.
        #[arg(long)]
        user: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One family.
    Show {
        /// The family id (`fam_...`, the `sid` of its access tokens).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a family: its refresh tokens stop working at once, and its access tokens stop
    /// introspecting as active.
    Revoke {
        /// The family id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::List { client, user, json } => {
            let filter = FamilyFilter {
                client_id: client,
                user_id: user,
            };
            let filter = &filter;
            super::list(
                json,
                &["ID", "CLIENT", "USER", "CREATED_AT", "REVOKED_AT", "SCOPE"],
                |f: &FamilyView| {
                    vec![
                        f.id.clone(),
                        f.client_id.clone(),
                        f.user_id.clone(),
                        f.created_at.to_string(),
                        opt(&f.revoked_at),
                        f.scope.clone(),
                    ]
                },
                |after, limit| async move { m.list_families(filter, after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => show(json, &FamilyView::from(m.family(&id).await?))?,
        Command::Revoke { id, json } => {
            show(json, &FamilyView::from(m.revoke_family(&id).await?))?;
        }
    }
    Ok(())
}
