//! RFC 6749 §5.2 error codes, plus the few that neighbouring RFCs add.
//!
//! What a client sees is an [`ErrorCode`] and a short, safe description. The cause of a server
//! failure is never put in here: the server logs it and answers with a generic body.

use std::borrow::Cow;

/// An OAuth error code, as it appears in the `error` member of an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6749 §5.2: a required parameter is missing, a parameter is repeated or malformed,
    /// more than one client authentication method is used, or the body is unusable.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (unknown client, wrong secret, no
    /// authentication where it is required). Answered with 401.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token, subject token) is invalid, expired,
    /// revoked, spent or was issued to another client.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not one this server supports.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is invalid, unknown, or exceeds what was granted.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the resource owner or the server denied the request. Calyx also
    /// answers it (with 403) when a client has no grant for the requested audience, as Auth0 does.
    AccessDenied,
    /// RFC 8707 §2: the `resource` parameter is not an acceptable absolute URI.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: `response_type` is not `code`.
    UnsupportedResponseType,
    /// RFC 6585 §4 (429) with an OAuth-shaped body: the client is over its issuance rate.
    TooManyRequests,
    /// RFC 6749 §4.1.2.1: an unexpected condition; the cause is logged, not returned.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to answer (database unreachable).
    TemporarilyUnavailable,
    /// RFC 9449 §5: the DPoP proof is missing (where required), malformed, stale, replayed, or
    /// made with another key than the one a token is bound to.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the server's nonce, sent in `DPoP-Nonce`.
    UseDpopNonce,
    /// RFC 9101 §6.2 (and RFC 9126 §4): the `request_uri` is unknown, expired or used.
    InvalidRequestUri,
}

impl ErrorCode {
    /// The wire form of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error with a description that is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// A human-readable explanation for the client developer. Never contains secrets, and
    /// never says whether a client or user exists where that would help an attacker.
    pub description: Cow<'static, str>,
}

impl OAuthError {
    /// Builds an error from a code and a description. The description is brought within the
    /// characters RFC 6749 §5.2 allows in `error_description` (%x20-21 / %x23-5B / %x5D-7E),
    /// since descriptions may quote the request: `"` becomes `'`, `\` becomes `/`, anything
    /// else outside the set `?`.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            code,
            description: within_rfc_charset(description.into()),
        }
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`. One description for every cause, so that a caller cannot tell an
    /// unknown client from a wrong secret.
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    /// `invalid_scope` with a description.
    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }
}

fn within_rfc_charset(d: Cow<'static, str>) -> Cow<'static, str> {
    let allowed =
        |c: char| matches!(c, '\u{20}'..='\u{21}' | '\u{23}'..='\u{5B}' | '\u{5D}'..='\u{7E}');
    if d.chars().all(allowed) {
        return d;
    }
    d.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if allowed(c) => c,
            _ => '?',
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `token_request` fuzz target: descriptions quoted parameter names with `"`.
    #[test]
    fn descriptions_stay_within_the_rfc_6749_error_description_characters() {
        let e =
            OAuthError::invalid_request(format!("parameter {:?} is repeated", "a\"b\\c\u{e9}\n"));
        assert_eq!(e.description, "parameter 'a/'b//c?/n' is repeated");
        let fine = OAuthError::invalid_request("missing audience");
        assert!(matches!(
            fine.description,
            Cow::Borrowed("missing audience")
        ));
    }
}
