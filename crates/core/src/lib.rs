//! # calyx-core
//!
//! The OAuth 2.0 protocol as Calyx speaks it, with no IO: typed token-request parameters
//! (RFC 6749 §4.4, §3.2), client authentication extraction (§2.3.1), scopes (§3.3), the
//! RFC error codes (§5.2), the domain model, the grant decisions, and the storage and clock
//! traits that the server and the store crates implement.
//!
//! Nothing in this crate opens a socket, a file or a database; the server turns HTTP into the
//! types here, and the store persists them.
#![warn(missing_docs)]

pub mod audit;
pub mod authorize;
pub mod client_auth;
pub mod clock;
pub mod error;
pub mod grant;
pub mod model;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod request;
pub mod scope;
pub mod store;

pub use error::{ErrorCode, OAuthError};
pub use scope::ScopeSet;
