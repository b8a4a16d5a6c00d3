//! PKCE (RFC 7636). Only `S256` is accepted: `plain` offers no protection when the
//! authorization request can be observed, and RFC 9700 §2.1.1 says not to use it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::OAuthError;

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`. The same rule bounds challenges.
fn well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks the `/authorize` PKCE parameters; returns the challenge to store, if any.
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    required: bool,
) -> Result<Option<String>, OAuthError> {
    match (challenge, method) {
        (None, None) if required => Err(OAuthError::invalid_request(
            "code_challenge is required for public clients (PKCE, RFC 7636, method S256)",
        )),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), m) if m != Some("S256") => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256 (plain is not accepted)",
        )),
        (Some(c), _) if !well_formed(c) => Err(OAuthError::invalid_request(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        )),
        (Some(c), _) => Ok(Some(c.to_owned())),
    }
}

/// True when `verifier` is well formed and `BASE64URL(SHA256(verifier)) == challenge`,
/// compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    if !well_formed(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(verifier, challenge));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
        assert!(!verify("short", challenge));
    }

    #[test]
    fn challenge_rules() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_challenge(Some(c), Some("S256"), true)
            .unwrap()
            .is_some());
        assert!(check_challenge(None, None, false).unwrap().is_none());
        assert!(check_challenge(None, None, true).is_err());
        assert!(check_challenge(Some(c), Some("plain"), false).is_err());
        assert!(check_challenge(Some(c), None, false).is_err());
        assert!(check_challenge(Some("short"), Some("S256"), false).is_err());
    }
}
