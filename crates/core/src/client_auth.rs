//! How a client said who it is (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`,
//! a signed assertion (`private_key_jwt`, RFC 7523 §2.2), or only a `client_id` (public
//! clients, §2.1).
//!
//! RFC 6749 §2.3.1 has the id and secret form-urlencoded *before* base64 in the Basic header;
//! many clients skip that step, which only matters for ids and secrets with reserved
//! characters, so decoding follows the RFC.

use std::fmt;

use base64::Engine;

use crate::request::BodyCredentials;
use crate::{ErrorCode, OAuthError};

/// A secret from a request. Its `Debug` never shows the value, so that it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for hashing. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The client authentication a request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` (RFC 6749 §2.3.1).
    Basic {
        /// Decoded client id.
        client_id: String,
        /// Decoded secret.
        secret: Secret,
    },
    /// `client_id` and `client_secret` in the body (RFC 6749 §2.3.1, "NOT RECOMMENDED" but
    /// what many integration guides' clients send).
    Post {
        /// Client id.
        client_id: String,
        /// Secret.
        secret: Secret,
    },
    /// A JWT the client signed (`private_key_jwt`, RFC 7523 §2.2); the server checks it
    /// against the client's keys.
    Assertion {
        /// The `client_id` sent, or else the assertion's `sub` (RFC 7521 §4.2).
        client_id: String,
        /// The assertion.
        assertion: Secret,
    },
    /// Only a `client_id`: a public client (RFC 6749 §2.1).
    None {
        /// Client id.
        client_id: String,
    },
}

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl ClientAuth {
    /// The claimed client id.
    pub fn client_id(&self) -> &str {
        match self {
            ClientAuth::Basic { client_id, .. }
            | ClientAuth::Post { client_id, .. }
            | ClientAuth::Assertion { client_id, .. }
            | ClientAuth::None { client_id } => client_id,
        }
    }

    /// True when HTTP Basic was used, so a failure answers with a `WWW-Authenticate` challenge.
    pub fn is_basic(&self) -> bool {
        matches!(self, ClientAuth::Basic { .. })
    }

    /// The presented secret, if any.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            ClientAuth::Basic { secret, .. } | ClientAuth::Post { secret, .. } => Some(secret),
            ClientAuth::Assertion { .. } | ClientAuth::None { .. } => None,
        }
    }
}

/// Why extraction failed, and whether the client tried Basic (the server then adds
/// `WWW-Authenticate: Basic`, RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthExtractError {
    /// The error to answer with.
    pub error: OAuthError,
    /// True when an `Authorization` header was sent.
    pub basic_tried: bool,
}

/// `private_key_jwt`: the assertion alone authenticates (RFC 7521 §4.2), with no secret or
/// Basic header beside it; a `client_id` sent with it must be the assertion's subject, which
/// the server checks with the signature.
fn assertion(
    authorization: Option<&str>,
    body: BodyCredentials<'_>,
) -> Result<ClientAuth, AuthExtractError> {
    let fail = |error| AuthExtractError {
        error,
        basic_tried: authorization.is_some(),
    };
    if authorization.is_some() || body.client_secret.is_some() {
        return Err(fail(OAuthError::invalid_request(
            "use one client authentication method: a client assertion, HTTP Basic or \
             client_secret, not two",
        )));
    }
    match body.client_assertion_type {
        Some(JWT_BEARER) => {}
        Some(_) => return Err(fail(OAuthError::new(
            ErrorCode::InvalidClient,
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ))),
        None => {
            return Err(fail(OAuthError::invalid_request(
                "client_assertion was sent without client_assertion_type",
            )))
        }
    }
    let Some(jwt) = body.client_assertion else {
        return Err(fail(OAuthError::invalid_request(
            "client_assertion_type was sent without client_assertion",
        )));
    };
    let client_id = match body.client_id {
        Some(id) => id.to_owned(),
        None => unverified_subject(jwt).ok_or_else(|| {
            fail(OAuthError::new(
                ErrorCode::InvalidClient,
                "the client assertion is not a JWT with a sub",
            ))
        })?,
    };
    Ok(ClientAuth::Assertion {
        client_id,
        assertion: Secret(jwt.to_owned()),
    })
}

