//! Every route, registered in one place.

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub(crate) mod authorize;
pub(crate) mod ops;
pub(crate) mod revocation;
pub(crate) mod token;
pub(crate) mod user_grants;
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

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/oauth/token", post(token::token))
        .route("/v2/oauth/token", post(token::token))
        .route("/authorize", get(authorize::authorize))
        .route("/Authorize", get(authorize::authorize))
        .route("/authorize/login", post(authorize::login))
        .route("/authorize/consent", post(authorize::consent))
        .route("/assets/calyx.css", get(authorize::stylesheet))
        .route("/v2/users", post(users::create).get(users::list))
        .route("/v2/users/{user_id}", get(users::get).delete(users::delete))
        .route(
            "/v2/users/{user_id}/authenticate",
            post(users::authenticate),
        )
        .route("/oauth/revoke", post(revocation::revoke))
        .route("/oauth/introspect", post(revocation::introspect))
        .route(
            "/.well-known/oauth-authorization-server",
            get(well_known::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(well_known::metadata),
        )
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .with_state(state)
}
