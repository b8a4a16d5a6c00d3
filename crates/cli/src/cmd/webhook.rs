//! `calyx webhook create | list | show | update | delete | deliveries`: audit events POSTed,
//! signed, to a URL. The signing secret is printed only by `create`.

use calyx_server::manage::views::{CreatedWebhook, DeliveryView, WebhookView};
use calyx_server::manage::{Manager, NewWebhook, WebhookPatch};

use crate::output::{opt, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Subscribe a URL to audit events; prints the signing secret once.
    Create {
        /// Where events are POSTed: https://, or http:// to a loopback address.
        #[arg(long)]
        url: String,
        /// An event type (client.deleted), a family of them (security.*) or * (repeatable).
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Every webhook.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One webhook (never its secret).
    Show {
        /// The webhook id (`whk_...`).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a webhook's URL or events, or pause it.
    Update {
        /// The webhook id.
        id: String,
        /// Where events are POSTed.
        #[arg(long)]
        url: Option<String>,
        /// An event type, family or * (repeatable; replaces the list).
        #[arg(long = "event")]
        events: Vec<String>,
        /// Stop queueing deliveries (true), or resume (false).
        #[arg(long)]
        disabled: Option<bool>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Delete a webhook and its deliveries.
    Delete {
        /// The webhook id.
        id: String,
    },
    /// A webhook's deliveries, with their state.
    Deliveries {
        /// The webhook id.
        id: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create { url, events, json } => {
            let (hook, secret) = m.create_webhook(NewWebhook { url, events }).await?;
            let created = CreatedWebhook {
                webhook: hook.into(),
                secret,
            };
            show(json, &created)?;
            if !json {
                println!("(the secret is shown only this once)");
            }
        }
        Command::List { json } => {
            super::list(
                json,
                &["ID", "DISABLED", "URL", "EVENTS"],
                |w: &WebhookView| {
                    vec![
                        w.id.clone(),
                        w.disabled.to_string(),
                        w.url.clone(),
                        w.events.join(" "),
                    ]
                },
                |after, limit| async move { m.list_webhooks(after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => show(json, &WebhookView::from(m.webhook(&id).await?))?,
        Command::Update {
            id,
            url,
            events,
            disabled,
            json,
        } => {
            let patch = WebhookPatch {
                url,
                events: (!events.is_empty()).then_some(events),
                disabled,
            };
            show(
                json,
                &WebhookView::from(m.update_webhook(&id, patch).await?),
            )?;
        }
        Command::Delete { id } => {
            m.delete_webhook(&id).await?;
            eprintln!("deleted webhook {id}");
        }
        Command::Deliveries { id, json } => {
            let id = id.as_str();
            super::list(
                json,
                &[
                    "ID",
                    "EVENT",
                    "STATE",
                    "ATTEMPTS",
                    "LAST_STATUS",
                    "LAST_ERROR",
                ],
                |d: &DeliveryView| {
                    vec![
                        d.id.clone(),
                        d.event_id.clone(),
                        d.state.clone(),
                        d.attempts.to_string(),
                        opt(&d.last_status),
                        opt(&d.last_error),
                    ]
                },
                |after, limit| async move { m.list_deliveries(id, after.as_deref(), limit).await },
            )
            .await?;
        }
    }
    Ok(())
}
