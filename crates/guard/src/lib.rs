//! # calyx-guard
//!
//! What an API needs to accept Calyx access tokens: validate `Authorization: Bearer <jwt>`
//! offline against the issuer's JWKS, accept DPoP-bound tokens with `Authorization: DPoP <jwt>`
//! and a proof of their key (RFC 9449) and certificate-bound tokens with the client
//! certificate of the mutual-TLS connection (RFC 8705 §3), and answer per RFC 6750 and
//! RFC 9449 §7.
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
//! - Mutual TLS (RFC 8705 §3): a token whose `cnf.x5t#S256` names a client certificate's
//!   SHA-256 thumbprint is only accepted on a request that carries that certificate. The guard
//!   does not see TLS, so the resource server hands it over: put a [`ClientCertificate`] (the
//!   DER of the end-entity certificate its TLS stack verified, e.g. the first of rustls'
//!   `peer_certificates()`) into the extensions of each request of the connection, in the
//!   accept loop; behind a TLS-terminating proxy, from what the proxy forwards, at your own
//!   risk (see [`ClientCertificate`]). Without the layer, pass it to
//!   [`Guard::validate_with_certificate`] or [`Guard::validate_dpop_with_certificate`]. No
//!   certificate, another certificate, or an `x5t#S256` that is not the unpadded base64url of
//!   a SHA-256 hash is 401 `invalid_token`, in the challenge of the scheme used; the thumbprint
//!   is compared in constant time. A token bound to a DPoP key and a certificate needs both the
//!   proof and the certificate. The thumbprint is read when the token is first verified and
//!   cached with it, like `cnf.jkt`, and a token without it does not look for a certificate.
//!   See [`mtls`].
//! - [`GuardLayer`] is a tower layer that rejects requests without a valid token (and, with
//!   [`GuardLayer::require_scopes`], without the route's scopes) and puts the [`Verified`]
//!   token in the request extensions; [`Authenticated`] is the axum extractor for it,
//!   [`Verified::jkt`] tells a handler whether the caller proved possession of a key, and
//!   [`Verified::x5t_s256`] whether it presented the certificate the token is bound to.
//!   [`Guard::authorize`] is the same check for a request's parts, without the layer.
//! - Refusals ([`Refusal`]: a [`GuardError`] and the [`Scheme`] the request used) carry the
//!   `WWW-Authenticate` challenge of that scheme: `Bearer` errors with a bare `DPoP` challenge
//!   beside (`DPoP realm="api", algs="ES256 EdDSA RS256 PS256"`), `DPoP` errors
//!   (`invalid_token`, `invalid_dpop_proof`, `insufficient_scope`) in the `DPoP` challenge
//!   alone, and both challenges without an error when there were no credentials (RFC 9449
//!   §7.2).
//! - Optional introspection (RFC 7662) for routes that must honour revocation at once; a
//!   `cnf.jkt` or `cnf.x5t#S256` in its answer binds the token as one in the token would
//!   (RFC 9449 §6.2, RFC 8705 §3.2), and one that differs from the token's is refused.
//!
//! This crate depends on no Calyx crate but calyx-token (for the DPoP proof checks, which the
//! authorization server shares) and never on the server or the store: it works against any
//! RFC 9068 issuer.
#![warn(missing_docs)]

pub mod dpop;
mod error;
mod guard;
mod layer;
pub mod mtls;

pub use dpop::DpopConfig;
pub use error::{GuardError, Refusal, Scheme};
pub use guard::{Guard, GuardConfig, Introspection, Verified};
pub use layer::{Authenticated, GuardLayer, GuardService};
pub use mtls::ClientCertificate;
