//! Users: the people who sign in and approve applications, and whom an organization's
//! backend registers through `/v2/users`.

use std::collections::BTreeMap;

use calyx_core::audit::kind;
use calyx_core::model::{Role, User};
use calyx_core::store::StoreError;
use calyx_core::ScopeSet;
use calyx_token::secret::random_id;
use serde::Deserialize;
use serde_json::json;

use super::views::UserRecord;
use super::{invalid, not_found, parse_scopes, probe, About, Listing, ManageError};
use super::{ManageResult, Manager, ScopeList, OPERATOR_ORG_ID};

/// Fields of a new user.
#[derive(Clone, Default)]
pub struct NewUser {
    /// Owning organization id.
    pub org_id: String,
    /// Login name (unique within the organization).
    pub username: Option<String>,
    /// Password, hashed with argon2id before storage.
    pub password: Option<String>,
    /// The organization's own id for the user.
    pub external_id: Option<String>,
    /// Contact address.
    pub email: Option<String>,
    /// What the user may do on Calyx's own pages (`operator` only in the operators'
    /// organization; `org_admin` in any other).
    pub role: Option<Role>,
    /// Allowed scopes per API: `(audience, space-separated scopes)`.
    pub scopes: Vec<(String, String)>,
    /// The most any entry of `scopes` may hold: the registering organization client's grant.
    /// A scope beyond it is refused (`ManageError::InvalidScope`), so registering a user can
    /// never widen what the organization itself may obtain.
    pub ceiling: Option<ScopeSet>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("org_id", &self.org_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Changes to a user; absent fields stay as they are, an empty text clears an optional one.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Login name.
    pub username: Option<String>,
    /// A new password (at least 8 characters), stored only as an argon2id hash.
    pub password: Option<String>,
    /// The organization's own id for the user.
    pub external_id: Option<String>,
    /// Contact address.
    pub email: Option<String>,
    /// `operator` (users of the operators' organization), `org_admin` (users of any other),
    /// or an empty text for none.
    pub role: Option<String>,
    /// The most the user may grant, per API audience (replaces every entry).
    pub allowed_scopes: Option<BTreeMap<String, ScopeList>>,
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

fn check_text(what: &str, v: &Option<String>) -> ManageResult<()> {
    if let Some(v) = v {
        if v.trim().is_empty() || v.len() > 255 || v.chars().any(char::is_control) {
            return invalid(format!(
                "{what} must be 1 to 255 characters with no control characters"
            ));
        }
    }
    Ok(())
}

async fn hash_password(p: String) -> ManageResult<String> {
    if p.chars().count() < 8 {
        return invalid("the password must be at least 8 characters");
    }
    Ok(crate::passwords::hash_off_the_workers(p).await?)
}

/// A role is for a user who can sign in, and fits the organization: operators belong to the
/// operators' organization, organization admins to any other.
fn check_role(u: &User) -> ManageResult<()> {
    match u.role {
        None => Ok(()),
        Some(_) if u.password_hash.is_none() => {
            invalid("a user with a role needs a username and password to sign in with")
        }
        Some(Role::Operator) if u.org_id != OPERATOR_ORG_ID => invalid(format!(
            "only users of the operators' organization ({OPERATOR_ORG_ID}) can be operators"
        )),
        Some(Role::OrgAdmin) if u.org_id == OPERATOR_ORG_ID => invalid(
            "users of the operators' organization cannot be organization admins; give them the operator role",
        ),
        Some(_) => Ok(()),
    }
}

fn about(u: &User) -> About {
    About {
        org_id: Some(u.org_id.clone()),
        user_id: Some(u.id.clone()),
        target: Some(u.id.clone()),
        ..About::default()
    }
}

fn conflict(e: StoreError) -> ManageError {
    match e {
        StoreError::Conflict(_) => {
            ManageError::Conflict("a user with that username or external id already exists".into())
        }
        other => other.into(),
    }
}

impl Manager {
    /// Creates a user; the password is stored only as an argon2id hash. Allowed scopes must
    /// be defined by their API; the reserved user-management scopes are never allowed to
    /// users.
    pub async fn create_user(&self, new: NewUser) -> ManageResult<User> {
        if self.store.org(&new.org_id).await?.is_none() {
            return invalid(format!("no organization with id {}", new.org_id));
        }
        if new.password.is_some() && new.username.is_none() {
            return invalid("a password needs a username to sign in with");
        }
        check_text("username", &new.username)?;
        check_text("external_id", &new.external_id)?;
        check_text("email", &new.email)?;
        let scopes = self.user_scopes(&new.scopes, new.ceiling.as_ref()).await?;
        let password_hash = match new.password {
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let user = User {
            id: random_id("usr"),
            org_id: new.org_id,
            username: new.username,
            password_hash,
            external_id: new.external_id,
            email: new.email,
            role: new.role,
            created_at: self.clock.now(),
        };
        check_role(&user)?;
        self.store
            .insert_user(&user, &scopes)
            .await
            .map_err(conflict)?;
        self.record(
            kind::USER_CREATED,
            about(&user),
            json!({
                "username": user.username,
                "external_id": user.external_id,
                "email": user.email,
                "role": user.role.map(Role::as_str),
                "has_password": user.password_hash.is_some(),
                "allowed_scopes": scope_map(&new.scopes),
            }),
        )
        .await?;
        Ok(user)
    }

    /// Checks allowed scopes given per audience and resolves them to `(api_id, scopes)`.
    async fn user_scopes(
        &self,
        given: &[(String, String)],
        ceiling: Option<&ScopeSet>,
    ) -> ManageResult<Vec<(String, ScopeSet)>> {
        let mut scopes = Vec::new();
        for (audience, list) in given {
            let Some(api) = self.store.api_by_audience(audience).await? else {
                return invalid(format!("no API with audience {audience}"));
            };
            let set = parse_scopes("scopes", list)?;
            let unknown: Vec<&str> = set.iter().filter(|s| !api.scopes.contains(s)).collect();
            if !unknown.is_empty() {
                return invalid(format!(
                    "the API {audience} does not define the scopes: {}",
                    unknown.join(" ")
                ));
            }
            if let Some(r) = set
                .iter()
                .find(|s| calyx_core::scope::RESERVED_SCOPES.contains(s))
            {
                return invalid(format!(
                    "{r} is reserved for organization tokens and cannot be given to a user"
                ));
            }
            if let Some(ceiling) = ceiling {
                let beyond: Vec<&str> = set.difference(ceiling).collect();
                if !beyond.is_empty() {
                    return Err(ManageError::InvalidScope(format!(
                        "allowed_scopes goes beyond what this client is granted for {audience}: {}",
                        beyond.join(" ")
                    )));
                }
            }
            scopes.push((api.id, set));
        }
        Ok(scopes)
    }

    /// A user by id.
    pub async fn user(&self, id: &str) -> ManageResult<User> {
        match self.store.user(id).await? {
            Some(u) => Ok(u),
            None => not_found(format!("no user with id {id}")),
        }
    }

    /// A user as the API shows it, with allowed scopes by audience.
    pub async fn user_view(&self, u: User) -> ManageResult<UserRecord> {
        let mut allowed = BTreeMap::new();
        for (api_id, scopes) in self.store.all_user_scopes(&u.id).await? {
            if let Some(api) = self.store.api(&api_id).await? {
                allowed.insert(api.audience, scopes.iter().map(str::to_owned).collect());
            }
        }
        Ok(UserRecord::new(u, allowed))
    }

    /// A page of users, of one organization when `org_id` is given.
    pub async fn list_users(
        &self,
        org_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<UserRecord>> {
        let rows = self.store.list_users(org_id, probe(after, limit)).await?;
        let page = Listing::from_rows(rows, limit, |u| u.id.clone(), |u| u);
        let mut items = Vec::with_capacity(page.items.len());
        for u in page.items {
            items.push(self.user_view(u).await?);
        }
        Ok(Listing {
            items,
            next_after: page.next_after,
        })
    }

    /// Changes a user.
    pub async fn update_user(&self, id: &str, patch: UserPatch) -> ManageResult<User> {
        let mut u = self.user(id).await?;
        let mut changed = serde_json::Map::new();
        for (what, value, field) in [
            ("username", patch.username, &mut u.username),
            ("external_id", patch.external_id, &mut u.external_id),
            ("email", patch.email, &mut u.email),
        ] {
            if let Some(v) = value {
                let v = v.trim().to_owned();
                *field = (!v.is_empty()).then_some(v);
                check_text(what, field)?;
                changed.insert(what.into(), json!(field));
            }
        }
        if let Some(p) = patch.password {
            u.password_hash = Some(hash_password(p).await?);
            changed.insert("password".into(), json!("changed"));
        }
        if u.password_hash.is_some() && u.username.is_none() {
            return invalid("a password needs a username to sign in with");
        }
        if let Some(role) = patch.role {
            u.role = match role.trim() {
                "" => None,
                r => Some(r.parse().map_err(ManageError::Invalid)?),
            };
            changed.insert("role".into(), json!(u.role.map(Role::as_str)));
        }
        check_role(&u)?;
        let scopes = match patch.allowed_scopes {
            Some(map) => {
                let given: Vec<(String, String)> =
                    map.into_iter().map(|(a, s)| (a, s.joined())).collect();
                changed.insert("allowed_scopes".into(), scope_map(&given));
                Some(self.user_scopes(&given, None).await?)
            }
            None => None,
        };
        if !self
            .store
            .update_user(&u, scopes.as_deref())
            .await
            .map_err(conflict)?
        {
            return not_found(format!("no user with id {id}"));
        }
        self.record(kind::USER_UPDATED, about(&u), changed.into())
            .await?;
        Ok(u)
    }

    /// Deletes a user of `org_id` (any organization when `None`) and revokes every family of
    /// the user. A user of another organization is reported as absent.
    pub async fn delete_user(&self, org_id: Option<&str>, id: &str) -> ManageResult<()> {
        let u = match self.store.user(id).await? {
            Some(u) if org_id.is_none_or(|o| o == u.org_id) => u,
            _ => return not_found(format!("no user with id {id}")),
        };
        if !self
            .store
            .delete_user(&u.org_id, id, self.clock.now())
            .await?
        {
            return not_found(format!("no user with id {id}"));
        }
        self.record(
            kind::USER_DELETED,
            about(&u),
            json!({"username": u.username, "external_id": u.external_id}),
        )
        .await?;
        Ok(())
    }
}

fn scope_map(given: &[(String, String)]) -> serde_json::Value {
    given
        .iter()
        .map(|(a, s)| (a.clone(), json!(s)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
