//! The console's organizations: the list with a form to create one, and an organization's
//! page with its clients and users, its entitlements (what its own developers may grant in
//! the developer portal), a form to give it an organization admin, its token quotas,
//! renaming and deletion (refused while it has clients or users, and always for the
//! operators' organization).

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use calyx_core::model::Role;
use serde::Deserialize;

use super::clients::Limits;
use super::{blame, Desk, Form, Section};
use crate::manage::views::{ApiView, ClientView, OrgView, UserRecord};
use crate::manage::{EntitlementView, ManageError, NewUser, OrgPatch, ScopeList};
use crate::manage::{Listing, OPERATOR_ORG_ID};
use crate::manage::{ADMIN_AUDIENCE, MAX_PAGE};
use crate::pages::account::when;
use crate::pages::{Chrome, Posted};

#[derive(Template)]
#[template(path = "console/orgs.html")]
struct OrgsPage<'a> {
    chrome: &'a Chrome,
    orgs: Vec<(OrgView, String)>,
    next_after: Option<String>,
    form: Form,
}

/// `?after=` of a listing.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    after: Option<String>,
}

async fn orgs_page(desk: Desk, after: Option<&str>, status: StatusCode, form: Form) -> Response {
    let desk = desk.at(Section::Orgs);
    let page: Listing<OrgView> = or_page!(desk, desk.manager.list_orgs(after, MAX_PAGE).await);
    let orgs = page
        .items
        .into_iter()
        .map(|o| {
            let created = when(o.created_at);
            (o, created)
        })
        .collect();
    desk.show(
        status,
        &OrgsPage {
            chrome: &desk.chrome,
            orgs,
            next_after: page.next_after,
            form,
        },
    )
}

/// Every organization, and the form to create one.
pub(super) async fn list(desk: Desk, Query(q): Query<PageQuery>) -> Response {
    orgs_page(desk, q.after.as_deref(), StatusCode::OK, Form::default()).await
}

