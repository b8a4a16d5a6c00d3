//! `grant_type=authorization_code` (RFC 6749 §4.1.3, with PKCE, RFC 7636 §4.6).
//!
//! Single use is decided by the database, not by this code: [`Codes::redeem_code`] moves the
//! code from unused to used in one conditional statement inside a transaction, so of any
//! number of concurrent presentations exactly one wins. The checks beforehand (client,
//! redirect URI, verifier) only decide whether to try. A code presented again revokes what it
//! issued (RFC 6749 §4.1.2).

use crate::grant::{
    invalid_grant, refresh_token, ApiDirectory, GrantError, Replayed, Secrets, UserGrant,
};
use crate::model::{AuthCode, Client, ClientType, Family, FamilyToken, GrantType};
use crate::request::CodeRequest;
use crate::store::{Codes, RefreshTokens, Users};
use crate::{pkce, OAuthError};

/// Redeems a code for `client`: checks it, then spends it and starts its grant family.
pub async fn redeem<S>(
    store: &S,
    apis: &dyn ApiDirectory,
    secrets: &dyn Secrets,
    client: &Client,
    request: CodeRequest,
    now: i64,
) -> Result<UserGrant, GrantError>
where
    S: Codes + Users + RefreshTokens + ?Sized,
{
    let code_hash = secrets.hash(&request.code);
    let Some(record) = store.code(&code_hash).await? else {
        return Err(invalid_grant("the authorization code is invalid"));
    };
    if record.client_id != client.id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if record.used_at.is_some() {
        return Err(replayed(store, &record, now).await);
    }
    if now >= record.expires_at {
        return Err(invalid_grant("the authorization code has expired"));
    }
    check_redirect_uri(&request, &record)?;
    check_verifier(&request, &record)?;
    let Some(api) = apis.api_by_id(&record.api_id).await? else {
        return Err(invalid_grant("the API this grant was for no longer exists"));
    };
    let Some(user) = store.user(&record.user_id).await? else {
        return Err(invalid_grant("the user no longer exists"));
    };
    let refresh = client
        .allows(GrantType::RefreshToken)
        .then(|| refresh_token::mint(secrets, &record.family_id, 1));
    let family = Family {
        id: record.family_id.clone(),
        client_id: client.id.clone(),
        user_id: user.id,
        org_id: user.org_id,
        api_id: api.id.clone(),
        scope: record.scope.clone(),
        created_at: now,
        revoked_at: None,
        token: refresh.as_ref().map(|(_, token_hash)| FamilyToken {
            generation: 1,
            token_hash: token_hash.clone(),
            issued_at: now,
            expires_at: now + api.refresh_token_lifetime,
        }),
        // RFC 9449 §5: a public client's refresh tokens are bound to the key it proved; a
        // confidential client's are bound to its authentication already.
        dpop_jkt: match client.client_type {
            ClientType::Public => request.dpop_jkt.clone(),
            ClientType::Confidential => None,
        },
    };
    if !store.redeem_code(&code_hash, now, &family).await? {
        // Lost the race, or a replay: the winner's tokens must not survive.
        return Err(replayed(store, &record, now).await);
    }
    Ok(UserGrant {
        family,
        api,
        scope: record.scope,
        refresh_token: refresh.map(|(token, _)| token),
    })
}

/// RFC 6749 §4.1.3: the same redirect URI as the authorization request, if it named one.
fn check_redirect_uri(request: &CodeRequest, record: &AuthCode) -> Result<(), GrantError> {
    match (&request.redirect_uri, record.redirect_uri_given) {
        (Some(given), _) if *given != record.redirect_uri => Err(invalid_grant(
            "redirect_uri does not match the one the code was issued for",
        )),
        (None, true) => Err(OAuthError::invalid_request(
            "redirect_uri is required: it was sent in the authorization request",
        )
        .into()),
        _ => Ok(()),
    }
}

/// RFC 7636 §4.6: the verifier must match the challenge; neither may come alone.
fn check_verifier(request: &CodeRequest, record: &AuthCode) -> Result<(), GrantError> {
    match (&record.code_challenge, &request.code_verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => {
            Err(OAuthError::invalid_request("code_verifier is required (PKCE)").into())
        }
        (None, Some(_)) => Err(invalid_grant(
            "code_verifier sent but no code_challenge was",
        )),
        (None, None) => Ok(()),
    }
}

/// Revokes what a replayed code issued and says so.
async fn replayed<S: RefreshTokens + ?Sized>(store: &S, record: &AuthCode, now: i64) -> GrantError {
    if let Err(e) = store.revoke_family(&record.family_id, now).await {
        return e.into();
    }
    GrantError::Replayed {
        what: Replayed::Code,
        family_id: record.family_id.clone(),
        error: OAuthError::new(
            crate::ErrorCode::InvalidGrant,
            "the authorization code was already used; tokens issued from it are revoked",
        ),
    }
}
