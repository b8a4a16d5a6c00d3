//! RFC 9068 access-token claims.

use serde::{Deserialize, Serialize};

/// The claims of a Calyx access token (RFC 9068 §2.2, plus `org_id` and `sid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer URL.
    pub iss: String,
    /// Subject: `{client_id}@clients` for machine tokens, the user id for user tokens.
    pub sub: String,
    /// The API's audience.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// The organization of the client (machine tokens) or of the user (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The grant family a user token descends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The key the token is bound to (RFC 7800 §3.1): a DPoP key (RFC 9449 §6.1) or a TLS
    /// client certificate (RFC 8705 §3.1). Absent on a Bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a sender-constrained token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the RFC 7638 thumbprint of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// RFC 8705 §3.1: the base64url SHA-256 of the DER of the client's TLS certificate.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}
