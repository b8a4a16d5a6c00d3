//! Subcommands.

use calyx_server::manage::{Manager, Secrets};

use crate::{Cli, Command, Global};

pub mod api;
pub mod client;
pub mod grant;
pub mod keys;
pub mod org;
pub mod serve;
pub mod user;

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Migrate => {
            open(&cli.global).await?;
            eprintln!("database is up to date");
            Ok(())
        }
        Command::Org(c) => org::run(&open(&cli.global).await?, c).await,
        Command::Api(c) => api::run(&open(&cli.global).await?, c).await,
        Command::Client(c) => client::run(&open(&cli.global).await?, c).await,
        Command::Grant(c) => grant::run(&open(&cli.global).await?, c).await,
        Command::Keys(c) => keys::run(&open(&cli.global).await?, c).await,
        Command::User(c) => user::run(&open(&cli.global).await?, c).await,
    }
}

/// Opens (and migrates) the database for a management command.
pub async fn open(g: &Global) -> anyhow::Result<Manager> {
    Manager::open(&g.database_url, 2, &secrets(g)).await
}

/// The configured secrets.
pub fn secrets(g: &Global) -> Secrets {
    Secrets {
        pepper: g.pepper.clone(),
        master_key: g.master_key.clone(),
    }
}
