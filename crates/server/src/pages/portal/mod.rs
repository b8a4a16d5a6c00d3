//! `/developers/`: the developer portal, where an organization's admins register the
//! organization's applications, grant them scopes within what the organization is entitled
//! to, rotate their secrets, delete them and watch their usage; and (`docs`) the integration
//! guide of this deployment, drawn from live data.
//!
//! The organization is always the signed-in admin's own: it never comes from a form or a
//! path. Every client id named in a path goes through `Manager::org_client`, so another
//! organization's application is "not found" exactly like one that does not exist, and its
//! existence is never revealed.

mod docs;

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use calyx_core::model::{Client, ClientType, GrantType, User};
use calyx_core::redirect;

use super::account::when;
use super::{
    chart, manage_error_page, message_page, path_segment, render, see_other, Chrome, OrgAdmin,
    Posted,
};
use crate::manage::views::ClientView;
use crate::manage::{
    Actor, ClientPatch, ManageError, ManageResult, Manager, NewClient, PORTAL_GRANT_TYPES,
};
use crate::state::AppState;

/// The portal's routes.
pub(crate) fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    use axum::routing::{get, post};
    vec![
        (
            "/developers",
            get(|| async { axum::response::Redirect::permanent("/developers/") }),
        ),
        ("/developers/", get(apps)),
        ("/developers/apps/new", get(new_app).post(create_app)),
        ("/developers/apps/{id}", get(app)),
        ("/developers/apps/{id}/edit", get(edit_app).post(update_app)),
        ("/developers/apps/{id}/grants", post(save_grants)),
        ("/developers/apps/{id}/rotate", post(rotate)),
        ("/developers/apps/{id}/delete", post(delete)),
        ("/developers/docs", get(docs::page)),
    ]
}

/// The grace periods offered when rotating a secret: `(seconds, label)`.
const GRACE_PERIODS: [(i64, &str); 4] = [
    (0, "None: the old secret stops working now"),
    (3_600, "1 hour"),
    (86_400, "24 hours"),
    (7 * 86_400, "7 days"),
];

/// The portal's chrome for `user`, with `current` marked in the navigation.
async fn chrome(state: &AppState, headers: &HeaderMap, user: &User, current: &str) -> Chrome {
    let mut chrome = Chrome::new(state, headers).await.signed_in(user);
    chrome.home = "/developers/";
    chrome.nav = nav(current);
    chrome
}

/// The portal's navigation, `current` marked.
fn nav(current: &str) -> Vec<(&'static str, &'static str, bool)> {
    [
        ("/developers/", "Applications"),
        ("/developers/docs", "Documentation"),
    ]
    .into_iter()
    .map(|(href, label)| (href, label, href == current))
    .collect()
}

/// The manager recording changes as the signed-in admin, from `peer`.
fn acting(state: &AppState, user: &User, peer: SocketAddr) -> Manager {
    state.manager.acting_as(Actor {
        who: format!("user:{}", user.id),
        address: Some(peer.ip().to_string()),
    })
}

/// One of the organization's applications, as a `/developers/apps/{id}/...` handler starts:
/// the signed-in admin, the page chrome, the client (another organization's, or none, is the
/// same 404 page), and the manager recording changes as the admin.
struct OrgApp {
    state: AppState,
    user: User,
    chrome: Chrome,
    client: Client,
    manager: Manager,
}

impl FromRequestParts<AppState> for OrgApp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let OrgAdmin(user) = OrgAdmin::from_request_parts(parts, state).await?;
        let chrome = chrome(state, &parts.headers, &user, "").await;
        let Ok(Path(id)) = Path::<String>::from_request_parts(parts, state).await else {
            return Err(message_page(
                StatusCode::NOT_FOUND,
                &chrome,
                "Not found",
                "There is no such application.",
            ));
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(p)| *p);
        let client = match state.manager.org_client(&user.org_id, &id).await {
            Ok(c) => c,
            Err(e) => return Err(manage_error_page(&chrome, e)),
        };
        let manager = state.manager.acting_as(Actor {
            who: format!("user:{}", user.id),
            address: peer.map(|p| p.ip().to_string()),
        });
        Ok(OrgApp {
            state: state.clone(),
            user,
            chrome,
            client,
            manager,
        })
    }
}

