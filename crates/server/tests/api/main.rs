//! Black-box tests: each test starts the real application on port 0 with a fresh database and
//! talks HTTP to it.

mod helpers;
#[path = "../traffic.rs"]
mod traffic;

mod authorization_code;
mod client_credentials;
mod concurrency;
mod errors;
mod ops;
mod rate_limits;
mod rotation;
mod slow_clients;
mod third_party_client;
mod users;
