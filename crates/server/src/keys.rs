//! Signing keys: generation, loading into a [`KeySet`], rotation.
//!
//! Rotation adds a new key (which signs from then on, on every node after its next reload)
//! and schedules the previous keys of that algorithm to retire once every token they signed
//! has expired, so the JWKS keeps publishing them until then.

use anyhow::Context;
use calyx_core::model::{SigningAlg, StoredKey};
use calyx_core::store::Store;
use calyx_token::seal::Sealer;
use calyx_token::{KeySet, SigningKey};

/// Slack added to the longest access-token lifetime before an old key retires.
const RETIRE_SLACK_SECS: i64 = 300;

/// Parses every live key. A key that cannot be opened or parsed fails start-up loudly rather
/// than silently signing with something else.
pub async fn load_keyset(store: &dyn Store, sealer: &Sealer, now: i64) -> anyhow::Result<KeySet> {
    let stored = store
        .live_keys(now)
        .await
        .context("reading signing keys from the database")?;
    let mut keys = Vec::with_capacity(stored.len());
    for k in stored {
        let der = sealer
            .open(&k.private_key)
            .with_context(|| format!("opening signing key {}", k.kid))?;
        keys.push(
            SigningKey::from_pkcs8(k.alg, &der)
                .with_context(|| format!("parsing signing key {}", k.kid))?,
        );
    }
    Ok(KeySet::new(keys))
}

/// Generates a key for each algorithm in `algs` that has no live key.
pub async fn ensure_keys(
    store: &dyn Store,
    sealer: &Sealer,
    algs: impl IntoIterator<Item = SigningAlg>,
    now: i64,
) -> anyhow::Result<()> {
    let live = store
        .live_keys(now)
        .await
        .context("reading signing keys from the database")?;
    for alg in algs {
        if !live.iter().any(|k| k.alg == alg) {
            insert_new_key(store, sealer, alg, now).await?;
        }
    }
    Ok(())
}

/// Adds a new key for `alg` and schedules the others of that algorithm to retire. Returns the
/// new key id.
pub async fn rotate(
    store: &dyn Store,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
) -> anyhow::Result<String> {
    let longest = store
        .apis()
        .await
        .context("reading APIs")?
        .iter()
        .map(|a| {
            a.token_lifetime
                .max(a.user_token_lifetime)
                .max(a.delegated_token_lifetime)
        })
        .max()
        .unwrap_or(calyx_core::model::Api::DEFAULT_TOKEN_LIFETIME);
    let kid = insert_new_key(store, sealer, alg, now).await?;
    store
        .schedule_key_retirement(alg, &kid, now + longest + RETIRE_SLACK_SECS)
        .await
        .context("scheduling retirement of the previous keys")?;
    Ok(kid)
}

async fn insert_new_key(
    store: &dyn Store,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
) -> anyhow::Result<String> {
    let (der, key) = SigningKey::generate(alg).context("generating a signing key")?;
    let kid = key.kid().to_owned();
    store
        .insert_key(&StoredKey {
            kid: kid.clone(),
            alg,
            private_key: sealer.seal(&der),
            created_at: now,
            retires_at: None,
        })
        .await
        .context("storing the new signing key")?;
    Ok(kid)
}
