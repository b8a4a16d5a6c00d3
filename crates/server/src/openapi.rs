//! The OpenAPI document, generated from the handlers' annotations (utoipa). Aliased paths
//! (`/v2/oauth/token`, `/.well-known/openid-configuration`) are added as copies of their
//! primary path so that the document lists every route the router serves.

use std::sync::OnceLock;

use serde::Serialize;
use utoipa::OpenApi;

use crate::routes::{authorize, ops, revocation, token, users, well_known};

/// Token request parameters (RFC 6749 §4.4, RFC 8707), as a form or a JSON object.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `client_credentials`, `authorization_code`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    grant_type: String,
    /// The organization's token (token exchange).
    subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token` (token exchange).
    subject_token_type: Option<String>,
    /// The user id to get a token for (token exchange).
    requested_subject: Option<String>,
    /// The authorization code (authorization_code).
    code: Option<String>,
    /// The redirect URI the code was sent to (authorization_code).
    redirect_uri: Option<String>,
    /// The PKCE verifier (authorization_code).
    code_verifier: Option<String>,
    /// The refresh token (refresh_token).
    refresh_token: Option<String>,
    /// The client id (client_secret_post, or with Basic if it matches).
    client_id: Option<String>,
    /// The client secret (client_secret_post). Do not combine with HTTP Basic.
    client_secret: Option<String>,
    /// The API's audience (Auth0 style).
    audience: Option<String>,
    /// The API's audience as an absolute URI (RFC 8707).
    resource: Option<String>,
    /// Space-separated scopes; all the grant allows when absent.
    scope: Option<String>,
}

/// Revocation and introspection parameters (RFC 7009, RFC 7662).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenOnly {
    /// The token.
    token: String,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
    /// The client id (with client_secret_post).
    client_id: Option<String>,
    /// The client secret (client_secret_post).
    client_secret: Option<String>,
}

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
        well_known::metadata,
        well_known::jwks,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    components(schemas(
        TokenRequest,
        TokenOnly,
        token::TokenResponse,
        OAuthErrorBody,
        users::NewUserBody,
        users::UserView,
        users::UserPage,
        users::DelegatedToken
    )),
    modifiers(&OrgTokenAuth)
)]
struct ApiDoc;

/// Declares the `org_token` security scheme (an org's client-credentials token, as Bearer).
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
    }
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
            if let Some(item) = doc.paths.paths.get(primary).cloned() {
                doc.paths.paths.insert(alias.to_owned(), item);
            }
        }
        serde_json::to_value(&doc).unwrap_or_default()
    })
}
