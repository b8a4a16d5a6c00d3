//! Signing in and out: the password check (with its throttles) that the authorization flow's
//! login page shares, and `/signin`, `/signout` for the console, the portal and the account
//! page. A sign-in is the sealed `calyx_session` cookie, one for every page of the server.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use calyx_core::model::{Role, User};
use serde::{Deserialize, Serialize};

use super::{render, see_other, session_user, Chrome, Posted};
use crate::error::ApiError;
use crate::manage::{About, Actor};
use crate::passwords;
use crate::state::AppState;
use crate::web::{self, SESSION_COOKIE, SESSION_SECS};

/// What the login pages say to a wrong username or password (never which of the two).
pub const WRONG_PASSWORD: &str = "The username or password is not correct.";

/// The sealed contents of the session cookie.
#[derive(Serialize, Deserialize)]
pub struct Session {
    /// The signed-in user.
    pub user_id: String,
}

/// The session cookie for `user`.
pub fn session_cookie(state: &AppState, user: &User) -> HeaderValue {
    let sealed = web::seal(
        &state.web_sealer,
        &Session {
            user_id: user.id.clone(),
        },
        state.clock.now() + SESSION_SECS,
    );
    web::set_cookie(SESSION_COOKIE, &sealed, SESSION_SECS, state.secure_cookies)
}

/// Why a sign-in failed.
pub enum SignInError {
    /// Too many failures: wait this many seconds.
    Throttled(i64),
    /// Wrong username or password.
    Wrong,
    /// The database failed.
    Store(ApiError),
}

/// Checks a username and password, under the sign-in throttles.
pub async fn check_sign_in(
    state: &AppState,
    peer: SocketAddr,
    username: &str,
    password: &str,
) -> Result<User, SignInError> {
    let now = state.clock.now();
    let ip = peer.ip().to_string();
    let name = username.to_lowercase();
    let throttle = LoginThrottle {
        pair: format!("{ip}|{name}"),
        user: name,
        ip: ip.clone(),
    };
    // This address is refused outright: it guessed too often, at this user or at any.
    if let Some(wait) = throttle.hard_wait(state, now) {
        return Err(SignInError::Throttled(wait));
    }
    let candidates = if username.contains('\0') {
        Ok(Vec::new())
    } else {
        state.store.users_by_username(username).await
    };
    let candidates = candidates.map_err(|e| SignInError::Store(e.into()))?;
    match matching_user(password, candidates).await {
        Some(user) => Ok(user),
        None => {
            tracing::info!(%ip, "sign-in failed");
            Err(match throttle.record_failure(state, now) {
                Some(wait) => SignInError::Throttled(wait),
                None => SignInError::Wrong,
            })
        }
    }
}

/// The block-list keys of one sign-in attempt.
///
/// - `user` (the username, from anywhere) is *soft*: once blocked, a wrong password is
///   answered 429 but the right one still signs in, so nobody can lock a user out by guessing
///   (the token endpoint treats client secrets alike).
/// - `pair` (this address and username) and `ip` (this address) are *hard*, at higher
///   thresholds: once blocked, attempts from that address are refused without looking at the
///   password, which is what stops a guesser.
pub(crate) struct LoginThrottle {
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

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    chrome: &'a Chrome,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// Query of the sign-in page.
#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// Where a sign-in may continue to: a page of this server's own, nothing else (an open
/// redirect would let a phishing link end on any site).
fn safe_next(next: &str) -> &str {
    let ours = ["/console", "/developers", "/account"];
    if ours.iter().any(|p| next.starts_with(p)) && !next.contains("//") && !next.contains('\\') {
        next
    } else {
        "/account"
    }
}

/// Where a user goes after signing in when no page was asked for.
fn landing(user: &User) -> &'static str {
    match user.role {
        Some(Role::Operator) => "/console/",
        Some(Role::OrgAdmin) => "/developers/",
        None => "/account",
    }
}

/// The sign-in page of the console, the portal and the account page.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let chrome = Chrome::new(&state, &headers).await;
    let next = safe_next(q.next.as_deref().unwrap_or(""));
    if q.signed_out.is_none() {
        if let Some(user) = session_user(&state, &headers).await {
            // Already signed in: straight on.
            return see_other(if next == "/account" {
                landing(&user)
            } else {
                next
            });
        }
    }
    let notice = q.signed_out.is_some().then_some("You have signed out.");
    render(
        StatusCode::OK,
        &chrome,
        &SignInPage {
            chrome: &chrome,
            next,
            username: "",
            error: None,
            notice,
        },
    )
}

/// Signs in: on success, to the page asked for (or the user's own landing page).
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Posted,
) -> Response {
    let chrome = Chrome::new(&state, &headers).await;
    let next = safe_next(form.get("next"));
    let username = form.get("username");
    let again = |status, error: &str| {
        render(
            status,
            &chrome,
            &SignInPage {
                chrome: &chrome,
                next,
                username,
                error: Some(error),
                notice: None,
            },
        )
    };
    let user = match check_sign_in(&state, peer, username, form.get("password")).await {
        Ok(u) => u,
        Err(SignInError::Throttled(wait)) => {
            let mut resp = again(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed sign-in attempts. Try again in {wait} seconds."),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return resp;
        }
        Err(SignInError::Wrong) => return again(StatusCode::UNAUTHORIZED, WRONG_PASSWORD),
        Err(SignInError::Store(e)) => return e.into_response(),
    };
    if user.role.is_some() {
        let who = Actor {
            who: format!("user:{}", user.id),
            address: Some(peer.ip().to_string()),
        };
        let about = About {
            org_id: Some(user.org_id.clone()),
            user_id: Some(user.id.clone()),
            target: Some(user.id.clone()),
            ..About::default()
        };
        let detail = serde_json::json!({"role": user.role.map(Role::as_str)});
        if let Err(e) = state
            .manager
            .acting_as(who)
            .record(calyx_core::audit::kind::SESSION_STARTED, about, detail)
            .await
        {
            return ApiError::from(e).into_response();
        }
    }
    let to = if next == "/account" {
        landing(&user)
    } else {
        next
    };
    let mut resp = see_other(to);
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &user));
    resp
}

/// Signs out (a form post, CSRF-checked): the session cookie is cleared.
pub async fn sign_out(State(state): State<AppState>, form: Posted) -> Response {
    let next = match form.get("next") {
        "" => "/signin?signed_out=1".to_owned(),
        n => format!(
            "/signin?signed_out=1&next={}",
            url::form_urlencoded::byte_serialize(safe_next(n).as_bytes()).collect::<String>()
        ),
    };
    let mut resp = see_other(&next);
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::clear_cookie(SESSION_COOKIE, state.secure_cookies),
    );
    resp
}
