//! The pages people see around the authorization flow: remembered consent (and taking it back
//! on the account page), "Not you?", signing in and out, the branding, scope descriptions on
//! the consent page, accessible errors, and error pages written for people.

use std::collections::BTreeMap;

use calyx_core::model::ClientType;
use calyx_server::manage::ApiPatch;
use calyx_testkit::{location_params, param, Browser, Page, Provisioned, TestServer, PASSWORD};
use serde_json::json;

use crate::authorization_code::third_party;
use crate::spawn_app;

async fn app_and_user() -> (TestServer, Provisioned) {
    let app = spawn_app().await;
    let tp = third_party(&app, ClientType::Confidential).await;
    (app, tp)
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

fn sets_cookie(resp: &reqwest::Response, prefix: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(prefix))
}

#[tokio::test]
async fn an_approval_is_remembered_until_more_is_asked_or_prompt_consent() {
    let (app, tp) = app_and_user().await;
    let b = Browser::new();
    let narrow = app.authorize_url(&tp, &[("scope", "Standard")]);
    b.code(&narrow, &tp.username, PASSWORD).await;

    // Signed in and approved before: straight back with a code, no page.
    let resp = b.http.get(&narrow).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let (_, params) = location_params(&resp);
    let code = param(&params, "code").expect("a code without a consent page");
    let (status, tokens) = app.exchange(&tp, code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "Standard");

    // prompt=consent asks again.
    let page = b
        .open(&app.authorize_url(&tp, &[("scope", "Standard"), ("prompt", "consent")]))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Allow"), "{}", page.html);

    // More than was approved asks again.
    let wider = app.authorize_url(&tp, &[("scope", "Standard StandardEditFinancialData")]);
    let page = b.open(&wider).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(r#"value="approve""#), "{}", page.html);

    // prompt=login asks for the password again even though signed in.
    let page = b
        .open(&app.authorize_url(&tp, &[("scope", "Standard"), ("prompt", "login")]))
        .await;
    assert!(page.is_login(), "{}", page.html);
}

#[tokio::test]
async fn removing_access_on_the_account_page_forgets_the_consent_and_revokes_the_tokens() {
    let (app, tp) = app_and_user().await;
    let b = Browser::new();
    let url = app.authorize_url(&tp, &[]);
    let code = b.code(&url, &tp.username, PASSWORD).await;
    let (_, tokens) = app.exchange(&tp, &code).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    let account = b.open(&app.url("/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.html.contains("Donor App"), "{}", account.html);
    assert!(account.html.contains("CRM API"), "{}", account.html);

    let resp = b
        .http
        .post(app.url("/account/revoke"))
        .form(&[
            ("csrf", account.field("csrf").as_str()),
            ("client_id", tp.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let account = b.open(&app.url("/account")).await;
    assert!(!account.html.contains("Donor App"), "{}", account.html);

    // The refresh token of that sign-in is dead, and the next sign-in asks again.
    let (status, body) = app.refresh(&tp, &refresh, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let page = b.open(&url).await;
    assert!(page.html.contains(r#"value="approve""#), "{}", page.html);

    // Recorded, with the user as actor; no second revoke of nothing.
    let admin = app.admin().await;
    let (_, events) = admin.get("/audit?type=consent.revoked").await;
    assert_eq!(events["items"][0]["actor"], format!("user:{}", tp.user_id));
    let resp = b
        .http
        .post(app.url("/account/revoke"))
        .form(&[
            ("csrf", account.field("csrf").as_str()),
            ("client_id", tp.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn not_you_signs_out_and_asks_for_the_right_account_for_the_same_request() {
    let (app, tp) = app_and_user().await;
    let b = Browser::new();
    let consent = b
        .sign_in(&app.authorize_url(&tp, &[]), &tp.username, PASSWORD)
        .await;
    assert!(consent.html.contains("Not you?"), "{}", consent.html);
    assert!(consent.html.contains(&tp.username));
    let resp = b.decide(&consent, "switch").await;
    assert_eq!(resp.status(), 200);
    let cleared = sets_cookie(&resp, "calyx_session=").expect("the session is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let login = Page::read(resp).await;
    assert!(login.is_login(), "{}", login.html);
    // The same request continues: signing in again reaches the consent page of Donor App.
    let next = b.log_in(&login, &tp.username, PASSWORD).await;
    assert_eq!(next.status(), 200);
    assert!(Page::read(next).await.html.contains("Donor App"));
}

#[tokio::test]
async fn sign_in_goes_only_to_our_own_pages_and_sign_out_ends_the_session() {
    let (app, tp) = app_and_user().await;
    // An open redirect would let a phishing link land anywhere after a real sign-in.
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/console/..//evil",
    ] {
        let resp = Browser::new()
            .sign_in_page(app.issuer(), next, &tp.username, PASSWORD)
            .await
            .0;
        assert_eq!(resp.status(), 303, "{next}");
        assert_eq!(location(&resp), "/account", "{next}");
    }
    let b = Browser::new();
    let (resp, _) = b
        .sign_in_page(app.issuer(), "/account", &tp.username, PASSWORD)
        .await;
    assert_eq!(location(&resp), "/account");
    let account = b.open(&app.url("/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.html.contains("Sign out"));

    // A sign-out needs the form's CSRF token.
    let resp = b
        .http
        .post(app.url("/signout"))
        .form(&[("csrf", "forged-forged-forged-forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(b.open(&app.url("/account")).await.status, 200);

    let resp = b
        .http
        .post(app.url("/signout"))
        .form(&[("csrf", account.field("csrf").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(sets_cookie(&resp, "calyx_session=").is_some());
    let resp = b.http.get(app.url("/account")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/signin"));
    // And the authorization flow asks for the password again.
    assert!(b.open(&app.authorize_url(&tp, &[])).await.is_login());
}

#[tokio::test]
async fn the_consent_page_shows_the_apis_scope_descriptions() {
    let (app, tp) = app_and_user().await;
    app.manager
        .update_api(
            &tp.audience,
            ApiPatch {
                scope_descriptions: Some(BTreeMap::from([(
                    "StandardEditFinancialData".to_owned(),
                    "Change your gift aid and payment details".to_owned(),
                )])),
                ..ApiPatch::default()
            },
        )
        .await
        .unwrap();
    let page = Browser::new()
        .sign_in(&app.authorize_url(&tp, &[]), &tp.username, PASSWORD)
        .await;
    assert!(
        page.html
            .contains("Change your gift aid and payment details"),
        "{}",
        page.html
    );
    // A scope without a description still gets words guessed from its name.
    assert!(page.html.contains("Standard"), "{}", page.html);
}

#[tokio::test]
async fn branding_set_through_the_admin_api_shows_on_every_page() {
    let (app, tp) = app_and_user().await;
    let admin = app.admin().await;
    // Too light for white text: refused with the reason.
    let (status, body) = admin.patch("/branding", json!({"color": "#ffcc00"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("4.5:1"));
    let (status, body) = admin
        .patch(
            "/branding",
            json!({"name": "Acme Giving", "color": "#7a1f5c",
                   "logo_url": "https://cdn.acme.example/logo.svg"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let b = Browser::new();
    let resp = b
        .http
        .get(app.authorize_url(&tp, &[]))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("img-src 'self' https://cdn.acme.example"),
        "{csp}"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("Acme Giving"), "{html}");
    assert!(html.contains(r#"src="https://cdn.acme.example/logo.svg""#));
    let css = b
        .http
        .get(app.url("/assets/brand.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--accent: #7a1f5c"), "{css}");
    for path in ["/signin", "/nothing-here"] {
        let resp = b
            .http
            .get(app.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert!(resp.text().await.unwrap().contains("Acme Giving"), "{path}");
    }
    let (_, events) = admin.get("/audit?type=branding.updated").await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_sign_in_marks_the_fields_invalid_and_says_why() {
    let (app, tp) = app_and_user().await;
    let b = Browser::new();
    let login = b.open(&app.authorize_url(&tp, &[])).await;
    let resp = b.log_in(&login, &tp.username, "wrong password").await;
    assert_eq!(resp.status(), 401);
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"id="signin-error""#), "{html}");
    assert_eq!(
        html.matches(r#"aria-invalid="true" aria-describedby="signin-error""#)
            .count(),
        2,
        "{html}"
    );
}

#[tokio::test]
async fn error_pages_speak_to_people_and_offer_a_way_on() {
    let (app, tp) = app_and_user().await;
    let b = Browser::new();
    for (url, words) in [
        (
            app.url("/authorize?response_type=code&state=s"),
            "does not say which application",
        ),
        (
            app.url("/authorize?response_type=code&state=s&client_id=nobody"),
            "not registered here",
        ),
        (
            app.authorize_url(&tp, &[("redirect_uri", "https://evil.example/cb")]),
            "Donor App did not send you here from an address registered for it",
        ),
    ] {
        let page = b.open(&url).await;
        assert_eq!(page.status, 400, "{url}");
        assert!(page.html.contains(words), "{url}: {}", page.html);
        assert!(page.html.contains(r#"href="/account""#), "{}", page.html);
        // The jargon is kept for developers, out of the message.
        let message = page.html.split("role=\"alert\"").nth(1).unwrap();
        let message = message.split("</p>").next().unwrap();
        assert!(
            !message.contains("client_id") && !message.contains("redirect_uri"),
            "{message}"
        );
    }
}
