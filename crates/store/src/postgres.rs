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
//! in a cycle). Across tables the order is fixed as well: an API, client or user before its
//! families, families before refresh tokens, a client before its grants, and every row before
//! `change_seq`, the row that the triggers of `0001_foundation.sql` update on each write to
//! the configuration tables (so a single-statement write locks its row, then `change_seq`).
//! Webhook deliveries are claimed with `FOR UPDATE SKIP LOCKED`, which never waits. The rotation batch is retried a
//! few times if PostgreSQL still reports a deadlock or a serialization failure: a failed
//! batch has written nothing.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use calyx_core::audit::{AuditEvent, AuditFilter};
use calyx_core::model::{
    Api, Attempt, AuthCode, Client, ClientGrant, Consent, Delivery, DeliveryState, Entitlement,
    Family, FamilyFilter, Org, Page, Presented, PurgeReport, PushedRequest, QuotaHit, QuotaLimit,
    RefreshToken, RotateOutcome, Rotation, StoredKey, UsageCount, User, Webhook,
};
use calyx_core::store::{
    Apis, Audit, Clients, Codes, Housekeeping, Meta, OneTime, Orgs, People, PoolStatus, Quotas,
    RefreshTokens, Revocations, RotationObserver, SigningKeys, StoreError, StoreResult, Users,
    Webhooks,
};
use calyx_core::ScopeSet;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Postgres;
use tokio::sync::mpsc;

use crate::batch::{self, Count, CountJob, Mark, MarkJob, RotateJob, RunBatch};
use crate::purge;
use crate::rows::{self, ApiRow, ClientRow, CodeRow, FamilyRow, GrantRow, KeyRow, OrgRow};
use crate::rows::{AuditRow, DeliveryRow, RefreshFamilyRow, UsageRow, UserRow, WebhookRow};
use crate::{map_err, org_delete_err, org_in_use, sql, ConnectOptions};

/// Locks the client row: `upsert_grant`s of one client run one at a time, so each sees the
/// default the previous one set, and none holds a grant row while waiting for `change_seq`.
const LOCK_CLIENT: &str = "SELECT id FROM clients WHERE id = $1 FOR NO KEY UPDATE";

/// Locks the client row that `delete_client` deletes: `FOR UPDATE` also waits for, and then
/// holds off, inserts that refer to it.
const LOCK_CLIENT_FOR_DELETE: &str = "SELECT id FROM clients WHERE id = $1 FOR UPDATE";

/// Locks the API row that `delete_api` deletes (as `LOCK_CLIENT_FOR_DELETE`).
const LOCK_API_FOR_DELETE: &str = "SELECT id FROM apis WHERE id = $1 FOR UPDATE";

/// Locks the APIs that `update_user`'s new scopes refer to (`$1`, an array of ids), in id
/// order, as the foreign-key checks of its inserts would one by one: then `delete_api`, which
/// locks the API before the user scopes its delete cascades to, never waits on a user scope
/// that `update_user` holds while `update_user` waits on the API.
const LOCK_APIS_SHARED: &str = "SELECT id FROM apis WHERE id = ANY($1) ORDER BY id FOR KEY SHARE";

/// Locks the families of a client that are not revoked, in id order.
const LOCK_CLIENT_FAMILIES: &str = "SELECT id FROM families \
     WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE";

/// Locks the families for an API that are not revoked, in id order.
const LOCK_API_FAMILIES: &str = "SELECT id FROM families \
     WHERE api_id = $1 AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE";

/// Locks a family the purge may delete (`$1`), before its legacy tokens, as a rotation batch
/// locks its families before their tokens.
const LOCK_FAMILY: &str = "SELECT id FROM families WHERE id = $1 FOR UPDATE";

/// Locks the keys the purge removes (`$1`: now), in kid order, as `promote_key` does.
const LOCK_PURGE_KEYS: &str =
    "SELECT kid FROM signing_keys WHERE retires_at <= $1 ORDER BY kid FOR UPDATE";

/// Locks every key of the algorithm of `$1`, the rows `promote_key` may update, in kid order.
const LOCK_KEYS_OF_ALG: &str = "SELECT kid FROM signing_keys \
     WHERE alg = (SELECT alg FROM signing_keys WHERE kid = $1) ORDER BY kid FOR NO KEY UPDATE";

