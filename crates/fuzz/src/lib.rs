//! # calyx-fuzz
//!
//! The bodies of Calyx's fuzz targets, one function per target, each taking the fuzzer's raw
//! bytes. They run the real code of the crate that owns the input and **assert properties** of
//! the answer, so a wrong answer is a crash just like a panic:
//!
//! - [`token_request`]: token-endpoint bodies (form and JSON) and the `Authorization` header
//!   through `calyx_core::params`, `client_auth` and the grant decisions (RFC 6749 §2.3.1, §3.2,
//!   §3.3, §5.2).
//! - [`redirect_uri`]: `calyx_core::redirect::resolve` (RFC 6749 §3.1.2).
//! - [`scope`]: `calyx_core::ScopeSet` and the scope decisions (RFC 6749 §3.3).
//! - [`guard_jwt`]: `calyx_guard::Guard::validate`, both on tokens as the fuzzer writes them and
//!   on fuzzed headers and claims that the harness signs with a real key (RFC 9068, RFC 7519).
//!
//! Two drivers call them: `fuzz/fuzz_targets/*.rs` (cargo-fuzz and libFuzzer, nightly, run by
//! `scripts/fuzz`), and `tests/replay.rs`, which runs every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` under plain `cargo test`, so CI replays the corpus on stable.
//! [`seeds`] holds the hand-written seed inputs.
//!
//! The functions are deterministic: no randomness, and wherever an answer depends on the wall
//! clock (token expiry) the property is stated so that it holds whenever the clock is read.
#![warn(missing_docs)]

mod guard_jwt;
mod redirect_uri;
mod scope;
pub mod seeds;
mod token_request;

pub use guard_jwt::guard_jwt;
pub use redirect_uri::redirect_uri;
pub use scope::scope;
pub use token_request::token_request;

/// A target body: takes the fuzzer's bytes, panics when a property fails.
pub type Target = fn(&[u8]);

/// The targets, by the names `fuzz/fuzz_targets/` and the corpus directories use.
pub const TARGETS: [(&str, Target); 4] = [
    ("token_request", token_request),
    ("redirect_uri", redirect_uri),
    ("scope", scope),
    ("guard_jwt", guard_jwt),
];

/// Asserts that `e` is an OAuth error a client may be sent: a code from `allowed`, and a
/// description within RFC 6749 §5.2's `error_description` characters (%x20-21 / %x23-5B /
/// %x5D-7E), which it can only break by echoing the request.
fn assert_rfc_error(e: &calyx_core::OAuthError, allowed: &[calyx_core::ErrorCode], what: &str) {
    assert!(
        allowed.contains(&e.code),
        "{what}: error code {} is not one of {allowed:?}",
        e.code
    );
    assert!(!e.description.is_empty(), "{what}: empty error_description");
    assert!(
        e.description
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "{what}: error_description {:?} has characters RFC 6749 §5.2 does not allow",
        e.description
    );
}
