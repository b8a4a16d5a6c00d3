//! [`eventually`]: polls a check until it holds, for changes that reach a running server
//! within its reload interval (100 ms in tests) or by an on-demand reload.

use std::future::Future;
use std::time::{Duration, Instant};

/// What a check of [`eventually`] answers: `bool` (done or not), or `Option<T>` (done with a
/// value).
pub trait Settled {
    /// What [`eventually`] returns once the check is done.
    type Value;
    /// `Some` once done.
    fn settled(self) -> Option<Self::Value>;
}

impl Settled for bool {
    type Value = ();
    fn settled(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Settled for Option<T> {
    type Value = T;
    fn settled(self) -> Option<T> {
        self
    }
}

/// How long tests give a change to reach a running server: many reload intervals.
pub const SOON: Duration = Duration::from_secs(5);

/// How often [`eventually`] checks.
const EVERY: Duration = Duration::from_millis(50);

/// Runs `check` every 50 ms until it is done, and returns its value; panics with "timed out
/// waiting for: `what`" once `within` has passed.
pub async fn eventually<F, Fut>(
    within: Duration,
    what: &str,
    mut check: F,
) -> <Fut::Output as Settled>::Value
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Settled,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await.settled() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(EVERY).await;
    }
}
