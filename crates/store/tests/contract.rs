//! Contract tests for the store backends: what the role traits of `calyx_core::store` promise
//! in their doc comments, checked through `calyx_store::connect` as the server uses it.
//!
//! Every test body runs on SQLite, and again on PostgreSQL when `CALYX_TEST_DATABASE_URL`
//! names a server (`scripts/test` sets it). Each run gets a database of its own: a temporary
//! file for SQLite, a new `calyx_t_<random>` database on that server for PostgreSQL. A "node"
//! is a separate store instance on the same database, as a second `calyx serve` process (or
//! the CLI next to a server) would be; fixtures are written through the store's own API.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use calyx_core::audit::{kind, AuditEvent, AuditFilter};
use calyx_core::model::{
    Api, Attempt, AuthCode, Client, ClientGrant, ClientPolicy, ClientType, Consent, Delivery,
    DeliveryState, Entitlement, Family, FamilyFilter, FamilyToken, GrantType, KeyAuth, Org, Page,
    Presented, PurgeReport, PushedRequest, Quota, QuotaLimit, Role, RotateOutcome, Rotation,
    SigningAlg, StoredKey, UsageCount, User, Webhook,
};
use calyx_core::store::{Store, StoreError};
use calyx_core::ScopeSet;
use calyx_store::ConnectOptions;
use futures_util::future::join_all;

/// The time every test acts at, in Unix seconds.
const NOW: i64 = 1_700_000_000;

/// One database, on one backend.
struct Db {
    backend: &'static str,
    url: String,
    /// The first node.
    store: Arc<dyn Store>,
}

impl Db {
    /// Another node on the same database.
    async fn node(&self) -> Arc<dyn Store> {
        connect(&self.url).await
    }
}

async fn connect(url: &str) -> Arc<dyn Store> {
    let mut opts = ConnectOptions::new(url);
    opts.max_connections = 4;
    // Durability across power loss is not what these tests look at.
    opts.sqlite_sync_full = false;
    calyx_store::connect(&opts).await.expect("the store opens")
}

/// Runs `body` on a fresh SQLite database, then on a fresh PostgreSQL database if the
/// environment names a server.
async fn each_backend<F, Fut>(body: F)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("calyx.db").display());
    eprintln!("contract: sqlite");
    body(Db {
        backend: "sqlite",
        store: connect(&url).await,
        url,
    })
    .await;
    // (The directory outlives the body: a body may keep only some fields of its `Db`.)
    drop(dir);

    if let Some(admin) = postgres_admin_url() {
        let name = format!("calyx_t_{}", uuid::Uuid::new_v4().simple());
        admin_execute(&admin, &format!("CREATE DATABASE {name}")).await;
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        eprintln!("contract: postgres ({name})");
        body(Db {
            backend: "postgres",
            store: connect(&url).await,
            url,
        })
        .await;
        // Left behind when the body panics, for a look; `scripts/test` drops leftovers.
        admin_execute(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    }
}

/// The PostgreSQL server to test against, if any.
fn postgres_admin_url() -> Option<String> {
    std::env::var("CALYX_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

async fn admin_execute(admin: &str, statement: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connecting to the test PostgreSQL");
    conn.execute(statement).await.unwrap();
    conn.close().await.unwrap();
}

// ---- fixtures ----------------------------------------------------------------------------

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn hash() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap()
}

fn new_org() -> Org {
    Org {
        id: unique("org"),
        name: unique("Org"),
        quota: Quota::default(),
        created_at: NOW,
    }
}

fn new_api(audience: &str) -> Api {
    Api {
        id: unique("api"),
        audience: audience.into(),
        name: "Orders".into(),
        scopes: scopes("read write"),
        alg: SigningAlg::ES256,
        token_lifetime: 300,
        user_token_lifetime: 300,
        delegated_token_lifetime: 300,
        refresh_token_lifetime: 86_400,
        scope_descriptions: Default::default(),
        created_at: NOW,
    }
}

fn new_client(org_id: &str) -> Client {
    Client {
        id: unique("client"),
        org_id: org_id.into(),
        name: "Shop".into(),
        description: None,
        website_uri: None,
        privacy_policy_uri: None,
        tos_uri: None,
        redirect_uris: vec!["https://shop.example/cb".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        client_type: ClientType::Confidential,
        secret_hash: Some(hash()),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        disabled: false,
        policy: ClientPolicy::default(),
        quota: Quota::default(),
        created_at: NOW,
    }
}

fn new_user(org_id: &str) -> User {
    User {
        id: unique("user"),
        org_id: org_id.into(),
        username: Some(unique("jane")),
        password_hash: Some("$argon2id$stand-in".into()),
        external_id: None,
        email: None,
        role: None,
        created_at: NOW,
    }
}

fn grant_of(client: &Client, api: &Api, s: &str, is_default: bool) -> ClientGrant {
    ClientGrant {
        client_id: client.id.clone(),
        api_id: api.id.clone(),
        audience: api.audience.clone(),
        scopes: scopes(s),
        is_default,
    }
}

/// An organization with an API, a client granted on it, and a user.
struct World {
    org: Org,
    api: Api,
    client: Client,
    user: User,
}

async fn world(store: &dyn Store) -> World {
    let org = new_org();
    store.insert_org(&org).await.unwrap();
    let api = new_api(&unique("https://api.example/orders"));
    store.insert_api(&api).await.unwrap();
    let client = new_client(&org.id);
    store.insert_client(&client).await.unwrap();
    store
        .upsert_grant(&grant_of(&client, &api, "read write", true))
        .await
        .unwrap();
    let user = new_user(&org.id);
    store
        .insert_user(&user, &[(api.id.clone(), scopes("read"))])
        .await
        .unwrap();
    World {
        org,
        api,
        client,
        user,
    }
}

fn new_code(w: &World) -> AuthCode {
    AuthCode {
        code_hash: hash(),
        family_id: unique("family"),
        client_id: w.client.id.clone(),
        user_id: w.user.id.clone(),
        api_id: w.api.id.clone(),
        scope: scopes("read"),
        redirect_uri: "https://shop.example/cb".into(),
        redirect_uri_given: true,
        code_challenge: None,
        created_at: NOW,
        expires_at: NOW + 60,
        used_at: None,
    }
}

fn new_family(w: &World, id: &str) -> Family {
    Family {
        id: id.into(),
        client_id: w.client.id.clone(),
        user_id: w.user.id.clone(),
        org_id: w.org.id.clone(),
        api_id: w.api.id.clone(),
        scope: scopes("read"),
        created_at: NOW,
        revoked_at: None,
        token: None,
        dpop_jkt: None,
    }
}

/// A generation refresh token as the store sees it: its family, generation and hash (the
/// token's text and tag are the server's business).
#[derive(Debug, Clone, PartialEq)]
struct Tok {
    family_id: String,
    generation: i64,
    hash: Vec<u8>,
    expires_at: i64,
}

impl Tok {
    /// The token that rotating this one at `now` would store.
    fn next(&self, now: i64) -> Tok {
        Tok {
            family_id: self.family_id.clone(),
            generation: self.generation + 1,
            hash: hash(),
            expires_at: now + 3600,
        }
    }

    fn as_family_token(&self, issued_at: i64) -> FamilyToken {
        FamilyToken {
            generation: self.generation,
            token_hash: self.hash.clone(),
            issued_at,
            expires_at: self.expires_at,
        }
    }
}

/// Issues a code and redeems it: a new family with its first refresh token.
async fn grant(store: &dyn Store, w: &World) -> Tok {
    let code = new_code(w);
    store.insert_code(&code).await.unwrap();
    let mut family = new_family(w, &code.family_id);
    let token = Tok {
        family_id: family.id.clone(),
        generation: 1,
        hash: hash(),
        expires_at: NOW + 3600,
    };
    family.token = Some(token.as_family_token(NOW));
    assert!(store
        .redeem_code(&code.code_hash, NOW, &family)
        .await
        .unwrap());
    token
}

/// The rotation of `presented` into `successor` at `now`; `sealed` is the successor's sealed
/// form, which the server keeps when a reuse leeway is configured.
fn rotation(
    presented: &Tok,
    successor: &Tok,
    now: i64,
    leeway: i64,
    sealed: Option<&[u8]>,
) -> Rotation {
    Rotation {
        family_id: presented.family_id.clone(),
        presented: Presented::Generation {
            generation: presented.generation,
            token_hash: presented.hash.clone(),
        },
        successor: successor.as_family_token(now),
        successor_sealed: sealed.map(<[u8]>::to_vec),
        now,
        leeway,
    }
}

/// The family's current token, as stored.
async fn current(store: &dyn Store, family_id: &str) -> Option<FamilyToken> {
    store
        .family(family_id)
        .await
        .unwrap()
        .expect("the family exists")
        .token
}

async fn revoked_at(store: &dyn Store, family_id: &str) -> Option<i64> {
    store
        .family(family_id)
        .await
        .unwrap()
        .expect("the family exists")
        .revoked_at
}

/// Runs a statement straight on the test database, bypassing the store: for the legacy
/// table, which the store reads but no longer writes, and for counting rows.
macro_rules! raw {
    ($db:expr, $sql:expr $(, $bind:expr)*) => {{
        if $db.backend == "sqlite" {
            let pool = sqlx::SqlitePool::connect(&$db.url).await.unwrap();
            let n: i64 = sqlx::query_scalar($sql)$(.bind($bind))*.fetch_optional(&pool).await.unwrap().unwrap_or(0);
            pool.close().await;
            n
        } else {
            let pool = sqlx::PgPool::connect(&$db.url).await.unwrap();
            let n: i64 = sqlx::query_scalar($sql)$(.bind($bind))*.fetch_optional(&pool).await.unwrap().unwrap_or(0);
            pool.close().await;
            n
        }
    }};
}

/// A family as a database from before generation tokens holds it: no generation token, and
/// one live refresh token of the earlier format (by hash) in the legacy table, with the times
/// the migration copies onto the family.
async fn legacy_grant(db: &Db, w: &World, expires_at: i64) -> (String, Vec<u8>) {
    let code = new_code(w);
    db.store.insert_code(&code).await.unwrap();
    let family = new_family(w, &code.family_id);
    assert!(db
        .store
        .redeem_code(&code.code_hash, NOW, &family)
        .await
        .unwrap());
    let token_hash = hash();
    raw!(
        db,
        "INSERT INTO refresh_tokens (token_hash, family_id, scope, created_at, expires_at, \
         used_at) VALUES ($1, $2, 'read', $3, $4, NULL) RETURNING CAST(0 AS BIGINT)",
        token_hash.clone(),
        family.id.clone(),
        NOW,
        expires_at
    );
    raw!(
        db,
        "UPDATE families SET token_issued_at = $2, token_expires_at = $3 WHERE id = $1 \
         RETURNING CAST(0 AS BIGINT)",
        family.id.clone(),
        NOW,
        expires_at
    );
    (family.id, token_hash)
}

/// The rotation of the legacy token `token_hash` of `family_id` into its first generation
/// token `successor`.
fn legacy_rotation(
    family_id: &str,
    token_hash: &[u8],
    successor: &Tok,
    now: i64,
    leeway: i64,
    sealed: Option<&[u8]>,
) -> Rotation {
    Rotation {
        family_id: family_id.into(),
        presented: Presented::Legacy {
            token_hash: token_hash.to_vec(),
        },
        successor: successor.as_family_token(now),
        successor_sealed: sealed.map(<[u8]>::to_vec),
        now,
        leeway,
    }
}

// ---- refresh rotation --------------------------------------------------------------------

/// Many writers on two nodes present one refresh token at once: exactly one rotates it, the
/// others see a reuse (or, once that revoked the family, an invalid token), and the family
/// holds the winner's successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_rotation_is_single_use_across_writers() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        let w = world(&*db.store).await;
        for _round in 0..5 {
            let token = grant(&*db.store, &w).await;
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..24 {
                let node = nodes[i % 2].clone();
                let successor = token.next(NOW + 1);
                let rotation = rotation(&token, &successor, NOW + 1, 0, None);
                tasks.spawn(async move { (successor, node.rotate_refresh(rotation).await) });
            }
            let mut rotated = Vec::new();
            let mut reused = 0;
            for (successor, outcome) in tasks.join_all().await {
                match outcome.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)) {
                    RotateOutcome::Rotated => rotated.push(successor),
                    RotateOutcome::Reused => reused += 1,
                    RotateOutcome::Invalid => {}
                    other => panic!("{}: unexpected {other:?}", db.backend),
                }
            }
            assert_eq!(rotated.len(), 1, "{}: exactly one Rotated", db.backend);
            assert!(
                reused >= 1,
                "{}: the second presentation is a reuse",
                db.backend
            );
            assert_eq!(
                current(&*db.store, &token.family_id).await,
                Some(rotated[0].as_family_token(NOW + 1)),
                "{}: the winner's successor is the family's token",
                db.backend
            );
            assert_eq!(
                revoked_at(&*db.store, &token.family_id).await,
                Some(NOW + 1),
                "the reuse revoked the family"
            );
        }
    })
    .await;
}

