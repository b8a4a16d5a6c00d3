//! `calyx keys rotate`.

use calyx_core::model::SigningAlg;
use calyx_server::manage::Manager;
use serde_json::json;

use crate::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a new signing key; it signs from the next reload (≤ 1 s) on every server, and the
    /// previous key stays published until the tokens it signed have expired.
    Rotate {
        /// Algorithm of the key to rotate.
        #[arg(long, default_value = "ES256")]
        alg: SigningAlg,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    let Command::Rotate { alg, json } = c;
    let kid = m.rotate_key(alg).await?;
    print(
        json,
        json!({"kid": kid, "alg": alg.as_str()}),
        &[("kid", kid.clone()), ("alg", alg.to_string())],
    );
    Ok(())
}
