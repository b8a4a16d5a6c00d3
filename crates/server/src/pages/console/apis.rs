//! The console's APIs (resource servers): the list with a form to create one, whose scopes
//! and their descriptions are typed one `scope: description` per line, and an API's page
//! with its scopes, a form for their descriptions, a form to edit it all (name, scopes in
//! the same per-line form, algorithm, lifetimes), and deletion.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use calyx_core::model::SigningAlg;

use super::{blame, Desk, Form, Section};
use crate::manage::views::ApiView;
use crate::manage::{ApiPatch, ManageError, NewApi, ScopeList, MAX_PAGE};
use crate::pages::{Chrome, Posted};

/// Scopes and descriptions as typed: a line per scope, the scope first, then (after a colon
/// or a space) what it lets an application do. A scope name may itself hold colons
/// (`read:orders`), so only a colon that ends the first word separates them.
fn parse_scope_lines(text: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let mut scopes = Vec::new();
    let mut descriptions = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let scope = first.strip_suffix(':').unwrap_or(first).to_owned();
        let rest = rest.trim();
        if !rest.is_empty() {
            descriptions.insert(scope.clone(), rest.to_owned());
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    (scopes, descriptions)
}

#[derive(Template)]
#[template(path = "console/apis.html")]
struct ApisPage<'a> {
    chrome: &'a Chrome,
    apis: Vec<ApiView>,
    algs: Vec<&'static str>,
    form: Form,
}

async fn apis_page(desk: Desk, status: StatusCode, form: Form) -> Response {
    let desk = desk.at(Section::Apis);
    let apis = or_page!(desk, desk.manager.list_apis(None, MAX_PAGE).await);
    desk.show(
        status,
        &ApisPage {
            chrome: &desk.chrome,
            apis: apis.items,
            algs: SigningAlg::ALL.iter().map(|a| a.as_str()).collect(),
            form,
        },
    )
}

/// Every API, and the form to create one.
pub(super) async fn list(desk: Desk) -> Response {
    apis_page(desk, StatusCode::OK, Form::default()).await
}

