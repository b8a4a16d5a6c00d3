//! `/console/`: the operator console. It owns the console's routes, the [`Desk`] every
//! console handler starts from (the signed-in operator, the page chrome with the console's
//! navigation, and a [`Manager`] recording changes as that operator), the way a refused form
//! is shown again with its message ([`Form`]), and the overview page.
//!
//! Every change goes through the management layer, acting as `user:<id>` from the caller's
//! address, so the audit log names the operator; it is then applied to this node before the
//! answer (as the management API does), and answered with a 303 so a reload does not post it
//! again. The exceptions are the answers that show a new secret: that page is the only place
//! the secret ever appears, so it is rendered in the POST's answer and never stored.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use calyx_core::model::User;

use super::{manage_error_page, render, see_other, Chrome, Operator, Posted};
use crate::manage::{Actor, ManageError, Manager, MAX_PAGE};
use crate::state::AppState;

/// The page that shows a new secret, the only time it is shown.
#[derive(Template)]
#[template(path = "console/secret.html")]
pub(super) struct SecretPage<'a> {
    pub chrome: &'a Chrome,
    pub heading: &'a str,
    pub what: &'a str,
    pub id: &'a str,
    pub secret: &'a str,
    pub back: &'a str,
}

/// The value of a management call, or the error page that answers the request.
macro_rules! or_page {
    ($desk:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $desk.fail(e),
        }
    };
}

mod apis;
mod audit;
mod branding;
mod clients;
mod families;
mod keys;
mod maintenance;
mod orgs;
mod users;
mod webhooks;

/// The console's routes.
pub(crate) fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    vec![
        ("/console", get(|| async { see_other("/console/") })),
        ("/console/", get(overview)),
        ("/console/orgs", get(orgs::list).post(orgs::create)),
        ("/console/orgs/{id}", get(orgs::show)),
        ("/console/orgs/{id}/rename", post(orgs::rename)),
        ("/console/orgs/{id}/quotas", post(orgs::set_quotas)),
        ("/console/orgs/{id}/delete", post(orgs::delete)),
        ("/console/orgs/{id}/entitlements", post(orgs::entitle)),
        (
            "/console/orgs/{id}/entitlements/{api_id}/delete",
            post(orgs::remove_entitlement),
        ),
        ("/console/orgs/{id}/admins", post(orgs::create_admin)),
        ("/console/apis", get(apis::list).post(apis::create)),
        ("/console/apis/{id}", get(apis::show)),
        ("/console/apis/{id}/edit", post(apis::edit)),
        ("/console/apis/{id}/descriptions", post(apis::describe)),
        ("/console/apis/{id}/delete", post(apis::delete)),
        ("/console/clients", get(clients::list).post(clients::create)),
        ("/console/clients/{id}", get(clients::show)),
        ("/console/clients/{id}/edit", post(clients::edit)),
        ("/console/clients/{id}/security", post(clients::secure)),
        ("/console/clients/{id}/disable", post(clients::disable)),
        ("/console/clients/{id}/enable", post(clients::enable)),
        ("/console/clients/{id}/rotate-secret", post(clients::rotate)),
        ("/console/clients/{id}/revoke-tokens", post(clients::revoke)),
        ("/console/clients/{id}/delete", post(clients::delete)),
        ("/console/clients/{id}/grants", post(clients::add_grant)),
        (
            "/console/clients/{id}/grants/{api_id}/edit",
            post(clients::edit_grant),
        ),
        (
            "/console/clients/{id}/grants/{api_id}/delete",
            post(clients::remove_grant),
        ),
        (
            "/console/clients/{id}/families/{family_id}/revoke",
            post(families::revoke_for_client),
        ),
        ("/console/users", get(users::list)),
        ("/console/users/{id}", get(users::show)),
        ("/console/users/{id}/edit", post(users::edit)),
        ("/console/users/{id}/delete", post(users::delete)),
        (
            "/console/users/{id}/families/{family_id}/revoke",
            post(families::revoke_for_user),
        ),
        ("/console/keys", get(keys::list)),
        ("/console/keys/rotate", post(keys::rotate)),
        ("/console/keys/{kid}/retire", post(keys::retire)),
        (
            "/console/webhooks",
            get(webhooks::list).post(webhooks::create),
        ),
        ("/console/webhooks/{id}", get(webhooks::show)),
        ("/console/webhooks/{id}/edit", post(webhooks::edit)),
        ("/console/webhooks/{id}/disable", post(webhooks::disable)),
        ("/console/webhooks/{id}/enable", post(webhooks::enable)),
        ("/console/webhooks/{id}/delete", post(webhooks::delete)),
        ("/console/audit", get(audit::list)),
        ("/console/maintenance", get(maintenance::page)),
        ("/console/maintenance/purge", post(maintenance::purge)),
        (
            "/console/branding",
            get(branding::page).post(branding::save),
        ),
    ]
}

