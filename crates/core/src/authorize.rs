//! The authorization request (RFC 6749 §4.1.1): what `/authorize` accepts, what the consent
//! step grants, and the code it issues.
//!
//! The server checks the client and the redirect URI first, and shows an error page when
//! either is wrong (an unverified redirect URI would be an open redirect). [`validate`] then
//! decides everything else; its errors go back to the verified redirect URI. The
//! [`Pending`] request it returns is sealed into the sign-in forms, so the login and consent
//! steps continue exactly what was checked, on any node.

use serde::{Deserialize, Serialize};

/// The prefix of a pushed request's `request_uri` (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

use crate::grant::{decide_user_scope, grant_for, target_audience, GrantError, Secrets};
use crate::model::{AuthCode, Client, ClientGrant, ClientType, GrantType, User};
use crate::redirect::Redirect;
use crate::request::AuthorizeParams;
use crate::store::Users;
use crate::{pkce, ErrorCode, OAuthError, ScopeSet};

/// Codes live ten minutes, the most RFC 6749 §4.1.2 recommends.
pub const CODE_SECS: i64 = 600;

/// A validated authorization request, waiting for sign-in and consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The client.
    pub client_id: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// True when the request named the redirect URI (the token request must then repeat it).
    pub redirect_uri_given: bool,
    /// The client's `state`, echoed back.
    pub state: String,
    /// The scopes asked for, if any.
    pub scope: Option<String>,
    /// The API.
    pub api_id: String,
    /// What the client's grant for the API allows.
    pub client_scopes: String,
    /// The PKCE challenge (S256).
    pub code_challenge: Option<String>,
    /// The request's `prompt` values (`login`, `consent`), space-separated.
    #[serde(default)]
    pub prompt: String,
}

impl Pending {
    /// True when the request asked for `value` among its `prompt` values.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.split(' ').any(|p| p == value)
    }
}

/// Decides everything about the request but the client and redirect URI (already verified).
/// `grants` are the client's.
pub fn validate(
    params: &AuthorizeParams,
    client: &Client,
    grants: &[ClientGrant],
    redirect: Redirect,
) -> Result<Pending, OAuthError> {
    let state = params
        .state
        .clone()
        .ok_or_else(|| OAuthError::invalid_request("the state parameter is required"))?;
    match params.response_type.as_deref() {
        None => {
            return Err(OAuthError::invalid_request(
                "the response_type parameter is required",
            ))
        }
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use code"),
            ))
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    let challenge = pkce::check_challenge(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
        client.client_type == ClientType::Public,
    )?;
    let target = params.target();
    let audience = target_audience(&target, grants)?;
    let grant = grant_for(grants, audience)?;
    // A blank scope (`scope=%20`) is no scope, as an empty one is (RFC 6749 §3.2).
    let scope = params
        .scope
        .as_deref()
        .map(ScopeSet::parse)
        .transpose()?
        .filter(|s| !s.is_empty());
    if let Some(s) = &scope {
        // Refuse early what the application could never get; the account is checked later.
        decide_user_scope(Some(s), &grant.scopes, s)?;
    }
    Ok(Pending {
        client_id: client.id.clone(),
        redirect_uri: redirect.uri,
        redirect_uri_given: redirect.given,
        state,
        scope: scope.map(|s| s.to_string()),
        api_id: grant.api_id.clone(),
        client_scopes: grant.scopes.to_string(),
        code_challenge: challenge,
        prompt: params.prompt.clone().unwrap_or_default(),
    })
}

/// The scopes to approve for `user`: the request's, or the most the account allows.
pub async fn user_scope<S: Users + ?Sized>(
    store: &S,
    pending: &Pending,
    user: &User,
) -> Result<ScopeSet, GrantError> {
    let account = store
        .user_scopes(&user.id, &pending.api_id)
        .await?
        .unwrap_or_default();
    let client = ScopeSet::parse(&pending.client_scopes)?;
    let requested = pending.scope.as_deref().map(ScopeSet::parse).transpose()?;
    Ok(decide_user_scope(requested.as_ref(), &client, &account)?)
}

/// The code for an approved request: the value to send and the record to store.
pub fn new_code(
    secrets: &dyn Secrets,
    pending: &Pending,
    user: &User,
    scope: ScopeSet,
    now: i64,
) -> (String, AuthCode) {
    let code = secrets.generate();
    let record = AuthCode {
        code_hash: secrets.hash(&code),
        family_id: secrets.id("fam"),
        client_id: pending.client_id.clone(),
        user_id: user.id.clone(),
        api_id: pending.api_id.clone(),
        scope,
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_given: pending.redirect_uri_given,
        code_challenge: pending.code_challenge.clone(),
        created_at: now,
        expires_at: now + CODE_SECS,
        used_at: None,
    };
    (code, record)
}
