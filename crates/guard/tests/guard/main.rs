//! calyx-guard against a real Calyx server and a real axum API behind the layer.

/// DPoP-bound tokens (RFC 9449) with proofs made by an independent JOSE library.
mod dpop;
/// The `consumers_api` example in front of a real server (one test binary for the crate: each
/// binary links the whole server).
mod example;
/// Certificate-bound tokens (RFC 8705 §3) with certificates made by rcgen.
mod mtls;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_core::clock::Clock;
use calyx_core::model::SigningAlg;
use calyx_guard::{Authenticated, Guard, GuardConfig, GuardLayer, Introspection};
use calyx_testkit::{eventually, kid_of, Provisioned, TestServer, SOON};
use calyx_token::SigningKey;
use serde_json::{json, Value};

struct World {
    app: TestServer,
    machine: Provisioned,
    issuer: String,
    audience: String,
    client_id: String,
    secret: String,
}

/// A server (on SQLite) with the consumers API and another, and a client granted both.
async fn calyx() -> World {
    let app = TestServer::spawn_with(|cfg| {
        cfg.postgres_from_env = false;
        cfg.reload_interval = Duration::from_millis(50);
    })
    .await;
    let machine = app
        .fixture()
        .org("Guard Org")
        .api("https://consumers.example.com/")
        .also_api("https://other.example.com/")
        .api_name("API")
        .client_name("svc")
        .build()
        .await;
    World {
        issuer: app.issuer().to_owned(),
        audience: machine.audience.clone(),
        client_id: machine.client_id.clone(),
        secret: machine.secret().to_owned(),
        app,
        machine,
    }
}

impl World {
    async fn token(&self, audience: &str, scope: &str) -> String {
        self.app.scoped_token(&self.machine, audience, scope).await
    }

    /// The issuer's current ES256 signing key: its kid and PKCS#8 DER.
    async fn current_key(&self) -> (String, Vec<u8>) {
        let m = &self.app.manager;
        let keys = m.store.live_keys(self.app.clock.now()).await.unwrap();
        let k = keys
            .iter()
            .rev()
            .find(|k| k.alg == SigningAlg::ES256)
            .unwrap();
        (k.kid.clone(), m.sealer.open(&k.private_key).unwrap())
    }

    /// A token signed with the issuer's own current key but with chosen claims.
    async fn forge(&self, claims: Value) -> String {
        let (_, der) = self.current_key().await;
        SigningKey::from_pkcs8(SigningAlg::ES256, &der)
            .unwrap()
            .sign(&claims)
            .unwrap()
    }

    /// Like `forge`, with a chosen `typ` (signed by jsonwebtoken, so the signature is valid).
    async fn forge_with_typ(&self, claims: Value, typ: &str) -> String {
        let (kid, der) = self.current_key().await;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some(typ.into());
        header.kid = Some(kid);
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&der),
        )
        .unwrap()
    }

    fn config(&self) -> GuardConfig {
        let mut c = GuardConfig::new(&self.issuer, &self.audience);
        c.min_refetch_interval = Duration::from_millis(200);
        c
    }

    /// A guard that fetches the JWKS again no sooner than `interval` after a fetch.
    fn guard_refetching_after(&self, interval: Duration) -> Guard {
        let mut cfg = self.config();
        cfg.min_refetch_interval = interval;
        Guard::new(cfg)
    }

    /// Waits until the server signs with `kid`; a token signed with it.
    async fn first_token_signed_by(&self, kid: &str) -> String {
        eventually(SOON, "tokens signed by the new key", || async {
            let t = self.token(&self.audience, "read:consumers").await;
            (kid_of(&t) == kid).then_some(t)
        })
        .await
    }
}

/// The consumers API of the example, behind the guard: its base URL.
async fn api(guard: Guard) -> String {
    let (listener, origin) = listen().await;
    serve_api(listener, guard);
    origin
}

/// A listener on a free port, and the base URL it answers at.
async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (listener, origin)
}

/// Serves the consumers API behind `guard` on `listener`: `/v1/consumers` (read),
/// `/v1/consumers/new` (write), and `/nested/consumers` (read) in a router nested under
/// `/nested`. The handler answers with the caller and the key its token is bound to.
fn serve_api(listener: tokio::net::TcpListener, guard: Guard) {
    async fn list(Authenticated(t): Authenticated) -> Json<Value> {
        Json(json!({"consumers": [], "caller": t.subject(), "jkt": t.jkt()}))
    }
    let layer = |scope: &str| GuardLayer::new(guard.clone()).require_scopes(&[scope]);
    let nested = Router::new().route("/consumers", get(list).layer(layer("read:consumers")));
    let app = Router::new()
        .route("/v1/consumers", get(list).layer(layer("read:consumers")))
        .route(
            "/v1/consumers/new",
            get(list).layer(layer("write:consumers")),
        )
        .nest("/nested", nested);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

async fn call(api: &str, path: &str, authorization: Option<String>) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().get(format!("{api}{path}"));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    answer(req).await
}

