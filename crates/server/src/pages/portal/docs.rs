//! `/developers/docs`: the integration guide of this deployment, drawn from live data: its
//! endpoints, its APIs with their scopes and token lifetimes, the flows it supports, and
//! copy-paste client-credentials samples in six languages.
//!
//! Anyone may read it. An organization's admin sees only the APIs the organization is
//! entitled to, and the samples filled in with one of the organization's applications (its
//! client id, and the audience and scopes it is granted). The secret is never on the page:
//! the samples read it from `CALYX_CLIENT_SECRET`.
//!
//! The samples (`templates/samples/cc_*.txt`) are included into the HTML template, so the
//! values in them are HTML-escaped like the rest of the page and come back exactly after
//! un-escaping. They sit inside string literals of six languages, so a value that could end
//! or interpolate a literal is never filled in: the placeholder is shown and the page says
//! why.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use calyx_core::model::{Api, Role};

use super::{all_clients, app_path};
use crate::manage::views::ClientView;
use crate::manage::{ManageResult, Manager, ADMIN_AUDIENCE, OPERATOR_ORG_ID};
use crate::pages::{manage_error_page, render, session_user, Chrome};
use crate::state::AppState;

/// The client id shown when there is no application to fill in.
const CLIENT_PLACEHOLDER: &str = "YOUR_CLIENT_ID";
/// The audience shown when there is no API to fill in.
const AUDIENCE_PLACEHOLDER: &str = "YOUR_API_AUDIENCE";
/// The scope shown when the real one cannot be filled in.
const SCOPE_PLACEHOLDER: &str = "YOUR_SCOPES";

/// One API as the guide describes it.
struct ApiDoc {
    name: String,
    audience: String,
    /// `(scope, description)`; the description is empty when the API gives none.
    scopes: Vec<(String, String)>,
    token_lifetime: String,
    user_token_lifetime: String,
    delegated_token_lifetime: String,
    refresh_token_lifetime: String,
}

impl ApiDoc {
    /// `api`, with only `scopes` of it (the organization's entitlement) when given.
    fn new(api: Api, scopes: Option<&[String]>) -> ApiDoc {
        let shown: Vec<String> = match scopes {
            Some(s) => s.to_vec(),
            None => api.scopes.iter().map(str::to_owned).collect(),
        };
        ApiDoc {
            scopes: shown
                .into_iter()
                .map(|s| {
                    let d = api.scope_descriptions.get(&s).cloned().unwrap_or_default();
                    (s, d)
                })
                .collect(),
            token_lifetime: lifetime(api.token_lifetime),
            user_token_lifetime: lifetime(api.user_token_lifetime),
            delegated_token_lifetime: lifetime(api.delegated_token_lifetime),
            refresh_token_lifetime: lifetime(api.refresh_token_lifetime),
            name: api.name,
            audience: api.audience,
        }
    }
}

/// An application the admin may pick for the samples.
struct AppChoice {
    id: String,
    name: String,
    confidential: bool,
    selected: bool,
}

#[derive(Template)]
#[template(path = "developers/docs.html")]
struct DocsPage<'a> {
    chrome: &'a Chrome,
    /// An organization's admin is reading: the guide is about the organization.
    for_org: bool,
    issuer: String,
    authorize_endpoint: String,
    jwks_uri: String,
    metadata_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    apis: Vec<ApiDoc>,
    apps: Vec<AppChoice>,
    /// The application the samples are filled in for, and its page.
    app: Option<(String, String)>,
    /// Why a value in the samples is a placeholder, or what to do next.
    notes: Vec<String>,
    // The samples' variables (see `templates/samples/`).
    token_endpoint: String,
    client_id: String,
    audience: String,
    scope: String,
}

/// Whether `v` can sit inside a string literal of every sample as it is: nothing that ends a
/// literal, escapes, or interpolates in one of the six languages (curl's single quotes,
/// double quotes elsewhere, `$` and backticks of the shell and JavaScript), and no control
/// character.
fn fits_literal(v: &str) -> bool {
    !v.chars()
        .any(|c| matches!(c, '\'' | '"' | '\\' | '$' | '`') || c.is_control())
}

