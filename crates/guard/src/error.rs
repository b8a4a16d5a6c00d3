//! The answers to refused requests: RFC 6750 §3 for the `Bearer` scheme, RFC 9449 §7.1 for
//! `DPoP`.
//!
//! The guard accepts both schemes, so it chooses which challenge carries the error as RFC 9449
//! §7.2 recommends:
//!
//! - no credentials: both challenges, neither with an error
//!   (`Bearer realm="api", DPoP realm="api", algs="..."`);
//! - a `Bearer` request (or an `Authorization` header naming no scheme the guard knows): the
//!   `Bearer` challenge carries the error, followed by a bare `DPoP` challenge that tells the
//!   client DPoP is accepted here (the RFC's own example);
//! - a `DPoP` request: the `DPoP` challenge alone carries the error. No `Bearer` challenge goes
//!   with it: §7.2 notes that a client may send a bound token with the `Bearer` scheme when it is
//!   offered one, and that is exactly the downgrade the guard refuses.
//!
//! Every `DPoP` challenge names the proof algorithms the guard accepts (`algs`, §7.1).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// No `Authorization` header (401 without an error code, RFC 6750 §3.1).
    #[error("no Bearer or DPoP token")]
    Missing,
    /// The token is not acceptable (401 `invalid_token`); the text says why. With the `DPoP`
    /// scheme this also covers a token bound to another key than the proof's (RFC 9449 §7.1),
    /// and with either scheme a token bound to a client certificate the request did not come
    /// with (RFC 8705 §3).
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The token lacks a scope the route needs (403 `insufficient_scope`).
    #[error("the token lacks the scope {0}")]
    InsufficientScope(String),
    /// The issuer's keys (or introspection) could not be reached (503).
    #[error("the token issuer is unreachable")]
    Unavailable,
    /// The `DPoP` proof is missing, repeated, malformed, made for another request or another
    /// token, outside its time window or replayed (401 `invalid_dpop_proof`, RFC 9449 §7.1);
    /// the text says which.
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
}

/// The authentication scheme a request used: the first word of its `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750: the token alone, which must not be bound to a key.
    Bearer,
    /// RFC 9449: a token bound to a key, and a `DPoP` proof made with that key.
    Dpop,
}

/// A refused request: what was wrong, and the scheme the request used, which decides the
/// `WWW-Authenticate` challenge (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Refusal {
    /// The scheme the request used; `Bearer` when it named none the guard knows.
    pub scheme: Scheme,
    /// Why it was refused.
    pub error: GuardError,
}

impl Refusal {
    /// A refusal of a `Bearer` request (or of one without credentials).
    pub fn bearer(error: GuardError) -> Self {
        Refusal {
            scheme: Scheme::Bearer,
            error,
        }
    }

    /// A refusal of a `DPoP` request.
    pub fn dpop(error: GuardError) -> Self {
        Refusal {
            scheme: Scheme::Dpop,
            error,
        }
    }

    /// The `WWW-Authenticate` value for this refusal.
    pub fn challenge(&self) -> String {
        let algs = calyx_token::dpop::ALGORITHMS.join(" ");
        let dpop = |params: &str| format!(r#"DPoP realm="api"{params}, algs="{algs}""#);
        let (params, bearer_too) = match &self.error {
            GuardError::Missing => {
                return format!(r#"Bearer realm="api", {}"#, dpop(""));
            }
            GuardError::InvalidDpopProof(why) => {
                let params = format!(
                    r#", error="invalid_dpop_proof", error_description="{}""#,
                    quoted(why)
                );
                return dpop(&params);
            }
            GuardError::InvalidToken(why) => (
                format!(
                    r#", error="invalid_token", error_description="{}""#,
                    quoted(why)
                ),
                true,
            ),
            GuardError::InsufficientScope(scope) => (
                format!(r#", error="insufficient_scope", scope="{}""#, quoted(scope)),
                false,
            ),
            GuardError::Unavailable => (String::new(), false),
        };
        match self.scheme {
            Scheme::Dpop => dpop(&params),
            // RFC 9449 §7.2's example: the error in the Bearer challenge, DPoP offered beside.
            Scheme::Bearer if bearer_too => format!(r#"Bearer realm="api"{params}, {}"#, dpop("")),
            Scheme::Bearer => format!(r#"Bearer realm="api"{params}"#),
        }
    }
}

impl From<GuardError> for Refusal {
    /// A refusal of a `Bearer` request.
    fn from(error: GuardError) -> Self {
        Refusal::bearer(error)
    }
}

/// `s` as the inside of an RFC 9110 §5.6.4 quoted-string: `"` and `\` escaped.
fn quoted(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['"', '\\']) {
        s.replace('\\', r"\\").replace('"', r#"\""#).into()
    } else {
        s.into()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, error) = match &self.error {
            GuardError::Missing => (StatusCode::UNAUTHORIZED, "invalid_request"),
            GuardError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            GuardError::InvalidDpopProof(_) => (StatusCode::UNAUTHORIZED, "invalid_dpop_proof"),
            GuardError::InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            GuardError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        };
        let challenge = self.challenge();
        let body = serde_json::json!({"error": error, "error_description": self.error.to_string()});
        let mut resp = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

impl IntoResponse for GuardError {
    /// The answer to a `Bearer` request (an `invalid_dpop_proof` is answered in `DPoP` anyway).
    fn into_response(self) -> Response {
        Refusal::bearer(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALGS: &str = r#"algs="ES256 EdDSA RS256 PS256""#;

    #[test]
    fn each_refusal_is_challenged_in_the_scheme_rfc_9449_section_7_2_recommends() {
        let cases = [
            (
                Refusal::bearer(GuardError::Missing),
                format!(r#"Bearer realm="api", DPoP realm="api", {ALGS}"#),
            ),
            (
                Refusal::bearer(GuardError::InvalidToken("expired")),
                format!(
                    r#"Bearer realm="api", error="invalid_token", error_description="expired", DPoP realm="api", {ALGS}"#
                ),
            ),
            (
                Refusal::dpop(GuardError::InvalidToken("expired")),
                format!(
                    r#"DPoP realm="api", error="invalid_token", error_description="expired", {ALGS}"#
                ),
            ),
            (
                Refusal::dpop(GuardError::InvalidDpopProof("replayed")),
                format!(
                    r#"DPoP realm="api", error="invalid_dpop_proof", error_description="replayed", {ALGS}"#
                ),
            ),
            (
                Refusal::dpop(GuardError::InsufficientScope("write:x".into())),
                format!(r#"DPoP realm="api", error="insufficient_scope", scope="write:x", {ALGS}"#),
            ),
            (
                Refusal::bearer(GuardError::InsufficientScope("write:x".into())),
                r#"Bearer realm="api", error="insufficient_scope", scope="write:x""#.to_owned(),
            ),
            (
                Refusal::bearer(GuardError::Unavailable),
                r#"Bearer realm="api""#.to_owned(),
            ),
        ];
        for (refusal, challenge) in cases {
            assert_eq!(refusal.challenge(), challenge, "{refusal:?}");
        }
    }

    #[test]
    fn quotes_in_a_parameter_cannot_end_it() {
        let r = Refusal::dpop(GuardError::InsufficientScope(r#"a" error="x\"#.into()));
        assert!(
            r.challenge().contains(r#"scope="a\" error=\"x\\""#),
            "{}",
            r.challenge()
        );
    }
}
