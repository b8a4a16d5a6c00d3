//! Client credentials, cached and single-flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::assertion::{ClientKey, JWT_BEARER};
use crate::dpop::{self, DpopKey};
use crate::Error;

/// Where the authorization server's endpoints are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The token endpoint.
    pub token: String,
    /// The authorization endpoint, if the server has one.
    pub authorization: Option<String>,
}

impl Endpoints {
    /// Reads RFC 8414 metadata from `{issuer}/.well-known/oauth-authorization-server`, or
    /// OpenID Connect discovery (`/.well-known/openid-configuration`) when that is absent.
    pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, Error> {
        let base = issuer.trim_end_matches('/');
        let mut resp = http
            .get(format!("{base}/.well-known/oauth-authorization-server"))
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            resp = http
                .get(format!("{base}/.well-known/openid-configuration"))
                .send()
                .await?;
        }
        let m: serde_json::Value = resp.error_for_status()?.json().await?;
        let token = m["token_endpoint"]
            .as_str()
            .ok_or_else(|| Error::InvalidResponse("no token_endpoint".into()))?;
        Ok(Endpoints {
            token: token.to_owned(),
            authorization: m["authorization_endpoint"].as_str().map(str::to_owned),
        })
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1, id and secret form-urlencoded first).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
    /// `private_key_jwt` (OpenID Connect Core §9, RFC 7523 §2.2): `client_assertion_type` and a
    /// fresh `client_assertion` signed with this key, and `client_id`, in the body; the
    /// client secret is not sent.
    PrivateKeyJwt(ClientKey),
}

/// A client's id and how it proves it.
#[derive(Clone)]
pub struct Credentials {
    /// The client id.
    pub client_id: String,
    /// The client secret (absent for public clients and `private_key_jwt`).
    pub client_secret: Option<String>,
    /// How to send them.
    pub method: AuthMethod,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish()
    }
}

impl Credentials {
    /// `private_key_jwt` credentials: `client_id` authenticated by assertions signed with `key`.
    pub fn private_key_jwt(client_id: impl Into<String>, key: ClientKey) -> Credentials {
        Credentials {
            client_id: client_id.into(),
            client_secret: None,
            method: AuthMethod::PrivateKeyJwt(key),
        }
    }

    /// Adds the client authentication to a request to `endpoint` (the token endpoint) with
    /// `form`. Called for every attempt, so that each assertion is new.
    pub(crate) fn apply(
        &self,
        req: reqwest::RequestBuilder,
        endpoint: &str,
        form: &mut Vec<(String, String)>,
    ) -> Result<reqwest::RequestBuilder, Error> {
        Ok(match (&self.client_secret, &self.method) {
            (_, AuthMethod::PrivateKeyJwt(key)) => {
                // RFC 7521 §4.2: client_id is optional next to an assertion, and must then name
                // the same client; sent because some servers look the client up by it first.
                form.push(("client_id".into(), self.client_id.clone()));
                form.push(("client_assertion_type".into(), JWT_BEARER.into()));
                form.push((
                    "client_assertion".into(),
                    key.assertion(&self.client_id, endpoint)?,
                ));
                req
            }
            (Some(secret), AuthMethod::Basic) => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req.basic_auth(enc(&self.client_id), Some(enc(secret)))
            }
            (Some(secret), AuthMethod::Post) => {
                form.push(("client_id".into(), self.client_id.clone()));
                form.push(("client_secret".into(), secret.clone()));
                req
            }
            (None, _) => {
                form.push(("client_id".into(), self.client_id.clone()));
                req
            }
        })
    }
}

/// How an access token is presented (RFC 6749 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenType {
    /// `Authorization: Bearer` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP` with a proof from the key it is bound to (RFC 9449 §7).
    DPoP,
}

