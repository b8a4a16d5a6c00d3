//! Grant decisions: one module per grant, each taking the typed request
//! (`crate::request`), the authenticated client, and the storage roles it reads and writes,
//! and returning what to issue. The server turns HTTP into those requests, signs what the
//! decision says, and answers; nothing here knows HTTP, a clock or a socket.
//!
//! The shared rules live here: which API a token is for (`audience`/`resource`, RFC 8707),
//! which grant of the client covers it, and which scopes to grant (RFC 6749 §3.3).

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{Api, Client, ClientGrant, Family, GrantType};
use crate::request::Target;
use crate::store::{StoreError, StoreResult};
use crate::{ErrorCode, OAuthError, ScopeSet};

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;

/// The keyed hashing, random values and sealing a flow needs, provided by the server (the
/// pepper and keys live there).
pub trait Secrets: Send + Sync {
    /// The keyed hash under which a secret (code, refresh token) is stored and looked up.
    fn hash(&self, secret: &str) -> Vec<u8>;
    /// A new random secret: an authorization code, or a refresh token's secret part.
    fn generate(&self) -> String;
    /// A MAC of `message` under a key derived from the pepper for refresh-token tags (not
    /// the key of [`Secrets::hash`]), at least 16 bytes.
    fn tag(&self, message: &str) -> Vec<u8>;
    /// A new random identifier with a type prefix, e.g. `fam_…`.
    fn id(&self, prefix: &str) -> String;
    /// Encrypts a value for storage (a refresh token's successor, kept for the reuse leeway).
    fn seal(&self, plain: &[u8]) -> Vec<u8>;
    /// Decrypts what [`Secrets::seal`] made; `None` if it was not.
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>>;
}

/// APIs by id, as the server caches them.
#[async_trait]
pub trait ApiDirectory: Send + Sync {
    /// The API with this id, if it exists.
    async fn api_by_id(&self, id: &str) -> StoreResult<Option<Arc<Api>>>;
}

/// Which single-use credential was presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// An authorization code (RFC 6749 §4.1.2: revoke what it issued).
    Code,
    /// A refresh token (RFC 9700 §4.14.2: revoke the family).
    RefreshToken,
}

/// Why a grant was not given.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The request is refused with this RFC 6749 §5.2 error.
    #[error("{0}")]
    Refused(#[from] OAuthError),
    /// A single-use credential came back: the family `family_id` is revoked. The server
    /// records it as a security event and answers `error`.
    #[error("{what:?} replayed: {error}")]
    Replayed {
        /// What was replayed.
        what: Replayed,
        /// The revoked family.
        family_id: String,
        /// The answer.
        error: OAuthError,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a user grant (code or refresh) issues: an access token for `family`'s user and API
/// with `scope`, and the refresh token to hand out, if any.
#[derive(Debug)]
pub struct UserGrant {
    /// The grant family (one sign-in).
    pub family: Family,
    /// The API the tokens are for.
    pub api: Arc<Api>,
    /// The access token's scopes.
    pub scope: ScopeSet,
    /// The refresh token to return.
    pub refresh_token: Option<String>,
}

/// `invalid_grant` with a fixed description.
pub(crate) fn invalid_grant(description: &'static str) -> GrantError {
    GrantError::Refused(OAuthError::new(ErrorCode::InvalidGrant, description))
}

/// Refuses a grant type the client is not registered for (RFC 6749 §5.2
/// `unauthorized_client`). Delegation extends the organization's machine access, so a client
/// that may use client_credentials may exchange its own tokens too (RFC 8693).
pub fn ensure_client_may_use(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if grant == GrantType::TokenExchange && client.allows(GrantType::TokenExchange) {
        return Ok(());
    }
    let grant = match grant {
        GrantType::TokenExchange => GrantType::ClientCredentials,
        other => other,
    };
    ensure_client_allows(client, grant)
}

/// Refuses a grant type the client is not registered for (RFC 6749 §5.2 `unauthorized_client`).
pub fn ensure_client_allows(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows(grant) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {grant} grant"),
        ))
    }
}

/// The audience a token request targets: `audience` (Auth0 style) or `resource` (RFC 8707),
/// else the client's default.
pub fn target_audience<'a>(
    target: &'a Target,
    grants: &'a [ClientGrant],
) -> Result<&'a str, OAuthError> {
    let audience = target.audience.as_deref();
    let resource = target.resource.as_deref();
    if let Some(r) = resource {
        if !is_absolute_uri_without_fragment(r) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource must be an absolute URI without a fragment (RFC 8707)",
            ));
        }
    }
    match (audience, resource) {
        (Some(a), Some(r)) if a != r => Err(OAuthError::invalid_request(
            "audience and resource name different APIs; send one of them",
        )),
        (Some(a), _) => Ok(a),
        (None, Some(r)) => Ok(r),
        (None, None) => grants
            .iter()
            .find(|g| g.is_default)
            .map(|g| g.audience.as_str())
            .ok_or_else(|| {
                OAuthError::invalid_request(
                    "missing audience: send audience (or resource); this client has no default audience",
                )
            }),
    }
}

