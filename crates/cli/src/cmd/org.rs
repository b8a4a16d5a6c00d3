//! `calyx org create`.

use calyx_server::manage::Manager;
use serde_json::json;

use crate::output::print;

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
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create { name, json } => {
            let org = m.create_org(&name).await?;
            print(
                json,
                json!({"org_id": org.id, "name": org.name}),
                &[("org_id", org.id.clone())],
            );
            Ok(())
        }
    }
}
