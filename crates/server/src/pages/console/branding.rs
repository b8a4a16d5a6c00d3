//! The console's branding form: the name, logo and accent colour of every page, with the
//! management layer's rules (a readable colour, a safe logo URL) shown by the field at fault.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::{blame, Desk, Form, Section};
use crate::manage::{Branding, BrandingPatch};
use crate::pages::{Chrome, Posted};

#[derive(Template)]
#[template(path = "console/branding.html")]
struct BrandingPage<'a> {
    chrome: &'a Chrome,
    /// What the fields hold: the saved branding, or what was typed when it was refused.
    name: String,
    logo_url: String,
    color: String,
    saved: bool,
    form: Form,
}

fn branding_page(desk: Desk, b: Branding, status: StatusCode, saved: bool, form: Form) -> Response {
    let desk = desk.at(Section::Branding);
    desk.show(
        status,
        &BrandingPage {
            chrome: &desk.chrome,
            name: b.name,
            logo_url: b.logo_url.unwrap_or_default(),
            color: b.color,
            saved,
            form,
        },
    )
}

/// `?saved=1` after a change.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct BrandingQuery {
    saved: Option<String>,
}

/// The branding form, filled with the current branding.
pub(super) async fn page(
    desk: Desk,
    axum::extract::Query(q): axum::extract::Query<BrandingQuery>,
) -> Response {
    let b = or_page!(desk, desk.manager.branding().await);
    branding_page(desk, b, StatusCode::OK, q.saved.is_some(), Form::default())
}

/// Saves the branding; a refusal shows the form again with what was typed.
pub(super) async fn save(desk: Desk, posted: Posted) -> Response {
    let patch = BrandingPatch {
        name: Some(posted.get("name").to_owned()),
        logo_url: Some(posted.get("logo_url").to_owned()),
        color: Some(posted.get("color").to_owned()),
    };
    match desk.manager.update_branding(patch).await {
        Ok(_) => desk.done("/console/branding?saved=1").await,
        Err(e) => {
            let field = blame(
                &e,
                &[
                    ("colo", "color"),
                    ("contrast", "color"),
                    ("logo", "logo_url"),
                ],
                "name",
            );
            match Form::refused(&posted, "branding", field, e) {
                Ok((status, form)) => {
                    let typed = Branding {
                        name: posted.get("name").to_owned(),
                        logo_url: posted.opt("logo_url"),
                        color: posted.get("color").to_owned(),
                    };
                    branding_page(desk, typed, status, false, form)
                }
                Err(e) => desk.fail(e),
            }
        }
    }
}
