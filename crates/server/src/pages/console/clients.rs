//! The console's clients (applications) of every organization: the list with a form to
//! register one, the page that shows a new secret once, and a client's page with its facts,
//! its grants (each changed in place), its usage chart, its sign-ins (each revocable), a
//! form to edit its registration, a form for its security settings and token quotas, and
//! the actions on it: disable or enable, rotate the secret, revoke its tokens, delete.
//! The token quota fields ([`Limits`]) are read here for the organization's page too.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use calyx_core::model::{ClientType, GrantType};

use super::families::{self, Families};
use super::{blame, Desk, Form, SecretPage, Section};
use crate::manage::views::{ApiView, ClientView, GrantView};
use crate::manage::{ClientPatch, GrantPatch, ManageError, NewClient, ScopeList};
use crate::manage::{ADMIN_AUDIENCE, MAX_PAGE};
use crate::pages::account::when;
use crate::pages::chart::{self, UsageChart};
use crate::pages::path_segment;
use crate::pages::{Chrome, Posted};

/// The grace periods offered when rotating a secret: `(seconds, label)`.
const GRACES: [(i64, &str); 4] = [
    (0, "None: the old secret stops at once"),
    (3_600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

/// The methods a confidential client may authenticate with at the token endpoint:
/// `(value, label)`, the value as RFC 7591 §2 names it. A public client has only `none`.
const AUTH_METHODS: [(&str, &str); 4] = [
    ("client_secret_basic", "Client secret"),
    (
        "private_key_jwt",
        "private_key_jwt (an assertion signed with its key)",
    ),
    (
        "tls_client_auth",
        "tls_client_auth (a certificate with the registered subject DN)",
    ),
    (
        "self_signed_tls_client_auth",
        "self_signed_tls_client_auth (a certificate in its JWK Set)",
    ),
];

/// A client as the list shows it, with its organization's name.
struct ClientRow {
    client: ClientView,
    org_name: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage<'a> {
    chrome: &'a Chrome,
    clients: Vec<ClientRow>,
    orgs: Vec<(String, String)>,
    grant_types: Vec<&'static str>,
    form: Form,
}

async fn clients_page(desk: Desk, status: StatusCode, form: Form) -> Response {
    let desk = desk.at(Section::Clients);
    let m = &desk.manager;
    let orgs = or_page!(desk, m.list_orgs(None, MAX_PAGE).await);
    let clients = or_page!(desk, m.list_clients(None, None, MAX_PAGE).await);
    let orgs: Vec<(String, String)> = orgs.items.into_iter().map(|o| (o.id, o.name)).collect();
    let clients = clients
        .items
        .into_iter()
        .map(|c| ClientRow {
            org_name: orgs
                .iter()
                .find(|(id, _)| *id == c.org_id)
                .map_or_else(|| c.org_id.clone(), |(_, n)| n.clone()),
            client: c,
        })
        .collect();
    desk.show(
        status,
        &ClientsPage {
            chrome: &desk.chrome,
            clients,
            orgs,
            grant_types: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
            form,
        },
    )
}

/// Every client, and the form to register one.
pub(super) async fn list(desk: Desk) -> Response {
    clients_page(desk, StatusCode::OK, Form::default()).await
}

/// Registers a client; a confidential one's secret is shown on the answer, once.
pub(super) async fn create(desk: Desk, posted: Posted) -> Response {
    let client_type = match posted.get("client_type") {
        "" | "confidential" => Ok(ClientType::Confidential),
        t => t.parse::<ClientType>().map_err(ManageError::Invalid),
    };
    let mut grant_types = Vec::new();
    for g in posted.all("grant_types") {
        match GrantType::parse(g) {
            Some(g) => grant_types.push(g),
            None => {
                return refuse_create(
                    desk,
                    &posted,
                    "grant_types",
                    ManageError::Invalid(format!("unknown grant type {g:?}")),
                )
                .await
            }
        }
    }
    let client_type = match client_type {
        Ok(t) => t,
        Err(e) => return refuse_create(desk, &posted, "client_type", e).await,
    };
    let new = NewClient {
        org_id: posted.get("org_id").to_owned(),
        name: posted.get("name").to_owned(),
        client_type,
        grant_types,
        redirect_uris: posted
            .get("redirect_uris")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        ..NewClient::default()
    };
    match desk.manager.create_client(new).await {
        Ok((client, Some(secret))) => {
            desk.state.apply_change().await;
            let desk = desk.at(Section::Clients);
            let back = format!("/console/clients/{}", path_segment(&client.id));
            desk.show(
                StatusCode::OK,
                &SecretPage {
                    chrome: &desk.chrome,
                    heading: "Client created",
                    what: &client.name,
                    id: &client.id,
                    secret: &secret,
                    back: &back,
                },
            )
        }
        Ok((client, None)) => {
            desk.done(&format!("/console/clients/{}", path_segment(&client.id)))
                .await
        }
        Err(e) => {
            let field = blame(
                &e,
                &[
                    ("organization", "org_id"),
                    ("name", "name"),
                    ("redirect", "redirect_uris"),
                    ("public", "client_type"),
                    ("grant", "grant_types"),
                    ("uri", "redirect_uris"),
                ],
                "name",
            );
            refuse_create(desk, &posted, field, e).await
        }
    }
}

async fn refuse_create(
    desk: Desk,
    posted: &Posted,
    field: &'static str,
    e: ManageError,
) -> Response {
    match Form::refused(posted, "client", field, e) {
        Ok((status, form)) => clients_page(desk, status, form).await,
        Err(e) => desk.fail(e),
    }
}

#[derive(Template)]
#[template(path = "console/client.html")]
struct ClientPage<'a> {
    chrome: &'a Chrome,
    client: ClientView,
    org_name: String,
    created: String,
    previous_secret_until: Option<String>,
    grants: Vec<GrantView>,
    apis: Vec<ApiView>,
    graces: &'static [(i64, &'static str)],
    chart: UsageChart,
    families: Families,
    /// Every grant type, with whether the client has it (the edit form's boxes).
    grant_types: Vec<(&'static str, bool)>,
    /// The redirect URIs as the edit form's text starts: one per line.
    redirect_text: String,
    /// The authentication methods offered, with whether it is the client's.
    auth_methods: Vec<(&'static str, &'static str, bool)>,
    /// How many keys the JWK Set registered inline holds, if there is one.
    key_count: Option<usize>,
    /// The JWK Set as the security form's text starts: pretty-printed, or empty.
    jwks_text: String,
    /// The token quotas as the security form's fields start: empty for no limit.
    per_hour: String,
    per_day: String,
    notice: Option<String>,
    form: Form,
}

