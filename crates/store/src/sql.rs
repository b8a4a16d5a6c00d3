//! The SQL text of every store operation, in the dialect SQLite and PostgreSQL share (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`). Both backends run these same statements; only
//! PostgreSQL's row-locking statements (in `postgres.rs`) are its own.

pub(crate) const PING: &str = "SELECT 1";

pub(crate) const CHANGE_SEQ: &str = "SELECT seq FROM change_seq WHERE id = 1";

pub(crate) const META_INSERT: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

pub(crate) const META_GET: &str = "SELECT value FROM meta WHERE key = $1";

pub(crate) const ORG_INSERT: &str = "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)";

pub(crate) const ORG_BY_ID: &str = "SELECT id, name, created_at FROM orgs WHERE id = $1";

pub(crate) const ORG_BY_NAME: &str = "SELECT id, name, created_at FROM orgs WHERE name = $1";

pub(crate) const API_INSERT: &str =
    "INSERT INTO apis (id, audience, name, scopes, alg, token_lifetime, \
     user_token_lifetime, delegated_token_lifetime, refresh_token_lifetime, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

pub(crate) const API_BY_AUDIENCE: &str = "SELECT * FROM apis WHERE audience = $1";

pub(crate) const API_BY_ID: &str = "SELECT * FROM apis WHERE id = $1";

pub(crate) const APIS: &str = "SELECT * FROM apis ORDER BY created_at, audience";

pub(crate) const CLIENT_INSERT: &str =
    "INSERT INTO clients (id, org_id, name, description, website_uri, \
     privacy_policy_uri, tos_uri, redirect_uris, grant_types, client_type, \
     secret_hash, previous_secret_hash, previous_secret_expires_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

pub(crate) const CLIENT_BY_ID: &str = "SELECT * FROM clients WHERE id = $1";

/// One statement: the right-hand sides read the row as it was before the update.
pub(crate) const CLIENT_ROTATE_SECRET: &str = "UPDATE clients SET \
       previous_secret_hash = CASE WHEN $2 IS NULL THEN NULL ELSE secret_hash END, \
       previous_secret_expires_at = $2, \
       secret_hash = $3 \
     WHERE id = $1";

pub(crate) const GRANT_CLEAR_OTHER_DEFAULTS: &str = "UPDATE client_grants SET is_default = FALSE \
     WHERE client_id = $1 AND api_id <> $2 AND is_default";

pub(crate) const GRANT_UPSERT: &str =
    "INSERT INTO client_grants (client_id, api_id, scopes, is_default) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (client_id, api_id) \
     DO UPDATE SET scopes = excluded.scopes, is_default = excluded.is_default";

pub(crate) const GRANTS_FOR_CLIENT: &str =
    "SELECT g.client_id, g.api_id, a.audience, g.scopes, g.is_default \
     FROM client_grants g JOIN apis a ON a.id = g.api_id \
     WHERE g.client_id = $1 ORDER BY a.audience";

pub(crate) const KEY_INSERT: &str =
    "INSERT INTO signing_keys (kid, alg, private_key, created_at, promoted_at, retires_at, \
     generation) SELECT $1, $2, $3, $4, $5, $6, COALESCE(MAX(generation), 0) + 1 FROM signing_keys";

pub(crate) const KEYS_ALL: &str =
    "SELECT kid, alg, private_key, created_at, promoted_at, retires_at FROM signing_keys \
     ORDER BY generation";

pub(crate) const KEY_PROMOTE: &str = "UPDATE signing_keys SET promoted_at = $2 \
     WHERE kid = $1 AND promoted_at IS NULL AND (retires_at IS NULL OR retires_at > $2)";

pub(crate) const KEY_RETIRE_PREVIOUS: &str = "UPDATE signing_keys SET retires_at = $2 \
     WHERE alg = (SELECT alg FROM signing_keys WHERE kid = $1) AND kid <> $1 \
     AND promoted_at IS NOT NULL AND retires_at IS NULL";

