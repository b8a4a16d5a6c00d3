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
    /// The grant.
    grant_type: GrantTypeName,
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

/// The grants the token endpoint knows; any other value gets `unsupported_grant_type`.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub enum GrantTypeName {
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 6749 §4.1.3.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 8693.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
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
        GrantTypeName,
        TokenOnly,
        token::TokenResponse,
        OAuthErrorBody,
        users::NewUserBody,
        users::UserView,
        users::UserPage,
        users::DelegatedToken,
        authorize::LoginForm,
        authorize::ConsentForm
    )),
    modifiers(&OrgTokenAuth, &BodyLimits)
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
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("OAuthErrorBody")))
                        .build(),
                )
                .build()
        };
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
                        .or_insert_with(|| error(description).into());
                }
            }
        }
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
