//! The client's errors.

use std::time::Duration;

/// Why a token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an RFC 6749 §5.2 error.
    #[error("{error}: {}", description.as_deref().unwrap_or(""))]
    OAuth {
        /// HTTP status.
        status: u16,
        /// The `error` code, e.g. `invalid_client`.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// Still rate limited (or unavailable) after honouring `Retry-After`.
    #[error("the server asked to retry after {0:?}")]
    RetryLater(Duration),
    /// The callback's `state` is not the one sent (a forged or mixed-up callback).
    #[error("the callback's state does not match the request's")]
    StateMismatch,
    /// The server's answer could not be understood.
    #[error("unexpected response: {0}")]
    InvalidResponse(String),
    /// The refresh-token store failed; the token was not handed out.
    #[error("refresh-token store: {0}")]
    Store(String),
    /// A key could not be loaded or used: not PKCS#8, not P-256, or signing failed.
    #[error("key: {0}")]
    Key(String),
    /// A URL the client was given (an endpoint, a request's) does not parse.
    #[error("invalid URL {0}")]
    InvalidUrl(String),
    /// The request did not complete.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
}