/// A lifetime in seconds, in words too.
fn lifetime(seconds: i64) -> String {
    let words = match seconds {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        _ => return plural(seconds, "second"),
    };
    format!("{} ({words})", plural(seconds, "second"))
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Every API but the management API's own, page after page.
async fn public_apis(m: &Manager) -> ManageResult<Vec<ApiDoc>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = m
            .list_apis(after.as_deref(), crate::manage::MAX_PAGE)
            .await?;
        for view in page.items {
            if view.audience != ADMIN_AUDIENCE {
                out.push(ApiDoc::new(m.api(&view.id).await?, None));
            }
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The APIs `org_id` is entitled to, with the entitled scopes only.
async fn entitled_apis(m: &Manager, org_id: &str) -> ManageResult<Vec<ApiDoc>> {
    let mut out = Vec::new();
    for e in m.entitlements(org_id).await? {
        if e.audience != ADMIN_AUDIENCE {
            out.push(ApiDoc::new(m.api(&e.api_id).await?, Some(&e.scopes)));
        }
    }
    Ok(out)
}

/// The values the samples are filled in with.
struct Filled {
    /// The application's id, name and page.
    app: Option<(String, String, String)>,
    client_id: String,
    audience: String,
    scope: String,
    notes: Vec<String>,
}

/// Fills the samples in for one of `apps`: the one `wanted` names, else the first
/// confidential one; the audience and scopes of its default grant (else its first).
async fn fill_for_org(
    m: &Manager,
    apps: &[ClientView],
    wanted: Option<&str>,
    apis: &[ApiDoc],
) -> ManageResult<Filled> {
    let mut notes = Vec::new();
    let first_audience = apis.first().map(|a| a.audience.clone());
    let mut chosen = wanted.and_then(|w| apps.iter().find(|a| a.id == w));
    if let (Some(_), None) = (wanted, chosen) {
        // The same words whether the id is unknown or another organization's.
        notes
            .push("None of your applications has that client id; the samples show another.".into());
    }
    if chosen.is_none() {
        chosen = apps.iter().find(|a| a.client_type == "confidential");
    }
    let Some(app) = chosen else {
        notes.push(
            "Register a confidential application to see its client id and grants in the samples."
                .into(),
        );
        return Ok(Filled {
            app: None,
            client_id: CLIENT_PLACEHOLDER.into(),
            audience: first_audience.unwrap_or_else(|| AUDIENCE_PLACEHOLDER.into()),
            scope: String::new(),
            notes,
        });
    };
    if app.client_type != "confidential" {
        notes.push(format!(
            "{} is a public application: it has no secret and cannot use client credentials. \
             Pick a confidential one for these samples.",
            app.name
        ));
    }
    let grants = m.list_grants(&app.id).await?;
    let grant = grants.iter().find(|g| g.default).or(grants.first());
    let (audience, scope) = match grant {
        Some(g) => (g.audience.clone(), g.scopes.join(" ")),
        None => {
            notes.push(format!(
                "{} has no grant yet: grant it scopes on its page, then come back.",
                app.name
            ));
            (
                first_audience.unwrap_or_else(|| AUDIENCE_PLACEHOLDER.into()),
                String::new(),
            )
        }
    };
    Ok(Filled {
        app: Some((app.id.clone(), app.name.clone(), app_path(&app.id))),
        client_id: app.id.clone(),
        audience,
        scope,
        notes,
    })
}

/// Replaces any value that cannot sit inside the samples' string literals by its
/// placeholder, saying why.
fn make_safe(f: &mut Filled) {
    for (what, value, placeholder) in [
        ("client id", &mut f.client_id, CLIENT_PLACEHOLDER),
        ("audience", &mut f.audience, AUDIENCE_PLACEHOLDER),
        ("scope", &mut f.scope, SCOPE_PLACEHOLDER),
    ] {
        if !fits_literal(value) {
            f.notes.push(format!(
                "The {what} holds a quote, backslash, dollar sign, backtick or control \
                 character, which would break the samples' string literals, so it shows as \
                 {placeholder}: fill it in yourself, escaped for your language."
            ));
            *value = placeholder.to_owned();
        }
    }
}

/// The guide.
pub(super) async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let user = session_user(&state, &headers).await;
    let org_admin = user
        .as_ref()
        .filter(|u| u.role == Some(Role::OrgAdmin) && u.org_id != OPERATOR_ORG_ID);
    let chrome = match (&user, org_admin) {
        (_, Some(u)) => super::chrome(&state, &headers, u, "/developers/docs").await,
        (Some(u), None) => Chrome::new(&state, &headers).await.signed_in(u),
        (None, None) => Chrome::new(&state, &headers).await,
    };
    let wanted = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "app")
            .map(|(_, v)| v.into_owned())
    });
    match build(
        &state,
        &chrome,
        org_admin.map(|u| u.org_id.as_str()),
        wanted,
    )
    .await
    {
        Ok(page) => render(StatusCode::OK, &chrome, &page),
        Err(e) => manage_error_page(&chrome, e),
    }
}