/// Creates an API, then shows its page.
pub(super) async fn create(desk: Desk, posted: Posted) -> Response {
    let (scopes, scope_descriptions) = parse_scope_lines(posted.get("scopes"));
    let alg = match posted.get("alg") {
        "" => Ok(SigningAlg::default()),
        a => a.parse().map_err(ManageError::Invalid),
    };
    let made = match alg {
        Ok(alg) => {
            desk.manager
                .create_api(NewApi {
                    audience: posted.get("audience").to_owned(),
                    name: posted.get("name").to_owned(),
                    scopes: scopes.join(" "),
                    scope_descriptions,
                    alg,
                    ..NewApi::default()
                })
                .await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok(api) => desk.done(&format!("/console/apis/{}", api.id)).await,
        Err(e) => {
            let field = blame(
                &e,
                &[
                    ("audience", "audience"),
                    ("name", "name"),
                    ("algorithm", "alg"),
                ],
                "scopes",
            );
            match Form::refused(&posted, "api", field, e) {
                Ok((status, form)) => apis_page(desk, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// One scope as the API page lists it.
struct ScopeRow {
    name: String,
    description: String,
}

/// The lifetimes the edit form sets: `(field, label)`, the field named as in [`ApiPatch`].
const LIFETIMES: [(&str, &str); 4] = [
    ("token_lifetime", "Machine tokens live (seconds)"),
    ("user_token_lifetime", "User tokens live (seconds)"),
    (
        "delegated_token_lifetime",
        "Delegated tokens live (seconds)",
    ),
    ("refresh_token_lifetime", "Refresh tokens live (seconds)"),
];

#[derive(Template)]
#[template(path = "console/api.html")]
struct ApiPage<'a> {
    chrome: &'a Chrome,
    api: ApiView,
    scopes: Vec<ScopeRow>,
    /// The scopes as the edit form's text starts: `scope: description` per line.
    scope_text: String,
    /// `(field, label, current value)` of each lifetime.
    lifetimes: Vec<(&'static str, &'static str, String)>,
    algs: Vec<&'static str>,
    form: Form,
}

async fn api_page(desk: Desk, id: &str, status: StatusCode, form: Form) -> Response {
    let desk = desk.at(Section::Apis);
    let api = ApiView::from(or_page!(desk, desk.manager.api(id).await));
    let scopes = api
        .scopes
        .iter()
        .map(|s| ScopeRow {
            name: s.clone(),
            description: api.scope_descriptions.get(s).cloned().unwrap_or_default(),
        })
        .collect::<Vec<_>>();
    let scope_text = scopes
        .iter()
        .map(|s| match s.description.as_str() {
            "" => s.name.clone(),
            d => format!("{}: {d}", s.name),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let lifetimes = LIFETIMES
        .iter()
        .zip([
            api.token_lifetime,
            api.user_token_lifetime,
            api.delegated_token_lifetime,
            api.refresh_token_lifetime,
        ])
        .map(|((field, label), v)| (*field, *label, v.to_string()))
        .collect();
    desk.show(
        status,
        &ApiPage {
            chrome: &desk.chrome,
            api,
            scopes,
            scope_text,
            lifetimes,
            algs: SigningAlg::ALL.iter().map(|a| a.as_str()).collect(),
            form,
        },
    )
}

/// An API's page.
pub(super) async fn show(desk: Desk, Path(id): Path<String>) -> Response {
    api_page(desk, &id, StatusCode::OK, Form::default()).await
}

/// Sets the descriptions of an API's scopes (an emptied one is removed).
pub(super) async fn describe(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let api = or_page!(desk, desk.manager.api(&id).await);
    // Field `d.<scope>` per scope: the scope list is read from the API, not from the form,
    // so a description can only be given to a scope the API defines.
    let descriptions = api
        .scopes
        .iter()
        .map(|s| (s.to_owned(), posted.get(&format!("d.{s}")).to_owned()))
        .collect();
    let patch = ApiPatch {
        scope_descriptions: Some(descriptions),
        ..ApiPatch::default()
    };
    match desk.manager.update_api(&api.id, patch).await {
        Ok(_) => desk.done(&format!("/console/apis/{}", api.id)).await,
        Err(e) => match Form::refused(&posted, "describe", "", e) {
            Ok((status, form)) => api_page(desk, &id, status, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

/// A lifetime as typed: whole seconds (the manager checks it is positive).
fn seconds(posted: &Posted, field: &str) -> Result<i64, ManageError> {
    posted
        .get(field)
        .parse()
        .map_err(|_| ManageError::Invalid(format!("{field} must be a whole number of seconds")))
}

/// Changes an API's name, scopes (with their descriptions), algorithm and lifetimes. The
/// manager refuses to remove a scope a client is still granted.
pub(super) async fn edit(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let (scopes, mut typed) = parse_scope_lines(posted.get("scopes"));
    // Every scope is given its description, empty when none was typed, so that a removed
    // description is removed rather than kept.
    let scope_descriptions = scopes
        .iter()
        .map(|s| (s.clone(), typed.remove(s).unwrap_or_default()))
        .collect();
    let mut patch = ApiPatch {
        name: Some(posted.get("name").to_owned()),
        scopes: Some(ScopeList::Words(scopes.join(" "))),
        scope_descriptions: Some(scope_descriptions),
        alg: posted.opt("alg"),
        ..ApiPatch::default()
    };
    let mut bad_lifetime = None;
    for (field, slot) in [
        ("token_lifetime", &mut patch.token_lifetime),
        ("user_token_lifetime", &mut patch.user_token_lifetime),
        (
            "delegated_token_lifetime",
            &mut patch.delegated_token_lifetime,
        ),
        ("refresh_token_lifetime", &mut patch.refresh_token_lifetime),
    ] {
        match seconds(&posted, field) {
            Ok(v) => *slot = Some(v),
            Err(e) => {
                bad_lifetime.get_or_insert(e);
            }
        }
    }
    let changed = match bad_lifetime {
        Some(e) => Err(e),
        None => desk.manager.update_api(&id, patch).await,
    };
    match changed {
        Ok(api) => desk.done(&format!("/console/apis/{}", api.id)).await,
        Err(e) => {
            // The longer lifetime names first: `token_lifetime` is in each of them.
            let field = blame(
                &e,
                &[
                    ("user_token_lifetime", "user_token_lifetime"),
                    ("delegated_token_lifetime", "delegated_token_lifetime"),
                    ("refresh_token_lifetime", "refresh_token_lifetime"),
                    ("token_lifetime", "token_lifetime"),
                    ("algorithm", "alg"),
                    ("scope", "scopes"),
                    ("description", "scopes"),
                    ("name", "name"),
                ],
                "scopes",
            );
            match Form::refused(&posted, "edit", field, e) {
                Ok((status, form)) => api_page(desk, &id, status, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// Deletes an API (its grants go, its token families are revoked), once confirmed.
pub(super) async fn delete(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    if posted.get("confirm").is_empty() {
        let e = ManageError::Invalid(
            "tick the box to confirm: deleting an API removes every grant on it".into(),
        );
        return match Form::refused(&posted, "delete", "confirm", e) {
            Ok((status, form)) => api_page(desk, &id, status, form).await,
            Err(e) => desk.fail(e),
        };
    }
    match desk.manager.delete_api(&id).await {
        Ok(()) => desk.done("/console/apis").await,
        Err(e) => desk.fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lines_split_at_the_colon_that_ends_the_first_word() {
        let (scopes, d) = parse_scope_lines(
            "read: Read orders\n\n  read:orders: Read: every order  \nwrite\nwrite Change things",
        );
        assert_eq!(scopes, ["read", "read:orders", "write"]);
        assert_eq!(d["read"], "Read orders");
        assert_eq!(d["read:orders"], "Read: every order");
        assert_eq!(d["write"], "Change things");
    }
}