/// The console's sections, in the order of its navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Overview,
    Orgs,
    Apis,
    Clients,
    Users,
    Keys,
    Webhooks,
    Audit,
    Maintenance,
    Branding,
}

const NAV: [(&str, &str, Section); 10] = [
    ("/console/", "Overview", Section::Overview),
    ("/console/orgs", "Organizations", Section::Orgs),
    ("/console/apis", "APIs", Section::Apis),
    ("/console/clients", "Clients", Section::Clients),
    ("/console/users", "Users", Section::Users),
    ("/console/keys", "Keys", Section::Keys),
    ("/console/webhooks", "Webhooks", Section::Webhooks),
    ("/console/audit", "Audit log", Section::Audit),
    ("/console/maintenance", "Maintenance", Section::Maintenance),
    ("/console/branding", "Branding", Section::Branding),
];

/// What every console handler starts from: the signed-in operator (or the sign-in redirect
/// or 403 page instead), the chrome, and a manager acting as the operator.
pub(super) struct Desk {
    pub state: AppState,
    pub user: User,
    pub chrome: Chrome,
    pub manager: Manager,
}

impl FromRequestParts<AppState> for Desk {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Operator(user) = Operator::from_request_parts(parts, state).await?;
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let mut chrome = Chrome::new(state, &parts.headers).await.signed_in(&user);
        chrome.home = "/console/";
        let manager = state.manager.acting_as(Actor {
            who: format!("user:{}", user.id),
            address,
        });
        Ok(Desk {
            state: state.clone(),
            user,
            chrome,
            manager,
        })
    }
}

impl Desk {
    /// The desk showing `section` as the current one in the navigation.
    pub fn at(mut self, section: Section) -> Desk {
        self.chrome.nav = NAV
            .iter()
            .map(|(href, label, s)| (*href, *label, *s == section))
            .collect();
        self
    }

    /// After a change: applied to this node's caches, then on to `to`.
    pub async fn done(&self, to: &str) -> Response {
        self.state.apply_change().await;
        see_other(to)
    }

    /// A management error as the answer.
    pub fn fail(&self, e: ManageError) -> Response {
        manage_error_page(&self.chrome, e)
    }

    /// Renders a console page.
    pub fn show<T: Template>(&self, status: StatusCode, page: &T) -> Response {
        render(status, &self.chrome, page)
    }

    /// The time now, as the server's clock has it.
    pub fn now(&self) -> i64 {
        self.state.clock.now()
    }
}

/// A form that was refused, to show again: which form, the field at fault, the message and
/// what was typed (never a password). A page with no refused form holds the default.
#[derive(Default)]
pub(super) struct Form {
    form: &'static str,
    field: &'static str,
    message: String,
    values: Vec<(String, String)>,
}

impl Form {
    /// The refusal of `form` for `e`, blaming `field`; the status it is answered with. An
    /// error that is not the person's (the database failed) is given back to be shown as a
    /// page of its own.
    pub fn refused(
        posted: &Posted,
        form: &'static str,
        field: &'static str,
        e: ManageError,
    ) -> Result<(StatusCode, Form), ManageError> {
        let status = match &e {
            ManageError::Invalid(_) | ManageError::InvalidScope(_) => StatusCode::BAD_REQUEST,
            ManageError::NotFound(_) => StatusCode::NOT_FOUND,
            ManageError::Conflict(_) => StatusCode::CONFLICT,
            _ => return Err(e),
        };
        let values = posted
            .0
            .iter()
            .filter(|(k, _)| k != "csrf" && k != "password")
            .cloned()
            .collect();
        Ok((
            status,
            Form {
                form,
                field,
                message: e.to_string(),
                values,
            },
        ))
    }