/// The page of the application `id`.
pub(super) fn app_path(id: &str) -> String {
    format!("/developers/apps/{}", path_segment(id))
}

/// Every client of `org_id`, page after page.
pub(super) async fn all_clients(m: &Manager, org_id: &str) -> ManageResult<Vec<ClientView>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = m
            .list_clients(Some(org_id), after.as_deref(), crate::manage::MAX_PAGE)
            .await?;
        out.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// One application in the list.
struct AppRow {
    name: String,
    id: String,
    href: String,
    client_type: &'static str,
    created: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "developers/apps.html")]
struct AppsPage<'a> {
    chrome: &'a Chrome,
    apps: Vec<AppRow>,
}

/// `/developers/`: the organization's applications.
async fn apps(
    State(state): State<AppState>,
    OrgAdmin(user): OrgAdmin,
    headers: HeaderMap,
) -> Response {
    let chrome = chrome(&state, &headers, &user, "/developers/").await;
    let clients = match all_clients(&state.manager, &user.org_id).await {
        Ok(c) => c,
        Err(e) => return manage_error_page(&chrome, e),
    };
    let apps = clients
        .into_iter()
        .map(|c| AppRow {
            href: app_path(&c.id),
            client_type: if c.client_type == "public" {
                "Public"
            } else {
                "Confidential"
            },
            created: when(c.created_at),
            disabled: c.disabled,
            name: c.name,
            id: c.id,
        })
        .collect();
    render(
        StatusCode::OK,
        &chrome,
        &AppsPage {
            chrome: &chrome,
            apps,
        },
    )
}

/// What the registration form holds, as typed (re-shown after an error).
#[derive(Default)]
struct AppForm {
    name: String,
    description: String,
    website_uri: String,
    privacy_policy_uri: String,
    tos_uri: String,
    redirect_uris: String,
    public: bool,
    grant_types: Vec<String>,
}

/// The application a registration form changes.
struct Editing {
    /// Where its page is (the form posts to `{href}/edit`).
    href: String,
    /// `confidential` or `public`: fixed once registered (a secret cannot appear or vanish).
    client_type: String,
}

/// One grant-type checkbox.
struct GrantChoice {
    value: &'static str,
    label: &'static str,
    hint: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "developers/new_app.html")]
struct NewAppPage<'a> {
    chrome: &'a Chrome,
    /// The application being changed; `None` when registering a new one.
    editing: Option<Editing>,
    form: AppForm,
    grant_choices: Vec<GrantChoice>,
    /// The field the error is about (`name`, `redirect_uris`, ..., or `form` for the whole
    /// form); empty when there is none. The template marks that field invalid.
    error_for: &'static str,
    error: String,
}

impl NewAppPage<'_> {
    /// The `id` of the error message, which the invalid field names in `aria-describedby`.
    fn error_id(&self) -> String {
        format!("{}-error", self.error_for.replace('_', "-"))
    }
}

fn grant_label(g: GrantType) -> (&'static str, &'static str) {
    match g {
        GrantType::ClientCredentials => (
            "Client credentials",
            "Machine to machine: your backend gets tokens with its own secret.",
        ),
        GrantType::AuthorizationCode => (
            "Authorization code with PKCE",
            "People sign in and approve your application; needs a redirect URI.",
        ),
        GrantType::RefreshToken => (
            "Refresh token",
            "Keeps a signed-in person's session going without signing in again.",
        ),
        GrantType::TokenExchange => ("Token exchange", ""),
    }
}

