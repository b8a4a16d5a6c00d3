//! # calyx-guard
//!
//! What an API needs to accept Calyx access tokens: validate `Authorization: Bearer <jwt>`
//! offline against the issuer's JWKS, accept DPoP-bound tokens with `Authorization: DPoP <jwt>`
//! and a proof of their key (RFC 9449), and answer per RFC 6750 and RFC 9449 §7.
//!
//! - [`Guard`] validates: the `alg` is on the allow-list (never `none`), `typ` is `at+jwt`
//!   (RFC 9068), the `kid` is in the JWKS (an unknown `kid` triggers a refetch, at most one per
//!   [`GuardConfig::min_refetch_interval`], so garbage tokens cannot hammer the issuer), the
//!   signature, `iss`, `aud`, `exp` and `nbf` (with a small leeway). Verified tokens are cached
//!   by the SHA-256 of the token until they expire, so a repeat costs a hash and a lookup.
//! - DPoP (RFC 9449): a token whose `cnf.jkt` names a key is only accepted with the `DPoP`
//!   scheme and one `DPoP` header holding a proof made with that key for this request's method
//!   and URI, with `ath` for this token, fresh (`iat`) and not seen before in this process
//!   (`jti`); with the `Bearer` scheme it is refused (§7.2). The URI clients use is
//!   [`GuardConfig::public_origin`] and the request's path (see [`DpopConfig`] for the fallback
//!   when it is not set). The stateless checks of the proof are `calyx_token::dpop::verify`'s;
//!   the request-level rules, the replay record and its per-process limit are in [`dpop`]. A
//!   token without `cnf.jkt` takes the `Bearer` path as before, at the same cost.
//! - [`GuardLayer`] is a tower layer that rejects requests without a valid token (and, with
//!   [`GuardLayer::require_scopes`], without the route's scopes) and puts the [`Verified`]
//!   token in the request extensions; [`Authenticated`] is the axum extractor for it, and
//!   [`Verified::jkt`] tells a handler whether the caller proved possession of a key.
//!   [`Guard::authorize`] is the same check for a request's parts, without the layer.
//! - Refusals ([`Refusal`]: a [`GuardError`] and the [`Scheme`] the request used) carry the
//!   `WWW-Authenticate` challenge of that scheme: `Bearer` errors with a bare `DPoP` challenge
//!   beside (`DPoP realm="api", algs="ES256 EdDSA RS256 PS256"`), `DPoP` errors
//!   (`invalid_token`, `invalid_dpop_proof`, `insufficient_scope`) in the `DPoP` challenge
//!   alone, and both challenges without an error when there were no credentials (RFC 9449
//!   §7.2).
//! - Optional introspection (RFC 7662) for routes that must honour revocation at once; a
//!   `cnf.jkt` in its answer binds the token as one in the token would (RFC 9449 §6.2).
//!
//! This crate depends on no Calyx crate but calyx-token (for the DPoP proof checks, which the
//! authorization server shares) and never on the server or the store: it works against any
//! RFC 9068 issuer.
#![warn(missing_docs)]

pub mod dpop;
mod error;
mod guard;
mod layer;

pub use dpop::DpopConfig;
pub use error::{GuardError, Refusal, Scheme};
pub use guard::{Guard, GuardConfig, Introspection, Verified};
pub use layer::{Authenticated, GuardLayer, GuardService};
