//! The PostgreSQL backend, for several stateless `calyx serve` nodes sharing one database.
//!
//! Every role of [`calyx_core::store::Store`], written out for `sqlx::Postgres` with the same
//! statements as SQLite (`sql.rs`); what differs is connection setup, migrations, and row
//! locking. Exactly-once for codes and refresh tokens holds across nodes because the gate is a
//! conditional `UPDATE ... WHERE used_at IS NULL`: under READ COMMITTED a second writer waits
//! for the first's row lock, then re-checks the condition and finds nothing to update. No
//! in-process lock is involved.
//!
//! A transaction that may lock several rows takes those locks first, in key order, with one
//! `SELECT ... ORDER BY key FOR NO KEY UPDATE` (PostgreSQL documentation, "Explicit Locking",
//! "Deadlocks": transactions that lock the same rows in one order cannot wait on each other
//! in a cycle). Across tables the order is fixed as well: families before refresh tokens, a
//! client before its grants, and every row before `change_seq`, the row that the triggers of
//! `0001_foundation.sql` update on each write to the configuration tables (so a
//! single-statement write locks its row, then `change_seq`). The rotation batch is retried a
//! few times if PostgreSQL still reports a deadlock or a serialization failure: a failed
//! batch has written nothing.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use calyx_core::audit::{AuditEvent, AuditFilter};
use calyx_core::model::{
    Api, Attempt, AuthCode, Client, ClientGrant, Delivery, Family, FamilyFilter, Org, Page,
    PurgeReport, RefreshToken, RotateOutcome, Rotation, StoredKey, UsageCount, User, Webhook,
};
use calyx_core::store::{
    Apis, Audit, Clients, Codes, Housekeeping, Meta, Orgs, RefreshTokens, Revocations, SigningKeys,
    StoreError, StoreResult, Users, Webhooks,
};
use calyx_core::ScopeSet;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Postgres;
use tokio::sync::mpsc;

use crate::batch::{self, RotateJob, RunBatch};
use crate::rows::{self, ApiRow, ClientRow, CodeRow, FamilyRow, GrantRow, KeyRow, OrgRow};
use crate::rows::{RefreshFamilyRow, UserRow};
use crate::{map_err, sql, ConnectOptions};

/// Locks the client row: `upsert_grant`s of one client run one at a time, so each sees the
/// default the previous one set, and none holds a grant row while waiting for `change_seq`.
const LOCK_CLIENT: &str = "SELECT id FROM clients WHERE id = $1 FOR NO KEY UPDATE";

/// Locks every key of the algorithm of `$1`, the rows `promote_key` may update, in kid order.
const LOCK_KEYS_OF_ALG: &str = "SELECT kid FROM signing_keys \
     WHERE alg = (SELECT alg FROM signing_keys WHERE kid = $1) ORDER BY kid FOR NO KEY UPDATE";

/// Locks the families `delete_user` revokes, in id order.
const LOCK_USER_FAMILIES: &str = "SELECT id FROM families \
     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE";

/// Locks the families of the batch's presented tokens (`$1`, an array of hashes), in id order:
/// a rotation may revoke its family.
const LOCK_BATCH_FAMILIES: &str = "SELECT id FROM families \
     WHERE id IN (SELECT family_id FROM refresh_tokens WHERE token_hash = ANY($1)) \
     ORDER BY id FOR NO KEY UPDATE";

/// Locks the batch's presented tokens, in hash order: a rotation spends its token.
const LOCK_BATCH_TOKENS: &str = "SELECT token_hash FROM refresh_tokens \
     WHERE token_hash = ANY($1) ORDER BY token_hash FOR NO KEY UPDATE";

/// How many times a rotation batch is run before its callers get PostgreSQL's error.
const BATCH_ATTEMPTS: u32 = 3;

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Refresh rotations, committed in groups (see `batch`).
    rotations: mpsc::Sender<RotateJob>,
}

