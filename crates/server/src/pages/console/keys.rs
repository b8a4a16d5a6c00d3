//! The console's signing keys: every key with its state, rotating an algorithm's key, and
//! retiring a compromised key at once.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use calyx_core::model::SigningAlg;

use super::{Desk, Section};
use crate::manage::ManageError;
use crate::pages::account::when;
use crate::pages::{Chrome, Posted};

/// A key as the list shows it.
struct KeyRow {
    kid: String,
    alg: &'static str,
    state: &'static str,
    created: String,
    retires: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage<'a> {
    chrome: &'a Chrome,
    keys: Vec<KeyRow>,
    algs: Vec<&'static str>,
    notice: Option<String>,
}

async fn keys_page(desk: Desk, notice: Option<String>) -> Response {
    let desk = desk.at(Section::Keys);
    let keys = or_page!(desk, desk.manager.list_keys().await)
        .into_iter()
        .map(|k| KeyRow {
            kid: k.kid,
            alg: k.alg,
            state: k.state,
            created: when(k.created_at),
            retires: k.retires_at.map(when).unwrap_or_default(),
        })
        .collect();
    desk.show(
        StatusCode::OK,
        &KeysPage {
            chrome: &desk.chrome,
            keys,
            algs: SigningAlg::ALL.iter().map(|a| a.as_str()).collect(),
            notice,
        },
    )
}

/// `?rotated=<alg>`: the page after a rotation says what happened.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct KeysQuery {
    rotated: Option<String>,
}

/// Every signing key.
pub(super) async fn list(desk: Desk, Query(q): Query<KeysQuery>) -> Response {
    let notice = q
        .rotated
        .and_then(|a| a.parse::<SigningAlg>().ok())
        .map(|a| {
            format!(
                "The {} key was rotated: the next key now signs.",
                a.as_str()
            )
        });
    keys_page(desk, notice).await
}

/// Rotates the key of the algorithm posted.
pub(super) async fn rotate(desk: Desk, posted: Posted) -> Response {
    let alg: SigningAlg = match posted.get("alg").parse() {
        Ok(a) => a,
        Err(e) => return desk.fail(ManageError::Invalid(e)),
    };
    match desk.manager.rotate_key(alg).await {
        Ok(_) => {
            desk.done(&format!("/console/keys?rotated={}", alg.as_str()))
                .await
        }
        Err(e) => desk.fail(e),
    }
}

/// Retires a key at once; a successor takes over its role.
pub(super) async fn retire(desk: Desk, Path(kid): Path<String>, _: Posted) -> Response {
    match desk.manager.retire_key(&kid).await {
        Ok(_) => desk.done("/console/keys").await,
        Err(e) => desk.fail(e),
    }
}
