//! RFC 8414 authorization server metadata and the JWKS (RFC 7517).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use calyx_core::model::GrantType;

use crate::state::AppState;

/// RFC 8414 metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "RFC 8414 authorization server metadata", body = Object)))]
pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.issuer.trim_end_matches('/');
    let grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    // Exactly what is supported (RFC 8414 §2): the mutual-TLS methods only when Calyx
    // terminates TLS with --tls-client-ca.
    let mtls = state.client_cas.is_some();
    let mut methods = vec![
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    if mtls {
        methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
    }
    // Revocation and the token endpoint also take a public client's bare client_id.
    let with_none: Vec<&str> = methods.iter().copied().chain(["none"]).collect();
    let mut metadata = serde_json::json!({
        "issuer": state.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
        "require_pushed_authorization_requests": false,
        "code_challenge_methods_supported": ["S256"],
        "response_modes_supported": ["query"],
        "authorization_response_iss_parameter_supported": true,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": grants,
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": with_none,
        "token_endpoint_auth_signing_alg_values_supported": calyx_token::dpop::ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": with_none,
        "revocation_endpoint_auth_signing_alg_values_supported": calyx_token::dpop::ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": calyx_token::dpop::ALGORITHMS,
        "service_documentation": format!("{base}/openapi.json"),
        "dpop_signing_alg_values_supported": calyx_token::dpop::ALGORITHMS,
    });
    if mtls {
        metadata["tls_client_certificate_bound_access_tokens"] = true.into();
    }
    Json(metadata)
}

/// The public signing keys: the current key of each algorithm and the previous ones still
/// within their retirement window.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "RFC 7517 JWK set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    // Short enough that a retired key leaves resource servers soon, long enough to absorb
    // bursts; rotations need no short max-age, as the next key is published in advance.
    static CACHE_CONTROL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("public, max-age={}", crate::keys::JWKS_MAX_AGE_SECS));
    let keys = state.keys();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, CACHE_CONTROL.as_str()),
        ],
        keys.jwks_json().to_owned(),
    )
}
