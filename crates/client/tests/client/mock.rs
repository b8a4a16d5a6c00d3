//! A small authorization and resource server for the DPoP and `private_key_jwt` tests, in the
//! test process (axum on port 0): it records every request and behaves as RFC 9449 lets a
//! server behave — insisting on a nonce of its own, rotating it on success — so that the tests
//! can drive the client through each branch without the real server's DPoP support.
//!
//! It does not check signatures itself: the tests verify what it recorded with an independent
//! JOSE implementation ([`verified`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use calyx_client::Endpoints;
use calyx_testkit::jwt_parts;
use jwt_compact::alg::Es256;
use jwt_compact::{AlgorithmExt, UntrustedToken};
use serde_json::{json, Value};

/// One request the mock got.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The path, e.g. `/token`.
    pub path: String,
    /// The `DPoP` header.
    pub dpop: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The form body's parameters.
    pub form: HashMap<String, String>,
}

impl Seen {
    /// The claims of this request's DPoP proof (not verified).
    pub fn proof_claims(&self) -> Value {
        jwt_parts(self.dpop.as_deref().expect("a DPoP proof")).1
    }
}

#[derive(Default)]
struct Behaviour {
    /// The nonce the token endpoint wants in proofs; `None`: any proof will do.
    as_nonce: Mutex<Option<String>>,
    /// Give a new nonce with each token issued (and want that one next).
    rotate_as_nonce: AtomicBool,
    /// Answer every token request `use_dpop_nonce` with a new nonce.
    never_satisfied: AtomicBool,
    /// The nonce the resource wants in proofs.
    rs_nonce: Mutex<Option<String>>,
    /// A fixed answer for the token endpoint: status and body.
    canned: Mutex<Option<(u16, Value)>>,
    seen: Mutex<Vec<Seen>>,
    counter: AtomicUsize,
}

/// A running mock; it stops when dropped.
pub struct Mock {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    /// A mock that issues tokens to any request.
    pub async fn start() -> Mock {
        let state = Arc::new(Behaviour::default());
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Mock { base, state, task }
    }

    /// The token and authorization endpoints.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            token: self.token_endpoint(),
            authorization: Some(format!("{}/authorize", self.base)),
        }
    }

    /// `{base}/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.base)
    }

    /// From now on the token endpoint wants `nonce` in every proof.
    pub fn require_as_nonce(&self, nonce: &str) {
        *self.state.as_nonce.lock().unwrap() = Some(nonce.to_owned());
    }

    /// Each token issued comes with a new `DPoP-Nonce`, which the next proof must carry.
    pub fn rotate_as_nonce(&self) {
        self.state.rotate_as_nonce.store(true, Ordering::SeqCst);
    }

    /// The token endpoint answers every request `use_dpop_nonce`, with a new nonce each time.
    pub fn never_satisfied(&self) {
        self.state.never_satisfied.store(true, Ordering::SeqCst);
    }

    /// From now on `/resource` wants `nonce` in every proof.
    pub fn require_rs_nonce(&self, nonce: &str) {
        *self.state.rs_nonce.lock().unwrap() = Some(nonce.to_owned());
    }

    /// The token endpoint answers `status` and `body` to every request.
    pub fn answer(&self, status: u16, body: Value) {
        *self.state.canned.lock().unwrap() = Some((status, body));
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The requests to `path` so far.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

async fn handle(
    State(state): State<Arc<Behaviour>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let seen = Seen {
        path: uri.path().to_owned(),
        dpop: header("dpop"),
        authorization: header("authorization"),
        form: url::form_urlencoded::parse(&body).into_owned().collect(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    let n = state.counter.fetch_add(1, Ordering::SeqCst);
    let proof_nonce = seen
        .dpop
        .as_ref()
        .and_then(|_| seen.proof_claims()["nonce"].as_str().map(str::to_owned));
    match (method, uri.path()) {
        (Method::POST, "/token") => token(&state, &seen, proof_nonce, n),
        (_, "/resource") => resource(&state, &seen, proof_nonce, n),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn token(state: &Behaviour, seen: &Seen, proof_nonce: Option<String>, n: usize) -> Response {
    if let Some((status, body)) = state.canned.lock().unwrap().clone() {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    let use_nonce = |nonce: String| {
        let mut h = HeaderMap::new();
        h.insert("dpop-nonce", HeaderValue::try_from(nonce).unwrap());
        let body = json!({"error": "use_dpop_nonce", "error_description": "nonce required"});
        (StatusCode::BAD_REQUEST, h, axum::Json(body)).into_response()
    };
    if seen.dpop.is_some() {
        if state.never_satisfied.load(Ordering::SeqCst) {
            return use_nonce(format!("as-never-{n}"));
        }
        let wanted = state.as_nonce.lock().unwrap().clone();
        if let Some(wanted) = wanted {
            if proof_nonce.as_deref() != Some(wanted.as_str()) {
                return use_nonce(wanted);
            }
        }
    }
    let mut h = HeaderMap::new();
    if seen.dpop.is_some() && state.rotate_as_nonce.load(Ordering::SeqCst) {
        let next = format!("as-rotated-{n}");
        h.insert("dpop-nonce", HeaderValue::try_from(next.clone()).unwrap());
        *state.as_nonce.lock().unwrap() = Some(next);
    }
    let body = json!({
        "access_token": format!("at-{n}"),
        "token_type": if seen.dpop.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": 3600,
        "refresh_token": format!("rt-{n}"),
        "scope": seen.form.get("scope"),
    });
    (StatusCode::OK, h, axum::Json(body)).into_response()
}

fn resource(state: &Behaviour, seen: &Seen, proof_nonce: Option<String>, n: usize) -> Response {
    let dpop_token = seen
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("DPoP "));
    if !dpop_token || seen.dpop.is_none() {
        return (StatusCode::UNAUTHORIZED, "a DPoP token and proof, please").into_response();
    }
    let wanted = state.rs_nonce.lock().unwrap().clone();
    if let Some(wanted) = wanted {
        if proof_nonce.as_deref() != Some(wanted.as_str()) {
            let mut h = HeaderMap::new();
            h.insert(
                "www-authenticate",
                HeaderValue::from_static(
                    r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                ),
            );
            h.insert("dpop-nonce", HeaderValue::try_from(wanted).unwrap());
            return (StatusCode::UNAUTHORIZED, h, "").into_response();
        }
    }
    (StatusCode::OK, format!("resource {n}")).into_response()
}

/// The header and claims of an ES256 JWT, after checking its signature with `jwk` (a public
/// P-256 JWK) by RustCrypto's p256 through jwt-compact, not by the client's own aws-lc-rs.
pub fn verified(jwt: &str, jwk: &Value) -> (Value, Value) {
    let key = verifying_key(jwk);
    let untrusted = UntrustedToken::new(jwt).expect("a compact JWS");
    assert_eq!(untrusted.algorithm(), "ES256");
    Es256
        .validator::<Value>(&key)
        .validate(&untrusted)
        .expect("the ES256 signature verifies");
    jwt_parts(jwt)
}

/// A p256 verifying key from a JWK's `kty`, `crv`, `x`, `y` (p256 refuses other members).
pub fn verifying_key(jwk: &Value) -> p256::ecdsa::VerifyingKey {
    let public = json!({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]});
    let key = p256::PublicKey::from_jwk_str(&public.to_string()).expect("a P-256 JWK");
    p256::ecdsa::VerifyingKey::from(key)
}
