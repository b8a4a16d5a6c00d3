//! The SQL text of every store operation, in the dialect SQLite and PostgreSQL share (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`). Both backends run these same statements; only
//! PostgreSQL's row-locking statements (in `postgres.rs`) are its own, and where the two
//! dialects cannot share a statement there are two constants here, `..._SQLITE` and `..._PG`.
//!
//! Listings share one shape: ordered by id, `$n IS NULL OR id > $n` for the cursor, and a
//! filter that is NULL does not narrow.

use std::sync::LazyLock;

pub(crate) const PING: &str = "SELECT 1";

pub(crate) const CHANGE_SEQ: &str = "SELECT seq FROM change_seq WHERE id = 1";

pub(crate) const META_INSERT: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

pub(crate) const META_GET: &str = "SELECT value FROM meta WHERE key = $1";

pub(crate) const META_SET: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// Takes lease `$1` for holder `$2` until `$4` when it is free at `$3` (no row, or its
/// `held_until` has passed) or `$2` already holds it: one statement, so of concurrent callers
/// exactly one changes a row (a loser's `DO UPDATE ... WHERE` sees the winner's row and
/// updates nothing).
pub(crate) const LEASE_TAKE: &str = "INSERT INTO leases (name, holder, held_until) \
     VALUES ($1, $2, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until \
     WHERE leases.held_until <= $3 OR leases.holder = excluded.holder";

pub(crate) const ORG_INSERT: &str = "INSERT INTO orgs \
     (id, name, created_at, tokens_per_hour, tokens_per_day) VALUES ($1, $2, $3, $4, $5)";

pub(crate) const ORG_BY_ID: &str = "SELECT * FROM orgs WHERE id = $1";

pub(crate) const ORG_BY_NAME: &str = "SELECT * FROM orgs WHERE name = $1";

pub(crate) const ORGS_PAGE: &str =
    "SELECT * FROM orgs WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2";

pub(crate) const ORG_UPDATE: &str =
    "UPDATE orgs SET name = $2, tokens_per_hour = $3, tokens_per_day = $4 WHERE id = $1";

/// Deletes the org only when nothing refers to it; the foreign keys of `clients` and `users`
/// refuse the delete as well should a client or user be added concurrently.
pub(crate) const ORG_DELETE_UNUSED: &str = "DELETE FROM orgs WHERE id = $1 \
     AND NOT EXISTS (SELECT 1 FROM clients WHERE org_id = $1) \
     AND NOT EXISTS (SELECT 1 FROM users WHERE org_id = $1)";

pub(crate) const API_INSERT: &str =
    "INSERT INTO apis (id, audience, name, scopes, alg, token_lifetime, \
     user_token_lifetime, delegated_token_lifetime, refresh_token_lifetime, created_at, \
     scope_descriptions) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub(crate) const API_BY_AUDIENCE: &str = "SELECT * FROM apis WHERE audience = $1";

pub(crate) const API_BY_ID: &str = "SELECT * FROM apis WHERE id = $1";

pub(crate) const APIS: &str = "SELECT * FROM apis ORDER BY created_at, audience";

pub(crate) const APIS_PAGE: &str =
    "SELECT * FROM apis WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2";

/// Everything but the audience (tokens carry it) and the creation time.
pub(crate) const API_UPDATE: &str = "UPDATE apis SET name = $2, scopes = $3, alg = $4, \
       token_lifetime = $5, user_token_lifetime = $6, delegated_token_lifetime = $7, \
       refresh_token_lifetime = $8, scope_descriptions = $9 \
     WHERE id = $1";

/// Client grants and user scopes on the API go with it (`ON DELETE CASCADE`).
pub(crate) const API_DELETE: &str = "DELETE FROM apis WHERE id = $1";

pub(crate) const API_REVOKE_FAMILIES: &str =
    "UPDATE families SET revoked_at = $2 WHERE api_id = $1 AND revoked_at IS NULL";

