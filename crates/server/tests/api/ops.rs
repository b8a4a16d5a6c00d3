//! Operations endpoints and discovery.

use crate::{app_and_client, spawn_app};

#[tokio::test]
async fn health_readiness_and_metadata_answer() {
    let app = spawn_app().await;
    assert_eq!(app.status_of("/healthz").await, 200);
    assert_eq!(app.status_of("/readyz").await, 200);
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let m = app.get_json(path).await;
        assert_eq!(m["issuer"], app.base);
        assert_eq!(m["token_endpoint"], app.url("/oauth/token"));
        assert_eq!(m["jwks_uri"], app.url("/.well-known/jwks.json"));
        assert!(m["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"client_credentials".into()));
        assert!(m["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&"client_secret_basic".into()));
    }
    let jwks = app.jwks().await;
    assert!(!jwks.keys.is_empty());
}

#[tokio::test]
async fn metrics_count_tokens_by_grant_and_outcome() {
    let (app, c) = app_and_client().await;
    app.token(&c).await;
    app.post_token_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "ghost"),
        ("client_secret", "x"),
    ])
    .await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"calyx_token_requests_total{grant="client_credentials",outcome="issued"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"calyx_token_requests_total{grant="client_credentials",outcome="invalid_client"} 1"#
    ));
    assert!(text.contains("calyx_token_request_duration_seconds_count 2"));
}

