//! `/admin/v1`: the management API. The same operations as the CLI (`crate::manage`), over
//! HTTP, for automation and the console.
//!
//! Authentication is Calyx's own: a Bearer access token this server issued for the built-in
//! audience `urn:calyx:admin` (RFC 9068), to an admin client that is neither deleted nor
//! disabled, holding `admin:read` for a GET and `admin:write` for anything else (RFC 6750
//! §3.1: 401 `invalid_token` for a missing or unacceptable token, 403 `insufficient_scope`).
//! A failure is an audit event (`security.admin_auth_failed`), at most a few per address a
//! minute so that a flood cannot fill the log.
//!
//! A change is applied on this node before the answer: the caches are dropped and the key
//! set reloaded, so the very next request here sees it. Other nodes follow through the
//! change counter (`reload`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use calyx_core::audit::kind;
use calyx_core::client_auth::bearer_token;
use serde::Deserialize;

use crate::bearer::{self, Problem};
use crate::error::ApiError;
use crate::manage::OPERATOR_ORG_ID;
use crate::manage::{page_limit, About, Actor, Manager, ADMIN_AUDIENCE, ADMIN_READ, ADMIN_WRITE};
use crate::state::AppState;

pub(crate) mod apis;
pub(crate) mod audit;
pub(crate) mod clients;
pub(crate) mod families;
pub(crate) mod keys;
pub(crate) mod orgs;
pub(crate) mod users;
pub(crate) mod webhooks;

/// Every management route.
pub(crate) fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    vec![
        ("/admin/v1/orgs", get(orgs::list).post(orgs::create)),
        (
            "/admin/v1/orgs/{id}",
            get(orgs::show).patch(orgs::update).delete(orgs::delete),
        ),
        ("/admin/v1/orgs/{id}/entitlements", get(orgs::entitlements)),
        (
            "/admin/v1/orgs/{id}/entitlements/{api_id}",
            axum::routing::put(orgs::set_entitlement).delete(orgs::delete_entitlement),
        ),
        (
            "/admin/v1/branding",
            get(orgs::branding).patch(orgs::update_branding),
        ),
        ("/admin/v1/apis", get(apis::list).post(apis::create)),
        (
            "/admin/v1/apis/{id}",
            get(apis::show).patch(apis::update).delete(apis::delete),
        ),
        (
            "/admin/v1/clients",
            get(clients::list).post(clients::create),
        ),
        (
            "/admin/v1/clients/{id}",
            get(clients::show)
                .patch(clients::update)
                .delete(clients::delete),
        ),
        (
            "/admin/v1/clients/{id}/rotate-secret",
            post(clients::rotate_secret),
        ),
        (
            "/admin/v1/clients/{id}/revoke-tokens",
            post(clients::revoke_tokens),
        ),
        ("/admin/v1/clients/{id}/usage", get(clients::usage)),
        (
            "/admin/v1/clients/{id}/grants",
            get(clients::list_grants).post(clients::create_grant),
        ),
        (
            "/admin/v1/clients/{id}/grants/{api_id}",
            get(clients::show_grant)
                .patch(clients::update_grant)
                .delete(clients::delete_grant),
        ),
        ("/admin/v1/users", get(users::list).post(users::create)),
        (
            "/admin/v1/users/{id}",
            get(users::show).patch(users::update).delete(users::delete),
        ),
        ("/admin/v1/keys", get(keys::list)),
        ("/admin/v1/keys/rotate", post(keys::rotate)),
        ("/admin/v1/keys/{kid}/retire", post(keys::retire)),
        ("/admin/v1/families", get(families::list)),
        ("/admin/v1/families/{id}", get(families::show)),
        ("/admin/v1/families/{id}/revoke", post(families::revoke)),
        (
            "/admin/v1/webhooks",
            get(webhooks::list).post(webhooks::create),
        ),
        (
            "/admin/v1/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        ),
        (
            "/admin/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        ),
        ("/admin/v1/audit", get(audit::list)),
        ("/admin/v1/audit/{id}", get(audit::show)),
        ("/admin/v1/purge", post(audit::purge)),
    ]
}

/// A JSON request body; anything else (wrong type, unknown field, not JSON) is a 400.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub T);

/// A query string; one that does not parse is a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub T);

/// A JSON body that may be empty (then every field takes its default).
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        calyx_core::OAuthError::invalid_request(format!("the body is not valid: {e}")).into()
    })
}

/// `limit` and `after` of a listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

impl PageQuery {
    /// The cursor and the checked page size.
    fn page(&self) -> Result<(Option<&str>, i64), ApiError> {
        Ok((self.after.as_deref(), page_limit(self.limit)?))
    }
}

/// Authenticates the caller, hands the handler a [`Manager`] acting as it, and after a
/// successful change applies it to this node before answering.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    let needed = if reads { ADMIN_READ } else { ADMIN_WRITE };
    let address = peer.ip().to_string();
    let client_id = match admin_client(&state, req.headers(), needed).await {
        Ok(id) => id,
        Err(e) => {
            auth_failed(&state, &address, &e);
            return Err(e);
        }
    };
    let manager = state
        .manager
        .acting_as(Actor::admin_client(&client_id, Some(address)));
    req.extensions_mut().insert(manager);
    let response = next.run(req).await;
    if !reads && response.status().is_success() {
        state.apply_change().await;
    }
    Ok(response)
}

/// The admin client of an acceptable token holding `needed`.
async fn admin_client(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    needed: &'static str,
) -> Result<String, ApiError> {
    let invalid = |description: &str| ApiError::Bearer {
        error: Some("invalid_token"),
        description: description.to_owned(),
        scope: None,
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Bearer {
            error: None,
            description:
                "an admin token is required (Authorization: Bearer <token for urn:calyx:admin>)"
                    .into(),
            scope: None,
        });
    };
    let token = value
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or_else(|| invalid("the Authorization header must be: Bearer <token>"))?;
    let org = match bearer::org_token(state, token).await? {
        Ok(org) => org,
        Err(Problem::Invalid(why)) => return Err(invalid(why)),
        Err(Problem::UserToken) => return Err(invalid("a user's token cannot manage Calyx")),
    };
    if org.api.audience != ADMIN_AUDIENCE {
        return Err(invalid(
            "the token is not for the management API (audience urn:calyx:admin)",
        ));
    }
    if org.org_id != OPERATOR_ORG_ID {
        // Belt and braces: `Manager::create_grant` gives no other client such a grant.
        return Err(invalid("only admin clients may use the management API"));
    }
    if !org.scope.contains(needed) {
        return Err(ApiError::Bearer {
            error: Some("insufficient_scope"),
            description: format!("this operation needs the {needed} scope"),
            scope: Some(needed),
        });
    }
    Ok(org.claims.client_id)
}

/// Records a failed admin authentication, unless this address has had its quota of records.
fn auth_failed(state: &AppState, address: &str, e: &ApiError) {
    let now = state.clock.now();
    if state.admin_failures.blocked_for(address, now).is_some() {
        return;
    }
    state.admin_failures.fail(address, now);
    let why = match e {
        ApiError::Bearer { description, .. } => description.clone(),
        _ => "the token could not be checked".into(),
    };
    state.security_event(
        kind::ADMIN_AUTH_FAILED,
        About::default(),
        serde_json::json!({"reason": why}),
        Some(address.to_owned()),
    );
}

/// The manager a handler acts through (put there by [`authorize`]).
pub(crate) type Caller = axum::Extension<Manager>;
