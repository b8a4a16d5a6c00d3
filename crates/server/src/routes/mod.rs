//! Every route, registered in one place.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use futures_util::future::Either;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;

use crate::state::AppState;
use crate::telemetry::{observe_with, RouteObserver};

pub(crate) mod admin;
pub(crate) mod authorize;
pub(crate) mod legacy;
pub(crate) mod ops;
pub(crate) mod par;
pub(crate) mod revocation;
pub(crate) mod token;
pub(crate) mod users;
pub(crate) mod well_known;

/// True when the request's media type (parameters such as `charset` aside, case-insensitive)
/// is `essence`.
pub(crate) fn has_content_type(headers: &axum::http::HeaderMap, essence: &str) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(essence))
}

/// Reads a token, revocation or introspection body as a form or a JSON object, within the
/// size limit and the body deadline.
pub(crate) async fn read_params(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<calyx_core::params::Params, ApiError> {
    use calyx_core::params::Params;
    let is_form = has_content_type(headers, "application/x-www-form-urlencoded");
    let is_json = has_content_type(headers, "application/json");
    if !is_form && !is_json {
        return Err(calyx_core::OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )
        .into());
    }
    let bytes = read_body(state, headers, body).await?;
    let params = if is_form {
        Params::from_form(&bytes)?
    } else {
        Params::from_json(&bytes)?
    };
    Ok(params)
}

/// The token endpoint's paths, which [`App`] answers ahead of the router.
const TOKEN_PATHS: [&str; 2] = ["/oauth/token", "/v2/oauth/token"];

/// On every answer: browsers must not sniff a JSON body or a page into another type.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// What the server answers requests with: the router, and the token endpoint ahead of it.
///
/// The token endpoint is the product's hot path, and the router's general machinery was a
/// measurable share of it: the route lookup, a clone of the route's boxed layer stack, the
/// `from_fn` layer's own clone and boxed future, the request's extensions map. `POST` to a
/// token path is therefore answered here, by the same handler under the same observer
/// (metrics, access log, span) and with the same `X-Content-Type-Options`, which is all the
/// router adds to it; every other request, including another method on a token path (405),
/// goes to the router. bench/RESULTS.md has the figures.
#[derive(Clone)]
pub struct App {
    router: Router,
    token: Arc<TokenEndpoint>,
}

/// The token endpoint as [`App`] serves it: one observer per path, as the router has.
struct TokenEndpoint {
    state: AppState,
    observers: [Arc<RouteObserver>; 2],
}

impl App {
    /// Answers `req`, which came from `peer`.
    pub(crate) fn call(
        &self,
        mut req: Request,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Response, Infallible>> + Send + 'static {
        let token_path = if req.method() == Method::POST {
            TOKEN_PATHS.iter().position(|p| *p == req.uri().path())
        } else {
            None
        };
        match token_path {
            Some(i) => Either::Left(Self::token(self.token.clone(), i, req)),
            None => {
                req.extensions_mut().insert(ConnectInfo(peer));
                Either::Right(self.router.clone().oneshot(req))
            }
        }
    }

    async fn token(
        endpoint: Arc<TokenEndpoint>,
        path: usize,
        req: Request,
    ) -> Result<Response, Infallible> {
        let state = &endpoint.state;
        let mut response = observe_with(&endpoint.observers[path], req, |req| async move {
            let (parts, body) = req.into_parts();
            let cert = parts.extensions.get::<crate::mtls::ClientCertificate>();
            token::answer(state, TOKEN_PATHS[path], &parts.headers, cert, body).await
        })
        .await;
        response
            .headers_mut()
            .insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        Ok(response)
    }
}