pub(crate) const CLIENT_INSERT: &str =
    "INSERT INTO clients (id, org_id, name, description, website_uri, \
     privacy_policy_uri, tos_uri, redirect_uris, grant_types, client_type, \
     secret_hash, previous_secret_hash, previous_secret_expires_at, created_at, disabled, \
     policy, tokens_per_hour, tokens_per_day) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

pub(crate) const CLIENT_BY_ID: &str = "SELECT * FROM clients WHERE id = $1";

pub(crate) const CLIENTS_PAGE: &str = "SELECT * FROM clients \
     WHERE ($1 IS NULL OR org_id = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3";

/// The registration only: never the secrets, type, organization or creation time.
pub(crate) const CLIENT_UPDATE: &str = "UPDATE clients SET name = $2, description = $3, \
       website_uri = $4, privacy_policy_uri = $5, tos_uri = $6, redirect_uris = $7, \
       grant_types = $8, disabled = $9, policy = $10, tokens_per_hour = $11, \
       tokens_per_day = $12 \
     WHERE id = $1";

pub(crate) const CLIENT_DELETE: &str = "DELETE FROM clients WHERE id = $1";

pub(crate) const CLIENT_REVOKE_FAMILIES: &str =
    "UPDATE families SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL";

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

pub(crate) const GRANT_INSERT: &str =
    "INSERT INTO client_grants (client_id, api_id, scopes, is_default) VALUES ($1, $2, $3, $4)";

pub(crate) const GRANT_UPDATE: &str =
    "UPDATE client_grants SET scopes = $3, is_default = $4 WHERE client_id = $1 AND api_id = $2";

pub(crate) const GRANT_DELETE: &str =
    "DELETE FROM client_grants WHERE client_id = $1 AND api_id = $2";

pub(crate) const GRANTS_DELETE_OF_CLIENT: &str = "DELETE FROM client_grants WHERE client_id = $1";

pub(crate) const GRANTS_FOR_API: &str =
    "SELECT g.client_id, g.api_id, a.audience, g.scopes, g.is_default \
     FROM client_grants g JOIN apis a ON a.id = g.api_id \
     WHERE g.api_id = $1 ORDER BY g.client_id";

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
    "INSERT INTO users (id, org_id, username, password_hash, external_id, email, created_at, \
     role) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(crate) const USER_SCOPES_INSERT: &str =
    "INSERT INTO user_scopes (user_id, api_id, scopes) VALUES ($1, $2, $3)";

pub(crate) const USER_BY_ID: &str = "SELECT * FROM users WHERE id = $1";

pub(crate) const USERS_BY_USERNAME: &str =
    "SELECT * FROM users WHERE username = $1 ORDER BY created_at, id";

pub(crate) const USER_SET_PASSWORD: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";

pub(crate) const USERS_PAGE: &str = "SELECT * FROM users \
     WHERE ($1 IS NULL OR org_id = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3";

pub(crate) const USER_UPDATE: &str = "UPDATE users SET username = $2, password_hash = $3, \
     external_id = $4, email = $5, role = $6 WHERE id = $1";

pub(crate) const USER_SCOPES_DELETE: &str = "DELETE FROM user_scopes WHERE user_id = $1";

pub(crate) const USER_SCOPES_ALL: &str =
    "SELECT api_id, scopes FROM user_scopes WHERE user_id = $1 ORDER BY api_id";

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
    "INSERT INTO families (id, client_id, user_id, org_id, api_id, scope, created_at, revoked_at, \
       token_generation, token_hash, token_issued_at, token_expires_at, dpop_jkt) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11, $12)";

pub(crate) const FAMILY_BY_ID: &str = "SELECT * FROM families WHERE id = $1";

pub(crate) const FAMILIES_PAGE: &str = "SELECT * FROM families \
     WHERE ($1 IS NULL OR client_id = $1) AND ($2 IS NULL OR user_id = $2) \
       AND ($3 IS NULL OR id > $3) \
     ORDER BY id LIMIT $4";

pub(crate) const FAMILY_REVOKE: &str =
    "UPDATE families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

