//! `calyx`: the one binary. Each subcommand lives in `cmd/<name>.rs`; this file only parses
//! arguments, sets up logging and tracing (`telemetry`) and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::SecretString;

mod cmd;
mod output;
mod telemetry;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Calyx: an OAuth 2.0 authorization server for API companies.
#[derive(Debug, Parser)]
#[command(name = "calyx", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Database URL: sqlite://PATH (created if missing).
    #[arg(
        long,
        global = true,
        env = "CALYX_DATABASE_URL",
        default_value = "sqlite://calyx.db"
    )]
    pub database_url: String,
    /// Pepper for secret hashes. When unset, one is generated and kept in the database.
    #[arg(long, global = true, env = "CALYX_PEPPER", hide_env_values = true, value_parser = secret)]
    pub pepper: Option<SecretString>,
    /// Base64 AES-256 key that seals private signing keys at rest.
    #[arg(long, global = true, env = "CALYX_MASTER_KEY", hide_env_values = true, value_parser = secret)]
    pub master_key: Option<SecretString>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(cmd::serve::Args),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(cmd::org::Command),
    /// Manage APIs (resource servers).
    #[command(subcommand)]
    Api(cmd::api::Command),
    /// Manage clients (applications).
    #[command(subcommand)]
    Client(cmd::client::Command),
    /// Manage client grants (which client may get tokens for which API).
    #[command(subcommand)]
    Grant(cmd::grant::Command),
    /// Manage users (who sign in and approve applications).
    #[command(subcommand)]
    User(cmd::user::Command),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    /// Manage clients of the management API (`/admin/v1`).
    #[command(subcommand)]
    Admin(cmd::admin::Command),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(cmd::audit::Command),
    /// Remove expired and finished records now (`serve` also does it on a schedule).
    Purge(cmd::purge::Args),
    /// Manage webhooks (audit events POSTed to a URL).
    #[command(subcommand)]
    Webhook(cmd::webhook::Command),
    /// List and revoke grant families (one per sign-in).
    #[command(subcommand)]
    Family(cmd::family::Command),
    /// Create operators: the people who sign in to the console (/console/).
    #[command(subcommand)]
    Operator(cmd::user::OperatorCommand),
    /// The name, logo and accent colour of every page.
    #[command(subcommand)]
    Branding(cmd::branding::Command),
}

/// Parses a secret flag into a type that never prints it.
fn secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// Runs the command; on failure prints `error: ` and the causes on one line (a management
/// error's own message first: what is invalid, missing or in conflict) and exits with 1.
fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` chooses the log format and whether to trace; every other command logs text.
    let (format, otlp) = match &cli.command {
        Command::Serve(args) => (args.config().log_format, args.config().otlp_traces_url()),
        _ => (Default::default(), Ok(None)),
    };
    let telemetry = match otlp.and_then(|url| telemetry::init(format, url.as_deref())) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::new)
        .and_then(|runtime| runtime.block_on(cmd::run(cli)));
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `calyx audit list | head`: the reader has what it wanted.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether writing to standard output failed because its reader has gone.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