async fn client_page(
    desk: Desk,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    form: Form,
) -> Response {
    client_page_from(desk, id, None, status, notice, form).await
}

/// The client's page, its sign-ins from `after` on.
async fn client_page_from(
    desk: Desk,
    id: &str,
    after: Option<&str>,
    status: StatusCode,
    notice: Option<String>,
    form: Form,
) -> Response {
    let desk = desk.at(Section::Clients);
    let m = &desk.manager;
    let client = ClientView::from(or_page!(desk, m.client(id).await));
    let org_name = match m.org(&client.org_id).await {
        Ok(o) => o.name,
        Err(_) => client.org_id.clone(),
    };
    let grants = or_page!(desk, m.list_grants(&client.id).await);
    let apis = or_page!(desk, m.list_apis(None, MAX_PAGE).await);
    let apis = apis
        .items
        .into_iter()
        .filter(|a| a.audience != ADMIN_AUDIENCE && !grants.iter().any(|g| g.api_id == a.id))
        .collect();
    let now = desk.now();
    let usage = or_page!(desk, m.client_usage(&client.id, chart::since(now)).await);
    let families = or_page!(desk, families::of_client(m, &client.id, after).await);
    let grant_types = GrantType::ALL
        .iter()
        .map(|g| {
            (
                g.as_str(),
                client.grant_types.iter().any(|c| c == g.as_str()),
            )
        })
        .collect();
    let auth_methods = AUTH_METHODS
        .iter()
        .map(|(value, label)| (*value, *label, client.token_endpoint_auth_method == *value))
        .collect();
    let jwks_text = client
        .jwks
        .as_ref()
        .and_then(|j| serde_json::to_string_pretty(j).ok())
        .unwrap_or_default();
    let page = ClientPage {
        families,
        grant_types,
        redirect_text: client.redirect_uris.join("\n"),
        auth_methods,
        key_count: client
            .jwks
            .as_ref()
            .map(|j| j["keys"].as_array().map_or(0, Vec::len)),
        jwks_text,
        per_hour: Limits::text(client.tokens_per_hour),
        per_day: Limits::text(client.tokens_per_day),
        chrome: &desk.chrome,
        org_name,
        created: when(client.created_at),
        previous_secret_until: client
            .previous_secret_expires_at
            .filter(|t| *t > now)
            .map(when),
        client,
        grants,
        apis,
        graces: &GRACES,
        chart: chart::layout(&usage, now),
        notice,
        form,
    };
    desk.show(status, &page)
}

