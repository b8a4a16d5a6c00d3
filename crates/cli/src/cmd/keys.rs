//! `calyx keys rotate | list | retire`.

use calyx_core::model::SigningAlg;
use calyx_server::keys::JWKS_MAX_AGE_SECS;
use calyx_server::manage::{KeyInfo, Manager};
use serde_json::json;

use crate::output::{opt, print};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make the published next key sign and publish a new next key. Running servers switch
    /// within their reload interval; resource servers already hold the new signing key, and
    /// the previous key stays published until the tokens it signed have expired.
    Rotate {
        /// Algorithm of the key to rotate.
        #[arg(long, default_value = "ES256")]
        alg: SigningAlg,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Every key with its state: next, current, previous or retired.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Unpublish a key at once (a compromised key): tokens it signed stop verifying. A
    /// retired current key is replaced by the next key; a retired next key by a new one.
    Retire {
        /// The key id (`kid`).
        kid: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Rotate { alg, json } => {
            let r = m.rotate_key(alg).await?;
            if !r.was_published {
                eprintln!(
                    "warning: there was no published next {alg} key; {} signs without having \
                     been published first",
                    r.kid
                );
            } else if r.published_for < JWKS_MAX_AGE_SECS {
                eprintln!(
                    "warning: {} was published only {} s ago; resource servers that fetched the \
                     JWKS before then will refetch it when they first see the key. Leave at \
                     least {JWKS_MAX_AGE_SECS} s between rotations",
                    r.kid, r.published_for
                );
            }
            print(
                json,
                json!({"kid": r.kid, "alg": alg.as_str(), "next_kid": r.next_kid}),
                &[
                    ("kid", r.kid.clone()),
                    ("alg", alg.to_string()),
                    ("next_kid", r.next_kid.clone()),
                ],
            );
        }
        Command::List { json } => {
            super::list_all(
                json,
                &["KID", "ALG", "STATE", "RETIRES_AT"],
                |k: &KeyInfo| {
                    vec![
                        k.kid.clone(),
                        k.alg.to_owned(),
                        k.state.to_owned(),
                        opt(&k.retires_at),
                    ]
                },
                &m.list_keys().await?,
            )?;
        }
        Command::Retire { kid, json } => {
            let alg = m.retire_key(&kid).await?;
            print(
                json,
                json!({"kid": kid, "alg": alg.as_str(), "state": "retired"}),
                &[("kid", kid.clone()), ("state", "retired".into())],
            );
        }
    }
    Ok(())
}