fn new_app_page(
    chrome: &Chrome,
    status: StatusCode,
    form: AppForm,
    error: Option<(&'static str, String)>,
) -> Response {
    app_form_page(chrome, status, None, form, error)
}

/// The registration form, for a new application or (with `editing`) an existing one.
fn app_form_page(
    chrome: &Chrome,
    status: StatusCode,
    editing: Option<Editing>,
    form: AppForm,
    error: Option<(&'static str, String)>,
) -> Response {
    let grant_choices = PORTAL_GRANT_TYPES
        .iter()
        .map(|g| {
            let (label, hint) = grant_label(*g);
            GrantChoice {
                value: g.as_str(),
                label,
                hint,
                checked: form.grant_types.iter().any(|v| v == g.as_str()),
            }
        })
        .collect();
    let (error_for, error) = error.unwrap_or(("", String::new()));
    render(
        status,
        chrome,
        &NewAppPage {
            chrome,
            editing,
            form,
            grant_choices,
            error_for,
            error,
        },
    )
}

/// `/developers/apps/new`: the registration form.
async fn new_app(
    State(state): State<AppState>,
    OrgAdmin(user): OrgAdmin,
    headers: HeaderMap,
) -> Response {
    let chrome = chrome(&state, &headers, &user, "").await;
    let form = AppForm {
        grant_types: vec![GrantType::ClientCredentials.as_str().to_owned()],
        ..AppForm::default()
    };
    new_app_page(&chrome, StatusCode::OK, form, None)
}

/// Reads and checks the registration form: the new client, or the field at fault and why.
/// The manager checks again; checking here first names the field for the person.
fn read_registration(
    org_id: &str,
    form: &Posted,
) -> (AppForm, Result<NewClient, (&'static str, String)>) {
    let typed = AppForm {
        name: form.get("name").to_owned(),
        description: form.get("description").to_owned(),
        website_uri: form.get("website_uri").to_owned(),
        privacy_policy_uri: form.get("privacy_policy_uri").to_owned(),
        tos_uri: form.get("tos_uri").to_owned(),
        redirect_uris: form.get("redirect_uris").to_owned(),
        public: form.get("type") == "public",
        grant_types: form
            .all("grant_types")
            .iter()
            .map(|g| (*g).to_owned())
            .collect(),
    };
    let checked = check_registration(org_id, form, &typed);
    (typed, checked)
}

fn check_registration(
    org_id: &str,
    form: &Posted,
    typed: &AppForm,
) -> Result<NewClient, (&'static str, String)> {
    let name = typed.name.as_str();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err((
            "name",
            "Give the application a name of 1 to 200 characters.".into(),
        ));
    }
    if typed.description.chars().count() > 1000 {
        return Err((
            "description",
            "Keep the description under 1000 characters.".into(),
        ));
    }
    for (field, what, value) in [
        ("website_uri", "the website URI", &typed.website_uri),
        (
            "privacy_policy_uri",
            "the privacy policy URI",
            &typed.privacy_policy_uri,
        ),
        ("tos_uri", "the terms of service URI", &typed.tos_uri),
    ] {
        if !value.is_empty() {
            redirect::check_link(what, value).map_err(|e| (field, capitalized(&e)))?;
        }
    }
    let redirect_uris: Vec<String> = typed
        .redirect_uris
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    for uri in &redirect_uris {
        redirect::check_redirect_uri(uri).map_err(|e| ("redirect_uris", capitalized(&e)))?;
    }
    let client_type = match form.get("type") {
        "confidential" => ClientType::Confidential,
        "public" => ClientType::Public,
        _ => return Err(("type", "Choose confidential or public.".into())),
    };
    let mut grant_types = Vec::new();
    for v in &typed.grant_types {
        match GrantType::parse(v).filter(|g| PORTAL_GRANT_TYPES.contains(g)) {
            Some(g) if !grant_types.contains(&g) => grant_types.push(g),
            Some(_) => {}
            None => return Err(("grant_types", format!("{v} cannot be chosen here."))),
        }
    }
    if grant_types.is_empty() {
        return Err(("grant_types", "Choose at least one grant type.".into()));
    }
    if client_type == ClientType::Public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err((
            "grant_types",
            "A public application has no secret, so it cannot use client credentials: \
             choose confidential, or untick client credentials."
                .into(),
        ));
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err((
            "redirect_uris",
            "The authorization code flow needs at least one redirect URI.".into(),
        ));
    }
    let optional = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
    Ok(NewClient {
        org_id: org_id.to_owned(),
        client_id: None,
        name: name.to_owned(),
        client_type,
        grant_types,
        redirect_uris,
        description: optional(&typed.description),
        website_uri: optional(&typed.website_uri),
        privacy_policy_uri: optional(&typed.privacy_policy_uri),
        tos_uri: optional(&typed.tos_uri),
        ..NewClient::default()
    })
}

/// A message from the checks, as the start of a sentence.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => format!(
            "{}{}.",
            first.to_uppercase(),
            c.as_str().trim_end_matches('.')
        ),
        None => String::new(),
    }
}