/// A chain of rotations writes no row: the family's row is updated in place, and the legacy
/// table stays empty (storage grows with the live sign-ins, not with their rotations).
#[tokio::test]
async fn rotation_adds_no_row() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let before = raw!(db, "SELECT COUNT(*) FROM families");
        let mut token = grant(store, &w).await;
        for i in 1..=50 {
            let next = token.next(NOW + i);
            assert_eq!(
                store
                    .rotate_refresh(rotation(&token, &next, NOW + i, 30, Some(b"sealed")))
                    .await
                    .unwrap(),
                RotateOutcome::Rotated
            );
            token = next;
        }
        assert_eq!(
            current(store, &token.family_id).await.unwrap().generation,
            51
        );
        assert_eq!(raw!(db, "SELECT COUNT(*) FROM families"), before + 1);
        assert_eq!(raw!(db, "SELECT COUNT(*) FROM refresh_tokens"), 0);
    })
    .await;
}

/// A spent token presented again within the leeway, while its successor is current, gets that
/// successor again (`Retried`) and revokes nothing; after the leeway, or once the successor
/// was rotated too, or with no sealed successor, it is a reuse and the family is revoked.
#[tokio::test]
async fn reuse_leeway_retries_then_revokes() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let leeway = 30;
        let again = |old: &Tok, at: i64| {
            let r = rotation(old, &old.next(at), at, leeway, Some(b"another successor"));
            async move { store.rotate_refresh(r).await }
        };

        // Within the leeway, successor current: Retried, as often as it is asked.
        let token = grant(store, &w).await;
        let first = token.next(NOW);
        assert_eq!(
            store
                .rotate_refresh(rotation(&token, &first, NOW, leeway, Some(b"sealed first")))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        for at in [NOW, NOW + 10, NOW + leeway] {
            assert_eq!(
                again(&token, at).await.unwrap(),
                RotateOutcome::Retried(b"sealed first".to_vec()),
                "{}: at +{}",
                db.backend,
                at - NOW
            );
        }
        assert_eq!(revoked_at(store, &token.family_id).await, None);
        // After the leeway: Reused, and the family (so the successor too) is revoked.
        assert_eq!(
            again(&token, NOW + leeway + 1).await.unwrap(),
            RotateOutcome::Reused
        );
        assert_eq!(
            revoked_at(store, &token.family_id).await,
            Some(NOW + leeway + 1)
        );
        assert_eq!(
            again(&first, NOW + leeway + 2).await.unwrap(),
            RotateOutcome::Invalid
        );

        // Within the leeway but the successor was rotated too: Reused.
        let token = grant(store, &w).await;
        let first = token.next(NOW);
        let second = first.next(NOW + 1);
        store
            .rotate_refresh(rotation(&token, &first, NOW, leeway, Some(b"sealed")))
            .await
            .unwrap();
        assert_eq!(
            store
                .rotate_refresh(rotation(&first, &second, NOW + 1, leeway, Some(b"2nd")))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        assert_eq!(again(&token, NOW + 2).await.unwrap(), RotateOutcome::Reused);
        assert_eq!(revoked_at(store, &token.family_id).await, Some(NOW + 2));

        // Within the leeway but no sealed successor kept: Reused.
        let token = grant(store, &w).await;
        store
            .rotate_refresh(rotation(&token, &token.next(NOW), NOW, leeway, None))
            .await
            .unwrap();
        assert_eq!(again(&token, NOW + 1).await.unwrap(), RotateOutcome::Reused);

        // An unknown family, the current generation with the wrong hash (a candidate of a
        // rotation that lost), a generation never issued, or an expired token: Invalid, and
        // nothing revoked.
        let token = grant(store, &w).await;
        let ghost = Tok {
            family_id: "fam_none".into(),
            ..token.clone()
        };
        let wrong_hash = Tok {
            hash: hash(),
            ..token.clone()
        };
        let future = token.next(NOW).next(NOW);
        for t in [&ghost, &wrong_hash, &future] {
            assert_eq!(
                again(t, NOW).await.unwrap(),
                RotateOutcome::Invalid,
                "{t:?}"
            );
        }
        assert_eq!(
            again(&token, token.expires_at).await.unwrap(),
            RotateOutcome::Invalid
        );
        assert_eq!(revoked_at(store, &token.family_id).await, None);
        assert_eq!(
            current(store, &token.family_id).await.unwrap().generation,
            1
        );
    })
    .await;
}

/// Two presentations of one token in the same group-commit batch get the outcomes of running
/// them one after the other: `Rotated`, then `Reused` (or `Retried` within a leeway).
///
/// The runtime has one thread, and `join!` polls both calls, so both jobs are queued, before
/// the writer task can run: it takes them as one batch.
#[tokio::test(flavor = "current_thread")]
async fn one_token_twice_in_one_batch() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;

        let token = grant(store, &w).await;
        let (a, b) = (token.next(NOW), token.next(NOW));
        let (first, second) = tokio::join!(
            store.rotate_refresh(rotation(&token, &a, NOW, 0, None)),
            store.rotate_refresh(rotation(&token, &b, NOW, 0, None)),
        );
        assert_eq!(first.unwrap(), RotateOutcome::Rotated, "{}", db.backend);
        assert_eq!(second.unwrap(), RotateOutcome::Reused, "{}", db.backend);
        assert_eq!(revoked_at(store, &token.family_id).await, Some(NOW));
        assert_eq!(
            current(store, &token.family_id).await,
            Some(a.as_family_token(NOW))
        );

        let token = grant(store, &w).await;
        let (a, b) = (token.next(NOW), token.next(NOW));
        let (first, second) = tokio::join!(
            store.rotate_refresh(rotation(&token, &a, NOW, 30, Some(b"sealed a"))),
            store.rotate_refresh(rotation(&token, &b, NOW, 30, Some(b"sealed b"))),
        );
        assert_eq!(first.unwrap(), RotateOutcome::Rotated, "{}", db.backend);
        assert_eq!(
            second.unwrap(),
            RotateOutcome::Retried(b"sealed a".to_vec()),
            "{}",
            db.backend
        );
        assert_eq!(revoked_at(store, &token.family_id).await, None);
    })
    .await;
}

/// A revoked family refuses every token of it, live or spent, as `Invalid`; revocation is
/// idempotent, and deleting the user revokes the user's families.
#[tokio::test]
async fn revoked_family_refuses_its_tokens() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let token = grant(store, &w).await;
        let next = token.next(NOW);
        assert_eq!(
            store
                .rotate_refresh(rotation(&token, &next, NOW, 30, Some(b"sealed next")))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        store
            .revoke_family(&token.family_id, NOW + 1)
            .await
            .unwrap();
        store
            .revoke_family(&token.family_id, NOW + 2)
            .await
            .unwrap();
        assert_eq!(revoked_at(store, &token.family_id).await, Some(NOW + 1));
        for old in [&next, &token] {
            assert_eq!(
                store
                    .rotate_refresh(rotation(old, &old.next(NOW + 3), NOW + 3, 30, None))
                    .await
                    .unwrap(),
                RotateOutcome::Invalid,
                "{}",
                db.backend
            );
        }
        assert_eq!(
            current(store, &token.family_id).await,
            Some(next.as_family_token(NOW))
        );

        // Deleting the user revokes its families, in its own organization only.
        let token = grant(store, &w).await;
        let other = new_org();
        store.insert_org(&other).await.unwrap();
        assert!(!store
            .delete_user(&other.id, &w.user.id, NOW + 4)
            .await
            .unwrap());
        assert!(store
            .delete_user(&w.org.id, &w.user.id, NOW + 4)
            .await
            .unwrap());
        assert!(!store
            .delete_user(&w.org.id, &w.user.id, NOW + 5)
            .await
            .unwrap());
        assert!(store.user(&w.user.id).await.unwrap().is_none());
        assert_eq!(revoked_at(store, &token.family_id).await, Some(NOW + 4));
        assert_eq!(
            store
                .rotate_refresh(rotation(&token, &token.next(NOW + 5), NOW + 5, 0, None))
                .await
                .unwrap(),
            RotateOutcome::Invalid
        );
    })
    .await;
}

/// A token of the earlier format still rotates, once: its family moves to generation tokens.
/// Presented again it is a retry within the leeway while that first generation token is
/// current, and a reuse (revoking the family) otherwise, as before.
#[tokio::test]
async fn legacy_tokens_rotate_into_generation_tokens() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let (family_id, legacy) = legacy_grant(&db, &w, NOW + 3600).await;
        let (found, family) = store.refresh_token(&legacy).await.unwrap().unwrap();
        assert_eq!((found.used_at, family.token), (None, None));

        let first = Tok {
            family_id: family_id.clone(),
            generation: 1,
            hash: hash(),
            expires_at: NOW + 7200,
        };
        let rotate = |successor: &Tok, at: i64| {
            store.rotate_refresh(legacy_rotation(
                &family_id,
                &legacy,
                successor,
                at,
                30,
                Some(b"sealed first"),
            ))
        };
        assert_eq!(rotate(&first, NOW).await.unwrap(), RotateOutcome::Rotated);
        assert_eq!(
            current(store, &family_id).await,
            Some(first.as_family_token(NOW))
        );
        let other = Tok {
            hash: hash(),
            ..first.clone()
        };
        assert_eq!(
            rotate(&other, NOW + 5).await.unwrap(),
            RotateOutcome::Retried(b"sealed first".to_vec())
        );
        // The generation token rotates on; the legacy token is now a reuse.
        let second = first.next(NOW + 6);
        assert_eq!(
            store
                .rotate_refresh(rotation(&first, &second, NOW + 6, 30, None))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        assert_eq!(
            rotate(&other, NOW + 7).await.unwrap(),
            RotateOutcome::Reused
        );
        assert_eq!(revoked_at(store, &family_id).await, Some(NOW + 7));

        // An expired legacy token is refused and revokes nothing.
        let (family_id, legacy) = legacy_grant(&db, &w, NOW + 10).await;
        let r = legacy_rotation(&family_id, &legacy, &first, NOW + 10, 0, None);
        assert_eq!(
            store.rotate_refresh(r).await.unwrap(),
            RotateOutcome::Invalid
        );
        assert_eq!(revoked_at(store, &family_id).await, None);
    })
    .await;
}

