//! DPoP at the token endpoint (RFC 9449 §5): the proof a token request carries, its single
//! use across nodes, and the server's nonces (§8).
//!
//! `calyx_token::dpop::verify` does the stateless checks. Here the proof's `jti` is recorded
//! in the database (`OneTime::use_once`), keyed by the proof's key and `jti`, for as long as
//! its `iat` keeps it acceptable, so a replay is refused on any node.
//!
//! Nonces need no shared state either: a nonce is a time window's number and a MAC of it
//! under a key derived from the pepper, which every node shares. One is issued per
//! [`NONCE_WINDOW`] seconds and accepted in its window and the next, so a client that just
//! got one never meets a refusal for it. With `serve --dpop-nonce` every proof at the token
//! endpoint must carry a current nonce; without it, nonces are neither sent nor asked for.
//!
//! Nothing here runs for a request without a `DPoP` header from a client that does not
//! require one: the Bearer path pays one header lookup.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_core::{ErrorCode, OAuthError};
use calyx_token::dpop::{self, DpopError, Expected};
use calyx_token::secret::SecretHasher;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// How old a proof may be, in seconds.
pub(crate) const MAX_AGE: i64 = 60;

/// How far ahead of the server's clock a proof's `iat` may be (client clock skew), in seconds.
pub(crate) const LEEWAY: i64 = 5;

/// The length of a nonce's window, in seconds.
pub(crate) const NONCE_WINDOW: i64 = 120;

/// Bytes of the nonce's MAC.
const MAC_BYTES: usize = 16;

/// The request header that carries a proof (a `HeaderName`, so that looking it up on the
/// token endpoint's path parses no string).
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The response header that carries a nonce.
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The server's nonces: stateless, the same on every node.
pub struct Nonces(SecretHasher);

impl Nonces {
    /// Nonces under a key derived from the pepper.
    pub fn new(hasher: &SecretHasher) -> Self {
        Nonces(SecretHasher::new(
            &hasher.derive_key(b"calyx/dpop-nonce/v1"),
        ))
    }

    /// The nonce of the window `now` is in.
    pub fn current(&self, now: i64) -> String {
        self.of_window(now.div_euclid(NONCE_WINDOW))
    }

    fn of_window(&self, window: i64) -> String {
        let mac = self.0.hash(&window.to_string());
        format!("{window}.{}", URL_SAFE_NO_PAD.encode(&mac[..MAC_BYTES]))
    }

    /// True for the nonce of the current window or the one before.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Some(window) = nonce
            .split_once('.')
            .and_then(|(w, _)| w.parse::<i64>().ok())
        else {
            return false;
        };
        let current = now.div_euclid(NONCE_WINDOW);
        (window == current || window == current - 1)
            && bool::from(self.of_window(window).as_bytes().ct_eq(nonce.as_bytes()))
    }
}

/// The request's one `DPoP` header, if it has one. Two are refused (RFC 9449 §4.3 point 1).
pub(crate) fn header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut all = headers.get_all(&DPOP).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(invalid("send exactly one DPoP header").into());
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| invalid("the DPoP header is not a JWT").into())
}

/// Checks the proof of a request to `path` on this server and records its `jti`: the
/// thumbprint of its key, which the issued tokens are bound to.
pub(crate) async fn accept(state: &AppState, proof: &str, path: &str) -> Result<String, ApiError> {
    let now = state.clock.now();
    let htu = format!("{}{path}", state.issuer.trim_end_matches('/'));
    let expected = Expected {
        method: "POST",
        uri: &htu,
        now,
        max_age: MAX_AGE,
        leeway: LEEWAY,
        access_token: None,
        nonce: None,
    };
    let proof = dpop::verify(proof, &expected).map_err(|e| match e {
        DpopError::Invalid(why) => invalid(why),
        DpopError::UseNonce => use_nonce(),
    })?;
    if state.config.dpop_nonce
        && !proof
            .nonce
            .as_deref()
            .is_some_and(|n| state.dpop_nonces.accepts(n, now))
    {
        return Err(use_nonce().into());
    }
    let key = replay_key(&proof.jkt, &proof.jti);
    if !state.store.use_once(&key, proof.iat + MAX_AGE + 1).await? {
        return Err(
            invalid("the DPoP proof was used before: make a new one for every request").into(),
        );
    }
    Ok(proof.jkt)
}

/// The single-use key of a proof: its key's thumbprint and its `jti`, hashed to a fixed size.
fn replay_key(jkt: &str, jti: &str) -> Vec<u8> {
    let input = format!("dpop\0{jkt}\0{jti}");
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes())
        .as_ref()
        .to_vec()
}

/// The nonce to send with an answer to a DPoP request, when nonces are on.
pub(crate) fn nonce_header(state: &AppState) -> Option<HeaderValue> {
    state
        .config
        .dpop_nonce
        .then(|| HeaderValue::from_str(&state.dpop_nonces.current(state.clock.now())).ok())
        .flatten()
}

/// `invalid_dpop_proof` with a description.
pub(crate) fn invalid(why: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, why)
}

fn use_nonce() -> OAuthError {
    OAuthError::new(
        ErrorCode::UseDpopNonce,
        "the DPoP proof must carry the nonce of the DPoP-Nonce header",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_in_its_window_and_the_next_only() {
        let nonces = Nonces::new(&SecretHasher::new(b"pepper"));
        let now = 1_800_000_000;
        let nonce = nonces.current(now);
        assert!(nonces.accepts(&nonce, now));
        assert!(nonces.accepts(&nonce, now + NONCE_WINDOW));
        assert!(!nonces.accepts(&nonce, now + 2 * NONCE_WINDOW));
        assert!(!nonces.accepts(&nonce, now - NONCE_WINDOW));
        let other = Nonces::new(&SecretHasher::new(b"another pepper"));
        assert!(!other.accepts(&nonce, now), "a nonce of another deployment");
        let window = now.div_euclid(NONCE_WINDOW);
        assert!(
            !nonces.accepts(&format!("{window}.AAAA"), now),
            "a forged MAC"
        );
        assert!(!nonces.accepts("garbage", now));
    }
}