/// Sends `req` and reads the answer: its status, its `WWW-Authenticate` challenge (empty when
/// none) and its JSON body (null when none).
async fn answer(req: reqwest::RequestBuilder) -> (u16, String, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, resp.json().await.unwrap_or(Value::Null))
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn a_valid_token_with_the_scope_passes_and_the_handler_sees_it() {
    let w = calyx().await;
    let api = api(Guard::new(w.config())).await;
    let t = w.token(&w.audience, "read:consumers").await;
    let (status, _, body) = call(&api, "/v1/consumers", Some(format!("Bearer {t}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caller"], format!("{}@clients", w.client_id));
    // Missing scope: 403 insufficient_scope naming it.
    let (status, challenge, body) =
        call(&api, "/v1/consumers/new", Some(format!("Bearer {t}"))).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "insufficient_scope")
    );
    assert!(
        challenge.contains(r#"scope="write:consumers""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn every_kind_of_bad_token_is_401_invalid_token() {
    let w = calyx().await;
    let api = api(Guard::new(w.config())).await;
    let good = w.token(&w.audience, "read:consumers").await;
    let (h, p, _) = {
        let mut it = good.split('.');
        (
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
        )
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&h).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let now = w.app.clock.now();
    let claims = |iss: &str, aud: &str, exp: i64, nbf: Option<i64>| {
        let mut c = json!({"iss": iss, "aud": aud, "sub": "x@clients", "exp": exp, "iat": now, "jti": "j",
                           "client_id": "x", "scope": "read:consumers"});
        if let Some(n) = nbf {
            c["nbf"] = json!(n);
        }
        c
    };
    let tampered_payload = b64(
        &json!({"iss": w.issuer, "aud": w.audience, "sub": "admin", "exp": now + 600, "scope": "read:consumers"}),
    );
    // An expired token from the server: issue one an hour and a day in the past.
    w.app.clock.advance(-(86_400 + 3_600));
    let expired = w.token(&w.audience, "read:consumers").await;
    w.app.clock.advance(86_400 + 3_600);
    let cases: Vec<(&str, String)> = vec![
        ("malformed", "not-a-jwt".into()),
        ("tampered signature", format!("{h}.{p}.{}", "A".repeat(86))),
        (
            "tampered payload",
            format!(
                "{h}.{tampered_payload}.{}",
                good.rsplit('.').next().unwrap()
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{p}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}))
            ),
        ),
        (
            "wrong alg",
            format!(
                "{}.{p}.{}",
                b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})),
                "A".repeat(43)
            ),
        ),
        (
            "wrong typ",
            w.forge_with_typ(claims(&w.issuer, &w.audience, now + 600, None), "JWT")
                .await,
        ),
        (
            "wrong issuer",
            w.forge(claims(
                "https://evil.example.com",
                &w.audience,
                now + 600,
                None,
            ))
            .await,
        ),
        (
            "wrong audience",
            w.token("https://other.example.com/", "read:consumers")
                .await,
        ),
        ("expired", expired),
        (
            "not yet valid",
            w.forge(claims(&w.issuer, &w.audience, now + 7200, Some(now + 3600)))
                .await,
        ),
    ];
    for (name, token) in cases {
        let (status, challenge, body) =
            call(&api, "/v1/consumers", Some(format!("Bearer {token}"))).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
    }
    let (status, challenge, _) = call(&api, "/v1/consumers", None).await;
    assert_eq!(status, 401, "no token");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