// ---- codes -------------------------------------------------------------------------------

/// Many writers on two nodes redeem one code at once: exactly one wins, and only its family
/// and refresh token are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn code_is_redeemed_once_across_writers() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        let w = world(&*db.store).await;
        for _round in 0..3 {
            let code = new_code(&w);
            db.store.insert_code(&code).await.unwrap();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..24 {
                let node = nodes[i % 2].clone();
                let code_hash = code.code_hash.clone();
                let mut family = new_family(&w, &unique("family"));
                family.token = Some(FamilyToken {
                    generation: 1,
                    token_hash: hash(),
                    issued_at: NOW + 1,
                    expires_at: NOW + 3600,
                });
                tasks.spawn(async move {
                    let won = node.redeem_code(&code_hash, NOW + 1, &family).await;
                    (family, won)
                });
            }
            let mut winners = 0;
            for (family, won) in tasks.join_all().await {
                let won = won.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend));
                winners += usize::from(won);
                let stored = db.store.family(&family.id).await.unwrap();
                assert_eq!(stored.is_some(), won, "{}", db.backend);
                if let Some(stored) = stored {
                    assert_eq!(stored.token, family.token, "{}", db.backend);
                }
            }
            assert_eq!(winners, 1, "{}: exactly one redemption", db.backend);
            let stored = db.store.code(&code.code_hash).await.unwrap().unwrap();
            assert_eq!(stored.used_at, Some(NOW + 1));
            let family = new_family(&w, &unique("family"));
            assert!(!db
                .store
                .redeem_code(&code.code_hash, NOW + 2, &family)
                .await
                .unwrap());
        }
    })
    .await;
}

// ---- single-use ids, pushed requests, quotas -----------------------------------------------

fn pushed(w: &World, uri_hash: &[u8], expires_at: i64) -> PushedRequest {
    PushedRequest {
        uri_hash: uri_hash.to_vec(),
        client_id: w.client.id.clone(),
        params: r#"{"response_type":"code"}"#.into(),
        expires_at,
    }
}

/// Many writers on two nodes use one id at once: exactly one succeeds, and the id stays used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_id_is_used_once_across_writers() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        for round in 0..3 {
            let key = format!("proof-{round}").into_bytes();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..24 {
                let (node, key) = (nodes[i % 2].clone(), key.clone());
                tasks.spawn(async move { node.use_once(&key, NOW + 60).await });
            }
            let firsts = tasks
                .join_all()
                .await
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)))
                .filter(|first| *first)
                .count();
            assert_eq!(firsts, 1, "{}: exactly one first use", db.backend);
            assert!(!db.store.use_once(&key, NOW + 60).await.unwrap());
        }
    })
    .await;
}

/// Many ids used at once, each by several writers, queued on two nodes in opposite orders (so
/// the nodes' group commits overlap on the same keys from both ends): every id has exactly one
/// first use, and no batch fails (a PostgreSQL batch that inserted its keys out of order would
/// deadlock against the other node's here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_ids_in_overlapping_batches_each_have_one_first_use() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        const IDS: usize = 400;
        let mut tasks = tokio::task::JoinSet::new();
        for copy in 0..4 {
            for i in 0..IDS {
                let n = (copy + i) % 2;
                let id = if n == 0 { i } else { IDS - 1 - i };
                let (node, key) = (nodes[n].clone(), format!("id-{id}").into_bytes());
                tasks.spawn(async move { (id, node.use_once(&key, NOW + 60).await) });
            }
        }
        let mut firsts = vec![0; IDS];
        for (id, first) in tasks.join_all().await {
            let first = first.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend));
            firsts[id] += usize::from(first);
        }
        assert_eq!(firsts, vec![1; IDS], "{}: one first use per id", db.backend);
    })
    .await;
}

/// A pushed request is taken once, by one of many concurrent takers on two nodes; an expired
/// one is not returned; its client's deletion takes it along.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_request_is_taken_once_across_writers() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        let w = world(&*db.store).await;
        let request = pushed(&w, b"uri-1", NOW + 60);
        db.store.push_request(&request).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24 {
            let node = nodes[i % 2].clone();
            tasks.spawn(async move { node.take_pushed_request(b"uri-1", NOW).await });
        }
        let taken: Vec<PushedRequest> = tasks
            .join_all()
            .await
            .into_iter()
            .filter_map(|r| r.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)))
            .collect();
        assert_eq!(taken, vec![request], "{}: taken exactly once", db.backend);

        db.store
            .push_request(&pushed(&w, b"uri-2", NOW - 1))
            .await
            .unwrap();
        assert_eq!(
            db.store.take_pushed_request(b"uri-2", NOW).await.unwrap(),
            None
        );

        db.store
            .push_request(&pushed(&w, b"uri-3", NOW + 60))
            .await
            .unwrap();
        assert!(db.store.delete_client(&w.client.id, NOW).await.unwrap());
        assert_eq!(
            db.store.take_pushed_request(b"uri-3", NOW).await.unwrap(),
            None
        );
    })
    .await;
}

/// A limit of `limit` tokens an hour for `subject`.
fn per_hour(subject: &str, limit: i64) -> QuotaLimit {
    QuotaLimit {
        subject: subject.into(),
        window_secs: 3600,
        limit,
    }
}

/// A limit of `limit` tokens a day for `subject`.
fn per_day(subject: &str, limit: i64) -> QuotaLimit {
    QuotaLimit {
        subject: subject.into(),
        window_secs: 86_400,
        limit,
    }
}

/// Two nodes count tokens against shared limits at once: exactly `limit` are counted, every
/// other attempt is refused with the seconds left in the window, and a refusal counts nothing
/// against the other limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_count_exactly_across_writers() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        let client = unique("client:");
        let org = unique("org:");
        let limits = vec![
            per_hour(&client, 10),
            per_day(&client, 100),
            per_hour(&org, 1000),
        ];
        let now = 1_700_001_000; // 1,000 s past 22:13:20; the hour ends at 1_700_002_800.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (node, limits) = (nodes[i % 2].clone(), limits.clone());
            tasks.spawn(async move { node.count_token(&limits, now).await });
        }
        let mut counted = 0;
        for r in tasks.join_all().await {
            match r.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)) {
                Ok(()) => counted += 1,
                Err(hit) => assert_eq!(
                    (hit.index, hit.retry_after),
                    (0, 1_700_002_800 - now),
                    "the hourly limit is the one hit"
                ),
            }
        }
        assert_eq!(counted, 10, "{}: exactly the hourly limit", db.backend);
        let used = db.store.quota_used(&limits, now).await.unwrap();
        assert_eq!(
            used,
            vec![10, 10, 10],
            "{}: refusals counted nothing",
            db.backend
        );

        // The next hour starts afresh; the day goes on counting.
        let later = 1_700_002_800;
        assert_eq!(db.store.count_token(&limits, later).await.unwrap(), Ok(()));
        let used = db.store.quota_used(&limits, later).await.unwrap();
        assert_eq!(used, vec![1, 11, 1], "{}", db.backend);

        // A limit of zero refuses at once.
        let none = [per_hour(&unique("client:"), 0)];
        assert!(db.store.count_token(&none, now).await.unwrap().is_err());
    })
    .await;
}

/// Many clients of one organization count at once on two nodes, one node going through the
/// clients in one order and the other in the reverse order, until the organization's limit
/// (their second limit) is reached: exactly that many are counted, each refusal gives its
/// client's count back, and no batch fails. (PostgreSQL batches that took the rows' locks in
/// arrival order deadlock here; the batch retry then still gets these counts right, a second
/// later each time, which is why each batch takes its windows' rows in one sorted order.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_by_a_later_limit_gives_back_the_earlier_counts() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        const CLIENTS: usize = 20;
        let clients: Vec<String> = (0..CLIENTS).map(|_| unique("client:")).collect();
        let org = unique("org:");
        let limits_of = |c: usize| vec![per_hour(&clients[c], 1000), per_hour(&org, 150)];
        let now = 1_700_001_000;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400 {
            let (n, k) = (i % 2, (i / 2) % CLIENTS);
            let limits = limits_of(if n == 0 { k } else { CLIENTS - 1 - k });
            let node = nodes[n].clone();
            tasks.spawn(async move { node.count_token(&limits, now).await });
        }
        let mut counted = 0;
        for r in tasks.join_all().await {
            match r.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)) {
                Ok(()) => counted += 1,
                Err(hit) => assert_eq!(hit.index, 1, "the organization's limit is the one hit"),
            }
        }
        assert_eq!(
            counted, 150,
            "{}: exactly the organization's limit",
            db.backend
        );
        let mut clients_used = 0;
        for c in 0..CLIENTS {
            let used = db.store.quota_used(&limits_of(c), now).await.unwrap();
            assert_eq!(used[1], 150, "{}", db.backend);
            clients_used += used[0];
        }
        assert_eq!(clients_used, 150, "{}: refusals gave back", db.backend);

        // A later limit of zero refuses, and the earlier limit keeps nothing.
        let client = unique("client:");
        let zero = [per_hour(&client, 5), per_hour(&unique("org:"), 0)];
        let hit = db.store.count_token(&zero, now).await.unwrap().unwrap_err();
        assert_eq!(hit.index, 1);
        assert_eq!(db.store.quota_used(&zero, now).await.unwrap(), vec![0, 0]);
    })
    .await;
}

/// A client's policy and quota, and an organization's quota, are stored and read back.
#[tokio::test]
async fn a_clients_policy_and_quotas_round_trip() {
    each_backend(|db| async move {
        let store = &*db.store;
        let mut org = new_org();
        org.quota = Quota {
            per_hour: Some(5),
            per_day: None,
        };
        store.insert_org(&org).await.unwrap();
        assert_eq!(store.org(&org.id).await.unwrap().unwrap(), org);
        let mut client = new_client(&org.id);
        client.policy = ClientPolicy {
            auth: Some(KeyAuth::PrivateKeyJwt),
            jwks_uri: Some("https://shop.example/jwks".into()),
            require_dpop: true,
            ..ClientPolicy::default()
        };
        client.quota.per_day = Some(7);
        store.insert_client(&client).await.unwrap();
        assert_eq!(store.client(&client.id).await.unwrap().unwrap(), client);
        client.policy.require_par = true;
        client.quota = Quota::default();
        assert!(store.update_client(&client).await.unwrap());
        assert_eq!(store.client(&client.id).await.unwrap().unwrap(), client);
        org.quota.per_day = Some(9);
        assert!(store.update_org(&org).await.unwrap());
        assert_eq!(store.org(&org.id).await.unwrap().unwrap(), org);
    })
    .await;
}

// ---- clients and grants ------------------------------------------------------------------