/// Creates an organization, then shows its page.
pub(super) async fn create(desk: Desk, posted: Posted) -> Response {
    match desk.manager.create_org(posted.get("name")).await {
        Ok(org) => desk.done(&format!("/console/orgs/{}", org.id)).await,
        Err(e) => match Form::refused(&posted, "org", "name", e) {
            Ok((status, form)) => orgs_page(desk, None, status, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage<'a> {
    chrome: &'a Chrome,
    org: OrgView,
    created: String,
    operators: bool,
    clients: Vec<ClientView>,
    users: Vec<UserRecord>,
    entitlements: Vec<EntitlementView>,
    apis: Vec<ApiView>,
    /// The token quotas as the quota form's fields start: empty for no limit.
    per_hour: String,
    per_day: String,
    form: Form,
}

async fn org_page(desk: Desk, id: &str, status: StatusCode, form: Form) -> Response {
    let desk = desk.at(Section::Orgs);
    let m = &desk.manager;
    let org = or_page!(desk, m.org(id).await);
    let clients = or_page!(desk, m.list_clients(Some(&org.id), None, MAX_PAGE).await);
    let users = or_page!(desk, m.list_users(Some(&org.id), None, MAX_PAGE).await);
    let entitlements = or_page!(desk, m.entitlements(&org.id).await);
    let apis = or_page!(desk, m.list_apis(None, MAX_PAGE).await);
    let apis = apis
        .items
        .into_iter()
        .filter(|a| a.audience != ADMIN_AUDIENCE)
        .collect();
    desk.show(
        status,
        &OrgPage {
            chrome: &desk.chrome,
            operators: org.id == OPERATOR_ORG_ID,
            created: when(org.created_at),
            per_hour: Limits::text(org.quota.per_hour),
            per_day: Limits::text(org.quota.per_day),
            org: org.into(),
            clients: clients.items,
            users: users.items,
            entitlements,
            apis,
            form,
        },
    )
}

/// An organization's page.
pub(super) async fn show(desk: Desk, Path(id): Path<String>) -> Response {
    org_page(desk, &id, StatusCode::OK, Form::default()).await
}

/// Entitles the organization to an API, with the scopes typed (replacing an earlier
/// entitlement on that API).
pub(super) async fn entitle(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let scopes = ScopeList::Words(posted.get("scopes").to_owned());
    match desk
        .manager
        .set_entitlement(&id, posted.get("api_id"), &scopes)
        .await
    {
        Ok(_) => desk.done(&format!("/console/orgs/{id}")).await,
        Err(e) => {
            let field = blame(&e, &[("no api", "api_id")], "scopes");
            match Form::refused(&posted, "entitle", field, e) {
                Ok((status, form)) => org_page(desk, &id, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// Removes the organization's entitlement on an API.
pub(super) async fn remove_entitlement(
    desk: Desk,
    Path((id, api_id)): Path<(String, String)>,
    _: Posted,
) -> Response {
    match desk.manager.delete_entitlement(&id, &api_id).await {
        Ok(()) => desk.done(&format!("/console/orgs/{id}")).await,
        Err(e) => desk.fail(e),
    }
}

/// Creates an organization admin: a user of the organization who signs in to the
/// developer portal.
pub(super) async fn create_admin(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let new = NewUser {
        org_id: id.clone(),
        username: posted.opt("username"),
        email: posted.opt("email"),
        password: posted.opt("password"),
        role: Some(Role::OrgAdmin),
        ..NewUser::default()
    };
    match desk.manager.create_user(new).await {
        Ok(_) => desk.done(&format!("/console/orgs/{id}")).await,
        Err(e) => {
            let field = blame(
                &e,
                &[
                    ("password", "password"),
                    ("email", "email"),
                    ("no organization", "username"),
                ],
                "username",
            );
            match Form::refused(&posted, "admin", field, e) {
                Ok((status, form)) => org_page(desk, &id, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// Renames an organization.
pub(super) async fn rename(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let patch = OrgPatch {
        name: Some(posted.get("name").to_owned()),
        ..OrgPatch::default()
    };
    match desk.manager.update_org(&id, patch).await {
        Ok(org) => desk.done(&format!("/console/orgs/{}", org.id)).await,
        Err(e) => match Form::refused(&posted, "rename", "name", e) {
            Ok((status, form)) => org_page(desk, &id, status, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

/// Sets the organization's token quotas: how many tokens all its clients together may be
/// issued per hour and per day, an empty field removing that limit.
pub(super) async fn set_quotas(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let changed = async {
        let limits = Limits::typed(&posted)?;
        let patch = OrgPatch {
            tokens_per_hour: Some(limits.per_hour),
            tokens_per_day: Some(limits.per_day),
            ..OrgPatch::default()
        };
        desk.manager
            .update_org(&id, patch)
            .await
            .map_err(|e| (limits.at_fault(), e))
    };
    match changed.await {
        Ok(org) => desk.done(&format!("/console/orgs/{}", org.id)).await,
        Err((field, e)) => match Form::refused(&posted, "quotas", field, e) {
            Ok((status, form)) => org_page(desk, &id, status, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

/// Deletes an organization, once confirmed. The manager refuses while it has clients or
/// users, and for the operators' organization; its message is shown by the form.
pub(super) async fn delete(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let deleted = if posted.get("confirm").is_empty() {
        Err(ManageError::Invalid(
            "tick the box to confirm: a deleted organization cannot be brought back".into(),
        ))
    } else {
        desk.manager.delete_org(&id).await
    };
    match deleted {
        Ok(()) => desk.done("/console/orgs").await,
        Err(e) => match Form::refused(&posted, "delete", "confirm", e) {
            Ok((status, form)) => org_page(desk, &id, status, form).await,
            Err(e) => desk.fail(e),
        },
    }
}
