//! [`Admin`]: the management API (`/admin/v1`) as a test calls it — an admin client made
//! through the management layer, its token, and JSON requests with it.

use serde_json::Value;

use calyx_server::manage::{Manager, ADMIN_AUDIENCE};

use crate::endpoint::{Answer, Endpoint};

/// An admin client and a token for it.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Where requests go.
    pub endpoint: Endpoint,
    /// The admin client's id.
    pub client_id: String,
    /// Its secret.
    pub secret: String,
    /// A current access token for `urn:calyx:admin`.
    pub token: String,
}

impl Admin {
    /// Makes an admin client with `scopes` and gets a token for it from `endpoint`.
    pub async fn create(manager: &Manager, endpoint: &Endpoint, scopes: &str) -> Admin {
        let (client, secret) = manager
            .create_admin_client("Test automation", scopes)
            .await
            .expect("the admin client is created");
        let mut admin = Admin {
            endpoint: endpoint.clone(),
            client_id: client.id,
            secret,
            token: String::new(),
        };
        admin.token = admin.fresh_token().await;
        admin
    }

    /// A new token for the admin client (client credentials, RFC 6749 §4.4).
    pub async fn fresh_token(&self) -> String {
        let resp = self
            .endpoint
            .post_token_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.secret),
                ("audience", ADMIN_AUDIENCE),
            ])
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "admin token: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Sends `method path` with the token (and a JSON body); the status and JSON answer.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        call_with(&self.endpoint, Some(&self.token), method, path, body).await
    }

    /// `GET /admin/v1{path}`.
    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    /// `POST /admin/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    /// `PATCH /admin/v1{path}` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call("PATCH", path, Some(body)).await
    }

    /// `DELETE /admin/v1{path}`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None).await
    }

    /// Every item of a listing, paging with `limit`; also checks each page's shape.
    pub async fn all(&self, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{path}{sep}limit={limit}");
            if let Some(a) = &after {
                url.push_str(&format!("&after={}", urlencode(a)));
            }
            let (status, page) = self.get(&url).await;
            assert_eq!(status, 200, "GET {url}: {page}");
            let got = page["items"].as_array().unwrap();
            assert!(got.len() <= limit, "a page holds at most limit items");
            items.extend(got.iter().cloned());
            match page["next_after"].as_str() {
                Some(next) => {
                    assert_eq!(got.len(), limit, "only a full page has a next page");
                    after = Some(next.to_owned());
                }
                None => return items,
            }
        }
    }
}

/// Sends a management API request with an optional token.
pub async fn call_with(
    endpoint: &Endpoint,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut req = endpoint.http.request(
        method.parse().unwrap(),
        endpoint.url(&format!("/admin/v1{path}")),
    );
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
