//! Webhook subscriptions: audit events of the chosen types are POSTed, signed, to a URL (the
//! delivery itself is `crate::webhooks`).
//!
//! The signing secret has to be recovered to sign, so unlike client secrets it cannot be a
//! hash: it is sealed (AES-256-GCM) under a key derived from the pepper.

use calyx_core::audit::kind;
use calyx_core::model::Webhook;
use calyx_token::seal::Sealer;
use calyx_token::secret::{generate_secret, random_id};
use serde::Deserialize;
use serde_json::json;

use super::views::{DeliveryView, WebhookView};
use super::{invalid, not_found, probe, About, Listing, ManageError, ManageResult, Manager};

/// A new subscription.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where events are POSTed: `https://`, or `http://` to a loopback address.
    pub url: String,
    /// Event types (`security.refresh_token_reused`), families (`security.*`) or `*`.
    pub events: Vec<String>,
}

/// Changes to a subscription; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// Where events are POSTed.
    pub url: Option<String>,
    /// Event types (replaces the list).
    pub events: Option<Vec<String>>,
    /// Stop (true) or resume (false) queueing deliveries.
    pub disabled: Option<bool>,
}

fn check_url(url: &str) -> ManageResult<()> {
    let Ok(u) = url::Url::parse(url) else {
        return invalid("the webhook URL is not an absolute URL");
    };
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return invalid("the webhook URL must be https (http only to a loopback address)"),
    }
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return invalid("the webhook URL must not hold credentials or a fragment");
    }
    Ok(())
}

fn check_events(events: &[String]) -> ManageResult<()> {
    if events.is_empty() {
        return invalid("a webhook needs at least one event type");
    }
    if let Some(bad) = events.iter().find(|e| !kind::is_pattern(e)) {
        return invalid(format!(
            "unknown event type {bad:?} (a type such as client.deleted, a family such as security.*, or *)"
        ));
    }
    Ok(())
}

fn about(id: &str) -> About {
    About {
        target: Some(id.to_owned()),
        ..About::default()
    }
}

impl Manager {
    /// The sealer of webhook signing secrets.
    pub fn webhook_sealer(&self) -> Sealer {
        Sealer::from_key(&self.hasher.derive_key(b"calyx/webhook-secret/v1"))
    }

    /// Creates a subscription; returns it and its signing secret (shown once).
    pub async fn create_webhook(&self, new: NewWebhook) -> ManageResult<(Webhook, String)> {
        check_url(&new.url)?;
        check_events(&new.events)?;
        let secret = generate_secret();
        let hook = Webhook {
            id: random_id("whk"),
            url: new.url,
            events: new.events,
            secret_sealed: self.webhook_sealer().seal(secret.as_bytes()),
            disabled: false,
            created_at: self.clock.now(),
        };
        self.store.insert_webhook(&hook).await?;
        self.record(
            kind::WEBHOOK_CREATED,
            about(&hook.id),
            json!({"url": hook.url, "events": hook.events}),
        )
        .await?;
        Ok((hook, secret))
    }

    /// A subscription by id.
    pub async fn webhook(&self, id: &str) -> ManageResult<Webhook> {
        match self.store.webhook(id).await? {
            Some(w) => Ok(w),
            None => not_found(format!("no webhook with id {id}")),
        }
    }

    /// A page of subscriptions.
    pub async fn list_webhooks(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<WebhookView>> {
        let rows = self.store.list_webhooks(probe(after, limit)).await?;
        Ok(Listing::from_rows(
            rows,
            limit,
            |w| w.id.clone(),
            WebhookView::from,
        ))
    }

    /// Changes a subscription.
    pub async fn update_webhook(&self, id: &str, patch: WebhookPatch) -> ManageResult<Webhook> {
        let mut hook = self.webhook(id).await?;
        let mut changed = serde_json::Map::new();
        if let Some(url) = patch.url {
            check_url(&url)?;
            hook.url = url;
            changed.insert("url".into(), json!(hook.url));
        }
        if let Some(events) = patch.events {
            check_events(&events)?;
            hook.events = events;
            changed.insert("events".into(), json!(hook.events));
        }
        if let Some(d) = patch.disabled {
            hook.disabled = d;
            changed.insert("disabled".into(), json!(d));
        }
        if !self.store.update_webhook(&hook).await? {
            return not_found(format!("no webhook with id {id}"));
        }
        self.record(kind::WEBHOOK_UPDATED, about(id), changed.into())
            .await?;
        Ok(hook)
    }

    /// Deletes a subscription and its deliveries.
    pub async fn delete_webhook(&self, id: &str) -> ManageResult<()> {
        let hook = self.webhook(id).await?;
        if !self.store.delete_webhook(id).await? {
            return not_found(format!("no webhook with id {id}"));
        }
        self.record(kind::WEBHOOK_DELETED, about(id), json!({"url": hook.url}))
            .await?;
        Ok(())
    }

    /// A page of a subscription's deliveries, with their state.
    pub async fn list_deliveries(
        &self,
        id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<DeliveryView>> {
        self.webhook(id).await?;
        let rows = self.store.list_deliveries(id, probe(after, limit)).await?;
        Ok(Listing::from_rows(
            rows,
            limit,
            |d| d.id.clone(),
            DeliveryView::from,
        ))
    }

    /// The signing secret of a subscription, for the delivery worker.
    pub fn webhook_secret(&self, hook_secret_sealed: &[u8]) -> ManageResult<Vec<u8>> {
        self.webhook_sealer()
            .open(hook_secret_sealed)
            .map_err(|e| ManageError::Other(anyhow::anyhow!("opening a webhook secret: {e}")))
    }
}
