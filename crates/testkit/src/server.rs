//! [`TestServer`]: the real application (`calyx_server::Application`) in-process, bound to
//! 127.0.0.1 port 0, on a database of its own, served by a tokio task that stops when the
//! server is dropped.
//!
//! This module is the only place in the test suites that knows the server's configuration
//! type: tests change what they need through [`Config`].

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;

use calyx_server::clock::OffsetClock;
use calyx_server::manage::{Manager, Secrets};
use calyx_server::Application;

use crate::database;
use crate::endpoint::Endpoint;
use crate::fixture::Fixture;
use crate::traffic;

/// The pepper every test server hashes secrets with.
const PEPPER: &str = "test-pepper";

/// What a test may change about its server: the server's own [`calyx_server::Config`]
/// (through `Deref`, so `cfg.client_rate_limit = 2` reads as it would in production), plus
/// where the test runs. The defaults are the server's own, except for a free port, a small
/// database pool (many servers run at once in one test binary) and a fixed pepper.
#[derive(Debug, Clone)]
pub struct Config {
    /// Run on PostgreSQL when `CALYX_TEST_DATABASE_URL` names a server (the default); when
    /// false, always on SQLite.
    pub postgres_from_env: bool,
    /// Record the traffic and capture the server's trace-level log into this directory, for
    /// the secret scan (see [`crate::traffic`]).
    pub record_into: Option<PathBuf>,
    /// Serve this database instead of a fresh one: another node of the server that uses it.
    pub node_of: Option<String>,
    server: calyx_server::Config,
}

impl Default for Config {
    fn default() -> Self {
        let mut server = calyx_server::Config::new("");
        server.listen = "127.0.0.1:0".parse().unwrap();
        server.db_max_connections = Some(4);
        server.pepper = Some(PEPPER.into());
        Config {
            postgres_from_env: true,
            record_into: None,
            node_of: None,
            server,
        }
    }
}

impl Deref for Config {
    type Target = calyx_server::Config;

    fn deref(&self) -> &calyx_server::Config {
        &self.server
    }
}

impl DerefMut for Config {
    fn deref_mut(&mut self) -> &mut calyx_server::Config {
        &mut self.server
    }
}

impl Config {
    /// The server's configuration for `database_url`, answering as `issuer` when set.
    fn server(&self, database_url: &str, issuer: Option<String>) -> calyx_server::Config {
        let mut server = self.server.clone();
        server.database_url = database_url.to_owned();
        server.issuer = issuer.or(server.issuer);
        server
    }
}

/// A running application with its own database. Dereferences to the [`Endpoint`] that
/// clients use (`base`, `http` and the typed requests).
pub struct TestServer {
    endpoint: Endpoint,
    /// The server's own socket, for tests about connections themselves (the base URL goes
    /// through the recording proxy when there is one).
    pub direct: std::net::SocketAddr,
    /// Provisioning and direct store access, on the server's own store.
    pub manager: Manager,
    /// The server's clock: tests move it to expire codes, tokens and grace periods.
    pub clock: OffsetClock,
    /// The test's directory (the SQLite file lives here).
    pub dir: tempfile::TempDir,
    /// The database the server uses.
    pub database_url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Deref for TestServer {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl TestServer {
    /// A server with the default [`Config`].
    pub async fn spawn() -> TestServer {
        Self::spawn_with(|_| {}).await
    }

    /// A server on SQLite whatever `CALYX_TEST_DATABASE_URL` says (the client and guard suites).
    pub async fn spawn_sqlite() -> TestServer {
        Self::spawn_with(|cfg| cfg.postgres_from_env = false).await
    }

    /// A server with the defaults changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut cfg = Config::default();
        configure(&mut cfg);
        let dir = tempfile::tempdir().unwrap();
        let database_url = if let Some(url) = &cfg.node_of {
            url.clone()
        } else if cfg.postgres_from_env {
            database::test_database(dir.path()).await
        } else {
            database::sqlite_url(dir.path())
        };
        // With recording, clients reach the server through a recording proxy, and the
        // server's public address is the proxy's.
        let proxy = match &cfg.record_into {
            Some(into) => {
                traffic::capture_server_logs(into);
                Some(traffic::Proxy::bind(into).await)
            }
            None => None,
        };
        let raw = cfg.server(
            &database_url,
            proxy.as_ref().map(|p| format!("http://{}", p.addr())),
        );
        let secrets = Secrets {
            pepper: raw.pepper.clone(),
            master_key: raw.master_key.clone(),
        };
        let clock = OffsetClock::new();
        let app = Application::build_with_clock(raw.validate().unwrap(), Arc::new(clock.clone()))
            .await
            .expect("the application builds");
        let direct = app.local_addr();
        let base = app.issuer().to_owned();
        if let Some(proxy) = proxy {
            proxy.start(direct);
        }
        let store = app.state().store.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let manager = Manager::with_store(store, &secrets, Arc::new(clock.clone()))
            .await
            .unwrap();
        TestServer {
            endpoint: Endpoint::new(base),
            direct,
            manager,
            clock,
            dir,
            database_url,
            _shutdown: tx,
        }
    }

    /// The issuer (the base URL clients use).
    pub fn issuer(&self) -> &str {
        &self.endpoint.base
    }

    /// An admin client with `admin:read admin:write` and a token for it.
    pub async fn admin(&self) -> crate::Admin {
        self.admin_with("admin:read admin:write").await
    }

    /// An admin client with `scopes` and a token for it.
    pub async fn admin_with(&self, scopes: &str) -> crate::Admin {
        crate::Admin::create(&self.manager, &self.endpoint, scopes).await
    }

    /// Provisioning with defaults on this server's database.
    pub fn fixture(&self) -> Fixture<'_> {
        Fixture::new(&self.manager)
    }

    /// Every byte the database holds: its files for SQLite, a `pg_dump` for PostgreSQL.
    pub fn database_bytes(&self) -> Vec<(String, Vec<u8>)> {
        database::database_bytes(&self.database_url, self.dir.path())
    }
}