/// The gate of rotation (`$1` family, `$2` presented generation, `$3` presented hash, `$4`
/// now, then the successor: `$5` generation, `$6` hash, `$7` sealed, `$8` expiry). Only the
/// family's current, unexpired token of a family that is not revoked moves it; of concurrent
/// rotations of one token the database lets exactly one through.
pub(crate) const ROTATE: &str = "UPDATE families SET token_generation = $5, token_hash = $6, \
       token_sealed = $7, token_issued_at = $4, token_expires_at = $8 \
     WHERE id = $1 AND token_generation = $2 AND token_hash = $3 \
       AND revoked_at IS NULL AND token_expires_at > $4";

/// Why the gate refused a generation token: `(token_generation, token_issued_at,
/// token_sealed, revoked_at)`.
pub(crate) const ROTATE_MISS: &str =
    "SELECT token_generation, token_issued_at, token_sealed, revoked_at FROM families WHERE id = $1";

/// A legacy family's first generation token (`$1` family, `$2` issue time, then the
/// successor: `$3` generation, `$4` hash, `$5` sealed, `$6` expiry).
pub(crate) const ROTATE_FROM_LEGACY: &str = "UPDATE families SET token_generation = $3, \
       token_hash = $4, token_sealed = $5, token_issued_at = $2, token_expires_at = $6 \
     WHERE id = $1 AND token_generation = 0";

pub(crate) const REFRESH_WITH_FAMILY: &str =
    "SELECT r.token_hash, r.family_id, r.scope, r.created_at, r.expires_at, r.used_at, \
       r.successor_sealed, f.client_id, f.user_id, f.org_id, f.api_id, \
       f.scope AS family_scope, f.created_at AS family_created_at, f.revoked_at, \
       f.token_generation, f.token_hash AS family_token_hash, f.token_issued_at, \
       f.token_expires_at, f.dpop_jkt \
     FROM refresh_tokens r JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1";

/// The gate of a legacy token's rotation: spend it only if it is live and its family is not
/// revoked.
pub(crate) const REFRESH_SPEND: &str =
    "UPDATE refresh_tokens SET used_at = $2, successor_hash = $3, successor_sealed = $4 \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
       AND family_id IN (SELECT id FROM families WHERE revoked_at IS NULL) \
     RETURNING family_id";

/// Why the gate refused a legacy token: `(used_at, successor_sealed, family_id, revoked_at)`.
pub(crate) const REFRESH_MISS: &str =
    "SELECT r.used_at, r.successor_sealed, r.family_id, f.revoked_at \
     FROM refresh_tokens r JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1";

/// Whether the successor of a spent legacy token is still its family's current token.
pub(crate) const REFRESH_SUCCESSOR_UNUSED: &str =
    "SELECT f.token_hash = r.successor_hash FROM refresh_tokens r \
     JOIN families f ON f.id = r.family_id WHERE r.token_hash = $1";

pub(crate) const JTI_REVOKE: &str =
    "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";

pub(crate) const JTI_REVOKED: &str = "SELECT expires_at FROM revoked_jtis WHERE jti = $1";

pub(crate) const AUDIT_INSERT: &str =
    "INSERT INTO audit_events (id, at, kind, actor, org_id, client_id, user_id, target, \
     address, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// `$1` an exact type, `$2` a `LIKE` prefix pattern (`security.%`, with `\` escaping), then
/// org, client and user, `at` from `$6` (inclusive) to `$7` (exclusive), the cursor `$8`.
pub(crate) const AUDIT_PAGE: &str = "SELECT * FROM audit_events \
     WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR kind LIKE $2 ESCAPE '\\') \
       AND ($3 IS NULL OR org_id = $3) AND ($4 IS NULL OR client_id = $4) \
       AND ($5 IS NULL OR user_id = $5) \
       AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) \
       AND ($8 IS NULL OR id > $8) \
     ORDER BY id LIMIT $9";

