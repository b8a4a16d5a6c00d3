//! Typed requests: every endpoint's parameters parsed once, by name, into a struct.
//!
//! [`Params`] applies RFC 6749 §3.1 and §3.2 to the raw form or JSON object (no repeated
//! names, a name without a value is omitted); [`Params::into_typed`] then moves the values into
//! one of the structs here, whose fields are the parameters and whose schema is what the
//! OpenAPI document shows (feature `openapi`). Names a struct does not know are ignored, as
//! RFC 6749 §3.1 requires. A token request becomes a [`TokenRequest`], one variant per grant,
//! only after the client has authenticated, so that a client with bad credentials learns
//! nothing about the rest of its request.

use std::fmt;

use serde::Deserialize;

use crate::model::GrantType;
use crate::params::Params;
use crate::{ErrorCode, OAuthError};

/// The token endpoint's parameters (RFC 6749 §4.1.3, §4.4.2, §6; RFC 8693 §2.1; RFC 8707),
/// as a form or a JSON object.
#[derive(Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TokenRequest))]
pub struct TokenParams {
    /// The grant.
    #[cfg_attr(feature = "openapi", schema(value_type = GrantType, required = true))]
    pub grant_type: Option<String>,
    /// The client id (client_secret_post, or with Basic if it matches).
    pub client_id: Option<String>,
    /// The client secret (client_secret_post). Do not combine with HTTP Basic.
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt, RFC 7523).
    pub client_assertion_type: Option<String>,
    /// A JWT signed with a key of the client's JWK Set (private_key_jwt, RFC 7523 §2.2).
    pub client_assertion: Option<String>,
    /// The API's audience (Auth0 style).
    pub audience: Option<String>,
    /// The API's audience as an absolute URI (RFC 8707).
    pub resource: Option<String>,
    /// Space-separated scopes; all the grant allows when absent.
    pub scope: Option<String>,
    /// The authorization code (authorization_code).
    pub code: Option<String>,
    /// The redirect URI the code was sent to (authorization_code).
    pub redirect_uri: Option<String>,
    /// The PKCE verifier (authorization_code).
    pub code_verifier: Option<String>,
    /// The refresh token (refresh_token).
    pub refresh_token: Option<String>,
    /// The organization's token (token exchange).
    pub subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token` (token exchange).
    pub subject_token_type: Option<String>,
    /// The user id to get a token for (token exchange).
    pub requested_subject: Option<String>,
}

impl fmt::Debug for TokenParams {
    /// The grant type only: the other values include secrets, codes and tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenParams")
            .field("grant_type", &self.grant_type)
            .finish_non_exhaustive()
    }
}

/// Client credentials sent in a request body (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Default)]
pub struct BodyCredentials<'a> {
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `client_secret`.
    pub client_secret: Option<&'a str>,
    /// `client_assertion_type`.
    pub client_assertion_type: Option<&'a str>,
    /// `client_assertion`.
    pub client_assertion: Option<&'a str>,
}

/// The API a token is asked for: `audience` (Auth0 style) or `resource` (RFC 8707).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// `audience`.
    pub audience: Option<String>,
    /// `resource`.
    pub resource: Option<String>,
}

/// `grant_type=client_credentials` (RFC 6749 §4.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    /// The API.
    pub target: Target,
    /// The scopes asked for, if any.
    pub scope: Option<String>,
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub struct CodeRequest {
    /// The code.
    pub code: String,
    /// The redirect URI, when the authorization request named one.
    pub redirect_uri: Option<String>,
    /// The PKCE verifier.
    pub code_verifier: Option<String>,
    /// The thumbprint of the key of a verified DPoP proof sent with the request (set by the
    /// server after checking the proof; never read from the body).
    pub dpop_jkt: Option<String>,
}

/// `grant_type=refresh_token` (RFC 6749 §6).
pub struct RefreshRequest {
    /// The refresh token presented.
    pub refresh_token: String,
    /// A narrower scope, if asked for.
    pub scope: Option<String>,
    /// The thumbprint of the key of a verified DPoP proof sent with the request (set by the
    /// server after checking the proof; never read from the body).
    pub dpop_jkt: Option<String>,
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693 §2.1).
pub struct ExchangeRequest {
    /// The organization's own access token.
    pub subject_token: String,
    /// The user to act for.
    pub requested_subject: String,
    /// The API, which must be the subject token's.
    pub target: Target,
}

/// A token request, one variant per grant.
pub enum TokenRequest {
    /// RFC 6749 §4.4.
    ClientCredentials(ClientCredentialsRequest),
    /// RFC 6749 §4.1.3.
    AuthorizationCode(CodeRequest),
    /// RFC 6749 §6.
    RefreshToken(RefreshRequest),
    /// RFC 8693.
    TokenExchange(ExchangeRequest),
}

/// The one `subject_token_type` an exchange accepts (and its JWT synonym).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

impl TokenParams {
    /// Parses a form or JSON token request body.
    pub fn parse(params: Params) -> Result<Self, OAuthError> {
        params.into_typed()
    }

    /// The grant type asked for (`unsupported_grant_type` for any other, RFC 6749 §5.2).
    pub fn grant_type(&self) -> Result<GrantType, OAuthError> {
        let raw = required(&self.grant_type, "grant_type")?;
        GrantType::parse(raw).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {raw:?} is not supported"),
            )
        })
    }

    /// The client credentials in the body, for client authentication.
    pub fn credentials(&self) -> BodyCredentials<'_> {
        BodyCredentials {
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            client_assertion_type: self.client_assertion_type.as_deref(),
            client_assertion: self.client_assertion.as_deref(),
        }
    }

    /// The grant's own request; `invalid_request` names a missing parameter.
    pub fn into_request(self, grant: GrantType) -> Result<TokenRequest, OAuthError> {
        let target = Target {
            audience: self.audience,
            resource: self.resource,
        };
        Ok(match grant {
            GrantType::ClientCredentials => {
                TokenRequest::ClientCredentials(ClientCredentialsRequest {
                    target,
                    scope: self.scope,
                })
            }
            GrantType::AuthorizationCode => TokenRequest::AuthorizationCode(CodeRequest {
                code: take(self.code, "code")?,
                redirect_uri: self.redirect_uri,
                code_verifier: self.code_verifier,
                dpop_jkt: None,
            }),
            GrantType::RefreshToken => TokenRequest::RefreshToken(RefreshRequest {
                refresh_token: take(self.refresh_token, "refresh_token")?,
                scope: self.scope,
                dpop_jkt: None,
            }),
            GrantType::TokenExchange => {
                let subject_token = take(self.subject_token, "subject_token")?;
                match self.subject_token_type.as_deref() {
                    None
                    | Some(ACCESS_TOKEN_TYPE)
                    | Some("urn:ietf:params:oauth:token-type:jwt") => {}
                    Some(_) => {
                        return Err(OAuthError::invalid_request(format!(
                            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
                        )))
                    }
                }
                TokenRequest::TokenExchange(ExchangeRequest {
                    subject_token,
                    requested_subject: take(self.requested_subject, "requested_subject")?,
                    target,
                })
            }
        })
    }
}

/// Revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.1) parameters.
#[derive(Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TokenOnly))]
pub struct TokenOnlyParams {
    /// The token.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub token: Option<String>,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
    /// The client id (with client_secret_post).
    pub client_id: Option<String>,
    /// The client secret (client_secret_post).
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt).
    pub client_assertion_type: Option<String>,
    /// The client assertion (private_key_jwt).
    pub client_assertion: Option<String>,
}

impl TokenOnlyParams {
    /// Parses a form or JSON body.
    pub fn parse(params: Params) -> Result<Self, OAuthError> {
        params.into_typed()
    }

    /// The client credentials in the body, for client authentication.
    pub fn credentials(&self) -> BodyCredentials<'_> {
        BodyCredentials {
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            client_assertion_type: self.client_assertion_type.as_deref(),
            client_assertion: self.client_assertion.as_deref(),
        }
    }

    /// The token, which must be present.
    pub fn token(&self) -> Result<&str, OAuthError> {
        required(&self.token, "token")
    }
}

/// The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707), from the query.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuthorizeParams {
    /// `code`.
    #[cfg_attr(feature = "openapi", param(required = true))]
    pub response_type: Option<String>,
    /// The application's client id.
    #[cfg_attr(feature = "openapi", param(required = true))]
    pub client_id: Option<String>,
    /// Required; echoed back exactly.
    #[cfg_attr(feature = "openapi", param(required = true))]
    pub state: Option<String>,
    /// A registered URI; a query component is kept, a fragment refused.
    pub redirect_uri: Option<String>,
    /// Defaults to the most the account allows.
    pub scope: Option<String>,
    /// The API; defaults to the client's default audience.
    pub audience: Option<String>,
    /// The API as an absolute URI (RFC 8707).
    pub resource: Option<String>,
    /// PKCE S256 challenge (required for public clients).
    pub code_challenge: Option<String>,
    /// `S256`.
    pub code_challenge_method: Option<String>,
    /// `consent` asks the user again even when the consent was remembered; `login` asks the
    /// user to sign in again (OpenID Connect Core §3.1.2.1).
    pub prompt: Option<String>,
    /// A pushed request's reference (RFC 9126 §4): its parameters replace the query's.
    pub request_uri: Option<String>,
}

impl AuthorizeParams {
    /// Parses the query string.
    pub fn parse(query: &[u8]) -> Result<Self, OAuthError> {
        Params::from_form(query)?.into_typed()
    }

    /// The parameters of a pushed request body (RFC 9126 §2.1).
    pub fn from_params(params: Params) -> Result<Self, OAuthError> {
        params.into_typed()
    }

    /// The API asked for.
    pub fn target(&self) -> Target {
        Target {
            audience: self.audience.clone(),
            resource: self.resource.clone(),
        }
    }
}

/// A page of a list: `limit` (1 to 200, default 50) items after the cursor `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageParams {
    /// How many items at most.
    pub limit: i64,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

/// The largest page.
pub const MAX_PAGE: i64 = 200;

/// The page size when none is asked for.
pub const DEFAULT_PAGE: i64 = 50;

impl PageParams {
    /// Parses the query string. `limit=` with no value is refused rather than read as absent:
    /// a client that meant a number should hear that it sent none.
    pub fn parse(query: &[u8]) -> Result<Self, OAuthError> {
        #[derive(Deserialize)]
        struct Raw {
            limit: Option<String>,
            after: Option<String>,
        }
        let params = Params::from_form(query)?;
        let limit_sent_empty = params.was_empty("limit");
        let raw: Raw = params.into_typed()?;
        let limit = match (raw.limit, limit_sent_empty) {
            (None, false) => DEFAULT_PAGE,
            (given, _) => given
                .and_then(|l| l.parse::<i64>().ok())
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    OAuthError::invalid_request("limit must be a whole number from 1 to 200")
                })?,
        };
        Ok(PageParams {
            limit,
            after: raw.after,
        })
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value.as_deref().ok_or_else(|| missing(name))
}