/// `upsert_grant` with `is_default` makes that grant the client's only default; without it,
/// it replaces the scopes and leaves the other grants' default alone.
#[tokio::test]
async fn upsert_grant_switches_the_default() {
    each_backend(|db| async move {
        let store = &*db.store;
        let org = new_org();
        store.insert_org(&org).await.unwrap();
        let client = new_client(&org.id);
        store.insert_client(&client).await.unwrap();
        let prefix = unique("https://");
        let apis: Vec<Api> = ["a", "b", "c"]
            .iter()
            .map(|n| new_api(&format!("{prefix}/{n}")))
            .collect();
        for api in &apis {
            store.insert_api(api).await.unwrap();
        }
        let defaults = || async {
            let grants = store.grants_for_client(&client.id).await.unwrap();
            let audiences: Vec<String> = grants.iter().map(|g| g.audience.clone()).collect();
            let mut sorted = audiences.clone();
            sorted.sort();
            assert_eq!(audiences, sorted, "grants come ordered by audience");
            grants
                .iter()
                .map(|g| {
                    (
                        g.audience.rsplit('/').next().unwrap().to_owned(),
                        g.is_default,
                    )
                })
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (&apis[0], &apis[1], &apis[2]);
        let s = |x: &str, d: bool| (x.to_owned(), d);

        store
            .upsert_grant(&grant_of(&client, a, "read", true))
            .await
            .unwrap();
        assert_eq!(defaults().await, [s("a", true)]);
        store
            .upsert_grant(&grant_of(&client, b, "read", true))
            .await
            .unwrap();
        assert_eq!(defaults().await, [s("a", false), s("b", true)]);
        store
            .upsert_grant(&grant_of(&client, a, "read write", false))
            .await
            .unwrap();
        assert_eq!(defaults().await, [s("a", false), s("b", true)]);
        store
            .upsert_grant(&grant_of(&client, c, "write", true))
            .await
            .unwrap();
        assert_eq!(
            defaults().await,
            [s("a", false), s("b", false), s("c", true)]
        );
        // Re-asserting the default grant keeps it the only one.
        store
            .upsert_grant(&grant_of(&client, c, "read", true))
            .await
            .unwrap();
        assert_eq!(
            defaults().await,
            [s("a", false), s("b", false), s("c", true)]
        );
        let grants = store.grants_for_client(&client.id).await.unwrap();
        assert_eq!(grants[0].scopes, scopes("read write"));
        assert_eq!(grants[2].scopes, scopes("read"));
        assert_eq!(grants[2].api_id, c.id);
    })
    .await;
}

/// Two nodes make different grants of one client the default at the same time, many times:
/// neither fails, and the client ends with exactly one default.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_default_switching_keeps_one_default() {
    each_backend(|db| async move {
        let (a, b) = (db.store.clone(), db.node().await);
        let org = new_org();
        a.insert_org(&org).await.unwrap();
        let prefix = unique("https://");
        let (x, y) = (
            new_api(&format!("{prefix}/x")),
            new_api(&format!("{prefix}/y")),
        );
        a.insert_api(&x).await.unwrap();
        a.insert_api(&y).await.unwrap();
        for round in 0..20 {
            let client = new_client(&org.id);
            a.insert_client(&client).await.unwrap();
            a.upsert_grant(&grant_of(&client, &x, "read", true))
                .await
                .unwrap();
            a.upsert_grant(&grant_of(&client, &y, "read", false))
                .await
                .unwrap();
            let (gx, gy) = (
                grant_of(&client, &x, "read write", true),
                grant_of(&client, &y, "read write", true),
            );
            let (rx, ry) = tokio::join!(a.upsert_grant(&gx), b.upsert_grant(&gy));
            rx.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", db.backend));
            ry.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", db.backend));
            let grants = a.grants_for_client(&client.id).await.unwrap();
            assert_eq!(
                grants.iter().filter(|g| g.is_default).count(),
                1,
                "{} round {round}: {grants:?}",
                db.backend
            );
        }
    })
    .await;
}

// ---- errors ------------------------------------------------------------------------------

/// Breaking a uniqueness rule is `Conflict`, referring to a record that does not exist is
/// `NotFound`, and a failed transaction writes nothing. Lookups of unknown records are
/// `None`, updates of unknown records `false`.
#[tokio::test]
async fn errors_map_to_conflict_and_not_found() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let conflict = |r: Result<(), StoreError>, what: &str| match r {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("{}: {what}: expected Conflict, got {other:?}", db.backend),
        };
        let not_found = |r: Result<(), StoreError>, what: &str| match r {
            Err(StoreError::NotFound(_)) => {}
            other => panic!("{}: {what}: expected NotFound, got {other:?}", db.backend),
        };

        conflict(store.insert_org(&w.org).await, "same org id");
        let mut org = new_org();
        org.name = w.org.name.clone();
        conflict(store.insert_org(&org).await, "same org name");
        conflict(
            store.insert_api(&new_api(&w.api.audience)).await,
            "same audience",
        );
        let mut client = new_client(&w.org.id);
        client.id = w.client.id.clone();
        conflict(store.insert_client(&client).await, "same client id");
        let mut user = new_user(&w.org.id);
        user.username = w.user.username.clone();
        conflict(
            store.insert_user(&user, &[]).await,
            "same username in the org",
        );
        let code = new_code(&w);
        store.insert_code(&code).await.unwrap();
        conflict(store.insert_code(&code).await, "same code");
        let key = StoredKey {
            kid: unique("kid"),
            alg: SigningAlg::ES256,
            private_key: vec![1, 2, 3],
            created_at: NOW,
            promoted_at: Some(NOW),
            retires_at: None,
        };
        store.insert_key(&key).await.unwrap();
        conflict(store.insert_key(&key).await, "same kid");

        not_found(
            store.insert_client(&new_client("no-such-org")).await,
            "client of an unknown org",
        );
        not_found(
            store.insert_user(&new_user("no-such-org"), &[]).await,
            "user of an unknown org",
        );
        let ghost = new_api("https://ghost.example");
        not_found(
            store
                .upsert_grant(&grant_of(&w.client, &ghost, "read", false))
                .await,
            "grant on an unknown API",
        );
        let mut stranger = new_client(&w.org.id);
        stranger.id = unique("unregistered");
        not_found(
            store
                .upsert_grant(&grant_of(&stranger, &w.api, "read", false))
                .await,
            "grant of an unknown client",
        );
        // The user's scopes name an unknown API: nothing of the user is written.
        let user = new_user(&w.org.id);
        not_found(
            store
                .insert_user(&user, &[(ghost.id.clone(), scopes("read"))])
                .await,
            "scopes on an unknown API",
        );
        assert!(store.user(&user.id).await.unwrap().is_none());
        // A family with the id of an existing one: the redemption fails whole, the code stays
        // usable.
        let taken = grant(store, &w).await;
        let family = new_family(&w, &taken.family_id);
        assert!(store
            .redeem_code(&code.code_hash, NOW, &family)
            .await
            .is_err());
        assert_eq!(
            store.code(&code.code_hash).await.unwrap().unwrap().used_at,
            None
        );

        // Unknown records.
        assert!(store.org("nope").await.unwrap().is_none());
        assert!(store.org_by_name("nope").await.unwrap().is_none());
        assert!(store.api("nope").await.unwrap().is_none());
        assert!(store.api_by_audience("nope").await.unwrap().is_none());
        assert!(store.client("nope").await.unwrap().is_none());
        assert!(store.user("nope").await.unwrap().is_none());
        assert!(store.code(b"nope").await.unwrap().is_none());
        assert!(store.family("nope").await.unwrap().is_none());
        assert!(store.refresh_token(b"nope").await.unwrap().is_none());
        assert!(store
            .user_scopes("nope", &w.api.id)
            .await
            .unwrap()
            .is_none());
        assert!(store.grants_for_client("nope").await.unwrap().is_empty());
        assert!(store.users_by_username("nope").await.unwrap().is_empty());
        assert!(!store
            .rotate_client_secret("nope", b"h", None)
            .await
            .unwrap());
        assert!(!store.set_password("nope", "h").await.unwrap());
        assert!(!store.delete_user(&w.org.id, "nope", NOW).await.unwrap());
        assert!(!store.promote_key("nope", NOW, NOW).await.unwrap());
        assert!(!store.retire_key("nope", NOW).await.unwrap());
        store.revoke_family("nope", NOW).await.unwrap();

        // Idempotent writes.
        assert_eq!(
            store.meta_get_or_insert("k", "first").await.unwrap(),
            "first"
        );
        assert_eq!(
            store.meta_get_or_insert("k", "second").await.unwrap(),
            "first"
        );
        store.revoke_jti("jti-1", NOW + 60).await.unwrap();
        store.revoke_jti("jti-1", NOW + 60).await.unwrap();
        assert!(store.jti_revoked("jti-1").await.unwrap());
        assert!(!store.jti_revoked("jti-2").await.unwrap());
        store.ping().await.unwrap();
    })
    .await;
}

// ---- lock ordering -----------------------------------------------------------------------

/// Two nodes each commit a batch of rotations of the same tokens (so of the same families),
/// one in the opposite order of the other, many times: no batch fails (on PostgreSQL, a
/// deadlock would fail one with `40P01`), and each token rotates exactly once.
///
/// The runtime has one thread, so each node's writer takes all of its node's rotations as one
/// batch, and the two transactions run against the database at the same time.
#[tokio::test(flavor = "current_thread")]
async fn opposite_order_batches_on_two_nodes_do_not_deadlock() {
    each_backend(|db| async move {
        let (a, b) = (db.store.clone(), db.node().await);
        let w = world(&*a).await;
        for round in 0..20 {
            let mut tokens = Vec::new();
            for _ in 0..12 {
                tokens.push(grant(&*a, &w).await);
            }
            let calls = |node: &Arc<dyn Store>, order: Vec<&Tok>| {
                let rotations = order.into_iter().map(|t| {
                    let node = node.clone();
                    let r = rotation(t, &t.next(NOW + 1), NOW + 1, 0, None);
                    async move { node.rotate_refresh(r).await }
                });
                join_all(rotations.collect::<Vec<_>>())
            };
            let (on_a, on_b) = tokio::join!(
                calls(&a, tokens.iter().collect()),
                calls(&b, tokens.iter().rev().collect()),
            );
            let mut on_b = on_b;
            on_b.reverse();
            for (i, (x, y)) in on_a.into_iter().zip(on_b).enumerate() {
                let (x, y) = (
                    x.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", db.backend)),
                    y.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", db.backend)),
                );
                let rotated = [&x, &y]
                    .iter()
                    .filter(|o| ***o == RotateOutcome::Rotated)
                    .count();
                assert_eq!(
                    rotated, 1,
                    "{} round {round} token {i}: {x:?} {y:?}",
                    db.backend
                );
            }
        }
    })
    .await;
}

/// One node promotes the next signing key while another retires the current one, many times:
/// neither fails, and the end state is the same in either order.
#[tokio::test(flavor = "current_thread")]
async fn key_promotion_racing_retirement_does_not_deadlock() {
    each_backend(|db| async move {
        let (a, b) = (db.store.clone(), db.node().await);
        for round in 0..20u64 {
            let key = |promoted_at| StoredKey {
                kid: unique("kid"),
                alg: SigningAlg::EdDSA,
                private_key: vec![7; 32],
                created_at: NOW,
                promoted_at,
                retires_at: None,
            };
            let (current, next) = (key(Some(NOW)), key(None));
            a.insert_key(&current).await.unwrap();
            a.insert_key(&next).await.unwrap();
            // Sweep the retirement across the promotion's statements.
            let delay = Duration::from_micros(round * 150);
            let (promoted, retired) =
                tokio::join!(a.promote_key(&next.kid, NOW + 1, NOW + 100), async {
                    tokio::time::sleep(delay).await;
                    b.retire_key(&current.kid, NOW + 1).await
                },);
            let promoted =
                promoted.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", db.backend));
            let retired = retired.unwrap_or_else(|e| panic!("{} round {round}: {e:?}", db.backend));
            assert!(promoted && retired, "{} round {round}", db.backend);
            let keys = a.all_keys().await.unwrap();
            let find = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
            assert_eq!(find(&current.kid).retires_at, Some(NOW + 1));
            assert_eq!(find(&next.kid).promoted_at, Some(NOW + 1));
            assert_eq!(find(&next.kid).retires_at, None);
        }
    })
    .await;
}

// ---- listings ----------------------------------------------------------------------------

