//! The server's one error type. Every handler returns `Result<_, ApiError>`; this is the only
//! place that turns an error into a status code and an RFC 6749 §5.2 body.
//!
//! Causes of 5xx answers are logged here and never sent: the client sees `server_error` or
//! `temporarily_unavailable` with a generic description.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use calyx_core::grant::GrantError;
use calyx_core::store::StoreError;
use calyx_core::{ErrorCode, OAuthError};

use crate::manage::ManageError;

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    /// A protocol error.
    OAuth {
        /// Code and description.
        error: OAuthError,
        /// Add `WWW-Authenticate: Basic realm="calyx"` (RFC 6749 §5.2: Basic was tried).
        basic_challenge: bool,
    },
    /// The request body is over the size limit: 413 with `invalid_request`.
    TooLarge(usize),
    /// The request body did not arrive in time: 408 with `invalid_request`.
    BodyTimeout(std::time::Duration),
    /// The request body could not be read (the client broke off, bad chunking): 400.
    BodyUnreadable,
    /// Over a rate limit: 429 with `Retry-After`.
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// A token quota is used up: 429 with `Retry-After` and the `RateLimit-*` fields
    /// (draft-ietf-httpapi-ratelimit-headers) naming the limit.
    QuotaExceeded {
        /// Seconds until the window ends.
        retry_after: u64,
        /// The limit that was reached.
        limit: i64,
        /// `client` or `organization`.
        whose: &'static str,
        /// `hour` or `day`.
        window: &'static str,
    },
    /// A Bearer token was missing or not accepted (RFC 6750 §3): 401 `invalid_token` (no
    /// error code when no token was sent), 403 `insufficient_scope` naming the scope needed.
    Bearer {
        /// `invalid_token`, `insufficient_scope`, or `None` when no token was sent; the status
        /// follows from it (RFC 6750 §3.1).
        error: Option<&'static str>,
        /// For the developer.
        description: String,
        /// The scope that was needed (with `insufficient_scope`).
        scope: Option<&'static str>,
    },
    /// No such resource (or one the caller may not see): 404.
    NotFound(std::borrow::Cow<'static, str>),
    /// The path exists, the method does not: 405.
    MethodNotAllowed,
    /// A uniqueness rule was broken: 409.
    Conflict(String),
    /// The database is unreachable: 503, the cause logged.
    Unavailable(StoreError),
    /// Anything unexpected: 500, the cause logged.
    Internal(anyhow::Error),
}

impl ApiError {
    /// A protocol error without a challenge.
    pub fn oauth(error: OAuthError) -> Self {
        ApiError::OAuth {
            error,
            basic_challenge: false,
        }
    }
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        ApiError::oauth(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e),
            StoreError::Conflict(_) => {
                ApiError::Conflict("it conflicts with an existing record".into())
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

/// A refused grant. A replay is answered like any refusal; the token endpoint logs it as a
/// security event before it gets here.
impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::Refused(error) | GrantError::Replayed { error, .. } => error.into(),
            GrantError::Store(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        // An unreachable database under a layer of context is still a 503.
        if matches!(e.downcast_ref(), Some(StoreError::Unavailable(_))) {
            return match e.downcast::<StoreError>() {
                Ok(store) => ApiError::Unavailable(store),
                Err(e) => ApiError::Internal(e),
            };
        }
        ApiError::Internal(e)
    }
}

/// A management API body that is not the JSON object the operation takes: 400 with what
/// serde found wrong (an unknown field, a wrong type), so typos are caught, not ignored.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        OAuthError::invalid_request(e.body_text()).into()
    }
}

/// A management API query string that does not parse (a non-numeric `limit`, say): 400.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        OAuthError::invalid_request(e.body_text()).into()
    }
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Invalid(m) => OAuthError::invalid_request(m).into(),
            ManageError::InvalidScope(m) => OAuthError::invalid_scope(m).into(),
            ManageError::NotFound(m) => ApiError::NotFound(m.into()),
            ManageError::Conflict(m) => ApiError::Conflict(m),
            ManageError::Store(s) => s.into(),
            ManageError::Other(e) => e.into(),
        }
    }
}

/// The HTTP status of an OAuth error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An RFC 6749 §5.2 JSON error response (with `Cache-Control: no-store`).
pub fn oauth_response(status: StatusCode, code: ErrorCode, description: &str) -> Response {
    let body = serde_json::json!({"error": code.as_str(), "error_description": description});
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::OAuth {
                error,
                basic_challenge,
            } => {
                let mut resp =
                    oauth_response(status_of(error.code), error.code, &error.description);
                if basic_challenge || error.code == ErrorCode::InvalidClient {
                    // RFC 6749 §5.2 requires the challenge when Basic was tried; sending it on
                    // every invalid_client also tells body-auth clients which scheme works.
                    resp.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"calyx\""),
                    );
                }
                resp
            }
            ApiError::Bearer {
                error,
                description,
                scope,
            } => {
                let status = match error {
                    Some("insufficient_scope") => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNAUTHORIZED,
                };
                let code = error.unwrap_or("invalid_request");
                let body = serde_json::json!({"error": code, "error_description": description});
                let mut resp = (status, axum::Json(body)).into_response();
                let mut challenge = String::from("Bearer realm=\"calyx\"");
                if let Some(e) = error {
                    challenge.push_str(&format!(", error=\"{e}\""));
                }
                if let Some(s) = scope {
                    challenge.push_str(&format!(", scope=\"{s}\""));
                }
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                resp
            }
            ApiError::NotFound(what) => {
                let body = serde_json::json!({"error": "not_found", "error_description": what});
                (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
            }
            ApiError::MethodNotAllowed => {
                let body = serde_json::json!({
                    "error": "method_not_allowed",
                    "error_description": "this path does not take that method",
                });
                (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
            }
            ApiError::Conflict(what) => {
                let body = serde_json::json!({"error": "conflict", "error_description": what});
                (StatusCode::CONFLICT, axum::Json(body)).into_response()
            }
            ApiError::TooLarge(limit) => oauth_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                &format!("the request body is larger than {limit} bytes"),
            ),
            ApiError::BodyTimeout(limit) => oauth_response(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::InvalidRequest,
                &format!(
                    "the request body did not arrive within {} seconds",
                    limit.as_secs()
                ),
            ),
            ApiError::BodyUnreadable => oauth_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            ),
            ApiError::RateLimited { retry_after } => {
                let mut resp = oauth_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::TooManyRequests,
                    "too many requests for this client; retry after the delay in Retry-After",
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                resp
            }
            ApiError::QuotaExceeded {
                retry_after,
                limit,
                whose,
                window,
            } => {
                let mut resp = oauth_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::TooManyRequests,
                    &format!(
                        "this {whose}'s quota of {limit} tokens per {window} is used up; \
                         retry after the delay in Retry-After"
                    ),
                );
                let h = resp.headers_mut();
                let retry_after = retry_after.max(1);
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                h.insert("ratelimit-limit", HeaderValue::from(limit));
                h.insert("ratelimit-remaining", HeaderValue::from(0));
                h.insert("ratelimit-reset", HeaderValue::from(retry_after));
                resp
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "database unavailable");
                let mut resp = oauth_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable,
                    "the server cannot reach its database; retry shortly",
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
                resp
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                oauth_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::ServerError,
                    "the server failed to handle the request",
                )
            }
        }
    }
}