    /// The message for `form`, when it was the one refused.
    pub fn message(&self, form: &str) -> Option<&str> {
        (self.form == form && !self.message.is_empty()).then_some(self.message.as_str())
    }

    /// The attributes that tie `field` of `form` to the message, when it is at fault.
    pub fn attrs(&self, form: &str, field: &str) -> String {
        if self.form == form && self.field == field && !self.message.is_empty() {
            format!(r#"aria-invalid="true" aria-describedby="{form}-error""#)
        } else {
            String::new()
        }
    }

    /// What was typed in `field` of `form`, when that form is shown again.
    pub fn value(&self, form: &str, field: &str) -> &str {
        if self.form != form {
            return "";
        }
        self.values
            .iter()
            .find(|(k, _)| k == field)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether `value` was among the values of `field` (checkboxes, selections) of `form`.
    pub fn has(&self, form: &str, field: &str, value: &str) -> bool {
        self.form == form && self.values.iter().any(|(k, v)| k == field && v == value)
    }

    /// Whether `form` is the one refused (and so shows what was typed, not what is stored).
    pub fn is_refused(&self, form: &str) -> bool {
        self.message(form).is_some()
    }

    /// The value an edit form's `field` starts from: what was typed when `form` was the one
    /// refused (so nothing typed is lost), else `current`, what is stored.
    pub fn value_or<'a>(&'a self, form: &str, field: &str, current: &'a str) -> &'a str {
        if self.is_refused(form) {
            self.value(form, field)
        } else {
            current
        }
    }

    /// Whether an edit form's checkbox or option `value` of `field` starts ticked: as typed
    /// when `form` was refused, else `current`.
    pub fn ticked_or(&self, form: &str, field: &str, value: &str, current: bool) -> bool {
        if self.is_refused(form) {
            self.has(form, field, value)
        } else {
            current
        }
    }
}

/// The field a message is most likely about: the first of `fields` whose needle it holds,
/// else `fallback`. The management layer's messages name what was wrong in words.
pub(super) fn blame(
    e: &ManageError,
    fields: &[(&str, &'static str)],
    fallback: &'static str,
) -> &'static str {
    let text = e.to_string().to_lowercase();
    fields
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map_or(fallback, |(_, f)| f)
}

/// A count for the overview: `200+` when there are more than a page holds.
fn count<T>(listing: &crate::manage::Listing<T>) -> String {
    match listing.next_after {
        Some(_) => format!("{}+", listing.items.len()),
        None => listing.items.len().to_string(),
    }
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage<'a> {
    chrome: &'a Chrome,
    counts: Vec<(&'static str, &'static str, String)>,
}

/// The overview: how many of each there are, with a link to each section.
async fn overview(desk: Desk) -> Response {
    let desk = desk.at(Section::Overview);
    let m = &desk.manager;
    let orgs = or_page!(desk, m.list_orgs(None, MAX_PAGE).await);
    let apis = or_page!(desk, m.list_apis(None, MAX_PAGE).await);
    let clients = or_page!(desk, m.list_clients(None, None, MAX_PAGE).await);
    let users = or_page!(desk, m.list_users(None, None, MAX_PAGE).await);
    let webhooks = or_page!(desk, m.list_webhooks(None, MAX_PAGE).await);
    let keys = or_page!(desk, m.list_keys().await);
    let live_keys = keys.iter().filter(|k| k.state != "retired").count();
    let counts = vec![
        ("/console/orgs", "Organizations", count(&orgs)),
        ("/console/apis", "APIs", count(&apis)),
        ("/console/clients", "Clients", count(&clients)),
        ("/console/users", "Users", count(&users)),
        (
            "/console/keys",
            "Signing keys in use",
            live_keys.to_string(),
        ),
        ("/console/webhooks", "Webhooks", count(&webhooks)),
    ];
    desk.show(
        StatusCode::OK,
        &OverviewPage {
            chrome: &desk.chrome,
            counts,
        },
    )
}