/// Reads a listing page by page (`limit` at a time, each page after the last id of the one
/// before) until a short page, and returns every id in the order they came: each page is at
/// most `limit` long and the ids strictly increase across pages.
async fn all_pages<T, F, Fut>(limit: i64, id: impl Fn(&T) -> String, mut fetch: F) -> Vec<String>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Vec<T>>,
{
    let mut ids: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = fetch(after.clone()).await;
        assert!(
            page.len() as i64 <= limit,
            "a page holds at most `limit` items"
        );
        ids.extend(page.iter().map(&id));
        if (page.len() as i64) < limit {
            break;
        }
        after = ids.last().cloned();
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase across pages: {ids:?}"
    );
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn page(after: Option<&str>, limit: i64) -> Page<'_> {
    Page { after, limit }
}

/// Organizations, APIs, clients (of every organization and of one) and users (of every
/// organization and of one) list in id order, a page at a time, each item once.
#[tokio::test]
async fn listings_page_in_id_order() {
    each_backend(|db| async move {
        let store = &*db.store;
        let (a, b) = (new_org(), new_org());
        let mut clients = (Vec::new(), Vec::new());
        let mut users = (Vec::new(), Vec::new());
        for org in [&a, &b] {
            store.insert_org(org).await.unwrap();
        }
        let mut org_ids = vec![a.id.clone(), b.id.clone()];
        for _ in 0..3 {
            let org = new_org();
            store.insert_org(&org).await.unwrap();
            org_ids.push(org.id);
        }
        for i in 0..5 {
            let (org, ids, uids) = if i % 2 == 0 {
                (&a, &mut clients.0, &mut users.0)
            } else {
                (&b, &mut clients.1, &mut users.1)
            };
            let client = new_client(&org.id);
            store.insert_client(&client).await.unwrap();
            ids.push(client.id);
            let user = new_user(&org.id);
            store.insert_user(&user, &[]).await.unwrap();
            uids.push(user.id);
        }
        let prefix = unique("https://");
        let mut api_ids = Vec::new();
        for i in 0..3 {
            let api = new_api(&format!("{prefix}/{i}"));
            store.insert_api(&api).await.unwrap();
            api_ids.push(api.id);
        }
        let all = |x: &Vec<String>, y: &Vec<String>| sorted([x.clone(), y.clone()].concat());

        for limit in [1, 2, 100] {
            let orgs = all_pages(
                limit,
                |o: &Org| o.id.clone(),
                |after| async move {
                    store
                        .list_orgs(page(after.as_deref(), limit))
                        .await
                        .unwrap()
                },
            )
            .await;
            assert_eq!(orgs, sorted(org_ids.clone()), "{}: orgs", db.backend);
            let apis = all_pages(
                limit,
                |a: &Api| a.id.clone(),
                |after| async move {
                    store
                        .list_apis(page(after.as_deref(), limit))
                        .await
                        .unwrap()
                },
            )
            .await;
            assert_eq!(apis, sorted(api_ids.clone()), "{}: apis", db.backend);
            for (org, want_clients, want_users) in [
                (None, all(&clients.0, &clients.1), all(&users.0, &users.1)),
                (
                    Some(&a.id),
                    sorted(clients.0.clone()),
                    sorted(users.0.clone()),
                ),
                (
                    Some(&b.id),
                    sorted(clients.1.clone()),
                    sorted(users.1.clone()),
                ),
            ] {
                let org = org.map(String::as_str);
                let got = all_pages(
                    limit,
                    |c: &Client| c.id.clone(),
                    |after| async move {
                        store
                            .list_clients(org, page(after.as_deref(), limit))
                            .await
                            .unwrap()
                    },
                )
                .await;
                assert_eq!(got, want_clients, "{}: clients of {org:?}", db.backend);
                let got = all_pages(
                    limit,
                    |u: &User| u.id.clone(),
                    |after| async move {
                        store
                            .list_users(org, page(after.as_deref(), limit))
                            .await
                            .unwrap()
                    },
                )
                .await;
                assert_eq!(got, want_users, "{}: users of {org:?}", db.backend);
            }
        }
        assert!(store
            .list_clients(Some("no-such-org"), page(None, 10))
            .await
            .unwrap()
            .is_empty());
        let last = sorted(org_ids.clone()).pop().unwrap();
        assert!(store
            .list_orgs(page(Some(&last), 10))
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

/// Families list in id order, narrowed by client, by user, by both, or not at all.
#[tokio::test]
async fn families_list_by_client_and_user() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let other_client = new_client(&w.org.id);
        store.insert_client(&other_client).await.unwrap();
        let other_user = new_user(&w.org.id);
        store.insert_user(&other_user, &[]).await.unwrap();
        // (client, user) of each family: 2 × (w.client, w.user), 2 × (other client, w.user),
        // 1 × (w.client, other user), 1 × (other client, other user).
        let mut made: Vec<(String, String, String)> = Vec::new();
        for (client, user, n) in [
            (&w.client, &w.user, 2),
            (&other_client, &w.user, 2),
            (&w.client, &other_user, 1),
            (&other_client, &other_user, 1),
        ] {
            for _ in 0..n {
                let mut family = new_family(&w, &unique("family"));
                family.client_id = client.id.clone();
                family.user_id = user.id.clone();
                let mut code = new_code(&w);
                code.family_id = family.id.clone();
                store.insert_code(&code).await.unwrap();
                assert!(store
                    .redeem_code(&code.code_hash, NOW, &family)
                    .await
                    .unwrap());
                made.push((family.id, client.id.clone(), user.id.clone()));
            }
        }
        let want = |client: Option<&str>, user: Option<&str>| {
            sorted(
                made.iter()
                    .filter(|(_, c, u)| {
                        client.is_none_or(|x| x == c) && user.is_none_or(|x| x == u)
                    })
                    .map(|(f, _, _)| f.clone())
                    .collect(),
            )
        };
        let cases = [
            (None, None),
            (Some(w.client.id.as_str()), None),
            (Some(other_client.id.as_str()), None),
            (None, Some(w.user.id.as_str())),
            (None, Some(other_user.id.as_str())),
            (Some(other_client.id.as_str()), Some(w.user.id.as_str())),
            (Some(w.client.id.as_str()), Some(other_user.id.as_str())),
        ];
        for (client, user) in cases {
            let filter = FamilyFilter {
                client_id: client.map(str::to_owned),
                user_id: user.map(str::to_owned),
            };
            let got = all_pages(
                2,
                |f: &Family| f.id.clone(),
                |after| {
                    let filter = filter.clone();
                    async move {
                        store
                            .list_families(&filter, page(after.as_deref(), 2))
                            .await
                            .unwrap()
                    }
                },
            )
            .await;
            assert_eq!(got, want(client, user), "{}: {filter:?}", db.backend);
        }
    })
    .await;
}

fn event(
    id: &str,
    at: i64,
    kind: &str,
    org: &str,
    client: Option<&str>,
    user: Option<&str>,
) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        at,
        kind: kind.into(),
        actor: "cli:tester".into(),
        org_id: Some(org.into()),
        client_id: client.map(str::to_owned),
        user_id: user.map(str::to_owned),
        target: client.or(user).map(str::to_owned),
        address: Some("127.0.0.1".into()),
        detail: serde_json::json!({ "fields": ["name"], "n": at - NOW }),
    }
}

/// The audit log lists in id order, narrowed by each filter (a type, a `family.*` of types,
/// `*`, organization, client, user, `since` inclusive, `until` exclusive) and by several at
/// once; an event reads back as it was appended.
#[tokio::test]
async fn audit_log_lists_by_each_filter() {
    each_backend(|db| async move {
        let store = &*db.store;
        let events = [
            event(
                "evt_01",
                NOW,
                kind::CLIENT_CREATED,
                "org_a",
                Some("c1"),
                None,
            ),
            event(
                "evt_02",
                NOW + 10,
                kind::REFRESH_TOKEN_REUSED,
                "org_a",
                Some("c1"),
                Some("u1"),
            ),
            event(
                "evt_03",
                NOW + 20,
                kind::CODE_REUSED,
                "org_b",
                Some("c2"),
                Some("u2"),
            ),
            event(
                "evt_04",
                NOW + 30,
                kind::CLIENT_DELETED,
                "org_b",
                Some("c2"),
                None,
            ),
            event(
                "evt_05",
                NOW + 40,
                kind::USER_CREATED,
                "org_a",
                None,
                Some("u1"),
            ),
            // `_` in a pattern is no wildcard: `user_*` would otherwise match `users.x`.
            event("evt_06", NOW + 50, "users.x", "org_a", None, None),
        ];
        for e in &events {
            store.append_audit(e, &[]).await.unwrap();
        }
        let ids = |wanted: &[usize]| -> Vec<String> {
            wanted.iter().map(|i| format!("evt_0{i}")).collect()
        };
        let f = AuditFilter::default;
        let cases: Vec<(AuditFilter, Vec<String>)> = vec![
            (f(), ids(&[1, 2, 3, 4, 5, 6])),
            (
                AuditFilter {
                    kind: Some("*".into()),
                    ..f()
                },
                ids(&[1, 2, 3, 4, 5, 6]),
            ),
            (
                AuditFilter {
                    kind: Some(kind::CLIENT_CREATED.into()),
                    ..f()
                },
                ids(&[1]),
            ),
            (
                AuditFilter {
                    kind: Some("security.*".into()),
                    ..f()
                },
                ids(&[2, 3]),
            ),
            (
                AuditFilter {
                    kind: Some("client.*".into()),
                    ..f()
                },
                ids(&[1, 4]),
            ),
            (
                AuditFilter {
                    kind: Some("user_*".into()),
                    ..f()
                },
                ids(&[]),
            ),
            (
                AuditFilter {
                    org_id: Some("org_a".into()),
                    ..f()
                },
                ids(&[1, 2, 5, 6]),
            ),
            (
                AuditFilter {
                    client_id: Some("c2".into()),
                    ..f()
                },
                ids(&[3, 4]),
            ),
            (
                AuditFilter {
                    user_id: Some("u1".into()),
                    ..f()
                },
                ids(&[2, 5]),
            ),
            (
                AuditFilter {
                    since: Some(NOW + 20),
                    ..f()
                },
                ids(&[3, 4, 5, 6]),
            ),
            (
                AuditFilter {
                    until: Some(NOW + 20),
                    ..f()
                },
                ids(&[1, 2]),
            ),
            (
                AuditFilter {
                    since: Some(NOW + 10),
                    until: Some(NOW + 40),
                    ..f()
                },
                ids(&[2, 3, 4]),
            ),
            (
                AuditFilter {
                    kind: Some("security.*".into()),
                    org_id: Some("org_a".into()),
                    ..f()
                },
                ids(&[2]),
            ),
        ];
        for (filter, want) in cases {
            for limit in [1, 2, 10] {
                let got = all_pages(
                    limit,
                    |e: &AuditEvent| e.id.clone(),
                    |after| {
                        let filter = filter.clone();
                        async move {
                            store
                                .list_audit(&filter, page(after.as_deref(), limit))
                                .await
                                .unwrap()
                        }
                    },
                )
                .await;
                assert_eq!(got, want, "{}: {filter:?} by {limit}", db.backend);
            }
        }
        assert_eq!(
            store.audit_event("evt_02").await.unwrap().as_ref(),
            Some(&events[1])
        );
        assert!(store.audit_event("evt_99").await.unwrap().is_none());
    })
    .await;
}

// ---- updates and deletes -----------------------------------------------------------------

