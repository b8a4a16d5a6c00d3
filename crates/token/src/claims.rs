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
}