/// `?revoked=<n>`: the page after revoking says how many sign-ins went; `?after=`: the
/// next page of its sign-ins.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ClientQuery {
    revoked: Option<u64>,
    after: Option<String>,
}

/// A client's page.
pub(super) async fn show(
    desk: Desk,
    Path(id): Path<String>,
    Query(q): Query<ClientQuery>,
) -> Response {
    let notice = q
        .revoked
        .map(|n| format!("Revoked {n} sign-in(s) of this client and their tokens."));
    client_page_from(
        desk,
        &id,
        q.after.as_deref(),
        StatusCode::OK,
        notice,
        Form::default(),
    )
    .await
}

/// Lines of a textarea, trimmed, the empty ones dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Changes a client's registration: name, description, links, redirect URIs, grant types.
pub(super) async fn edit(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let patch = ClientPatch {
        name: Some(posted.get("name").to_owned()),
        description: Some(posted.get("description").to_owned()),
        website_uri: Some(posted.get("website_uri").to_owned()),
        privacy_policy_uri: Some(posted.get("privacy_policy_uri").to_owned()),
        tos_uri: Some(posted.get("tos_uri").to_owned()),
        redirect_uris: Some(lines(posted.get("redirect_uris"))),
        grant_types: Some(
            posted
                .all("grant_types")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        ..ClientPatch::default()
    };
    match desk.manager.update_client(&id, patch).await {
        Ok(c) => {
            desk.done(&format!("/console/clients/{}", path_segment(&c.id)))
                .await
        }
        Err(e) => {
            let field = blame(
                &e,
                &[
                    ("redirect", "redirect_uris"),
                    ("grant", "grant_types"),
                    ("public", "grant_types"),
                    ("website", "website_uri"),
                    ("privacy", "privacy_policy_uri"),
                    ("terms", "tos_uri"),
                    ("description", "description"),
                ],
                "name",
            );
            match Form::refused(&posted, "edit", field, e) {
                Ok((status, form)) => client_page(desk, &id, status, None, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// The token quotas typed in a form's `tokens_per_hour` and `tokens_per_day`: each a whole
/// number, or empty for no limit. Whether a number is in range is the manager's to say.
pub(super) struct Limits {
    pub per_hour: Option<i64>,
    pub per_day: Option<i64>,
}

impl Limits {
    /// The limits typed; a refusal names the field at fault.
    pub fn typed(posted: &Posted) -> Result<Limits, (&'static str, ManageError)> {
        let limit = |field: &'static str, what: &str| match posted.get(field) {
            "" => Ok(None),
            typed => typed.parse::<i64>().map(Some).map_err(|_| {
                let why = format!("{what} must be a whole number, or empty for no limit");
                (field, ManageError::Invalid(why))
            }),
        };
        Ok(Limits {
            per_hour: limit("tokens_per_hour", "tokens per hour")?,
            per_day: limit("tokens_per_day", "tokens per day")?,
        })
    }

    /// The field the manager's refusal of these limits is about: a negative one, else the
    /// larger (a limit too large is the larger of the two).
    pub fn at_fault(&self) -> &'static str {
        match (self.per_hour, self.per_day) {
            (Some(h), _) if h < 0 => "tokens_per_hour",
            (_, Some(d)) if d < 0 => "tokens_per_day",
            (Some(h), Some(d)) if d > h => "tokens_per_day",
            (None, Some(_)) => "tokens_per_day",
            _ => "tokens_per_hour",
        }
    }

    /// A stored limit as a form's field starts: empty for no limit.
    pub fn text(limit: Option<i64>) -> String {
        limit.map(|n| n.to_string()).unwrap_or_default()
    }
}

/// The security form as a patch of only its fields; a refusal names the field at fault.
/// A public client's form has no method to choose, so none is sent.
fn security_patch(
    posted: &Posted,
    limits: &Limits,
) -> Result<ClientPatch, (&'static str, ManageError)> {
    let jwks = match posted.get("jwks") {
        "" => None,
        typed => Some(serde_json::from_str(typed).map_err(|e| {
            let why = format!("the JWK Set is not valid JSON: {e}");
            ("jwks", ManageError::Invalid(why))
        })?),
    };
    Ok(ClientPatch {
        token_endpoint_auth_method: posted.opt("token_endpoint_auth_method"),
        jwks: Some(jwks),
        jwks_uri: Some(posted.get("jwks_uri").to_owned()),
        tls_client_auth_subject_dn: Some(posted.get("tls_client_auth_subject_dn").to_owned()),
        require_dpop: Some(!posted.get("require_dpop").is_empty()),
        require_par: Some(!posted.get("require_par").is_empty()),
        tokens_per_hour: Some(limits.per_hour),
        tokens_per_day: Some(limits.per_day),
        ..ClientPatch::default()
    })
}

/// The field a refusal of the security form is about.
fn security_field(e: &ManageError, limits: &Limits) -> &'static str {
    if e.to_string().contains("token quota") {
        return limits.at_fault();
    }
    // In this order: the private_key_jwt message names the jwks_uri too.
    blame(
        e,
        &[
            ("needs the client's keys", "jwks"),
            ("jwks_uri", "jwks_uri"),
            ("subject dn", "tls_client_auth_subject_dn"),
            ("jwks", "jwks"),
            ("x5c", "jwks"),
        ],
        "token_endpoint_auth_method",
    )
}

/// Changes how a client authenticates and what it must do: its token endpoint
/// authentication method, its keys (a JWK Set, or where it publishes one), its certificate's
/// subject DN, whether it must use DPoP and pushed authorization requests, and its token
/// quotas. Only those fields are changed.
pub(super) async fn secure(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let changed = async {
        let limits = Limits::typed(&posted)?;
        let patch = security_patch(&posted, &limits)?;
        desk.manager
            .update_client(&id, patch)
            .await
            .map_err(|e| (security_field(&e, &limits), e))
    };
    match changed.await {
        Ok(c) => {
            desk.done(&format!("/console/clients/{}", path_segment(&c.id)))
                .await
        }
        Err((field, e)) => match Form::refused(&posted, "security", field, e) {
            Ok((status, form)) => client_page(desk, &id, status, None, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

/// Changes a grant in place: the scopes the client may ask for, and whether it is the
/// default audience. The form repeats the API's id (`api_id`) so that, when refused, the
/// message is shown by that grant's form.
pub(super) async fn edit_grant(
    desk: Desk,
    Path((id, api_id)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let patch = GrantPatch {
        scopes: Some(ScopeList::Words(posted.get("scopes").to_owned())),
        default: Some(!posted.get("default").is_empty()),
    };
    match desk.manager.update_grant(&id, &api_id, patch).await {
        Ok(g) => {
            desk.done(&format!("/console/clients/{}", path_segment(&g.client_id)))
                .await
        }
        Err(e) => match Form::refused(&posted, "edit-grant", "scopes", e) {
            Ok((status, form)) => client_page(desk, &id, status, None, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

async fn set_disabled(desk: Desk, id: &str, disabled: bool) -> Response {
    match desk.manager.set_client_disabled(id, disabled).await {
        Ok(c) => {
            desk.done(&format!("/console/clients/{}", path_segment(&c.id)))
                .await
        }
        Err(e) => desk.fail(e),
    }
}

/// Disables a client: it can no longer authenticate, and its tokens are refused here.
pub(super) async fn disable(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    set_disabled(desk, &id, true).await
}

/// Enables a disabled client again.
pub(super) async fn enable(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    set_disabled(desk, &id, false).await
}

/// Gives a client a new secret, shown on the answer once; the old one keeps working for the
/// chosen grace period.
pub(super) async fn rotate(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let grace = posted.get("grace").parse::<i64>().unwrap_or(-1);
    if !GRACES.iter().any(|(s, _)| *s == grace) {
        let e = ManageError::Invalid("choose one of the grace periods offered".into());
        return match Form::refused(&posted, "rotate", "grace", e) {
            Ok((status, form)) => client_page(desk, &id, status, None, form).await,
            Err(e) => desk.fail(e),
        };
    }
    match desk.manager.rotate_secret(&id, grace).await {
        Ok((client, secret)) => {
            desk.state.apply_change().await;
            let desk = desk.at(Section::Clients);
            let back = format!("/console/clients/{}", path_segment(&client.id));
            desk.show(
                StatusCode::OK,
                &SecretPage {
                    chrome: &desk.chrome,
                    heading: "New client secret",
                    what: &client.name,
                    id: &client.id,
                    secret: &secret,
                    back: &back,
                },
            )
        }
        Err(e) => match Form::refused(&posted, "rotate", "grace", e) {
            Ok((status, form)) => client_page(desk, &id, status, None, form).await,
            Err(e) => desk.fail(e),
        },
    }
}

/// Revokes every sign-in (token family) of a client, and says how many.
pub(super) async fn revoke(desk: Desk, Path(id): Path<String>, _: Posted) -> Response {
    match desk.manager.revoke_client_tokens(&id).await {
        Ok(n) => {
            let to = format!("/console/clients/{}?revoked={n}", path_segment(&id));
            desk.done(&to).await
        }
        Err(e) => desk.fail(e),
    }
}

/// Deletes a client, once the box saying so is ticked.
pub(super) async fn delete(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    if posted.get("confirm").is_empty() {
        let e = ManageError::Invalid(
            "tick the box to confirm: a deleted client cannot be brought back".into(),
        );
        return match Form::refused(&posted, "delete", "confirm", e) {
            Ok((status, form)) => client_page(desk, &id, status, None, form).await,
            Err(e) => desk.fail(e),
        };
    }
    match desk.manager.delete_client(&id).await {
        Ok(()) => desk.done("/console/clients").await,
        Err(e) => desk.fail(e),
    }
}

/// Lets the client obtain tokens for an API, with at most the scopes typed.
pub(super) async fn add_grant(desk: Desk, Path(id): Path<String>, posted: Posted) -> Response {
    let is_default = !posted.get("default").is_empty();
    match desk
        .manager
        .create_grant(&id, posted.get("api_id"), posted.get("scopes"), is_default)
        .await
    {
        Ok(g) => {
            desk.done(&format!("/console/clients/{}", path_segment(&g.client_id)))
                .await
        }
        Err(e) => {
            let field = blame(&e, &[("no api", "api_id"), ("admin", "api_id")], "scopes");
            match Form::refused(&posted, "grant", field, e) {
                Ok((status, form)) => client_page(desk, &id, status, None, form).await,
                Err(e) => desk.fail(e),
            }
        }
    }
}

/// Removes the client's grant on an API.
pub(super) async fn remove_grant(
    desk: Desk,
    Path((id, api_id)): Path<(String, String)>,
    _: Posted,
) -> Response {
    match desk.manager.delete_grant(&id, &api_id).await {
        Ok(()) => {
            desk.done(&format!("/console/clients/{}", path_segment(&id)))
                .await
        }
        Err(e) => desk.fail(e),
    }
}
