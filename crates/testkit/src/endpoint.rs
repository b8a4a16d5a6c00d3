//! [`Endpoint`]: one server's base URL and an HTTP client, with the requests the suites make
//! as typed helpers — token requests with each client authentication method (RFC 6749
//! §2.3.1), the code exchange and refresh (§4.1.3, §6), introspection (RFC 7662), revocation
//! (RFC 7009), and verification of access tokens against the published JWKS (RFC 9068).

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::fixture::{Provisioned, PASSWORD};

/// Where requests go, and the client that sends them (no automatic redirects).
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The server's base URL (its issuer).
    pub base: String,
    /// The client: no automatic redirects, no cookies.
    pub http: reqwest::Client,
}

/// A status and a JSON body (`Null` when the body is not JSON).
pub type Answer = (u16, Value);

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

impl Endpoint {
    /// Requests to `base` with a client of its own.
    pub fn new(base: impl Into<String>) -> Endpoint {
        Endpoint {
            base: base.into(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method` (as given: `GET`, `post`, …) to `path`, with no body.
    pub async fn request(&self, method: &str, path: &str) -> reqwest::Response {
        let method = method.parse().unwrap();
        self.http
            .request(method, self.url(path))
            .send()
            .await
            .unwrap()
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request("GET", path).await
    }

    /// GETs `path` with a Bearer token (RFC 6750 §2.1).
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        let req = self.http.get(self.url(path)).bearer_auth(token);
        req.send().await.unwrap()
    }

    /// GETs `path` and parses the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    /// The status of `GET path`.
    pub async fn status_of(&self, path: &str) -> u16 {
        self.get(path).await.status().as_u16()
    }

    /// POSTs a form body to the token endpoint.
    pub async fn post_token_form(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token"))
            .form(pairs)
            .send()
            .await
            .unwrap()
    }

    /// POSTs a raw body with a content type (and optional Authorization) to `path`.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }

    /// A request to `path` as client `c`: HTTP Basic for a confidential client, `client_id`
    /// in the form for a public one.
    fn as_client(
        &self,
        path: &str,
        c: &Provisioned,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let req = self.http.post(self.url(path));
        match &c.secret {
            Some(secret) => req
                .header("authorization", basic(&c.client_id, secret))
                .form(form),
            None => {
                let mut form = form.to_vec();
                form.push(("client_id", &c.client_id));
                req.form(&form)
            }
        }
    }

    /// A token request as client `c` (see [`Endpoint::token_as`]); a transport error is
    /// returned, not a panic.
    pub async fn try_token_as(
        &self,
        c: &Provisioned,
        form: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let resp = self.as_client("/oauth/token", c, form).send().await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// A token request as client `c`, authenticated with HTTP Basic (or, for a public
    /// client, identified by `client_id` in the form).
    pub async fn token_as(&self, c: &Provisioned, form: &[(&str, &str)]) -> Answer {
        self.try_token_as(c, form).await.unwrap()
    }

    /// A client-credentials request for `c`'s audience with `client_secret_post`.
    pub async fn token_response(&self, c: &Provisioned) -> Answer {
        answer(
            self.post_token_form(&c.client_credentials(c.secret()))
                .await,
        )
        .await
    }

    /// A client-credentials token with `client_secret_post`, asserting success.
    pub async fn token(&self, c: &Provisioned) -> Value {
        let (status, body) = self.token_response(c).await;
        assert_eq!(status, 200, "token request failed: {body}");
        body
    }

    /// The access token of [`Endpoint::token`].
    pub async fn access_token(&self, c: &Provisioned) -> String {
        self.token(c).await["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// A client-credentials access token for `audience` and `scope`, with HTTP Basic.
    pub async fn scoped_token(&self, c: &Provisioned, audience: &str, scope: &str) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if !audience.is_empty() {
            form.push(("audience", audience));
        }
        let (status, v) = self.token_as(c, &form).await;
        assert_eq!(status, 200, "token request failed: {v}");
        v["access_token"].as_str().expect("a token").to_owned()
    }

    /// Exchanges a code (with the client's redirect URI, when it has one).
    pub async fn exchange(&self, c: &Provisioned, code: &str) -> Answer {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
        if let Some(redirect) = c.redirect_uri {
            form.push(("redirect_uri", redirect));
        }
        self.token_as(c, &form).await
    }

    /// Rotates a refresh token, optionally asking for `scope`.
    pub async fn refresh(&self, c: &Provisioned, rt: &str, scope: Option<&str>) -> Answer {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.token_as(c, &form).await
    }

    /// Introspects `token` as client `c`, asserting 200.
    pub async fn introspect(&self, c: &Provisioned, token: &str) -> Value {
        let resp = self
            .as_client("/oauth/introspect", c, &[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Revokes `token` as client `c`; the status.
    pub async fn revoke(&self, c: &Provisioned, token: &str) -> u16 {
        self.as_client("/oauth/revoke", c, &[("token", token)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The published key set.
    pub async fn jwks(&self) -> JwkSet {
        serde_json::from_value(self.get_json("/.well-known/jwks.json").await).unwrap()
    }

    /// The key ids of the published key set.
    pub async fn jwks_kids(&self) -> Vec<String> {
        self.jwks()
            .await
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    }

    /// Verifies `token` with jsonwebtoken (an implementation independent of Calyx's signer)
    /// against the published JWKS, checking signature, `iss`, `aud`, `exp` and `typ`.
    pub async fn verify(&self, token: &str, audience: &str) -> Value {
        self.verify_from(&self.base, token, audience).await
    }

    /// Like [`Endpoint::verify`], for a token `issuer` issued (another node of one deployment).
    pub async fn verify_from(&self, issuer: &str, token: &str, audience: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("a JWS header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 typ");
        let kid = header.kid.clone().expect("a kid");
        let jwks = self.jwks().await;
        let jwk = jwks
            .find(&kid)
            .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut v = Validation::new(header.alg);
        v.set_audience(&[audience]);
        v.set_issuer(&[issuer]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .expect("the token verifies")
            .claims
    }

    /// An authorization request for client `c` with `state=xyz` and `extra` parameters.
    pub fn authorize_url(&self, c: &Provisioned, extra: &[(&str, &str)]) -> String {
        crate::browser::authorize_url(&self.base, &c.client_id, extra)
    }

    /// Signs `c`'s user in with a fresh browser and approves: the code.
    pub async fn sign_in(&self, c: &Provisioned) -> String {
        crate::browser::sign_in(&self.authorize_url(c, &[]), &c.username, PASSWORD).await
    }

    /// The value of the metric sample whose line starts with `sample` (0 when absent).
    pub async fn metric(&self, sample: &str) -> u64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with(sample))
            .and_then(|l| l.split_whitespace().last())
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    }
}

/// An HTTP Basic `Authorization` value, each part form-urlencoded first (RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Decodes a JWT's header and claims without verifying (for assertions on their contents).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let dec = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    (dec(it.next().unwrap()), dec(it.next().unwrap()))
}

/// The `kid` of a JWT's header.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}
