//! The console's users: every organization's, or one organization's, a user's page (their
//! facts, allowed scopes and sign-ins, and a form to edit them), and deleting one (which
//! revokes every sign-in of the user).

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::families::{self, Families};
use super::{blame, Desk, Form, Section};
use crate::manage::views::{OrgView, UserRecord};
use crate::manage::{ManageError, UserPatch, MAX_PAGE, OPERATOR_ORG_ID};
use crate::pages::account::when;
use crate::pages::path_segment;
use crate::pages::{Chrome, Posted};

/// `?org=&after=` of the list.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UsersQuery {
    org: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage<'a> {
    chrome: &'a Chrome,
    users: Vec<(UserRecord, String)>,
    orgs: Vec<OrgView>,
    org: String,
    next: Option<String>,
    me: String,
}

/// Users, of one organization when `?org=` names it, a page at a time.
pub(super) async fn list(desk: Desk, Query(q): Query<UsersQuery>) -> Response {
    let desk = desk.at(Section::Users);
    let m = &desk.manager;
    let org = q.org.filter(|o| !o.is_empty());
    let orgs = or_page!(desk, m.list_orgs(None, MAX_PAGE).await).items;
    let page = or_page!(
        desk,
        m.list_users(org.as_deref(), q.after.as_deref(), MAX_PAGE)
            .await
    );
    let org = org.unwrap_or_default();
    let next = page.next_after.map(|after| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !org.is_empty() {
            q.append_pair("org", &org);
        }
        q.append_pair("after", &after);
        format!("/console/users?{}", q.finish())
    });
    let users = page
        .items
        .into_iter()
        .map(|u| {
            let org_name = orgs
                .iter()
                .find(|o| o.id == u.org_id)
                .map_or_else(|| u.org_id.clone(), |o| o.name.clone());
            (u, org_name)
        })
        .collect();
    desk.show(
        StatusCode::OK,
        &UsersPage {
            chrome: &desk.chrome,
            users,
            orgs,
            org,
            next,
            me: desk.user.id.clone(),
        },
    )
}

/// Deletes a user and revokes every sign-in of theirs; back to the list it was deleted
/// from.
pub(super) async fn delete(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    if id == desk.user.id {
        // Deleting oneself would end the session mid-task and could leave no operator.
        return desk.fail(ManageError::Invalid(
            "you cannot delete your own account from the console".into(),
        ));
    }
    match desk.manager.delete_user(None, &id).await {
        Ok(()) => {
            let back = match posted.opt("org") {
                Some(org) => format!(
                    "/console/users?org={}",
                    url::form_urlencoded::byte_serialize(org.as_bytes()).collect::<String>()
                ),
                None => "/console/users".to_owned(),
            };
            desk.done(&back).await
        }
        Err(e) => desk.fail(e),
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage<'a> {
    chrome: &'a Chrome,
    user: UserRecord,
    org_name: String,
    created: String,
    /// The roles the user may hold: `(value, label)`, none first.
    roles: Vec<(&'static str, &'static str)>,
    families: Families,
    me: bool,
    form: Form,
}

/// `?after=`: the next page of the user's sign-ins.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UserQuery {
    after: Option<String>,
}

async fn user_page(
    desk: Desk,
    id: &str,
    after: Option<&str>,
    status: StatusCode,
    form: Form,
) -> Response {
    let desk = desk.at(Section::Users);
    let m = &desk.manager;
    let user = or_page!(desk, m.user(id).await);
    let user = or_page!(desk, m.user_view(user).await);
    let org_name = match m.org(&user.org_id).await {
        Ok(o) => o.name,
        Err(_) => user.org_id.clone(),
    };
    let families = or_page!(desk, families::of_user(m, &user.id, after).await);
    // Only the roles the manager accepts for this organization are offered.
    let role = if user.org_id == OPERATOR_ORG_ID {
        ("operator", "Operator: signs in to this console")
    } else {
        (
            "org_admin",
            "Organization admin: signs in to the developer portal",
        )
    };
    desk.show(
        status,
        &UserPage {
            chrome: &desk.chrome,
            org_name,
            created: when(user.created_at),
            roles: vec![("", "None"), role],
            families,
            me: user.id == desk.user.id,
            user,
            form,
        },
    )
}

/// A user's page.
pub(super) async fn show(
    desk: Desk,
    Path(id): Path<String>,
    Query(q): Query<UserQuery>,
) -> Response {
    user_page(
        desk,
        &id,
        q.after.as_deref(),
        StatusCode::OK,
        Form::default(),
    )
    .await
}

/// Changes a user: username, email, external id, role, and the password when a new one is
/// typed (left empty, it stays).
pub(super) async fn edit(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let patch = UserPatch {
        username: Some(posted.get("username").to_owned()),
        email: Some(posted.get("email").to_owned()),
        external_id: Some(posted.get("external_id").to_owned()),
        role: Some(posted.get("role").to_owned()),
        password: posted.opt("password"),
        allowed_scopes: None,
    };
    let changed = if id == desk.user.id && posted.get("role") != "operator" {
        // As with deleting oneself: the session would end mid-task, maybe with no operator.
        Err(ManageError::Invalid(
            "you cannot take the operator role from your own account".into(),
        ))
    } else {
        desk.manager.update_user(&id, patch).await
    };
    match changed {
        Ok(u) => {
            desk.done(&format!("/console/users/{}", path_segment(&u.id)))
                .await
        }
        Err(e) => {
            let field = blame(
                &e,
                &[
                    ("role", "role"),
                    ("operator", "role"),
                    ("password", "password"),
                    ("email", "email"),
                    ("external_id", "external_id"),
                ],
                "username",
            );
            match Form::refused(&posted, "edit", field, e) {
                Ok((status, form)) => user_page(desk, &id, None, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}
