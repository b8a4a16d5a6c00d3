//! The OpenAPI document, generated from the handlers' annotations (utoipa). Aliased paths
//! (`/v2/oauth/token`, `/.well-known/openid-configuration`) are added as copies of their
//! primary path so that the document lists every route the router serves.

use std::sync::OnceLock;

use serde::Serialize;
use utoipa::OpenApi;

use calyx_core::model::GrantType;
use calyx_core::request::{TokenOnlyParams, TokenParams};

use crate::routes::admin;
use crate::routes::{authorize, ops, par, revocation, token, users, well_known};

/// An RFC 6749 §5.2 error.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct OAuthErrorBody {
    /// The error code, e.g. `invalid_request`.
    error: String,
    /// What went wrong, for the client developer.
    error_description: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Calyx",
        description = "OAuth 2.0 authorization server for API companies",
        license(name = "Apache-2.0")
    ),
    paths(
        token::token,
        authorize::authorize,
        authorize::login,
        authorize::consent,
        authorize::stylesheet,
        users::create,
        users::list,
        users::get,
        users::delete,
        users::authenticate,
        revocation::revoke,
        revocation::introspect,
        par::par,
        well_known::metadata,
        well_known::jwks,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        admin::orgs::list,
        admin::orgs::create,
        admin::orgs::show,
        admin::orgs::update,
        admin::orgs::delete,
        admin::orgs::entitlements,
        admin::orgs::set_entitlement,
        admin::orgs::delete_entitlement,
        admin::orgs::branding,
        admin::orgs::update_branding,
        admin::apis::list,
        admin::apis::create,
        admin::apis::show,
        admin::apis::update,
        admin::apis::delete,
        admin::clients::list,
        admin::clients::create,
        admin::clients::show,
        admin::clients::update,
        admin::clients::delete,
        admin::clients::rotate_secret,
        admin::clients::revoke_tokens,
        admin::clients::usage,
        admin::clients::list_grants,
        admin::clients::create_grant,
        admin::clients::show_grant,
        admin::clients::update_grant,
        admin::clients::delete_grant,
        admin::users::list,
        admin::users::create,
        admin::users::show,
        admin::users::update,
        admin::users::delete,
        admin::keys::list,
        admin::keys::rotate,
        admin::keys::retire,
        admin::families::list,
        admin::families::show,
        admin::families::revoke,
        admin::webhooks::list,
        admin::webhooks::create,
        admin::webhooks::show,
        admin::webhooks::update,
        admin::webhooks::delete,
        admin::webhooks::deliveries,
        admin::audit::list,
        admin::audit::show,
        admin::audit::purge,
    ),
    components(schemas(
        TokenParams,
        GrantType,
        TokenOnlyParams,
        crate::issue::TokenResponse,
        OAuthErrorBody,
        users::NewUserBody,
        users::UserView,
        users::UserPage,
        users::DelegatedToken,
        authorize::LoginForm,
        authorize::ConsentForm,
        calyx_core::audit::AuditEvent,
        calyx_core::model::PurgeReport,
        crate::manage::KeyInfo,
        crate::manage::ScopeList,
    )),
    modifiers(&OrgTokenAuth, &BodyLimits, &OrgTokenErrors, &AdminOperations)
)]
struct ApiDoc;

/// Declares the security schemes: `org_token` (an org's client-credentials token, as Bearer)
/// and `client_basic` (client authentication by HTTP Basic).
struct OrgTokenAuth;

impl utoipa::Modify for OrgTokenAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "org_token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Client id and secret, each form-urlencoded (RFC 6749 §2.3.1); \
                         or client_id and client_secret in the body instead",
                    ))
                    .build(),
            ),
        );
    }
}

/// Documents what `routes::read_body` answers for every operation that takes a body: 408
/// when the body is late, 413 when it is too large, 400 when it cannot be read.
struct BodyLimits;

impl utoipa::Modify for BodyLimits {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                if op.request_body.is_none() {
                    continue;
                }
                let responses = &mut op.responses.responses;
                for (status, description) in [
                    ("400", "invalid_request: the body could not be read"),
                    ("408", "invalid_request: the body did not arrive in time"),
                    ("413", "invalid_request: the body is too large"),
                ] {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description).into());
                }
            }
        }
    }
}

/// Documents what `bearer::require` answers for every operation secured by an org token: 401
/// `invalid_token` and 403 `insufficient_scope` (RFC 6750 §3.1).
struct OrgTokenErrors;

impl utoipa::Modify for OrgTokenErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.delete];
            for op in ops.into_iter().flatten() {
                let secured = op.security.iter().flatten().any(|requirement| {
                    serde_json::to_value(requirement).is_ok_and(|v| v.get("org_token").is_some())
                });
                if !secured {
                    continue;
                }
                for (status, description) in
                    [("401", "invalid_token"), ("403", "insufficient_scope")]
                {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description).into());
                }
            }
        }
    }
}

/// The management API: its security scheme, operation ids unique across the document
/// (`admin_<method>_<path>`), and the errors every operation can answer — 400 for bad input,
/// 401/403 (RFC 6750 §3.1) for the token, 404 for an unknown id in the path.
struct AdminOperations;

impl utoipa::Modify for AdminOperations {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token for the audience urn:calyx:admin, from an admin \
                         client's client credentials (calyx admin create-client): admin:read \
                         for GET, admin:write for everything else",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let Some(rest) = path.strip_prefix("/admin/v1/") else {
                continue;
            };
            let slug: String = rest
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            // Every method the admin API uses (a method left out here went undocumented).
            let ops = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                op.operation_id = Some(format!("admin_{method}_{slug}"));
                let mut errors = vec![
                    ("400", "invalid_request: the input is not acceptable"),
                    (
                        "401",
                        "invalid_token: no admin token, or not one this server accepts",
                    ),
                    (
                        "403",
                        "insufficient_scope: admin:read for GET, admin:write otherwise",
                    ),
                ];
                if path.contains('{') {
                    errors.push(("404", "not_found: no such id"));
                }
                if matches!(method, "post" | "patch") {
                    errors.push(("409", "conflict: a duplicate, or a thing in use"));
                }
                for (status, description) in errors {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description).into());
                }
            }
        }
    }
}

/// A documented error answer with the RFC 6749 §5.2 body.
fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("OAuthErrorBody")))
                .build(),
        )
        .build()
}

const ALIASES: [(&str, &str); 3] = [
    ("/Authorize", "/authorize"),
    ("/v2/oauth/token", "/oauth/token"),
    (
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ),
];

/// The document, built once.
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        for (alias, primary) in ALIASES {
            if let Some(mut item) = doc.paths.paths.get(primary).cloned() {
                // operationIds are unique across a document (OpenAPI 3.1 §4.8.10.1).
                let suffix: String = alias
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                    if let Some(id) = &mut op.operation_id {
                        id.push_str("_as");
                        id.push_str(&suffix);
                    }
                }
                doc.paths.paths.insert(alias.to_owned(), item);
            }
        }
        serde_json::to_value(&doc).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_org_token_operation_documents_401_and_403() {
        let doc = super::document();
        let mut secured = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let by_org_token = op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("org_token").is_some()));
                if by_org_token {
                    secured += 1;
                    for status in ["401", "403"] {
                        assert!(
                            op["responses"].get(status).is_some(),
                            "{method} {path} lacks {status}"
                        );
                    }
                }
            }
        }
        assert_eq!(secured, 5, "the five /v2/users operations");
    }
}
