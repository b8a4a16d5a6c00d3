//! `calyx purge`: remove (or with `--dry-run` count) what is no longer live — expired codes,
//! finished sign-ins and their tokens, retired keys, audit events past the retention. `serve`
//! also runs it on a schedule.

use calyx_server::manage::{Manager, DEFAULT_AUDIT_RETENTION_DAYS};

use crate::output::show;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Count what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep audit events (and finished webhook deliveries) this many days.
    #[arg(long, default_value_t = DEFAULT_AUDIT_RETENTION_DAYS,
        value_parser = clap::value_parser!(i64).range(1..=36_500))]
    audit_retention_days: i64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(mut m: Manager, a: Args) -> anyhow::Result<()> {
    m.audit_retention = a.audit_retention_days * 86_400;
    let report = m.purge(a.dry_run).await?;
    show(a.json, &report)?;
    if a.dry_run && !a.json {
        eprintln!("(dry run: nothing was removed)");
    }
    Ok(())
}
