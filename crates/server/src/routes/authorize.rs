//! The authorization endpoint (RFC 6749 §4.1.1) with its login and consent pages.
//!
//! `GET /authorize` checks the client and redirect URI first: problems with either show an
//! error page and never redirect (an unverified redirect URI is an open redirect). Every
//! other problem is sent back to the verified redirect URI with `error`, `error_description`
//! and `state`. The validated request is sealed into the forms, so the login and consent
//! POSTs continue exactly what `/authorize` checked, on any node.
//!
//! An approval is remembered per user, application and API: a later request for no more
//! than was approved skips the consent page (unless it says `prompt=consent`). The user takes
//! it back on `/account`. The consent page offers "Not you?", which signs out and asks again.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use calyx_core::authorize::{self, Pending};
use calyx_core::model::{Client, Consent, User};
use calyx_core::request::AuthorizeParams;
use calyx_core::{redirect, ErrorCode, OAuthError};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::pages::signin::{check_sign_in, session_cookie, SignInError, WRONG_PASSWORD};
use crate::pages::{self, session_user, Chrome};
use crate::state::{AppState, ClientEntry};
use crate::web::{self, CSRF_COOKIE, SESSION_COOKIE};

/// A pending request must be completed within this time.
const PENDING_SECS: i64 = 900;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: &'a Chrome,
    app_name: &'a str,
    request: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    chrome: &'a Chrome,
    app_name: &'a str,
    api_name: &'a str,
    user_name: &'a str,
    /// `(scope, what it lets the application do)`.
    scopes: Vec<(String, String)>,
    description: Option<&'a str>,
    website_uri: Option<&'a str>,
    privacy_policy_uri: Option<&'a str>,
    tos_uri: Option<&'a str>,
    has_links: bool,
    redirect_host: &'a str,
    request: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    title: &'a str,
    message: &'a str,
    code: &'a str,
    /// The technical reason, for the application's developers.
    detail: Option<&'a str>,
}

/// The login form fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    /// The sealed authorization request the page carries.
    request: String,
    /// The CSRF token, equal to the CSRF cookie.
    csrf: String,
    /// The user's username.
    username: String,
    /// The user's password.
    password: String,
}

/// The consent form fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConsentForm {
    /// The sealed authorization request the page carries.
    request: String,
    /// The CSRF token, equal to the CSRF cookie.
    csrf: String,
    /// `approve`, `deny`, or `switch` ("Not you?": sign out and sign in as someone else).
    decision: String,
}

/// Starts an authorization: validates, then shows the login or the consent page.
#[utoipa::path(get, path = "/authorize", tag = "oauth",
    params(AuthorizeParams),
    responses(
        (status = 200, description = "Login or consent page", content_type = "text/html", body = String),
        (status = 303, description = "Back to the redirect URI with an error"),
        (status = 400, description = "Unknown client or unusable redirect URI: error page, no redirect", content_type = "text/html", body = String),
    ))]
pub async fn authorize(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&state, &headers).await;
    let query = query.unwrap_or_default();
    let params = match AuthorizeParams::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                &chrome,
                StatusCode::BAD_REQUEST,
                "This sign-in link is broken",
                &format!(
                    "The application sent you here with a link Calyx cannot read ({}). Go back to the application and try again; if it keeps happening, tell its developers.",
                    e.description
                ),
                e.code,
            )
        }
    };
    let pushed = params.request_uri.is_some();
    let params = if pushed {
        match take_pushed(&state, &chrome, &params).await {
            Ok(p) => p,
            Err(page) => return page,
        }
    } else {
        params
    };
    let (entry, redirect) = match verified_client(&state, &chrome, &params).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let back = Back::new(&state, &redirect.uri, params.state.clone());
    if entry.client.policy.require_par && !pushed {
        // RFC 9126 §6: the redirect URI is verified, so the refusal can go back to it.
        return back.error(OAuthError::invalid_request(
            "this application must push its authorization requests first (POST /oauth/par)",
        ));
    }
    match authorize::validate(&params, &entry.client, &entry.grants, redirect) {
        Ok(pending) => show_next_page(&state, chrome, &headers, &entry.client, pending).await,
        Err(e) => back.error(e),
    }
}