impl TokenType {
    /// The `token_type` of a token response, compared without regard to case (RFC 6749 §5.1);
    /// absent means Bearer, as the servers that omit it mean. Other types are refused: a
    /// client must not use a token whose type it does not understand (RFC 6749 §7.1).
    fn parse(token_type: Option<&str>) -> Result<TokenType, Error> {
        match token_type {
            None => Ok(TokenType::Bearer),
            Some(t) if t.eq_ignore_ascii_case("bearer") => Ok(TokenType::Bearer),
            Some(t) if t.eq_ignore_ascii_case("dpop") => Ok(TokenType::DPoP),
            Some(t) => Err(Error::InvalidResponse(format!(
                "unsupported token_type {t:?}"
            ))),
        }
    }
}

/// An access token and when it expires.
#[derive(Clone)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// How to present it: Bearer, or DPoP when bound to the source's [`DpopKey`].
    pub token_type: TokenType,
    /// Granted scopes, if the server said.
    pub scope: Option<String>,
    /// When it stops being valid (by the local clock, from `expires_in`).
    pub expires_at: Instant,
    /// The refresh token, if one came with it.
    pub refresh_token: Option<String>,
    obtained_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// Renew from here on (80% of the lifetime), in the background.
    fn refresh_at(&self) -> Instant {
        (self.obtained_at + (self.expires_at - self.obtained_at).mul_f64(0.8))
            .min(self.usable_until())
    }

    /// Never hand out past here. The margin (a tenth of the lifetime, 1 to 30 s) covers the
    /// request's own travel time and `exp` being whole seconds: a server that truncates `iat`
    /// can put `exp` up to a second before `obtained + expires_in`.
    pub(crate) fn usable_until(&self) -> Instant {
        let lifetime = self.expires_at - self.obtained_at;
        self.expires_at - (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
    scope: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

/// The longest lifetime believed: a larger `expires_in` (up to `u64::MAX`) would overflow
/// `Instant`, and a token is better fetched again after a year than never.
const LONGEST_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A lifetime in seconds from a server, bounded by [`LONGEST_LIFETIME`].
pub(crate) fn lifetime(expires_in: Option<u64>) -> Duration {
    Duration::from_secs(expires_in.unwrap_or(3600)).min(LONGEST_LIFETIME)
}

/// What a token request is sent with: the client, its credentials, and its DPoP key if any.
#[derive(Clone, Copy)]
pub(crate) struct TokenEndpoint<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) url: &'a str,
    pub(crate) creds: &'a Credentials,
    pub(crate) dpop: Option<&'a DpopKey>,
}

/// POSTs a form to the token endpoint, retrying after `Retry-After` on 429 and 503 (at most
/// three times, each wait capped at 60 s), and turns RFC 6749 errors into [`Error::OAuth`].
///
/// With a DPoP key, every attempt carries a fresh proof (RFC 9449 §5) with the nonce last heard
/// from the endpoint's origin; each answer's `DPoP-Nonce` is remembered (§8.2), and a
/// `use_dpop_nonce` that came with one is retried once (§8). Every attempt is authenticated
/// anew (a client assertion's `jti` is single-use).
pub(crate) async fn post_token(
    to: TokenEndpoint<'_>,
    form: Vec<(String, String)>,
) -> Result<AccessToken, Error> {
    let endpoint_url =
        url::Url::parse(to.url).map_err(|e| Error::InvalidUrl(format!("{}: {e}", to.url)))?;
    let mut attempt = 0;
    let mut nonce_retried = false;
    loop {
        let mut form = form.clone();
        let mut req = to.creds.apply(to.http.post(to.url), to.url, &mut form)?;
        if let Some(key) = to.dpop {
            req = req.header("DPoP", key.proof("POST", to.url, None)?);
        }
        let started = Instant::now();
        let resp = req.form(&form).send().await?;
        let status = resp.status().as_u16();
        let got_nonce = to
            .dpop
            .is_some_and(|key| key.remember(&endpoint_url, resp.headers()));
        if status == 200 {
            let b: TokenBody = resp
                .json()
                .await
                .map_err(|e| Error::InvalidResponse(e.to_string()))?;
            let token_type = TokenType::parse(b.token_type.as_deref())?;
            if token_type == TokenType::DPoP && to.dpop.is_none() {
                return Err(Error::InvalidResponse(
                    "a DPoP-bound token, but no DPoP proof was sent".into(),
                ));
            }
            return Ok(AccessToken {
                token: b.access_token,
                token_type,
                scope: b.scope,
                expires_at: started + lifetime(b.expires_in),
                refresh_token: b.refresh_token,
                obtained_at: started,
            });
        }
        if status == 429 || status == 503 {
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(1 << attempt))
                .min(Duration::from_secs(60));
            attempt += 1;
            if attempt > 3 {
                return Err(Error::RetryLater(wait));
            }
            tracing::debug!(?wait, status, "token endpoint asked to retry later");
            tokio::time::sleep(wait).await;
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str::<ErrorBody>(&text);
        if let Ok(e) = &body {
            if got_nonce && !nonce_retried && dpop::is_nonce_error(&e.error) {
                tracing::debug!("token endpoint asked for a DPoP nonce; retrying once");
                nonce_retried = true;
                continue;
            }
        }
        return Err(match body {
            Ok(e) => Error::OAuth {
                status,
                error: e.error,
                description: e.error_description,
            },
            Err(_) => Error::InvalidResponse(format!("HTTP {status}: {text}")),
        });
    }
}

