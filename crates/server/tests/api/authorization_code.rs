//! Style C: a third-party app sends the user through /authorize (login, consent), exchanges
//! the code with HTTP Basic, and rotates single-use refresh tokens.

use calyx_core::model::{ClientType, GrantType};
use calyx_server::manage::NewClient;
use calyx_testkit::{
    jwt_parts, location_params, param, unique, Browser, Page, Provisioned, TestServer, PASSWORD,
    REDIRECT,
};
use serde_json::Value;

use crate::spawn_app;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A third-party application ("Donor App"), its API and a user who may sign in.
pub async fn third_party(app: &TestServer, client_type: ClientType) -> Provisioned {
    app.fixture()
        .api_name("CRM API")
        .scopes("Standard StandardEditFinancialData OrgAdmin")
        .client_name("Donor App")
        .app(client_type)
        .user("jane", "Standard StandardEditFinancialData")
        .build()
        .await
}

/// A server with a confidential third-party app and its user.
async fn confidential() -> (TestServer, Provisioned) {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    (app, tp)
}

/// The same, with the tokens of the user's first sign-in (a code exchanged).
async fn signed_in() -> (TestServer, Provisioned, Value) {
    let (app, tp) = confidential().await;
    let code = get_code(&app, &tp, &[]).await;
    let (_, tokens) = app.exchange(&tp, &code).await;
    (app, tp, tokens)
}

/// Redeems `code` with exactly the parameters `extra` besides it (no redirect URI unless
/// given).
async fn redeem(
    app: &TestServer,
    tp: &Provisioned,
    code: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    form.extend_from_slice(extra);
    app.token_as(tp, &form).await
}

/// Follows the flow as a user would: the authorize URL, the login form, the consent form.
/// Returns the final response (a redirect to the application).
pub async fn sign_in_and_decide(
    b: &Browser,
    url: &str,
    username: &str,
    decision: &str,
) -> reqwest::Response {
    let login = b.open(url).await;
    assert_eq!(login.status, 200, "login page");
    let consent = b.log_in(&login, username, PASSWORD).await;
    if consent.status() != 200 {
        return consent;
    }
    let consent = Page::read(consent).await;
    assert!(
        consent.html.contains("Donor App"),
        "consent names the application"
    );
    b.decide(&consent, decision).await
}

/// A fresh browser through the flow at the authorization URL with `extra`, deciding
/// `decision`.
async fn decide(
    app: &TestServer,
    tp: &Provisioned,
    extra: &[(&str, &str)],
    decision: &str,
) -> reqwest::Response {
    let url = app.authorize_url(tp, extra);
    sign_in_and_decide(&Browser::new(), &url, &tp.username, decision).await
}

/// Runs the whole flow and returns a code.
pub async fn get_code(app: &TestServer, tp: &Provisioned, extra: &[(&str, &str)]) -> String {
    let resp = decide(app, tp, extra, "approve").await;
    assert_eq!(resp.status(), 303);
    let (_, params) = location_params(&resp);
    param(&params, "code").expect("a code").to_owned()
}