pub(crate) const AUDIT_BY_ID: &str = "SELECT * FROM audit_events WHERE id = $1";

pub(crate) const WEBHOOK_INSERT: &str =
    "INSERT INTO webhooks (id, url, events, secret_sealed, disabled, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const WEBHOOK_BY_ID: &str = "SELECT * FROM webhooks WHERE id = $1";

pub(crate) const WEBHOOKS_PAGE: &str =
    "SELECT * FROM webhooks WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2";

pub(crate) const WEBHOOKS_ACTIVE: &str = "SELECT * FROM webhooks WHERE NOT disabled ORDER BY id";

pub(crate) const WEBHOOK_UPDATE: &str =
    "UPDATE webhooks SET url = $2, events = $3, disabled = $4 WHERE id = $1";

/// Its deliveries go with it (`ON DELETE CASCADE`).
pub(crate) const WEBHOOK_DELETE: &str = "DELETE FROM webhooks WHERE id = $1";

pub(crate) const DELIVERY_INSERT: &str =
    "INSERT INTO webhook_deliveries (id, webhook_id, event_id, payload, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, delivered_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Claims up to `$3` deliveries in state `$4` (pending) due at `$1` whose claim, if any,
/// lapsed before `$1`, holding them until `$2`. One statement on the single writer: a second
/// claimer (another process) waits for the write lock, then finds them held.
pub(crate) const DELIVERIES_CLAIM_SQLITE: &str =
    "UPDATE webhook_deliveries SET locked_until = $2 WHERE id IN ( \
       SELECT id FROM webhook_deliveries \
       WHERE state = $4 AND next_attempt_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) \
       ORDER BY next_attempt_at, id LIMIT $3) \
     RETURNING *";

/// As `DELIVERIES_CLAIM_SQLITE`; `SKIP LOCKED` passes over rows another node is claiming
/// right now, and a row that node has claimed and committed no longer matches once
/// PostgreSQL re-checks the condition on the locked row (READ COMMITTED), so two nodes never
/// claim one delivery and neither waits for the other.
pub(crate) const DELIVERIES_CLAIM_PG: &str =
    "UPDATE webhook_deliveries SET locked_until = $2 WHERE id IN ( \
       SELECT id FROM webhook_deliveries \
       WHERE state = $4 AND next_attempt_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) \
       ORDER BY next_attempt_at, id LIMIT $3 \
       FOR UPDATE SKIP LOCKED) \
     RETURNING *";

/// Records an attempt and releases the claim (`$6` is the attempt's time when delivered).
pub(crate) const DELIVERY_FINISH: &str = "UPDATE webhook_deliveries SET state = $2, \
       attempts = attempts + 1, next_attempt_at = $3, last_status = $4, last_error = $5, \
       delivered_at = $6, locked_until = NULL \
     WHERE id = $1";

pub(crate) const DELIVERIES_PAGE: &str = "SELECT * FROM webhook_deliveries \
     WHERE webhook_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3";

pub(crate) const USAGE_ADD: &str = "INSERT INTO usage_hourly (client_id, hour, count) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (client_id, hour) DO UPDATE SET count = usage_hourly.count + excluded.count";

pub(crate) const USAGE_SINCE: &str = "SELECT client_id, hour, count FROM usage_hourly \
     WHERE client_id = $1 AND hour >= $2 ORDER BY hour";

/// Marks one single-use key (SQLite runs one per mark inside its batch's transaction;
/// PostgreSQL marks a whole batch in one statement).
pub(crate) const USE_ONCE: &str =
    "INSERT INTO used_jtis (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

pub(crate) const PUSHED_INSERT: &str = "INSERT INTO pushed_requests \
     (uri_hash, client_id, params, expires_at) VALUES ($1, $2, $3, $4)";

/// Deletes and returns in one statement: of two concurrent takers only one gets the row.
pub(crate) const PUSHED_TAKE: &str = "DELETE FROM pushed_requests WHERE uri_hash = $1 \
     RETURNING uri_hash, client_id, params, expires_at";