/// Handles the login form.
#[utoipa::path(post, path = "/authorize/login", tag = "oauth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded",
        description = "The sign-in form as the login page posts it"),
    responses(
        (status = 200, description = "Consent page", content_type = "text/html", body = String),
        (status = 303, description = "Back to the redirect URI with an error (the account has no access the application may ask for)"),
        (status = 400, description = "Not the sign-in form, or the request expired: error page", content_type = "text/html", body = String),
        (status = 401, description = "Wrong username or password: the login page again", content_type = "text/html", body = String),
        (status = 429, description = "Too many failed sign-ins", content_type = "text/html", body = String),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let chrome = Chrome::new(&state, &headers).await;
    let (form, pending, client) = match continue_flow(&state, &chrome, &headers, form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let user = match check_sign_in(&state, peer, &form.username, &form.password).await {
        Ok(user) => user,
        Err(SignInError::Throttled(wait)) => {
            let msg = format!("Too many failed sign-in attempts. Try again in {wait} seconds.");
            let mut resp = login_page(
                &chrome,
                StatusCode::TOO_MANY_REQUESTS,
                &client,
                &form.request,
                &form.username,
                Some(&msg),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return resp;
        }
        Err(SignInError::Wrong) => {
            return login_page(
                &chrome,
                StatusCode::UNAUTHORIZED,
                &client,
                &form.request,
                &form.username,
                Some(WRONG_PASSWORD),
            )
        }
        Err(SignInError::Store(e)) => return e.into_response(),
    };
    let chrome = chrome.signed_in(&user);
    let mut resp = consent_or_code(&state, &chrome, &client, &pending, &form.request, &user).await;
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &user));
    resp
}

/// Handles the consent form: Approve issues a code, Deny answers `access_denied`.
#[utoipa::path(post, path = "/authorize/consent", tag = "oauth",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded",
        description = "The consent form as the consent page posts it (decision: approve or deny)"),
    responses(
        (status = 200, description = "The sign-in session ended: the login page again", content_type = "text/html", body = String),
        (status = 303, description = "Back to the redirect URI with code and state, or error=access_denied"),
        (status = 400, description = "Not the consent form, or the request expired: error page", content_type = "text/html", body = String),
    ))]
pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let chrome = Chrome::new(&state, &headers).await;
    let (form, pending, client) = match continue_flow(&state, &chrome, &headers, form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let back = Back::to_pending(&state, &pending);
    let Some(user) = session_user(&state, &headers).await else {
        return login_page(
            &chrome,
            StatusCode::OK,
            &client,
            &form.request,
            "",
            Some("Your sign-in has ended. Please sign in again."),
        );
    };
    match form.decision.as_str() {
        "approve" => {}
        "switch" => {
            // "Not you?": sign out, and ask for the right account for this same request.
            let mut resp = login_page(&chrome, StatusCode::OK, &client, &form.request, "", None);
            resp.headers_mut().append(
                header::SET_COOKIE,
                web::clear_cookie(SESSION_COOKIE, state.secure_cookies),
            );
            return resp;
        }
        _ => {
            return back.error(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ))
        }
    }
    let scope = match authorize::user_scope(&*state.store, &pending, &user).await {
        Ok(s) => s,
        Err(e) => return back.error_api(e.into()),
    };
    let remembered = Consent {
        user_id: user.id.clone(),
        client_id: pending.client_id.clone(),
        api_id: pending.api_id.clone(),
        scope: scope.clone(),
        granted_at: state.clock.now(),
    };
    if let Err(e) = state.store.remember_consent(&remembered).await {
        return ApiError::from(e).into_response();
    }
    issue_code(&state, &pending, &user, scope).await
}

