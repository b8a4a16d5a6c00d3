//! # calyx-token
//!
//! Access tokens as RFC 9068 JWTs, and the key material behind them.
//!
//! - [`SigningKey`]: a key pair parsed **once** from PKCS#8 and kept in memory. Signing a token
//!   is one `serde_json` serialization, two base64 encodings and one aws-lc-rs signature; the
//!   JWS header is encoded when the key is loaded. (`jsonwebtoken::encode` re-parses the PKCS#8
//!   key on every call, which costs more than the signature itself, so the server signs here and
//!   `jsonwebtoken` is used to *verify*, as an independent implementation, in tests and the guard.)
//! - [`KeySet`]: the keys in force; the newest key of each algorithm signs, all are published.
//! - [`secret`]: random secrets and their keyed hashes (HMAC-SHA256 with a server pepper).
//! - [`seal`]: AES-256-GCM sealing of private keys at rest under a master key.
//! - [`dpop`]: the stateless checks of a DPoP proof (RFC 9449 §4.3) and the key thumbprint a
//!   bound token carries (RFC 7638).
//! - [`assertion`]: a client's registered public keys and the `private_key_jwt` assertions
//!   signed with them (RFC 7523).
#![warn(missing_docs)]

pub mod assertion;
mod claims;
pub mod dpop;
mod keys;
pub mod seal;
pub mod secret;

pub use claims::{AccessClaims, Confirmation};
pub use keys::{KeySet, SigningAlg, SigningKey, TokenError, VerifyError};
