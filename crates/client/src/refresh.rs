//! Rotating refresh tokens without ever losing one.
//!
//! Each refresh spends the presented token and returns a new one; a client that crashes after
//! the server rotated but before it saved the new token is locked out (and presenting the old
//! one again revokes the whole sign-in). So the new refresh token goes to the
//! [`RefreshStore`] first, and the access token is handed out only once that succeeded.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::dpop::DpopKey;
use crate::source::{post_token, AccessToken, Credentials, Endpoints, TokenEndpoint};
use crate::Error;

/// Where the current refresh token lives (a database row, a keychain, a file).
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// The current refresh token.
    async fn load(&self) -> Result<Option<String>, String>;
    /// Replaces it. Must be durable when it returns.
    async fn save(&self, refresh_token: &str) -> Result<(), String>;
}

/// Access tokens for one user's sign-in, refreshed (and rotated) as needed.
pub struct RefreshSession<S: RefreshStore> {
    http: reqwest::Client,
    endpoints: Endpoints,
    creds: Credentials,
    dpop: Option<DpopKey>,
    store: Arc<S>,
    current: tokio::sync::Mutex<Option<AccessToken>>,
}

impl<S: RefreshStore> RefreshSession<S> {
    /// A session whose refresh token is in `store`.
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        creds: Credentials,
        store: Arc<S>,
    ) -> Self {
        RefreshSession {
            http,
            endpoints,
            creds,
            dpop: None,
            store,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Sends a DPoP proof made with `key` with every refresh (RFC 9449 §5). For a public client
    /// the refresh token is bound to the key it was issued with (§5 and §10 of RFC 9449): use the
    /// key the code exchange used ([`crate::AuthorizationRequest::exchange_with_dpop`]), and keep
    /// it ([`DpopKey::to_pkcs8`]) next to the refresh token.
    pub fn with_dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// A valid access token; refreshes (one request for concurrent callers) when needed.
    pub async fn access_token(&self) -> Result<String, Error> {
        Ok(self.token().await?.token)
    }

    /// Like [`RefreshSession::access_token`], with the token's type, scope and expiry: a
    /// DPoP-bound token is presented with [`DpopKey::authorize`].
    pub async fn token(&self) -> Result<AccessToken, Error> {
        let mut current = self.current.lock().await;
        if let Some(t) = current
            .as_ref()
            .filter(|t| Instant::now() < t.usable_until())
        {
            return Ok(t.clone());
        }
        let refresh_token = self
            .store
            .load()
            .await
            .map_err(Error::Store)?
            .ok_or_else(|| Error::Store("no refresh token stored".into()))?;
        let form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token),
        ];
        let to = TokenEndpoint {
            http: &self.http,
            url: &self.endpoints.token,
            creds: &self.creds,
            dpop: self.dpop.as_ref(),
        };
        let fresh = post_token(to, form).await?;
        if let Some(next) = &fresh.refresh_token {
            // Durable first: if this fails, the caller gets an error, not a token whose
            // successor is lost.
            self.store.save(next).await.map_err(Error::Store)?;
        }
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets the cached access token (the next call refreshes).
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }
}
