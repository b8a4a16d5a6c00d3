//! Every token-endpoint error (RFC 6749 §5.2), as a table: request in, exact status and `error` out.

use serde_json::Value;

use calyx_testkit::basic;

use crate::{app_and_client, spawn_app};

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    /// `Basic` credentials as (id, secret); `{id}` and `{secret}` are replaced.
    basic: Option<(&'static str, &'static str)>,
    raw_authorization: Option<&'static str>,
    /// `{id}`, `{secret}`, `{aud}` are replaced with the test client's values (urlencoded in forms).
    body: &'static str,
    status: u16,
    error: &'static str,
}

const fn case(
    name: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        content_type,
        basic: None,
        raw_authorization: None,
        body,
        status,
        error,
    }
}

fn cases() -> Vec<Case> {
    let cc = "grant_type=client_credentials&audience={aud}";
    vec![
        case("wrong secret (post)", FORM, "grant_type=client_credentials&client_id={id}&client_secret=nope&audience={aud}", 401, "invalid_client"),
        Case { basic: Some(("{id}", "nope")), ..case("wrong secret (basic)", FORM, cc, 401, "invalid_client") },
        case("unknown client", FORM, "grant_type=client_credentials&client_id=ghost&client_secret=x&audience={aud}", 401, "invalid_client"),
        case("no client authentication", FORM, cc, 401, "invalid_client"),
        case("secret without id", FORM, "grant_type=client_credentials&client_secret={secret}&audience={aud}", 400, "invalid_request"),
        Case { raw_authorization: Some("Basic !!!notbase64"), ..case("malformed Basic header", FORM, cc, 401, "invalid_client") },
        Case { raw_authorization: Some("Bearer abc"), ..case("non-Basic scheme", FORM, cc, 401, "invalid_client") },
        Case { basic: Some(("{id}", "{secret}")), ..case("two auth methods", FORM, "grant_type=client_credentials&client_secret={secret}&audience={aud}", 400, "invalid_request") },
        Case { basic: Some(("{id}", "{secret}")), ..case("body client_id differs from Basic", FORM, "grant_type=client_credentials&client_id=other&audience={aud}", 400, "invalid_request") },
        case("missing grant_type", FORM, "client_id={id}&client_secret={secret}&audience={aud}", 400, "invalid_request"),
        case("repeated parameter", FORM, "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience={aud}&audience={aud}", 400, "invalid_request"),
        case("repeated parameter, one empty", FORM, "grant_type=client_credentials&grant_type=&client_id={id}&client_secret={secret}&audience={aud}", 400, "invalid_request"),
        case("unsupported grant type", FORM, "grant_type=password&client_id={id}&client_secret={secret}&username=u&password=p", 400, "unsupported_grant_type"),
        case("unknown audience", FORM, "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience=https%3A%2F%2Fnope.example.com%2F", 403, "access_denied"),
        case("resource that is not an absolute URI", FORM, "grant_type=client_credentials&client_id={id}&client_secret={secret}&resource=api", 400, "invalid_target"),
        case("audience and resource disagree", FORM, "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience={aud}&resource=https%3A%2F%2Fother%2F", 400, "invalid_request"),
        case("scope with a forbidden character", FORM, "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience={aud}&scope=read%5C", 400, "invalid_scope"),
        case("scope beyond the grant", FORM, "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience={aud}&scope=admin", 400, "invalid_scope"),
        case("wrong content type", Some("text/plain"), "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience={aud}", 400, "invalid_request"),
        case("multipart content type", Some("multipart/form-data; boundary=x"), "--x--", 400, "invalid_request"),
        case("no content type", None, "grant_type=client_credentials&client_id={id}&client_secret={secret}&audience={aud}", 400, "invalid_request"),
        case("malformed JSON", JSON, r#"{"grant_type": "client_credentials", "client_id": "#, 400, "invalid_request"),
        case("JSON that is not an object", JSON, r#"["client_credentials"]"#, 400, "invalid_request"),
        case("JSON with a non-string value", JSON, r#"{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}","audience":7}"#, 400, "invalid_request"),
        case("JSON with a repeated key", JSON, r#"{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}","audience":"{aud}","audience":"{aud}"}"#, 400, "invalid_request"),
        case("invalid UTF-8 in a form value", FORM, "grant_type=client_credentials&client_id=%FF%FE&client_secret=x", 401, "invalid_client"),
    ]
}

#[tokio::test]
async fn each_malformed_request_gets_its_exact_status_and_error() {
    let (app, c) = app_and_client().await;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for case in cases() {
        let json = case.content_type == JSON;
        let fill = |s: &str| {
            let (id, secret, aud) = if json {
                (
                    c.client_id.clone(),
                    c.secret().to_owned(),
                    c.audience.clone(),
                )
            } else {
                (enc(&c.client_id), enc(c.secret()), enc(&c.audience))
            };
            s.replace("{id}", &id)
                .replace("{secret}", &secret)
                .replace("{aud}", &aud)
        };
        let authorization = match (case.basic, case.raw_authorization) {
            (Some((id, secret)), _) => {
                let raw = |s: &str| {
                    s.replace("{id}", &c.client_id)
                        .replace("{secret}", c.secret())
                };
                Some(basic(&raw(id), &raw(secret)))
            }
            (None, Some(raw)) => Some(raw.to_owned()),
            (None, None) => None,
        };
        let resp = app
            .post_raw(
                "/oauth/token",
                case.content_type,
                authorization.as_deref(),
                fill(case.body),
            )
            .await;
        let status = resp.status().as_u16();
        let challenge = resp.headers().get("www-authenticate").cloned();
        let cache = resp.headers().get("cache-control").cloned();
        let body: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", case.name));
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (case.status, case.error),
            "{}: {body}",
            case.name
        );
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{}: a description helps the developer",
            case.name
        );
        assert_eq!(cache.unwrap(), "no-store", "{}", case.name);
        if case.error == "invalid_client" {
            assert_eq!(challenge.unwrap(), "Basic realm=\"calyx\"", "{}", case.name);
        }
    }
}

#[tokio::test]
async fn an_oversized_body_gets_413_invalid_request() {
    let app = spawn_app().await;
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(64 * 1024)
    );
    let resp = app.post_raw("/oauth/token", FORM, None, big).await;
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");

    // Chunked, with no Content-Length to trust.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b'a'; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = app.post_raw("/oauth/token", FORM, None, body).await;
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn garbage_never_produces_a_5xx() {
    let app = spawn_app().await;
    let bodies: [&[u8]; 8] = [
        b"",
        b"&&&===&",
        b"%",
        b"grant_type=%E0%A4%A",
        b"\xff\xfe\x00\x01",
        b"{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
        b"null",
        b"grant_type=client_credentials&client_id=\x00&client_secret=\x00",
    ];
    for ct in [
        FORM,
        JSON,
        Some("application/x-www-form-urlencoded; charset=\"\"; ;;"),
    ] {
        for body in bodies {
            let resp = app.post_raw("/oauth/token", ct, None, body.to_vec()).await;
            assert!(
                resp.status().as_u16() < 500,
                "{ct:?} {body:?} → {}",
                resp.status()
            );
        }
    }
    let resp = app.get("/oauth/token").await;
    assert_eq!(resp.status(), 405);
}

/// A browser (asking for HTML) gets the branded page instead, with a way back and the page
/// security headers.
#[tokio::test]
async fn unknown_paths_get_a_page_in_a_browser() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url("/nothing/here"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert!(html.contains(r#"href="/developers/docs""#), "{html}");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors_not_empty_bodies() {
    let app = spawn_app().await;
    for (method, path, status, error) in [
        ("GET", "/v1/nothing-here", 404, "not_found"),
        ("POST", "/oauth/tokens", 404, "not_found"),
        ("GET", "/nothing", 404, "not_found"),
        ("DELETE", "/oauth/token", 405, "method_not_allowed"),
        ("GET", "/oauth/token", 405, "method_not_allowed"),
    ] {
        let resp = app.request(method, path).await;
        assert_eq!(resp.status(), status, "{method} {path}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], error, "{method} {path}");
    }
}
