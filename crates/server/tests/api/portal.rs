//! The developer portal (`/developers/`) and its integration guide (`/developers/docs`), over
//! HTTP as a browser uses them: an organization's admin registers an application, reads its
//! secret once, grants it scopes within the organization's entitlement, rotates the secret
//! and deletes the application; another organization's admin can see or touch none of it;
//! only org admins get in; every form needs its CSRF token; and the guide's samples carry
//! the application's values, HTML-escaped, never its secret.

use std::collections::BTreeMap;

use calyx_core::model::Role;
use calyx_server::manage::{NewApi, NewUser, ScopeList, OPERATOR_ORG_ID};
use calyx_testkit::{html_text, unique, Browser, Page, TestServer, PASSWORD};

use crate::spawn_app;

/// An organization entitled to `scopes` of a new API `audience` (which defines `defined`);
/// the organization's id.
async fn entitled_org(app: &TestServer, audience: &str, defined: &str, scopes: &str) -> String {
    let m = &app.manager;
    let org = m.create_org(&unique("Org")).await.unwrap();
    api(app, audience, defined).await;
    m.set_entitlement(&org.id, audience, &ScopeList::Words(scopes.into()))
        .await
        .unwrap();
    org.id
}

/// A new API with a description for each scope.
async fn api(app: &TestServer, audience: &str, scopes: &str) -> String {
    let descriptions: BTreeMap<String, String> = scopes
        .split(' ')
        .map(|s| (s.to_owned(), format!("Lets the app {s} things")))
        .collect();
    let api = app
        .manager
        .create_api(NewApi {
            audience: audience.into(),
            name: format!("API {audience}"),
            scopes: scopes.into(),
            scope_descriptions: descriptions,
            ..NewApi::default()
        })
        .await
        .unwrap();
    api.id
}

/// A user of `org_id` with `role` and the kit's password; the login name.
async fn person(app: &TestServer, org_id: &str, role: Option<Role>) -> String {
    let username = unique("dev");
    app.manager
        .create_user(NewUser {
            org_id: org_id.into(),
            username: Some(username.clone()),
            password: Some(PASSWORD.into()),
            role,
            ..NewUser::default()
        })
        .await
        .unwrap();
    username
}

/// A signed-in browser and the CSRF token its forms repeat.
struct Dev {
    browser: Browser,
    base: String,
    csrf: String,
}

impl Dev {
    /// Signs `username` in through `/signin`.
    async fn sign_in(app: &TestServer, username: &str) -> Dev {
        let browser = Browser::new();
        let base = app.issuer().to_owned();
        let (resp, csrf) = browser
            .sign_in_page(&base, "/developers/", username, PASSWORD)
            .await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        Dev {
            browser,
            base,
            csrf,
        }
    }

    async fn open(&self, path: &str) -> Page {
        self.browser.open(&format!("{}{path}", self.base)).await
    }

    /// Posts a page form: `fields` after the CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    /// Posts exactly `fields`.
    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .browser
            .http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        Page::read(resp).await
    }

    /// Registers a confidential client-credentials application: its id and secret.
    async fn register(&self, name: &str) -> (String, String) {
        let page = self
            .post(
                "/developers/apps/new",
                &[
                    ("name", name),
                    ("type", "confidential"),
                    ("grant_types", "client_credentials"),
                ],
            )
            .await;
        assert_eq!(page.status, 201, "{}", page.html);
        assert!(page.html.contains("it will not be shown again"));
        (
            between(&page.html, "<code id=\"client-id\">", "<"),
            between(&page.html, "<code id=\"client-secret\">", "<"),
        )
    }
}

/// The text of `html` after `start`, up to `end`.
fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in: {html}"))
        + start.len();
    html[from..].split(end).next().unwrap().to_owned()
}

/// The status of a client-credentials request.
async fn token_status(app: &TestServer, id: &str, secret: &str, audience: &str) -> u16 {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("audience", audience),
    ];
    app.post_token_form(&form).await.status().as_u16()
}

