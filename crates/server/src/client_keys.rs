//! The public keys `private_key_jwt` clients sign their assertions with: registered inline
//! (`jwks`) or published at `jwks_uri`, parsed once and cached.
//!
//! A `jwks_uri` is fetched on first use and cached for [`TTL`]; an assertion naming a `kid`
//! the cached set lacks makes the server fetch it again (the client rotated its keys), at
//! most once per [`REFETCH_GAP`] per URI so that a stream of bad `kid`s cannot turn the server
//! into a request amplifier. Fetches have a timeout and a size cap, and follow no redirects.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_core::model::Client;
use calyx_token::assertion::{parse_client_jwks, ClientKeys};
use moka::sync::Cache;

/// How long a parsed key set is kept.
const TTL: Duration = Duration::from_secs(300);

/// The least time between two fetches of one `jwks_uri` forced by an unknown `kid`.
const REFETCH_GAP: Duration = Duration::from_secs(10);

/// The largest JWK Set fetched, bytes.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Parsed key sets, by `inline:<client>:<hash of the set>` or `uri:<url>`.
static KEYS: LazyLock<Cache<String, Arc<ClientKeys>>> = LazyLock::new(|| {
    Cache::builder()
        .max_capacity(10_000)
        .time_to_live(TTL)
        .build()
});

/// URIs fetched again recently because of an unknown `kid`.
static REFETCHED: LazyLock<Cache<String, ()>> = LazyLock::new(|| {
    Cache::builder()
        .max_capacity(10_000)
        .time_to_live(REFETCH_GAP)
        .build()
});

static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds")
});

/// The client's inline keys (`jwks`), parsed once.
pub(crate) fn inline(client: &Client) -> Result<Arc<ClientKeys>, String> {
    let jwks = client
        .policy
        .jwks
        .as_ref()
        .ok_or("the client has no inline jwks")?;
    let text = jwks.to_string();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let key = format!("inline:{}:{}", client.id, URL_SAFE_NO_PAD.encode(digest));
    if let Some(keys) = KEYS.get(&key) {
        return Ok(keys);
    }
    let keys = Arc::new(parse_client_jwks(jwks)?);
    KEYS.insert(key, keys.clone());
    Ok(keys)
}

/// The client's keys; `refresh` fetches a `jwks_uri` again (see the module header). The error
/// says why there are none, for the log.
pub(crate) async fn keys(client: &Client, refresh: bool) -> Result<Arc<ClientKeys>, String> {
    if client.policy.jwks.is_some() {
        return inline(client);
    }
    let Some(uri) = &client.policy.jwks_uri else {
        return Err("the client has neither jwks nor jwks_uri".into());
    };
    let key = format!("uri:{uri}");
    if !refresh {
        if let Some(keys) = KEYS.get(&key) {
            return Ok(keys);
        }
    } else if REFETCHED.contains_key(uri) {
        return Err("the jwks_uri was fetched again moments ago".into());
    } else {
        REFETCHED.insert(uri.clone(), ());
    }
    let keys = Arc::new(fetch(uri).await?);
    KEYS.insert(key, keys.clone());
    Ok(keys)
}

async fn fetch(uri: &str) -> Result<ClientKeys, String> {
    let mut resp = HTTP
        .get(uri)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("fetching the jwks_uri failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("the jwks_uri answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the jwks_uri failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err("the jwks_uri's document is too large".into());
        }
    }
    let jwks: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| "the jwks_uri's document is not JSON")?;
    parse_client_jwks(&jwks)
}
