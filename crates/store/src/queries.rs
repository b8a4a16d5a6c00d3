//! The SQL of every store operation, written once for SQLite and PostgreSQL.
//!
//! `impl_store!(T)` implements `Store` for a type with a `pool` field of any sqlx pool whose
//! database accepts this shared dialect. Each method is a single statement or a single
//! transaction, so it commits before it returns.

macro_rules! impl_store {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl calyx_core::store::Store for $ty {
            async fn ping(&self) -> calyx_core::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err($crate::map_err)?;
                Ok(())
            }

            async fn change_seq(&self) -> calyx_core::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT seq FROM change_seq WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::map_err)
            }

            async fn meta_get_or_insert(
                &self,
                key: &str,
                value: &str,
            ) -> calyx_core::store::StoreResult<String> {
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::map_err)?;
                sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::map_err)
            }

            async fn insert_org(&self, org: &calyx_core::model::Org) -> calyx_core::store::StoreResult<()> {
                sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(&org.id)
                    .bind(&org.name)
                    .bind(org.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::map_err)?;
                Ok(())
            }

            async fn org(&self, id: &str) -> calyx_core::store::StoreResult<Option<calyx_core::model::Org>> {
                let row: Option<$crate::rows::OrgRow> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }

            async fn org_by_name(
                &self,
                name: &str,
            ) -> calyx_core::store::StoreResult<Option<calyx_core::model::Org>> {
                let row: Option<$crate::rows::OrgRow> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }

            async fn insert_api(&self, api: &calyx_core::model::Api) -> calyx_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO apis (id, audience, name, scopes, alg, token_lifetime, \
                     user_token_lifetime, delegated_token_lifetime, refresh_token_lifetime, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
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
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn api_by_audience(
                &self,
                audience: &str,
            ) -> calyx_core::store::StoreResult<Option<calyx_core::model::Api>> {
                let row: Option<$crate::rows::ApiRow> =
                    sqlx::query_as("SELECT * FROM apis WHERE audience = $1")
                        .bind(audience)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn apis(&self) -> calyx_core::store::StoreResult<Vec<calyx_core::model::Api>> {
                let rows: Vec<$crate::rows::ApiRow> =
                    sqlx::query_as("SELECT * FROM apis ORDER BY created_at, audience")
                        .fetch_all(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_client(
                &self,
                c: &calyx_core::model::Client,
            ) -> calyx_core::store::StoreResult<()> {
                let (redirect_uris, grant_types) = $crate::rows::client_lists(c);
                sqlx::query(
                    "INSERT INTO clients (id, org_id, name, description, website_uri, \
                     privacy_policy_uri, tos_uri, redirect_uris, grant_types, client_type, \
                     secret_hash, previous_secret_hash, previous_secret_expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
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
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn client(
                &self,
                client_id: &str,
            ) -> calyx_core::store::StoreResult<Option<calyx_core::model::Client>> {
                let row: Option<$crate::rows::ClientRow> =
                    sqlx::query_as("SELECT * FROM clients WHERE id = $1")
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn rotate_client_secret(
                &self,
                client_id: &str,
                new_hash: &[u8],
                previous_expires_at: Option<i64>,
            ) -> calyx_core::store::StoreResult<bool> {
                // One statement: the right-hand sides read the row as it was before the update.
                let done = sqlx::query(
                    "UPDATE clients SET \
                       previous_secret_hash = CASE WHEN $2 IS NULL THEN NULL ELSE secret_hash END, \
                       previous_secret_expires_at = $2, \
                       secret_hash = $3 \
                     WHERE id = $1",
                )
                .bind(client_id)
                .bind(previous_expires_at)
                .bind(new_hash)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn upsert_grant(
                &self,
                g: &calyx_core::model::ClientGrant,
            ) -> calyx_core::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err($crate::map_err)?;
                if g.is_default {
                    sqlx::query(
                        "UPDATE client_grants SET is_default = FALSE \
                         WHERE client_id = $1 AND api_id <> $2 AND is_default",
                    )
                    .bind(&g.client_id)
                    .bind(&g.api_id)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
                }
                sqlx::query(
                    "INSERT INTO client_grants (client_id, api_id, scopes, is_default) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (client_id, api_id) \
                     DO UPDATE SET scopes = excluded.scopes, is_default = excluded.is_default",
                )
                .bind(&g.client_id)
                .bind(&g.api_id)
                .bind(g.scopes.to_string())
                .bind(g.is_default)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                tx.commit().await.map_err($crate::map_err)
            }

            async fn grants_for_client(
                &self,
                client_id: &str,
            ) -> calyx_core::store::StoreResult<Vec<calyx_core::model::ClientGrant>> {
                let rows: Vec<$crate::rows::GrantRow> = sqlx::query_as(
                    "SELECT g.client_id, g.api_id, a.audience, g.scopes, g.is_default \
                     FROM client_grants g JOIN apis a ON a.id = g.api_id \
                     WHERE g.client_id = $1 ORDER BY a.audience",
                )
                .bind(client_id)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_key(
                &self,
                k: &calyx_core::model::StoredKey,
            ) -> calyx_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, private_key, created_at, retires_at, generation) \
                     SELECT $1, $2, $3, $4, $5, COALESCE(MAX(generation), 0) + 1 FROM signing_keys",
                )
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(&k.private_key)
                .bind(k.created_at)
                .bind(k.retires_at)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn live_keys(
                &self,
                now: i64,
            ) -> calyx_core::store::StoreResult<Vec<calyx_core::model::StoredKey>> {
                let rows: Vec<$crate::rows::KeyRow> = sqlx::query_as(
                    "SELECT kid, alg, private_key, created_at, retires_at FROM signing_keys \
                     WHERE retires_at IS NULL OR retires_at > $1 ORDER BY generation",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn schedule_key_retirement(
                &self,
                alg: calyx_core::model::SigningAlg,
                keep_kid: &str,
                retires_at: i64,
            ) -> calyx_core::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE signing_keys SET retires_at = $3 \
                     WHERE alg = $1 AND kid <> $2 AND retires_at IS NULL",
                )
                .bind(alg.as_str())
                .bind(keep_kid)
                .bind(retires_at)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;
