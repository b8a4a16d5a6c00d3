//! Delegation: a user-scoped token minted by the user's organization, either through
//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693) or through the
//! user registry's `authenticate` endpoint. The organization's own token (verified by the
//! server) is the subject; the user must belong to its organization; the token's scopes are
//! the user's allowed scopes within what the organization's client is granted *now*.

use crate::grant::{invalid_grant, GrantError};
use crate::model::{Api, Client, User};
use crate::request::ExchangeRequest;
use crate::store::{StoreResult, Users};
use crate::{ErrorCode, OAuthError, ScopeSet};

/// The scope an organization's token needs to mint user tokens.
pub const AUTHENTICATE_SCOPE: &str = "users:authenticate";

/// What a verified organization token says.
#[derive(Debug, Clone, Copy)]
pub struct OrgSubject<'a> {
    /// The client the token was issued to.
    pub client_id: &'a str,
    /// The organization.
    pub org_id: &'a str,
    /// The token's scopes.
    pub scope: &'a ScopeSet,
    /// The token's API.
    pub api: &'a Api,
    /// What the client is granted for that API now.
    pub grant_scopes: &'a ScopeSet,
}

/// What to issue: a token for `user` with `scope`.
#[derive(Debug)]
pub struct Delegation {
    /// The user.
    pub user: User,
    /// The scopes.
    pub scope: ScopeSet,
}

/// Decides an RFC 8693 exchange by `client`, whose subject token says `subject`.
pub async fn exchange<S: Users + ?Sized>(
    store: &S,
    client: &Client,
    request: &ExchangeRequest,
    subject: OrgSubject<'_>,
) -> Result<Delegation, GrantError> {
    if subject.client_id != client.id {
        return Err(invalid_grant(
            "the subject_token was issued to another client",
        ));
    }
    if !subject.scope.contains(AUTHENTICATE_SCOPE) {
        return Err(OAuthError::invalid_scope(
            "the subject_token lacks the users:authenticate scope",
        )
        .into());
    }
    let target = &request.target;
    if let Some(aud) = target.audience.as_ref().or(target.resource.as_ref()) {
        if *aud != subject.api.audience {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the audience must be the subject_token's",
            )
            .into());
        }
    }
    match delegate(store, subject, &request.requested_subject).await? {
        Some(d) => Ok(d),
        None => Err(invalid_grant("no such user in this organization")),
    }
}

/// The delegation for user `user_id` of the subject's organization; `None` when there is no
/// such user there (another organization's user is as absent as an unknown one).
pub async fn delegate<S: Users + ?Sized>(
    store: &S,
    subject: OrgSubject<'_>,
    user_id: &str,
) -> StoreResult<Option<Delegation>> {
    let Some(user) = org_user(store, subject.org_id, user_id).await? else {
        return Ok(None);
    };
    let allowed = store
        .user_scopes(&user.id, &subject.api.id)
        .await?
        .unwrap_or_default();
    Ok(Some(Delegation {
        user,
        scope: allowed.intersection(subject.grant_scopes),
    }))
}

/// The user `id`, if it belongs to organization `org_id`.
pub async fn org_user<S: Users + ?Sized>(
    store: &S,
    org_id: &str,
    id: &str,
) -> StoreResult<Option<User>> {
    if id.contains('\0') {
        return Ok(None);
    }
    Ok(store.user(id).await?.filter(|u| u.org_id == org_id))
}
