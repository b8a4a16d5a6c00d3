//! The authorization endpoint (RFC 6749 §4.1.1) with its login and consent pages.
//!
//! `GET /authorize` checks the client and redirect URI first: problems with either show an
//! error page and never redirect (an unverified redirect URI is an open redirect). Every
//! other problem is sent back to the verified redirect URI with `error`, `error_description`
//! and `state`. The validated request is sealed into the forms, so the login and consent
//! POSTs continue exactly what `/authorize` checked, on any node.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use calyx_core::authorize::{self, Pending};
use calyx_core::model::{Client, User};
use calyx_core::request::AuthorizeParams;
use calyx_core::{redirect, ErrorCode, OAuthError};
use calyx_token::secret::random_string;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::passwords;
use crate::state::{AppState, ClientEntry};
use crate::web::{self, CSRF_COOKIE, SESSION_COOKIE, SESSION_SECS};

/// A pending request must be completed within this time.
const PENDING_SECS: i64 = 900;

#[derive(Serialize, Deserialize)]
struct Session {
    user_id: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    app_name: &'a str,
    request: &'a str,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    app_name: &'a str,
    api_name: &'a str,
    user_name: &'a str,
    scopes: Vec<(String, String)>,
    description: Option<&'a str>,
    website_uri: Option<&'a str>,
    privacy_policy_uri: Option<&'a str>,
    tos_uri: Option<&'a str>,
    has_links: bool,
    redirect_host: &'a str,
    request: &'a str,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    code: &'a str,
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
    /// `approve` or `deny`.
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
    let query = query.unwrap_or_default();
    let params = match AuthorizeParams::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                &e.description,
                e.code,
            )
        }
    };
    let (entry, redirect) = match verified_client(&state, &params).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let back = Back::new(&state, &redirect.uri, params.state.clone());
    match authorize::validate(&params, &entry.client, &entry.grants, redirect) {
        Ok(pending) => show_next_page(&state, &headers, &entry.client, pending).await,
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
    let (form, pending, client, csrf) = match continue_flow(&state, &headers, form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let now = state.clock.now();
    let ip = peer.ip().to_string();
    let name = form.username.to_lowercase();
    let throttle = LoginThrottle {
        pair: format!("{ip}|{name}"),
        user: name,
        ip: ip.clone(),
    };
    let too_many = |wait: i64| {
        let msg = format!("Too many failed sign-in attempts. Try again in {wait} seconds.");
        let mut resp = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &client,
            &form.request,
            &csrf,
            &form.username,
            Some(&msg),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        resp
    };
    // This address is refused outright: it guessed too often, at this user or at any.
    if let Some(wait) = throttle.hard_wait(&state, now) {
        return too_many(wait);
    }
    let candidates = if form.username.contains('\0') {
        Ok(Vec::new())
    } else {
        state.store.users_by_username(&form.username).await
    };
    let candidates = match candidates {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(user) = matching_user(&form.password, candidates).await else {
        tracing::info!(%ip, "sign-in failed");
        return match throttle.record_failure(&state, now) {
            Some(wait) => too_many(wait),
            None => login_page(
                StatusCode::UNAUTHORIZED,
                &client,
                &form.request,
                &csrf,
                &form.username,
                Some("The username or password is not correct."),
            ),
        };
    };
    let session = web::seal(
        &state.web_sealer,
        &Session {
            user_id: user.id.clone(),
        },
        now + SESSION_SECS,
    );
    let mut resp = consent_or_error(&state, &client, &pending, &form.request, &csrf, &user).await;
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(SESSION_COOKIE, &session, SESSION_SECS, state.secure_cookies),
    );
    resp
}

/// The block-list keys of one sign-in attempt.
///
/// - `user` (the username, from anywhere) is *soft*: once blocked, a wrong password is
///   answered 429 but the right one still signs in, so nobody can lock a user out by guessing
///   (the token endpoint treats client secrets alike).
/// - `pair` (this address and username) and `ip` (this address) are *hard*, at higher
///   thresholds: once blocked, attempts from that address are refused without looking at the
///   password, which is what stops a guesser.
struct LoginThrottle {
    user: String,
    pair: String,
    ip: String,
}

impl LoginThrottle {
    /// Seconds this address must still wait, if it is blocked.
    fn hard_wait(&self, state: &AppState, now: i64) -> Option<i64> {
        [
            state.login_pair.blocked_for(&self.pair, now),
            state.login_ip.blocked_for(&self.ip, now),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Counts a failed attempt against every key; returns the wait to announce when any key
    /// is (now) blocked.
    fn record_failure(&self, state: &AppState, now: i64) -> Option<i64> {
        let results = [
            ("username", state.login_user.fail_and_tell(&self.user, now)),
            (
                "address and username",
                state.login_pair.fail_and_tell(&self.pair, now),
            ),
            ("address", state.login_ip.fail_and_tell(&self.ip, now)),
        ];
        for (what, (_, started)) in &results {
            if *started {
                state.security_event(
                    calyx_core::audit::kind::LOGIN_THROTTLED,
                    crate::manage::About::default(),
                    serde_json::json!({"blocked": what, "username": self.user}),
                    Some(self.ip.clone()),
                );
            }
        }
        results.into_iter().filter_map(|(_, (wait, _))| wait).max()
    }
}

/// The user among `candidates` (the users of every organization with the username) whose
/// password this is; the oldest account wins if several share the password. Always checks
/// at least one hash, so an unknown username takes as long as a wrong password.
async fn matching_user(password: &str, candidates: Vec<User>) -> Option<User> {
    if candidates.is_empty() {
        passwords::verify(password.to_owned(), None).await;
        return None;
    }
    for user in candidates {
        if passwords::verify(password.to_owned(), user.password_hash.clone()).await {
            return Some(user);
        }
    }
    None
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
    let (form, pending, client, csrf) = match continue_flow(&state, &headers, form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let back = Back::to_pending(&state, &pending);
    let Some(user) = session_user(&state, &headers).await else {
        return login_page(
            StatusCode::OK,
            &client,
            &form.request,
            &csrf,
            "",
            Some("Please sign in again."),
        );
    };
    if form.decision != "approve" {
        return back.error(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the request",
        ));
    }
    let scope = match authorize::user_scope(&*state.store, &pending, &user).await {
        Ok(s) => s,
        Err(e) => return back.error_api(e.into()),
    };
    let (code, record) = authorize::new_code(&state, &pending, &user, scope, state.clock.now());
    if let Err(e) = state.store.insert_code(&record).await {
        return ApiError::from(e).into_response();
    }
    back.with(&[("code", &code)])
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
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid redirect URI",
                "The redirect URI cannot be used.",
                ErrorCode::InvalidRequest,
            );
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

/// Step one: a known client and a redirect URI registered for it, or an error page.
async fn verified_client(
    state: &AppState,
    params: &AuthorizeParams,
) -> Result<(Arc<ClientEntry>, redirect::Redirect), Response> {
    let Some(client_id) = params.client_id.as_deref() else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The client_id parameter is missing.",
            ErrorCode::InvalidRequest,
        ));
    };
    let entry = match state.load_client_entry(client_id).await {
        Ok(Some(e)) if e.client.disabled => {
            return Err(unknown_application(
                "This application has been disabled by the provider.",
            ))
        }
        Ok(Some(e)) => e,
        Ok(None) => {
            return Err(unknown_application(
                "No application is registered with this client_id.",
            ))
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    match redirect::resolve(params.redirect_uri.as_deref(), &entry.client.redirect_uris) {
        Ok(r) if redirect::reserved_parameter(&r.uri).is_some() => Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect URI",
            "The redirect_uri must not carry code, state, error or iss in its query: the response adds them.",
            ErrorCode::InvalidRequest,
        )),
        Ok(r) => Ok((entry, r)),
        Err(e) => Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect URI",
            e.description(),
            ErrorCode::InvalidRequest,
        )),
    }
}

