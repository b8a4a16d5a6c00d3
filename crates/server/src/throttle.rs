//! Failure throttling, one type for every block list: a governor limiter counts failures per
//! key, and a key over its quota is blocked for a fixed time (kept in a moka cache that
//! forgets it afterwards). What a block means — a 429, or refusing without checking — is the
//! caller's to decide. Per node, like every limiter here (docs/deploy.md).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use moka::sync::Cache;

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Failures per key, and the keys blocked for having too many.
pub struct Throttle {
    failures: KeyedLimiter,
    blocked: Cache<String, i64>,
    block_secs: i64,
}

impl Throttle {
    /// At most `per_minute` failures a minute per key; past that the key is blocked for
    /// `block_secs`.
    pub fn new(per_minute: NonZeroU32, block_secs: i64) -> Throttle {
        Throttle {
            failures: RateLimiter::keyed(Quota::per_minute(per_minute)),
            blocked: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(block_secs.max(1) as u64 * 2))
                .build(),
            block_secs,
        }
    }

    /// Seconds `key` is still blocked at `now`, if it is.
    pub fn blocked_for(&self, key: &str, now: i64) -> Option<i64> {
        self.blocked
            .get(key)
            .map(|until| until - now)
            .filter(|s| *s > 0)
    }

    /// Counts a failure of `key`. When that takes it over its quota it is blocked (an
    /// existing block is not extended). Returns the seconds it is blocked for, if it is.
    pub fn fail(&self, key: &str, now: i64) -> Option<i64> {
        self.fail_and_tell(key, now).0
    }

    /// As [`Throttle::fail`], also saying whether this failure started the block (the
    /// moment worth an audit event: one per block, not one per failure).
    pub fn fail_and_tell(&self, key: &str, now: i64) -> (Option<i64>, bool) {
        let key = key.to_owned();
        let mut started = false;
        if self.failures.check_key(&key).is_err() && self.blocked_for(&key, now).is_none() {
            self.blocked.insert(key.clone(), now + self.block_secs);
            started = true;
        }
        (self.blocked_for(&key, now), started)
    }

    /// Forgets the failure counts of keys that have been quiet (the reload task calls it).
    pub fn retain_recent(&self) {
        self.failures.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_past_its_quota_and_the_block_is_not_extended() {
        let t = Throttle::new(NonZeroU32::new(3).unwrap(), 60);
        for _ in 0..3 {
            assert_eq!(t.fail("k", 1000), None);
        }
        assert_eq!(t.fail("k", 1000), Some(60));
        assert_eq!(t.fail("k", 1010), Some(50), "not extended");
        assert_eq!(t.blocked_for("k", 1059), Some(1));
        assert_eq!(t.blocked_for("k", 1060), None);
        assert_eq!(t.blocked_for("other", 1000), None);
    }
}