/// The updates replace what they name and nothing else, `false` for unknown records,
/// `Conflict` for a taken name; a client's `disabled` and an API's scope descriptions round
/// trip.
#[tokio::test]
async fn updates_replace_what_they_name() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;

        let mut org = w.org.clone();
        org.name = unique("Renamed");
        assert!(store.update_org(&org).await.unwrap());
        assert_eq!(store.org(&org.id).await.unwrap(), Some(org.clone()));
        let taken = new_org();
        store.insert_org(&taken).await.unwrap();
        org.name = taken.name.clone();
        assert!(matches!(
            store.update_org(&org).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(!store.update_org(&new_org()).await.unwrap());

        let mut api = w.api.clone();
        api.name = "Orders v2".into();
        api.scopes = scopes("read write admin");
        api.alg = SigningAlg::EdDSA;
        api.token_lifetime = 60;
        api.scope_descriptions = [("read".to_owned(), "Read your orders".to_owned())]
            .into_iter()
            .collect();
        let mut moved = api.clone();
        moved.audience = "https://elsewhere.example".into();
        assert!(store.update_api(&moved).await.unwrap());
        assert_eq!(
            store.api(&api.id).await.unwrap(),
            Some(api.clone()),
            "{}",
            db.backend
        );
        assert!(!store
            .update_api(&new_api("https://none.example"))
            .await
            .unwrap());

        let mut client = w.client.clone();
        client.name = "Shop 2".into();
        client.description = Some("the new shop".into());
        client.redirect_uris = vec!["https://a.example/cb".into(), "https://b.example/cb".into()];
        client.grant_types = vec![GrantType::ClientCredentials];
        client.disabled = true;
        let mut asked = client.clone();
        asked.secret_hash = Some(hash());
        asked.client_type = ClientType::Public;
        asked.created_at = NOW + 99;
        assert!(store.update_client(&asked).await.unwrap());
        assert_eq!(
            store.client(&client.id).await.unwrap(),
            Some(client.clone())
        );
        client.disabled = false;
        assert!(store.update_client(&client).await.unwrap());
        assert!(!store.client(&client.id).await.unwrap().unwrap().disabled);
        assert!(!store.update_client(&new_client(&w.org.id)).await.unwrap());

        let mut user = w.user.clone();
        user.username = Some(unique("janet"));
        user.email = Some("janet@example.com".into());
        user.external_id = Some("ext-1".into());
        let other_api = new_api(&unique("https://api.example/other"));
        store.insert_api(&other_api).await.unwrap();
        // Without scopes the allowed scopes stay; with them they are replaced whole.
        assert!(store.update_user(&user, None).await.unwrap());
        assert_eq!(store.user(&user.id).await.unwrap(), Some(user.clone()));
        assert_eq!(
            store.all_user_scopes(&user.id).await.unwrap(),
            vec![(w.api.id.clone(), scopes("read"))]
        );
        let replaced = vec![(other_api.id.clone(), scopes("write"))];
        assert!(store.update_user(&user, Some(&replaced)).await.unwrap());
        assert_eq!(store.all_user_scopes(&user.id).await.unwrap(), replaced);
        assert_eq!(store.user_scopes(&user.id, &w.api.id).await.unwrap(), None);
        let mut both = vec![
            (w.api.id.clone(), scopes("read write")),
            (other_api.id.clone(), scopes("read")),
        ];
        both.sort_by(|x, y| x.0.cmp(&y.0));
        assert!(store.update_user(&user, Some(&both)).await.unwrap());
        assert_eq!(store.all_user_scopes(&user.id).await.unwrap(), both);
        let rival = new_user(&w.org.id);
        store.insert_user(&rival, &[]).await.unwrap();
        let mut clash = rival.clone();
        clash.username = user.username.clone();
        assert!(matches!(
            store.update_user(&clash, Some(&[])).await,
            Err(StoreError::Conflict(_))
        ));
        clash.username = rival.username.clone();
        clash.external_id = user.external_id.clone();
        assert!(matches!(
            store.update_user(&clash, None).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(!store.update_user(&new_user(&w.org.id), None).await.unwrap());
        assert!(store.all_user_scopes("nope").await.unwrap().is_empty());
    })
    .await;
}

/// `insert_grant` refuses an existing (client, API) with `Conflict` and, like
/// `update_grant`, makes a default grant the client's only one; `update_grant` and
/// `delete_grant` are `false` for a grant that does not exist (and then change nothing).
#[tokio::test]
async fn grants_insert_update_delete() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let conflict = store
            .insert_grant(&grant_of(&w.client, &w.api, "read", false))
            .await;
        assert!(
            matches!(conflict, Err(StoreError::Conflict(_))),
            "{}: {conflict:?}",
            db.backend
        );
        let other = new_api(&unique("https://api.example/other"));
        store.insert_api(&other).await.unwrap();
        store
            .insert_grant(&grant_of(&w.client, &other, "read", true))
            .await
            .unwrap();
        let default_of = |grants: Vec<ClientGrant>| -> Vec<String> {
            grants
                .into_iter()
                .filter(|g| g.is_default)
                .map(|g| g.api_id)
                .collect()
        };
        let grants = store.grants_for_client(&w.client.id).await.unwrap();
        assert_eq!(default_of(grants), vec![other.id.clone()]);

        assert!(store
            .update_grant(&grant_of(&w.client, &w.api, "write", true))
            .await
            .unwrap());
        let grants = store.grants_for_client(&w.client.id).await.unwrap();
        assert_eq!(default_of(grants.clone()), vec![w.api.id.clone()]);
        assert_eq!(
            grants.iter().find(|g| g.api_id == w.api.id).unwrap().scopes,
            scopes("write")
        );
        let stranger = new_client(&w.org.id);
        store.insert_client(&stranger).await.unwrap();
        assert!(!store
            .update_grant(&grant_of(
                &w.client,
                &new_api("https://none.example"),
                "read",
                true
            ))
            .await
            .unwrap());
        let grants = store.grants_for_client(&w.client.id).await.unwrap();
        assert_eq!(
            default_of(grants),
            vec![w.api.id.clone()],
            "nothing changed"
        );

        // Grants on one API, by client id.
        store
            .insert_grant(&grant_of(&stranger, &w.api, "read", false))
            .await
            .unwrap();
        let on_api = store.grants_for_api(&w.api.id).await.unwrap();
        let clients: Vec<String> = on_api.iter().map(|g| g.client_id.clone()).collect();
        assert_eq!(
            clients,
            sorted(vec![w.client.id.clone(), stranger.id.clone()])
        );
        assert!(on_api.iter().all(|g| g.audience == w.api.audience));

        assert!(store.delete_grant(&w.client.id, &other.id).await.unwrap());
        assert!(!store.delete_grant(&w.client.id, &other.id).await.unwrap());
        assert_eq!(
            store.grants_for_client(&w.client.id).await.unwrap().len(),
            1
        );
    })
    .await;
}

/// An organization with clients or users cannot be deleted (`Conflict`); an empty one can,
/// once; an unknown one is `false`.
#[tokio::test]
async fn delete_org_refuses_while_in_use() {
    each_backend(|db| async move {
        let store = &*db.store;
        let with_client = new_org();
        store.insert_org(&with_client).await.unwrap();
        let client = new_client(&with_client.id);
        store.insert_client(&client).await.unwrap();
        let with_user = new_org();
        store.insert_org(&with_user).await.unwrap();
        store
            .insert_user(&new_user(&with_user.id), &[])
            .await
            .unwrap();
        for org in [&with_client, &with_user] {
            let refused = store.delete_org(&org.id).await;
            assert!(
                matches!(refused, Err(StoreError::Conflict(_))),
                "{}: {refused:?}",
                db.backend
            );
            assert!(store.org(&org.id).await.unwrap().is_some());
        }
        assert!(store.delete_client(&client.id, NOW).await.unwrap());
        assert!(store.delete_org(&with_client.id).await.unwrap());
        assert!(!store.delete_org(&with_client.id).await.unwrap());
        assert!(store.org(&with_client.id).await.unwrap().is_none());
        assert!(!store.delete_org("no-such-org").await.unwrap());
    })
    .await;
}

/// Deleting a client revokes its families (and only its own), takes its grants with it,
/// and is `false` the second time; `revoke_client_families` counts the families it revoked;
/// deleting an API revokes the families for it and takes its grants and user scopes.
#[tokio::test]
async fn deleting_a_client_or_api_revokes_its_families() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let mine = [grant(store, &w).await, grant(store, &w).await];
        store
            .revoke_family(&mine[1].family_id, NOW + 1)
            .await
            .unwrap();
        let other = World {
            client: new_client(&w.org.id),
            org: w.org.clone(),
            api: w.api.clone(),
            user: w.user.clone(),
        };
        store.insert_client(&other.client).await.unwrap();
        store
            .upsert_grant(&grant_of(&other.client, &w.api, "read", true))
            .await
            .unwrap();
        let theirs = grant(store, &other).await;

        assert!(store.delete_client(&w.client.id, NOW + 5).await.unwrap());
        assert!(store.client(&w.client.id).await.unwrap().is_none());
        assert!(store
            .grants_for_client(&w.client.id)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(revoked_at(store, &mine[0].family_id).await, Some(NOW + 5));
        assert_eq!(
            revoked_at(store, &mine[1].family_id).await,
            Some(NOW + 1),
            "an earlier revocation stands"
        );
        assert_eq!(revoked_at(store, &theirs.family_id).await, None);
        assert!(!store.delete_client(&w.client.id, NOW + 6).await.unwrap());

        // Revoking a client's families counts the live ones.
        let more = [grant(store, &other).await, grant(store, &other).await];
        assert_eq!(
            store
                .revoke_client_families(&other.client.id, NOW + 7)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .revoke_client_families(&other.client.id, NOW + 8)
                .await
                .unwrap(),
            0
        );
        assert_eq!(revoked_at(store, &more[1].family_id).await, Some(NOW + 7));

        // Deleting the API: its families revoked, its grants and user scopes gone.
        let api = new_api(&unique("https://api.example/doomed"));
        store.insert_api(&api).await.unwrap();
        let on_api = World {
            api: api.clone(),
            ..other
        };
        store
            .upsert_grant(&grant_of(&on_api.client, &api, "read", false))
            .await
            .unwrap();
        store
            .update_user(&w.user, Some(&[(api.id.clone(), scopes("read"))]))
            .await
            .unwrap();
        let doomed = grant(store, &on_api).await;
        assert!(store.delete_api(&api.id, NOW + 9).await.unwrap());
        assert!(store.api(&api.id).await.unwrap().is_none());
        assert_eq!(revoked_at(store, &doomed.family_id).await, Some(NOW + 9));
        assert!(store.grants_for_api(&api.id).await.unwrap().is_empty());
        assert_eq!(
            store
                .grants_for_client(&on_api.client.id)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.all_user_scopes(&w.user.id).await.unwrap().is_empty());
        assert!(!store.delete_api(&api.id, NOW + 10).await.unwrap());
    })
    .await;
}

// ---- webhooks ----------------------------------------------------------------------------

fn new_webhook(events: &[&str]) -> Webhook {
    Webhook {
        id: unique("whk"),
        url: "https://hooks.example/calyx".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret_sealed: hash(),
        disabled: false,
        created_at: NOW,
    }
}

fn new_delivery(webhook: &Webhook, event_id: &str, state: DeliveryState, at: i64) -> Delivery {
    Delivery {
        id: unique("dlv"),
        webhook_id: webhook.id.clone(),
        event_id: event_id.into(),
        payload: format!("{{\"id\":\"{event_id}\"}}"),
        state,
        attempts: 0,
        next_attempt_at: at,
        last_status: None,
        last_error: None,
        created_at: at,
        delivered_at: None,
    }
}

