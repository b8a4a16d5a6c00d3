//! Building and running the application. The binary and the tests go through the same
//! [`Application::build`]: bind (port 0 picks a free port), open and migrate the database,
//! load keys, then serve until a shutdown future resolves.

use anyhow::Context;
use calyx_core::clock::Clock;

use crate::clock::SystemClock;
use calyx_core::model::SigningAlg;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, Settings};
use crate::keys;
use crate::manage::{Actor, BrandingPatch, Manager, Secrets};
use crate::routes;
use crate::state::AppState;

/// A bound, ready-to-serve application.
pub struct Application {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    settings: Settings,
    state: AppState,
    start_seq: i64,
}

impl Application {
    /// Builds with the system clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds with an injected clock (tests move it to expire codes and tokens).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let raw = &settings.config;
        let listener = std::net::TcpListener::bind(raw.listen)
            .with_context(|| format!("binding {}", raw.listen))?;
        listener
            .set_nonblocking(true)
            .context("configuring the listening socket")?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let issuer = settings.issuer_for(addr);

        let secrets = Secrets {
            pepper: raw.pepper.clone(),
            master_key: raw.master_key.clone(),
        };
        let mut opts = calyx_store::ConnectOptions::new(&raw.database_url);
        if let Some(n) = raw.db_max_connections {
            opts.max_connections = n;
        }
        opts.sqlite_sync_full = raw.sqlite_sync_full;
        let store = calyx_store::connect(&opts).await.with_context(|| {
            format!(
                "opening the database {}",
                crate::manage::redact_url(&raw.database_url)
            )
        })?;
        let manager = Manager::with_store(store, &secrets, clock.clone()).await?;
        let start_seq = manager
            .store
            .change_seq()
            .await
            .context("reading the change counter")?;
        let mut algs = vec![SigningAlg::ES256];
        algs.extend(
            manager
                .store
                .apis()
                .await
                .context("reading APIs")?
                .iter()
                .map(|a| a.alg),
        );
        keys::ensure_keys(&*manager.store, &manager.sealer, algs, clock.now()).await?;
        let keyset = keys::load_keyset(&*manager.store, &manager.sealer, clock.now()).await?;

        let mut manager = manager;
        manager.audit_retention = raw.audit_retention_days.saturating_mul(86_400);
        manager.ensure_admin_api().await?;
        apply_brand_flags(&manager, raw).await?;
        let client_cas = settings.tls.as_ref().and_then(|t| t.client_cas.clone());
        let state = AppState::new(manager, issuer, keyset, raw.clone(), client_cas);
        state
            .store
            .observe_rotations(state.metrics.rotation_observer());
        // A weak reference: the gauge must not keep an in-process test's store alive.
        let store = Arc::downgrade(&state.store);
        state
            .metrics
            .observe_pool(move || store.upgrade().map(|s| s.pool_status()).unwrap_or_default());
        Ok(Application {
            listener,
            addr,
            settings,
            state,
            start_seq,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The shared state (tests use it to reach the store).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests (up to 10 s).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let reload = tokio::spawn(crate::reload::run(
            self.state.clone(),
            self.settings.config.reload_interval,
            self.start_seq,
        ));
        let jobs = crate::jobs::spawn(&self.state);
        let app = routes::app(self.state.clone());
        let tls = match &self.settings.tls {
            Some(files) => Some(crate::serve::tls_acceptor(files)?),
            None => None,
        };
        let raw = &self.settings.config;
        let limits = crate::serve::ConnectionLimits {
            max_connections: raw.max_connections,
            header_read_timeout: raw.header_read_timeout,
        };
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let result = crate::serve::serve(listener, tls, app, limits, shutdown)
            .await
            .context("serving HTTP");
        reload.abort();
        for job in jobs {
            job.abort();
        }
        // Counts since the last flush would otherwise be lost with the process.
        crate::usage::flush(&self.state).await;
        result
    }
}

/// Stores the branding given with `--brand-*` flags, when it differs from what is stored (a
/// restart with the same flags records nothing).
async fn apply_brand_flags(manager: &Manager, raw: &Config) -> anyhow::Result<()> {
    let patch = BrandingPatch {
        name: raw.brand_name.clone(),
        logo_url: raw.brand_logo_url.clone(),
        color: raw.brand_color.clone(),
    };
    if patch.name.is_none() && patch.logo_url.is_none() && patch.color.is_none() {
        return Ok(());
    }
    let current = manager.branding().await?;
    let same = patch
        .name
        .as_deref()
        .is_none_or(|n| n.trim() == current.name)
        && patch
            .logo_url
            .as_deref()
            .is_none_or(|l| Some(l.trim()) == current.logo_url.as_deref().or(Some("")))
        && patch
            .color
            .as_deref()
            .is_none_or(|c| c.trim().eq_ignore_ascii_case(&current.color));
    if !same {
        manager
            .acting_as(Actor::calyx(None))
            .update_branding(patch)
            .await
            .context("applying the --brand-* flags")?;
    }
    Ok(())
}