/// Registers an application for the admin's organization; shows its secret once.
async fn create_app(
    State(state): State<AppState>,
    OrgAdmin(user): OrgAdmin,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Posted,
) -> Response {
    let chrome = chrome(&state, &headers, &user, "").await;
    let (typed, checked) = read_registration(&user.org_id, &form);
    let new = match checked {
        Ok(n) => n,
        Err(e) => return new_app_page(&chrome, StatusCode::BAD_REQUEST, typed, Some(e)),
    };
    let (client, secret) = match acting(&state, &user, peer).create_client(new).await {
        Ok(made) => made,
        Err(ManageError::Invalid(why) | ManageError::Conflict(why)) => {
            return new_app_page(
                &chrome,
                StatusCode::BAD_REQUEST,
                typed,
                Some(("form", capitalized(&why))),
            )
        }
        Err(e) => return manage_error_page(&chrome, e),
    };
    state.apply_change().await;
    let notice = format!("{} is registered.", client.name);
    app_page(
        &state,
        &chrome,
        client,
        Shown {
            secret,
            notice: Some(notice),
            status: StatusCode::CREATED,
        },
    )
    .await
}

/// The registration of `client` as the form shows it.
fn form_of(client: &Client) -> AppForm {
    AppForm {
        name: client.name.clone(),
        description: client.description.clone().unwrap_or_default(),
        website_uri: client.website_uri.clone().unwrap_or_default(),
        privacy_policy_uri: client.privacy_policy_uri.clone().unwrap_or_default(),
        tos_uri: client.tos_uri.clone().unwrap_or_default(),
        redirect_uris: client.redirect_uris.join("\n"),
        public: client.client_type == ClientType::Public,
        grant_types: client
            .grant_types
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
    }
}

fn editing(client: &Client) -> Editing {
    Editing {
        href: app_path(&client.id),
        client_type: client.client_type.as_str().to_owned(),
    }
}

/// `/developers/apps/{id}/edit`: the application's registration, to change.
async fn edit_app(
    State(state): State<AppState>,
    OrgAdmin(user): OrgAdmin,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let chrome = chrome(&state, &headers, &user, "").await;
    match state.manager.org_client(&user.org_id, &id).await {
        Ok(c) => app_form_page(
            &chrome,
            StatusCode::OK,
            Some(editing(&c)),
            form_of(&c),
            None,
        ),
        Err(e) => manage_error_page(&chrome, e),
    }
}

