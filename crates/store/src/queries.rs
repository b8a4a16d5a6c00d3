//! The SQL of every store operation, written once for SQLite and PostgreSQL.
//!
//! `impl_store!(T)` implements `Store` for a type with a `pool` field of any sqlx pool whose
//! database accepts this shared dialect. Each method is a single statement or a single
//! transaction, so it commits before it returns.

macro_rules! impl_store {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl calyx_core::store::Meta for $ty {
            async fn ping(&self) -> calyx_core::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(self.writer()).await.map_err($crate::map_err)?;
                Ok(())
            }

            async fn change_seq(&self) -> calyx_core::store::StoreResult<i64> {
                sqlx::query_scalar("SELECT seq FROM change_seq WHERE id = 1")
                    .fetch_one(self.reader())
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
                    .execute(self.writer())
                    .await
                    .map_err($crate::map_err)?;
                sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_one(self.reader())
                    .await
                    .map_err($crate::map_err)
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::Orgs for $ty {
            async fn insert_org(&self, org: &calyx_core::model::Org) -> calyx_core::store::StoreResult<()> {
                sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(&org.id)
                    .bind(&org.name)
                    .bind(org.created_at)
                    .execute(self.writer())
                    .await
                    .map_err($crate::map_err)?;
                Ok(())
            }

            async fn org(&self, id: &str) -> calyx_core::store::StoreResult<Option<calyx_core::model::Org>> {
                let row: Option<$crate::rows::OrgRow> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE id = $1")
                        .bind(id)
                        .fetch_optional(self.reader())
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
                        .fetch_optional(self.reader())
                        .await
                        .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::Apis for $ty {
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
                .execute(self.writer())
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
                        .fetch_optional(self.reader())
                        .await
                        .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn api(&self, id: &str) -> calyx_core::store::StoreResult<Option<calyx_core::model::Api>> {
                let row: Option<$crate::rows::ApiRow> = sqlx::query_as("SELECT * FROM apis WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn apis(&self) -> calyx_core::store::StoreResult<Vec<calyx_core::model::Api>> {
                let rows: Vec<$crate::rows::ApiRow> =
                    sqlx::query_as("SELECT * FROM apis ORDER BY created_at, audience")
                        .fetch_all(self.reader())
                        .await
                        .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::Clients for $ty {
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
                .execute(self.writer())
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
                        .fetch_optional(self.reader())
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
                .execute(self.writer())
                .await
                .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn upsert_grant(
                &self,
                g: &calyx_core::model::ClientGrant,
            ) -> calyx_core::store::StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err($crate::map_err)?;
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
                .fetch_all(self.reader())
                .await
                .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::SigningKeys for $ty {
            async fn insert_key(
                &self,
                k: &calyx_core::model::StoredKey,
            ) -> calyx_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, private_key, created_at, promoted_at, retires_at, generation) \
                     SELECT $1, $2, $3, $4, $5, $6, COALESCE(MAX(generation), 0) + 1 FROM signing_keys",
                )
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(&k.private_key)
                .bind(k.created_at)
                .bind(k.promoted_at)
                .bind(k.retires_at)
                .execute(self.writer())
                .await
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn live_keys(
                &self,
                now: i64,
            ) -> calyx_core::store::StoreResult<Vec<calyx_core::model::StoredKey>> {
                let mut keys = self.all_keys().await?;
                keys.retain(|k| k.retires_at.is_none_or(|r| r > now));
                Ok(keys)
            }

            async fn all_keys(
                &self,
            ) -> calyx_core::store::StoreResult<Vec<calyx_core::model::StoredKey>> {
                let rows: Vec<$crate::rows::KeyRow> = sqlx::query_as(
                    "SELECT kid, alg, private_key, created_at, promoted_at, retires_at FROM signing_keys \
                     ORDER BY generation",
                )
                .fetch_all(self.reader())
                .await
                .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn promote_key(
                &self,
                kid: &str,
                now: i64,
                retire_previous_at: i64,
            ) -> calyx_core::store::StoreResult<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::map_err)?;
                let promoted = sqlx::query(
                    "UPDATE signing_keys SET promoted_at = $2 \
                     WHERE kid = $1 AND promoted_at IS NULL AND (retires_at IS NULL OR retires_at > $2)",
                )
                .bind(kid)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .rows_affected()
                    == 1;
                if !promoted {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE signing_keys SET retires_at = $2 \
                     WHERE alg = (SELECT alg FROM signing_keys WHERE kid = $1) AND kid <> $1 \
                     AND promoted_at IS NOT NULL AND retires_at IS NULL",
                )
                .bind(kid)
                .bind(retire_previous_at)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                tx.commit().await.map_err($crate::map_err)?;
                Ok(true)
            }

            async fn retire_key(&self, kid: &str, now: i64) -> calyx_core::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET retires_at = $2 \
                     WHERE kid = $1 AND (retires_at IS NULL OR retires_at > $2)",
                )
                .bind(kid)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::Users for $ty {
            async fn insert_user(
                &self,
                u: &calyx_core::model::User,
                scopes: &[(String, calyx_core::ScopeSet)],
            ) -> calyx_core::store::StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err($crate::map_err)?;
                sqlx::query(
                    "INSERT INTO users (id, org_id, username, password_hash, external_id, email, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&u.id)
                .bind(&u.org_id)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.external_id)
                .bind(&u.email)
                .bind(u.created_at)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                for (api_id, s) in scopes {
                    sqlx::query("INSERT INTO user_scopes (user_id, api_id, scopes) VALUES ($1, $2, $3)")
                        .bind(&u.id)
                        .bind(api_id)
                        .bind(s.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::map_err)?;
                }
                tx.commit().await.map_err($crate::map_err)
            }

            async fn user(&self, id: &str) -> calyx_core::store::StoreResult<Option<calyx_core::model::User>> {
                let row: Option<$crate::rows::UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }

            async fn users_by_username(
                &self,
                username: &str,
            ) -> calyx_core::store::StoreResult<Vec<calyx_core::model::User>> {
                let rows: Vec<$crate::rows::UserRow> =
                    sqlx::query_as("SELECT * FROM users WHERE username = $1 ORDER BY created_at, id")
                        .bind(username)
                        .fetch_all(self.reader())
                        .await
                        .map_err($crate::map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn set_password(&self, user_id: &str, password_hash: &str) -> calyx_core::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(password_hash)
                    .execute(self.writer())
                    .await
                    .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_users(
                &self,
                org_id: &str,
                after: Option<&str>,
                limit: i64,
            ) -> calyx_core::store::StoreResult<Vec<calyx_core::model::User>> {
                let rows: Vec<$crate::rows::UserRow> = sqlx::query_as(
                    "SELECT * FROM users WHERE org_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
                )
                .bind(org_id)
                .bind(after)
                .bind(limit)
                .fetch_all(self.reader())
                .await
                .map_err($crate::map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn delete_user(
                &self,
                org_id: &str,
                user_id: &str,
                now: i64,
            ) -> calyx_core::store::StoreResult<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::map_err)?;
                let deleted = sqlx::query("DELETE FROM users WHERE id = $1 AND org_id = $2")
                    .bind(user_id)
                    .bind(org_id)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected()
                    == 1;
                if deleted {
                    sqlx::query("UPDATE families SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::map_err)?;
                }
                tx.commit().await.map_err($crate::map_err)?;
                Ok(deleted)
            }

            async fn user_scopes(
                &self,
                user_id: &str,
                api_id: &str,
            ) -> calyx_core::store::StoreResult<Option<calyx_core::ScopeSet>> {
                let s: Option<String> =
                    sqlx::query_scalar("SELECT scopes FROM user_scopes WHERE user_id = $1 AND api_id = $2")
                        .bind(user_id)
                        .bind(api_id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err($crate::map_err)?;
                s.map(|s| $crate::rows::scopes(&s)).transpose()
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::Codes for $ty {
            async fn insert_code(&self, c: &calyx_core::model::AuthCode) -> calyx_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO auth_codes (code_hash, family_id, client_id, user_id, api_id, scope, \
                     redirect_uri, redirect_uri_given, code_challenge, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
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
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn code(
                &self,
                code_hash: &[u8],
            ) -> calyx_core::store::StoreResult<Option<calyx_core::model::AuthCode>> {
                let row: Option<$crate::rows::CodeRow> =
                    sqlx::query_as("SELECT * FROM auth_codes WHERE code_hash = $1")
                        .bind(code_hash)
                        .fetch_optional(self.reader())
                        .await
                        .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn redeem_code(
                &self,
                code_hash: &[u8],
                now: i64,
                f: &calyx_core::model::Family,
                refresh: Option<&calyx_core::model::RefreshToken>,
            ) -> calyx_core::store::StoreResult<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::map_err)?;
                // The gate: only one transaction can move used_at from NULL.
                let won = sqlx::query("UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
                    .bind(code_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?
                    .rows_affected()
                    == 1;
                if !won {
                    tx.rollback().await.map_err($crate::map_err)?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO families (id, client_id, user_id, org_id, api_id, scope, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                )
                .bind(&f.id)
                .bind(&f.client_id)
                .bind(&f.user_id)
                .bind(&f.org_id)
                .bind(&f.api_id)
                .bind(f.scope.to_string())
                .bind(f.created_at)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                if let Some(r) = refresh {
                    $crate::queries::insert_refresh!(&mut *tx, r);
                }
                tx.commit().await.map_err($crate::map_err)?;
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::RefreshTokens for $ty {
            async fn family(&self, id: &str) -> calyx_core::store::StoreResult<Option<calyx_core::model::Family>> {
                let row: Option<$crate::rows::FamilyRow> = sqlx::query_as("SELECT * FROM families WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn revoke_family(&self, id: &str, now: i64) -> calyx_core::store::StoreResult<()> {
                sqlx::query("UPDATE families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(now)
                    .execute(self.writer())
                    .await
                    .map_err($crate::map_err)?;
                Ok(())
            }

            async fn refresh_token(
                &self,
                token_hash: &[u8],
            ) -> calyx_core::store::StoreResult<
                Option<(calyx_core::model::RefreshToken, calyx_core::model::Family)>,
            > {
                let row: Option<$crate::rows::RefreshFamilyRow> = sqlx::query_as(
                    "SELECT r.token_hash, r.family_id, r.scope, r.created_at, r.expires_at, r.used_at, \
                       r.successor_sealed, f.client_id, f.user_id, f.org_id, f.api_id, \
                       f.scope AS family_scope, f.created_at AS family_created_at, f.revoked_at \
                     FROM refresh_tokens r JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(self.reader())
                .await
                .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn rotate_refresh(
                &self,
                old_hash: &[u8],
                successor: &calyx_core::model::RefreshToken,
                now: i64,
                leeway: i64,
            ) -> calyx_core::store::StoreResult<calyx_core::model::RotateOutcome> {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let job = $crate::batch::RotateJob {
                    old_hash: old_hash.to_vec(),
                    successor: successor.clone(),
                    now,
                    leeway,
                    reply,
                };
                self.rotations.send(job).await.map_err(|_| $crate::batch::writer_gone())?;
                answer.await.map_err(|_| $crate::batch::writer_gone())?
            }
        }

        #[async_trait::async_trait]
        impl calyx_core::store::Revocations for $ty {
            async fn revoke_jti(&self, jti: &str, expires_at: i64) -> calyx_core::store::StoreResult<()> {
                sqlx::query("INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                    .bind(jti)
                    .bind(expires_at)
                    .execute(self.writer())
                    .await
                    .map_err($crate::map_err)?;
                Ok(())
            }

            async fn jti_revoked(&self, jti: &str) -> calyx_core::store::StoreResult<bool> {
                let hit: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM revoked_jtis WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::map_err)?;
                Ok(hit.is_some())
            }
        }
    };
}

/// Inserts a refresh token row inside a transaction.
macro_rules! insert_refresh {
    ($exec:expr, $r:expr) => {{
        let r: &calyx_core::model::RefreshToken = $r;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, scope, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&r.token_hash)
        .bind(&r.family_id)
        .bind(r.scope.to_string())
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute($exec)
        .await
        .map_err($crate::map_err)?;
    }};
}

/// Defines, for one sqlx database type, `rotate_one` (one rotation inside a transaction) and
/// `spawn_rotation_writer` (the group-commit loop that runs waiting rotations together).
macro_rules! impl_rotation_writer {
    ($db:ty) => {
        async fn rotate_one(
            tx: &mut sqlx::Transaction<'_, $db>,
            job: &$crate::batch::RotateJob,
        ) -> calyx_core::store::StoreResult<calyx_core::model::RotateOutcome> {
            use calyx_core::model::RotateOutcome;
            let (old_hash, successor, now, leeway) = (&job.old_hash, &job.successor, job.now, job.leeway);
            // The gate: spend the token only if it is live and its family is not revoked.
            let family_id: Option<String> = sqlx::query_scalar(
                "UPDATE refresh_tokens SET used_at = $2, successor_hash = $3, successor_sealed = $4 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                   AND family_id IN (SELECT id FROM families WHERE revoked_at IS NULL) \
                 RETURNING family_id",
            )
            .bind(old_hash)
            .bind(now)
            .bind(&successor.token_hash)
            .bind(&successor.successor_sealed)
            .fetch_optional(&mut **tx)
            .await
            .map_err($crate::map_err)?;
            if let Some(family_id) = family_id {
                let mut next = successor.clone();
                next.family_id = family_id;
                $crate::queries::insert_refresh!(&mut **tx, &next);
                return Ok(RotateOutcome::Rotated);
            }
            // Not live: unknown, expired, revoked, or already spent.
            let row: Option<(Option<i64>, Option<Vec<u8>>, String, Option<i64>)> = sqlx::query_as(
                "SELECT r.used_at, r.successor_sealed, r.family_id, f.revoked_at \
                 FROM refresh_tokens r JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1",
            )
            .bind(old_hash)
            .fetch_optional(&mut **tx)
            .await
            .map_err($crate::map_err)?;
            let Some((used_at, sealed, family_id, revoked_at)) = row else {
                return Ok(RotateOutcome::Invalid);
            };
            let (Some(used_at), None) = (used_at, revoked_at) else {
                return Ok(RotateOutcome::Invalid);
            };
            if leeway > 0 && now - used_at <= leeway {
                if let Some(sealed) = sealed {
                    let successor_unused: Option<bool> = sqlx::query_scalar(
                        "SELECT r.used_at IS NULL FROM refresh_tokens r \
                         JOIN refresh_tokens o ON o.successor_hash = r.token_hash WHERE o.token_hash = $1",
                    )
                    .bind(old_hash)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err($crate::map_err)?;
                    if successor_unused == Some(true) {
                        return Ok(RotateOutcome::Retried(sealed));
                    }
                }
            }
            // Reuse of a spent token: revoke the whole chain.
            sqlx::query("UPDATE families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(&family_id)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err($crate::map_err)?;
            Ok(RotateOutcome::Reused)
        }

        /// Starts the group-commit writer for refresh rotations on `pool`.
        pub(crate) fn spawn_rotation_writer(
            pool: sqlx::Pool<$db>,
        ) -> tokio::sync::mpsc::Sender<$crate::batch::RotateJob> {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<$crate::batch::RotateJob>(4096);
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut jobs = vec![first];
                    while jobs.len() < $crate::batch::MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    let outcomes = async {
                        let mut tx = pool.begin().await.map_err($crate::map_err)?;
                        let mut outcomes = Vec::with_capacity(jobs.len());
                        for job in &jobs {
                            outcomes.push(rotate_one(&mut tx, job).await?);
                        }
                        tx.commit().await.map_err($crate::map_err)?;
                        Ok::<_, calyx_core::store::StoreError>(outcomes)
                    }
                    .await;
                    $crate::batch::reply_all(jobs, outcomes);
                }
            });
            tx
        }
    };
}

pub(crate) use impl_rotation_writer;
pub(crate) use impl_store;
pub(crate) use insert_refresh;
