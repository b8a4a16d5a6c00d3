//! The console's webhooks: the subscriptions with a form to add one (its signing secret
//! shown once), a subscription's page with its deliveries and their state, and deletion.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{blame, Desk, Form, SecretPage, Section};
use crate::manage::views::{DeliveryView, WebhookView};
use crate::manage::{NewWebhook, MAX_PAGE};
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
    // Event types are typed separated by spaces or commas.
    let events = posted
        .get("events")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
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
    let desk = desk.at(Section::Webhooks);
    let m = &desk.manager;
    let hook = WebhookView::from(or_page!(desk, m.webhook(&id).await));
    let page = or_page!(
        desk,
        m.list_deliveries(&hook.id, q.after.as_deref(), MAX_PAGE)
            .await
    );
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
        StatusCode::OK,
        &WebhookPage {
            chrome: &desk.chrome,
            hook,
            deliveries,
            next,
        },
    )
}

/// Deletes a subscription and its deliveries.
pub(super) async fn delete(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    match desk.manager.delete_webhook(&id).await {
        Ok(()) => desk.done("/console/webhooks").await,
        Err(e) => desk.fail(e),
    }
}