impl PgStore {
    /// Connects and migrates (migrations take an advisory lock, so nodes starting together
    /// apply each one once).
    ///
    /// A short acquire timeout makes requests fail fast with 503 while the database is down,
    /// and the pool reconnects by itself when it is back.
    pub async fn connect(opts: &ConnectOptions) -> Result<PgStore, StoreError> {
        let connect =
            PgConnectOptions::from_str(&opts.url).map_err(|e| StoreError::Other(Box::new(e)))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .test_before_acquire(true)
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let rotations = batch::spawn_writer(Rotations(pool.clone()));
        Ok(PgStore { pool, rotations })
    }
}

#[async_trait]
impl Meta for PgStore {
    async fn take_lease(
        &self,
        _name: &str,
        _holder: &str,
        _now: i64,
        _until: i64,
    ) -> StoreResult<bool> {
        todo!("take_lease")
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(sql::PING)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn change_seq(&self) -> StoreResult<i64> {
        sqlx::query_scalar(sql::CHANGE_SEQ)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn meta_get_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        sqlx::query(sql::META_INSERT)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        sqlx::query_scalar(sql::META_GET)
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl Orgs for PgStore {
    async fn list_orgs(&self, _page: Page<'_>) -> StoreResult<Vec<Org>> {
        todo!("list_orgs")
    }
    async fn update_org(&self, _org: &Org) -> StoreResult<bool> {
        todo!("update_org")
    }
    async fn delete_org(&self, _id: &str) -> StoreResult<bool> {
        todo!("delete_org")
    }

    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        sqlx::query(sql::ORG_INSERT)
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn org(&self, id: &str) -> StoreResult<Option<Org>> {
        let row: Option<OrgRow> = sqlx::query_as(sql::ORG_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        let row: Option<OrgRow> = sqlx::query_as(sql::ORG_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }
}

#[async_trait]
impl Apis for PgStore {
    async fn list_apis(&self, _page: Page<'_>) -> StoreResult<Vec<Api>> {
        todo!("list_apis")
    }
    async fn update_api(&self, _api: &Api) -> StoreResult<bool> {
        todo!("update_api")
    }
    async fn delete_api(&self, _id: &str, _now: i64) -> StoreResult<bool> {
        todo!("delete_api")
    }
    async fn grants_for_api(&self, _api_id: &str) -> StoreResult<Vec<ClientGrant>> {
        todo!("grants_for_api")
    }

    async fn insert_api(&self, api: &Api) -> StoreResult<()> {
        sqlx::query(sql::API_INSERT)
            .bind(&api.id)
            .bind(&api.audience)
            .bind(&api.name)
            .bind(api.scopes.to_string())
            .bind(api.alg.as_str())
            .bind(api.token_lifetime)
            .bind(api.user_token_lifetime)
            .bind(api.delegated_token_lifetime)
            .bind(api.refresh_token_lifetime)
            .bind(api.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn api_by_audience(&self, audience: &str) -> StoreResult<Option<Api>> {
        let row: Option<ApiRow> = sqlx::query_as(sql::API_BY_AUDIENCE)
            .bind(audience)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn api(&self, id: &str) -> StoreResult<Option<Api>> {
        let row: Option<ApiRow> = sqlx::query_as(sql::API_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn apis(&self) -> StoreResult<Vec<Api>> {
        let rows: Vec<ApiRow> = sqlx::query_as(sql::APIS)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[async_trait]
impl Clients for PgStore {
    async fn insert_grant(&self, _grant: &ClientGrant) -> StoreResult<()> {
        todo!("insert_grant")
    }
    async fn update_grant(&self, _grant: &ClientGrant) -> StoreResult<bool> {
        todo!("update_grant")
    }
    async fn delete_grant(&self, _client_id: &str, _api_id: &str) -> StoreResult<bool> {
        todo!("delete_grant")
    }
    async fn list_clients(
        &self,
        _org_id: Option<&str>,
        _page: Page<'_>,
    ) -> StoreResult<Vec<Client>> {
        todo!("list_clients")
    }
    async fn update_client(&self, _client: &Client) -> StoreResult<bool> {
        todo!("update_client")
    }
    async fn delete_client(&self, _client_id: &str, _now: i64) -> StoreResult<bool> {
        todo!("delete_client")
    }

    async fn insert_client(&self, c: &Client) -> StoreResult<()> {
        let (redirect_uris, grant_types) = rows::client_lists(c);
        sqlx::query(sql::CLIENT_INSERT)
            .bind(&c.id)
            .bind(&c.org_id)
            .bind(&c.name)
            .bind(&c.description)
            .bind(&c.website_uri)
            .bind(&c.privacy_policy_uri)
            .bind(&c.tos_uri)
            .bind(redirect_uris)
            .bind(grant_types)
            .bind(c.client_type.as_str())
            .bind(&c.secret_hash)
            .bind(&c.previous_secret_hash)
            .bind(c.previous_secret_expires_at)
            .bind(c.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row: Option<ClientRow> = sqlx::query_as(sql::CLIENT_BY_ID)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: Option<i64>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::CLIENT_ROTATE_SECRET)
            .bind(client_id)
            .bind(previous_expires_at)
            .bind(new_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn upsert_grant(&self, g: &ClientGrant) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(LOCK_CLIENT)
            .bind(&g.client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if g.is_default {
            sqlx::query(sql::GRANT_CLEAR_OTHER_DEFAULTS)
                .bind(&g.client_id)
                .bind(&g.api_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(sql::GRANT_UPSERT)
            .bind(&g.client_id)
            .bind(&g.api_id)
            .bind(g.scopes.to_string())
            .bind(g.is_default)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn grants_for_client(&self, client_id: &str) -> StoreResult<Vec<ClientGrant>> {
        let rows: Vec<GrantRow> = sqlx::query_as(sql::GRANTS_FOR_CLIENT)
            .bind(client_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[async_trait]
impl SigningKeys for PgStore {
    async fn insert_key(&self, k: &StoredKey) -> StoreResult<()> {
        sqlx::query(sql::KEY_INSERT)
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_key)
            .bind(k.created_at)
            .bind(k.promoted_at)
            .bind(k.retires_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn live_keys(&self, now: i64) -> StoreResult<Vec<StoredKey>> {
        let mut keys = self.all_keys().await?;
        keys.retain(|k| k.retires_at.is_none_or(|r| r > now));
        Ok(keys)
    }

    async fn all_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(sql::KEYS_ALL)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn promote_key(&self, kid: &str, now: i64, retire_previous_at: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(LOCK_KEYS_OF_ALG)
            .bind(kid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let promoted = sqlx::query(sql::KEY_PROMOTE)
            .bind(kid)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if !promoted {
            return Ok(false);
        }
        sqlx::query(sql::KEY_RETIRE_PREVIOUS)
            .bind(kid)
            .bind(retire_previous_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn retire_key(&self, kid: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(sql::KEY_RETIRE)
            .bind(kid)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Users for PgStore {
    async fn update_user(
        &self,
        _user: &User,
        _scopes: Option<&[(String, ScopeSet)]>,
    ) -> StoreResult<bool> {
        todo!("update_user")
    }
    async fn all_user_scopes(&self, _user_id: &str) -> StoreResult<Vec<(String, ScopeSet)>> {
        todo!("all_user_scopes")
    }

    async fn insert_user(&self, u: &User, scopes: &[(String, ScopeSet)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(sql::USER_INSERT)
            .bind(&u.id)
            .bind(&u.org_id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(&u.external_id)
            .bind(&u.email)
            .bind(u.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for (api_id, s) in scopes {
            sqlx::query(sql::USER_SCOPES_INSERT)
                .bind(&u.id)
                .bind(api_id)
                .bind(s.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(sql::USER_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }

    async fn users_by_username(&self, username: &str) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sql::USERS_BY_USERNAME)
            .bind(username)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::USER_SET_PASSWORD)
            .bind(user_id)
            .bind(password_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_users(&self, org_id: Option<&str>, page: Page<'_>) -> StoreResult<Vec<User>> {
        let Some(org_id) = org_id else {
            todo!("list_users of every org")
        };
        let (after, limit) = (page.after, page.limit);
        let rows: Vec<UserRow> = sqlx::query_as(sql::USERS_PAGE)
            .bind(org_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_user(&self, org_id: &str, user_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let deleted = sqlx::query(sql::USER_DELETE)
            .bind(user_id)
            .bind(org_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if deleted {
            sqlx::query(LOCK_USER_FAMILIES)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query(sql::USER_REVOKE_FAMILIES)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(deleted)
    }

    async fn user_scopes(&self, user_id: &str, api_id: &str) -> StoreResult<Option<ScopeSet>> {
        let s: Option<String> = sqlx::query_scalar(sql::USER_SCOPES)
            .bind(user_id)
            .bind(api_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        s.map(|s| rows::scopes(&s)).transpose()
    }
}

#[async_trait]
impl Codes for PgStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        sqlx::query(sql::CODE_INSERT)
            .bind(&c.code_hash)
            .bind(&c.family_id)
            .bind(&c.client_id)
            .bind(&c.user_id)
            .bind(&c.api_id)
            .bind(c.scope.to_string())
            .bind(&c.redirect_uri)
            .bind(c.redirect_uri_given)
            .bind(&c.code_challenge)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.used_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn code(&self, code_hash: &[u8]) -> StoreResult<Option<AuthCode>> {
        let row: Option<CodeRow> = sqlx::query_as(sql::CODE_BY_HASH)
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn redeem_code(
        &self,
        code_hash: &[u8],
        now: i64,
        f: &Family,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let won = sqlx::query(sql::CODE_SPEND)
            .bind(code_hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if !won {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        sqlx::query(sql::FAMILY_INSERT)
            .bind(&f.id)
            .bind(&f.client_id)
            .bind(&f.user_id)
            .bind(&f.org_id)
            .bind(&f.api_id)
            .bind(f.scope.to_string())
            .bind(f.created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some(r) = refresh {
            batch::insert_refresh::<Postgres>(&mut *tx, r)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

#[async_trait]
impl RefreshTokens for PgStore {
    async fn list_families(
        &self,
        _filter: &FamilyFilter,
        _page: Page<'_>,
    ) -> StoreResult<Vec<Family>> {
        todo!("list_families")
    }
    async fn revoke_client_families(&self, _client_id: &str, _now: i64) -> StoreResult<u64> {
        todo!("revoke_client_families")
    }

    async fn family(&self, id: &str) -> StoreResult<Option<Family>> {
        let row: Option<FamilyRow> = sqlx::query_as(sql::FAMILY_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn revoke_family(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(sql::FAMILY_REVOKE)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn refresh_token(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(RefreshToken, Family)>> {
        let row: Option<RefreshFamilyRow> = sqlx::query_as(sql::REFRESH_WITH_FAMILY)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn rotate_refresh(&self, rotation: Rotation) -> StoreResult<RotateOutcome> {
        batch::rotate(&self.rotations, rotation).await
    }
}

#[async_trait]
impl Revocations for PgStore {
    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> StoreResult<()> {
        sqlx::query(sql::JTI_REVOKE)
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        let hit: Option<i64> = sqlx::query_scalar(sql::JTI_REVOKED)
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(hit.is_some())
    }
}

/// The group-commit side of the pool.
struct Rotations(PgPool);

#[async_trait]
impl RunBatch for Rotations {
    async fn run_batch(&self, jobs: &[RotateJob]) -> StoreResult<Vec<RotateOutcome>> {
        let mut attempt = 1;
        loop {
            match self.try_batch(jobs).await {
                Err(e) if attempt < BATCH_ATTEMPTS && is_transient(&e) => {
                    tracing::warn!(
                        attempt,
                        error = %e,
                        "refresh rotation batch rolled back, retrying"
                    );
                    attempt += 1;
                }
                done => return done.map_err(map_err),
            }
        }
    }
}

impl Rotations {
    /// Locks what the batch may write, in order, then runs each job and commits.
    async fn try_batch(&self, jobs: &[RotateJob]) -> sqlx::Result<Vec<RotateOutcome>> {
        let hashes: Vec<&[u8]> = jobs
            .iter()
            .map(|j| j.rotation.old_hash.as_slice())
            .collect();
        let mut tx = self.0.begin().await?;
        sqlx::query(LOCK_BATCH_FAMILIES)
            .bind(&hashes)
            .execute(&mut *tx)
            .await?;
        sqlx::query(LOCK_BATCH_TOKENS)
            .bind(&hashes)
            .execute(&mut *tx)
            .await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            outcomes.push(batch::rotate_one::<Postgres>(&mut *tx, job).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// A deadlock (`40P01`) or serialization failure (`40001`): PostgreSQL rolled the transaction
/// back, and running it again may succeed.
fn is_transient(e: &sqlx::Error) -> bool {
    let code = match e {
        sqlx::Error::Database(db) => db.code(),
        _ => None,
    };
    matches!(code.as_deref(), Some("40P01" | "40001"))
}

#[async_trait]
impl Audit for PgStore {
    async fn append_audit(&self, _event: &AuditEvent, _deliveries: &[Delivery]) -> StoreResult<()> {
        todo!("append_audit")
    }

    async fn list_audit(
        &self,
        _filter: &AuditFilter,
        _page: Page<'_>,
    ) -> StoreResult<Vec<AuditEvent>> {
        todo!("list_audit")
    }

    async fn audit_event(&self, _id: &str) -> StoreResult<Option<AuditEvent>> {
        todo!("audit_event")
    }
}

#[async_trait]
impl Webhooks for PgStore {
    async fn insert_webhook(&self, _webhook: &Webhook) -> StoreResult<()> {
        todo!("insert_webhook")
    }

    async fn webhook(&self, _id: &str) -> StoreResult<Option<Webhook>> {
        todo!("webhook")
    }

    async fn list_webhooks(&self, _page: Page<'_>) -> StoreResult<Vec<Webhook>> {
        todo!("list_webhooks")
    }

    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        todo!("active_webhooks")
    }

    async fn update_webhook(&self, _webhook: &Webhook) -> StoreResult<bool> {
        todo!("update_webhook")
    }

    async fn delete_webhook(&self, _id: &str) -> StoreResult<bool> {
        todo!("delete_webhook")
    }

    async fn claim_deliveries(
        &self,
        _now: i64,
        _lease_until: i64,
        _limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        todo!("claim_deliveries")
    }

    async fn finish_delivery(&self, _attempt: &Attempt) -> StoreResult<()> {
        todo!("finish_delivery")
    }

    async fn list_deliveries(
        &self,
        _webhook_id: &str,
        _page: Page<'_>,
    ) -> StoreResult<Vec<Delivery>> {
        todo!("list_deliveries")
    }
}

#[async_trait]
impl Housekeeping for PgStore {
    async fn add_usage(&self, _counts: &[UsageCount]) -> StoreResult<()> {
        todo!("add_usage")
    }

    async fn usage(&self, _client_id: &str, _since: i64) -> StoreResult<Vec<UsageCount>> {
        todo!("usage")
    }

    async fn purge(
        &self,
        _now: i64,
        _access_grace: i64,
        _audit_before: i64,
        _dry_run: bool,
    ) -> StoreResult<PurgeReport> {
        todo!("purge")
    }
}
