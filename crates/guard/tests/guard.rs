//! calyx-guard against a real Calyx server and a real axum API behind the layer.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use calyx_core::clock::Clock;
use calyx_core::model::{ClientType, GrantType, SigningAlg};
use calyx_guard::{Authenticated, Guard, GuardConfig, GuardLayer, Introspection};
use calyx_server::clock::{OffsetClock, SystemClock};
use calyx_server::manage::{Manager, NewApi, NewClient, Secrets};
use calyx_server::{Application, Config};
use calyx_token::SigningKey;
use serde_json::{json, Value};

struct World {
    issuer: String,
    manager: Manager,
    clock: OffsetClock,
    audience: String,
    client_id: String,
    secret: String,
    _dir: tempfile::TempDir,
}

async fn calyx() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Config::new(format!("sqlite://{}", dir.path().join("c.db").display()));
    raw.listen = "127.0.0.1:0".parse().unwrap();
    raw.reload_interval = Duration::from_millis(50);
    raw.pepper = Some("p".into());
    let clock = OffsetClock::new();
    let app = Application::build_with_clock(raw.validate().unwrap(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let issuer = app.issuer().to_owned();
    let store = app.state().store.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let secrets = Secrets {
        pepper: Some("p".into()),
        master_key: None,
    };
    let manager = Manager::with_store(store, &secrets, Arc::new(clock.clone()))
        .await
        .unwrap();
    let org = manager.create_org("Guard Org").await.unwrap();
    let audience = "https://consumers.example.com/".to_owned();
    for aud in [audience.as_str(), "https://other.example.com/"] {
        manager
            .create_api(NewApi {
                audience: aud.into(),
                name: "API".into(),
                scopes: "read:consumers write:consumers".into(),
                alg: SigningAlg::ES256,
                token_lifetime: None,
                user_token_lifetime: None,
                delegated_token_lifetime: None,
                refresh_token_lifetime: None,
            })
            .await
            .unwrap();
    }
    let (client, secret) = manager
        .create_client(NewClient {
            org_id: org.id,
            name: "svc".into(),
            client_type: ClientType::Confidential,
            grant_types: vec![GrantType::ClientCredentials],
            ..Default::default()
        })
        .await
        .unwrap();
    for aud in [audience.as_str(), "https://other.example.com/"] {
        manager
            .create_grant(&client.id, aud, "read:consumers write:consumers", false)
            .await
            .unwrap();
    }
    World {
        issuer,
        manager,
        clock,
        audience,
        client_id: client.id,
        secret: secret.unwrap(),
        _dir: dir,
    }
}

impl World {
    async fn token(&self, audience: &str, scope: &str) -> String {
        let v: Value = reqwest::Client::new()
            .post(format!("{}/oauth/token", self.issuer))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("audience", audience),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().expect("a token").to_owned()
    }

    /// A token signed with the issuer's own current key but with chosen claims.
    async fn forge(&self, claims: Value) -> String {
        let keys = self
            .manager
            .store
            .live_keys(self.clock.now())
            .await
            .unwrap();
        let k = keys
            .iter()
            .rev()
            .find(|k| k.alg == SigningAlg::ES256)
            .unwrap();
        let der = self.manager.sealer.open(&k.private_key).unwrap();
        SigningKey::from_pkcs8(SigningAlg::ES256, &der)
            .unwrap()
            .sign(&claims)
            .unwrap()
    }

    /// Like `forge`, with a chosen `typ` (signed by jsonwebtoken, so the signature is valid).
    async fn forge_with_typ(&self, claims: Value, typ: &str) -> String {
        let keys = self
            .manager
            .store
            .live_keys(self.clock.now())
            .await
            .unwrap();
        let k = keys
            .iter()
            .rev()
            .find(|k| k.alg == SigningAlg::ES256)
            .unwrap();
        let der = self.manager.sealer.open(&k.private_key).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some(typ.into());
        header.kid = Some(k.kid.clone());
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
}

/// The consumers API of the example, behind the guard.
async fn api(guard: Guard) -> String {
    async fn list(Authenticated(t): Authenticated) -> Json<Value> {
        Json(json!({"consumers": [], "caller": t.subject()}))
    }
    let app = Router::new()
        .route(
            "/v1/consumers",
            get(list).layer(GuardLayer::new(guard.clone()).require_scopes(&["read:consumers"])),
        )
        .route(
            "/v1/consumers/new",
            get(list).layer(GuardLayer::new(guard).require_scopes(&["write:consumers"])),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn call(api: &str, path: &str, authorization: Option<String>) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().get(format!("{api}{path}"));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
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
    let now = w.clock.now();
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
    w.clock.advance(-(86_400 + 3_600));
    let expired = w.token(&w.audience, "read:consumers").await;
    w.clock.advance(86_400 + 3_600);
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
    let new_kid = w.manager.rotate_key(SigningAlg::ES256).await.unwrap().kid;
    let mut after = String::new();
    for _ in 0..100 {
        after = w.token(&w.audience, "read:consumers").await;
        if jsonwebtoken::decode_header(&after).unwrap().kid.as_deref() == Some(new_kid.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(250)).await; // past the refetch interval
    guard
        .validate(&after)
        .await
        .expect("the new key is fetched");
    guard
        .validate(&before)
        .await
        .expect("the old key is still published");
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_a_bounded_number_of_jwks_fetches() {
    let w = calyx().await;
    let mut cfg = w.config();
    cfg.min_refetch_interval = Duration::from_secs(10);
    let guard = Guard::new(cfg);
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
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/revoke", w.issuer))
        .basic_auth(&w.client_id, Some(&w.secret))
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        strict.validate(&t).await.is_err(),
        "introspection sees the revocation"
    );
    plain
        .validate(&t)
        .await
        .expect("offline validation cannot see it (by design)");
}

#[tokio::test]
async fn a_guard_that_fetched_the_jwks_before_a_rotation_accepts_the_first_token_after_it() {
    let w = calyx().await;
    let mut cfg = w.config();
    // As Keycloak's and jose's verifiers do: no refetch for a while after a fetch.
    cfg.min_refetch_interval = Duration::from_secs(60);
    let guard = Guard::new(cfg);
    guard
        .validate(&w.token(&w.audience, "read:consumers").await)
        .await
        .unwrap();
    assert_eq!(guard.jwks_fetches(), 1);
    let rotated = w.manager.rotate_key(SigningAlg::ES256).await.unwrap();
    assert!(
        rotated.was_published,
        "the promoted key was published before"
    );
    let mut first = String::new();
    for _ in 0..100 {
        first = w.token(&w.audience, "read:consumers").await;
        if jsonwebtoken::decode_header(&first).unwrap().kid.as_deref() == Some(&rotated.kid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let header = jsonwebtoken::decode_header(&first).unwrap();
    assert_eq!(header.kid.as_deref(), Some(rotated.kid.as_str()));
    guard
        .validate(&first)
        .await
        .expect("the key that signs after the rotation was in the JWKS fetched before it");
    assert_eq!(guard.jwks_fetches(), 1, "no refetch was needed");
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
    let exp = SystemClock.now() + 600;
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
