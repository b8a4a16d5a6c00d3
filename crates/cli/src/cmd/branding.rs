//! `calyx branding show | set`: the name, logo and accent colour of every page.

use calyx_server::manage::{BrandingPatch, Manager};

use crate::output::show;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The current branding.
    Show {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change the branding; what is not given stays.
    Set {
        /// The provider's name.
        #[arg(long)]
        name: Option<String>,
        /// Logo image URL (https, or a path on this server); "" removes it.
        #[arg(long)]
        logo_url: Option<String>,
        /// Accent colour, `#rrggbb`, at least 4.5:1 against white.
        #[arg(long)]
        color: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    let (branding, json) = match c {
        Command::Show { json } => (m.branding().await?, json),
        Command::Set {
            name,
            logo_url,
            color,
            json,
        } => (
            m.update_branding(BrandingPatch {
                name,
                logo_url,
                color,
            })
            .await?,
            json,
        ),
    };
    show(json, &branding)
}
