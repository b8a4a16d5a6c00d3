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
//!   token to a reqwest request; [`delegate`] calls `/v2/users/{id}/authenticate`.
//! - [`DpopKey`]: DPoP (RFC 9449) sender-constrained tokens. Every token request carries a
//!   fresh proof; a server's `use_dpop_nonce` is answered once with its nonce, and the latest
//!   `DPoP-Nonce` of each server is used in the next proof; resource requests get
//!   `Authorization: DPoP` and a proof with `ath`.
//! - [`ClientKey`]: `private_key_jwt` client authentication (OpenID Connect Core §9, RFC 7523):
//!   a fresh signed assertion per request instead of a secret, for the token source, the
//!   refresh session and the code exchange alike.
//!
//! ## DPoP
//!
//! ```no_run
//! use calyx_client::{AuthMethod, Credentials, DpopKey, Endpoints, TokenSource, TokenType};
//!
//! # async fn run() -> Result<(), calyx_client::Error> {
//! let http = reqwest::Client::new();
//! let endpoints = Endpoints::discover(&http, "https://auth.example.com").await?;
//! let creds = Credentials {
//!     client_id: "my-client".into(),
//!     client_secret: Some("...".into()),
//!     method: AuthMethod::Basic,
//! };
//! // Or DpopKey::from_pkcs8(&stored) for a key kept from an earlier run.
//! let key = DpopKey::generate()?;
//! let source = TokenSource::new(http.clone(), endpoints, creds).with_dpop(key.clone());
//!
//! let token = source.token("https://api.example.com/", None).await?;
//! assert_eq!(token.token_type, TokenType::DPoP); // bound to key.thumbprint()
//!
//! // `Authorization: DPoP ...` and a proof for this method and URL; a resource server's
//! // `use_dpop_nonce` is retried once with its nonce.
//! let resp = source
//!     .send(http.get("https://api.example.com/v1/consumers"), "https://api.example.com/")
//!     .await?;
//! # let _ = resp;
//! // Or decorate a request yourself, and hand the answer's nonce back:
//! let req = key.authorize(http.get("https://api.example.com/v1/me"), &token.token)?;
//! let resp = req.send().await?;
//! key.remember_nonce(&resp);
//! # Ok(()) }
//! ```
//!
//! ## `private_key_jwt`
//!
//! ```no_run
//! use calyx_client::{ClientKey, Credentials, Endpoints, TokenSource};
//!
//! # async fn run(stored_pkcs8: Vec<u8>) -> Result<(), calyx_client::Error> {
//! // Once: make a key, keep `key.to_pkcs8()?` secret, register `key.jwks()` as the client's
//! // JWKS (`token_endpoint_auth_method: private_key_jwt`).
//! let key = ClientKey::generate()?;
//! println!("{}", key.jwks());
//!
//! // Then: assertions signed with it (aud = the token endpoint URL, or the issuer with
//! // `.with_audience(..)`), a new one for every request.
//! let key = ClientKey::from_pkcs8(&stored_pkcs8)?.with_audience("https://auth.example.com");
//! let http = reqwest::Client::new();
//! let endpoints = Endpoints::discover(&http, "https://auth.example.com").await?;
//! let source = TokenSource::new(http, endpoints, Credentials::private_key_jwt("my-client", key));
//! let token = source.token("https://api.example.com/", Some("read")).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod assertion;
mod auth_code;
mod dpop;
mod error;
mod jose;
mod refresh;
mod source;

pub use assertion::ClientKey;
pub use auth_code::AuthorizationRequest;
pub use dpop::DpopKey;
pub use error::Error;
pub use refresh::{RefreshSession, RefreshStore};
pub use source::{
    delegate, AccessToken, AudienceParam, AuthMethod, Credentials, Endpoints, TokenSource,
    TokenType,
};

/// `n` random bytes from the OS, base64url without padding.
pub(crate) fn random(n: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).expect("the OS random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