/// Locks the families `delete_user` revokes, in id order.
const LOCK_USER_FAMILIES: &str = "SELECT id FROM families \
     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE";

/// Locks the families of the batch's rotations (`$1`, an array of ids), in id order: a
/// rotation replaces its family's token, or revokes the family.
const LOCK_BATCH_FAMILIES: &str = "SELECT id FROM families \
     WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// Locks the batch's presented legacy tokens (`$1`, an array of hashes), in hash order, after
/// their families: a rotation spends its token.
const LOCK_BATCH_TOKENS: &str = "SELECT token_hash FROM refresh_tokens \
     WHERE token_hash = ANY($1) ORDER BY token_hash FOR NO KEY UPDATE";

/// `sql::ROTATE` for many families at once, from arrays (one element per job: its index,
/// family, presented generation and hash, time, then the successor's generation, hash,
/// sealed form and expiry); returns the indexes of the jobs it rotated.
const BULK_ROTATE: &str = "UPDATE families f SET token_generation = j.next_generation, \
       token_hash = j.next_hash, token_sealed = j.sealed, token_issued_at = j.now, \
       token_expires_at = j.expires_at \
     FROM unnest($1::int4[], $2::text[], $3::int8[], $4::bytea[], $5::int8[], $6::int8[], \
                 $7::bytea[], $8::bytea[], $9::int8[]) \
       AS j(job, id, generation, hash, now, next_generation, next_hash, sealed, expires_at) \
     WHERE f.id = j.id AND f.token_generation = j.generation AND f.token_hash = j.hash \
       AND f.revoked_at IS NULL AND f.token_expires_at > j.now \
     RETURNING j.job";

/// Marks many single-use keys at once (`$1` keys, `$2` expiries, one element per distinct
/// key), in key order so that two nodes' batches wait on each other's keys in one order and
/// never deadlock; returns the keys it inserted.
const BULK_USE_ONCE: &str = "INSERT INTO used_jtis (key, expires_at) \
     SELECT * FROM unnest($1::bytea[], $2::int8[]) AS m(key, expires_at) ORDER BY key \
     ON CONFLICT (key) DO NOTHING RETURNING key";

/// How many times a batch is run before its callers get PostgreSQL's error.
const BATCH_ATTEMPTS: u32 = 3;

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Refresh rotations, committed in groups (see `batch`).
    rotations: mpsc::Sender<RotateJob>,
    /// Single-use marks, committed in groups the same way.
    marks: mpsc::Sender<MarkJob>,
    /// Quota counts, committed in groups the same way.
    counts: mpsc::Sender<CountJob>,
    /// Who hears about each rotation batch.
    observer: batch::Observer,
}

impl PgStore {
    /// Writes a grant with `statement` (insert, upsert or update; binds client, API, scopes,
    /// default) in one transaction that first, when the grant is the default, clears the
    /// client's other defaults. False (and nothing written) when the statement touched no
    /// row. The client row is locked first, as every grant write does.
    async fn write_grant(&self, g: &ClientGrant, statement: &str) -> StoreResult<bool> {
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
        let observer = batch::Observer::default();
        let rotations = batch::spawn_writer(Batches(pool.clone()), observer.clone());
        let marks = batch::spawn_writer(Batches(pool.clone()), batch::Observer::default());
        let counts = batch::spawn_writer(Batches(pool.clone()), batch::Observer::default());
        Ok(PgStore {
            pool,
            rotations,
            marks,
            counts,
            observer,
        })
    }
}

