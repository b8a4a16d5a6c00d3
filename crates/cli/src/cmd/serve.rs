//! `calyx serve`: run the server; with `--dev`, first provision a demo org, API and client and
//! print a ready-to-paste token request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use calyx_core::model::{ClientType, GrantType, SigningAlg};
use calyx_server::manage::{Manager, NewApi, NewClient, NewUser};
use calyx_server::{Application, RawConfig, Settings};

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CALYX_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Public base URL, as it appears in tokens' `iss` [default: http(s)://LISTEN].
    #[arg(long, env = "CALYX_ISSUER")]
    issuer: Option<String>,
    /// Provision a demo organization, API and client, and print their credentials.
    #[arg(long)]
    dev: bool,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "CALYX_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CALYX_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback issuer or address (client secrets would cross the
    /// network unencrypted).
    #[arg(long)]
    insecure_http: bool,
    /// Token requests per second allowed per client (0 = unlimited).
    #[arg(long, env = "CALYX_CLIENT_RATE_LIMIT", default_value_t = 0)]
    client_rate_limit: u32,
    /// How often to pick up changes made by the CLI or other nodes, milliseconds: a secret
    /// rotated without grace or a retired key stops working on this node within it.
    #[arg(long, env = "CALYX_RELOAD_INTERVAL_MS", default_value_t = 100)]
    reload_interval_ms: u64,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "CALYX_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    max_body_bytes: usize,
    /// Seconds a client has to send a request's whole body.
    #[arg(long, env = "CALYX_BODY_READ_TIMEOUT", default_value_t = 10)]
    body_read_timeout: u64,
    /// Seconds a client has to send a request's headers (or finish a TLS handshake); idle
    /// keep-alive connections are closed after the same time.
    #[arg(long, env = "CALYX_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Open connections at most; more wait in the listen backlog.
    #[arg(long, env = "CALYX_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// SQLite durability: `full` fsyncs every commit (survives power loss); `normal` fsyncs at
    /// WAL checkpoints (survives a crash of Calyx, may lose the last commits on power loss).
    #[arg(long, env = "CALYX_SQLITE_SYNCHRONOUS", default_value = "full", value_parser = ["full", "normal"])]
    sqlite_synchronous: String,
    /// Seconds within which a just-spent refresh token may be presented again and get the
    /// same successor (0 = any reuse revokes the whole family).
    #[arg(long, env = "CALYX_REFRESH_REUSE_LEEWAY", default_value_t = 0)]
    refresh_reuse_leeway: i64,
    /// Largest number of pooled database connections.
    #[arg(long, env = "CALYX_DB_MAX_CONNECTIONS", default_value_t = 8)]
    db_max_connections: u32,
    /// Legacy: also serve `POST /v1/users/authenticate/{user_id}` with
    /// `Authorization: Bearer <client_id>:<client_secret>`, answering the user token as plain
    /// text, for clients written against that older shape. Needs TLS or a loopback address.
    #[arg(long, env = "CALYX_LEGACY_USER_AUTHENTICATE_V1")]
    legacy_user_authenticate_v1: bool,
}

/// The demo API's audience.
const DEMO_AUDIENCE: &str = "https://api.example.com/";
const DEMO_CLIENT_ID: &str = "demo-m2m";
const DEMO_USERNAME: &str = "demo";