/// The `sub` of a JWT, read without checking anything: which client's keys to check it with.
fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Works out the client authentication from the `Authorization` header (if any) and the body.
pub fn extract(
    authorization: Option<&str>,
    body: BodyCredentials<'_>,
) -> Result<ClientAuth, AuthExtractError> {
    let (body_id, body_secret) = (body.client_id, body.client_secret);
    if body.client_assertion_type.is_some() || body.client_assertion.is_some() {
        return assertion(authorization, body);
    }
    if let Some(header) = authorization {
        let fail = |error| AuthExtractError {
            error,
            basic_tried: true,
        };
        let (client_id, secret) = parse_basic(header).map_err(fail)?;
        if body_secret.is_some() {
            return Err(fail(OAuthError::invalid_request(
                "use one client authentication method: HTTP Basic or client_secret in the body, not both",
            )));
        }
        if body_id.is_some_and(|id| id != client_id) {
            return Err(fail(OAuthError::invalid_request(
                "client_id in the body differs from the one in the Authorization header",
            )));
        }
        return Ok(ClientAuth::Basic {
            client_id,
            secret: Secret(secret),
        });
    }
    let fail = |error| AuthExtractError {
        error,
        basic_tried: false,
    };
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => {
            Ok(ClientAuth::Post { client_id: id.to_owned(), secret: Secret(secret.to_owned()) })
        }
        (Some(id), None) => Ok(ClientAuth::None { client_id: id.to_owned() }),
        (None, Some(_)) => {
            Err(fail(OAuthError::invalid_request("client_secret was sent without client_id")))
        }
        (None, None) => Err(fail(OAuthError::new(
            ErrorCode::InvalidClient,
            "client authentication is required: HTTP Basic, or client_id and client_secret in the body",
        ))),
    }
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1; the scheme is
/// case-insensitive), if it is one.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))`.
pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = |why: &'static str| OAuthError::new(ErrorCode::InvalidClient, why);
    let (scheme, rest) = header
        .trim()
        .split_once(' ')
        .ok_or(bad("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad(
            "the token endpoint accepts only the Basic authorization scheme",
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad("the Basic credentials are not valid base64"))?;
    let raw = String::from_utf8(raw).map_err(|_| bad("the Basic credentials are not UTF-8"))?;
    let (id, secret) = raw
        .split_once(':')
        .ok_or(bad("the Basic credentials have no ':'"))?;
    let id = form_decode(id);
    if id.is_empty() {
        return Err(bad("the Basic credentials have an empty client id"));
    }
    Ok((id, form_decode(secret)))
}

fn form_decode(s: &str) -> String {
    // application/x-www-form-urlencoded decoding of a lone value: '+' is a space. A raw '&'
    // (from a client that skipped the encoding) is part of the value, not a separator.
    form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn basic(s: &str) -> String {
        format!("Basic {}", STANDARD.encode(s))
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let (id, secret) = parse_basic(&basic("my%3Aapp+1:p%40ss%2Bword")).unwrap();
        assert_eq!(id, "my:app 1");
        assert_eq!(secret, "p@ss+word");
    }

    /// Found by the `token_request` fuzz target: an unencoded `&` cut the value short.
    #[test]
    fn an_unencoded_ampersand_stays_in_the_basic_credentials() {
        let (id, secret) = parse_basic(&basic("my&app:p&ss=1")).unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("my&app", "p&ss=1"));
        let (id, _) = parse_basic(&basic("my%26app:s")).unwrap();
        assert_eq!(id, "my&app");
    }

    #[test]
    fn table_of_client_auth_cases() {
        let p = |s: &str| {
            crate::request::TokenOnlyParams::parse(
                crate::params::Params::from_form(s.as_bytes()).unwrap(),
            )
            .unwrap()
        };
        let ok = |h: Option<&str>, body: &str| extract(h, p(body).credentials()).unwrap();
        let err = |h: Option<&str>, body: &str| extract(h, p(body).credentials()).unwrap_err();
        let b = basic("a:s");
        assert!(matches!(ok(Some(&b), ""), ClientAuth::Basic { .. }));
        assert!(matches!(
            ok(Some(&b), "client_id=a"),
            ClientAuth::Basic { .. }
        ));
        assert!(matches!(
            ok(None, "client_id=a&client_secret=s"),
            ClientAuth::Post { .. }
        ));
        assert!(matches!(ok(None, "client_id=a"), ClientAuth::None { .. }));
        assert_eq!(
            err(Some(&b), "client_secret=s").error.code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            err(Some(&b), "client_id=b").error.code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            err(None, "client_secret=s").error.code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(err(None, "").error.code, ErrorCode::InvalidClient);
        for h in [
            "Bearer x",
            "Basic !!!",
            "Basic",
            &basic("nocolon"),
            &basic(":s"),
        ] {
            let e = err(Some(h), "");
            assert_eq!(e.error.code, ErrorCode::InvalidClient, "{h}");
            assert!(e.basic_tried);
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        for no in ["Bearer", "Bearer  ", "Basic abc", "Bearerabc", ""] {
            assert_eq!(bearer_token(no), None, "{no:?}");
        }
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let a = ClientAuth::Post {
            client_id: "a".into(),
            secret: Secret::new("hunter2"),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