#[tokio::test]
async fn the_full_flow_issues_a_user_token_with_a_refresh_token() {
    let (app, tp) = confidential().await;
    let code = get_code(&app, &tp, &[("redirect_uri", REDIRECT)]).await;
    let (status, body) = app.exchange(&tp, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"], "Standard StandardEditFinancialData",
        "default = the account's maximum"
    );
    let claims = app
        .verify(body["access_token"].as_str().unwrap(), &tp.audience)
        .await;
    // `{family}.{generation}.{secret}.{tag}`: the family is the access token's `sid`, the
    // secret 256 random bits, the tag 128 (base64url).
    let rt: Vec<&str> = body["refresh_token"].as_str().unwrap().split('.').collect();
    assert_eq!(rt.len(), 4, "{rt:?}");
    assert_eq!((rt[0], rt[1]), (claims["sid"].as_str().unwrap(), "1"));
    assert_eq!((rt[2].len(), rt[3].len()), (43, 22));
    assert_eq!(claims["sub"], tp.user_id);
    assert_eq!(claims["client_id"], tp.client_id);
    assert!(claims["sid"].as_str().unwrap().starts_with("fam_"));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn state_is_echoed_exactly_and_the_redirect_query_is_kept() {
    let (app, tp) = confidential().await;
    let state = "kgY/SeM8+YH=P&Hq xkbt é";
    let redirect = format!("{REDIRECT}?tenant=42&lang=en");
    let b = Browser::new();
    let mut url = app.authorize_url(&tp, &[("redirect_uri", &redirect)]);
    url = url.replace(
        "state=xyz",
        &format!(
            "state={}",
            form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        ),
    );
    let resp = sign_in_and_decide(&b, &url, &tp.username, "approve").await;
    let (base, params) = location_params(&resp);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&params, "tenant"), Some("42"));
    assert_eq!(param(&params, "lang"), Some("en"));
    assert_eq!(param(&params, "state"), Some(state));
    let code = param(&params, "code").unwrap();
    // The token request must repeat the redirect URI exactly as sent, query included.
    let (status, body) = redeem(&app, &tp, code, &[("redirect_uri", REDIRECT)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn unknown_client_bad_redirect_and_fragment_show_an_error_page_and_never_redirect() {
    let (app, tp) = confidential().await;
    let ghost = Provisioned {
        client_id: "ghost".into(),
        ..tp.clone()
    };
    let cases = [
        app.authorize_url(&ghost, &[("redirect_uri", REDIRECT)]),
        app.authorize_url(&tp, &[("redirect_uri", "https://evil.example.com/cb")]),
        app.authorize_url(&tp, &[("redirect_uri", "https://app.example.com/cb/extra")]),
        app.authorize_url(&tp, &[("redirect_uri", "https://app.example.com/cb#frag")]),
        app.url("/authorize?response_type=code&state=x"),
    ];
    for url in cases {
        let resp = app.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        assert!(
            resp.headers().get("location").is_none(),
            "{url} must not redirect"
        );
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = resp.text().await.unwrap();
        assert!(html.contains("<h1>"), "{url}: {html}");
    }
}

#[tokio::test]
async fn other_errors_redirect_back_with_error_and_state() {
    let (app, tp) = confidential().await;
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("scope", "NotAScope")], "invalid_scope"),
        (
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            &[("audience", "https://unknown.example.com/")],
            "access_denied",
        ),
    ];
    for (extra, error) in cases {
        let resp = app
            .http
            .get(app.authorize_url(&tp, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{extra:?}");
        let (base, params) = location_params(&resp);
        assert_eq!(base, REDIRECT);
        assert_eq!(param(&params, "error"), Some(error), "{extra:?}");
        assert!(param(&params, "error_description").is_some());
        assert_eq!(param(&params, "state"), Some("xyz"));
    }
    let url = app
        .authorize_url(&tp, &[])
        .replace("response_type=code", "response_type=token");
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(
        param(&location_params(&resp).1, "error"),
        Some("unsupported_response_type")
    );
    let url = app.authorize_url(&tp, &[]).replace("&state=xyz", "");
    let resp = app.http.get(url).send().await.unwrap();
    let (_, params) = location_params(&resp);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert_eq!(param(&params, "state"), None);
}

#[tokio::test]
async fn deny_sends_access_denied_with_state() {
    let (app, tp) = confidential().await;
    let resp = decide(&app, &tp, &[], "deny").await;
    assert_eq!(resp.status(), 303);
    let (base, params) = location_params(&resp);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "code"), None);
}

#[tokio::test]
async fn a_scope_beyond_the_account_is_refused_and_a_narrower_one_is_granted() {
    let (app, tp) = confidential().await;
    // OrgAdmin: the client may ask for it, the account may not grant it.
    let resp = decide(&app, &tp, &[("scope", "OrgAdmin")], "approve").await;
    let (_, params) = location_params(&resp);
    assert_eq!(param(&params, "error"), Some("invalid_scope"));
    assert_eq!(param(&params, "state"), Some("xyz"));
    let code = get_code(&app, &tp, &[("scope", "Standard")]).await;
    let (_, body) = app.exchange(&tp, &code).await;
    assert_eq!(body["scope"], "Standard");
}

#[tokio::test]
async fn the_authorize_alias_and_page_security_headers() {
    let (app, tp) = confidential().await;
    let url = app
        .authorize_url(&tp, &[])
        .replace("/authorize?", "/Authorize?");
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"<label for="username">"#) && html.contains(r#"name="csrf""#));
}