pub(crate) const KEY_RETIRE: &str = "UPDATE signing_keys SET retires_at = $2 \
     WHERE kid = $1 AND (retires_at IS NULL OR retires_at > $2)";

pub(crate) const USER_INSERT: &str =
    "INSERT INTO users (id, org_id, username, password_hash, external_id, email, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const USER_SCOPES_INSERT: &str =
    "INSERT INTO user_scopes (user_id, api_id, scopes) VALUES ($1, $2, $3)";

pub(crate) const USER_BY_ID: &str = "SELECT * FROM users WHERE id = $1";

pub(crate) const USERS_BY_USERNAME: &str =
    "SELECT * FROM users WHERE username = $1 ORDER BY created_at, id";

pub(crate) const USER_SET_PASSWORD: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";

pub(crate) const USERS_PAGE: &str =
    "SELECT * FROM users WHERE org_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3";

pub(crate) const USER_DELETE: &str = "DELETE FROM users WHERE id = $1 AND org_id = $2";

pub(crate) const USER_REVOKE_FAMILIES: &str =
    "UPDATE families SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";

pub(crate) const USER_SCOPES: &str =
    "SELECT scopes FROM user_scopes WHERE user_id = $1 AND api_id = $2";

pub(crate) const CODE_INSERT: &str =
    "INSERT INTO auth_codes (code_hash, family_id, client_id, user_id, api_id, scope, \
     redirect_uri, redirect_uri_given, code_challenge, created_at, expires_at, used_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

pub(crate) const CODE_BY_HASH: &str = "SELECT * FROM auth_codes WHERE code_hash = $1";

/// The gate of code redemption: only one transaction can move `used_at` from NULL.
pub(crate) const CODE_SPEND: &str =
    "UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL";

pub(crate) const FAMILY_INSERT: &str =
    "INSERT INTO families (id, client_id, user_id, org_id, api_id, scope, created_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)";

pub(crate) const FAMILY_BY_ID: &str = "SELECT * FROM families WHERE id = $1";

pub(crate) const FAMILY_REVOKE: &str =
    "UPDATE families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

pub(crate) const REFRESH_INSERT: &str =
    "INSERT INTO refresh_tokens (token_hash, family_id, scope, created_at, expires_at, used_at) \
     VALUES ($1, $2, $3, $4, $5, NULL)";

pub(crate) const REFRESH_WITH_FAMILY: &str =
    "SELECT r.token_hash, r.family_id, r.scope, r.created_at, r.expires_at, r.used_at, \
       r.successor_sealed, f.client_id, f.user_id, f.org_id, f.api_id, \
       f.scope AS family_scope, f.created_at AS family_created_at, f.revoked_at \
     FROM refresh_tokens r JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1";

/// The gate of rotation: spend the token only if it is live and its family is not revoked.
pub(crate) const REFRESH_SPEND: &str =
    "UPDATE refresh_tokens SET used_at = $2, successor_hash = $3, successor_sealed = $4 \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
       AND family_id IN (SELECT id FROM families WHERE revoked_at IS NULL) \
     RETURNING family_id";

/// Why the gate refused a token: `(used_at, successor_sealed, family_id, revoked_at)`.
pub(crate) const REFRESH_MISS: &str =
    "SELECT r.used_at, r.successor_sealed, r.family_id, f.revoked_at \
     FROM refresh_tokens r JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1";

/// Whether the successor of a spent token is still unused (no row: it has none).
pub(crate) const REFRESH_SUCCESSOR_UNUSED: &str = "SELECT r.used_at IS NULL FROM refresh_tokens r \
     JOIN refresh_tokens o ON o.successor_hash = r.token_hash WHERE o.token_hash = $1";

pub(crate) const JTI_REVOKE: &str =
    "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";

pub(crate) const JTI_REVOKED: &str = "SELECT expires_at FROM revoked_jtis WHERE jti = $1";