/// Reads a quota window's count inside a batch, creating the row at 0 when missing; the
/// no-op update makes PostgreSQL lock the row until the batch commits.
pub(crate) const QUOTA_TAKE: &str = "INSERT INTO quota_counts \
     (subject, window_secs, window_start, count) VALUES ($1, $2, $3, 0) \
     ON CONFLICT (subject, window_secs, window_start) \
     DO UPDATE SET count = quota_counts.count \
     RETURNING count";

/// Writes a window's count as a batch left it (the row was taken by `QUOTA_TAKE`).
pub(crate) const QUOTA_SET: &str = "UPDATE quota_counts SET count = $4 \
     WHERE subject = $1 AND window_secs = $2 AND window_start = $3";

pub(crate) const QUOTA_USED: &str = "SELECT count FROM quota_counts \
     WHERE subject = $1 AND window_secs = $2 AND window_start = $3";

// The purge, in the order it runs (see `purge` in either backend). `$1` is `now` unless
// said otherwise.

// The purge. Each kind is a predicate written once: a real run deletes what it matches in
// batches (`$2`, or `$3` where the predicate takes two values, is the batch size), each
// statement its own short transaction; a dry run counts it.

/// `$1` is now.
pub(crate) const PURGE_JTIS: &str = "DELETE FROM revoked_jtis WHERE jti IN \
     (SELECT jti FROM revoked_jtis WHERE expires_at < $1 LIMIT $2)";
pub(crate) const COUNT_JTIS: &str = "SELECT COUNT(*) FROM revoked_jtis WHERE expires_at < $1";

/// `$1` is now.
pub(crate) const PURGE_USED_IDS: &str = "DELETE FROM used_jtis WHERE key IN \
     (SELECT key FROM used_jtis WHERE expires_at < $1 LIMIT $2)";
pub(crate) const COUNT_USED_IDS: &str = "SELECT COUNT(*) FROM used_jtis WHERE expires_at < $1";

/// `$1` is now.
pub(crate) const PURGE_PUSHED: &str = "DELETE FROM pushed_requests WHERE uri_hash IN \
     (SELECT uri_hash FROM pushed_requests WHERE expires_at < $1 LIMIT $2)";
pub(crate) const COUNT_PUSHED: &str = "SELECT COUNT(*) FROM pushed_requests WHERE expires_at < $1";

/// `$1` is now: windows that have ended.
pub(crate) const PURGE_QUOTA_COUNTS: &str =
    "DELETE FROM quota_counts WHERE (subject, window_secs, window_start) IN \
     (SELECT subject, window_secs, window_start FROM quota_counts \
      WHERE window_start + window_secs < $1 LIMIT $2)";
pub(crate) const COUNT_QUOTA_COUNTS: &str =
    "SELECT COUNT(*) FROM quota_counts WHERE window_start + window_secs < $1";

/// `$1` is the audit retention's start.
pub(crate) const PURGE_AUDIT: &str = "DELETE FROM audit_events WHERE id IN \
     (SELECT id FROM audit_events WHERE at < $1 LIMIT $2)";
pub(crate) const COUNT_AUDIT: &str = "SELECT COUNT(*) FROM audit_events WHERE at < $1";

/// `$1` is the audit retention's start; pending deliveries stay whatever their age.
pub(crate) const PURGE_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE id IN \
     (SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1 LIMIT $2)";
pub(crate) const COUNT_DELIVERIES: &str =
    "SELECT COUNT(*) FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1";

/// `$1` is the audit retention's start.
pub(crate) const PURGE_USAGE: &str = "DELETE FROM usage_hourly WHERE (client_id, hour) IN \
     (SELECT client_id, hour FROM usage_hourly WHERE hour < $1 LIMIT $2)";
pub(crate) const COUNT_USAGE: &str = "SELECT COUNT(*) FROM usage_hourly WHERE hour < $1";

