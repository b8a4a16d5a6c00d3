//! `/account`: the signed-in user's own page. It lists the applications the user has approved
//! (remembered consents) and takes access back: the consent is forgotten and every token
//! chain of that user with that application is revoked at once.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{manage_error_page, render, see_other, session_user, Chrome, Posted};
use crate::manage::{Actor, ManageError};
use crate::state::AppState;

/// One approved application, as the page lists it.
struct Approval {
    client_id: String,
    app_name: String,
    api_name: String,
    scopes: Vec<String>,
    granted: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    chrome: &'a Chrome,
    approvals: Vec<Approval>,
}

/// A time as the pages show it: `2026-11-30 09:20 UTC`.
pub fn when(unix: i64) -> String {
    match cookie::time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => unix.to_string(),
    }
}

/// The account page (signed in), or the sign-in page.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(user) = session_user(&state, &headers).await else {
        return see_other("/signin?next=/account");
    };
    let chrome = Chrome::new(&state, &headers).await.signed_in(&user);
    let consents = match state.store.consents(&user.id).await {
        Ok(c) => c,
        Err(e) => return manage_error_page(&chrome, ManageError::Store(e)),
    };
    let mut approvals = Vec::new();
    for c in consents {
        let app_name = match state.store.client(&c.client_id).await {
            Ok(Some(client)) => client.name,
            _ => c.client_id.clone(),
        };
        let api_name = match state.store.api(&c.api_id).await {
            Ok(Some(api)) => api.name,
            _ => c.api_id.clone(),
        };
        approvals.push(Approval {
            client_id: c.client_id,
            app_name,
            api_name,
            scopes: c.scope.iter().map(str::to_owned).collect(),
            granted: when(c.granted_at),
        });
    }
    render(
        StatusCode::OK,
        &chrome,
        &AccountPage {
            chrome: &chrome,
            approvals,
        },
    )
}

/// Takes an application's access back.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Response {
    let Some(user) = session_user(&state, &headers).await else {
        return see_other("/signin?next=/account");
    };
    let chrome = Chrome::new(&state, &headers).await.signed_in(&user);
    let actor = Actor {
        who: format!("user:{}", user.id),
        address: None,
    };
    match state
        .manager
        .acting_as(actor)
        .forget_consent(&user.id, form.get("client_id"))
        .await
    {
        Ok(()) => see_other("/account"),
        Err(e) => manage_error_page(&chrome, e).into_response(),
    }
}
