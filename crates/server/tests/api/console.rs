//! The operator console (`/console/`), driven as a browser drives it: sign in, post its
//! forms with their CSRF token, follow its 303s. Who may open it, what its changes do to
//! the rest of the server, that a new secret is shown once, and that the audit log names the
//! operator who made each change.

use calyx_core::audit::AuditFilter;
use calyx_core::model::{Role, User};
use calyx_server::manage::{NewUser, OPERATOR_ORG_ID};
use calyx_testkit::{Browser, TestServer};

use crate::spawn_app;

const PASSWORD: &str = "console-password-1";

/// A user who signs in with [`PASSWORD`]: of `org_id`, with `role`.
async fn person(app: &TestServer, org_id: &str, username: &str, role: Option<Role>) -> User {
    app.manager
        .create_user(NewUser {
            org_id: org_id.into(),
            username: Some(username.into()),
            password: Some(PASSWORD.into()),
            role,
            ..NewUser::default()
        })
        .await
        .unwrap()
}

/// An operator of `app`.
async fn operator(app: &TestServer) -> User {
    app.manager.ensure_operator_org().await.unwrap();
    person(app, OPERATOR_ORG_ID, "ops", Some(Role::Operator)).await
}

/// A browser signed in to `app` as `username`, with the CSRF token its forms repeat.
struct Session<'a> {
    app: &'a TestServer,
    browser: Browser,
    csrf: String,
}

