//! High-entropy secrets (client secrets, refresh tokens, codes) and their keyed hashes.
//!
//! A secret is 256 bits from the OS CSPRNG, base64url without padding (43 characters). It is
//! stored only as HMAC-SHA256 under a server pepper: a leaked database then reveals nothing
//! usable, and since the secret is random a slow password hash would add cost without
//! adding safety (argon2id is for human passwords). Comparison is constant-time.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `n` random bytes from the OS CSPRNG, base64url-encoded.
pub fn random_string(n_bytes: usize) -> String {
    let mut buf = vec![0u8; n_bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// `len` characters of `[0-9A-Za-z]` from the OS CSPRNG (rejection sampling, so every
/// character is equally likely). For public identifiers such as client ids, which must be safe
/// on a command line (never starting with `-`) and in URLs without escaping.
pub fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf)
            .expect("the OS random number generator failed");
        // 248 = 4 * 62: bytes at or above it would bias the first characters.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(*b % 62) as usize] as char);
        }
    }
    out
}

/// A new 256-bit secret.
pub fn generate_secret() -> String {
    random_string(32)
}

/// An opaque id with a readable prefix, e.g. `org_3hT...` (128 random bits).
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_string(16))
}

/// Hashes and verifies secrets under the server pepper.
#[derive(Clone)]
pub struct SecretHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher([redacted])")
    }
}

impl SecretHasher {
    /// A hasher keyed with `pepper`.
    pub fn new(pepper: &[u8]) -> Self {
        SecretHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper),
        }
    }

    /// The keyed hash of a secret.
    pub fn hash(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.key, secret.as_bytes()).as_ref().to_vec()
    }

    /// A 32-byte key for another purpose, derived from the pepper (HMAC with a label), so
    /// one configured secret keys everything without reusing a key across purposes.
    pub fn derive_key(&self, label: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.key, label).as_ref());
        out
    }

    /// True when `secret` hashes to `expected`, compared in constant time.
    pub fn verify(&self, secret: &str, expected: &[u8]) -> bool {
        hmac::verify(&self.key, secret.as_bytes(), expected).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bits_and_url_safe() {
        let s = generate_secret();
        assert_eq!(s.len(), 43);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(s, generate_secret());
    }

    #[test]
    fn alphanumeric_ids_have_the_length_and_alphabet_asked_for() {
        for _ in 0..200 {
            let id = random_alphanumeric(24);
            assert_eq!(id.len(), 24);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn hash_verifies_only_the_same_secret_under_the_same_pepper() {
        let h = SecretHasher::new(b"pepper");
        let tag = h.hash("s3cret");
        assert!(h.verify("s3cret", &tag));
        assert!(!h.verify("s3cres", &tag));
        assert!(!SecretHasher::new(b"other").verify("s3cret", &tag));
    }
}
