//! Access tokens: the one place their claims are built (RFC 9068 §2.2) and signed, and the
//! token response (RFC 6749 §5.1) that carries them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use calyx_core::grant::token_exchange::Delegation;
use calyx_core::model::{Api, SigningAlg};
use calyx_core::ScopeSet;
use calyx_token::secret::random_string;
use calyx_token::{AccessClaims, SigningKey};
use serde::Serialize;

use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// Whom an access token is for, which decides its `sub` and its lifetime.
pub(crate) enum Subject<'a> {
    /// The client itself (client credentials): `sub` = `{client_id}@clients`, the API's
    /// token lifetime.
    Client,
    /// A user who signed in; `sid` names the grant family. The API's user token lifetime.
    SignedIn {
        /// The user id.
        user_id: &'a str,
        /// The grant family.
        sid: &'a str,
    },
    /// A user on whose behalf the organization acts (delegation). The API's delegated
    /// token lifetime.
    Delegated {
        /// The user id.
        user_id: &'a str,
    },
}

/// The claims of an access token for `api`, issued now to `client_id` of `org_id`.
pub(crate) fn access_claims(
    state: &AppState,
    subject: Subject<'_>,
    api: &Api,
    client_id: &str,
    org_id: &str,
    scope: &ScopeSet,
) -> AccessClaims {
    let now = state.clock.now();
    let (sub, lifetime, sid) = match subject {
        Subject::Client => (format!("{client_id}@clients"), api.token_lifetime, None),
        Subject::SignedIn { user_id, sid } => (
            user_id.to_owned(),
            api.user_token_lifetime,
            Some(sid.to_owned()),
        ),
        Subject::Delegated { user_id } => (user_id.to_owned(), api.delegated_token_lifetime, None),
    };
    AccessClaims {
        iss: state.issuer.clone(),
        sub,
        aud: api.audience.clone(),
        exp: now + lifetime,
        iat: now,
        jti: random_string(16),
        client_id: client_id.to_owned(),
        scope: scope.to_string(),
        org_id: Some(org_id.to_owned()),
        sid,
        cnf: None,
    }
}

/// The claims of a delegated token: `delegation`'s user and scopes, for `api`, issued to the
/// organization's client `client_id`.
pub(crate) fn delegated_claims(
    state: &AppState,
    delegation: &Delegation,
    api: &Api,
    client_id: &str,
) -> AccessClaims {
    let user = &delegation.user;
    let subject = Subject::Delegated { user_id: &user.id };
    access_claims(
        state,
        subject,
        api,
        client_id,
        &user.org_id,
        &delegation.scope,
    )
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// A new refresh token (code and refresh grants, when the client may refresh); the one
    /// presented is spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The access token, a JWT (RFC 9068).
    pub access_token: String,
    /// RFC 8693 §2.2.1: the type of the issued token (token exchange only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// `DPoP` for a token bound to a DPoP key (RFC 9449 §5), else `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// Signs `claims` with the current key of `alg` and answers with an RFC 6749 §5.1 response
/// (`expires_in` from the claims, so it always matches the token).
pub(crate) async fn respond(
    state: &AppState,
    alg: SigningAlg,
    claims: AccessClaims,
    refresh_token: Option<String>,
    issued_token_type: Option<&'static str>,
) -> Result<Response, ApiError> {
    let access_token = sign(state, alg, &claims).await?;
    let response = TokenResponse {
        access_token,
        issued_token_type,
        token_type: match &claims.cnf {
            Some(cnf) if cnf.jkt.is_some() => "DPoP",
            _ => "Bearer",
        },
        expires_in: claims.exp - claims.iat,
        scope: claims.scope,
        refresh_token,
    };
    Ok(token_response(response.to_json()))
}

impl TokenResponse {
    /// The response as JSON. The access token, a compact JWS (base64url parts and dots, RFC
    /// 7515 §7.1), never needs escaping, so it is copied in as it is and only the other
    /// members go through the serializer: scanning some 600 bytes of token for characters to
    /// escape was a measurable share of the token endpoint's own work.
    fn to_json(&self) -> Vec<u8> {
        /// The members after `access_token`.
        #[derive(Serialize)]
        struct Rest<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            refresh_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            issued_token_type: Option<&'static str>,
            token_type: &'static str,
            expires_in: i64,
            scope: &'a str,
        }
        let token = &self.access_token;
        debug_assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')));
        let mut out = Vec::with_capacity(token.len() + 160 + self.scope.len());
        out.extend_from_slice(b"{\"access_token\":\"");
        out.extend_from_slice(token.as_bytes());
        out.push(b'"');
        let rest = out.len();
        let members = Rest {
            refresh_token: self.refresh_token.as_deref(),
            issued_token_type: self.issued_token_type,
            token_type: self.token_type,
            expires_in: self.expires_in,
            scope: &self.scope,
        };
        // `{"token_type":...}` is appended; its brace becomes the comma after the token.
        serde_json::to_writer(&mut out, &members).expect("a struct of strings serializes");
        out[rest] = b',';
        out
    }
}

/// Signs `claims` with the current key of `alg`.
pub(crate) async fn sign(
    state: &AppState,
    alg: SigningAlg,
    claims: &AccessClaims,
) -> Result<String, ApiError> {
    let keys = state.keys();
    let key = match keys.signer(alg) {
        Some(key) => key,
        // Boxed: the cold path adds nothing to the hot path's future.
        None => &Box::pin(load_signer(state, alg)).await?,
    };
    Ok(key.sign(claims).map_err(anyhow::Error::new)?)
}

/// The signing key of an algorithm the in-memory key set lacks — an API created with a new
/// algorithm on a running server, before the reload task has seen it. The set is reloaded
/// from the database, and a key is created there if none exists, so a configuration change
/// never surfaces as an error. Concurrent callers share one load.
async fn load_signer(state: &AppState, alg: SigningAlg) -> Result<Arc<SigningKey>, ApiError> {
    let _one_at_a_time = state.key_load.lock().await;
    if let Some(key) = state.keys().signer(alg) {
        return Ok(key.clone());
    }
    let now = state.clock.now();
    let mut set = keys::load_keyset(&*state.store, &state.sealer, now).await?;
    if set.signer(alg).is_none() {
        keys::ensure_keys(&*state.store, &state.sealer, [alg], now).await?;
        set = keys::load_keyset(&*state.store, &state.sealer, now).await?;
    }
    let key = set
        .signer(alg)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no signing key for {alg} could be loaded"))?;
    state.set_keys(set);
    Ok(key)
}

/// A JSON body with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1): every
/// answer that carries a token.
fn token_response(bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
