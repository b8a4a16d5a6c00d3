//! `calyx serve`: run the server; with `--dev`, first provision a demo org, API and client, a
//! demo operator (console) and organization admin (portal), and print a ready-to-paste token
//! request.

use anyhow::bail;
use calyx_core::model::{ClientType, GrantType, Role, SigningAlg};
use calyx_server::manage::OPERATOR_ORG_ID;
use calyx_server::manage::{ManageError, Manager, NewApi, NewClient, NewUser, ScopeList};
use calyx_server::{Application, Config};

use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Provision a demo organization, API and client, and print their credentials.
    #[arg(long)]
    dev: bool,
    /// Boxed: the largest of the commands' arguments by far.
    #[command(flatten)]
    config: Box<Config>,
}

impl Args {
    /// The server's settings as given (main reads the log format and the OTLP endpoint before
    /// the runtime starts).
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The demo API's audience.
const DEMO_AUDIENCE: &str = "https://api.example.com/";
const DEMO_CLIENT_ID: &str = "demo-m2m";
const DEMO_USERNAME: &str = "demo";
/// The demo operator (the console) and organization admin (the developer portal).
const DEMO_OPERATOR: &str = "operator";
const DEMO_DEVELOPER: &str = "developer";
const DEMO_SCOPES: &[(&str, &str)] = &[
    ("read:consumers", "Read your consumers' profiles"),
    ("write:consumers", "Create and change consumers"),
    ("read:credit.score", "Read consumers' credit scores"),
];

pub async fn run(g: &Global, a: Args) -> anyhow::Result<()> {
    if a.dev && !a.config.listen.ip().is_loopback() {
        bail!(
            "--dev serves on loopback only; drop --dev to listen on {}",
            a.config.listen
        );
    }
    let mut config = *a.config;
    config.database_url = g.database_url.clone();
    config.master_key = g.master_key.clone();
    config.pepper = g.pepper.clone();
    let settings = config.validate()?;

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
    operator_password: String,
    developer_password: String,
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
            scope_descriptions: DEMO_SCOPES
                .iter()
                .map(|(s, d)| (s.to_string(), d.to_string()))
                .collect(),
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
        m.rotate_secret(DEMO_CLIENT_ID, 0).await?.1
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
    // An existing grant (an earlier start's, or the operator's change to it) stays as it is.
    match m
        .create_grant(
            DEMO_CLIENT_ID,
            DEMO_AUDIENCE,
            "read:consumers write:consumers read:credit.score users:write users:authenticate",
            true,
        )
        .await
    {
        Ok(_) | Err(ManageError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let org_id = org_id_of_demo(m).await?;
    let demo_scopes = [(DEMO_AUDIENCE, "read:consumers read:credit.score")];
    let password = demo_user(m, &org_id, DEMO_USERNAME, None, &demo_scopes).await?;
    // The developer portal may grant the Demo Org's apps what it is entitled to (an
    // operator's later change to it stays).
    if m.store.entitlements(&org_id).await?.is_empty() {
        let entitled = ScopeList::Words("read:consumers write:consumers read:credit.score".into());
        m.set_entitlement(&org_id, DEMO_AUDIENCE, &entitled).await?;
    }
    let developer_password =
        demo_user(m, &org_id, DEMO_DEVELOPER, Some(Role::OrgAdmin), &[]).await?;
    m.ensure_operator_org().await?;
    let operator_password =
        demo_user(m, OPERATOR_ORG_ID, DEMO_OPERATOR, Some(Role::Operator), &[]).await?;
    Ok(Demo {
        client_id: DEMO_CLIENT_ID.into(),
        secret,
        password,
        operator_password,
        developer_password,
    })
}

/// A demo user of `org_id` with a fresh password (returned), created on the first start.
async fn demo_user(
    m: &Manager,
    org_id: &str,
    username: &str,
    role: Option<Role>,
    scopes: &[(&str, &str)],
) -> anyhow::Result<String> {
    let password = calyx_token::secret::random_string(12);
    let existing = m.store.users_by_username(username).await?;
    match existing.into_iter().find(|u| u.org_id == org_id) {
        Some(u) => {
            m.store
                .set_password(&u.id, &calyx_server::passwords::hash(&password)?)
                .await?;
        }
        None => {
            m.create_user(NewUser {
                org_id: org_id.into(),
                username: Some(username.into()),
                password: Some(password.clone()),
                scopes: scopes
                    .iter()
                    .map(|(a, s)| (a.to_string(), s.to_string()))
                    .collect(),
                role,
                ..NewUser::default()
            })
            .await?;
        }
    }
    Ok(password)
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
    let (operator, developer) = (&d.operator_password, &d.developer_password);
    println!(
        "\nCalyx dev server — demo credentials (new secrets on every start)\n\
         \n  issuer         {base}\
         \n  audience       {DEMO_AUDIENCE}\
         \n  client_id      {client_id}\
         \n  client_secret  {secret}\
         \n  user           {DEMO_USERNAME} / {password}  (for the sign-in page)\
         \n  console        {base}/console/     {DEMO_OPERATOR} / {operator}\
         \n  portal         {base}/developers/  {DEMO_DEVELOPER} / {developer}\
         \n  guide          {base}/developers/docs\
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