/// Changes the application's registration (its type stays: a secret cannot appear or vanish).
async fn update_app(app: OrgApp, form: Posted) -> Response {
    let OrgApp {
        state,
        user,
        chrome,
        client,
        manager,
    } = app;
    let (mut typed, checked) = read_registration(&user.org_id, &form);
    typed.public = client.client_type == ClientType::Public;
    let new = match checked {
        Ok(n) if n.client_type == client.client_type => n,
        Ok(_) => {
            let why = (
                "type",
                "The type of an application cannot change.".to_owned(),
            );
            return app_form_page(
                &chrome,
                StatusCode::BAD_REQUEST,
                Some(editing(&client)),
                typed,
                Some(why),
            );
        }
        Err(e) => {
            return app_form_page(
                &chrome,
                StatusCode::BAD_REQUEST,
                Some(editing(&client)),
                typed,
                Some(e),
            )
        }
    };
    // Only the registration: never `disabled`, which is the provider's to set.
    let patch = ClientPatch {
        name: Some(new.name),
        description: Some(new.description.unwrap_or_default()),
        website_uri: Some(new.website_uri.unwrap_or_default()),
        privacy_policy_uri: Some(new.privacy_policy_uri.unwrap_or_default()),
        tos_uri: Some(new.tos_uri.unwrap_or_default()),
        redirect_uris: Some(new.redirect_uris),
        grant_types: Some(
            new.grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
        ),
        ..ClientPatch::default()
    };
    match manager.update_client(&client.id, patch).await {
        Ok(updated) => {
            state.apply_change().await;
            let shown = Shown {
                secret: None,
                notice: Some(format!("{} is updated.", updated.name)),
                status: StatusCode::OK,
            };
            app_page(&state, &chrome, updated, shown).await
        }
        Err(ManageError::Invalid(why)) => app_form_page(
            &chrome,
            StatusCode::BAD_REQUEST,
            Some(editing(&client)),
            typed,
            Some(("form", capitalized(&why))),
        ),
        Err(e) => manage_error_page(&chrome, e),
    }
}

/// What an application page shows beyond the stored facts.
struct Shown {
    /// A secret just made: shown this once.
    secret: Option<String>,
    /// What just happened.
    notice: Option<String>,
    status: StatusCode,
}

/// One entitled API with the application's grant on it.
struct GrantForm {
    api_id: String,
    api_name: String,
    audience: String,
    /// `(scope, granted)` for each scope the organization is entitled to.
    scopes: Vec<(String, bool)>,
    /// Scopes granted beyond the entitlement (an operator's grant, or an entitlement that
    /// shrank): saving the form removes them, so the page says so.
    beyond: Vec<String>,
}

/// A grant the organization is not entitled to change (made by an operator).
struct OtherGrant {
    audience: String,
    scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "developers/app.html")]
struct AppPage<'a> {
    chrome: &'a Chrome,
    app: ClientView,
    href: String,
    docs_href: String,
    secret: Option<String>,
    notice: Option<String>,
    grants: Vec<GrantForm>,
    other_grants: Vec<OtherGrant>,
    graces: &'static [(i64, &'static str)],
    created: String,
    previous_until: Option<String>,
    chart: chart::UsageChart,
}

/// The application page of `client` (which the caller checked is the organization's).
async fn app_page(state: &AppState, chrome: &Chrome, client: Client, shown: Shown) -> Response {
    match app_page_parts(state, chrome, client, shown).await {
        Ok(r) => r,
        Err(e) => manage_error_page(chrome, e),
    }
}