/// The application: every route, each recording its requests and latency (see `metrics`)
/// and its access log and span when wanted (see `telemetry`) through an observer resolved
/// here.
///
/// The token, revocation and introspection endpoints read their bodies through
/// [`read_body`] themselves (via [`read_params`]); every other route gets the same
/// limits from the [`whole_body`] middleware, which the token endpoint — the hot path — does
/// not pay for.
pub(crate) fn app(state: AppState) -> App {
    let traced = state.config.otlp_endpoint.is_some();
    let observer = |path: &'static str, token: bool| {
        RouteObserver::new(path, state.metrics.route(path, token), traced)
    };
    let metered = |observer: Arc<RouteObserver>, route: MethodRouter<AppState>| {
        route.layer(axum::middleware::from_fn_with_state(
            observer,
            crate::telemetry::observe,
        ))
    };
    let token_observers = TOKEN_PATHS.map(|path| observer(path, true));
    let mut limited = vec![
        ("/authorize", get(authorize::authorize)),
        ("/Authorize", get(authorize::authorize)),
        ("/authorize/login", post(authorize::login)),
        ("/authorize/consent", post(authorize::consent)),
        ("/assets/calyx.css", get(authorize::stylesheet)),
        ("/v2/users", post(users::create).get(users::list)),
        ("/v2/users/{user_id}", get(users::get).delete(users::delete)),
        (
            "/v2/users/{user_id}/authenticate",
            post(users::authenticate),
        ),
        (
            "/.well-known/oauth-authorization-server",
            get(well_known::metadata),
        ),
        (
            "/.well-known/openid-configuration",
            get(well_known::metadata),
        ),
        ("/.well-known/jwks.json", get(well_known::jwks)),
        ("/healthz", get(ops::healthz)),
        ("/readyz", get(ops::readyz)),
        ("/metrics", get(ops::metrics)),
        ("/openapi.json", get(ops::openapi)),
    ];
    if state.config.legacy_user_authenticate_v1 {
        limited.push((
            "/v1/users/authenticate/{user_id}",
            post(legacy::authenticate_user),
        ));
    }
    let admin = admin::routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| {
            r.route(path, metered(observer(path, false), route))
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::authorize,
        ));
    limited.extend(crate::pages::routes());
    let limited = limited
        .into_iter()
        .fold(Router::new(), |r, (path, route)| {
            r.route(path, metered(observer(path, false), route))
        })
        .merge(admin)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            whole_body,
        ));
    // The token, revocation, introspection and PAR endpoints read their own bodies. The token
    // paths stay routed too, for their other methods' 405 (their POSTs never reach the
    // router, see `App`).
    let token = post(token::token);
    let own_body = [
        (TOKEN_PATHS[0], token_observers[0].clone(), token.clone()),
        (TOKEN_PATHS[1], token_observers[1].clone(), token),
        (
            "/oauth/revoke",
            observer("/oauth/revoke", false),
            post(revocation::revoke),
        ),
        (
            "/oauth/introspect",
            observer("/oauth/introspect", false),
            post(revocation::introspect),
        ),
        ("/oauth/par", observer("/oauth/par", false), post(par::par)),
    ];
    let router = own_body
        .into_iter()
        .fold(Router::new(), |r, (path, observer, route)| {
            r.route(path, metered(observer, route))
        })
        .merge(limited)
        .fallback(crate::pages::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            NOSNIFF,
        ));
    App {
        router,
        token: Arc::new(TokenEndpoint {
            state,
            observers: token_observers,
        }),
    }
}

/// A known path with a method it does not take: a JSON 405, likewise.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Reads a request body whole: at most `max_body_bytes` (413) and within
/// `body_read_timeout` (408). A client that trickles its body (a slow POST) then costs one
/// small buffer until its deadline rather than a handler.
pub(crate) async fn read_body(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    let read = axum::body::to_bytes(body, limit);
    tokio::pin!(read);
    // A body that arrived with its headers, as almost every token request's does, is read
    // without arming (and then cancelling) a timer; the deadline covers any wait.
    let read = match futures_util::FutureExt::now_or_never(read.as_mut()) {
        Some(read) => Ok(read),
        None => tokio::time::timeout(state.config.body_read_timeout, read).await,
    };
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => Err(ApiError::TooLarge(limit)),
        Ok(Err(_)) => Err(ApiError::BodyUnreadable),
        Err(_) => Err(ApiError::BodyTimeout(state.config.body_read_timeout)),
    }
}

/// [`read_body`] before the handler, so that handlers and extractors see a complete
/// in-memory body under one limit.
async fn whole_body(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&state, &parts.headers, body).await?;
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

/// True when reading a body failed because it went over the limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
