//! The console's webhooks: the subscriptions with a form to add one (its signing secret
//! shown once), a subscription's page with its deliveries and their state, a form to change
//! its URL and events, disabling or enabling it, and deletion.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{blame, Desk, Form, SecretPage, Section};
use crate::manage::views::{DeliveryView, WebhookView};
use crate::manage::{NewWebhook, WebhookPatch, MAX_PAGE};
use crate::pages::account::when;
use crate::pages::{Chrome, Posted};

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage<'a> {
    chrome: &'a Chrome,
    hooks: Vec<WebhookView>,
    form: Form,
}

async fn webhooks_page(desk: Desk, status: StatusCode, form: Form) -> Response {
    let desk = desk.at(Section::Webhooks);
    let hooks = or_page!(desk, desk.manager.list_webhooks(None, MAX_PAGE).await);
    desk.show(
        status,
        &WebhooksPage {
            chrome: &desk.chrome,
            hooks: hooks.items,
            form,
        },
    )
}

/// Every subscription, and the form to add one.
pub(super) async fn list(desk: Desk) -> Response {
    webhooks_page(desk, StatusCode::OK, Form::default()).await
}

/// Adds a subscription; its signing secret is shown on the answer, once.
pub(super) async fn create(desk: Desk, posted: Posted) -> Response {
    let events = events(&posted);
    let new = NewWebhook {
        url: posted.get("url").to_owned(),
        events,
    };
    match desk.manager.create_webhook(new).await {
        Ok((hook, secret)) => {
            desk.state.apply_change().await;
            let desk = desk.at(Section::Webhooks);
            let back = format!("/console/webhooks/{}", hook.id);
            desk.show(
                StatusCode::OK,
                &SecretPage {
                    chrome: &desk.chrome,
                    heading: "Webhook created",
                    what: &hook.url,
                    id: &hook.id,
                    secret: &secret,
                    back: &back,
                },
            )
        }
        Err(e) => {
            let field = blame(&e, &[("url", "url")], "events");
            match Form::refused(&posted, "webhook", field, e) {
                Ok((status, form)) => webhooks_page(desk, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// Event types as typed: separated by spaces or commas.
fn events(posted: &Posted) -> Vec<String> {
    posted
        .get("events")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A delivery as the webhook's page lists it.
struct DeliveryRow {
    delivery: DeliveryView,
    created: String,
}

#[derive(Template)]
#[template(path = "console/webhook.html")]
struct WebhookPage<'a> {
    chrome: &'a Chrome,
    hook: WebhookView,
    deliveries: Vec<DeliveryRow>,
    next: Option<String>,
    /// The events as the edit form's text starts.
    events_text: String,
    form: Form,
}

/// `?after=` of the deliveries.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DeliveriesQuery {
    after: Option<String>,
}

/// A subscription's page: its deliveries, oldest first, a page at a time.
pub(super) async fn show(
    desk: Desk,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Response {
    webhook_page(
        desk,
        &id,
        q.after.as_deref(),
        StatusCode::OK,
        Form::default(),
    )
    .await
}

async fn webhook_page(
    desk: Desk,
    id: &str,
    after: Option<&str>,
    status: StatusCode,
    form: Form,
) -> Response {
    let desk = desk.at(Section::Webhooks);
    let m = &desk.manager;
    let hook = WebhookView::from(or_page!(desk, m.webhook(id).await));
    let page = or_page!(desk, m.list_deliveries(&hook.id, after, MAX_PAGE).await);
    let next = page.next_after.map(|a| {
        format!(
            "/console/webhooks/{}?after={}",
            hook.id,
            url::form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>()
        )
    });
    let deliveries = page
        .items
        .into_iter()
        .map(|d| DeliveryRow {
            created: when(d.created_at),
            delivery: d,
        })
        .collect();
    desk.show(
        status,
        &WebhookPage {
            chrome: &desk.chrome,
            events_text: hook.events.join(" "),
            hook,
            deliveries,
            next,
            form,
        },
    )
}

/// Changes a subscription's URL and events.
pub(super) async fn edit(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let patch = WebhookPatch {
        url: Some(posted.get("url").to_owned()),
        events: Some(events(&posted)),
        disabled: None,
    };
    match desk.manager.update_webhook(&id, patch).await {
        Ok(hook) => desk.done(&format!("/console/webhooks/{}", hook.id)).await,
        Err(e) => {
            let field = blame(&e, &[("url", "url")], "events");
            match Form::refused(&posted, "edit", field, e) {
                Ok((status, form)) => webhook_page(desk, &id, None, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

async fn set_disabled(desk: Desk, id: &str, disabled: bool) -> Response {
    let patch = WebhookPatch {
        disabled: Some(disabled),
        ..WebhookPatch::default()
    };
    match desk.manager.update_webhook(id, patch).await {
        Ok(hook) => desk.done(&format!("/console/webhooks/{}", hook.id)).await,
        Err(e) => desk.fail(e),
    }
}

/// Disables a subscription: no new deliveries are queued for it.
pub(super) async fn disable(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    set_disabled(desk, &id, true).await
}

/// Enables a disabled subscription again.
pub(super) async fn enable(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    set_disabled(desk, &id, false).await
}

/// Deletes a subscription and its deliveries.
pub(super) async fn delete(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    match desk.manager.delete_webhook(&id).await {
        Ok(()) => desk.done("/console/webhooks").await,
        Err(e) => desk.fail(e),
    }
}
