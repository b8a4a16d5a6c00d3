//! The console's audit log: every change and security event, newest last, narrowed by type,
//! organization, client or user, a page at a time.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use calyx_core::audit::{AuditEvent, AuditFilter};
use serde::Deserialize;

use super::{Desk, Section};
use crate::manage::ManageError;
use crate::pages::account::when;
use crate::pages::Chrome;

/// Events shown on one page.
const PAGE: i64 = 50;

/// The filters and the cursor, as the filter form sends them.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    user: String,
    after: Option<String>,
}

/// An event as the log shows it.
struct EventRow {
    event: AuditEvent,
    at: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage<'a> {
    chrome: &'a Chrome,
    q: AuditQuery,
    events: Vec<EventRow>,
    next: Option<String>,
    error: Option<String>,
}

fn some(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The log, filtered.
pub(super) async fn list(desk: Desk, Query(q): Query<AuditQuery>) -> Response {
    let desk = desk.at(Section::Audit);
    let filter = AuditFilter {
        kind: some(&q.kind),
        org_id: some(&q.org),
        client_id: some(&q.client),
        user_id: some(&q.user),
        ..AuditFilter::default()
    };
    let (status, events, next, error) = match desk
        .manager
        .list_audit(&filter, q.after.as_deref(), PAGE)
        .await
    {
        Ok(page) => {
            let next = page.next_after.map(|after| {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in [
                    ("type", &q.kind),
                    ("org", &q.org),
                    ("client", &q.client),
                    ("user", &q.user),
                ] {
                    if !v.trim().is_empty() {
                        s.append_pair(k, v.trim());
                    }
                }
                s.append_pair("after", &after);
                format!("/console/audit?{}", s.finish())
            });
            let events = page
                .items
                .into_iter()
                .map(|e| EventRow {
                    at: when(e.at),
                    detail: if e.detail.as_object().is_some_and(|o| o.is_empty()) {
                        String::new()
                    } else {
                        e.detail.to_string()
                    },
                    event: e,
                })
                .collect();
            (StatusCode::OK, events, next, None)
        }
        // Only the type is checked: an unknown one is the filter's fault, shown by its field.
        Err(ManageError::Invalid(m)) => (StatusCode::BAD_REQUEST, Vec::new(), None, Some(m)),
        Err(e) => return desk.fail(e),
    };
    desk.show(
        status,
        &AuditPage {
            chrome: &desk.chrome,
            q,
            events,
            next,
            error,
        },
    )
}