#[tokio::test]
async fn a_key_rotated_on_the_server_is_accepted_without_a_restart() {
    let w = calyx().await;
    let guard = Guard::new(w.config());
    let before = w.token(&w.audience, "read:consumers").await;
    guard.validate(&before).await.unwrap();
    let new_kid = w
        .app
        .manager
        .rotate_key(SigningAlg::ES256)
        .await
        .unwrap()
        .kid;
    let after = w.first_token_signed_by(&new_kid).await;
    tokio::time::sleep(Duration::from_millis(250)).await; // past the refetch interval
    for (token, why) in [
        (&after, "the new key is fetched"),
        (&before, "the old key is still published"),
    ] {
        guard.validate(token).await.expect(why);
    }
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_a_bounded_number_of_jwks_fetches() {
    let w = calyx().await;
    let guard = w.guard_refetching_after(Duration::from_secs(10));
    let good = w.token(&w.audience, "read:consumers").await;
    guard.validate(&good).await.unwrap();
    assert_eq!(guard.jwks_fetches(), 1);
    for i in 0..300 {
        let header = b64(&json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("random-{i}")}));
        let forged = format!("{header}.{}.{}", b64(&json!({"sub": "x"})), "A".repeat(86));
        assert!(guard.validate(&forged).await.is_err());
    }
    assert!(
        guard.jwks_fetches() <= 2,
        "{} fetches",
        guard.jwks_fetches()
    );
    guard
        .validate(&good)
        .await
        .expect("real tokens still pass (cached)");
}

#[tokio::test]
async fn introspection_mode_rejects_a_revoked_token_at_once() {
    let w = calyx().await;
    let introspection = Introspection {
        endpoint: format!("{}/oauth/introspect", w.issuer),
        client_id: w.client_id.clone(),
        client_secret: w.secret.clone(),
        cache_ttl: Duration::ZERO,
    };
    let plain = Guard::new(w.config());
    let strict = Guard::with_introspection(w.config(), introspection);
    let t = w.token(&w.audience, "read:consumers").await;
    strict.validate(&t).await.unwrap();
    assert_eq!(w.app.revoke(&w.machine, &t).await, 200);
    assert!(
        strict.validate(&t).await.is_err(),
        "introspection sees the revocation"
    );
    plain
        .validate(&t)
        .await
        .expect("offline validation cannot see it (by design)");
}

/// A JWKS endpoint whose key set the test swaps, served with `Cache-Control: max-age=1`.
async fn jwks_server(set: Arc<std::sync::Mutex<Value>>) -> String {
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let set = set.clone();
            async move {
                let body = set.lock().unwrap().clone();
                ([("cache-control", "public, max-age=1")], Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks")
}

#[tokio::test]
async fn a_key_the_issuer_stops_publishing_stops_verifying_once_the_jwks_max_age_passes() {
    let (_, retired) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let (_, kept) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let set = Arc::new(std::sync::Mutex::new(
        json!({"keys": [retired.public_jwk(), kept.public_jwk()]}),
    ));
    let mut cfg = GuardConfig::new("https://issuer.example", "https://api.example/");
    cfg.jwks_uri = Some(jwks_server(set.clone()).await);
    cfg.min_refetch_interval = Duration::from_secs(60);
    let guard = Guard::new(cfg);
    let exp = calyx_testkit::SystemClock.now() + 600;
    let claims = json!({"iss": "https://issuer.example", "aud": "https://api.example/",
        "sub": "s@clients", "exp": exp});
    let compromised = retired.sign(&claims).unwrap();
    let fine = kept.sign(&claims).unwrap();
    guard.validate(&compromised).await.unwrap();
    guard.validate(&fine).await.unwrap();

    // The issuer retires the key; the guard notices within max-age, in the background.
    *set.lock().unwrap() = json!({"keys": [kept.public_jwk()]});
    let started = std::time::Instant::now();
    while guard.validate(&compromised).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a retired key kept verifying (cached tokens included)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    guard
        .validate(&fine)
        .await
        .expect("the key still published still verifies");
    assert_eq!(
        guard.validate(&compromised).await.unwrap_err(),
        calyx_guard::GuardError::InvalidToken("unknown key id")
    );
}

#[tokio::test]
async fn a_guard_that_fetched_the_jwks_before_a_rotation_accepts_the_first_token_after_it() {
    let w = calyx().await;
    // As Keycloak's and jose's verifiers do: no refetch for a while after a fetch.
    let guard = w.guard_refetching_after(Duration::from_secs(60));
    guard
        .validate(&w.token(&w.audience, "read:consumers").await)
        .await
        .unwrap();
    assert_eq!(guard.jwks_fetches(), 1);
    let rotated = w.app.manager.rotate_key(SigningAlg::ES256).await.unwrap();
    assert!(
        rotated.was_published,
        "the promoted key was published before"
    );
    let first = w.first_token_signed_by(&rotated.kid).await;
    let header = jsonwebtoken::decode_header(&first).unwrap();
    assert_eq!(header.kid.as_deref(), Some(rotated.kid.as_str()));
    guard
        .validate(&first)
        .await
        .expect("the key that signs after the rotation was in the JWKS fetched before it");
    assert_eq!(guard.jwks_fetches(), 1, "no refetch was needed");
}
