//! Row shapes and their conversion to the domain model. Lists are stored as text: scopes and
//! grant types space-separated, redirect URIs one per line (neither may contain a space or a
//! newline).

use calyx_core::model::{
    Api, AuthCode, Client, ClientGrant, Family, GrantType, Org, RefreshToken, SigningAlg,
    StoredKey, User,
};
use calyx_core::store::StoreError;
use calyx_core::ScopeSet;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("stored {what} is invalid: {detail}").into())
}

pub(crate) fn scopes(s: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(s).map_err(|e| corrupt("scope", e))
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    id: String,
    name: String,
    created_at: i64,
}

impl From<OrgRow> for Org {
    fn from(r: OrgRow) -> Org {
        Org {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiRow {
    id: String,
    audience: String,
    name: String,
    scopes: String,
    alg: String,
    token_lifetime: i64,
    user_token_lifetime: i64,
    delegated_token_lifetime: i64,
    refresh_token_lifetime: i64,
    created_at: i64,
}

impl TryFrom<ApiRow> for Api {
    type Error = StoreError;
    fn try_from(r: ApiRow) -> Result<Api, StoreError> {
        Ok(Api {
            scopes: scopes(&r.scopes)?,
            alg: r.alg.parse::<SigningAlg>().map_err(|e| corrupt("alg", e))?,
            id: r.id,
            audience: r.audience,
            name: r.name,
            token_lifetime: r.token_lifetime,
            user_token_lifetime: r.user_token_lifetime,
            delegated_token_lifetime: r.delegated_token_lifetime,
            refresh_token_lifetime: r.refresh_token_lifetime,
            scope_descriptions: Default::default(),
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    id: String,
    org_id: String,
    name: String,
    description: Option<String>,
    website_uri: Option<String>,
    privacy_policy_uri: Option<String>,
    tos_uri: Option<String>,
    redirect_uris: String,
    grant_types: String,
    client_type: String,
    secret_hash: Option<Vec<u8>>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Client, StoreError> {
        let grant_types = r
            .grant_types
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type", g)))
            .collect::<Result<_, _>>()?;
        Ok(Client {
            redirect_uris: r.redirect_uris.lines().map(str::to_owned).collect(),
            grant_types,
            client_type: r
                .client_type
                .parse()
                .map_err(|e| corrupt("client type", e))?,
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            website_uri: r.website_uri,
            privacy_policy_uri: r.privacy_policy_uri,
            tos_uri: r.tos_uri,
            secret_hash: r.secret_hash,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: r.previous_secret_expires_at,
            disabled: false,
            created_at: r.created_at,
        })
    }
}

/// The stored forms of a client's list fields.
pub(crate) fn client_lists(c: &Client) -> (String, String) {
    let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    (c.redirect_uris.join("\n"), grant_types.join(" "))
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    client_id: String,
    api_id: String,
    audience: String,
    scopes: String,
    is_default: bool,
}

impl TryFrom<GrantRow> for ClientGrant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<ClientGrant, StoreError> {
        Ok(ClientGrant {
            scopes: scopes(&r.scopes)?,
            client_id: r.client_id,
            api_id: r.api_id,
            audience: r.audience,
            is_default: r.is_default,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    alg: String,
    private_key: Vec<u8>,
    created_at: i64,
    promoted_at: Option<i64>,
    retires_at: Option<i64>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<StoredKey, StoreError> {
        Ok(StoredKey {
            alg: r.alg.parse().map_err(|e| corrupt("alg", e))?,
            kid: r.kid,
            private_key: r.private_key,
            created_at: r.created_at,
            promoted_at: r.promoted_at,
            retires_at: r.retires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    org_id: String,
    username: Option<String>,
    password_hash: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            org_id: r.org_id,
            username: r.username,
            password_hash: r.password_hash,
            external_id: r.external_id,
            email: r.email,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    code_hash: Vec<u8>,
    family_id: String,
    client_id: String,
    user_id: String,
    api_id: String,
    scope: String,
    redirect_uri: String,
    redirect_uri_given: bool,
    code_challenge: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<CodeRow> for AuthCode {
    type Error = StoreError;
    fn try_from(r: CodeRow) -> Result<AuthCode, StoreError> {
        Ok(AuthCode {
            scope: scopes(&r.scope)?,
            code_hash: r.code_hash,
            family_id: r.family_id,
            client_id: r.client_id,
            user_id: r.user_id,
            api_id: r.api_id,
            redirect_uri: r.redirect_uri,
            redirect_uri_given: r.redirect_uri_given,
            code_challenge: r.code_challenge,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    id: String,
    client_id: String,
    user_id: String,
    org_id: String,
    api_id: String,
    scope: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<FamilyRow> for Family {
    type Error = StoreError;
    fn try_from(r: FamilyRow) -> Result<Family, StoreError> {
        Ok(Family {
            scope: scopes(&r.scope)?,
            id: r.id,
            client_id: r.client_id,
            user_id: r.user_id,
            org_id: r.org_id,
            api_id: r.api_id,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshFamilyRow {
    token_hash: Vec<u8>,
    family_id: String,
    scope: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    successor_sealed: Option<Vec<u8>>,
    client_id: String,
    user_id: String,
    org_id: String,
    api_id: String,
    family_scope: String,
    family_created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<RefreshFamilyRow> for (RefreshToken, Family) {
    type Error = StoreError;
    fn try_from(r: RefreshFamilyRow) -> Result<(RefreshToken, Family), StoreError> {
        let family = Family {
            id: r.family_id.clone(),
            client_id: r.client_id,
            user_id: r.user_id,
            org_id: r.org_id,
            api_id: r.api_id,
            scope: scopes(&r.family_scope)?,
            created_at: r.family_created_at,
            revoked_at: r.revoked_at,
        };
        let token = RefreshToken {
            token_hash: r.token_hash,
            family_id: r.family_id,
            scope: scopes(&r.scope)?,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            successor_sealed: r.successor_sealed,
        };
        Ok((token, family))
    }
}
