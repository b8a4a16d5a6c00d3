//! Every route, registered in one place.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::error::ApiError;

use crate::metrics::RouteMetrics;
use crate::state::AppState;

pub(crate) mod authorize;
pub(crate) mod legacy;
pub(crate) mod ops;
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

/// The application's routes.
///
/// The token, revocation and introspection endpoints read their bodies through
/// [`read_body`] themselves (via [`read_params`]); every other route gets the same
/// limits from the [`whole_body`] middleware, which the token endpoint — the hot path — does
/// not pay for.
pub fn router(state: AppState) -> Router {
    // Every route records its requests and latency (see `metrics`), with handles resolved here.
    let metered = |path: &'static str, token: bool, route: MethodRouter<AppState>| {
        route.layer(axum::middleware::from_fn_with_state(
            state.metrics.route(path, token),
            record,
        ))
    };
    let page = |path| metered(path, false, get(authorize::authorize));
    let mut limited = Router::new()
        .route("/authorize", page("/authorize"))
        .route("/Authorize", page("/Authorize"))
        .route(
            "/authorize/login",
            metered("/authorize/login", false, post(authorize::login)),
        )
        .route(
            "/authorize/consent",
            metered("/authorize/consent", false, post(authorize::consent)),
        )
        .route(
            "/assets/calyx.css",
            metered("/assets/calyx.css", false, get(authorize::stylesheet)),
        )
        .route(
            "/v2/users",
            metered("/v2/users", false, post(users::create).get(users::list)),
        )
        .route(
            "/v2/users/{user_id}",
            metered(
                "/v2/users/{user_id}",
                false,
                get(users::get).delete(users::delete),
            ),
        )
        .route(
            "/v2/users/{user_id}/authenticate",
            metered(
                "/v2/users/{user_id}/authenticate",
                false,
                post(users::authenticate),
            ),
        );
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        limited = limited.route(path, metered(path, false, get(well_known::metadata)));
    }
    for (path, handler) in [
        ("/.well-known/jwks.json", get(well_known::jwks)),
        ("/healthz", get(ops::healthz)),
        ("/readyz", get(ops::readyz)),
        ("/metrics", get(ops::metrics)),
        ("/openapi.json", get(ops::openapi)),
    ] {
        limited = limited.route(path, metered(path, false, handler));
    }
    if state.legacy_user_authenticate_v1 {
        let path = "/v1/users/authenticate/{user_id}";
        limited = limited.route(path, metered(path, false, post(legacy::authenticate_user)));
    }
    let limited = limited.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        whole_body,
    ));
    let mut router = Router::new();
    for path in ["/oauth/token", "/v2/oauth/token"] {
        router = router.route(path, metered(path, true, post(token::token)));
    }
    router
        .route(
            "/oauth/revoke",
            metered("/oauth/revoke", false, post(revocation::revoke)),
        )
        .route(
            "/oauth/introspect",
            metered("/oauth/introspect", false, post(revocation::introspect)),
        )
        .merge(limited)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Records a request's status and latency on its route's handles.
async fn record(State(metrics): State<RouteMetrics>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    metrics.record(response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Any path no route serves: a JSON 404 in the RFC 6749 error shape, never an empty body
/// (clients that decode every error body as JSON would fail on one).
async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
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
    let limit = state.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    match tokio::time::timeout(state.body_read_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => Err(ApiError::TooLarge(limit)),
        Ok(Err(_)) => Err(ApiError::BodyUnreadable),
        Err(_) => Err(ApiError::BodyTimeout(state.body_read_timeout)),
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