/// Issues the code and sends the user back with it.
async fn issue_code(
    state: &AppState,
    pending: &Pending,
    user: &User,
    scope: calyx_core::ScopeSet,
) -> Response {
    let (code, record) = authorize::new_code(state, pending, user, scope, state.clock.now());
    if let Err(e) = state.store.insert_code(&record).await {
        return ApiError::from(e).into_response();
    }
    Back::to_pending(state, pending).with(&[("code", &code)])
}

/// Where errors and codes go back to. Every response carries `state` (when the request had
/// one) and `iss` (RFC 9207), so a client talking to several servers knows which one
/// answered.
struct Back {
    uri: String,
    state: Option<String>,
    iss: String,
}

impl Back {
    fn new(state: &AppState, uri: &str, client_state: Option<String>) -> Back {
        Back {
            uri: uri.to_owned(),
            state: client_state,
            iss: state.issuer.clone(),
        }
    }

    /// Back to where the validated request `pending` came from.
    fn to_pending(state: &AppState, pending: &Pending) -> Back {
        Back::new(state, &pending.redirect_uri, Some(pending.state.clone()))
    }

    fn with(&self, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.uri) else {
            // Registration and `redirect::resolve` admit only absolute URIs.
            return ApiError::Internal(anyhow::anyhow!("a verified redirect URI did not parse"))
                .into_response();
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.iss);
        }
        let mut resp = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(url.as_str()) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp.headers_mut().insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        resp
    }

    fn error(&self, e: OAuthError) -> Response {
        self.with(&[
            ("error", e.code.as_str()),
            ("error_description", &e.description),
        ])
    }

    fn error_api(&self, e: ApiError) -> Response {
        match e {
            ApiError::OAuth { error, .. } => self.error(error),
            other => other.into_response(),
        }
    }
}

