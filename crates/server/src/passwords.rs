//! Human passwords: argon2id (RFC 9106) with the argon2 crate's defaults (19 MiB, 2 passes),
//! hashed and verified on the blocking pool so a login never stalls the async workers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// A PHC-format argon2id hash of `password`.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("the OS random generator failed"))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
        .to_string())
}

/// A fixed hash to verify against when the user does not exist, so that the answer takes as
/// long for an unknown username as for a wrong password.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password for unknown users").expect("hashing the decoy"))
}

/// Verifies `password` against `stored` (or against a decoy when there is none), off the
/// async workers. True only for a real hash that matches.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| decoy().to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real
    })
    .await
    .unwrap_or(false)
}
