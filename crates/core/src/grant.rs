//! Grant decisions: which API a token is for, and with which scopes.
//!
//! The server resolves the records (client, its grants, the API) and asks these functions
//! what to issue; they never touch storage.

use crate::model::{Client, ClientGrant, GrantType};
use crate::params::Params;
use crate::{ErrorCode, OAuthError, ScopeSet};

/// The grant type a request asks for.
pub fn grant_type(params: &Params) -> Result<GrantType, OAuthError> {
    let raw = params.require("grant_type")?;
    GrantType::parse(raw).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {raw:?} is not supported"),
        )
    })
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
    params: &'a Params,
    grants: &'a [ClientGrant],
) -> Result<&'a str, OAuthError> {
    let audience = params.get("audience");
    let resource = params.get("resource");
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
        let p = |s: &str| Params::from_form(s.as_bytes()).unwrap();
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
