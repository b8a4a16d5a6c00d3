//! The authorization code flow from the application's side (RFC 6749 §4.1, RFC 7636).

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::dpop::DpopKey;
use crate::source::{post_token, AccessToken, Credentials, Endpoints, TokenEndpoint};
use crate::Error;

/// One authorization attempt: where to send the user, and what to check when they return.
/// Keep it (e.g. in the user's session) until the callback arrives.
#[derive(Clone)]
pub struct AuthorizationRequest {
    /// Send the user's browser here.
    pub url: String,
    /// The `state` sent; the callback must echo it.
    pub state: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub pkce_verifier: String,
    /// The redirect URI sent (repeated at the token endpoint).
    pub redirect_uri: String,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl AuthorizationRequest {
    /// Builds the authorization URL with a fresh 256-bit `state` and PKCE S256.
    pub fn new(
        endpoints: &Endpoints,
        client_id: &str,
        redirect_uri: &str,
        scope: Option<&str>,
    ) -> Result<AuthorizationRequest, Error> {
        let base = endpoints.authorization.as_deref().ok_or_else(|| {
            Error::InvalidResponse("the server has no authorization endpoint".into())
        })?;
        let state = crate::random(32);
        let verifier = crate::random(32);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(base).map_err(|e| Error::InvalidResponse(e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
        }
        Ok(AuthorizationRequest {
            url: url.into(),
            state,
            pkce_verifier: verifier,
            redirect_uri: redirect_uri.to_owned(),
        })
    }

    /// Handles the callback URL the browser came back to: checks `state` (constant time), turns
    /// an `error` into [`Error::OAuth`], and exchanges the code, authenticating as `creds` say
    /// (a secret, or `private_key_jwt`).
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        creds: &Credentials,
        callback_url: &str,
    ) -> Result<AccessToken, Error> {
        self.exchange_inner(http, endpoints, creds, None, callback_url)
            .await
    }

    /// [`AuthorizationRequest::exchange`] with a DPoP proof made with `key` (RFC 9449 §5): the
    /// tokens are bound to it (and, for a public client, so is the refresh token; refresh with
    /// the same key through [`crate::RefreshSession::with_dpop`]).
    pub async fn exchange_with_dpop(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        creds: &Credentials,
        key: &DpopKey,
        callback_url: &str,
    ) -> Result<AccessToken, Error> {
        self.exchange_inner(http, endpoints, creds, Some(key), callback_url)
            .await
    }

    async fn exchange_inner(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        creds: &Credentials,
        dpop: Option<&DpopKey>,
        callback_url: &str,
    ) -> Result<AccessToken, Error> {
        let url =
            url::Url::parse(callback_url).map_err(|e| Error::InvalidResponse(e.to_string()))?;
        let get = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let state = get("state").unwrap_or_default();
        if !bool::from(state.as_bytes().ct_eq(self.state.as_bytes())) {
            return Err(Error::StateMismatch);
        }
        if let Some(error) = get("error") {
            return Err(Error::OAuth {
                status: 0,
                error,
                description: get("error_description"),
            });
        }
        let code =
            get("code").ok_or_else(|| Error::InvalidResponse("the callback has no code".into()))?;
        let form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code),
            ("redirect_uri".to_owned(), self.redirect_uri.clone()),
            ("code_verifier".to_owned(), self.pkce_verifier.clone()),
        ];
        let to = TokenEndpoint {
            http,
            url: &endpoints.token,
            creds,
            dpop,
        };
        post_token(to, form).await
    }
}
