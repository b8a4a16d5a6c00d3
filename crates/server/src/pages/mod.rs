//! The pages for people beyond the authorization flow: sign-in and sign-out, the user's own
//! account page, the operator console (`/console/`), the developer portal (`/developers/`)
//! with its live integration guide, and the branded 404.
//!
//! Every page is server-rendered (askama) and works without JavaScript. They share the rules
//! of the login pages (`crate::web`): a strict CSP with no script at all, `no-store`, and
//! double-submit CSRF on every form. A sign-in is the sealed `calyx_session` cookie, so any
//! node serves any page; the signed-in user is read from the database on every request, so a
//! deleted user or a removed role is refused at once.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use calyx_core::model::{Role, User};
use calyx_token::secret::random_string;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::manage::{Branding, ManageError, OPERATOR_ORG_ID};
use crate::state::AppState;
use crate::web::{self, CSRF_COOKIE, SESSION_COOKIE};

pub(crate) mod account;
pub(crate) mod chart;
pub(crate) mod console;
pub(crate) mod portal;
pub(crate) mod signin;

/// What the shared layout shows around every page: the brand, the signed-in user and the
/// CSRF token its sign-out form repeats.
pub struct Chrome {
    /// Name, logo and accent colour.
    pub brand: Branding,
    /// The CSRF token for forms on the page.
    pub csrf: String,
    /// The signed-in user's name, when someone is signed in.
    pub user: Option<String>,
    /// Where the header's name links to.
    pub home: &'static str,
    /// The navigation of the section: `(href, label, current)`.
    pub nav: Vec<(&'static str, &'static str, bool)>,
    /// Cookies get `Secure` (the issuer is https).
    pub secure: bool,
}

impl Chrome {
    /// The chrome for a request: the current branding and CSRF token, nobody signed in.
    pub async fn new(state: &AppState, headers: &HeaderMap) -> Chrome {
        Chrome {
            brand: brand(state).await,
            csrf: csrf_token(headers).0,
            user: None,
            home: "/",
            nav: Vec::new(),
            secure: state.secure_cookies,
        }
    }

    /// The same, for `user`.
    pub fn signed_in(mut self, user: &User) -> Chrome {
        self.user = Some(display_name(user).to_owned());
        self
    }
}

/// The current branding; the default when the database cannot say (a page still renders).
pub async fn brand(state: &AppState) -> Branding {
    match state.branding().await {
        Ok(b) => Branding::clone(&b),
        Err(e) => {
            tracing::warn!(error = ?e, "reading the branding");
            Branding::default()
        }
    }
}

/// How a user is named on pages.
pub fn display_name(user: &User) -> &str {
    user.username
        .as_deref()
        .or(user.email.as_deref())
        .unwrap_or(&user.id)
}

/// The request's CSRF token, and whether it is new (then the response must set the cookie).
pub fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match web::cookie(headers, CSRF_COOKIE) {
        Some(c) if c.len() >= 22 => (c, false),
        _ => (random_string(32), true),
    }
}

/// Renders a page with the security headers, and (re)sets the CSRF cookie its forms repeat.
pub fn render<T: Template>(status: StatusCode, chrome: &Chrome, page: &T) -> Response {
    render_with_target(status, chrome, page, None)
}

/// [`render`] for a page whose form may be redirected to `form_target` (the consent page's
/// answer goes to the application). The logo's origin, when the branding has one elsewhere,
/// may be loaded as an image.
pub fn render_with_target<T: Template>(
    status: StatusCode,
    chrome: &Chrome,
    page: &T,
    form_target: Option<&str>,
) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => return ApiError::Internal(anyhow::Error::new(e)).into_response(),
    };
    let logo_origin = chrome
        .brand
        .logo_url
        .as_deref()
        .and_then(|l| url::Url::parse(l).ok())
        .map(|u| u.origin().ascii_serialization());
    let mut resp = web::html(status, body, form_target, logo_origin.as_deref());
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(CSRF_COOKIE, &chrome.csrf, 86_400, chrome.secure),
    );
    resp
}

/// A form post to a page: the fields, after the CSRF token (field `csrf`) was checked against
/// the cookie. Repeated fields (checkboxes) keep every value.
pub struct Posted(Vec<(String, String)>);

impl Posted {
    /// The first value of `name`, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name`, trimmed, if present and not empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).to_owned()).filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
            .collect()
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        if !crate::routes::has_content_type(&headers, "application/x-www-form-urlencoded") {
            return Err(error_page(
                state,
                &headers,
                StatusCode::BAD_REQUEST,
                "Bad request",
                "This page only accepts its own forms.",
            )
            .await);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let posted = Posted(fields);
        let cookie = web::cookie(&headers, CSRF_COOKIE).unwrap_or_default();
        let sent = posted.get("csrf");
        if cookie.is_empty() || !bool::from(cookie.as_bytes().ct_eq(sent.as_bytes())) {
            return Err(error_page(
                state,
                &headers,
                StatusCode::BAD_REQUEST,
                "This form has expired",
                "The form was open too long or was not sent from this site. Go back, reload the page and try again.",
            )
            .await);
        }
        Ok(posted)
    }
}