fn take(value: Option<String>, name: &str) -> Result<String, OAuthError> {
    value.ok_or_else(|| missing(name))
}

fn missing(name: &str) -> OAuthError {
    OAuthError::invalid_request(format!("missing required parameter {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(body: &str) -> TokenParams {
        TokenParams::parse(Params::from_form(body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn form_and_json_give_the_same_request() {
        let f = token("grant_type=client_credentials&audience=https%3A%2F%2Fa%2F&x=1");
        let j = TokenParams::parse(
            Params::from_json(br#"{"grant_type":"client_credentials","audience":"https://a/"}"#)
                .unwrap(),
        )
        .unwrap();
        for p in [f, j] {
            assert_eq!(p.grant_type().unwrap(), GrantType::ClientCredentials);
            let TokenRequest::ClientCredentials(r) =
                p.into_request(GrantType::ClientCredentials).unwrap()
            else {
                panic!("not client credentials")
            };
            assert_eq!(r.target.audience.as_deref(), Some("https://a/"));
        }
    }

    #[test]
    fn table_of_refusals() {
        let cases: &[(&str, ErrorCode, &str)] = &[
            ("", ErrorCode::InvalidRequest, "grant_type"),
            ("grant_type=password", ErrorCode::UnsupportedGrantType, "password"),
            ("grant_type=authorization_code", ErrorCode::InvalidRequest, "'code'"),
            ("grant_type=authorization_code&code=", ErrorCode::InvalidRequest, "'code'"),
            ("grant_type=refresh_token", ErrorCode::InvalidRequest, "refresh_token"),
            (
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=t",
                ErrorCode::InvalidRequest,
                "requested_subject",
            ),
            (
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=t&subject_token_type=x&requested_subject=u",
                ErrorCode::InvalidRequest,
                "subject_token_type",
            ),
        ];
        for (body, code, needle) in cases {
            let p = token(body);
            let e = match p.grant_type() {
                Err(e) => e,
                Ok(g) => p.into_request(g).err().expect(body),
            };
            assert_eq!(e.code, *code, "{body}");
            assert!(e.description.contains(needle), "{body}: {}", e.description);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let p = token("grant_type=client_credentials&client_secret=s3cr3t-value");
        assert!(!format!("{p:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn pages() {
        let p = |q: &str| PageParams::parse(q.as_bytes());
        assert_eq!(p("").unwrap().limit, 50);
        assert_eq!(
            p("limit=7&after=u1").unwrap(),
            PageParams {
                limit: 7,
                after: Some("u1".into())
            }
        );
        for bad in [
            "limit=",
            "limit=0",
            "limit=201",
            "limit=x",
            "limit=1&limit=2",
        ] {
            assert_eq!(p(bad).unwrap_err().code, ErrorCode::InvalidRequest, "{bad}");
        }
    }
}
