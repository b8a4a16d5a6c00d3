//! The management layer: every change an operator can make — organizations, APIs, clients,
//! grants, users, keys, families, webhooks — and the audit record of it. The CLI and the
//! management API (`/admin/v1`) both call these functions, so the two cannot drift: the same
//! validation, the same audit events, the same errors.
//!
//! Each change is written, then recorded ([`Manager::record`]) with its actor; the record and
//! the webhook deliveries it fans out to commit together (`Audit::append_audit`). Reads page
//! through the store's listings ([`Listing`]).

use std::sync::Arc;

use anyhow::Context;
use calyx_core::audit::AuditEvent;
use calyx_core::clock::Clock;
use calyx_core::model::{Delivery, DeliveryState, Page};
use calyx_core::store::{Store, StoreError};
use calyx_token::seal::Sealer;
use calyx_token::secret::{random_alphanumeric, random_id, random_string, SecretHasher};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;

use crate::clock::SystemClock;

mod apis;
mod audit;
mod clients;
mod families;
mod orgs;
mod people;
mod purge;
mod signing;
mod users;
pub mod views;
mod webhooks;

pub use apis::{ApiPatch, NewApi};
pub use clients::{parse_auth_method, ClientPatch, GrantPatch, NewClient};
pub use orgs::OrgPatch;
pub use people::{
    contrast_with_white, Branding, BrandingPatch, EntitlementView, PORTAL_GRANT_TYPES,
};
pub use signing::KeyInfo;
pub use users::{NewUser, UserPatch};
pub use webhooks::{NewWebhook, WebhookPatch};

/// The audience of the management API, an API every deployment has.
pub const ADMIN_AUDIENCE: &str = "urn:calyx:admin";
/// Reads anything through the management API.
pub const ADMIN_READ: &str = "admin:read";
/// Changes anything through the management API.
pub const ADMIN_WRITE: &str = "admin:write";
/// The organization that owns admin clients (and, later, console operators).
pub const OPERATOR_ORG_ID: &str = "org_calyx_operators";

/// Why a management operation failed: what the CLI prints and what an HTTP API maps to
/// 400, 404 and 409; anything else is the database's or the machine's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The input is not acceptable (the text says why, for the person who gave it).
    #[error("{0}")]
    Invalid(String),
    /// A scope was asked for beyond what is allowed (OAuth's `invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// Something the operation names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It would break a uniqueness rule, or the thing is in use.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (key generation, sealing, a worker that died).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Result of a management operation.
pub type ManageResult<T> = Result<T, ManageError>;

fn invalid<T>(why: impl Into<String>) -> ManageResult<T> {
    Err(ManageError::Invalid(why.into()))
}

fn not_found<T>(what: impl Into<String>) -> ManageResult<T> {
    Err(ManageError::NotFound(what.into()))
}

fn conflict(e: StoreError, what: &str) -> ManageError {
    match e {
        StoreError::Conflict(_) => ManageError::Conflict(format!("{what} already exists")),
        other => ManageError::Store(other),
    }
}

/// Who makes a change, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `cli:<os user>`, `client:<admin client id>`, `org-client:<client id>` or `calyx`.
    pub who: String,
    /// The caller's network address, for changes over HTTP.
    pub address: Option<String>,
}

impl Actor {
    /// Someone at the command line, named by the OS account.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            who: format!("cli:{user}"),
            address: None,
        }
    }

    /// An admin client calling the management API.
    pub fn admin_client(client_id: &str, address: Option<String>) -> Actor {
        Actor {
            who: format!("client:{client_id}"),
            address,
        }
    }

    /// An organization's backend, through its org token (`/v2/users`).
    pub fn org_client(client_id: &str, address: Option<String>) -> Actor {
        Actor {
            who: format!("org-client:{client_id}"),
            address,
        }
    }

    /// The server itself (security events, the scheduled purge).
    pub fn calyx(address: Option<String>) -> Actor {
        Actor {
            who: "calyx".into(),
            address,
        }
    }
}

/// What an audit event is about: the ids it is filed under.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// The organization.
    pub org_id: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// The user.
    pub user_id: Option<String>,
    /// The thing acted on.
    pub target: Option<String>,
}

/// Open database plus the secrets needed to write to it correctly, acting for one actor.
/// Cheap to clone: [`Manager::acting_as`] gives each request its own.
#[derive(Clone)]
pub struct Manager {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Secret hashing under the pepper.
    pub hasher: SecretHasher,
    /// Key sealing under the master key (also seals webhook secrets).
    pub sealer: Arc<Sealer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Who the changes are recorded as.
    pub actor: Actor,
    /// Woken when an event queued webhook deliveries, so this process's delivery worker
    /// sends them at once rather than at its next poll.
    pub outbox: Arc<Notify>,
    /// How long audit events are kept, in seconds (the purge removes older ones).
    pub audit_retention: i64,
}

/// Secrets that configure how data is written; `Debug` shows neither.
#[derive(Clone, Default, Debug)]
pub struct Secrets {
    /// The pepper for secret hashes (`CALYX_PEPPER`); generated and stored when absent.
    pub pepper: Option<SecretString>,
    /// The master key sealing private keys (`CALYX_MASTER_KEY`).
    pub master_key: Option<SecretString>,
}

