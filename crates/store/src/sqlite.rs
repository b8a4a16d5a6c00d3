//! The embedded SQLite backend: one file, WAL mode, created on first use.
//!
//! Every role of [`calyx_core::store::Store`], written out for `sqlx::Sqlite`: reads go to a
//! pool of readers, writes to the single writer connection, and refresh rotations and
//! single-use marks to the group-commit writers (`batch`). The statements are `sql.rs`'s; the row shapes `rows.rs`'s.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use calyx_core::audit::{AuditEvent, AuditFilter};
use calyx_core::model::{
    Api, Attempt, AuthCode, Client, ClientGrant, Consent, Delivery, DeliveryState, Entitlement,
    Family, FamilyFilter, Org, Page, PurgeReport, PushedRequest, QuotaHit, QuotaLimit,
    RefreshToken, RotateOutcome, Rotation, StoredKey, UsageCount, User, Webhook,
};
use calyx_core::store::{
    Apis, Audit, Clients, Codes, Housekeeping, Meta, OneTime, Orgs, People, PoolStatus, Quotas,
    RefreshTokens, Revocations, RotationObserver, SigningKeys, StoreError, StoreResult, Users,
    Webhooks,
};
use calyx_core::ScopeSet;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Sqlite;
use tokio::sync::mpsc;

use crate::batch::{self, Count, CountJob, Mark, MarkJob, RotateJob, RunBatch};
use crate::purge;
use crate::rows::{self, ApiRow, ClientRow, CodeRow, FamilyRow, GrantRow, KeyRow, OrgRow};
use crate::rows::{AuditRow, DeliveryRow, RefreshFamilyRow, UsageRow, UserRow, WebhookRow};
use crate::{map_err, org_delete_err, org_in_use, sql, ConnectOptions};

/// A SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run while a write commits.
    reads: SqlitePool,
    /// One connection: SQLite has one writer at a time, and queueing writers here (async,
    /// in order) beats letting them spin in SQLite's busy handler, which sleeps.
    writes: SqlitePool,
    /// Refresh rotations, committed in groups on the write connection (see `batch`).
    rotations: mpsc::Sender<RotateJob>,
    /// Single-use marks, committed in groups the same way.
    marks: mpsc::Sender<MarkJob>,
    /// Quota counts, committed in groups the same way.
    counts: mpsc::Sender<CountJob>,
    /// Who hears about each rotation batch.
    observer: batch::Observer,
}

impl SqliteStore {
    /// Opens (creating if missing) the database and migrates it.
    ///
    /// WAL lets readers proceed while one writer commits. `synchronous=FULL` makes every
    /// commit durable on power loss before the call returns, which is what "durable before the
    /// response" means; `busy_timeout` lets concurrent writers (another process, the CLI) wait
    /// instead of failing.
    pub async fn connect(opts: &ConnectOptions) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::from_str(&opts.url)
            .map_err(|e| StoreError::Other(Box::new(e)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if opts.sqlite_sync_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writes)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let reads = SqlitePoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(map_err)?;
        let observer = batch::Observer::default();
        let rotations = batch::spawn_writer(Batches(writes.clone()), observer.clone());
        let marks = batch::spawn_writer(Batches(writes.clone()), batch::Observer::default());
        let counts = batch::spawn_writer(Batches(writes.clone()), batch::Observer::default());
        Ok(SqliteStore {
            reads,
            writes,
            rotations,
            marks,
            counts,
            observer,
        })
    }

