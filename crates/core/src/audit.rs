//! The audit log's vocabulary: what an event records and the types of event there are.
//!
//! An event is written for every change made through the management API or the CLI (who,
//! to what, which fields — never a secret) and for every security event the server sees.
//! Events are append-only; only the purge removes them, after the configured retention.

use serde::Serialize;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Opaque id, `evt_...`, increasing with time: the cursor of the listing and the id a
    /// webhook receiver sees on every attempt.
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// The event type, one of [`kind`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Who did it: `cli:<os user>`, `client:<admin client id>`, `org-client:<client id>`
    /// (an organization's backend through `/v2/users`), or `calyx` (the server itself).
    pub actor: String,
    /// The organization concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The client concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The id of the thing acted on (an org, API, client, user, key, family or webhook id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The caller's network address, when the change came over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What changed (field names and new non-secret values), or the event's particulars.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

/// Which events a listing returns; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this type (`client.disabled`), or this family of types when it ends in `.*`
    /// (`security.*`).
    pub kind: Option<String>,
    /// Only events about this organization.
    pub org_id: Option<String>,
    /// Only events about this client.
    pub client_id: Option<String>,
    /// Only events about this user.
    pub user_id: Option<String>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events before this time.
    pub until: Option<i64>,
}

/// The event types. Management changes are `<resource>.<verb>`; security events start with
/// `security.`.
pub mod kind {
    /// An organization was created.
    pub const ORG_CREATED: &str = "org.created";
    /// An organization was renamed.
    pub const ORG_UPDATED: &str = "org.updated";
    /// An organization was deleted.
    pub const ORG_DELETED: &str = "org.deleted";
    /// An API was created.
    pub const API_CREATED: &str = "api.created";
    /// An API's name, scopes, descriptions or lifetimes changed.
    pub const API_UPDATED: &str = "api.updated";
    /// An API was deleted (its grants with it, its families revoked).
    pub const API_DELETED: &str = "api.deleted";
    /// A client was registered.
    pub const CLIENT_CREATED: &str = "client.created";
    /// A client's registration changed.
    pub const CLIENT_UPDATED: &str = "client.updated";
    /// A client was disabled.
    pub const CLIENT_DISABLED: &str = "client.disabled";
    /// A client was enabled again.
    pub const CLIENT_ENABLED: &str = "client.enabled";
    /// A client was deleted (its families revoked).
    pub const CLIENT_DELETED: &str = "client.deleted";
    /// A client's secret was rotated.
    pub const CLIENT_SECRET_ROTATED: &str = "client.secret_rotated";
    /// Every family of a client was revoked.
    pub const CLIENT_TOKENS_REVOKED: &str = "client.tokens_revoked";
    /// A client grant was created.
    pub const GRANT_CREATED: &str = "grant.created";
    /// A client grant changed.
    pub const GRANT_UPDATED: &str = "grant.updated";
    /// A client grant was deleted.
    pub const GRANT_DELETED: &str = "grant.deleted";
    /// A user was created.
    pub const USER_CREATED: &str = "user.created";
    /// A user changed.
    pub const USER_UPDATED: &str = "user.updated";
    /// A user was deleted (the user's families revoked).
    pub const USER_DELETED: &str = "user.deleted";
    /// A grant family was revoked by an operator.
    pub const FAMILY_REVOKED: &str = "family.revoked";
    /// A signing key was rotated: the next key signs now.
    pub const KEY_ROTATED: &str = "key.rotated";
    /// A signing key was retired at once.
    pub const KEY_RETIRED: &str = "key.retired";
    /// A webhook was created.
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    /// A webhook changed.
    pub const WEBHOOK_UPDATED: &str = "webhook.updated";
    /// A webhook was deleted.
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
    /// An organization's entitlement on an API was set.
    pub const ENTITLEMENT_SET: &str = "org.entitlement_set";
    /// An organization's entitlement on an API was removed.
    pub const ENTITLEMENT_DELETED: &str = "org.entitlement_deleted";
    /// The branding of the pages changed.
    pub const BRANDING_UPDATED: &str = "branding.updated";
    /// A user took back an application's access (its consent and token chains).
    pub const CONSENT_REVOKED: &str = "consent.revoked";
    /// An operator or organization admin signed in to the console or the developer portal.
    pub const SESSION_STARTED: &str = "session.started";
    /// The purge ran.
    pub const PURGE_COMPLETED: &str = "purge.completed";
    /// A spent refresh token was presented again; its family is revoked (RFC 9700 §4.14.2).
    pub const REFRESH_TOKEN_REUSED: &str = "security.refresh_token_reused";
    /// A spent authorization code was presented again; its family is revoked (RFC 6749
    /// §4.1.2).
    pub const CODE_REUSED: &str = "security.code_reused";
    /// A client id was blocked after repeated failed authentications.
    pub const CLIENT_THROTTLED: &str = "security.client_throttled";
    /// Sign-ins were blocked after repeated failures.
    pub const LOGIN_THROTTLED: &str = "security.login_throttled";
    /// A request to the management API carried no valid admin token.
    pub const ADMIN_AUTH_FAILED: &str = "security.admin_auth_failed";

    /// Every type, for validating webhook subscriptions and filters.
    pub const ALL: &[&str] = &[
        ORG_CREATED,
        ORG_UPDATED,
        ORG_DELETED,
        ENTITLEMENT_SET,
        ENTITLEMENT_DELETED,
        BRANDING_UPDATED,
        CONSENT_REVOKED,
        SESSION_STARTED,
        API_CREATED,
        API_UPDATED,
        API_DELETED,
        CLIENT_CREATED,
        CLIENT_UPDATED,
        CLIENT_DISABLED,
        CLIENT_ENABLED,
        CLIENT_DELETED,
        CLIENT_SECRET_ROTATED,
        CLIENT_TOKENS_REVOKED,
        GRANT_CREATED,
        GRANT_UPDATED,
        GRANT_DELETED,
        USER_CREATED,
        USER_UPDATED,
        USER_DELETED,
        FAMILY_REVOKED,
        KEY_ROTATED,
        KEY_RETIRED,
        WEBHOOK_CREATED,
        WEBHOOK_UPDATED,
        WEBHOOK_DELETED,
        PURGE_COMPLETED,
        REFRESH_TOKEN_REUSED,
        CODE_REUSED,
        CLIENT_THROTTLED,
        LOGIN_THROTTLED,
        ADMIN_AUTH_FAILED,
    ];

    /// True when `pattern` names a type, a family of types (`client.*`), or every type (`*`).
    pub fn is_pattern(pattern: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some("") => true,
            Some(prefix) => prefix.ends_with('.') && ALL.iter().any(|k| k.starts_with(prefix)),
            None => ALL.contains(&pattern),
        }
    }

    /// True when `kind` matches `pattern` (a type, `family.*` or `*`).
    pub fn matches(pattern: &str, kind: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => pattern == kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kind;

    #[test]
    fn patterns_name_types_families_or_everything() {
        assert!(kind::is_pattern("*"));
        assert!(kind::is_pattern("security.*"));
        assert!(kind::is_pattern(kind::CLIENT_DISABLED));
        assert!(!kind::is_pattern("client.exploded"));
        assert!(!kind::is_pattern("sec*"));
        assert!(!kind::is_pattern("nothing.*"));
        assert!(kind::matches("security.*", kind::REFRESH_TOKEN_REUSED));
        assert!(!kind::matches("security.*", kind::CLIENT_DELETED));
        assert!(kind::matches("*", kind::CLIENT_DELETED));
    }
}