pub async fn run(g: &Global, a: Args) -> anyhow::Result<()> {
    if a.dev && !a.listen.ip().is_loopback() {
        bail!(
            "--dev serves on loopback only; drop --dev to listen on {}",
            a.listen
        );
    }
    let mut raw = RawConfig::new(&g.database_url);
    raw.listen = a.listen;
    raw.issuer = a.issuer;
    raw.tls_cert = a.tls_cert;
    raw.tls_key = a.tls_key;
    raw.insecure_http = a.insecure_http;
    raw.client_rate_limit = a.client_rate_limit;
    raw.reload_interval = Duration::from_millis(a.reload_interval_ms.max(50));
    raw.master_key = g.master_key.clone();
    raw.pepper = g.pepper.clone();
    raw.max_body_bytes = a.max_body_bytes;
    raw.body_read_timeout = Duration::from_secs(a.body_read_timeout.max(1));
    raw.header_read_timeout = Duration::from_secs(a.header_read_timeout.max(1));
    raw.max_connections = a.max_connections.max(1);
    raw.db_max_connections = a.db_max_connections;
    raw.sqlite_sync_full = a.sqlite_synchronous == "full";
    raw.refresh_reuse_leeway = a.refresh_reuse_leeway.max(0);
    raw.legacy_user_authenticate_v1 = a.legacy_user_authenticate_v1;
    let settings = Settings::validate(raw)?;

    let demo = if a.dev {
        Some(provision_demo(&super::open(g).await?).await?)
    } else {
        None
    };
    let app = Application::build(settings).await?;
    let base = app.issuer().trim_end_matches('/').to_owned();
    tracing::info!(addr = %app.local_addr(), issuer = %app.issuer(), "calyx listening");
    // Machine-readable for scripts and tests that start on port 0.
    println!("listening on {}", app.local_addr());
    if let Some(demo) = demo {
        print_demo(&base, &demo);
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// What `--dev` prints.
struct Demo {
    client_id: String,
    secret: String,
    password: String,
}

/// Creates the demo records if missing; gives the demo client a fresh secret and the demo
/// user a fresh password every start (both are stored only as hashes, so the old ones cannot
/// be shown again).
async fn provision_demo(m: &Manager) -> anyhow::Result<Demo> {
    let org = match m.store.org_by_name("Demo Org").await? {
        Some(o) => o,
        None => m.create_org("Demo Org").await?,
    };
    if m.store.api_by_audience(DEMO_AUDIENCE).await?.is_none() {
        m.create_api(NewApi {
            audience: DEMO_AUDIENCE.into(),
            name: "Demo API".into(),
            scopes: "read:consumers write:consumers read:credit.score".into(),
            alg: SigningAlg::ES256,
            token_lifetime: None,
            user_token_lifetime: None,
            delegated_token_lifetime: None,
            refresh_token_lifetime: None,
        })
        .await?;
    }
    let secret = if m.store.client(DEMO_CLIENT_ID).await?.is_some() {
        m.rotate_secret(DEMO_CLIENT_ID, 0).await?
    } else {
        let (_, secret) = m
            .create_client(NewClient {
                org_id: org.id,
                client_id: Some(DEMO_CLIENT_ID.into()),
                name: "Demo machine client".into(),
                client_type: ClientType::Confidential,
                grant_types: vec![GrantType::ClientCredentials],
                ..NewClient::default()
            })
            .await?;
        secret.expect("a confidential client has a secret")
    };
    m.create_grant(
        DEMO_CLIENT_ID,
        DEMO_AUDIENCE,
        "read:consumers write:consumers read:credit.score users:write users:authenticate",
        true,
    )
    .await?;
    let password = calyx_token::secret::random_string(12);
    let demo_org = org_id_of_demo(m).await?;
    let existing = m.store.users_by_username(DEMO_USERNAME).await?;
    match existing.into_iter().find(|u| u.org_id == demo_org) {
        Some(u) => {
            m.store
                .set_password(&u.id, &calyx_server::passwords::hash(&password)?)
                .await?;
        }
        None => {
            m.create_user(NewUser {
                org_id: demo_org,
                username: Some(DEMO_USERNAME.into()),
                password: Some(password.clone()),
                scopes: vec![(
                    DEMO_AUDIENCE.into(),
                    "read:consumers read:credit.score".into(),
                )],
                ..NewUser::default()
            })
            .await?;
        }
    }
    Ok(Demo {
        client_id: DEMO_CLIENT_ID.into(),
        secret,
        password,
    })
}

async fn org_id_of_demo(m: &Manager) -> anyhow::Result<String> {
    Ok(m.store
        .org_by_name("Demo Org")
        .await?
        .map(|o| o.id)
        .unwrap_or_default())
}

fn print_demo(base: &str, d: &Demo) {
    let (client_id, secret, password) = (&d.client_id, &d.secret, &d.password);
    println!(
        "\nCalyx dev server — demo credentials (new secrets on every start)\n\
         \n  issuer         {base}\
         \n  audience       {DEMO_AUDIENCE}\
         \n  client_id      {client_id}\
         \n  client_secret  {secret}\
         \n  user           {DEMO_USERNAME} / {password}  (for the sign-in page)\
         \n\nGet a token:\n\
         \n  curl -s {base}/oauth/token \\\
         \n    -d grant_type=client_credentials \\\
         \n    -d client_id={client_id} \\\
         \n    -d client_secret={secret} \\\
         \n    -d audience={DEMO_AUDIENCE}\n"
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