/// (audience, scope): what a cached token is for.
type SlotKey = (String, Option<String>);

/// One cached token and the lock that makes its renewal single-flight.
#[derive(Default)]
struct Slot {
    token: tokio::sync::Mutex<Option<AccessToken>>,
    renewing: AtomicBool,
}

/// How the target API is named in token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudienceParam {
    /// `audience=...` (Auth0 style; Calyx accepts it).
    #[default]
    Audience,
    /// `resource=...` (RFC 8707; Calyx accepts it too).
    Resource,
}

/// Client-credentials tokens, cached per (audience, scope). Cheap to clone; share one.
#[derive(Clone)]
pub struct TokenSource {
    http: reqwest::Client,
    audience_param: AudienceParam,
    endpoints: Arc<Endpoints>,
    creds: Arc<Credentials>,
    dpop: Option<DpopKey>,
    slots: Arc<Mutex<HashMap<SlotKey, Arc<Slot>>>>,
}

impl TokenSource {
    /// A token source for `creds` at `endpoints`.
    pub fn new(http: reqwest::Client, endpoints: Endpoints, creds: Credentials) -> TokenSource {
        TokenSource {
            http,
            audience_param: AudienceParam::default(),
            endpoints: Arc::new(endpoints),
            creds: Arc::new(creds),
            dpop: None,
            slots: Arc::default(),
        }
    }

    /// Asks for DPoP-bound tokens (RFC 9449): every token request carries a proof made with
    /// `key`, and [`TokenSource::authorize`] presents the tokens with proofs.
    pub fn with_dpop(mut self, key: DpopKey) -> TokenSource {
        self.dpop = Some(key);
        self
    }

    /// Names the API with `resource` (RFC 8707) instead of `audience`.
    pub fn with_audience_param(mut self, param: AudienceParam) -> TokenSource {
        self.audience_param = param;
        self
    }