    /// Writes a grant with `statement` (insert, upsert or update; binds client, API, scopes,
    /// default) in one transaction that first, when the grant is the default, clears the
    /// client's other defaults. False (and nothing written) when the statement touched no
    /// row.
    async fn write_grant(&self, g: &ClientGrant, statement: &str) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        if g.is_default {
            sqlx::query(sql::GRANT_CLEAR_OTHER_DEFAULTS)
                .bind(&g.client_id)
                .bind(&g.api_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let written = sqlx::query(statement)
            .bind(&g.client_id)
            .bind(&g.api_id)
            .bind(g.scopes.to_string())
            .bind(g.is_default)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if !written {
            // The other defaults stay as they were.
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    fn reader(&self) -> &SqlitePool {
        &self.reads
    }

    fn writer(&self) -> &SqlitePool {
        &self.writes
    }
}

#[async_trait]
impl Meta for SqliteStore {
    fn pool_status(&self) -> PoolStatus {
        let (r, w) = (&self.reads, &self.writes);
        PoolStatus {
            size: r.size() + w.size(),
            idle: (r.num_idle() + w.num_idle()) as u32,
            max: r.options().get_max_connections() + w.options().get_max_connections(),
        }
    }

    fn observe_rotations(&self, observer: RotationObserver) {
        self.observer.set(observer);
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::LEASE_TAKE)
            .bind(name)
            .bind(holder)
            .bind(now)
            .bind(until)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(sql::PING)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn change_seq(&self) -> StoreResult<i64> {
        sqlx::query_scalar(sql::CHANGE_SEQ)
            .fetch_one(self.reader())
            .await
            .map_err(map_err)
    }

    async fn meta_get_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        sqlx::query(sql::META_INSERT)
            .bind(key)
            .bind(value)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        sqlx::query_scalar(sql::META_GET)
            .bind(key)
            .fetch_one(self.reader())
            .await
            .map_err(map_err)
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(sql::META_GET)
            .bind(key)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)
    }

    async fn meta_set(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(sql::META_SET)
            .bind(key)
            .bind(value)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Orgs for SqliteStore {
    async fn list_orgs(&self, page: Page<'_>) -> StoreResult<Vec<Org>> {
        let rows: Vec<OrgRow> = sqlx::query_as(sql::ORGS_PAGE)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_org(&self, org: &Org) -> StoreResult<bool> {
        let done = sqlx::query(sql::ORG_UPDATE)
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.quota.per_hour)
            .bind(org.quota.per_day)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_org(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::ORG_DELETE_UNUSED)
            .bind(id)
            .execute(self.writer())
            .await
            .map_err(|e| org_delete_err(id, e))?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        match self.org(id).await? {
            Some(_) => Err(org_in_use(id)),
            None => Ok(false),
        }
    }

    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        sqlx::query(sql::ORG_INSERT)
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .bind(org.quota.per_hour)
            .bind(org.quota.per_day)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn org(&self, id: &str) -> StoreResult<Option<Org>> {
        let row: Option<OrgRow> = sqlx::query_as(sql::ORG_BY_ID)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        let row: Option<OrgRow> = sqlx::query_as(sql::ORG_BY_NAME)
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }
}

#[async_trait]
impl Apis for SqliteStore {
    async fn list_apis(&self, page: Page<'_>) -> StoreResult<Vec<Api>> {
        let rows: Vec<ApiRow> = sqlx::query_as(sql::APIS_PAGE)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_api(&self, api: &Api) -> StoreResult<bool> {
        let done = sqlx::query(sql::API_UPDATE)
            .bind(&api.id)
            .bind(&api.name)
            .bind(api.scopes.to_string())
            .bind(api.alg.as_str())
            .bind(api.token_lifetime)
            .bind(api.user_token_lifetime)
            .bind(api.delegated_token_lifetime)
            .bind(api.refresh_token_lifetime)
            .bind(rows::scope_descriptions(api))
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_api(&self, id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        sqlx::query(sql::API_REVOKE_FAMILIES)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let deleted = sqlx::query(sql::API_DELETE)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if !deleted {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn grants_for_api(&self, api_id: &str) -> StoreResult<Vec<ClientGrant>> {
        let rows: Vec<GrantRow> = sqlx::query_as(sql::GRANTS_FOR_API)
            .bind(api_id)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
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
            .bind(rows::scope_descriptions(api))
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn api_by_audience(&self, audience: &str) -> StoreResult<Option<Api>> {
        let row: Option<ApiRow> = sqlx::query_as(sql::API_BY_AUDIENCE)
            .bind(audience)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn api(&self, id: &str) -> StoreResult<Option<Api>> {
        let row: Option<ApiRow> = sqlx::query_as(sql::API_BY_ID)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn apis(&self) -> StoreResult<Vec<Api>> {
        let rows: Vec<ApiRow> = sqlx::query_as(sql::APIS)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[async_trait]
impl Clients for SqliteStore {
    async fn insert_grant(&self, g: &ClientGrant) -> StoreResult<()> {
        self.write_grant(g, sql::GRANT_INSERT).await.map(drop)
    }

    async fn update_grant(&self, g: &ClientGrant) -> StoreResult<bool> {
        self.write_grant(g, sql::GRANT_UPDATE).await
    }

    async fn delete_grant(&self, client_id: &str, api_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::GRANT_DELETE)
            .bind(client_id)
            .bind(api_id)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_clients(&self, org_id: Option<&str>, page: Page<'_>) -> StoreResult<Vec<Client>> {
        let rows: Vec<ClientRow> = sqlx::query_as(sql::CLIENTS_PAGE)
            .bind(org_id)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_client(&self, c: &Client) -> StoreResult<bool> {
        let (redirect_uris, grant_types) = rows::client_lists(c);
        let done = sqlx::query(sql::CLIENT_UPDATE)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.description)
            .bind(&c.website_uri)
            .bind(&c.privacy_policy_uri)
            .bind(&c.tos_uri)
            .bind(redirect_uris)
            .bind(grant_types)
            .bind(c.disabled)
            .bind(rows::client_policy(c))
            .bind(c.quota.per_hour)
            .bind(c.quota.per_day)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        sqlx::query(sql::CLIENT_REVOKE_FAMILIES)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(sql::GRANTS_DELETE_OF_CLIENT)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let deleted = sqlx::query(sql::CLIENT_DELETE)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if !deleted {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
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
            .bind(c.disabled)
            .bind(rows::client_policy(c))
            .bind(c.quota.per_hour)
            .bind(c.quota.per_day)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row: Option<ClientRow> = sqlx::query_as(sql::CLIENT_BY_ID)
            .bind(client_id)
            .fetch_optional(self.reader())
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
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn upsert_grant(&self, g: &ClientGrant) -> StoreResult<()> {
        self.write_grant(g, sql::GRANT_UPSERT).await.map(drop)
    }

    async fn grants_for_client(&self, client_id: &str) -> StoreResult<Vec<ClientGrant>> {
        let rows: Vec<GrantRow> = sqlx::query_as(sql::GRANTS_FOR_CLIENT)
            .bind(client_id)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[async_trait]
impl SigningKeys for SqliteStore {
    async fn insert_key(&self, k: &StoredKey) -> StoreResult<()> {
        sqlx::query(sql::KEY_INSERT)
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_key)
            .bind(k.created_at)
            .bind(k.promoted_at)
            .bind(k.retires_at)
            .execute(self.writer())
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
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn promote_key(&self, kid: &str, now: i64, retire_previous_at: i64) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
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
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Users for SqliteStore {
    async fn update_user(
        &self,
        u: &User,
        scopes: Option<&[(String, ScopeSet)]>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let updated = sqlx::query(sql::USER_UPDATE)
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(&u.external_id)
            .bind(&u.email)
            .bind(u.role.map(|r| r.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if !updated {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        if let Some(scopes) = scopes {
            sqlx::query(sql::USER_SCOPES_DELETE)
                .bind(&u.id)
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
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn all_user_scopes(&self, user_id: &str) -> StoreResult<Vec<(String, ScopeSet)>> {
        let found: Vec<(String, String)> = sqlx::query_as(sql::USER_SCOPES_ALL)
            .bind(user_id)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows::user_scopes(found)
    }

    async fn insert_user(&self, u: &User, scopes: &[(String, ScopeSet)]) -> StoreResult<()> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        sqlx::query(sql::USER_INSERT)
            .bind(&u.id)
            .bind(&u.org_id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(&u.external_id)
            .bind(&u.email)
            .bind(u.created_at)
            .bind(u.role.map(|r| r.as_str()))
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
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }

    async fn users_by_username(&self, username: &str) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sql::USERS_BY_USERNAME)
            .bind(username)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::USER_SET_PASSWORD)
            .bind(user_id)
            .bind(password_hash)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_users(&self, org_id: Option<&str>, page: Page<'_>) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sql::USERS_PAGE)
            .bind(org_id)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_user(&self, org_id: &str, user_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let deleted = sqlx::query(sql::USER_DELETE)
            .bind(user_id)
            .bind(org_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            == 1;
        if deleted {
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
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        s.map(|s| rows::scopes(&s)).transpose()
    }
}

#[async_trait]
impl Codes for SqliteStore {
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
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn code(&self, code_hash: &[u8]) -> StoreResult<Option<AuthCode>> {
        let row: Option<CodeRow> = sqlx::query_as(sql::CODE_BY_HASH)
            .bind(code_hash)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn redeem_code(&self, code_hash: &[u8], now: i64, f: &Family) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
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
        batch::insert_family::<Sqlite>(&mut *tx, f)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

#[async_trait]
impl RefreshTokens for SqliteStore {
    async fn list_families(
        &self,
        filter: &FamilyFilter,
        page: Page<'_>,
    ) -> StoreResult<Vec<Family>> {
        let rows: Vec<FamilyRow> = sqlx::query_as(sql::FAMILIES_PAGE)
            .bind(&filter.client_id)
            .bind(&filter.user_id)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_client_families(&self, client_id: &str, now: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::CLIENT_REVOKE_FAMILIES)
            .bind(client_id)
            .bind(now)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn family(&self, id: &str) -> StoreResult<Option<Family>> {
        let row: Option<FamilyRow> = sqlx::query_as(sql::FAMILY_BY_ID)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn revoke_family(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(sql::FAMILY_REVOKE)
            .bind(id)
            .bind(now)
            .execute(self.writer())
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
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn rotate_refresh(&self, rotation: Rotation) -> StoreResult<RotateOutcome> {
        batch::submit(&self.rotations, rotation).await
    }
}

#[async_trait]
impl OneTime for SqliteStore {
    async fn use_once(&self, key: &[u8], expires_at: i64) -> StoreResult<bool> {
        let mark = Mark {
            key: key.to_vec(),
            expires_at,
        };
        batch::submit(&self.marks, mark).await
    }

    async fn push_request(&self, pushed: &PushedRequest) -> StoreResult<()> {
        sqlx::query(sql::PUSHED_INSERT)
            .bind(&pushed.uri_hash)
            .bind(&pushed.client_id)
            .bind(&pushed.params)
            .bind(pushed.expires_at)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        uri_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<PushedRequest>> {
        let row: Option<(Vec<u8>, String, String, i64)> = sqlx::query_as(sql::PUSHED_TAKE)
            .bind(uri_hash)
            .fetch_optional(self.writer())
            .await
            .map_err(map_err)?;
        Ok(row
            .filter(|r| r.3 >= now)
            .map(|(uri_hash, client_id, params, expires_at)| PushedRequest {
                uri_hash,
                client_id,
                params,
                expires_at,
            }))
    }
}

#[async_trait]
impl Quotas for SqliteStore {
    async fn count_token(
        &self,
        limits: &[QuotaLimit],
        now: i64,
    ) -> StoreResult<Result<(), QuotaHit>> {
        let count = Count {
            limits: limits.to_vec(),
            now,
        };
        batch::submit(&self.counts, count).await
    }

    async fn quota_used(&self, limits: &[QuotaLimit], now: i64) -> StoreResult<Vec<i64>> {
        let mut used = Vec::with_capacity(limits.len());
        for l in limits {
            let count: Option<i64> = sqlx::query_scalar(sql::QUOTA_USED)
                .bind(&l.subject)
                .bind(l.window_secs)
                .bind(l.window_start(now))
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
            used.push(count.unwrap_or(0));
        }
        Ok(used)
    }
}

#[async_trait]
impl Revocations for SqliteStore {
    async fn revoke_jti(&self, jti: &str, expires_at: i64) -> StoreResult<()> {
        sqlx::query(sql::JTI_REVOKE)
            .bind(jti)
            .bind(expires_at)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        let hit: Option<i64> = sqlx::query_scalar(sql::JTI_REVOKED)
            .bind(jti)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        Ok(hit.is_some())
    }
}

/// The group-commit side of the write connection.
struct Batches(SqlitePool);

#[async_trait]
impl RunBatch<Rotation> for Batches {
    async fn run_batch(&self, jobs: &[RotateJob]) -> StoreResult<Vec<RotateOutcome>> {
        let mut tx = self.0.begin().await.map_err(map_err)?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            outcomes.push(
                batch::rotate_one::<Sqlite>(&mut *tx, job)
                    .await
                    .map_err(map_err)?,
            );
        }
        tx.commit().await.map_err(map_err)?;
        Ok(outcomes)
    }
}

#[async_trait]
impl RunBatch<Count> for Batches {
    async fn run_batch(&self, jobs: &[CountJob]) -> StoreResult<Vec<Result<(), QuotaHit>>> {
        let mut tx = self.0.begin().await.map_err(map_err)?;
        let outcomes = batch::count_batch::<Sqlite>(&mut *tx, jobs)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(outcomes)
    }
}

#[async_trait]
impl RunBatch<Mark> for Batches {
    async fn run_batch(&self, jobs: &[MarkJob]) -> StoreResult<Vec<bool>> {
        let mut tx = self.0.begin().await.map_err(map_err)?;
        let mut firsts = Vec::with_capacity(jobs.len());
        for job in jobs {
            let done = sqlx::query(sql::USE_ONCE)
                .bind(&job.work.key)
                .bind(job.work.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            firsts.push(done.rows_affected() == 1);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(firsts)
    }
}

#[async_trait]
impl Audit for SqliteStore {
    async fn append_audit(&self, e: &AuditEvent, deliveries: &[Delivery]) -> StoreResult<()> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        sqlx::query(sql::AUDIT_INSERT)
            .bind(&e.id)
            .bind(e.at)
            .bind(&e.kind)
            .bind(&e.actor)
            .bind(&e.org_id)
            .bind(&e.client_id)
            .bind(&e.user_id)
            .bind(&e.target)
            .bind(&e.address)
            .bind(rows::audit_detail(e))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for d in deliveries {
            sqlx::query(sql::DELIVERY_INSERT)
                .bind(&d.id)
                .bind(&d.webhook_id)
                .bind(&d.event_id)
                .bind(&d.payload)
                .bind(d.state.as_str())
                .bind(d.attempts)
                .bind(d.next_attempt_at)
                .bind(d.last_status)
                .bind(&d.last_error)
                .bind(d.created_at)
                .bind(d.delivered_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: Page<'_>,
    ) -> StoreResult<Vec<AuditEvent>> {
        let (kind, kind_prefix) = rows::audit_kind(filter.kind.as_deref());
        let found: Vec<AuditRow> = sqlx::query_as(sql::AUDIT_PAGE)
            .bind(kind)
            .bind(kind_prefix)
            .bind(&filter.org_id)
            .bind(&filter.client_id)
            .bind(&filter.user_id)
            .bind(filter.since)
            .bind(filter.until)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        found.into_iter().map(TryInto::try_into).collect()
    }

    async fn audit_event(&self, id: &str) -> StoreResult<Option<AuditEvent>> {
        let row: Option<AuditRow> = sqlx::query_as(sql::AUDIT_BY_ID)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn insert_webhook(&self, w: &Webhook) -> StoreResult<()> {
        sqlx::query(sql::WEBHOOK_INSERT)
            .bind(&w.id)
            .bind(&w.url)
            .bind(rows::webhook_events(w))
            .bind(&w.secret_sealed)
            .bind(w.disabled)
            .bind(w.created_at)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
        let row: Option<WebhookRow> = sqlx::query_as(sql::WEBHOOK_BY_ID)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }

    async fn list_webhooks(&self, page: Page<'_>) -> StoreResult<Vec<Webhook>> {
        let found: Vec<WebhookRow> = sqlx::query_as(sql::WEBHOOKS_PAGE)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let found: Vec<WebhookRow> = sqlx::query_as(sql::WEBHOOKS_ACTIVE)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<bool> {
        let done = sqlx::query(sql::WEBHOOK_UPDATE)
            .bind(&w.id)
            .bind(&w.url)
            .bind(rows::webhook_events(w))
            .bind(w.disabled)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::WEBHOOK_DELETE)
            .bind(id)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let claimed: Vec<DeliveryRow> = sqlx::query_as(sql::DELIVERIES_CLAIM_SQLITE)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .bind(DeliveryState::Pending.as_str())
            .fetch_all(self.writer())
            .await
            .map_err(map_err)?;
        rows::deliveries(claimed)
    }

    async fn finish_delivery(&self, a: &Attempt) -> StoreResult<()> {
        // A delivery deleted with its webhook meanwhile has nothing left to record.
        sqlx::query(sql::DELIVERY_FINISH)
            .bind(&a.id)
            .bind(a.state.as_str())
            .bind(a.next_attempt_at)
            .bind(a.status)
            .bind(&a.error)
            .bind((a.state == DeliveryState::Delivered).then_some(a.at))
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<Delivery>> {
        let found: Vec<DeliveryRow> = sqlx::query_as(sql::DELIVERIES_PAGE)
            .bind(webhook_id)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows::deliveries(found)
    }
}

#[async_trait]
impl Housekeeping for SqliteStore {
    async fn add_usage(&self, counts: &[UsageCount]) -> StoreResult<()> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        for c in counts {
            sqlx::query(sql::USAGE_ADD)
                .bind(&c.client_id)
                .bind(c.hour)
                .bind(c.count)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn usage(&self, client_id: &str, since: i64) -> StoreResult<Vec<UsageCount>> {
        let found: Vec<UsageRow> = sqlx::query_as(sql::USAGE_SINCE)
            .bind(client_id)
            .bind(since)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// In batches (see `purge`); the keys last, in one statement.
    async fn purge(
        &self,
        now: i64,
        access_grace: i64,
        audit_before: i64,
        dry_run: bool,
        batch: i64,
    ) -> StoreResult<PurgeReport> {
        let p = purge::Purge {
            now,
            access_grace,
            audit_before,
            dry_run,
            batch,
        };
        let mut report = purge::run(self.reader(), self.writer(), p, LOCK_FAMILY)
            .await
            .map_err(map_err)?;
        report.keys = if dry_run {
            let (n,): (i64,) = sqlx::query_as(sql::COUNT_KEYS)
                .bind(now)
                .fetch_one(self.reader())
                .await
                .map_err(map_err)?;
            n as u64
        } else {
            sqlx::query(sql::PURGE_KEYS)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?
                .rows_affected()
        };
        Ok(report)
    }
}

/// SQLite has one writer: the purge's transaction needs no row lock.
const LOCK_FAMILY: &str = "SELECT $1";

#[async_trait]
impl People for SqliteStore {
    async fn set_entitlement(&self, e: &Entitlement) -> StoreResult<()> {
        sqlx::query(sql::ENTITLEMENT_SET)
            .bind(&e.org_id)
            .bind(&e.api_id)
            .bind(e.scopes.to_string())
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_entitlement(&self, org_id: &str, api_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::ENTITLEMENT_DELETE)
            .bind(org_id)
            .bind(api_id)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn entitlements(&self, org_id: &str) -> StoreResult<Vec<Entitlement>> {
        let found: Vec<(String, String, String)> = sqlx::query_as(sql::ENTITLEMENTS)
            .bind(org_id)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        found.into_iter().map(rows::entitlement).collect()
    }

    async fn remember_consent(&self, c: &Consent) -> StoreResult<()> {
        sqlx::query(sql::CONSENT_SET)
            .bind(&c.user_id)
            .bind(&c.client_id)
            .bind(&c.api_id)
            .bind(c.scope.to_string())
            .bind(c.granted_at)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
        api_id: &str,
    ) -> StoreResult<Option<Consent>> {
        let found: Option<(String, String, String, String, i64)> = sqlx::query_as(sql::CONSENT)
            .bind(user_id)
            .bind(client_id)
            .bind(api_id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        found.map(rows::consent).transpose()
    }

    async fn consents(&self, user_id: &str) -> StoreResult<Vec<Consent>> {
        let found: Vec<(String, String, String, String, i64)> = sqlx::query_as(sql::CONSENTS)
            .bind(user_id)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        found.into_iter().map(rows::consent).collect()
    }

    async fn forget_consent(&self, user_id: &str, client_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let forgotten = sqlx::query(sql::CONSENT_FORGET)
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            > 0;
        sqlx::query(sql::CONSENT_REVOKE_FAMILIES)
            .bind(user_id)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(forgotten)
    }
}
