//! # calyx-guard
//!
//! What an API needs to accept Calyx access tokens: validate
//! `Authorization: Bearer <jwt>` offline against the issuer's JWKS, and answer per RFC 6750.
//!
//! - [`Guard`] validates: the `alg` is on the allow-list (never `none`), `typ` is `at+jwt`
//!   (RFC 9068), the `kid` is in the JWKS (an unknown `kid` triggers a refetch, at most one per
//!   [`GuardConfig::min_refetch_interval`], so garbage tokens cannot hammer the issuer), the
//!   signature, `iss`, `aud`, `exp` and `nbf` (with a small leeway). Verified tokens are cached
//!   by the SHA-256 of the token until they expire, so a repeat costs a hash and a lookup.
//! - [`GuardLayer`] is a tower layer that rejects requests without a valid token (and, with
//!   [`GuardLayer::require_scopes`], without the route's scopes) and puts the [`Verified`]
//!   token in the request extensions; [`Authenticated`] is the axum extractor for it.
//! - Optional introspection (RFC 7662) for routes that must honour revocation at once.
//!
//! This crate depends on no other Calyx crate: it works against any RFC 9068 issuer.
#![warn(missing_docs)]

mod error;
mod guard;
mod layer;

pub use error::GuardError;
pub use guard::{Guard, GuardConfig, Introspection, Verified};
pub use layer::{Authenticated, GuardLayer, GuardService};