#[async_trait]
impl Meta for PgStore {
    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
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
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
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

    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(sql::META_GET)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn meta_set(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(sql::META_SET)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Orgs for PgStore {
    async fn list_orgs(&self, page: Page<'_>) -> StoreResult<Vec<Org>> {
        let rows: Vec<OrgRow> = sqlx::query_as(sql::ORGS_PAGE)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_org(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::ORG_DELETE_UNUSED)
            .bind(id)
            .execute(&self.pool)
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
    async fn list_apis(&self, page: Page<'_>) -> StoreResult<Vec<Api>> {
        let rows: Vec<ApiRow> = sqlx::query_as(sql::APIS_PAGE)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Locks the API, then its families (in id order), then deletes: the grants and user
    /// scopes its delete cascades to, and `change_seq`, come after.
    async fn delete_api(&self, id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let found: Option<String> = sqlx::query_scalar(LOCK_API_FOR_DELETE)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if found.is_none() {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        sqlx::query(LOCK_API_FAMILIES)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_clients(&self, org_id: Option<&str>, page: Page<'_>) -> StoreResult<Vec<Client>> {
        let rows: Vec<ClientRow> = sqlx::query_as(sql::CLIENTS_PAGE)
            .bind(org_id)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Locks the client, then its families (in id order), then its grants as it deletes
    /// them, then `change_seq`: the order `upsert_grant` keeps too.
    async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let found: Option<String> = sqlx::query_scalar(LOCK_CLIENT_FOR_DELETE)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if found.is_none() {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        sqlx::query(LOCK_CLIENT_FAMILIES)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
        self.write_grant(g, sql::GRANT_UPSERT).await.map(drop)
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
        u: &User,
        scopes: Option<&[(String, ScopeSet)]>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
            let mut api_ids: Vec<&str> = scopes.iter().map(|(api_id, _)| api_id.as_str()).collect();
            api_ids.sort_unstable();
            sqlx::query(LOCK_APIS_SHARED)
                .bind(&api_ids)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
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
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows::user_scopes(found)
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
        let rows: Vec<UserRow> = sqlx::query_as(sql::USERS_PAGE)
            .bind(org_id)
            .bind(page.after)
            .bind(page.limit)
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

    async fn redeem_code(&self, code_hash: &[u8], now: i64, f: &Family) -> StoreResult<bool> {
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
        batch::insert_family::<Postgres>(&mut *tx, f)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

#[async_trait]
impl RefreshTokens for PgStore {
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
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_client_families(&self, client_id: &str, now: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(LOCK_CLIENT_FAMILIES)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query(sql::CLIENT_REVOKE_FAMILIES)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
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
        batch::submit(&self.rotations, rotation).await
    }
}

#[async_trait]
impl OneTime for PgStore {
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
            .execute(&self.pool)
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
            .fetch_optional(&self.pool)
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
impl Quotas for PgStore {
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
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            used.push(count.unwrap_or(0));
        }
        Ok(used)
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
struct Batches(PgPool);

#[async_trait]
impl RunBatch<Rotation> for Batches {
    async fn run_batch(&self, jobs: &[RotateJob]) -> StoreResult<Vec<RotateOutcome>> {
        retrying("refresh rotation", || self.try_batch(jobs)).await
    }
}

/// Runs a batch's transaction again when PostgreSQL rolled it back for a deadlock or a
/// serialization failure, up to [`BATCH_ATTEMPTS`] times in all.
async fn retrying<T, F, Fut>(what: &str, mut attempt_batch: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match attempt_batch().await {
            Err(e) if attempt < BATCH_ATTEMPTS && is_transient(&e) => {
                tracing::warn!(attempt, error = %e, "{what} batch rolled back, retrying");
                attempt += 1;
            }
            done => return done.map_err(map_err),
        }
    }
}

impl Batches {
    /// Locks what the batch may write, in order, then runs each job and commits.
    async fn try_batch(&self, jobs: &[RotateJob]) -> sqlx::Result<Vec<RotateOutcome>> {
        let families: Vec<&str> = jobs.iter().map(|j| j.work.family_id.as_str()).collect();
        let legacy: Vec<&[u8]> = jobs
            .iter()
            .filter_map(|j| match &j.work.presented {
                Presented::Legacy { token_hash } => Some(token_hash.as_slice()),
                Presented::Generation { .. } => None,
            })
            .collect();
        let mut tx = self.0.begin().await?;
        sqlx::query(LOCK_BATCH_FAMILIES)
            .bind(&families)
            .execute(&mut *tx)
            .await?;
        if !legacy.is_empty() {
            sqlx::query(LOCK_BATCH_TOKENS)
                .bind(&legacy)
                .execute(&mut *tx)
                .await?;
        }
        let rotated = bulk_rotate(&mut tx, jobs).await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for (job, rotated) in jobs.iter().zip(rotated) {
            outcomes.push(if rotated {
                RotateOutcome::Rotated
            } else {
                batch::rotate_one::<Postgres>(&mut *tx, job).await?
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

#[async_trait]
impl RunBatch<Count> for Batches {
    async fn run_batch(&self, jobs: &[CountJob]) -> StoreResult<Vec<Result<(), QuotaHit>>> {
        retrying("quota count", || self.try_counts(jobs)).await
    }
}

impl Batches {
    /// Counts the batch's jobs (`batch::count_batch`, which takes each window's row in one
    /// order on every node) and commits.
    async fn try_counts(&self, jobs: &[CountJob]) -> sqlx::Result<Vec<Result<(), QuotaHit>>> {
        let mut tx = self.0.begin().await?;
        let outcomes = batch::count_batch::<Postgres>(&mut *tx, jobs).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

#[async_trait]
impl RunBatch<Mark> for Batches {
    /// One statement for the whole batch (see `first_uses`).
    async fn run_batch(&self, jobs: &[MarkJob]) -> StoreResult<Vec<bool>> {
        let marks = distinct_marks(jobs);
        let keys: Vec<&[u8]> = marks.iter().map(|m| m.key.as_slice()).collect();
        let expiries: Vec<i64> = marks.iter().map(|m| m.expires_at).collect();
        let inserted: Vec<Vec<u8>> = sqlx::query_scalar(BULK_USE_ONCE)
            .bind(&keys)
            .bind(&expiries)
            .fetch_all(&self.0)
            .await
            .map_err(map_err)?;
        Ok(first_uses(jobs, inserted))
    }
}

/// The distinct keys of a batch of marks with their expiries, each key once (its first job's
/// expiry): what `BULK_USE_ONCE` inserts, or finds already there.
fn distinct_marks(jobs: &[MarkJob]) -> Vec<&Mark> {
    let mut seen = HashSet::with_capacity(jobs.len());
    jobs.iter()
        .map(|j| &j.work)
        .filter(|m| seen.insert(m.key.as_slice()))
        .collect()
}

/// Each mark's outcome, given the keys `BULK_USE_ONCE` inserted: a key's first job in
/// arrival order is its first use; a later job with the same key, or a key that was already
/// there, finds it used — as marking them one after another would.
fn first_uses(jobs: &[MarkJob], inserted: Vec<Vec<u8>>) -> Vec<bool> {
    let mut unclaimed: HashSet<Vec<u8>> = inserted.into_iter().collect();
    jobs.iter().map(|j| unclaimed.remove(&j.work.key)).collect()
}

/// Rotates, in one statement, the first job of each family in the batch whose token is its
/// family's current one, and says which jobs it rotated; the rest then run one by one in
/// arrival order (`batch::rotate_one`). The outcomes are those of running every job in
/// arrival order: jobs of different families do not touch each other's rows, and a family's
/// first job is the first to run on its row either way. One round trip instead of one per
/// job is what two nodes sharing a database are bound by.
async fn bulk_rotate(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    jobs: &[RotateJob],
) -> sqlx::Result<Vec<bool>> {
    let mut seen = HashSet::new();
    let mut cols = BulkColumns::default();
    for (i, job) in jobs.iter().enumerate() {
        let r = &job.work;
        // Only a family's first job: a later one must run after it, whatever its kind.
        let first = seen.insert(r.family_id.as_str());
        let (
            true,
            Presented::Generation {
                generation,
                token_hash,
            },
        ) = (first, &r.presented)
        else {
            continue;
        };
        cols.job.push(i as i32);
        cols.id.push(r.family_id.as_str());
        cols.generation.push(*generation);
        cols.hash.push(token_hash.as_slice());
        cols.now.push(r.now);
        cols.next_generation.push(r.successor.generation);
        cols.next_hash.push(r.successor.token_hash.as_slice());
        cols.sealed.push(r.successor_sealed.as_deref());
        cols.expires_at.push(r.successor.expires_at);
    }
    let mut rotated = vec![false; jobs.len()];
    if cols.job.is_empty() {
        return Ok(rotated);
    }
    let done: Vec<i32> = sqlx::query_scalar(BULK_ROTATE)
        .bind(&cols.job)
        .bind(&cols.id)
        .bind(&cols.generation)
        .bind(&cols.hash)
        .bind(&cols.now)
        .bind(&cols.next_generation)
        .bind(&cols.next_hash)
        .bind(&cols.sealed)
        .bind(&cols.expires_at)
        .fetch_all(&mut **tx)
        .await?;
    for i in done {
        rotated[i as usize] = true;
    }
    Ok(rotated)
}

/// The columns of `BULK_ROTATE`'s arrays, one entry per job it tries.
#[derive(Default)]
struct BulkColumns<'a> {
    job: Vec<i32>,
    id: Vec<&'a str>,
    generation: Vec<i64>,
    hash: Vec<&'a [u8]>,
    now: Vec<i64>,
    next_generation: Vec<i64>,
    next_hash: Vec<&'a [u8]>,
    sealed: Vec<Option<&'a [u8]>>,
    expires_at: Vec<i64>,
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
    async fn append_audit(&self, e: &AuditEvent, deliveries: &[Delivery]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
        // In webhook order: each insert's foreign-key check locks its webhook (shared).
        let mut deliveries: Vec<&Delivery> = deliveries.iter().collect();
        deliveries.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
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
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        found.into_iter().map(TryInto::try_into).collect()
    }

    async fn audit_event(&self, id: &str) -> StoreResult<Option<AuditEvent>> {
        let row: Option<AuditRow> = sqlx::query_as(sql::AUDIT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }
}

#[async_trait]
impl Webhooks for PgStore {
    async fn insert_webhook(&self, w: &Webhook) -> StoreResult<()> {
        sqlx::query(sql::WEBHOOK_INSERT)
            .bind(&w.id)
            .bind(&w.url)
            .bind(rows::webhook_events(w))
            .bind(&w.secret_sealed)
            .bind(w.disabled)
            .bind(w.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
        let row: Option<WebhookRow> = sqlx::query_as(sql::WEBHOOK_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(Into::into))
    }

    async fn list_webhooks(&self, page: Page<'_>) -> StoreResult<Vec<Webhook>> {
        let found: Vec<WebhookRow> = sqlx::query_as(sql::WEBHOOKS_PAGE)
            .bind(page.after)
            .bind(page.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    async fn active_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let found: Vec<WebhookRow> = sqlx::query_as(sql::WEBHOOKS_ACTIVE)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::WEBHOOK_DELETE)
            .bind(id)
            .execute(&self.pool)
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
        let claimed: Vec<DeliveryRow> = sqlx::query_as(sql::DELIVERIES_CLAIM_PG)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .bind(DeliveryState::Pending.as_str())
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
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
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows::deliveries(found)
    }
}

#[async_trait]
impl Housekeeping for PgStore {
    /// Adds in key order, so two nodes flushing the same hours lock the rows in one order.
    async fn add_usage(&self, counts: &[UsageCount]) -> StoreResult<()> {
        let mut counts: Vec<&UsageCount> = counts.iter().collect();
        counts.sort_by(|a, b| (&a.client_id, a.hour).cmp(&(&b.client_id, b.hour)));
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// In batches (see `purge`); the keys last, locked in kid order as `promote_key` does:
    /// their delete updates `change_seq`, which every transaction locks after its rows.
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
        let mut report = purge::run(&self.pool, &self.pool, p, LOCK_FAMILY)
            .await
            .map_err(map_err)?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let keys: Vec<String> = sqlx::query_scalar(LOCK_PURGE_KEYS)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        report.keys = keys.len() as u64;
        // The statement trigger bumps `change_seq` even when nothing is deleted: skip it then,
        // so that a purge with no key to remove does not make every node drop its caches.
        if !dry_run && !keys.is_empty() {
            sqlx::query(sql::PURGE_KEYS)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(report)
    }
}

#[async_trait]
impl People for PgStore {
    async fn set_entitlement(&self, e: &Entitlement) -> StoreResult<()> {
        sqlx::query(sql::ENTITLEMENT_SET)
            .bind(&e.org_id)
            .bind(&e.api_id)
            .bind(e.scopes.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_entitlement(&self, org_id: &str, api_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::ENTITLEMENT_DELETE)
            .bind(org_id)
            .bind(api_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn entitlements(&self, org_id: &str) -> StoreResult<Vec<Entitlement>> {
        let found: Vec<(String, String, String)> = sqlx::query_as(sql::ENTITLEMENTS)
            .bind(org_id)
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
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
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        found.map(rows::consent).transpose()
    }

    async fn consents(&self, user_id: &str) -> StoreResult<Vec<Consent>> {
        let found: Vec<(String, String, String, String, i64)> = sqlx::query_as(sql::CONSENTS)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        found.into_iter().map(rows::consent).collect()
    }

    async fn forget_consent(&self, user_id: &str, client_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