/// Webhooks are created, read, listed (all by page, the enabled ones at once), updated and
/// deleted with their deliveries.
#[tokio::test]
async fn webhooks_round_trip() {
    each_backend(|db| async move {
        let store = &*db.store;
        let mut hooks = Vec::new();
        for i in 0..3 {
            let mut hook = new_webhook(&["client.*", kind::USER_CREATED]);
            hook.disabled = i == 1;
            store.insert_webhook(&hook).await.unwrap();
            hooks.push(hook);
        }
        assert!(matches!(
            store.insert_webhook(&hooks[0]).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store.webhook(&hooks[0].id).await.unwrap(),
            Some(hooks[0].clone())
        );
        assert!(store.webhook("nope").await.unwrap().is_none());
        let ids = all_pages(
            2,
            |w: &Webhook| w.id.clone(),
            |after| async move {
                store
                    .list_webhooks(page(after.as_deref(), 2))
                    .await
                    .unwrap()
            },
        )
        .await;
        assert_eq!(ids, sorted(hooks.iter().map(|h| h.id.clone()).collect()));
        let active: Vec<String> = store
            .active_webhooks()
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(
            active,
            sorted(vec![hooks[0].id.clone(), hooks[2].id.clone()])
        );

        let mut changed = hooks[0].clone();
        changed.url = "https://hooks.example/v2".into();
        changed.events = vec!["*".into()];
        changed.disabled = true;
        let mut asked = changed.clone();
        asked.secret_sealed = hash();
        assert!(store.update_webhook(&asked).await.unwrap());
        assert_eq!(
            store.webhook(&changed.id).await.unwrap(),
            Some(changed.clone())
        );
        assert!(!store.update_webhook(&new_webhook(&["*"])).await.unwrap());

        let e = event("evt_1", NOW, kind::CLIENT_CREATED, "org", None, None);
        let deliveries: Vec<Delivery> = hooks
            .iter()
            .map(|h| new_delivery(h, &e.id, DeliveryState::Pending, NOW))
            .collect();
        store.append_audit(&e, &deliveries).await.unwrap();
        let listed = store
            .list_deliveries(&hooks[2].id, page(None, 10))
            .await
            .unwrap();
        assert_eq!(listed, vec![deliveries[2].clone()]);
        assert!(store.delete_webhook(&hooks[2].id).await.unwrap());
        assert!(!store.delete_webhook(&hooks[2].id).await.unwrap());
        assert!(store
            .list_deliveries(&hooks[2].id, page(None, 10))
            .await
            .unwrap()
            .is_empty());
        // An outbox row for an unknown webhook: the event is not recorded either.
        let orphan = event("evt_2", NOW, kind::CLIENT_CREATED, "org", None, None);
        let stray = new_delivery(
            &new_webhook(&["*"]),
            &orphan.id,
            DeliveryState::Pending,
            NOW,
        );
        assert!(store.append_audit(&orphan, &[stray]).await.is_err());
        assert!(store.audit_event(&orphan.id).await.unwrap().is_none());
    })
    .await;
}

/// Many claimers on two nodes take due deliveries at once: none is handed out twice, and
/// together they take every due one and no other. A claim holds until its lease lapses; then
/// whatever was not finished is claimed again. Finishing records the attempt and releases
/// the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_claimed_once_across_nodes() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        let store = &*db.store;
        let hook = new_webhook(&["*"]);
        store.insert_webhook(&hook).await.unwrap();
        let mut due = Vec::new();
        for i in 0..6 {
            let e = event(
                &format!("evt_{i}"),
                NOW,
                kind::CLIENT_CREATED,
                "org",
                None,
                None,
            );
            let batch: Vec<Delivery> = (0..8)
                .map(|_| new_delivery(&hook, &e.id, DeliveryState::Pending, NOW - 5))
                .collect();
            store.append_audit(&e, &batch).await.unwrap();
            due.extend(batch.into_iter().map(|d| d.id));
        }
        let later = new_delivery(&hook, "evt_0", DeliveryState::Pending, NOW + 10);
        let done = new_delivery(&hook, "evt_0", DeliveryState::Delivered, NOW - 5);
        let e = event("evt_x", NOW, kind::CLIENT_CREATED, "org", None, None);
        store
            .append_audit(&e, &[later.clone(), done])
            .await
            .unwrap();

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let node = nodes[i % 2].clone();
            tasks.spawn(async move { node.claim_deliveries(NOW, NOW + 60, 4).await });
        }
        let mut claimed: Vec<String> = Vec::new();
        for got in tasks.join_all().await {
            let got = got.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend));
            assert!(got.len() <= 4);
            claimed.extend(got.into_iter().map(|d| d.id));
        }
        // 16 × 4 ≥ 48: whatever the interleaving, every due delivery is taken.
        let unique_claims: std::collections::BTreeSet<&String> = claimed.iter().collect();
        assert_eq!(
            unique_claims.len(),
            claimed.len(),
            "{}: claimed twice",
            db.backend
        );
        assert_eq!(
            sorted(claimed.clone()),
            sorted(due.clone()),
            "{}",
            db.backend
        );

        // Held until the lease lapses; one not due yet is claimed once it is due.
        assert!(store
            .claim_deliveries(NOW + 5, NOW + 65, 100)
            .await
            .unwrap()
            .is_empty());
        let now_due = store
            .claim_deliveries(NOW + 60, NOW + 1000, 100)
            .await
            .unwrap();
        assert_eq!(now_due, vec![later.clone()], "{}", db.backend);

        // Finish some: delivered, failed, and pending again for later.
        let at = NOW + 30;
        let finish = |id: &str, state, next, status: Option<i64>| Attempt {
            id: id.into(),
            state,
            next_attempt_at: next,
            status,
            error: status.filter(|s| *s >= 500).map(|s| format!("HTTP {s}")),
            at,
        };
        store
            .finish_delivery(&finish(&due[0], DeliveryState::Delivered, at, Some(204)))
            .await
            .unwrap();
        store
            .finish_delivery(&finish(&due[1], DeliveryState::Failed, at, Some(500)))
            .await
            .unwrap();
        store
            .finish_delivery(&finish(
                &due[2],
                DeliveryState::Pending,
                NOW + 200,
                Some(503),
            ))
            .await
            .unwrap();
        let listed = store
            .list_deliveries(&hook.id, page(None, 100))
            .await
            .unwrap();
        let find = |id: &str| listed.iter().find(|d| d.id == id).unwrap().clone();
        let delivered = find(&due[0]);
        assert_eq!(
            (
                delivered.state,
                delivered.attempts,
                delivered.last_status,
                delivered.delivered_at
            ),
            (DeliveryState::Delivered, 1, Some(204), Some(at))
        );
        let failed = find(&due[1]);
        assert_eq!(
            (
                failed.state,
                failed.attempts,
                failed.last_error.as_deref(),
                failed.delivered_at
            ),
            (DeliveryState::Failed, 1, Some("HTTP 500"), None)
        );
        assert_eq!(find(&due[2]).next_attempt_at, NOW + 200);

        // The lease lapses: the unfinished are claimed again, by either node, once.
        let (x, y) = tokio::join!(
            nodes[0].claim_deliveries(NOW + 61, NOW + 1000, 100),
            nodes[1].claim_deliveries(NOW + 61, NOW + 1000, 100),
        );
        let mut again: Vec<String> = x
            .unwrap()
            .into_iter()
            .chain(y.unwrap())
            .map(|d| d.id)
            .collect();
        again.sort();
        assert_eq!(again, sorted(due[3..].to_vec()), "{}", db.backend);
        assert_eq!(
            store
                .claim_deliveries(NOW + 200, NOW + 260, 100)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id.clone())
                .collect::<Vec<_>>(),
            vec![due[2].clone()],
            "{}: due again after the retry delay",
            db.backend
        );
    })
    .await;
}

// ---- leases, usage, purge ----------------------------------------------------------------

/// Eight callers on two nodes ask for one lease at once: exactly one gets it. The holder may
/// renew it; nobody else gets it until it lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_has_one_holder_across_nodes() {
    each_backend(|db| async move {
        let nodes = [db.store.clone(), db.node().await];
        for round in 0..5 {
            let name = format!("purge-{round}");
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..8 {
                let node = nodes[i % 2].clone();
                let name = name.clone();
                tasks.spawn(async move {
                    let holder = format!("node-{i}");
                    let won = node.take_lease(&name, &holder, NOW, NOW + 60).await;
                    (holder, won)
                });
            }
            let mut winners = Vec::new();
            for (holder, won) in tasks.join_all().await {
                if won.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)) {
                    winners.push(holder);
                }
            }
            assert_eq!(
                winners.len(),
                1,
                "{} round {round}: {winners:?}",
                db.backend
            );
            let (holder, store) = (&winners[0], &nodes[1]);
            let rival = if holder == "node-0" {
                "node-1"
            } else {
                "node-0"
            };
            assert!(!store
                .take_lease(&name, rival, NOW + 59, NOW + 120)
                .await
                .unwrap());
            assert!(store
                .take_lease(&name, holder, NOW + 30, NOW + 90)
                .await
                .unwrap());
            assert!(!store
                .take_lease(&name, rival, NOW + 60, NOW + 120)
                .await
                .unwrap());
            assert!(store
                .take_lease(&name, rival, NOW + 90, NOW + 150)
                .await
                .unwrap());
            assert!(!store
                .take_lease(&name, holder, NOW + 100, NOW + 160)
                .await
                .unwrap());
        }
    })
    .await;
}

/// Usage counts add up per client and hour, across calls and within one.
#[tokio::test]
async fn usage_accumulates() {
    each_backend(|db| async move {
        let store = &*db.store;
        let hour = NOW - NOW % 3600;
        let count = |client: &str, hour, count| UsageCount {
            client_id: client.into(),
            hour,
            count,
        };
        store
            .add_usage(&[count("c1", hour, 3), count("c1", hour + 3600, 1)])
            .await
            .unwrap();
        store
            .add_usage(&[
                count("c1", hour, 2),
                count("c2", hour, 5),
                count("c1", hour, 1),
            ])
            .await
            .unwrap();
        store.add_usage(&[]).await.unwrap();
        assert_eq!(
            store.usage("c1", 0).await.unwrap(),
            vec![count("c1", hour, 6), count("c1", hour + 3600, 1)]
        );
        assert_eq!(
            store.usage("c1", hour + 1).await.unwrap(),
            vec![count("c1", hour + 3600, 1)]
        );
        assert_eq!(
            store.usage("c2", hour).await.unwrap(),
            vec![count("c2", hour, 5)]
        );
        assert!(store.usage("c3", 0).await.unwrap().is_empty());
    })
    .await;
}