async fn show_next_page(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    pending: Pending,
) -> Response {
    let now = state.clock.now();
    let sealed = web::seal(&state.web_sealer, &pending, now + PENDING_SECS);
    let (csrf, new_cookie) = match web::cookie(headers, CSRF_COOKIE) {
        Some(c) if c.len() >= 22 => (c, false),
        _ => (random_string(32), true),
    };
    let mut resp = match session_user(state, headers).await {
        Some(user) => consent_or_error(state, client, &pending, &sealed, &csrf, &user).await,
        None => login_page(StatusCode::OK, client, &sealed, &csrf, "", None),
    };
    if new_cookie {
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(CSRF_COOKIE, &csrf, 86_400, state.secure_cookies),
        );
    }
    resp
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
    headers: &HeaderMap,
    form: Result<Form<F>, FormRejection>,
) -> Result<(F, Pending, Client, String), Response> {
    let Ok(Form(form)) = form else {
        return Err(bad_form());
    };
    let (sealed, csrf) = (form.sealed(), form.csrf());
    let cookie = web::cookie(headers, CSRF_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !bool::from(cookie.as_bytes().ct_eq(csrf.as_bytes())) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Session expired",
            "This form has expired or was not sent from this site. Go back to the application and start again.",
            ErrorCode::InvalidRequest,
        ));
    }
    let Some(pending) = web::open::<Pending>(&state.web_sealer, sealed, state.clock.now()) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Request expired",
            "This sign-in request has expired. Go back to the application and start again.",
            ErrorCode::InvalidRequest,
        ));
    };
    let client = match state.load_client_entry(&pending.client_id).await {
        Ok(Some(e)) if e.client.disabled => {
            return Err(unknown_application(
                "This application has been disabled by the provider.",
            ))
        }
        Ok(Some(e)) => e.client.clone(),
        Ok(None) => return Err(unknown_application("The application no longer exists.")),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    Ok((form, pending, client, cookie))
}