async fn app_page_parts(
    state: &AppState,
    chrome: &Chrome,
    client: Client,
    shown: Shown,
) -> ManageResult<Response> {
    let m = &state.manager;
    let entitlements = m.entitlements(&client.org_id).await?;
    let granted = m.list_grants(&client.id).await?;
    let mut grants = Vec::new();
    for e in &entitlements {
        let current = granted.iter().find(|g| g.api_id == e.api_id);
        let has = |s: &str| current.is_some_and(|g| g.scopes.iter().any(|x| x == s));
        grants.push(GrantForm {
            api_id: e.api_id.clone(),
            api_name: e.api_name.clone(),
            audience: e.audience.clone(),
            scopes: e.scopes.iter().map(|s| (s.clone(), has(s))).collect(),
            beyond: current
                .map(|g| {
                    g.scopes
                        .iter()
                        .filter(|s| !e.scopes.contains(s))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    let other_grants = granted
        .iter()
        .filter(|g| !entitlements.iter().any(|e| e.api_id == g.api_id))
        .map(|g| OtherGrant {
            audience: g.audience.clone(),
            scopes: g.scopes.clone(),
        })
        .collect();
    let now = state.clock.now();
    let usage = m.client_usage(&client.id, chart::since(now)).await?;
    let app = ClientView::from(client);
    let docs_href = format!(
        "/developers/docs?app={}",
        url::form_urlencoded::byte_serialize(app.id.as_bytes()).collect::<String>()
    );
    let previous_until = app
        .previous_secret_expires_at
        .filter(|t| *t > now)
        .map(when);
    let page = AppPage {
        chrome,
        href: app_path(&app.id),
        docs_href,
        created: when(app.created_at),
        previous_until,
        app,
        secret: shown.secret,
        notice: shown.notice,
        grants,
        other_grants,
        graces: &GRACE_PERIODS,
        chart: chart::layout(&usage, now),
    };
    Ok(render(shown.status, chrome, &page))
}

/// `/developers/apps/{id}`: one application.
async fn app(app: OrgApp) -> Response {
    let shown = Shown {
        secret: None,
        notice: None,
        status: StatusCode::OK,
    };
    app_page(&app.state, &app.chrome, app.client, shown).await
}

/// Saves the application's grant on one API: the ticked scopes, within the entitlement
/// (`set_app_grant` refuses anything beyond it, and then changes nothing).
async fn save_grants(app: OrgApp, form: Posted) -> Response {
    let OrgApp {
        state,
        user,
        chrome,
        client,
        manager,
    } = app;
    let scopes = form.all("scope").join(" ");
    let result = manager
        .set_app_grant(&user.org_id, &client.id, form.get("api_id"), &scopes)
        .await;
    match result {
        Ok(()) => {
            state.apply_change().await;
            see_other(&app_path(&client.id))
        }
        Err(e) => manage_error_page(&chrome, e),
    }
}

/// Gives the application a new secret, shown once; the old one keeps working for the grace
/// period chosen.
async fn rotate(app: OrgApp, form: Posted) -> Response {
    let OrgApp {
        state,
        user: _,
        chrome,
        client,
        manager,
    } = app;
    // Only the offered periods: the form is the only way here.
    let Some(&(grace, label)) = GRACE_PERIODS
        .iter()
        .find(|(s, _)| form.get("grace").parse::<i64>() == Ok(*s))
    else {
        return message_page(
            StatusCode::BAD_REQUEST,
            &chrome,
            "That did not work",
            "Choose how long the old secret keeps working.",
        );
    };
    match manager.rotate_secret(&client.id, grace).await {
        Ok((client, secret)) => {
            state.apply_change().await;
            let notice = if grace == 0 {
                "The secret was replaced: the old one no longer works.".to_owned()
            } else {
                format!("The secret was replaced: the old one keeps working for {label}.")
            };
            let shown = Shown {
                secret: Some(secret),
                notice: Some(notice),
                status: StatusCode::OK,
            };
            app_page(&state, &chrome, client, shown).await
        }
        Err(e) => manage_error_page(&chrome, e),
    }
}

/// Deletes the application (its grants go and its tokens are revoked), once confirmed.
async fn delete(app: OrgApp, form: Posted) -> Response {
    let OrgApp {
        state,
        user: _,
        chrome,
        client,
        manager,
    } = app;
    if form.opt("confirm").is_none() {
        return message_page(
            StatusCode::BAD_REQUEST,
            &chrome,
            "Not deleted",
            &format!(
                "{} was not deleted: tick the box that confirms it, then delete again.",
                client.name
            ),
        );
    }
    match manager.delete_client(&client.id).await {
        Ok(()) => {
            state.apply_change().await;
            see_other("/developers/")
        }
        Err(e) => manage_error_page(&chrome, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_become_safe_path_segments() {
        assert_eq!(app_path("abcXYZ09-_.~"), "/developers/apps/abcXYZ09-_.~");
        assert_eq!(app_path("a b/c?d"), "/developers/apps/a%20b%2Fc%3Fd");
        assert_eq!(app_path("é"), "/developers/apps/%C3%A9");
    }

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            capitalized("the website URI is bad"),
            "The website URI is bad."
        );
        assert_eq!(capitalized("done."), "Done.");
        assert_eq!(capitalized(""), "");
    }
}