/// The scopes `client_id` is granted on its APIs, as `audience: scopes` lines.
async fn grants(app: &TestServer, client_id: &str) -> Vec<String> {
    match app.manager.list_grants(client_id).await {
        Ok(g) => g
            .into_iter()
            .map(|g| format!("{}: {}", g.audience, g.scopes.join(" ")))
            .collect(),
        Err(_) => vec!["(no client)".into()],
    }
}

#[tokio::test]
async fn an_org_admin_registers_grants_rotates_and_deletes_an_application() {
    let app = spawn_app().await;
    let aud = "https://orders.portal.test/";
    let org = entitled_org(&app, aud, "read write admin", "read write").await;
    let api_id = app.manager.api(aud).await.unwrap().id;
    let dev = Dev::sign_in(&app, &person(&app, &org, Some(Role::OrgAdmin)).await).await;

    // The list, and the form with its fields.
    let list = dev.open("/developers/").await;
    assert_eq!(list.status, 200);
    assert!(list.html.contains("href=\"/developers/apps/new\""));
    let form = dev.open("/developers/apps/new").await;
    for field in [
        "name=\"name\"",
        "name=\"description\"",
        "name=\"website_uri\"",
        "name=\"privacy_policy_uri\"",
        "name=\"tos_uri\"",
        "name=\"redirect_uris\"",
        "value=\"confidential\"",
        "value=\"public\"",
        "value=\"client_credentials\"",
        "value=\"authorization_code\"",
        "value=\"refresh_token\"",
    ] {
        assert!(form.html.contains(field), "{field}");
    }

    // A bad field comes back marked, with the values kept.
    let bad = dev
        .post(
            "/developers/apps/new",
            &[
                ("name", "Kept <name>"),
                ("website_uri", "ftp://nope.example"),
                ("type", "confidential"),
                ("grant_types", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.html.contains("role=\"alert\" id=\"website-uri-error\""));
    assert!(bad
        .html
        .contains("aria-invalid=\"true\" aria-describedby=\"website-uri-error\""));
    assert!(bad.html.contains("value=\"Kept &#60;name&#62;\""));
    let public_cc = dev
        .post(
            "/developers/apps/new",
            &[
                ("name", "Public"),
                ("type", "public"),
                ("grant_types", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(public_cc.status, 400);
    assert!(public_cc.html.contains("id=\"grant-types-error\""));
    // Nothing was registered by either.
    let none = app
        .manager
        .list_clients(Some(&org), None, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty());

    // Registered: the secret once, and it authenticates (no grant yet, so no token).
    let (id, secret) = dev.register("Orders backend").await;
    assert!(secret.len() >= 20, "{secret}");
    let page = dev.open(&format!("/developers/apps/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains(&secret), "the secret is shown once");
    assert!(dev.open("/developers/").await.html.contains(&id));
    assert_ne!(token_status(&app, &id, &secret, aud).await, 200);

    // A grant within the entitlement works; beyond it is refused and changes nothing.
    let grants_path = format!("/developers/apps/{id}/grants");
    let saved = dev
        .post(&grants_path, &[("api_id", &api_id), ("scope", "read")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    assert_eq!(grants(&app, &id).await, vec![format!("{aud}: read")]);
    assert_eq!(token_status(&app, &id, &secret, aud).await, 200);
    let beyond = dev
        .post(
            &grants_path,
            &[("api_id", &api_id), ("scope", "read"), ("scope", "admin")],
        )
        .await;
    assert_eq!(beyond.status, 400, "{}", beyond.html);
    assert_eq!(grants(&app, &id).await, vec![format!("{aud}: read")]);
    let page = dev.open(&format!("/developers/apps/{id}")).await;
    assert!(page.html.contains("name=\"scope\" value=\"read\" checked"));
    assert!(page.html.contains("name=\"scope\" value=\"write\">"));
    assert!(
        !page.html.contains("value=\"admin\""),
        "only entitled scopes"
    );

    // Rotation with no grace: the old secret stops at once.
    let rotated = dev
        .post(&format!("/developers/apps/{id}/rotate"), &[("grace", "0")])
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.html);
    let second = between(&rotated.html, "<code id=\"client-secret\">", "<");
    assert_ne!(second, secret);
    assert_eq!(token_status(&app, &id, &secret, aud).await, 401);
    assert_eq!(token_status(&app, &id, &second, aud).await, 200);
    // With an hour's grace, both work.
    let rotated = dev
        .post(
            &format!("/developers/apps/{id}/rotate"),
            &[("grace", "3600")],
        )
        .await;
    let third = between(&rotated.html, "<code id=\"client-secret\">", "<");
    assert_eq!(token_status(&app, &id, &second, aud).await, 200);
    assert_eq!(token_status(&app, &id, &third, aud).await, 200);

    // Delete needs the confirmation.
    let delete = format!("/developers/apps/{id}/delete");
    assert_eq!(dev.post(&delete, &[]).await.status, 400);
    assert_eq!(token_status(&app, &id, &third, aud).await, 200);
    let deleted = dev.post(&delete, &[("confirm", "yes")]).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(
        dev.open(&format!("/developers/apps/{id}")).await.status,
        404
    );
    assert_eq!(token_status(&app, &id, &third, aud).await, 401);
}

#[tokio::test]
async fn another_organization_sees_and_touches_nothing() {
    let app = spawn_app().await;
    let aud_a = "https://a-only.portal.test/";
    let aud_b = "https://b-only.portal.test/";
    let org_a = entitled_org(&app, aud_a, "read write", "read write").await;
    let org_b = entitled_org(&app, aud_b, "read", "read").await;
    let api_a = app.manager.api(aud_a).await.unwrap().id;
    let alice = Dev::sign_in(&app, &person(&app, &org_a, Some(Role::OrgAdmin)).await).await;
    let bob = Dev::sign_in(&app, &person(&app, &org_b, Some(Role::OrgAdmin)).await).await;
    let (id, secret) = alice.register("Alice's app").await;
    alice
        .post(
            &format!("/developers/apps/{id}/grants"),
            &[("api_id", &api_a), ("scope", "read")],
        )
        .await;
    let before = grants(&app, &id).await;

    assert_eq!(
        bob.open(&format!("/developers/apps/{id}/edit"))
            .await
            .status,
        404
    );
    let page = bob.open(&format!("/developers/apps/{id}")).await;
    assert_eq!(page.status, 404);
    // The same page as for an id nobody has.
    let missing = bob.open("/developers/apps/no-such-app").await;
    assert_eq!(
        page.html.replace(&id, "X"),
        missing.html.replace("no-such-app", "X")
    );
    let posts: [(&str, &[(&str, &str)]); 4] = [
        (
            "edit",
            &[
                ("name", "Bob's now"),
                ("type", "confidential"),
                ("grant_types", "client_credentials"),
            ],
        ),
        ("grants", &[("api_id", &api_a), ("scope", "read write")]),
        ("rotate", &[("grace", "0")]),
        ("delete", &[("confirm", "yes")]),
    ];
    for (action, fields) in posts {
        let resp = bob
            .post(&format!("/developers/apps/{id}/{action}"), fields)
            .await;
        assert_eq!(resp.status, 404, "{action}: {}", resp.html);
    }
    assert_eq!(grants(&app, &id).await, before);
    assert_eq!(token_status(&app, &id, &secret, aud_a).await, 200);

    let list = bob.open("/developers/").await;
    assert!(!list.html.contains(&id));
    let docs = bob.open(&format!("/developers/docs?app={id}")).await;
    assert_eq!(docs.status, 200);
    assert!(docs.html.contains(aud_b));
    assert!(!docs.html.contains(aud_a), "A's entitled API");
    assert!(!docs.html.contains(&id), "A's client id");
    assert!(docs.html.contains("YOUR_CLIENT_ID"));
    // Alice's own guide names her API and her application.
    let docs = alice.open("/developers/docs").await;
    assert!(docs.html.contains(aud_a) && !docs.html.contains(aud_b));
    assert!(docs
        .html
        .contains(&format!("<code id=\"sample-client-id\">{id}</code>")));
}

#[tokio::test]
async fn only_org_admins_get_in_and_every_form_needs_its_csrf_token() {
    let app = spawn_app().await;
    let aud = "https://roles.portal.test/";
    let org = entitled_org(&app, aud, "read", "read").await;

    // Nobody signed in: to the sign-in page, coming back here.
    let resp = app.get("/developers/").await;
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/signin?next=%2Fdevelopers%2F"), "{to}");
    assert_eq!(app.get("/developers/apps/new").await.status(), 303);

    // A plain user and an operator are not org admins.
    let plain = Dev::sign_in(&app, &person(&app, &org, None).await).await;
    assert_eq!(plain.open("/developers/").await.status, 403);
    assert_eq!(plain.open("/developers/apps/new").await.status, 403);
    app.manager.ensure_operator_org().await.unwrap();
    let operator = Dev::sign_in(
        &app,
        &person(&app, OPERATOR_ORG_ID, Some(Role::Operator)).await,
    )
    .await;
    assert_eq!(operator.open("/developers/").await.status, 403);

    // Without the CSRF token, nothing happens.
    let dev = Dev::sign_in(&app, &person(&app, &org, Some(Role::OrgAdmin)).await).await;
    let (id, secret) = dev.register("CSRF").await;
    let forged = dev
        .post_raw(
            "/developers/apps/new",
            &[
                ("name", "Forged"),
                ("type", "confidential"),
                ("grant_types", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(forged.status, 400);
    let wrong = dev
        .post_raw(
            &format!("/developers/apps/{id}/rotate"),
            &[("csrf", "not-the-cookie-value-at-all"), ("grace", "0")],
        )
        .await;
    assert_eq!(wrong.status, 400);
    let deleted = dev
        .post_raw(
            &format!("/developers/apps/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(deleted.status, 400);
    let clients = app
        .manager
        .list_clients(Some(&org), None, 10)
        .await
        .unwrap();
    assert_eq!(
        clients.items.len(),
        1,
        "only the one registered with the token"
    );
    let api_id = app.manager.api(aud).await.unwrap().id;
    app.manager
        .set_app_grant(&org, &id, &api_id, "read")
        .await
        .unwrap();
    assert_eq!(token_status(&app, &id, &secret, aud).await, 200);
}

#[tokio::test]
async fn the_guide_fills_in_the_application_escaped_and_refuses_unsafe_values() {
    let app = spawn_app().await;
    let aud = "https://esc.portal.test/?a=1&b=<x>";
    let org = entitled_org(&app, aud, "read write", "read write").await;
    let quoted = "https://quote.portal.test/it's";
    api(&app, quoted, "read").await;
    app.manager
        .set_entitlement(&org, quoted, &ScopeList::Words("read".into()))
        .await
        .unwrap();
    let api_id = app.manager.api(aud).await.unwrap().id;
    let quoted_id = app.manager.api(quoted).await.unwrap().id;

    // Anyone: the endpoints, the APIs and their scopes, placeholders, no secret.
    let public = Page::read(app.get("/developers/docs").await).await;
    assert_eq!(public.status, 200);
    let issuer = app.issuer();
    for text in [
        format!("{issuer}/oauth/token"),
        format!("{issuer}/authorize"),
        format!("{issuer}/.well-known/jwks.json"),
        "Lets the app write things".to_owned(),
        "86400 seconds (1 day)".to_owned(),
        "YOUR_CLIENT_ID".to_owned(),
        "CALYX_CLIENT_SECRET".to_owned(),
    ] {
        assert!(public.html.contains(&text), "{text}");
    }
    assert!(!public.html.contains("urn:calyx:admin"));
    for lang in ["curl", "python", "node", "java", "go", "csharp"] {
        assert!(
            public.html.contains(&format!(
                "<pre tabindex=\"0\"><code data-sample=\"{lang}\">"
            )),
            "{lang}"
        );
    }

    let dev = Dev::sign_in(&app, &person(&app, &org, Some(Role::OrgAdmin)).await).await;
    let (id, secret) = dev.register("Escaped").await;
    dev.post(
        &format!("/developers/apps/{id}/grants"),
        &[("api_id", &api_id), ("scope", "read"), ("scope", "write")],
    )
    .await;
    let docs = dev.open(&format!("/developers/docs?app={id}")).await;
    assert_eq!(docs.status, 200);
    assert!(!docs.html.contains(&secret));
    let curl = between(&docs.html, "<code data-sample=\"curl\">", "</code>");
    assert!(
        curl.contains("audience=https://esc.portal.test/?a=1&#38;b=&#60;x&#62;"),
        "{curl}"
    );
    assert!(!curl.contains("<x>") && !curl.contains("&b="), "{curl}");
    let curl = html_text(&curl);
    assert!(curl.contains(&format!("'audience={aud}'")), "{curl}");
    assert!(curl.contains(&format!("'client_id={id}'")), "{curl}");
    assert!(curl.contains("'scope=read write'"), "{curl}");
    let python = html_text(&between(
        &docs.html,
        "<code data-sample=\"python\">",
        "</code>",
    ));
    assert!(
        python.contains(&format!("\"audience\": \"{aud}\"")),
        "{python}"
    );

    // An application granted only an API whose audience would break the literals: the
    // placeholder, and why.
    let (other, _) = dev.register("Quoted").await;
    dev.post(
        &format!("/developers/apps/{other}/grants"),
        &[("api_id", &quoted_id), ("scope", "read")],
    )
    .await;
    let docs = dev.open(&format!("/developers/docs?app={other}")).await;
    let curl = html_text(&between(
        &docs.html,
        "<code data-sample=\"curl\">",
        "</code>",
    ));
    assert!(curl.contains("'audience=YOUR_API_AUDIENCE'"), "{curl}");
    assert!(curl.contains(&format!("'client_id={other}'")), "{curl}");
    assert!(docs.html.contains("would break the samples"));
}

/// The registration changes (name, links, redirect URIs, grant types) but never the type, and
/// an org admin cannot disable the application by adding a field to the form.
#[tokio::test]
async fn an_org_admin_changes_the_registration_but_not_the_type_or_the_disabled_flag() {
    let app = spawn_app().await;
    let aud = "https://edit.portal.test/";
    let org = entitled_org(&app, aud, "read", "read").await;
    let dev = Dev::sign_in(&app, &person(&app, &org, Some(Role::OrgAdmin)).await).await;
    let (id, _) = dev.register("Before").await;
    let form = dev.open(&format!("/developers/apps/{id}/edit")).await;
    assert_eq!(form.status, 200);
    assert!(form.html.contains("value=\"Before\""), "{}", form.html);

    let page = dev
        .post(
            &format!("/developers/apps/{id}/edit"),
            &[
                ("name", "After"),
                ("website_uri", "https://after.example/"),
                (
                    "redirect_uris",
                    "https://after.example/cb\nhttps://after.example/cb2",
                ),
                ("type", "confidential"),
                ("grant_types", "client_credentials"),
                ("grant_types", "authorization_code"),
                ("disabled", "true"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("After is updated."));
    let c = app.manager.client(&id).await.unwrap();
    assert_eq!(c.name, "After");
    assert_eq!(c.website_uri.as_deref(), Some("https://after.example/"));
    assert_eq!(c.redirect_uris.len(), 2);
    assert!(!c.disabled, "the provider's flag, not the admin's");
    let (_, events) = app
        .admin()
        .await
        .get(&format!("/audit?client_id={id}&type=client.updated"))
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");

    // The type is fixed; a bad URI names its field; nothing changes on refusal.
    for (fields, field) in [
        (
            vec![
                ("name", "X"),
                ("type", "public"),
                ("grant_types", "authorization_code"),
                ("redirect_uris", "https://after.example/cb"),
            ],
            "type",
        ),
        (
            vec![
                ("name", "X"),
                ("type", "confidential"),
                ("grant_types", "client_credentials"),
                ("website_uri", "javascript:alert(1)"),
            ],
            "website_uri",
        ),
    ] {
        let page = dev
            .post(&format!("/developers/apps/{id}/edit"), &fields)
            .await;
        assert_eq!(page.status, 400, "{}", page.html);
        assert!(
            page.html.contains(&format!(
                "aria-describedby=\"{}-error",
                field.replace('_', "-")
            )) || field == "type",
            "{}",
            page.html
        );
        assert_eq!(app.manager.client(&id).await.unwrap().name, "After");
    }
    assert_eq!(
        app.manager.client(&id).await.unwrap().client_type,
        calyx_core::model::ClientType::Confidential
    );
}