/// `$1` is now. A code of a purged family expired long before its family did.
pub(crate) const PURGE_CODES: &str = "DELETE FROM auth_codes WHERE code_hash IN \
     (SELECT code_hash FROM auth_codes WHERE expires_at < $1 LIMIT $2)";
pub(crate) const COUNT_CODES: &str = "SELECT COUNT(*) FROM auth_codes WHERE expires_at < $1";

/// A dead family (`$1` now, `$2` the access-token grace): revoked more than the grace ago, or
/// its refresh token (if it ever had one) expired and its newest access token (issued with
/// its newest refresh token, else at its creation) has expired too.
const FAMILY_DEAD: &str = "((revoked_at IS NOT NULL AND revoked_at + $2 < $1) \
     OR (COALESCE(token_expires_at, 0) <= $1 \
         AND COALESCE(token_issued_at, created_at) + $2 < $1))";

/// One page of dead families, read without the write lock (`$3` the cursor, `$4` the page).
pub(crate) static PURGE_FAMILIES_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT id FROM families WHERE id > $3 AND {FAMILY_DEAD} ORDER BY id LIMIT $4")
});
pub(crate) static COUNT_FAMILIES: LazyLock<String> =
    LazyLock::new(|| format!("SELECT COUNT(*) FROM families WHERE {FAMILY_DEAD}"));

/// A chosen family's legacy refresh tokens (`$3` its id), if it is still dead: it may have
/// been rotated since it was chosen.
pub(crate) static PURGE_FAMILY_TOKENS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DELETE FROM refresh_tokens WHERE family_id = $3 \
         AND EXISTS (SELECT 1 FROM families WHERE id = $3 AND {FAMILY_DEAD})"
    )
});

/// A chosen family (`$3`), if it is still dead; after its legacy tokens, which refer to it.
pub(crate) static PURGE_FAMILY: LazyLock<String> =
    LazyLock::new(|| format!("DELETE FROM families WHERE id = $3 AND {FAMILY_DEAD}"));

/// Legacy refresh tokens past their expiry and their access token's (`$2`, the grace).
pub(crate) const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_hash IN \
     (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 AND created_at + $2 < $1 \
      LIMIT $3)";
pub(crate) const COUNT_REFRESH_TOKENS: &str =
    "SELECT COUNT(*) FROM refresh_tokens WHERE expires_at < $1 AND created_at + $2 < $1";

/// A key with no retirement is never removed (`NULL <= $1` is not true).
pub(crate) const PURGE_KEYS: &str = "DELETE FROM signing_keys WHERE retires_at <= $1";
pub(crate) const COUNT_KEYS: &str = "SELECT COUNT(*) FROM signing_keys WHERE retires_at <= $1";

pub(crate) const ENTITLEMENT_SET: &str = "INSERT INTO org_entitlements (org_id, api_id, scopes) \
     VALUES ($1, $2, $3) ON CONFLICT (org_id, api_id) DO UPDATE SET scopes = excluded.scopes";

pub(crate) const ENTITLEMENT_DELETE: &str =
    "DELETE FROM org_entitlements WHERE org_id = $1 AND api_id = $2";

pub(crate) const ENTITLEMENTS: &str =
    "SELECT org_id, api_id, scopes FROM org_entitlements WHERE org_id = $1 ORDER BY api_id";

pub(crate) const CONSENT_SET: &str =
    "INSERT INTO consents (user_id, client_id, api_id, scope, granted_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_id, api_id) \
     DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at";

pub(crate) const CONSENT: &str = "SELECT user_id, client_id, api_id, scope, granted_at \
     FROM consents WHERE user_id = $1 AND client_id = $2 AND api_id = $3";

pub(crate) const CONSENTS: &str = "SELECT user_id, client_id, api_id, scope, granted_at \
     FROM consents WHERE user_id = $1 ORDER BY granted_at, client_id, api_id";

pub(crate) const CONSENT_FORGET: &str =
    "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";

pub(crate) const CONSENT_REVOKE_FAMILIES: &str = "UPDATE families SET revoked_at = $3 \
     WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL";