/// The client's grant for `audience`, or `access_denied`. Unknown APIs and APIs without a
/// grant answer alike, so a client cannot probe which audiences exist.
pub fn grant_for<'a>(
    grants: &'a [ClientGrant],
    audience: &str,
) -> Result<&'a ClientGrant, OAuthError> {
    grants
        .iter()
        .find(|g| g.audience == audience)
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::AccessDenied,
                "this client is not authorized for the requested audience",
            )
        })
}

/// The scopes to grant: everything `allowed` when none are asked, else what was asked if it
/// lies within `allowed` (RFC 6749 §3.3).
pub fn decide_scope(requested: Option<&str>, allowed: &ScopeSet) -> Result<ScopeSet, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.clone());
    };
    let requested = ScopeSet::parse(requested)?;
    if requested.is_empty() {
        return Ok(allowed.clone());
    }
    if !requested.is_subset(allowed) {
        let extra: Vec<&str> = requested.difference(allowed).collect();
        return Err(OAuthError::invalid_scope(format!(
            "scope not granted: {}",
            extra.join(" ")
        )));
    }
    Ok(requested)
}

fn is_absolute_uri_without_fragment(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    scheme_ok && !rest.is_empty() && !s.contains('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(aud: &str, default: bool) -> ClientGrant {
        ClientGrant {
            client_id: "c".into(),
            api_id: "a".into(),
            audience: aud.into(),
            scopes: ScopeSet::parse("read write").unwrap(),
            is_default: default,
        }
    }

    #[test]
    fn audience_resource_and_default() {
        let grants = [grant("https://one/", false), grant("https://two/", true)];
        let p = |s: &str| {
            crate::request::AuthorizeParams::parse(s.as_bytes())
                .unwrap()
                .target()
        };
        assert_eq!(target_audience(&p("audience=x"), &grants).unwrap(), "x");
        assert_eq!(
            target_audience(&p("resource=https://r/"), &grants).unwrap(),
            "https://r/"
        );
        assert_eq!(target_audience(&p(""), &grants).unwrap(), "https://two/");
        assert_eq!(
            target_audience(&p("resource=nope"), &grants)
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            target_audience(&p("resource=https://r/%23f"), &grants)
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            target_audience(&p("audience=a:b&resource=a:c"), &grants)
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            target_audience(&p(""), &grants[..1]).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn scope_defaults_narrows_and_refuses() {
        let allowed = ScopeSet::parse("read write").unwrap();
        assert_eq!(decide_scope(None, &allowed).unwrap(), allowed);
        assert_eq!(
            decide_scope(Some("read"), &allowed).unwrap().to_string(),
            "read"
        );
        let e = decide_scope(Some("read admin"), &allowed).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert!(e.description.contains("admin"));
    }
}

/// The scopes a user grant may carry: what the client's grant allows, less the reserved
/// user-management scopes (never put in user tokens), within what the account allows. Absent
/// a request, the most the account allows (what integration guides call the "highest available scope");
/// an empty request (`scope=%20`) is no request, and gets no grant where there is nothing to
/// give either.
pub fn decide_user_scope(
    requested: Option<&ScopeSet>,
    client_allows: &ScopeSet,
    account_allows: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    let max: ScopeSet = client_allows
        .iter()
        .filter(|s| account_allows.contains(s) && !crate::scope::RESERVED_SCOPES.contains(s))
        .collect();
    match requested.filter(|r| !r.is_empty()) {
        None if max.is_empty() => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the account has no access to this API that the application may request",
        )),
        None => Ok(max),
        Some(r) if r.is_subset(&max) => Ok(r.clone()),
        Some(r) => Err(OAuthError::invalid_scope(format!(
            "scope not available to this account or application: {}",
            r.difference(&max).collect::<Vec<_>>().join(" ")
        ))),
    }
}

#[cfg(test)]
mod user_scope_tests {
    use super::*;

    #[test]
    fn user_scope_is_the_intersection_without_reserved_scopes() {
        let p = |s| ScopeSet::parse(s).unwrap();
        let client = p("Standard OrgAdmin users:write");
        let account = p("Standard StandardEditFinancialData users:write");
        assert_eq!(
            decide_user_scope(None, &client, &account).unwrap(),
            p("Standard")
        );
        assert_eq!(
            decide_user_scope(Some(&p("Standard")), &client, &account).unwrap(),
            p("Standard")
        );
        assert_eq!(
            decide_user_scope(Some(&p("OrgAdmin")), &client, &account)
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            decide_user_scope(Some(&p("users:write")), &client, &account)
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            decide_user_scope(None, &client, &p("Other"))
                .unwrap_err()
                .code,
            ErrorCode::AccessDenied
        );
    }

    /// Found by the `scope` fuzz target: `scope=%20` used to get an empty grant (and so a
    /// token for the API) for an account with no access to it, where no scope got
    /// `access_denied`.
    #[test]
    fn an_empty_scope_request_is_no_request() {
        let p = |s| ScopeSet::parse(s).unwrap();
        let (client, account) = (p("read"), p("write"));
        for requested in [None, Some(&p(" "))] {
            assert_eq!(
                decide_user_scope(requested, &client, &account)
                    .unwrap_err()
                    .code,
                ErrorCode::AccessDenied
            );
        }
        assert_eq!(
            decide_user_scope(Some(&p(" ")), &client, &p("read write")).unwrap(),
            p("read")
        );
    }
}