#[tokio::test]
async fn metrics_count_every_route_by_status_with_its_latency() {
    let (app, _) = app_and_client().await;
    app.get("/healthz").await;
    app.get("/v2/users").await; // no org token: 401
    app.get("/v2/users/u_1").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"calyx_http_requests_total{route="/healthz",status="200"} 1"#,
        r#"calyx_http_requests_total{route="/v2/users",status="401"} 1"#,
        r#"calyx_http_requests_total{route="/v2/users/{user_id}",status="401"} 1"#,
        r#"calyx_http_request_duration_seconds_count{route="/healthz"} 1"#,
        r#"calyx_http_request_duration_seconds_count{route="/v2/users"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

/// The token endpoint is answered ahead of the router (its hot path); whichever way a request
/// goes, it gets what every route gives: the security header, its route's metrics, and the
/// router's 404 and 405 for what the endpoint does not serve.
#[tokio::test]
async fn the_token_endpoint_answers_like_every_other_route() {
    let (app, c) = app_and_client().await;
    let secret = c.secret.clone().unwrap();
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", c.client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("audience", c.audience.as_str()),
    ];
    let post = |path: &str, form: &[(&str, &str)]| app.http.post(app.url(path)).form(form).send();
    let issued = post("/oauth/token", &good).await.unwrap();
    let refused = post(
        "/v2/oauth/token?x=1",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "ghost"),
            ("client_secret", "x"),
        ],
    )
    .await
    .unwrap();
    let other_method = app.request("PUT", "/oauth/token").await;
    let other_path = post("/oauth/token/", &good).await.unwrap();
    for (what, resp, status) in [
        ("issued", &issued, 200),
        ("refused", &refused, 401),
        ("other method", &other_method, 405),
        ("other path", &other_path, 404),
    ] {
        assert_eq!(resp.status(), status, "{what}");
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{what}"
        );
    }
    assert_eq!(issued.headers()["cache-control"], "no-store");
    assert_eq!(other_method.headers()["allow"], "POST");
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"calyx_http_requests_total{route="/oauth/token",status="200"} 1"#,
        r#"calyx_http_requests_total{route="/v2/oauth/token",status="401"} 1"#,
        "calyx_token_request_duration_seconds_count 2",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let app = spawn_app().await;
    let doc = app.get_json("/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    let routes = [
        ("/oauth/token", "post"),
        ("/v2/oauth/token", "post"),
        ("/.well-known/oauth-authorization-server", "get"),
        ("/.well-known/openid-configuration", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/authorize", "get"),
        ("/Authorize", "get"),
        ("/authorize/login", "post"),
        ("/authorize/consent", "post"),
        ("/assets/calyx.css", "get"),
        ("/oauth/revoke", "post"),
        ("/oauth/introspect", "post"),
        ("/oauth/par", "post"),
        ("/v2/users", "post"),
        ("/v2/users", "get"),
        ("/v2/users/{user_id}", "get"),
        ("/v2/users/{user_id}", "delete"),
        ("/v2/users/{user_id}/authenticate", "post"),
        ("/admin/v1/orgs", "get"),
        ("/admin/v1/orgs", "post"),
        ("/admin/v1/orgs/{id}", "get"),
        ("/admin/v1/orgs/{id}", "patch"),
        ("/admin/v1/orgs/{id}", "delete"),
        ("/admin/v1/apis", "get"),
        ("/admin/v1/apis", "post"),
        ("/admin/v1/apis/{id}", "get"),
        ("/admin/v1/apis/{id}", "patch"),
        ("/admin/v1/apis/{id}", "delete"),
        ("/admin/v1/clients", "get"),
        ("/admin/v1/clients", "post"),
        ("/admin/v1/clients/{id}", "get"),
        ("/admin/v1/clients/{id}", "patch"),
        ("/admin/v1/clients/{id}", "delete"),
        ("/admin/v1/clients/{id}/rotate-secret", "post"),
        ("/admin/v1/clients/{id}/revoke-tokens", "post"),
        ("/admin/v1/clients/{id}/usage", "get"),
        ("/admin/v1/clients/{id}/grants", "get"),
        ("/admin/v1/clients/{id}/grants", "post"),
        ("/admin/v1/clients/{id}/grants/{api_id}", "get"),
        ("/admin/v1/clients/{id}/grants/{api_id}", "patch"),
        ("/admin/v1/clients/{id}/grants/{api_id}", "delete"),
        ("/admin/v1/users", "get"),
        ("/admin/v1/users", "post"),
        ("/admin/v1/users/{id}", "get"),
        ("/admin/v1/users/{id}", "patch"),
        ("/admin/v1/users/{id}", "delete"),
        ("/admin/v1/keys", "get"),
        ("/admin/v1/keys/rotate", "post"),
        ("/admin/v1/keys/{kid}/retire", "post"),
        ("/admin/v1/families", "get"),
        ("/admin/v1/families/{id}", "get"),
        ("/admin/v1/families/{id}/revoke", "post"),
        ("/admin/v1/webhooks", "get"),
        ("/admin/v1/webhooks", "post"),
        ("/admin/v1/webhooks/{id}", "get"),
        ("/admin/v1/webhooks/{id}", "patch"),
        ("/admin/v1/webhooks/{id}", "delete"),
        ("/admin/v1/webhooks/{id}/deliveries", "get"),
        ("/admin/v1/audit", "get"),
        ("/admin/v1/audit/{id}", "get"),
        ("/admin/v1/purge", "post"),
        ("/admin/v1/orgs/{id}/entitlements", "get"),
        ("/admin/v1/orgs/{id}/entitlements/{api_id}", "put"),
        ("/admin/v1/orgs/{id}/entitlements/{api_id}", "delete"),
        ("/admin/v1/branding", "get"),
        ("/admin/v1/branding", "patch"),
    ];
    for (path, method) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
        // And it is really served (not a 404).
        let resp = app.request(method, path).await;
        assert_ne!(resp.status(), 404, "{method} {path} is served");
    }
    // Every management operation documents its authentication and input errors.
    for (path, method) in routes.iter().filter(|(p, _)| p.starts_with("/admin/v1/")) {
        let responses = &paths[*path][*method]["responses"];
        for status in ["400", "401", "403"] {
            assert!(
                responses.get(status).is_some(),
                "{method} {path} documents {status}"
            );
        }
    }
    let distinct: std::collections::BTreeSet<&str> = routes.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        paths.len(),
        distinct.len(),
        "no undocumented or stale paths: {:?}",
        paths.keys()
    );
    let token_body = &paths["/oauth/token"]["post"]["requestBody"]["content"];
    assert!(token_body
        .get("application/x-www-form-urlencoded")
        .is_some());
    assert!(token_body.get("application/json").is_some());
}

#[tokio::test]
async fn metrics_are_openmetrics_under_their_own_media_type_and_every_sample_is_typed() {
    let (app, c) = app_and_client().await;
    app.token(&c).await;
    let resp = app.get("/metrics").await;
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    // OpenMetrics: a sample belongs to the family it extends by one of its type's suffixes.
    let mut families: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.push((name.to_owned(), kind.to_owned()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            let typed = families.iter().any(|(family, kind)| {
                let suffixes: &[&str] = match kind.as_str() {
                    "counter" => &["_total", "_created"],
                    "histogram" => &["_bucket", "_count", "_sum", "_created"],
                    _ => &[""],
                };
                suffixes
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family.as_str()))
            });
            assert!(typed, "{name} has no TYPE line of its family:\n{text}");
        }
    }
}

#[tokio::test]
async fn every_operation_id_in_the_openapi_document_is_unique() {
    let app = spawn_app().await;
    let doc = app.get_json("/openapi.json").await;
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}"));
            assert!(seen.insert(id.to_owned()), "{method} {path} reuses {id}");
        }
    }
}