/// One page of a listing, as the API and the CLI return it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Listing<T> {
    /// The items, ordered by id.
    pub items: Vec<T>,
    /// The cursor of the next page (`after`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

impl<T> Listing<T> {
    /// Builds a page from `rows` read with `limit + 1`: the extra row only says there is
    /// more. `id` names an item's cursor.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        id: impl Fn(&R) -> String,
        view: impl FnMut(R) -> T,
    ) -> Listing<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_after = if more { rows.last().map(&id) } else { None };
        Listing {
            items: rows.into_iter().map(view).collect(),
            next_after,
        }
    }
}

pub use calyx_core::request::MAX_PAGE;

/// Checks a requested page size: 1 to [`MAX_PAGE`], as `/v2/users` takes it
/// (`calyx_core::request::PageParams`), the same default when not given.
pub fn page_limit(limit: Option<i64>) -> ManageResult<i64> {
    match limit {
        None => Ok(calyx_core::request::DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => invalid(format!("limit must be between 1 and {MAX_PAGE}")),
    }
}

/// The page to read from the store: one more than asked, to know whether there is more.
fn probe(after: Option<&str>, limit: i64) -> Page<'_> {
    Page {
        after,
        limit: limit + 1,
    }
}

impl Manager {
    /// Connects, migrates, and settles the pepper.
    pub async fn open(
        database_url: &str,
        max_connections: u32,
        secrets: &Secrets,
    ) -> anyhow::Result<Manager> {
        let mut opts = calyx_store::ConnectOptions::new(database_url);
        opts.max_connections = max_connections;
        let store = calyx_store::connect(&opts)
            .await
            .with_context(|| format!("opening the database {}", redact_url(database_url)))?;
        Self::with_store(store, secrets, Arc::new(SystemClock)).await
    }

    /// Builds a manager over an open store, acting as the command line.
    pub async fn with_store(
        store: Arc<dyn Store>,
        secrets: &Secrets,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Manager> {
        let pepper = match &secrets.pepper {
            Some(p) => p.expose_secret().to_owned(),
            None => store
                .meta_get_or_insert("pepper", &random_string(32))
                .await
                .context("reading the secret-hash pepper from the database")?,
        };
        let sealer = Sealer::new(secrets.master_key.as_ref().map(|k| k.expose_secret()))?;
        Ok(Manager {
            store,
            hasher: SecretHasher::new(pepper.as_bytes()),
            sealer: Arc::new(sealer),
            clock,
            actor: Actor::cli(),
            outbox: Arc::new(Notify::new()),
            audit_retention: DEFAULT_AUDIT_RETENTION_DAYS * 86_400,
        })
    }

    /// The same manager, recording its changes as `actor`.
    pub fn acting_as(&self, actor: Actor) -> Manager {
        Manager {
            actor,
            ..self.clone()
        }
    }

    /// Appends an audit event by this manager's actor, with a delivery for every webhook
    /// subscribed to its type, in one transaction. `detail` must hold no secret.
    pub async fn record(
        &self,
        kind: &str,
        about: About,
        detail: serde_json::Value,
    ) -> ManageResult<AuditEvent> {
        let event = AuditEvent {
            id: event_id(),
            at: self.clock.now(),
            kind: kind.to_owned(),
            actor: self.actor.who.clone(),
            org_id: about.org_id,
            client_id: about.client_id,
            user_id: about.user_id,
            target: about.target,
            address: self.actor.address.clone(),
            detail,
        };
        let hooks = self.store.active_webhooks().await?;
        let payload = serde_json::to_string(&event).map_err(anyhow::Error::new)?;
        let deliveries: Vec<Delivery> = hooks
            .iter()
            .filter(|h| h.wants(kind))
            .map(|h| Delivery {
                id: random_id("dlv"),
                webhook_id: h.id.clone(),
                event_id: event.id.clone(),
                payload: payload.clone(),
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: event.at,
                last_status: None,
                last_error: None,
                created_at: event.at,
                delivered_at: None,
            })
            .collect();
        self.store.append_audit(&event, &deliveries).await?;
        if !deliveries.is_empty() {
            self.outbox.notify_one();
        }
        Ok(event)
    }
}

/// Audit events are kept this long unless configured otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 90;

/// A new event id: the time in microseconds, then randomness, so ids sort by time (the
/// listing cursor) and never collide across nodes.
fn event_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("evt_{micros:014x}{}", random_alphanumeric(10))
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Scopes as a JSON body gives them: a space-separated string (as OAuth writes them) or an
/// array of names.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ScopeList {
    /// `"read write"`.
    Words(String),
    /// `["read", "write"]`.
    List(Vec<String>),
}

impl ScopeList {
    /// The scopes, space-separated.
    pub fn joined(&self) -> String {
        match self {
            ScopeList::Words(s) => s.clone(),
            ScopeList::List(v) => v.join(" "),
        }
    }
}

/// Parses scopes given to a management operation (`what` names the field in messages).
fn parse_scopes(what: &str, scopes: &str) -> ManageResult<calyx_core::ScopeSet> {
    calyx_core::ScopeSet::parse(scopes)
        .map_err(|e| ManageError::Invalid(format!("{what}: {}", e.description)))
}
