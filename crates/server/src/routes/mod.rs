//! Every route, registered in one place.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::error::ApiError;

use crate::state::AppState;
use crate::telemetry::RouteObserver;

pub(crate) mod admin;
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
    // Every route records its requests and latency (see `metrics`), with handles resolved
    // here, and its access log and span when wanted (see `telemetry`).
    let traced = state.config.otlp_endpoint.is_some();
    let metered = |path: &'static str, token: bool, route: MethodRouter<AppState>| {
        let metrics = state.metrics.route(path, token);
        route.layer(axum::middleware::from_fn_with_state(
            RouteObserver::new(path, metrics, traced),
            crate::telemetry::observe,
        ))
    };
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
            r.route(path, metered(path, false, route))
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::authorize,
        ));
    limited.extend(crate::pages::routes());
    let limited = limited
        .into_iter()
        .fold(Router::new(), |r, (path, route)| {
            r.route(path, metered(path, false, route))
        })
        .merge(admin)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            whole_body,
        ));
    // The token, revocation and introspection endpoints read their own bodies.
    let own_body = [
        ("/oauth/token", true, post(token::token)),
        ("/v2/oauth/token", true, post(token::token)),
        ("/oauth/revoke", false, post(revocation::revoke)),
        ("/oauth/introspect", false, post(revocation::introspect)),
    ];
    own_body
        .into_iter()
        .fold(Router::new(), |r, (path, token, route)| {
            r.route(path, metered(path, token, route))
        })
        .merge(limited)
        .fallback(crate::pages::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
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
    match tokio::time::timeout(
        state.config.body_read_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
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
