//! Signing keys: generation, loading into a [`KeySet`], rotation and retirement.
//!
//! Each algorithm in use has a *current* key, which signs, and a *next* key, which is
//! published in the JWKS but signs nothing yet. Rotation promotes the next key (so a resource
//! server that fetched the JWKS before the rotation already holds the key that signs after
//! it), publishes a new next key, and schedules the previous keys to leave the JWKS once every
//! token they signed has expired. Retirement unpublishes a key at once (a compromised key);
//! when it was the current or the next key, a successor takes its place.

use anyhow::Context;
use calyx_core::model::{SigningAlg, StoredKey};
use calyx_core::store::Store;
use calyx_token::seal::Sealer;
use calyx_token::{KeySet, SigningKey};

/// How long resource servers may keep the JWKS (its `Cache-Control: max-age`): a next key
/// published for less than this may not have reached them yet.
pub const JWKS_MAX_AGE_SECS: i64 = 60;

/// Slack added to the longest access-token lifetime before an old key retires.
const RETIRE_SLACK_SECS: i64 = 300;

/// Parses every live key. A key that cannot be opened or parsed fails start-up loudly rather
/// than silently signing with something else.
pub async fn load_keyset(store: &dyn Store, sealer: &Sealer, now: i64) -> anyhow::Result<KeySet> {
    let mut stored = store
        .live_keys(now)
        .await
        .context("reading signing keys from the database")?;
    // Oldest promotion first (ties in insertion order), so the last of an algorithm signs.
    stored.sort_by_key(|k| k.promoted_at);
    let (mut signing, mut next) = (Vec::new(), Vec::new());
    for k in stored {
        let der = sealer
            .open(&k.private_key)
            .with_context(|| format!("opening signing key {}", k.kid))?;
        let key = SigningKey::from_pkcs8(k.alg, &der)
            .with_context(|| format!("parsing signing key {}", k.kid))?;
        match k.promoted_at {
            Some(_) => signing.push(key),
            None => next.push(key),
        }
    }
    Ok(KeySet::with_next(signing, next))
}

/// Makes sure each algorithm in `algs` has a current key and a next key, creating what is
/// missing. A current key made here signs at once: nothing could have been pre-published
/// for an algorithm that had no key.
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
        let of_alg = || live.iter().filter(|k| k.alg == alg);
        if !of_alg().any(|k| k.promoted_at.is_some()) {
            insert_new_key(store, sealer, alg, now, Some(now)).await?;
        }
        if !of_alg().any(|k| k.promoted_at.is_none()) {
            insert_new_key(store, sealer, alg, now, None).await?;
        }
    }
    Ok(())
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The key that signs from now on.
    pub kid: String,
    /// The new next key, published now, signing at the following rotation.
    pub next_kid: String,
    /// False when there was no next key to promote, so the new key signs without having been
    /// published first (only on a database that no server has started on since its upgrade).
    pub was_published: bool,
    /// Seconds the promoted key had been published (0 when it was not).
    pub published_for: i64,
}

/// Promotes the next key of `alg` (the oldest, if several nodes made one each), schedules the
/// previous keys to retire after the longest token lifetime, and publishes a new next key.
pub async fn rotate(
    store: &dyn Store,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
) -> anyhow::Result<Rotated> {
    let retire_previous_at = retire_after(store, now).await?;
    let live = store
        .live_keys(now)
        .await
        .context("reading signing keys from the database")?;
    let next = live
        .iter()
        .find(|k| k.alg == alg && k.promoted_at.is_none())
        .map(|k| (k.kid.clone(), now - k.created_at));
    let was_published = next.is_some();
    let published_for = next.as_ref().map_or(0, |(_, age)| *age);
    let next = next.map(|(kid, _)| kid);
    let kid = match next {
        Some(kid) => kid,
        None => insert_new_key(store, sealer, alg, now, None).await?,
    };
    if !store
        .promote_key(&kid, now, retire_previous_at)
        .await
        .context("promoting the next signing key")?
    {
        anyhow::bail!(
            "the next {alg} key {kid} was retired or promoted by someone else; try again"
        );
    }
    let remaining_next = live
        .iter()
        .find(|k| k.alg == alg && k.promoted_at.is_none() && k.kid != kid)
        .map(|k| k.kid.clone());
    let next_kid = match remaining_next {
        Some(kid) => kid,
        None => insert_new_key(store, sealer, alg, now, None).await?,
    };
    Ok(Rotated {
        kid,
        next_kid,
        was_published,
        published_for,
    })
}

/// Unpublishes `kid` at once. If it was the current key of its algorithm, the next key
/// starts signing; if it was the next key, a new one is made. Returns the algorithm, or
/// `None` when no live key has that id.
pub async fn retire(
    store: &dyn Store,
    sealer: &Sealer,
    kid: &str,
    now: i64,
) -> anyhow::Result<Option<SigningAlg>> {
    let live = store
        .live_keys(now)
        .await
        .context("reading signing keys from the database")?;
    let Some(key) = live.iter().find(|k| k.kid == kid) else {
        return Ok(None);
    };
    let alg = key.alg;
    if !store
        .retire_key(kid, now)
        .await
        .context("retiring the key")?
    {
        return Ok(None);
    }
    if current_key(&live, alg, now).is_some_and(|k| k.kid == kid) {
        // A retired key stops signing at once; the next key takes over.
        let next = live
            .iter()
            .find(|k| k.alg == alg && k.promoted_at.is_none());
        if let Some(next) = next {
            store
                .promote_key(&next.kid, now, retire_after(store, now).await?)
                .await
                .context("promoting the next signing key")?;
        }
    }
    ensure_keys(store, sealer, [alg], now).await?;
    Ok(Some(alg))
}

/// The key that signs for `alg` at `now` among `keys` (given oldest first): the most recently
/// promoted live key, the newest of those promoted in the same second — as [`load_keyset`]
/// orders them.
pub fn current_key(keys: &[StoredKey], alg: SigningAlg, now: i64) -> Option<&StoredKey> {
    keys.iter()
        .filter(|k| k.alg == alg && k.promoted_at.is_some())
        .filter(|k| k.retires_at.is_none_or(|r| r > now))
        .max_by_key(|k| k.promoted_at)
}

/// When keys that stop signing now may leave the JWKS: after the longest access-token
/// lifetime of any API, plus some slack.
async fn retire_after(store: &dyn Store, now: i64) -> anyhow::Result<i64> {
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
    Ok(now + longest + RETIRE_SLACK_SECS)
}

async fn insert_new_key(
    store: &dyn Store,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
    promoted_at: Option<i64>,
) -> anyhow::Result<String> {
    let (der, key) = SigningKey::generate(alg).context("generating a signing key")?;
    let kid = key.kid().to_owned();
    store
        .insert_key(&StoredKey {
            kid: kid.clone(),
            alg,
            private_key: sealer.seal(&der),
            created_at: now,
            promoted_at,
            retires_at: None,
        })
        .await
        .context("storing the new signing key")?;
    Ok(kid)
}