/// A pushed request (RFC 9126 §4): taken once, by the client that pushed it, before it
/// expires; its parameters stand for the query's. Anything else is an error page: there is no
/// verified redirect URI to send an error to.
async fn take_pushed(
    state: &AppState,
    chrome: &Chrome,
    params: &AuthorizeParams,
) -> Result<AuthorizeParams, Response> {
    let expired = || {
        error_page(
            chrome,
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "The link that brought you here was already used, or is too old. Go back to the application and start again.",
            ErrorCode::InvalidRequestUri,
        )
    };
    let (Some(uri), Some(client_id)) = (params.request_uri.as_deref(), params.client_id.as_deref())
    else {
        return Err(expired());
    };
    if !uri.starts_with(authorize::REQUEST_URI_PREFIX) {
        return Err(expired());
    }
    let hash = state.hasher.hash(uri);
    let pushed = match state
        .store
        .take_pushed_request(&hash, state.clock.now())
        .await
    {
        Ok(Some(p)) if p.client_id == client_id => p,
        Ok(_) => return Err(expired()),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    AuthorizeParams::parse(pushed.params.as_bytes()).map_err(|_| expired())
}

/// Step one: a known client and a redirect URI registered for it, or an error page.
async fn verified_client(
    state: &AppState,
    chrome: &Chrome,
    params: &AuthorizeParams,
) -> Result<(Arc<ClientEntry>, redirect::Redirect), Response> {
    let Some(client_id) = params.client_id.as_deref() else {
        return Err(error_page(
            chrome,
            StatusCode::BAD_REQUEST,
            "This sign-in link is incomplete",
            "The link that brought you here does not say which application is asking. Go back to the application and try again; if it keeps happening, tell its developers.",
            ErrorCode::InvalidRequest,
        ));
    };
    let entry = match state.load_client_entry(client_id).await {
        Ok(Some(e)) if e.client.disabled => {
            return Err(unknown_application(
                chrome,
                "This application has been turned off by the provider, so you cannot sign in to it right now.",
            ))
        }
        Ok(Some(e)) => e,
        Ok(None) => {
            return Err(unknown_application(
                chrome,
                "The link that brought you here names an application that is not registered here. It may have been removed, or the link is wrong.",
            ))
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let broken = |why: &str| {
        let page = ErrorPage {
            chrome,
            title: "This sign-in link cannot be used",
            message: &format!(
                "{} did not send you here from an address registered for it, so you will not be sent back there. Tell its developers.",
                entry.client.name
            ),
            code: ErrorCode::InvalidRequest.as_str(),
            detail: Some(why),
        };
        pages::render(StatusCode::BAD_REQUEST, chrome, &page)
    };
    match redirect::resolve(params.redirect_uri.as_deref(), &entry.client.redirect_uris) {
        Ok(r) if redirect::reserved_parameter(&r.uri).is_some() => Err(broken(
            "the return address must not carry code, state, error or iss in its query",
        )),
        Ok(r) => Ok((entry, r)),
        Err(e) => Err(broken(e.description())),
    }
}

async fn show_next_page(
    state: &AppState,
    chrome: Chrome,
    headers: &HeaderMap,
    client: &Client,
    pending: Pending,
) -> Response {
    let now = state.clock.now();
    let sealed = web::seal(&state.web_sealer, &pending, now + PENDING_SECS);
    let signed_in = if pending.prompts("login") {
        None
    } else {
        session_user(state, headers).await
    };
    match signed_in {
        Some(user) => {
            let chrome = chrome.signed_in(&user);
            consent_or_code(state, &chrome, client, &pending, &sealed, &user).await
        }
        None => login_page(&chrome, StatusCode::OK, client, &sealed, "", None),
    }
}

/// What the login and consent forms both carry: the sealed request and the CSRF token.
trait FlowForm {
    fn sealed(&self) -> &str;
    fn csrf(&self) -> &str;
}

impl FlowForm for LoginForm {
    fn sealed(&self) -> &str {
        &self.request
    }
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl FlowForm for ConsentForm {
    fn sealed(&self) -> &str {
        &self.request
    }
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Reads a sign-in or consent form, opens its sealed request, checks the CSRF token, and
/// reloads the client.
async fn continue_flow<F: FlowForm>(
    state: &AppState,
    chrome: &Chrome,
    headers: &HeaderMap,
    form: Result<Form<F>, FormRejection>,
) -> Result<(F, Pending, Client), Response> {
    let Ok(Form(form)) = form else {
        return Err(error_page(
            chrome,
            StatusCode::BAD_REQUEST,
            "Something was missing",
            "The form arrived incomplete. Go back to the application and start signing in again.",
            ErrorCode::InvalidRequest,
        ));
    };
    let (sealed, csrf) = (form.sealed(), form.csrf());
    let cookie = web::cookie(headers, CSRF_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !bool::from(cookie.as_bytes().ct_eq(csrf.as_bytes())) {
        return Err(error_page(
            chrome,
            StatusCode::BAD_REQUEST,
            "This page has expired",
            "The form was open too long or was not sent from this site. Go back to the application and start again.",
            ErrorCode::InvalidRequest,
        ));
    }
    let Some(pending) = web::open::<Pending>(&state.web_sealer, sealed, state.clock.now()) else {
        return Err(error_page(
            chrome,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Signing in took longer than 15 minutes. Go back to the application and start again.",
            ErrorCode::InvalidRequest,
        ));
    };
    let client = match state.load_client_entry(&pending.client_id).await {
        Ok(Some(e)) if e.client.disabled => {
            return Err(unknown_application(
                chrome,
                "This application has been turned off by the provider, so you cannot sign in to it right now.",
            ))
        }
        Ok(Some(e)) => e.client.clone(),
        Ok(None) => {
            return Err(unknown_application(
                chrome,
                "This application has been removed since you started signing in.",
            ))
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    Ok((form, pending, client))
}

/// Signed in: the consent page, or straight back with a code when the user already approved
/// this much for this application and the request does not ask to be asked again.
async fn consent_or_code(
    state: &AppState,
    chrome: &Chrome,
    client: &Client,
    pending: &Pending,
    sealed: &str,
    user: &User,
) -> Response {
    let back = Back::to_pending(state, pending);
    let scope = match authorize::user_scope(&*state.store, pending, user).await {
        Ok(s) => s,
        Err(e) => return back.error_api(e.into()),
    };
    if !pending.prompts("consent") {
        match state
            .store
            .consent(&user.id, &pending.client_id, &pending.api_id)
            .await
        {
            Ok(Some(c)) if scope.is_subset(&c.scope) => {
                return issue_code(state, pending, user, scope).await
            }
            Ok(_) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let api = match state.store.api(&pending.api_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return back.error(OAuthError::new(
                ErrorCode::AccessDenied,
                "the API no longer exists",
            ))
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let target = url::Url::parse(&pending.redirect_uri).ok();
    let origin = target.as_ref().map(|u| u.origin().ascii_serialization());
    let host = target
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or("")
        .to_owned();
    let page = ConsentPage {
        chrome,
        app_name: &client.name,
        api_name: &api.name,
        user_name: pages::display_name(user),
        scopes: scope
            .iter()
            .map(|s| {
                let words = api
                    .scope_descriptions
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| describe_scope(s));
                (s.to_owned(), words)
            })
            .collect(),
        description: client.description.as_deref(),
        website_uri: safe_link(&client.website_uri),
        privacy_policy_uri: safe_link(&client.privacy_policy_uri),
        tos_uri: safe_link(&client.tos_uri),
        has_links: [
            &client.website_uri,
            &client.privacy_policy_uri,
            &client.tos_uri,
        ]
        .into_iter()
        .any(|l| safe_link(l).is_some()),
        redirect_host: &host,
        request: sealed,
    };
    pages::render_with_target(StatusCode::OK, chrome, &page, origin.as_deref())
}

/// A registered link, if it is one a page may show (registration refuses the others; this
/// also keeps out any stored before that rule).
fn safe_link(link: &Option<String>) -> Option<&str> {
    link.as_deref()
        .filter(|l| redirect::check_link("link", l).is_ok())
}

fn login_page(
    chrome: &Chrome,
    status: StatusCode,
    client: &Client,
    sealed: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let page = LoginPage {
        chrome,
        app_name: &client.name,
        request: sealed,
        username,
        error,
    };
    pages::render(status, chrome, &page)
}

/// The error page for a client id that names no usable application.
fn unknown_application(chrome: &Chrome, message: &str) -> Response {
    error_page(
        chrome,
        StatusCode::BAD_REQUEST,
        "This application is not available",
        message,
        ErrorCode::InvalidClient,
    )
}

fn error_page(
    chrome: &Chrome,
    status: StatusCode,
    title: &str,
    message: &str,
    code: ErrorCode,
) -> Response {
    let page = ErrorPage {
        chrome,
        title,
        message,
        code: code.as_str(),
        detail: None,
    };
    pages::render(status, chrome, &page)
}

/// Scope names in words: `read:consumers` → "Read consumers", `write:x` → "Create and change
/// x", `StandardEditFinancialData` → "Standard edit financial data".
fn describe_scope(scope: &str) -> String {
    let words = |s: &str| split_camel(&s.replace(['.', '_', '-'], " "));
    match scope.split_once(':') {
        Some(("read", what)) => format!("Read {}", words(what)),
        Some(("write", what)) => format!("Create and change {}", words(what)),
        Some(("delete", what)) => format!("Delete {}", words(what)),
        Some((verb, what)) => format!("{} {}", capitalize(verb), words(what)),
        None => capitalize(&words(scope)),
    }
}

/// `EditFinancialData` → `Edit financial data`; lowercase text is left alone.
fn split_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 && !out.ends_with(' ') {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The stylesheet of the pages.
#[utoipa::path(get, path = "/assets/calyx.css", tag = "oauth",
    responses((status = 200, description = "Stylesheet of the login and consent pages", content_type = "text/css", body = String)))]
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/calyx.css"),
    )
}