async fn build<'a>(
    state: &AppState,
    chrome: &'a Chrome,
    org_id: Option<&str>,
    wanted: Option<String>,
) -> ManageResult<DocsPage<'a>> {
    let m = &state.manager;
    let issuer = state.issuer.trim_end_matches('/').to_owned();
    let (apis, apps, mut filled) = match org_id {
        Some(org) => {
            let apis = entitled_apis(m, org).await?;
            let apps = all_clients(m, org).await?;
            let filled = fill_for_org(m, &apps, wanted.as_deref(), &apis).await?;
            (apis, apps, filled)
        }
        None => {
            let apis = public_apis(m).await?;
            let filled = Filled {
                app: None,
                client_id: CLIENT_PLACEHOLDER.into(),
                audience: apis
                    .first()
                    .map_or_else(|| AUDIENCE_PLACEHOLDER.into(), |a| a.audience.clone()),
                scope: String::new(),
                notes: Vec::new(),
            };
            (apis, Vec::new(), filled)
        }
    };
    make_safe(&mut filled);
    let mut token_endpoint = format!("{issuer}/oauth/token");
    if !fits_literal(&token_endpoint) {
        // The issuer is configuration, checked at start-up; this is only belt and braces.
        token_endpoint = "https://YOUR_ISSUER/oauth/token".into();
    }
    let apps = apps
        .into_iter()
        .map(|a| AppChoice {
            selected: filled.app.as_ref().is_some_and(|(id, _, _)| *id == a.id),
            confidential: a.client_type == "confidential",
            id: a.id,
            name: a.name,
        })
        .collect();
    Ok(DocsPage {
        chrome,
        for_org: org_id.is_some(),
        authorize_endpoint: format!("{issuer}/authorize"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        metadata_uri: format!("{issuer}/.well-known/oauth-authorization-server"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        issuer,
        apis,
        apps,
        app: filled.app.map(|(_, name, href)| (name, href)),
        notes: filled.notes,
        token_endpoint,
        client_id: filled.client_id,
        audience: filled.audience,
        scope: filled.scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_values_go_into_literals() {
        for ok in [
            "https://api.example/?a=1&b=<x>",
            "read write",
            "abc-DEF_09.~",
        ] {
            assert!(fits_literal(ok), "{ok}");
        }
        for bad in ["a'b", "a\"b", "a\\b", "a$b", "a`b", "a\nb"] {
            assert!(!fits_literal(bad), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_read_in_words() {
        assert_eq!(lifetime(86_400), "86400 seconds (1 day)");
        assert_eq!(lifetime(7_200), "7200 seconds (2 hours)");
        assert_eq!(lifetime(90), "90 seconds");
        assert_eq!(lifetime(1), "1 second");
    }

    #[test]
    fn unsafe_values_become_placeholders_with_a_reason() {
        let mut f = Filled {
            app: None,
            client_id: "ok".into(),
            audience: "https://x/'".into(),
            scope: "read".into(),
            notes: Vec::new(),
        };
        make_safe(&mut f);
        assert_eq!(
            (f.client_id.as_str(), f.audience.as_str()),
            ("ok", AUDIENCE_PLACEHOLDER)
        );
        assert_eq!(f.notes.len(), 1);
    }
}
