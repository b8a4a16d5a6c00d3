//! What the HTML pages need: security headers, cookies, CSRF tokens, and sealed state.
//!
//! The pending authorization request and the login session travel as AES-256-GCM sealed,
//! expiring blobs (a hidden form field and an `HttpOnly` cookie) under a key derived from the
//! pepper, so any node can continue a flow another node started and nothing is stored until a
//! code is issued. CSRF uses a random token in a `SameSite=Lax` cookie that every form repeats
//! (double submit).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_token::seal::Sealer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Session cookie name.
pub const SESSION_COOKIE: &str = "calyx_session";
/// CSRF cookie name.
pub const CSRF_COOKIE: &str = "calyx_csrf";
/// How long a sign-in lasts.
pub const SESSION_SECS: i64 = 3600;

/// An HTML response with the page security headers: no script at all, styles and images
/// from this server. `form_target` is the origin a form on the page may be redirected to
/// after submission (CSP `form-action` governs redirects too); `image_origin` another origin
/// images may come from (a brand logo hosted elsewhere).
pub fn html(
    status: StatusCode,
    body: String,
    form_target: Option<&str>,
    image_origin: Option<&str>,
) -> Response {
    let also = |origin: Option<&str>| origin.map(|o| format!(" {o}")).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'{}; form-action 'self'{}; \
         frame-ancestors 'none'; base-uri 'none'",
        also(image_origin),
        also(form_target),
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", 0, secure)
}

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/`, plus `Secure` over HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("cookie values are base64url")
}

/// Seals `value` with an expiry, as base64url.
pub fn seal<T: Serialize>(sealer: &Sealer, value: &T, expires_at: i64) -> String {
    #[derive(Serialize)]
    struct Wrapped<'a, T> {
        exp: i64,
        v: &'a T,
    }
    let json = serde_json::to_vec(&Wrapped {
        exp: expires_at,
        v: value,
    })
    .expect("serializable state");
    URL_SAFE_NO_PAD.encode(sealer.seal(&json))
}

/// Opens what [`seal`] produced; `None` when tampered with, malformed or expired.
pub fn open<T: DeserializeOwned>(sealer: &Sealer, sealed: &str, now: i64) -> Option<T> {
    #[derive(Deserialize)]
    struct Wrapped<T> {
        exp: i64,
        v: T,
    }
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let json = sealer.open(&raw).ok()?;
    let w: Wrapped<T> = serde_json::from_slice(&json).ok()?;
    (now < w.exp).then_some(w.v)
}
