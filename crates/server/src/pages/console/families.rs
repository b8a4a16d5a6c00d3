//! The console's grant families (sign-in chains) as a client's and a user's pages list them,
//! and revoking one from either page. The family is checked to belong to the page it was
//! revoked from, so a form posted to another client's or user's address cannot revoke it.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::response::Response;
use calyx_core::model::FamilyFilter;

use super::Desk;
use crate::manage::views::FamilyView;
use crate::manage::{ManageError, ManageResult, Manager, MAX_PAGE};
use crate::pages::account::when;
use crate::pages::path_segment;
use crate::pages::Posted;

/// One sign-in as the table shows it, with the other party (the user on a client's page,
/// the client on a user's page) by name.
pub(super) struct FamilyRow {
    pub id: String,
    pub other_name: String,
    pub other_href: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub revoked: Option<String>,
}

/// The sign-ins a page lists: its table's rows, the column naming the other party, where a
/// row's Revoke button posts to, and the next page's address.
pub(super) struct Families {
    pub other: &'static str,
    pub base: String,
    pub rows: Vec<FamilyRow>,
    pub next: Option<String>,
}

/// Whose page lists the sign-ins.
#[derive(Clone, Copy)]
enum Owner {
    Client,
    User,
}

/// The client's sign-ins, a page at a time (`after`).
pub(super) async fn of_client(
    m: &Manager,
    client_id: &str,
    after: Option<&str>,
) -> ManageResult<Families> {
    listed(m, Owner::Client, client_id, after).await
}

/// The user's sign-ins, a page at a time (`after`).
pub(super) async fn of_user(
    m: &Manager,
    user_id: &str,
    after: Option<&str>,
) -> ManageResult<Families> {
    listed(m, Owner::User, user_id, after).await
}

/// The sign-ins of the client or user `id`, each with the other party by name (looked up once
/// however many sign-ins it has; a deleted one keeps its id).
async fn listed(
    m: &Manager,
    owner: Owner,
    id: &str,
    after: Option<&str>,
) -> ManageResult<Families> {
    let filter = match owner {
        Owner::Client => FamilyFilter {
            client_id: Some(id.to_owned()),
            user_id: None,
        },
        Owner::User => FamilyFilter {
            client_id: None,
            user_id: Some(id.to_owned()),
        },
    };
    let page = m.list_families(&filter, after, MAX_PAGE).await?;
    let other_of = |f: &FamilyView| match owner {
        Owner::Client => f.user_id.clone(),
        Owner::User => f.client_id.clone(),
    };
    let mut names = BTreeMap::new();
    for f in &page.items {
        let other = other_of(f);
        if names.contains_key(&other) {
            continue;
        }
        let name = match owner {
            Owner::Client => m
                .user(&other)
                .await
                .map(|u| u.username.unwrap_or_else(|| u.id.clone())),
            Owner::User => m.client(&other).await.map(|c| c.name),
        };
        let name = match name {
            Ok(n) => n,
            Err(ManageError::NotFound(_)) => other.clone(),
            Err(e) => return Err(e),
        };
        names.insert(other, name);
    }
    let (mine, theirs, other) = match owner {
        Owner::Client => ("clients", "users", "User"),
        Owner::User => ("users", "clients", "Client"),
    };
    let base = format!("/console/{mine}/{}", path_segment(id));
    Ok(Families {
        other,
        next: page
            .next_after
            .map(|a| format!("{base}?after={}", path_segment(&a))),
        rows: page
            .items
            .into_iter()
            .map(|f| {
                let other = other_of(&f);
                FamilyRow {
                    other_name: names[&other].clone(),
                    other_href: format!("/console/{theirs}/{}", path_segment(&other)),
                    scopes: f.scope.split_whitespace().map(str::to_owned).collect(),
                    created: when(f.created_at),
                    revoked: f.revoked_at.map(when),
                    id: f.id,
                }
            })
            .collect(),
        base,
    })
}

/// Revokes one of a client's sign-ins, then back to the client's page.
pub(super) async fn revoke_for_client(
    desk: Desk,
    Path((id, family_id)): Path<(String, String)>,
    _: Posted,
) -> Response {
    let f = or_page!(desk, desk.manager.family(&family_id).await);
    if f.client_id != id {
        return desk.fail(ManageError::NotFound(format!(
            "client {id} has no grant family with id {family_id}"
        )));
    }
    match desk.manager.revoke_family(&f.id).await {
        Ok(_) => {
            desk.done(&format!("/console/clients/{}", path_segment(&id)))
                .await
        }
        Err(e) => desk.fail(e),
    }
}

/// Revokes one of a user's sign-ins, then back to the user's page.
pub(super) async fn revoke_for_user(
    desk: Desk,
    Path((id, family_id)): Path<(String, String)>,
    _: Posted,
) -> Response {
    let f = or_page!(desk, desk.manager.family(&family_id).await);
    if f.user_id != id {
        return desk.fail(ManageError::NotFound(format!(
            "user {id} has no grant family with id {family_id}"
        )));
    }
    match desk.manager.revoke_family(&f.id).await {
        Ok(_) => {
            desk.done(&format!("/console/users/{}", path_segment(&id)))
                .await
        }
        Err(e) => desk.fail(e),
    }
}