/// Roles round-trip; entitlements and consents are set, replaced, listed and removed; forgetting
/// a consent revokes that user's families of that client and no other; deleting the user, the
/// client or the API takes their rows with them; `meta_set` replaces and counts as a change.
#[tokio::test]
async fn people_round_trip() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;

        let mut admin = new_user(&w.org.id);
        admin.role = Some(Role::OrgAdmin);
        store.insert_user(&admin, &[]).await.unwrap();
        assert_eq!(store.user(&admin.id).await.unwrap(), Some(admin.clone()));
        admin.role = None;
        assert!(store.update_user(&admin, None).await.unwrap());
        assert_eq!(store.user(&admin.id).await.unwrap().unwrap().role, None);

        let ent = |api: &Api, s: &str| Entitlement {
            org_id: w.org.id.clone(),
            api_id: api.id.clone(),
            scopes: scopes(s),
        };
        store.set_entitlement(&ent(&w.api, "read")).await.unwrap();
        store
            .set_entitlement(&ent(&w.api, "read write"))
            .await
            .unwrap();
        let other = new_api(&unique("https://api.example/other"));
        store.insert_api(&other).await.unwrap();
        store.set_entitlement(&ent(&other, "x")).await.unwrap();
        let mut want = vec![ent(&w.api, "read write"), ent(&other, "x")];
        want.sort_by(|a, b| a.api_id.cmp(&b.api_id));
        assert_eq!(store.entitlements(&w.org.id).await.unwrap(), want);
        assert!(store.entitlements("org_none").await.unwrap().is_empty());
        assert!(store
            .delete_entitlement(&w.org.id, &w.api.id)
            .await
            .unwrap());
        assert!(!store
            .delete_entitlement(&w.org.id, &w.api.id)
            .await
            .unwrap());
        assert!(store.delete_api(&other.id, NOW).await.unwrap());
        assert!(store.entitlements(&w.org.id).await.unwrap().is_empty());

        let consent = |s: &str, at| Consent {
            user_id: w.user.id.clone(),
            client_id: w.client.id.clone(),
            api_id: w.api.id.clone(),
            scope: scopes(s),
            granted_at: at,
        };
        store.remember_consent(&consent("read", NOW)).await.unwrap();
        store
            .remember_consent(&consent("read write", NOW + 1))
            .await
            .unwrap();
        assert_eq!(
            store
                .consent(&w.user.id, &w.client.id, &w.api.id)
                .await
                .unwrap(),
            Some(consent("read write", NOW + 1))
        );
        assert_eq!(
            store.consents(&w.user.id).await.unwrap(),
            vec![consent("read write", NOW + 1)]
        );
        // Forgetting revokes this user's chains with the client, not another user's.
        let mine = grant(store, &w).await;
        let theirs_user = new_user(&w.org.id);
        store.insert_user(&theirs_user, &[]).await.unwrap();
        let theirs = World {
            org: w.org.clone(),
            api: w.api.clone(),
            client: w.client.clone(),
            user: theirs_user,
        };
        let other_family = grant(store, &theirs).await;
        assert!(store
            .forget_consent(&w.user.id, &w.client.id, NOW + 2)
            .await
            .unwrap());
        assert_eq!(revoked_at(store, &mine.family_id).await, Some(NOW + 2));
        assert_eq!(revoked_at(store, &other_family.family_id).await, None);
        assert!(store.consents(&w.user.id).await.unwrap().is_empty());
        assert!(!store
            .forget_consent(&w.user.id, &w.client.id, NOW + 3)
            .await
            .unwrap());

        store.remember_consent(&consent("read", NOW)).await.unwrap();
        assert!(store.delete_user(&w.org.id, &w.user.id, NOW).await.unwrap());
        assert!(store.consents(&w.user.id).await.unwrap().is_empty());

        let before = store.change_seq().await.unwrap();
        assert_eq!(store.meta_get("branding-test").await.unwrap(), None);
        store.meta_set("branding-test", "a").await.unwrap();
        store.meta_set("branding-test", "b").await.unwrap();
        assert_eq!(
            store.meta_get("branding-test").await.unwrap().as_deref(),
            Some("b")
        );
        assert!(store.change_seq().await.unwrap() > before);
    })
    .await;
}

/// The purge removes exactly what is dead and counts it; a dry run counts the same and
/// removes nothing; a second purge finds nothing left.
#[tokio::test]
async fn purge_removes_exactly_the_dead() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        // The purge runs at P with an hour of access-token grace; audit retention from NOW + 5.
        let (p, grace, audit_before) = (NOW + 10_000, 3600, NOW + 5);

        // A family per case, each redeemed from a code at NOW. `token` is its refresh token
        // `(issued_at, expires_at)`, if any; `code_expires` its code's expiry.
        let family = |token: Option<(i64, i64)>, code_expires: i64| {
            let mut code = new_code(&w);
            code.expires_at = code_expires;
            let mut family = new_family(&w, &code.family_id);
            family.token = token.map(|(issued_at, expires_at)| FamilyToken {
                generation: 1,
                token_hash: hash(),
                issued_at,
                expires_at,
            });
            async move {
                store.insert_code(&code).await.unwrap();
                assert!(store
                    .redeem_code(&code.code_hash, NOW, &family)
                    .await
                    .unwrap());
                code
            }
        };
        // Live: its first token expired (and its access token long since) after it was
        // rotated into a live one; its code has not expired.
        let live_code = family(Some((NOW, NOW + 3600)), p + 60).await;
        let first = Tok {
            family_id: live_code.family_id.clone(),
            generation: 1,
            hash: current(store, &live_code.family_id)
                .await
                .unwrap()
                .token_hash,
            expires_at: NOW + 3600,
        };
        let second = Tok {
            expires_at: p + 100,
            ..first.next(NOW + 1)
        };
        assert_eq!(
            store
                .rotate_refresh(rotation(&first, &second, NOW + 1, 0, None))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        // Revoked long ago: dead, with its live token.
        let old_revoked_code = family(Some((NOW, p + 100)), NOW + 60).await;
        store
            .revoke_family(&old_revoked_code.family_id, NOW + 1)
            .await
            .unwrap();
        // Revoked within the grace, with a live token: kept.
        let new_revoked_code = family(Some((NOW, p + 100)), NOW + 60).await;
        store
            .revoke_family(&new_revoked_code.family_id, p - 10)
            .await
            .unwrap();
        // Its token expired, last activity long ago: dead.
        let stale_code = family(Some((NOW, NOW + 3600)), NOW + 60).await;
        // Its token expired, but recently issued: its access token may live, so the family
        // is kept.
        let recent_code = family(Some((p - 100, p - 1)), NOW + 60).await;
        // No refresh token, created long ago: dead (its unexpired code stays until it expires).
        let bare_code = family(None, p + 60).await;
        // From before generation tokens: one whose legacy token expired long ago (dead, with
        // its token), one whose legacy token is live (kept, with its token).
        let (legacy_dead, legacy_dead_token) = legacy_grant(&db, &w, NOW + 3600).await;
        let (legacy_live, legacy_live_token) = legacy_grant(&db, &w, p + 100).await;
        // Unredeemed codes: one expired, one not.
        let mut loose = [new_code(&w), new_code(&w)];
        loose[0].expires_at = p - 1;
        loose[1].expires_at = p + 1;
        for c in &loose {
            store.insert_code(c).await.unwrap();
        }

        store.revoke_jti("jti-gone", p - 1).await.unwrap();
        store.revoke_jti("jti-kept", p + 1).await.unwrap();
        let key = |retires_at: Option<i64>| StoredKey {
            kid: unique("kid"),
            alg: SigningAlg::ES256,
            private_key: vec![1],
            created_at: NOW,
            promoted_at: Some(NOW),
            retires_at,
        };
        let keys = [key(Some(p - 1)), key(Some(p)), key(Some(p + 1)), key(None)];
        for k in &keys {
            store.insert_key(k).await.unwrap();
        }
        let hook = new_webhook(&["*"]);
        store.insert_webhook(&hook).await.unwrap();
        let old_event = event("evt_1", NOW, kind::CLIENT_CREATED, "org", None, None);
        let old = [
            new_delivery(&hook, "evt_1", DeliveryState::Delivered, NOW),
            new_delivery(&hook, "evt_1", DeliveryState::Failed, NOW),
            new_delivery(&hook, "evt_1", DeliveryState::Pending, NOW),
        ];
        store.append_audit(&old_event, &old).await.unwrap();
        let new_event = event(
            "evt_2",
            audit_before,
            kind::CLIENT_CREATED,
            "org",
            None,
            None,
        );
        let recent = new_delivery(&hook, "evt_2", DeliveryState::Delivered, audit_before);
        store
            .append_audit(&new_event, std::slice::from_ref(&recent))
            .await
            .unwrap();
        let hour = |h: i64| UsageCount {
            client_id: w.client.id.clone(),
            hour: h,
            count: 1,
        };
        store
            .add_usage(&[hour(NOW), hour(audit_before)])
            .await
            .unwrap();

        // Single-use ids and pushed requests: one of each past its lifetime, one of each not.
        assert!(store.use_once(b"used-gone", p - 1).await.unwrap());
        assert!(store.use_once(b"used-kept", p + 1).await.unwrap());
        for (hash, expires_at) in [(b"pushed-gone", p - 1), (b"pushed-kept", p + 1)] {
            store
                .push_request(&pushed(&w, hash, expires_at))
                .await
                .unwrap();
        }

        let want = PurgeReport {
            codes: 7,
            families: 4,
            refresh_tokens: 1,
            revoked_jtis: 1,
            keys: 2,
            audit_events: 1,
            deliveries: 2,
            used_ids: 2,
        };
        let dry = store.purge(p, grace, audit_before, true, 2).await.unwrap();
        assert_eq!(dry, want, "{}: dry run", db.backend);
        assert!(
            store.jti_revoked("jti-gone").await.unwrap(),
            "the dry run removed nothing"
        );
        assert_eq!(store.all_keys().await.unwrap().len(), 4);
        assert!(store.family(&stale_code.family_id).await.unwrap().is_some());
        assert!(store.code(&loose[0].code_hash).await.unwrap().is_some());
        assert_eq!(store.usage(&w.client.id, 0).await.unwrap().len(), 2);
        assert!(store.audit_event("evt_1").await.unwrap().is_some());

        // Batches of 2 rows: every kind takes several.
        let done = store.purge(p, grace, audit_before, false, 2).await.unwrap();
        assert_eq!(done, want, "{}", db.backend);

        // Families, their tokens and codes.
        for (family_id, kept) in [
            (&live_code.family_id, true),
            (&old_revoked_code.family_id, false),
            (&new_revoked_code.family_id, true),
            (&stale_code.family_id, false),
            (&recent_code.family_id, true),
            (&bare_code.family_id, false),
            (&legacy_dead, false),
            (&legacy_live, true),
        ] {
            let family = store.family(family_id).await.unwrap();
            assert_eq!(family.is_some(), kept, "{}: family", db.backend);
        }
        assert_eq!(
            current(store, &live_code.family_id).await,
            Some(second.as_family_token(NOW + 1))
        );
        assert!(store
            .refresh_token(&legacy_dead_token)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .refresh_token(&legacy_live_token)
            .await
            .unwrap()
            .is_some());
        let code_kept = |c: &AuthCode| {
            let hash = c.code_hash.clone();
            async move { store.code(&hash).await.unwrap().is_some() }
        };
        assert!(code_kept(&live_code).await);
        assert!(code_kept(&bare_code).await, "a code stays until it expires");
        assert!(!code_kept(&loose[0]).await);
        assert!(code_kept(&loose[1]).await);
        assert!(!code_kept(&recent_code).await, "an expired code goes");

        // Revoked ids, keys, the audit log, deliveries, usage.
        assert!(!store.jti_revoked("jti-gone").await.unwrap());
        assert!(store.jti_revoked("jti-kept").await.unwrap());
        let kids: Vec<String> = store
            .all_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, vec![keys[2].kid.clone(), keys[3].kid.clone()]);
        assert!(store.audit_event("evt_1").await.unwrap().is_none());
        assert!(store.audit_event("evt_2").await.unwrap().is_some());
        let left: Vec<String> = store
            .list_deliveries(&hook.id, page(None, 10))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(left, sorted(vec![old[2].id.clone(), recent.id.clone()]));
        assert_eq!(
            store.usage(&w.client.id, 0).await.unwrap(),
            vec![hour(audit_before)]
        );

        assert_eq!(
            store.purge(p, grace, audit_before, false, 2).await.unwrap(),
            PurgeReport::default(),
            "{}: nothing left to purge",
            db.backend
        );
    })
    .await;
}
