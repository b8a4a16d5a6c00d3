//! Subcommands, and what they share: opening the database and reading a listing to its end.

use std::future::Future;

use calyx_server::manage::{Listing, ManageResult, Manager, Secrets, MAX_PAGE};
use serde::Serialize;

use crate::output;
use crate::{Cli, Command, Global};

pub mod admin;
pub mod api;
pub mod audit;
pub mod branding;
pub mod client;
pub mod family;
pub mod grant;
pub mod keys;
pub mod org;
pub mod purge;
pub mod serve;
pub mod user;
pub mod webhook;

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
        Command::Admin(c) => admin::run(&open(&cli.global).await?, c).await,
        Command::Audit(c) => audit::run(&open(&cli.global).await?, c).await,
        Command::Purge(a) => purge::run(open(&cli.global).await?, a).await,
        Command::Webhook(c) => webhook::run(&open(&cli.global).await?, c).await,
        Command::Family(c) => family::run(&open(&cli.global).await?, c).await,
        Command::Operator(c) => user::run_operator(&open(&cli.global).await?, c).await,
        Command::Branding(c) => branding::run(&open(&cli.global).await?, c).await,
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

/// Prints a whole listing, reading it page by page (`fetch(after)` reads the page after the
/// cursor, [`MAX_PAGE`] items at a time): with `json` one object per line as each page
/// arrives, otherwise a table of `header` with a `row` per item once every page is read.
pub async fn list<T, F, Fut>(
    json: bool,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    mut fetch: F,
) -> anyhow::Result<()>
where
    T: Serialize,
    F: FnMut(Option<String>, i64) -> Fut,
    Fut: Future<Output = ManageResult<Listing<T>>>,
{
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after.take(), MAX_PAGE).await?;
        for item in &page.items {
            if json {
                output::json_line(item)?;
            } else {
                rows.push(row(item));
            }
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if !json {
        output::table(header, &rows)?;
    }
    Ok(())
}

/// Prints items that come in one piece (not paged): JSON Lines, or a table.
pub fn list_all<T: Serialize>(
    json: bool,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    items: &[T],
) -> anyhow::Result<()> {
    if json {
        for item in items {
            output::json_line(item)?;
        }
        Ok(())
    } else {
        output::table(header, &items.iter().map(row).collect::<Vec<_>>())
    }
}
