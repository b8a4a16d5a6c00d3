//! Private keys at rest: sealed with AES-256-GCM under a master key when one is configured.
//!
//! Sealed form: `b"CXS1" || nonce (12) || ciphertext || tag (16)`. Anything without the prefix
//! is taken as plain PKCS#8, so a deployment can add a master key later: new keys are sealed
//! and old ones stay readable.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;

const MAGIC: &[u8] = b"CXS1";

/// Why sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The master key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadMasterKey,
    /// The stored key is sealed but no master key is configured.
    #[error("a signing key is sealed but no master key is configured (set CALYX_MASTER_KEY)")]
    NoMasterKey,
    /// Wrong master key or corrupted data.
    #[error("a sealed signing key could not be opened: wrong master key or corrupted data")]
    Open,
}

/// Seals and opens private keys.
#[derive(Default)]
pub struct Sealer {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("enabled", &self.key.is_some())
            .finish()
    }
}

impl Sealer {
    /// A sealer from a base64 master key, or one that stores keys in the clear.
    pub fn new(master_key_b64: Option<&str>) -> Result<Sealer, SealError> {
        let Some(b64) = master_key_b64 else {
            return Ok(Sealer { key: None });
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| SealError::BadMasterKey)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| SealError::BadMasterKey)?;
        Ok(Sealer {
            key: Some(LessSafeKey::new(unbound)),
        })
    }

    /// A sealer with a raw 32-byte key (for short-lived web state derived from the pepper).
    pub fn from_key(key: &[u8; 32]) -> Sealer {
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("32 bytes is an AES-256 key");
        Sealer {
            key: Some(LessSafeKey::new(unbound)),
        }
    }

    /// Seals `plain` (or returns it unchanged without a master key).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let Some(key) = &self.key else {
            return plain.to_vec();
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the OS random number generator failed");
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(MAGIC),
            &mut buf,
        )
        .expect("AES-GCM sealing cannot fail for in-memory buffers");
        [MAGIC, &nonce, &buf].concat()
    }

    /// Opens what [`Sealer::seal`] produced, or passes plain PKCS#8 through.
    pub fn open(&self, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(stored.to_vec());
        };
        let key = self.key.as_ref().ok_or(SealError::NoMasterKey)?;
        if rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(MAGIC), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn round_trip_and_wrong_key() {
        let s = Sealer::new(Some(MK)).unwrap();
        let sealed = s.seal(b"pkcs8");
        assert_ne!(&sealed[..], b"pkcs8");
        assert_eq!(s.open(&sealed).unwrap(), b"pkcs8");
        assert!(matches!(
            Sealer::new(None).unwrap().open(&sealed),
            Err(SealError::NoMasterKey)
        ));
        let other = Sealer::new(Some("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::Open)));
        assert!(Sealer::new(Some("short")).is_err());
    }
}
