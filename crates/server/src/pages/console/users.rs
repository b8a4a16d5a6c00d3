//! The console's users: every organization's, or one organization's, and deleting one
//! (which revokes every sign-in of the user).

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{Desk, Section};
use crate::manage::views::{OrgView, UserRecord};
use crate::manage::{ManageError, MAX_PAGE};
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
