//! # calyx-testkit
//!
//! What the test suites of the server, the client, the guard and the CLI share, so that each
//! test says only what it is about:
//!
//! - [`server`]: [`TestServer`], the real application in-process on port 0 with a fresh
//!   database (SQLite, or PostgreSQL when `CALYX_TEST_DATABASE_URL` names a server), and the
//!   one place that knows the server's configuration type.
//! - [`fixture`]: an organization, API, client, grant and user with defaults; a test names
//!   only what differs.
//! - [`admin`]: the management API with an admin client's token.
//! - [`endpoint`]: typed requests (token, exchange, refresh, introspection, JWKS checks).
//! - [`jose`]: DPoP proofs and client assertions made with an independent JOSE library.
//! - [`browser`]: a user agent with a cookie jar that signs in and consents on the pages.
//! - [`receiver`]: a webhook receiver that records, fails on demand and checks signatures.
//! - [`process`]: the `calyx` binary as a child process (`calyx serve`, provisioning commands).
//! - [`wait`]: [`eventually`], for changes that reach a server within its reload interval.
//! - [`traffic`] and [`scan`]: the secret scan — recorded traffic, captured logs, and the one
//!   scanner that looks for secrets in them (also used by the soak driver).
//! - [`database`]: fresh databases per test.
//!
//! The load drivers of `bench/` are this crate's binaries (`src/bin/`).
#![warn(missing_docs)]

pub mod admin;
pub mod browser;
pub mod database;
pub mod endpoint;
pub mod fixture;
pub mod jose;
pub mod process;
pub mod receiver;
pub mod scan;
pub mod server;
pub mod traffic;
pub mod wait;

pub use admin::Admin;
pub use browser::{authorize_url, html_text, location_params, param, sign_in, Browser, Page};
/// The clocks a test reads or moves (the server's own).
pub use calyx_server::clock::{OffsetClock, SystemClock};
pub use endpoint::{basic, jwt_parts, kid_of, Endpoint};
pub use fixture::{unique, Fixture, Provisioned, PASSWORD, REDIRECT};
pub use process::{Calyx, ServeProcess};
pub use receiver::Receiver;
pub use scan::Scanner;
pub use server::{Config, TestServer};
pub use wait::{eventually, SOON};
