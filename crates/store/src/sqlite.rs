//! The embedded SQLite backend: one file, WAL mode, created on first use.
//!
//! Every role of [`calyx_core::store::Store`], written out for `sqlx::Sqlite`: reads go to a
//! pool of readers, writes to the single writer connection, and refresh rotations to the
//! group-commit writer (`batch`). The statements are `sql.rs`'s; the row shapes `rows.rs`'s.

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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Sqlite;
use tokio::sync::mpsc;

use crate::batch::{self, RotateJob, RunBatch};
use crate::rows::{self, ApiRow, ClientRow, CodeRow, FamilyRow, GrantRow, KeyRow, OrgRow};
use crate::rows::{RefreshFamilyRow, UserRow};
use crate::{map_err, sql, ConnectOptions};

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
        let rotations = batch::spawn_writer(Rotations(writes.clone()));
        Ok(SqliteStore {
            reads,
            writes,
            rotations,
        })
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
}

#[async_trait]
impl Orgs for SqliteStore {
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
        let mut tx = self.writer().begin().await.map_err(map_err)?;
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
        _user: &User,
        _scopes: Option<&[(String, ScopeSet)]>,
    ) -> StoreResult<bool> {
        todo!("update_user")
    }
    async fn all_user_scopes(&self, _user_id: &str) -> StoreResult<Vec<(String, ScopeSet)>> {
        todo!("all_user_scopes")
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
        let Some(org_id) = org_id else {
            todo!("list_users of every org")
        };
        let (after, limit) = (page.after, page.limit);
        let rows: Vec<UserRow> = sqlx::query_as(sql::USERS_PAGE)
            .bind(org_id)
            .bind(after)
            .bind(limit)
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

    async fn redeem_code(
        &self,
        code_hash: &[u8],
        now: i64,
        f: &Family,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool> {
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
            batch::insert_refresh::<Sqlite>(&mut *tx, r)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

#[async_trait]
impl RefreshTokens for SqliteStore {
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
        batch::rotate(&self.rotations, rotation).await
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
struct Rotations(SqlitePool);

#[async_trait]
impl RunBatch for Rotations {
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
impl Audit for SqliteStore {
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
impl Webhooks for SqliteStore {
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
impl Housekeeping for SqliteStore {
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