impl<'a> Session<'a> {
    async fn sign_in(app: &'a TestServer, username: &str) -> Session<'a> {
        let browser = Browser::new();
        let (resp, csrf) = browser
            .sign_in_page(app.issuer(), "/console/", username, PASSWORD)
            .await;
        assert_eq!(resp.status(), 303, "signing in");
        Session { app, browser, csrf }
    }

    /// `GET path`: the status and the HTML.
    async fn get(&self, path: &str) -> (u16, String) {
        let page = self.browser.open(&self.app.url(path)).await;
        (page.status, page.html)
    }

    /// Posts a console form with its CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    /// Posts exactly `fields`.
    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.browser
            .http
            .post(self.app.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form that must answer 303: where it leads.
    async fn post_and_follow(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let resp = self.post(path, fields).await;
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = resp.text().await.unwrap();
        assert_eq!(status, 303, "{path}: {body}");
        location.expect("a Location")
    }
}

/// The text of the first `<code>` inside the `.secret` block of `html`.
fn shown_secret(html: &str) -> String {
    let block = &html[html.find("class=\"secret\"").expect("a .secret block")..];
    let start = block.find("<code>").unwrap() + "<code>".len();
    block[start..].split("</code>").next().unwrap().to_owned()
}

/// The last path segment of a console Location.
fn id_in(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_sets_up_an_organization_its_api_and_client_and_the_audit_log_names_them() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let s = Session::sign_in(&app, "ops").await;

    let (status, html) = s.get("/console/").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"<a href="/console/" aria-current="page">Overview</a>"#));
    assert!(html.contains(r#"<a href="/console/orgs">Organizations</a>"#));

    // An organization.
    let to = s
        .post_and_follow("/console/orgs", &[("name", "Acme Corp")])
        .await;
    assert!(to.starts_with("/console/orgs/org_"), "{to}");
    let org_id = id_in(&to);
    let (status, html) = s.get(&to).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Acme Corp</h1>"));

    // An API with described scopes, typed one `scope: description` per line.
    let to = s
        .post_and_follow(
            "/console/apis",
            &[
                ("name", "Orders"),
                ("audience", "https://orders.example"),
                (
                    "scopes",
                    "read:orders: Read your orders\nwrite: Change orders",
                ),
            ],
        )
        .await;
    let api_id = id_in(&to);
    let api = app.manager.api(&api_id).await.unwrap();
    assert_eq!(api.scopes.to_string(), "read:orders write");
    assert_eq!(api.scope_descriptions["read:orders"], "Read your orders");
    let (_, html) = s.get(&to).await;
    assert!(html.contains("Change orders"));

    // The organization is entitled to part of it, and gets an admin.
    s.post_and_follow(
        &format!("/console/orgs/{org_id}/entitlements"),
        &[("api_id", &api_id), ("scopes", "read:orders")],
    )
    .await;
    let entitled = app.manager.entitlements(&org_id).await.unwrap();
    assert_eq!(entitled.len(), 1);
    assert_eq!(entitled[0].scopes, ["read:orders"]);
    s.post_and_follow(
        &format!("/console/orgs/{org_id}/admins"),
        &[
            ("username", "acme-admin"),
            ("email", "admin@acme.example"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let users = app
        .manager
        .list_users(Some(&org_id), None, 10)
        .await
        .unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(users.items[0].role, Some("org_admin"));
    let (_, html) = s.get(&format!("/console/orgs/{org_id}")).await;
    assert!(html.contains("acme-admin") && html.contains("<code>read:orders</code>"));

    // A client: its secret is on the answer, and nowhere after.
    let resp = s
        .post(
            "/console/clients",
            &[
                ("org_id", &org_id),
                ("name", "Acme backend"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("it will not be shown again"), "{html}");
    let secret = shown_secret(&html);
    assert!(secret.len() >= 20, "{secret}");
    let clients = app
        .manager
        .list_clients(Some(&org_id), None, 10)
        .await
        .unwrap();
    let client_id = clients.items[0].id.clone();
    s.post_and_follow(
        &format!("/console/clients/{client_id}/grants"),
        &[
            ("api_id", &api_id),
            ("scopes", "read:orders"),
            ("default", "yes"),
        ],
    )
    .await;
    for page in [
        format!("/console/clients/{client_id}"),
        "/console/clients".to_owned(),
        format!("/console/orgs/{org_id}"),
        "/console/audit".to_owned(),
    ] {
        let (status, html) = s.get(&page).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            !html.contains(&secret),
            "the secret is shown again on {page}"
        );
    }

    // It works, until it is disabled from the console.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let resp = app.post_token_form(&form).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let to = s
        .post_and_follow(&format!("/console/clients/{client_id}/disable"), &[])
        .await;
    assert_eq!(to, format!("/console/clients/{client_id}"));
    let (_, html) = s.get(&to).await;
    assert!(html.contains(r#"<span class="badge off">Disabled</span>"#));
    let resp = app.post_token_form(&form).await;
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Every change is the operator's, from the browser's address.
    let actor = format!("user:{}", ops.id);
    let events = app
        .manager
        .list_audit(&AuditFilter::default(), None, 200)
        .await
        .unwrap()
        .items;
    for kind in [
        "org.created",
        "api.created",
        "org.entitlement_set",
        "user.created",
        "client.created",
        "grant.created",
        "client.disabled",
    ] {
        let e = events
            .iter()
            .rev()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} event"));
        assert_eq!(e.actor, actor, "{kind}");
        assert!(e.address.is_some(), "{kind} has the operator's address");
    }
    let (status, html) = s
        .get(&format!(
            "/console/audit?type=client.disabled&client={client_id}"
        ))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("<code>{actor}</code>")), "{html}");
}

#[tokio::test]
async fn only_operators_may_open_the_console_and_strangers_are_sent_to_sign_in() {
    let app = spawn_app().await;
    let resp = Browser::new()
        .http
        .get(app.url("/console/orgs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        "/signin?next=%2Fconsole%2Forgs"
    );

    let org = app.manager.create_org("Customer").await.unwrap();
    person(&app, &org.id, "dev", Some(Role::OrgAdmin)).await;
    person(&app, &org.id, "plain", None).await;
    for who in ["dev", "plain"] {
        let s = Session::sign_in(&app, who).await;
        let (status, html) = s.get("/console/").await;
        assert_eq!(status, 403, "{who}");
        assert!(html.contains("Not allowed"), "{html}");
        let resp = s.post("/console/orgs", &[("name", "By a stranger")]).await;
        assert_eq!(resp.status(), 403, "{who} posting");
    }
    let orgs = app.manager.list_orgs(None, 50).await.unwrap().items;
    assert!(orgs.iter().all(|o| o.name != "By a stranger"));
}

#[tokio::test]
async fn a_console_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    operator(&app).await;
    let s = Session::sign_in(&app, "ops").await;

    let resp = s.post_raw("/console/orgs", &[("name", "Forged")]).await;
    assert_eq!(resp.status(), 400);
    let resp = s
        .post_raw(
            "/console/orgs",
            &[("csrf", "not-the-token"), ("name", "Forged")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let orgs = app.manager.list_orgs(None, 50).await.unwrap().items;
    assert!(orgs.iter().all(|o| o.name != "Forged"));
}

#[tokio::test]
async fn a_refused_form_comes_back_with_its_message_tied_to_the_field_at_fault() {
    let app = spawn_app().await;
    operator(&app).await;
    let s = Session::sign_in(&app, "ops").await;

    // Too light a colour: the manager's rule, shown by the colour field.
    let resp = s
        .post(
            "/console/branding",
            &[("name", "Acme"), ("logo_url", ""), ("color", "#ffcc00")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(r#"role="alert" id="branding-error""#),
        "{html}"
    );
    assert!(html.contains("contrast"));
    assert!(html.contains(
        r##"name="color" type="text" required spellcheck="false" value="#ffcc00" aria-invalid="true" aria-describedby="branding-error""##
    ), "{html}");
    assert_eq!(
        app.manager.branding().await.unwrap().color,
        calyx_server::manage::Branding::default().color
    );

    // A good one is saved, and every page shows it.
    let to = s
        .post_and_follow(
            "/console/branding",
            &[("name", "Acme"), ("logo_url", ""), ("color", "#0b5394")],
        )
        .await;
    let (_, html) = s.get(&to).await;
    assert!(html.contains("The branding was saved.") && html.contains("<span>Acme</span>"));

    // An unknown client is a 404 page; deleting without the confirmation is refused.
    let (status, _) = s.get("/console/clients/no-such-client").await;
    assert_eq!(status, 404);
    let org = app.manager.create_org("Holder").await.unwrap();
    let (client, _) = app
        .manager
        .create_client(calyx_server::manage::NewClient {
            org_id: org.id.clone(),
            name: "Keeper".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let resp = s
        .post(&format!("/console/clients/{}/delete", client.id), &[])
        .await;
    assert_eq!(resp.status(), 400);
    assert!(app.manager.client(&client.id).await.is_ok());
    s.post_and_follow(
        &format!("/console/clients/{}/delete", client.id),
        &[("confirm", "yes")],
    )
    .await;
    assert!(app.manager.client(&client.id).await.is_err());
}

#[tokio::test]
async fn rotating_a_secret_from_the_console_shows_the_new_one_once_and_keeps_the_old_for_the_grace()
{
    let app = spawn_app().await;
    operator(&app).await;
    let c = app.fixture().build().await;
    let s = Session::sign_in(&app, "ops").await;

    let resp = s
        .post(
            &format!("/console/clients/{}/rotate-secret", c.client_id),
            &[("grace", "3600")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let new = shown_secret(&resp.text().await.unwrap());
    for secret in [new.as_str(), c.secret()] {
        let resp = app.post_token_form(&c.client_credentials(secret)).await;
        assert_eq!(resp.status(), 200);
    }
    let (_, html) = s.get(&format!("/console/clients/{}", c.client_id)).await;
    assert!(!html.contains(&new));
    assert!(html.contains("Still accepted until"));
}

#[tokio::test]
async fn every_console_section_renders_and_its_actions_take_effect() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let c = app.fixture().build().await;
    let client = app.manager.client(&c.client_id).await.unwrap();
    let org_id = client.org_id.clone();
    let s = Session::sign_in(&app, "ops").await;

    for (path, current) in [
        ("/console/", "Overview"),
        ("/console/orgs", "Organizations"),
        ("/console/apis", "APIs"),
        ("/console/clients", "Clients"),
        ("/console/users", "Users"),
        ("/console/keys", "Keys"),
        ("/console/webhooks", "Webhooks"),
        ("/console/audit", "Audit log"),
        ("/console/branding", "Branding"),
    ] {
        let (status, html) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(
            html.contains(&format!(r#"aria-current="page">{current}</a>"#)),
            "{path} marks {current} as current"
        );
        assert_eq!(html.matches("<h1>").count(), 1, "{path} has one h1");
    }
    let (status, _) = s.get(&format!("/console/orgs/{org_id}")).await;
    assert_eq!(status, 200);
    let (status, _) = s.get("/console/orgs/org_nope").await;
    assert_eq!(status, 404);
    let (status, html) = s.get(&format!("/console/clients/{}", c.client_id)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Tokens issued per hour"));

    // Users: filtered by organization, and deleted.
    let dev = person(&app, &org_id, "dev", Some(Role::OrgAdmin)).await;
    let (_, html) = s.get(&format!("/console/users?org={org_id}")).await;
    assert!(html.contains(&dev.id) && !html.contains(&ops.id));
    s.post_and_follow(
        &format!("/console/users/{}/delete", dev.id),
        &[("org", &org_id)],
    )
    .await;
    assert!(app.manager.user(&dev.id).await.is_err());
    let resp = s
        .post(&format!("/console/users/{}/delete", ops.id), &[])
        .await;
    assert_eq!(resp.status(), 400, "an operator cannot delete themself");

    // Keys: a rotation makes the next key current.
    let next = |keys: &[calyx_server::manage::KeyInfo]| {
        keys.iter()
            .find(|k| k.alg == "ES256" && k.state == "next")
            .map(|k| k.kid.clone())
    };
    let before = next(&app.manager.list_keys().await.unwrap()).unwrap();
    let to = s
        .post_and_follow("/console/keys/rotate", &[("alg", "ES256")])
        .await;
    let (_, html) = s.get(&to).await;
    assert!(html.contains("The ES256 key was rotated"));
    let keys = app.manager.list_keys().await.unwrap();
    assert!(keys.iter().any(|k| k.kid == before && k.state == "current"));
    let next_kid = next(&keys).unwrap();
    s.post_and_follow(&format!("/console/keys/{next_kid}/retire"), &[])
        .await;
    let keys = app.manager.list_keys().await.unwrap();
    assert!(keys
        .iter()
        .any(|k| k.kid == next_kid && k.state == "retired"));

    // Webhooks: the secret once, the deliveries, deletion.
    let resp = s
        .post(
            "/console/webhooks",
            &[
                ("url", "https://hooks.example/calyx"),
                ("events", "client.*"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let secret = shown_secret(&html);
    let hook = app.manager.list_webhooks(None, 10).await.unwrap().items[0].clone();
    s.post_and_follow(&format!("/console/clients/{}/disable", c.client_id), &[])
        .await;
    let (status, html) = s.get(&format!("/console/webhooks/{}", hook.id)).await;
    assert_eq!(status, 200);
    assert!(!html.contains(&secret));
    assert!(
        html.contains("<h2>Deliveries</h2>") && html.contains("<td>"),
        "{html}"
    );
    s.post_and_follow(&format!("/console/webhooks/{}/delete", hook.id), &[])
        .await;
    assert!(app.manager.webhook(&hook.id).await.is_err());
    let resp = s
        .post(
            "/console/webhooks",
            &[
                ("url", "http://hooks.example/calyx"),
                ("events", "client.*"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains(r#"aria-describedby="webhook-error""#));

    // Clients: enable, revoke, grants removed; APIs described and deleted.
    s.post_and_follow(&format!("/console/clients/{}/enable", c.client_id), &[])
        .await;
    assert!(!app.manager.client(&c.client_id).await.unwrap().disabled);
    let to = s
        .post_and_follow(
            &format!("/console/clients/{}/revoke-tokens", c.client_id),
            &[],
        )
        .await;
    let (_, html) = s.get(&to).await;
    assert!(html.contains("Revoked 0 sign-in(s)"), "{html}");
    let api = app.manager.api(&c.audience).await.unwrap();
    s.post_and_follow(
        &format!("/console/clients/{}/grants/{}/delete", c.client_id, api.id),
        &[],
    )
    .await;
    assert!(app
        .manager
        .list_grants(&c.client_id)
        .await
        .unwrap()
        .is_empty());
    let scope = api.scopes.iter().next().unwrap().to_owned();
    s.post_and_follow(
        &format!("/console/apis/{}/descriptions", api.id),
        &[(&format!("d.{scope}"), "Does a thing")],
    )
    .await;
    let api = app.manager.api(&api.id).await.unwrap();
    assert_eq!(api.scope_descriptions[&scope], "Does a thing");
    s.post_and_follow(
        &format!("/console/apis/{}/delete", api.id),
        &[("confirm", "yes")],
    )
    .await;
    assert!(app.manager.api(&api.id).await.is_err());

    // An invalid audit filter is the filter's fault.
    let (status, html) = s.get("/console/audit?type=nonsense").await;
    assert_eq!(status, 400);
    assert!(html.contains(r#"aria-describedby="filter-error""#));
}

/// The kind and actor of every audit event (up to a page).
async fn audited(app: &TestServer) -> Vec<(String, String)> {
    app.manager
        .list_audit(&AuditFilter::default(), None, 200)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.kind, e.actor))
        .collect()
}

/// Asserts that a `kind` event was recorded by `actor`.
async fn assert_audited(app: &TestServer, kind: &str, actor: &str) {
    let events = audited(app).await;
    assert!(
        events.iter().any(|(k, a)| k == kind && a == actor),
        "no {kind} event by {actor}: {events:?}"
    );
}

/// Accessibility basics of a console page: one h1, every visible field labelled, every
/// column header scoped.
fn assert_accessible(page: &str, html: &str) {
    assert_eq!(html.matches("<h1>").count(), 1, "{page} has one h1");
    for th in html.split("<th").skip(1).filter(|t| !t.starts_with("ead")) {
        assert!(th.starts_with(" scope="), "{page}: a th without scope");
    }
    for tag in ["<input ", "<select ", "<textarea "] {
        for field in html.split(tag).skip(1) {
            let field = field.split('>').next().unwrap();
            if field.contains(r#"type="hidden""#) {
                continue;
            }
            let id = field
                .split(r#"id=""#)
                .nth(1)
                .unwrap_or_else(|| panic!("{page}: a field without id: {field}"))
                .split('"')
                .next()
                .unwrap();
            assert!(
                html.contains(&format!(r#"<label for="{id}""#))
                    || html.contains(&format!(r#"<label class="check" for="{id}""#)),
                "{page}: field {id} has no label"
            );
        }
    }
}

#[tokio::test]
async fn an_operator_renames_and_deletes_organizations_but_not_one_in_use_nor_the_operators() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let c = app.fixture().build().await;
    let s = Session::sign_in(&app, "ops").await;

    let to = s
        .post_and_follow(
            &format!("/console/orgs/{}/rename", c.org_id),
            &[("name", "Renamed Co")],
        )
        .await;
    assert_eq!(to, format!("/console/orgs/{}", c.org_id));
    assert_eq!(app.manager.org(&c.org_id).await.unwrap().name, "Renamed Co");
    assert_audited(&app, "org.updated", &actor).await;
    let (status, html) = s.get(&to).await;
    assert_eq!(status, 200);
    assert_accessible(&to, &html);

    // A refused name comes back with its message on the field.
    let resp = s
        .post(
            &format!("/console/orgs/{}/rename", c.org_id),
            &[("name", " ")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"role="alert" id="rename-error""#), "{html}");
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="rename-error""#));

    // Not without the box ticked; not while it has a client; never the operators'.
    let path = format!("/console/orgs/{}/delete", c.org_id);
    let resp = s.post(&path, &[]).await;
    assert_eq!(resp.status(), 400);
    let resp = s.post(&path, &[("confirm", "yes")]).await;
    assert_eq!(resp.status(), 409);
    let html = resp.text().await.unwrap();
    assert!(html.contains("still has clients or users"), "{html}");
    assert!(html.contains(r#"aria-describedby="delete-error""#));
    assert!(app.manager.org(&c.org_id).await.is_ok());
    let resp = s
        .post(
            &format!("/console/orgs/{OPERATOR_ORG_ID}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("cannot be deleted"));

    let empty = app.manager.create_org("Empty").await.unwrap();
    let to = s
        .post_and_follow(
            &format!("/console/orgs/{}/delete", empty.id),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(to, "/console/orgs");
    assert!(app.manager.org(&empty.id).await.is_err());
    assert_audited(&app, "org.deleted", &actor).await;
    let resp = s
        .post("/console/orgs/org_nope/rename", &[("name", "X")])
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn an_operator_edits_an_api_and_cannot_remove_a_scope_still_granted() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let c = app.fixture().scopes("read write").build().await;
    let api = app.manager.api(&c.audience).await.unwrap();
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/apis/{}", api.id);
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200);
    assert_accessible(&page, &html);

    let edit = format!("/console/apis/{}/edit", api.id);
    let fields = |scopes: &'static str| {
        vec![
            ("name", "Orders v2"),
            ("scopes", scopes),
            ("alg", "EdDSA"),
            ("token_lifetime", "120"),
            ("user_token_lifetime", "300"),
            ("delegated_token_lifetime", "200"),
            ("refresh_token_lifetime", "86400"),
        ]
    };
    let resp = s.post(&edit, &fields("read: Read things")).await;
    assert_eq!(resp.status(), 409);
    let html = resp.text().await.unwrap();
    assert!(html.contains("still granted"), "{html}");
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="edit-error""#));
    assert_eq!(app.manager.api(&api.id).await.unwrap().name, api.name);

    s.post_and_follow(
        &edit,
        &fields("read: Read things\nwrite\nadmin: Everything"),
    )
    .await;
    let api = app.manager.api(&api.id).await.unwrap();
    assert_eq!(api.name, "Orders v2");
    assert_eq!(api.scopes.to_string(), "admin read write");
    assert_eq!(api.scope_descriptions["read"], "Read things");
    assert!(!api.scope_descriptions.contains_key("write"));
    assert_eq!(api.alg.as_str(), "EdDSA");
    assert_eq!(
        (
            api.token_lifetime,
            api.user_token_lifetime,
            api.delegated_token_lifetime,
            api.refresh_token_lifetime
        ),
        (120, 300, 200, 86400)
    );
    assert_audited(&app, "api.updated", &actor).await;
    let resp = app.post_token_form(&c.client_credentials(c.secret())).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 120, "{body}");

    let mut bad = fields("read\nwrite");
    bad[3] = ("token_lifetime", "soon");
    let resp = s.post(&edit, &bad).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains(
        r#"name="token_lifetime" type="number" min="1" step="1" required value="soon" aria-invalid="true""#
    ), "{html}");
    let resp = s.post("/console/apis/api_nope/edit", &fields("read")).await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn an_operator_edits_a_client_and_its_grants_in_place() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let c = app.fixture().scopes("read write").build().await;
    let api = app.manager.api(&c.audience).await.unwrap();
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/clients/{}", c.client_id);
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200);
    assert_accessible(&page, &html);

    let edit = format!("/console/clients/{}/edit", c.client_id);
    let resp = s
        .post(
            &edit,
            &[
                ("name", "Renamed"),
                ("grant_types", "authorization_code"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains(
        r#"name="redirect_uris" rows="3" spellcheck="false" aria-invalid="true" aria-describedby="edit-error""#
    ), "{html}");
    s.post_and_follow(
        &edit,
        &[
            ("name", "Renamed"),
            ("description", "Does things"),
            ("website_uri", "https://app.example/"),
            ("privacy_policy_uri", "https://app.example/privacy"),
            ("tos_uri", ""),
            ("redirect_uris", "https://app.example/cb\n"),
            ("grant_types", "client_credentials"),
            ("grant_types", "authorization_code"),
        ],
    )
    .await;
    let client = app.manager.client(&c.client_id).await.unwrap();
    assert_eq!(client.name, "Renamed");
    assert_eq!(client.description.as_deref(), Some("Does things"));
    assert_eq!(client.redirect_uris, ["https://app.example/cb"]);
    assert_eq!(client.grant_types.len(), 2);
    assert_audited(&app, "client.updated", &actor).await;

    // The grant narrowed in place: `write` is no longer given.
    let grant = format!("/console/clients/{}/grants/{}/edit", c.client_id, api.id);
    let resp = s
        .post(&grant, &[("api_id", &api.id), ("scopes", "read nope")])
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"id="edit-grant-error""#), "{html}");
    s.post_and_follow(
        &grant,
        &[("api_id", &api.id), ("scopes", "read"), ("default", "yes")],
    )
    .await;
    let g = app.manager.grant(&c.client_id, &api.id).await.unwrap();
    assert_eq!(g.scopes.to_string(), "read");
    assert!(g.is_default);
    assert_audited(&app, "grant.updated", &actor).await;
    let mut form = c.client_credentials(c.secret()).to_vec();
    form.push(("scope", "write"));
    let resp = app.post_token_form(&form).await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test]
async fn an_operator_edits_a_user_and_revokes_sign_ins_from_the_user_and_client_pages() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let c = app
        .fixture()
        .app(calyx_core::model::ClientType::Confidential)
        .scopes("read write")
        .user("jane", "read")
        .build()
        .await;
    let code = app.sign_in(&c).await;
    let (status, t) = app.exchange(&c, &code).await;
    assert_eq!(status, 200, "{t}");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let s = Session::sign_in(&app, "ops").await;

    let page = format!("/console/users/{}", c.user_id);
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200, "{html}");
    assert_accessible(&page, &html);
    assert!(
        html.contains(&format!("<code>{}</code>", c.audience))
            && html.contains("<code>read</code>")
    );
    let families = app
        .manager
        .list_families(
            &calyx_core::model::FamilyFilter {
                client_id: Some(c.client_id.clone()),
                user_id: None,
            },
            None,
            10,
        )
        .await
        .unwrap()
        .items;
    let family = families[0].id.clone();
    assert!(html.contains(&family));
    let (_, html) = s.get(&format!("/console/clients/{}", c.client_id)).await;
    assert!(html.contains(&format!(
        r#"<span class="visually-hidden"> sign-in {family}</span>"#
    )));

    // Edit: a new name, role and password; an empty password field keeps it.
    let edit = format!("/console/users/{}/edit", c.user_id);
    let resp = s
        .post(&edit, &[("username", "jane2"), ("role", "operator")])
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(r#"name="role" aria-invalid="true""#),
        "{html}"
    );
    s.post_and_follow(
        &edit,
        &[
            ("username", "jane2"),
            ("email", "jane@example.com"),
            ("role", "org_admin"),
            ("password", "a-new-password"),
        ],
    )
    .await;
    let u = app.manager.user(&c.user_id).await.unwrap();
    assert_eq!(u.username.as_deref(), Some("jane2"));
    assert_eq!(u.role, Some(Role::OrgAdmin));
    assert_audited(&app, "user.updated", &actor).await;
    let (resp, _) = Browser::new()
        .sign_in_page(app.issuer(), "/portal/", "jane2", "a-new-password")
        .await;
    assert_eq!(resp.status(), 303, "the new password signs in");
    s.post_and_follow(
        &edit,
        &[
            ("username", "jane3"),
            ("role", "org_admin"),
            ("password", ""),
        ],
    )
    .await;
    let (resp, _) = Browser::new()
        .sign_in_page(app.issuer(), "/portal/", "jane3", "a-new-password")
        .await;
    assert_eq!(resp.status(), 303, "an empty password field kept it");
    let resp = s
        .post(
            &format!("/console/users/{}/edit", ops.id),
            &[("username", "ops"), ("role", "")],
        )
        .await;
    assert_eq!(resp.status(), 400, "an operator cannot demote themself");
    let (status, _) = s.get("/console/users/usr_nope").await;
    assert_eq!(status, 404);

    // Revoking from the wrong client's address is a 404; from the user's page it works.
    let other = app.fixture().build().await;
    let resp = s
        .post(
            &format!(
                "/console/clients/{}/families/{family}/revoke",
                other.client_id
            ),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 404);
    let to = s
        .post_and_follow(
            &format!("/console/users/{}/families/{family}/revoke", c.user_id),
            &[],
        )
        .await;
    assert_eq!(to, page);
    assert!(app
        .manager
        .family(&family)
        .await
        .unwrap()
        .revoked_at
        .is_some());
    let (status, t) = app.refresh(&c, &rt, None).await;
    assert_eq!((status, t["error"].as_str()), (400, Some("invalid_grant")));
    assert_audited(&app, "family.revoked", &actor).await;

    // The purge: a dry run counts the revoked sign-in, the purge removes it (once its last
    // access token has expired: the longest default lifetime and the purge's slack).
    // That outlives the console session: sign in again.
    app.clock.advance(7_200 + 400);
    let s = Session::sign_in(&app, "ops").await;
    let (status, html) = s.get("/console/maintenance").await;
    assert_eq!(status, 200);
    assert_accessible("/console/maintenance", &html);
    let resp = s
        .post("/console/maintenance/purge", &[("dry_run", "yes")])
        .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("What a purge would remove now"), "{html}");
    assert!(app.manager.family(&family).await.is_ok());
    let to = s.post_and_follow("/console/maintenance/purge", &[]).await;
    assert!(to.contains("families=1"), "{to}");
    let (_, html) = s.get(&to).await;
    assert!(html.contains("What the purge removed"));
    assert!(app.manager.family(&family).await.is_err());
    assert_audited(&app, "purge.completed", &actor).await;
}

#[tokio::test]
async fn an_operator_edits_disables_and_enables_a_webhook() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let (hook, _) = app
        .manager
        .create_webhook(calyx_server::manage::NewWebhook {
            url: "https://hooks.example/a".into(),
            events: vec!["client.*".into()],
        })
        .await
        .unwrap();
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/webhooks/{}", hook.id);
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200);
    assert_accessible(&page, &html);

    let to = s
        .post_and_follow(&format!("/console/webhooks/{}/disable", hook.id), &[])
        .await;
    assert_eq!(to, page);
    assert!(app.manager.webhook(&hook.id).await.unwrap().disabled);
    let (_, html) = s.get(&page).await;
    assert!(html.contains("Enable webhook"));
    s.post_and_follow(&format!("/console/webhooks/{}/enable", hook.id), &[])
        .await;
    assert!(!app.manager.webhook(&hook.id).await.unwrap().disabled);

    let edit = format!("/console/webhooks/{}/edit", hook.id);
    let resp = s
        .post(&edit, &[("url", "http://hooks.example/b"), ("events", "*")])
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(
            r#"value="http://hooks.example/b" aria-invalid="true" aria-describedby="edit-error""#
        ),
        "{html}"
    );
    s.post_and_follow(
        &edit,
        &[
            ("url", "https://hooks.example/b"),
            ("events", "user.* security.*"),
        ],
    )
    .await;
    let h = app.manager.webhook(&hook.id).await.unwrap();
    assert_eq!(h.url, "https://hooks.example/b");
    assert_eq!(h.events, ["user.*", "security.*"]);
    assert_audited(&app, "webhook.updated", &actor).await;
    let resp = s.post("/console/webhooks/whk_nope/disable", &[]).await;
    assert_eq!(resp.status(), 404);
}

/// Some of a form's fields, as typed.
type Fields<'a> = &'a [(&'a str, &'a str)];

/// `html` with the entities askama writes for quotes turned back, so a test can look for
/// typed text without depending on which escape the template engine chose.
fn unescaped(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
}

/// The security form's fields: `overrides` replace the defaults, which leave everything off.
fn security_form<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("token_endpoint_auth_method", "client_secret_basic"),
        ("jwks", ""),
        ("jwks_uri", ""),
        ("tls_client_auth_subject_dn", ""),
        ("tokens_per_hour", ""),
        ("tokens_per_day", ""),
    ];
    for (field, value) in overrides {
        match form.iter_mut().find(|(f, _)| f == field) {
            Some(slot) => slot.1 = value,
            None => form.push((field, value)),
        }
    }
    form
}

#[tokio::test]
async fn an_operator_sets_each_security_setting_and_quota_of_a_client_and_clears_them_again() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let c = app.fixture().build().await;
    let admin = app.admin().await;
    let holder = calyx_testkit::jose::Holder::new();
    let jwks = holder.jwks().to_string();
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/clients/{}", c.client_id);
    let security = format!("/console/clients/{}/security", c.client_id);
    let shown = format!("/clients/{}", c.client_id);

    // private_key_jwt with an inline JWK Set, DPoP and PAR required, both quotas.
    let to = s
        .post_and_follow(
            &security,
            &security_form(&[
                ("token_endpoint_auth_method", "private_key_jwt"),
                ("jwks", &jwks),
                ("require_dpop", "yes"),
                ("require_par", "yes"),
                ("tokens_per_hour", "100"),
                ("tokens_per_day", "1000"),
            ]),
        )
        .await;
    assert_eq!(to, page);
    let (status, view) = admin.get(&shown).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(view["jwks"], holder.jwks());
    assert_eq!(view["require_dpop"], true);
    assert_eq!(view["require_par"], true);
    assert_eq!(view["tokens_per_hour"], 100);
    assert_eq!(view["tokens_per_day"], 1000);
    assert_audited(&app, "client.updated", &actor).await;

    // The page shows them, the JWK Set pretty-printed in its field.
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200);
    assert_accessible(&page, &html);
    assert!(
        html.contains(r#"<option value="private_key_jwt" selected>"#),
        "{html}"
    );
    let text = unescaped(&html);
    assert!(text.contains("{\n  \"keys\": [\n"), "{html}");
    assert!(text.contains(&format!("\"kid\": \"{}\"", holder.kid())));
    assert!(html.contains(r#"name="require_dpop" type="checkbox" value="yes" checked>"#));
    assert!(html.contains(r#"name="require_par" type="checkbox" value="yes" checked>"#));
    assert!(html.contains(r#"name="tokens_per_hour" type="number" min="0" step="1" value="100""#));
    assert!(html.contains(r#"name="tokens_per_day" type="number" min="0" step="1" value="1000""#));

    // tls_client_auth with its subject DN; the keys published at a URI instead.
    s.post_and_follow(
        &security,
        &security_form(&[
            ("token_endpoint_auth_method", "tls_client_auth"),
            ("jwks_uri", "https://app.example/jwks.json"),
            ("tls_client_auth_subject_dn", "CN=app,O=Acme"),
        ]),
    )
    .await;
    let (_, view) = admin.get(&shown).await;
    assert_eq!(view["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(view["tls_client_auth_subject_dn"], "CN=app,O=Acme");
    assert_eq!(view["jwks_uri"], "https://app.example/jwks.json");
    assert!(view.get("jwks").is_none(), "{view}");
    assert_eq!(view["require_dpop"], false);
    assert_eq!(view["require_par"], false);
    assert!(view.get("tokens_per_hour").is_none(), "{view}");

    // self_signed_tls_client_auth is offered and kept when chosen.
    let (_, html) = s.get(&page).await;
    assert!(html.contains(r#"<option value="tls_client_auth" selected>"#));
    assert!(html.contains(r#"<option value="self_signed_tls_client_auth">"#));

    // Back to the secret, with nothing else: every setting and limit cleared.
    s.post_and_follow(&security, &security_form(&[])).await;
    let (_, view) = admin.get(&shown).await;
    assert_eq!(view["token_endpoint_auth_method"], "client_secret_basic");
    for cleared in [
        "jwks",
        "jwks_uri",
        "tls_client_auth_subject_dn",
        "tokens_per_hour",
        "tokens_per_day",
    ] {
        assert!(view.get(cleared).is_none(), "{cleared}: {view}");
    }
    let resp = app.post_token_form(&c.client_credentials(c.secret())).await;
    assert_eq!(resp.status(), 200, "the secret works again");
}

#[tokio::test]
async fn a_public_clients_security_form_offers_no_method_and_still_sets_its_requirements() {
    let app = spawn_app().await;
    operator(&app).await;
    let c = app
        .fixture()
        .app(calyx_core::model::ClientType::Public)
        .build()
        .await;
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/clients/{}", c.client_id);
    let (_, html) = s.get(&page).await;
    assert!(!html.contains(r#"name="token_endpoint_auth_method""#));
    assert!(html.contains("A public client authenticates with <code>none</code>"));

    let mut form = security_form(&[("require_par", "yes"), ("tokens_per_day", "50")]);
    form.retain(|(f, _)| *f != "token_endpoint_auth_method");
    s.post_and_follow(&format!("{page}/security"), &form).await;
    let client = app.manager.client(&c.client_id).await.unwrap();
    assert!(client.policy.require_par && !client.policy.require_dpop);
    assert_eq!(client.policy.auth, None);
    assert_eq!(
        (client.quota.per_hour, client.quota.per_day),
        (None, Some(50))
    );
}

#[tokio::test]
async fn a_refused_security_form_comes_back_with_its_message_by_the_field_at_fault() {
    let app = spawn_app().await;
    operator(&app).await;
    let c = app.fixture().build().await;
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/clients/{}", c.client_id);
    let security = format!("{page}/security");
    let before = app.manager.client(&c.client_id).await.unwrap();

    // What is typed, what the page says, and the start of the field at fault.
    let cases: &[(Fields, &str, &str)] = &[
        (
            &[("jwks", "{\"keys\": [")],
            "the JWK Set is not valid JSON",
            r#"name="jwks" rows="8" spellcheck="false" aria-invalid="true" aria-describedby="security-error">{"keys": [</textarea>"#,
        ),
        (
            &[("jwks", r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)],
            "private or symmetric key material",
            r#"name="jwks" rows="8" spellcheck="false" aria-invalid="true""#,
        ),
        (
            &[("token_endpoint_auth_method", "private_key_jwt")],
            "private_key_jwt needs the client's keys",
            r#"name="jwks" rows="8" spellcheck="false" aria-invalid="true""#,
        ),
        (
            &[("token_endpoint_auth_method", "tls_client_auth")],
            "tls_client_auth needs the certificate's subject DN",
            r#"name="tls_client_auth_subject_dn" type="text" autocapitalize="none" spellcheck="false" value="" aria-invalid="true""#,
        ),
        (
            &[("jwks_uri", "http://keys.example/jwks.json")],
            "must be an https URL",
            r#"name="jwks_uri" type="url" value="http://keys.example/jwks.json" aria-invalid="true""#,
        ),
        (
            &[("tokens_per_hour", "10"), ("tokens_per_day", "-5")],
            "a token quota must be a whole number from 0",
            r#"name="tokens_per_day" type="number" min="0" step="1" value="-5" aria-invalid="true" aria-describedby="security-error""#,
        ),
        (
            &[("tokens_per_hour", "lots")],
            "tokens per hour must be a whole number",
            r#"name="tokens_per_hour" type="number" min="0" step="1" value="lots" aria-invalid="true""#,
        ),
    ];
    for (typed, message, field) in cases {
        let resp = s.post(&security, &security_form(typed)).await;
        assert_eq!(resp.status(), 400, "{typed:?}");
        let html = unescaped(&resp.text().await.unwrap());
        assert!(
            html.contains(r#"role="alert" id="security-error""#),
            "{typed:?}: {html}"
        );
        assert!(
            html.contains(message),
            "{typed:?}: no {message:?} in {html}"
        );
        assert!(html.contains(field), "{typed:?}: no {field:?} in {html}");
        assert_accessible(&page, &html);
    }
    let after = app.manager.client(&c.client_id).await.unwrap();
    assert_eq!(after.policy, before.policy, "nothing refused was saved");
    assert_eq!(after.quota, before.quota);
}

#[tokio::test]
async fn an_operator_sets_and_clears_an_organizations_token_quotas() {
    let app = spawn_app().await;
    let ops = operator(&app).await;
    let actor = format!("user:{}", ops.id);
    let c = app.fixture().build().await;
    let s = Session::sign_in(&app, "ops").await;
    let page = format!("/console/orgs/{}", c.org_id);
    let quotas = format!("{page}/quotas");

    let to = s
        .post_and_follow(
            &quotas,
            &[("tokens_per_hour", "500"), ("tokens_per_day", "5000")],
        )
        .await;
    assert_eq!(to, page);
    let org = app.manager.org(&c.org_id).await.unwrap();
    assert_eq!(
        (org.quota.per_hour, org.quota.per_day),
        (Some(500), Some(5000))
    );
    assert_audited(&app, "org.updated", &actor).await;
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200);
    assert_accessible(&page, &html);
    assert!(html.contains(r#"name="tokens_per_hour" type="number" min="0" step="1" value="500""#));
    assert!(
        html.contains("<dt>Tokens per day</dt><dd>5000</dd>"),
        "{html}"
    );

    // A negative limit is refused on its field; nothing changes.
    let resp = s
        .post(
            &quotas,
            &[("tokens_per_hour", "-1"), ("tokens_per_day", "")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"role="alert" id="quotas-error""#), "{html}");
    assert!(html.contains(
        r#"name="tokens_per_hour" type="number" min="0" step="1" value="-1" aria-invalid="true" aria-describedby="quotas-error""#
    ), "{html}");
    assert_accessible(&page, &html);
    let org = app.manager.org(&c.org_id).await.unwrap();
    assert_eq!(org.quota.per_hour, Some(500));

    // Empty fields remove the limits.
    s.post_and_follow(&quotas, &[("tokens_per_hour", ""), ("tokens_per_day", "")])
        .await;
    let org = app.manager.org(&c.org_id).await.unwrap();
    assert_eq!((org.quota.per_hour, org.quota.per_day), (None, None));
    let (_, html) = s.get(&page).await;
    assert!(html.contains("<dt>Tokens per hour</dt><dd>No limit</dd>"));
    let resp = s.post("/console/orgs/org_nope/quotas", &[]).await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_security_and_quota_forms_without_their_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    operator(&app).await;
    let c = app.fixture().build().await;
    let s = Session::sign_in(&app, "ops").await;
    let security = format!("/console/clients/{}/security", c.client_id);
    let quotas = format!("/console/orgs/{}/quotas", c.org_id);
    let forged = security_form(&[("require_dpop", "yes"), ("tokens_per_hour", "1")]);

    for csrf in [None, Some("not-the-token")] {
        let with = |fields: &[(&'static str, &'static str)]| {
            let mut form: Vec<(&str, &str)> = csrf.map(|t| ("csrf", t)).into_iter().collect();
            form.extend_from_slice(fields);
            form
        };
        let resp = s.post_raw(&security, &with(&forged)).await;
        assert_eq!(resp.status(), 400);
        let resp = s
            .post_raw(
                &quotas,
                &with(&[("tokens_per_hour", "1"), ("tokens_per_day", "1")]),
            )
            .await;
        assert_eq!(resp.status(), 400);
    }
    let client = app.manager.client(&c.client_id).await.unwrap();
    assert!(!client.policy.require_dpop);
    assert_eq!(client.quota.per_hour, None);
    let org = app.manager.org(&c.org_id).await.unwrap();
    assert_eq!((org.quota.per_hour, org.quota.per_day), (None, None));
}
