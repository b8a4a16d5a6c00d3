//! # calyx-server
//!
//! The Calyx HTTP server. HTTP becomes `calyx-core` types here and decisions become responses
//! here; nothing else in the workspace knows a status code.
//!
//! - `config`: every serve setting declared once in [`Config`] (flags, env, defaults) →
//!   validated [`Settings`] (floors, issuer rules, secrets wrapped).
//! - `startup`: [`Application::build`] binds (port 0 in tests), loads keys, and serves until a
//!   shutdown future resolves. The binary and the tests start the app the same way.
//! - `state`: shared state — store, clock, key set, caches, limiters, metrics.
//! - `error`: the one error type and its `IntoResponse` (RFC 6749 §5.2 bodies).
//! - `routes/*`: one file per endpoint, registered in `routes::app`.
//! - `authn`, `dpop`: client authentication (secrets, assertions, certificates) and DPoP
//!   proofs at the token endpoint.
//! - `keys`, `manage`: key rotation and the management layer the CLI and `/admin/v1` share.
//! - `reload`: drops caches and reloads keys when the database changes (PostgreSQL
//!   `LISTEN/NOTIFY`, and a poll of the change counter).
//! - `jobs`, `usage`, `webhooks`: the usage flush, webhook delivery and the scheduled purge.
//! - `metrics`, `telemetry`: Prometheus metrics; the access log and the per-request span.
#![warn(missing_docs)]

mod authn;
mod bearer;
mod client_keys;
pub mod clock;
pub mod config;
mod dpop;
pub mod error;
mod issue;
mod jobs;
pub mod keys;
pub mod manage;
mod metrics;
pub mod mtls;
mod openapi;
mod pages;
pub mod passwords;
mod reload;
mod routes;
mod serve;
mod startup;
mod state;
pub mod telemetry;
mod throttle;
mod usage;
mod web;
mod webhooks;

pub use config::{Config, Settings};
pub use startup::Application;
pub use state::{refresh_tags, web_sealer, AppState};
