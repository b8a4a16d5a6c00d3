//! RFC 6750 §3 answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// No `Authorization: Bearer` header (401 without an error code, RFC 6750 §3.1).
    #[error("no Bearer token")]
    Missing,
    /// The token is not acceptable (401 `invalid_token`); the text says why.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The token lacks a scope the route needs (403 `insufficient_scope`).
    #[error("the token lacks the scope {0}")]
    InsufficientScope(String),
    /// The issuer's keys (or introspection) could not be reached (503).
    #[error("the token issuer is unreachable")]
    Unavailable,
}

impl IntoResponse for GuardError {
    fn into_response(self) -> Response {
        let (status, challenge, error, description) = match &self {
            GuardError::Missing => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="api""#.to_owned(),
                "invalid_request",
                self.to_string(),
            ),
            GuardError::InvalidToken(why) => (
                StatusCode::UNAUTHORIZED,
                format!(r#"Bearer realm="api", error="invalid_token", error_description="{why}""#),
                "invalid_token",
                self.to_string(),
            ),
            GuardError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!(r#"Bearer realm="api", error="insufficient_scope", scope="{scope}""#),
                "insufficient_scope",
                self.to_string(),
            ),
            GuardError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"Bearer realm="api""#.to_owned(),
                "temporarily_unavailable",
                self.to_string(),
            ),
        };
        let body = serde_json::json!({"error": error, "error_description": description});
        let mut resp = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}