#[tokio::test]
async fn a_form_without_the_csrf_cookie_is_refused() {
    let (app, tp) = confidential().await;
    // A cross-site POST carries the form values but not our cookie.
    let no_cookies = Browser {
        http: app.http.clone(),
    };
    let login = no_cookies.open(&app.authorize_url(&tp, &[])).await;
    let resp = no_cookies.log_in(&login, &tp.username, PASSWORD).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("calyx_session=")),
        "no session is created"
    );
}

#[tokio::test]
async fn token_endpoint_redirect_uri_must_match() {
    let (app, tp) = confidential().await;
    let code = get_code(&app, &tp, &[("redirect_uri", REDIRECT)]).await;
    let (status, body) = redeem(
        &app,
        &tp,
        &code,
        &[("redirect_uri", "https://app.example.com/other")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    let (status, body) = redeem(&app, &tp, &code, &[]).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_request"),
        "omitted although sent"
    );
    // Not spent by those failures.
    assert_eq!(app.exchange(&tp, &code).await.0, 200);
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let (app, tp) = confidential().await;
    let code = get_code(&app, &tp, &[]).await;
    app.clock.advance(601);
    let (status, body) = app.exchange(&tp, &code).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let (app, tp, first) = signed_in().await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let (status, second) = app.refresh(&tp, &rt1, None).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotation");
    assert_eq!(
        second["scope"], first["scope"],
        "same scope when none is asked"
    );
    let (_, c1) = jwt_parts(first["access_token"].as_str().unwrap());
    let (_, c2) = jwt_parts(second["access_token"].as_str().unwrap());
    assert_eq!(c1["sid"], c2["sid"], "one family");

    // rt1 is spent: presenting it again revokes everything.
    let (status, body) = app.refresh(&tp, &rt1, None).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert_eq!(
        app.refresh(&tp, &rt2, None).await.0,
        400,
        "the successor is revoked too"
    );
    for access in [&first["access_token"], &second["access_token"]] {
        assert_eq!(
            app.introspect(&tp, access.as_str().unwrap()).await["active"],
            false
        );
    }
}

/// A refresh token names its family, and the family id is the `sid` of every access token of
/// it, so anyone who sees an access token knows it. A token made up around that id, or a real
/// one with any part changed, is refused and revokes nothing; the genuine spent one revokes
/// the family.
#[tokio::test]
async fn a_forged_token_naming_a_real_family_is_refused_without_revoking_it() {
    let (app, tp, first) = signed_in().await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(first["access_token"].as_str().unwrap());
    let sid = claims["sid"].as_str().unwrap();
    let (status, second) = app.refresh(&tp, &rt1, None).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();

    let p: Vec<&str> = rt1.split('.').collect();
    let flip = |s: &str| {
        let first = if s.starts_with('A') { 'B' } else { 'A' };
        format!("{first}{}", &s[1..])
    };
    let forgeries = [
        format!("{sid}.1.{}.{}", "A".repeat(43), "A".repeat(22)),
        format!("{sid}.1.{}.{}", flip(p[2]), p[3]),
        format!("{sid}.1.{}.{}", p[2], flip(p[3])),
        format!("{sid}.0.{}.{}", p[2], p[3]),
        format!("{sid}.2.{}.{}", p[2], p[3]),
        format!("{sid}.1.{}", p[2]),
        sid.to_owned(),
    ];
    for forged in &forgeries {
        let (status, body) = app.refresh(&tp, forged, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{forged}"
        );
    }
    // The family lives on: its current token rotates.
    let (status, third) = app.refresh(&tp, &rt2, None).await;
    assert_eq!(status, 200, "the forgeries revoked nothing: {third}");
    let rt3 = third["refresh_token"].as_str().unwrap();
    assert!(rt3.starts_with(&format!("{sid}.3.")), "{rt3}");

    // The genuine spent token revokes it.
    assert_eq!(app.refresh(&tp, &rt1, None).await.0, 400);
    assert_eq!(
        app.refresh(&tp, rt3, None).await.0,
        400,
        "the reuse revoked the family"
    );
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_issued() {
    let (app, tp) = confidential().await;
    let code = get_code(&app, &tp, &[]).await;
    let (status, first) = app.exchange(&tp, &code).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    assert_eq!(app.introspect(&tp, access).await["active"], true);

    let (status, body) = app.exchange(&tp, &code).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert_eq!(
        app.introspect(&tp, access).await["active"],
        false,
        "access token revoked"
    );
    assert_eq!(
        app.introspect(&tp, rt).await["active"],
        false,
        "refresh token revoked"
    );
    assert_eq!(app.refresh(&tp, rt, None).await.0, 400, "refresh fails");
}

#[tokio::test]
async fn refresh_scope_may_narrow_but_not_widen() {
    let (app, tp, first) = signed_in().await;
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, body) = app.refresh(&tp, rt, Some("Standard OrgAdmin")).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_scope")
    );
    // The failed widening did not spend the token.
    let (status, narrowed) = app.refresh(&tp, rt, Some("Standard")).await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "Standard");
    // The refresh token keeps the original scope (RFC 6749 §6): the next one may ask for all.
    let (status, wide) = app
        .refresh(&tp, narrowed["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(wide["scope"], "Standard StandardEditFinancialData");
}

#[tokio::test]
async fn refresh_tokens_expire_after_the_api_refresh_lifetime() {
    let (app, tp, first) = signed_in().await;
    let rt = first["refresh_token"].as_str().unwrap();
    app.clock.advance(90 * 86_400 + 1);
    let (status, body) = app.refresh(&tp, rt, None).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn public_clients_must_use_pkce_and_a_wrong_verifier_is_refused() {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Public).await;
    assert!(tp.secret.is_none());
    let resp = app
        .http
        .get(app.authorize_url(&tp, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        param(&location_params(&resp).1, "error"),
        Some("invalid_request"),
        "no challenge"
    );

    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = get_code(&app, &tp, &pkce).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
    let (status, body) = redeem(&app, &tp, &code, &[("code_verifier", wrong)]).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    let (status, body) = redeem(&app, &tp, &code, &[("code_verifier", VERIFIER)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn revocation_and_introspection() {
    let (app, tp, t) = signed_in().await;
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();

    let a = app.introspect(&tp, access).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["sub"], tp.user_id);
    assert_eq!(a["client_id"], tp.client_id);
    assert_eq!(a["aud"], tp.audience);
    assert_eq!(a["token_type"], "Bearer");
    let r = app.introspect(&tp, rt).await;
    assert_eq!(r["active"], true);
    assert_eq!(r["token_type"], "refresh_token");
    assert_eq!(
        app.introspect(&tp, "garbage").await,
        serde_json::json!({"active": false})
    );

    let revoke = |token: String| {
        let (app, tp) = (&app, &tp);
        async move { app.revoke(tp, &token).await }
    };
    assert_eq!(
        revoke("unknown-token".into()).await,
        200,
        "RFC 7009: unknown tokens are fine"
    );
    assert_eq!(revoke(rt.to_owned()).await, 200);
    assert_eq!(app.introspect(&tp, rt).await["active"], false);
    assert_eq!(
        app.introspect(&tp, access).await["active"],
        false,
        "revoking the refresh token revokes its family"
    );
    assert_eq!(app.refresh(&tp, rt, None).await.0, 400);

    // Revoking an access token on its own.
    let code = get_code(&app, &tp, &[]).await;
    let (_, t2) = app.exchange(&tp, &code).await;
    let access2 = t2["access_token"].as_str().unwrap().to_owned();
    assert_eq!(revoke(access2.clone()).await, 200);
    assert_eq!(app.introspect(&tp, &access2).await["active"], false);
    // Introspection needs client authentication.
    let resp = app
        .http
        .post(app.url("/oauth/introspect"))
        .form(&[("token", access2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let (app, tp) = confidential().await;
    let b = Browser::new();
    let login = b.open(&app.authorize_url(&tp, &[])).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let resp = b.log_in(&login, &tp.username, "wrong password").await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert!(resp.headers().get("retry-after").is_some());
        }
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    // The right password still signs in during the block: guessing must not lock the user
    // out (the address is refused only after more failures at this account).
    let resp = sign_in_and_decide(&b, &app.authorize_url(&tp, &[]), &tp.username, "approve").await;
    assert_eq!(resp.status(), 303);
    // The block is a security event, naming the username and the address, never a password.
    let admin = app.admin().await;
    let events = calyx_testkit::eventually(calyx_testkit::SOON, "the throttling event", || async {
        let events = admin.all("/audit?type=security.login_throttled", 50).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["detail"]["blocked"], "username");
    assert_eq!(events[0]["address"], "127.0.0.1");
    assert!(!events[0].to_string().contains("wrong password"));
}

#[tokio::test]
async fn with_a_reuse_leeway_the_previous_token_may_be_retried_for_the_same_successor() {
    let app = crate::spawn_app_with(|cfg| cfg.refresh_reuse_leeway = 30).await;
    let tp = third_party(&app, ClientType::Confidential).await;
    let code = get_code(&app, &tp, &[]).await;
    let (_, first) = app.exchange(&tp, &code).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = app.refresh(&tp, &rt1, None).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();

    // A retry of rt1 (say the response was lost) within the leeway gets the same successor.
    let (status, retried) = app.refresh(&tp, &rt1, None).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["refresh_token"], rt2.as_str());

    // Once the successor has been used, rt1 is plain reuse again: the family is revoked.
    let (status, third) = app.refresh(&tp, &rt2, None).await;
    assert_eq!(status, 200);
    let (status, _) = app.refresh(&tp, &rt1, None).await;
    assert_eq!(status, 400);
    assert_eq!(
        app.refresh(&tp, third["refresh_token"].as_str().unwrap(), None)
            .await
            .0,
        400
    );

    // And after the leeway, a retry is reuse even if the successor is unused.
    let code = get_code(&app, &tp, &[]).await;
    let (_, first) = app.exchange(&tp, &code).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = app.refresh(&tp, &rt1, None).await;
    app.clock.advance(31);
    assert_eq!(app.refresh(&tp, &rt1, None).await.0, 400);
    assert_eq!(
        app.refresh(&tp, second["refresh_token"].as_str().unwrap(), None)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn a_post_that_is_not_the_page_form_gets_the_400_error_page() {
    let app = spawn_app().await;
    for path in ["/authorize/login", "/authorize/consent"] {
        for (content_type, body) in [
            (None, ""),
            (Some("application/x-www-form-urlencoded"), "csrf=x"),
            (Some("application/json"), r#"{"request":"r","csrf":"c"}"#),
        ] {
            let resp = app.post_raw(path, content_type, None, body).await;
            assert_eq!(resp.status(), 400, "{path} {content_type:?} {body}");
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
    }
}

#[tokio::test]
async fn every_authorization_response_names_the_issuer() {
    let (app, tp) = confidential().await;
    let meta = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    // RFC 9207 §2: success and error responses alike.
    for decision in ["approve", "deny"] {
        let resp = decide(&app, &tp, &[], decision).await;
        let (_, params) = location_params(&resp);
        assert_eq!(param(&params, "iss"), Some(app.base.as_str()), "{decision}");
        assert_eq!(
            params.iter().filter(|(k, _)| k == "iss").count(),
            1,
            "{decision}"
        );
    }
    // An error found before the login page, too.
    let resp = app
        .http
        .get(
            app.authorize_url(&tp, &[("response_type", "token")])
                .replace("response_type=code&", ""),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let (_, params) = location_params(&resp);
    assert_eq!(param(&params, "error"), Some("unsupported_response_type"));
    assert_eq!(param(&params, "iss"), Some(app.base.as_str()));
}

#[tokio::test]
async fn a_redirect_uri_carrying_response_parameters_is_refused_so_none_arrives_twice() {
    let (app, tp) = confidential().await;
    for name in ["code", "state", "error", "iss"] {
        let uri = format!("{REDIRECT}?{name}=planted");
        // At /authorize: an error page, no redirect.
        let resp = app
            .http
            .get(app.authorize_url(&tp, &[("redirect_uri", &uri)]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name}");
        assert!(resp.headers().get("location").is_none(), "{name}");
        // At registration.
        let err = app
            .manager
            .create_client(NewClient {
                org_id: app.manager.create_org(&unique("org")).await.unwrap().id,
                name: "App".into(),
                grant_types: vec![GrantType::AuthorizationCode],
                redirect_uris: vec![uri.clone()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[tokio::test]
async fn links_and_redirect_uris_with_unsafe_schemes_are_refused_at_registration() {
    let app = spawn_app().await;
    let org = app.manager.create_org(&unique("org")).await.unwrap();
    let client = |redirect: &str, website: Option<&str>| NewClient {
        org_id: org.id.clone(),
        name: "App".into(),
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![redirect.into()],
        website_uri: website.map(str::to_owned),
        ..Default::default()
    };
    for bad in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "http://app.example.com/cb",
    ] {
        assert!(
            app.manager.create_client(client(bad, None)).await.is_err(),
            "redirect {bad}"
        );
        assert!(
            app.manager
                .create_client(client(REDIRECT, Some(bad)))
                .await
                .is_err(),
            "website {bad}"
        );
    }
    for (what, field) in [("privacy", 0), ("terms", 1)] {
        let mut c = client(REDIRECT, None);
        let bad = Some("javascript:alert(1)".to_owned());
        if field == 0 {
            c.privacy_policy_uri = bad;
        } else {
            c.tos_uri = bad;
        }
        assert!(app.manager.create_client(c).await.is_err(), "{what}");
    }
    // Native apps (RFC 8252): loopback http and private-use schemes.
    for ok in [
        "com.example.app:/oauth2redirect",
        "http://127.0.0.1:5173/cb",
    ] {
        app.manager
            .create_client(client(ok, Some("http://localhost:5173/")))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// Opens the login page at `authorize` and signs in; returns the status of the login POST.
async fn attempt_login(b: &Browser, authorize: &str, username: &str, password: &str) -> u16 {
    let login = b.open(authorize).await;
    b.log_in(&login, username, password).await.status().as_u16()
}

/// A browser whose connections come from another loopback address, straight to the server.
fn browser_at(addr: [u8; 4]) -> Browser {
    Browser::from_address(std::net::IpAddr::from(addr))
}

#[tokio::test]
async fn six_bad_guesses_do_not_lock_out_the_user_but_a_persistent_guesser_is_blocked() {
    let (app, tp) = confidential().await;
    let direct = format!("http://{}", app.direct);
    let authorize = app.authorize_url(&tp, &[]).replace(&app.base, &direct);
    let login = |b: &Browser, password: &'static str| {
        let (b, authorize, username) = (b.clone(), authorize.clone(), tp.username.clone());
        async move { attempt_login(&b, &authorize, &username, password).await }
    };
    let guesser = browser_at([127, 0, 0, 1]);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(login(&guesser, "wrong password").await);
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    // Six bad guesses do not lock the user out: the right password still signs in.
    assert_eq!(login(&guesser, PASSWORD).await, 200, "the consent page");
    // An address that keeps guessing at the account is refused, even the right password.
    for _ in 0..5 {
        assert_eq!(login(&guesser, "wrong password").await, 429);
    }
    assert_eq!(login(&guesser, PASSWORD).await, 429);
    // The user, elsewhere, still signs in; a wrong guess from there is answered 429.
    let user = browser_at([127, 0, 0, 2]);
    assert_eq!(login(&user, "another wrong one").await, 429);
    assert_eq!(login(&user, PASSWORD).await, 200, "the consent page");
}

#[tokio::test]
async fn a_public_client_may_not_introspect_and_revokes_only_its_own_tokens() {
    let app = spawn_app().await;
    let confidential = third_party(&app, ClientType::Confidential).await;
    let public = third_party(&app, ClientType::Public).await;
    let code = get_code(&app, &confidential, &[]).await;
    let (_, t) = app.exchange(&confidential, &code).await;
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    for token in [access, rt] {
        let resp = app
            .http
            .post(app.url("/oauth/introspect"))
            .form(&[("token", token), ("client_id", &public.client_id)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client");
        assert_eq!(
            app.revoke(&public, token).await,
            200,
            "RFC 7009: nothing to say"
        );
    }
    assert_eq!(app.introspect(&confidential, access).await["active"], true);
    assert_eq!(app.introspect(&confidential, rt).await["active"], true);
}

/// Each group commit of rotations is measured (its size and duration), and the database pool
/// is read at every scrape.
#[tokio::test]
async fn metrics_show_rotation_batches_and_the_database_pool() {
    let (app, tp, first) = signed_in().await;
    let rt = first["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(&tp, rt, None).await.0, 200);
    let text = app.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(value("calyx_rotation_batch_size_count"), 1.0);
    assert_eq!(value("calyx_rotation_batch_size_sum"), 1.0);
    assert!(value("calyx_rotation_batch_duration_seconds_sum") > 0.0);
    assert!(value("calyx_db_pool_connections") >= 1.0);
    assert!(value("calyx_db_pool_max_connections") >= value("calyx_db_pool_connections"));
}