/// The signed-in user, if the session cookie is valid and the user still exists.
pub async fn session_user(state: &AppState, headers: &HeaderMap) -> Option<User> {
    #[derive(serde::Deserialize)]
    struct Session {
        user_id: String,
    }
    let sealed = web::cookie(headers, SESSION_COOKIE)?;
    let session: Session = web::open(&state.web_sealer, &sealed, state.clock.now())?;
    state.store.user(&session.user_id).await.ok().flatten()
}

/// A signed-in user holding `role`, or a redirect to sign in (a signed-in user without it
/// gets a 403 page that says so).
async fn require(parts: &mut Parts, state: &AppState, role: Role) -> Result<User, Response> {
    let next = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Some(user) = session_user(state, &parts.headers).await else {
        let to = format!(
            "/signin?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return Err(Redirect::to(&to).into_response());
    };
    let fits = user.role == Some(role)
        && match role {
            Role::Operator => user.org_id == OPERATOR_ORG_ID,
            Role::OrgAdmin => user.org_id != OPERATOR_ORG_ID,
        };
    if !fits {
        let what = match role {
            Role::Operator => "the console is for the provider's operators",
            Role::OrgAdmin => "the developer portal is for your organization's admins",
        };
        let chrome = Chrome::new(state, &parts.headers).await.signed_in(&user);
        return Err(message_page(
            StatusCode::FORBIDDEN,
            &chrome,
            "Not allowed",
            &format!(
                "You are signed in as {}, but {what}. Sign out and sign in with another account, or ask your administrator.",
                display_name(&user)
            ),
        ));
    }
    Ok(user)
}

/// A signed-in operator (console).
pub struct Operator(pub User);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        require(parts, state, Role::Operator).await.map(Operator)
    }
}

/// A signed-in organization admin (developer portal).
pub struct OrgAdmin(pub User);

impl FromRequestParts<AppState> for OrgAdmin {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        require(parts, state, Role::OrgAdmin).await.map(OrgAdmin)
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: &'a Chrome,
    title: &'a str,
    message: &'a str,
}

/// A page with a title, a message and a way back.
pub fn message_page(status: StatusCode, chrome: &Chrome, title: &str, message: &str) -> Response {
    render(
        status,
        chrome,
        &MessagePage {
            chrome,
            title,
            message,
        },
    )
}

/// [`message_page`] for a request, nobody signed in.
pub async fn error_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let chrome = Chrome::new(state, headers).await;
    message_page(status, &chrome, title, message)
}

/// A management error as a page: what was wrong, in words, with a way back.
pub fn manage_error_page(chrome: &Chrome, e: ManageError) -> Response {
    let (status, title) = match &e {
        ManageError::Invalid(_) | ManageError::InvalidScope(_) => {
            (StatusCode::BAD_REQUEST, "That did not work")
        }
        ManageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        ManageError::Conflict(_) => (StatusCode::CONFLICT, "That already exists"),
        _ => {
            tracing::error!(error = ?e, "a page's change failed");
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                chrome,
                "Something went wrong",
                "The change could not be made. Try again in a moment.",
            );
        }
    };
    message_page(status, chrome, title, &e.to_string())
}

/// The bytes RFC 3986 §2.3 leaves unreserved stay; every other byte is percent-encoded.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value as one segment of a path (client ids are chosen by people and may hold anything
/// printable, `/` and `?` included).
pub fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// After a change: back to `to` (303, so a reload does not post again).
pub fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Any path no route serves: a branded HTML page for a browser, the JSON error otherwise
/// (clients that decode every error body as JSON keep working).
pub async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return ApiError::NotFound("no such endpoint".into()).into_response();
    }
    error_page(
        &state,
        &headers,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. Check the link, or start again from the home page.",
    )
    .await
}

/// The accent colour of the branding, as a stylesheet the layout links after its own (the
/// CSP allows no inline style).
pub async fn brand_css(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let brand = brand(&state).await;
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        // `color` passed the branding rules: exactly `#rrggbb`.
        format!(":root {{ --accent: {}; }}\n", brand.color),
    )
        .into_response()
}

/// The pages' icon: a disc in the brand's accent colour (without one, browsers ask for
/// `/favicon.ico` and log the 404).
pub async fn icon(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let brand = brand(&state).await;
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
             <circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"{}\"/></svg>",
            brand.color
        ),
    )
        .into_response()
}

/// Every page route, registered in one place.
pub(crate) fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    use axum::routing::{get, post};
    let mut routes = vec![
        ("/", get(|| async { Redirect::to("/developers/docs") })),
        ("/signin", get(signin::page).post(signin::submit)),
        ("/signout", post(signin::sign_out)),
        ("/account", get(account::page)),
        ("/account/revoke", post(account::revoke)),
        ("/assets/brand.css", get(brand_css)),
        ("/assets/icon.svg", get(icon)),
        ("/favicon.ico", get(icon)),
    ];
    routes.extend(console::routes());
    routes.extend(portal::routes());
    routes
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn a_path_segment_keeps_only_unreserved_bytes() {
        assert_eq!(path_segment("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(path_segment("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
    }
}