async fn session_user(state: &AppState, headers: &HeaderMap) -> Option<User> {
    let sealed = web::cookie(headers, SESSION_COOKIE)?;
    let session: Session = web::open(&state.web_sealer, &sealed, state.clock.now())?;
    state.store.user(&session.user_id).await.ok().flatten()
}

async fn consent_or_error(
    state: &AppState,
    client: &Client,
    pending: &Pending,
    sealed: &str,
    csrf: &str,
    user: &User,
) -> Response {
    let back = Back::to_pending(state, pending);
    let scope = match authorize::user_scope(&*state.store, pending, user).await {
        Ok(s) => s,
        Err(e) => return back.error_api(e.into()),
    };
    let api_name = match state.store.api(&pending.api_id).await {
        Ok(Some(a)) => a.name,
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
        app_name: &client.name,
        api_name: &api_name,
        user_name: user.username.as_deref().unwrap_or(&user.id),
        scopes: scope
            .iter()
            .map(|s| (s.to_owned(), describe_scope(s)))
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
        csrf,
    };
    render(StatusCode::OK, page, origin.as_deref())
}

/// A registered link, if it is one a page may show (registration refuses the others; this
/// also keeps out any stored before that rule).
fn safe_link(link: &Option<String>) -> Option<&str> {
    link.as_deref()
        .filter(|l| redirect::check_link("link", l).is_ok())
}

fn login_page(
    status: StatusCode,
    client: &Client,
    sealed: &str,
    csrf: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let page = LoginPage {
        app_name: &client.name,
        request: sealed,
        csrf,
        username,
        error,
    };
    render(status, page, None)
}

/// A sign-in or consent post that is not the form the pages send (wrong media type, fields
/// missing): the error page rather than axum's plain-text rejection.
fn bad_form() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Bad request",
        "This form was incomplete. Go back to the application and start signing in again.",
        ErrorCode::InvalidRequest,
    )
}

/// The error page for a client id that names no application.
fn unknown_application(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Unknown application",
        message,
        ErrorCode::InvalidClient,
    )
}

fn error_page(status: StatusCode, title: &str, message: &str, code: ErrorCode) -> Response {
    render(
        status,
        ErrorPage {
            title,
            message,
            code: code.as_str(),
        },
        None,
    )
}

fn render<T: Template>(status: StatusCode, page: T, form_target: Option<&str>) -> Response {
    match page.render() {
        Ok(body) => web::html(status, body, form_target),
        Err(e) => ApiError::Internal(anyhow::Error::new(e)).into_response(),
    }
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
