//! Time as a dependency, so that expiry is testable without sleeping. Core never reads a
//! clock: the server passes `now` in, from an implementation of [`Clock`] (the system clock,
//! or one a test moves forward).

/// A source of the current time, in whole seconds since the Unix epoch (the unit of JWT
/// `iat`/`exp` and of every expiry Calyx stores).
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}
