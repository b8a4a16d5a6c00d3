//! Human passwords: argon2id (RFC 9106) with the argon2 crate's defaults (19 MiB, 2 passes),
//! hashed and verified on the blocking pool so a login never stalls the async workers, and at
//! most one per core at a time ([`off_the_workers`]).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;

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
    off_the_workers(move || {
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

/// [`hash`], off the async workers.
pub async fn hash_off_the_workers(password: String) -> anyhow::Result<String> {
    off_the_workers(move || hash(&password))
        .await
        .ok_or_else(|| anyhow::anyhow!("the password hashing task failed"))?
}

/// Runs `work` (an argon2 hash or verification) on the blocking pool, at most one per core at
/// a time; `None` if it panicked. Each takes 19 MiB and a core's whole time, so running more
/// at once finishes none sooner and only adds memory: unbounded, a burst of 32 sign-ins held
/// over 600 MiB, and a flood of login attempts could exhaust the host's memory.
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| Semaphore::new(cores()));
    let _permit = permits.acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// However many sign-ins arrive at once, no more than one hash per core runs at a time,
    /// and every one of them is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_one_hash_per_core_runs_at_once() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..cores() * 4 + 3)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(off_the_workers(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                }))
            })
            .collect();
        let mut answered = Vec::new();
        for t in tasks {
            answered.push(t.await.unwrap().unwrap());
        }
        assert_eq!(answered, (0..cores() * 4 + 3).collect::<Vec<_>>());
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= cores(),
            "{most} hashes ran at once on {} cores",
            cores()
        );
        assert!(most >= cores().min(2), "the hashes ran one at a time");
    }
}
