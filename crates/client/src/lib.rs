//! # calyx-client
//!
//! What an API customer needs to call an API protected by Calyx (or any RFC 6749/8414
//! server), done the way integration docs ask and integrations often get wrong:
//!
//! - [`TokenSource`]: client-credentials tokens cached per (audience, scope) and reused until
//!   shortly before expiry; **one** request however many tasks ask at once; renewed in the
//!   background ahead of expiry so no caller waits or gets an expired token; `Retry-After`
//!   honoured on 429/503.
//! - [`AuthorizationRequest`]: the authorization URL with `state` and PKCE (S256), and a
//!   callback check that refuses a wrong `state` before exchanging the code.
//! - [`RefreshSession`]: rotating refresh tokens, handing each new one to a caller-supplied
//!   [`RefreshStore`] *before* returning, so a crash can never lose it.
//! - [`Endpoints::discover`] reads RFC 8414 metadata; [`TokenSource::authorize`] attaches the
//!   Bearer header to a reqwest request; [`delegate`] calls `/v2/users/{id}/authenticate`.
#![warn(missing_docs)]

mod auth_code;
mod error;
mod refresh;
mod source;

pub use auth_code::AuthorizationRequest;
pub use error::Error;
pub use refresh::{RefreshSession, RefreshStore};
pub use source::{
    delegate, AccessToken, AudienceParam, AuthMethod, Credentials, Endpoints, TokenSource,
};

/// `n` random bytes from the OS, base64url without padding.
pub(crate) fn random(n: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).expect("the OS random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