    /// A valid token for `audience` (and `scope`): the cached one while it is fresh, otherwise
    /// a new one — fetched once however many callers ask at the same moment.
    pub async fn token(&self, audience: &str, scope: Option<&str>) -> Result<AccessToken, Error> {
        let key = (audience.to_owned(), scope.map(str::to_owned));
        let slot = self
            .slots
            .lock()
            .expect("the slot map")
            .entry(key.clone())
            .or_default()
            .clone();
        let now = Instant::now();
        {
            let cached = slot.token.lock().await;
            if let Some(t) = cached.as_ref().filter(|t| now < t.usable_until()) {
                if now >= t.refresh_at() && !slot.renewing.swap(true, Ordering::SeqCst) {
                    self.renew_in_background(slot.clone(), key);
                }
                return Ok(t.clone());
            }
        }
        // Expired or never fetched: the first caller fetches while holding the lock; the rest
        // wait for it and then find the fresh token.
        let mut guard = slot.token.lock().await;
        if let Some(t) = guard.as_ref().filter(|t| Instant::now() < t.usable_until()) {
            return Ok(t.clone());
        }
        let fresh = self.fetch(&key.0, key.1.as_deref()).await?;
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    /// Attaches a token for `audience` to a request: `Authorization: Bearer`, or for a
    /// DPoP-bound token `Authorization: DPoP` and a proof for the request's method and URL.
    pub async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        audience: &str,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let t = self.token(audience, None).await?;
        match (t.token_type, &self.dpop) {
            (TokenType::DPoP, Some(key)) => key.authorize(req, &t.token),
            _ => Ok(req.bearer_auth(t.token)),
        }
    }

    /// Sends a request with a token for `audience`, as [`TokenSource::authorize`] attaches it;
    /// for a DPoP-bound token through [`DpopKey::send`], which follows a resource server's
    /// request for a nonce.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        audience: &str,
    ) -> Result<reqwest::Response, Error> {
        let t = self.token(audience, None).await?;
        match (t.token_type, &self.dpop) {
            (TokenType::DPoP, Some(key)) => key.send(req, &t.token).await,
            _ => Ok(req.bearer_auth(t.token).send().await?),
        }
    }

    fn renew_in_background(&self, slot: Arc<Slot>, key: SlotKey) {
        let this = self.clone();
        tokio::spawn(async move {
            match this.fetch(&key.0, key.1.as_deref()).await {
                Ok(t) => *slot.token.lock().await = Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "renewing a token ahead of expiry failed; will retry")
                }
            }
            slot.renewing.store(false, Ordering::SeqCst);
        });
    }

    async fn fetch(&self, audience: &str, scope: Option<&str>) -> Result<AccessToken, Error> {
        let name = match self.audience_param {
            AudienceParam::Audience => "audience",
            AudienceParam::Resource => "resource",
        };
        let mut form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            (name.to_owned(), audience.to_owned()),
        ];
        if let Some(s) = scope {
            form.push(("scope".into(), s.into()));
        }
        let to = TokenEndpoint {
            http: &self.http,
            url: &self.endpoints.token,
            creds: &self.creds,
            dpop: self.dpop.as_ref(),
        };
        post_token(to, form).await
    }
}

/// A user-scoped token for an organization's user: `POST {base}/v2/users/{user_id}/authenticate`
/// with the organization's token (`POST /v2/users/{user_id}/authenticate`).
pub async fn delegate(
    http: &reqwest::Client,
    base_url: &str,
    org_token: &str,
    user_id: &str,
) -> Result<AccessToken, Error> {
    let url = format!(
        "{}/v2/users/{}/authenticate",
        base_url.trim_end_matches('/'),
        user_id
    );
    let started = Instant::now();
    let resp = http.post(url).bearer_auth(org_token).send().await?;
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Error::InvalidResponse(e.to_string()))?;
    if status != 200 {
        return Err(Error::OAuth {
            status,
            error: v["error"].as_str().unwrap_or("unknown").to_owned(),
            description: v["error_description"].as_str().map(str::to_owned),
        });
    }
    let token = v["access_token"]
        .as_str()
        .ok_or_else(|| Error::InvalidResponse("no access_token".into()))?;
    let valid_for = lifetime(v["expires_in"].as_u64().or(v["expiresIn"].as_u64()));
    Ok(AccessToken {
        token: token.to_owned(),
        token_type: TokenType::Bearer,
        scope: None,
        expires_at: started + valid_for,
        refresh_token: None,
        obtained_at: started,
    })
}
