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

use calyx_core::model::{
    Api, AuthCode, Client, ClientGrant, ClientType, Family, GrantType, Org, RefreshToken,
    RotateOutcome, Rotation, SigningAlg, StoredKey, User,
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
    }
}

/// A refresh token of `family_id`; `sealed` is the sealed form the server keeps when a reuse
/// leeway is configured.
fn new_refresh(family_id: &str, sealed: Option<&[u8]>) -> RefreshToken {
    RefreshToken {
        token_hash: hash(),
        family_id: family_id.into(),
        scope: scopes("read"),
        created_at: NOW,
        expires_at: NOW + 3600,
        used_at: None,
        successor_sealed: sealed.map(<[u8]>::to_vec),
    }
}

/// Issues a code and redeems it: a new family with its first refresh token.
async fn grant(store: &dyn Store, w: &World) -> RefreshToken {
    let code = new_code(w);
    store.insert_code(&code).await.unwrap();
    let family = new_family(w, &code.family_id);
    let token = new_refresh(&family.id, None);
    assert!(store
        .redeem_code(&code.code_hash, NOW, &family, Some(&token))
        .await
        .unwrap());
    token
}

async fn revoked_at(store: &dyn Store, family_id: &str) -> Option<i64> {
    store
        .family(family_id)
        .await
        .unwrap()
        .expect("the family exists")
        .revoked_at
}

// ---- refresh rotation --------------------------------------------------------------------

/// Many writers on two nodes present one refresh token at once: exactly one rotates it, the
/// others see a reuse (or, once that revoked the family, an invalid token).
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
                let old = token.token_hash.clone();
                let successor = new_refresh(&token.family_id, None);
                tasks.spawn(async move {
                    let outcome = node
                        .rotate_refresh(rotation(&old, &successor, NOW + 1, 0))
                        .await;
                    (successor, outcome)
                });
            }
            let mut rotated = Vec::new();
            let mut refused = Vec::new();
            let mut reused = 0;
            for (successor, outcome) in tasks.join_all().await {
                match outcome.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend)) {
                    RotateOutcome::Rotated => rotated.push(successor),
                    RotateOutcome::Reused => {
                        reused += 1;
                        refused.push(successor);
                    }
                    RotateOutcome::Invalid => refused.push(successor),
                    other => panic!("{}: unexpected {other:?}", db.backend),
                }
            }
            assert_eq!(rotated.len(), 1, "{}: exactly one Rotated", db.backend);
            assert!(
                reused >= 1,
                "{}: the second presentation is a reuse",
                db.backend
            );
            let (stored, family) = db
                .store
                .refresh_token(&rotated[0].token_hash)
                .await
                .unwrap()
                .expect("the winner's successor is stored");
            assert_eq!(stored.family_id, token.family_id);
            assert_eq!(
                family.revoked_at,
                Some(NOW + 1),
                "the reuse revoked the family"
            );
            for successor in refused {
                assert!(db
                    .store
                    .refresh_token(&successor.token_hash)
                    .await
                    .unwrap()
                    .is_none());
            }
        }
    })
    .await;
}

/// A spent token presented again within the leeway, while its successor is unused, gets that
/// successor again (`Retried`) and revokes nothing; after the leeway, or once the successor
/// was used, or with no sealed successor, it is a reuse and the family is revoked.
#[tokio::test]
async fn reuse_leeway_retries_then_revokes() {
    each_backend(|db| async move {
        let store = &*db.store;
        let w = world(store).await;
        let leeway = 30;

        // Within the leeway, successor unused: Retried, as often as it is asked.
        let token = grant(store, &w).await;
        let first = new_refresh(&token.family_id, Some(b"sealed first successor"));
        let rotate = |old: &RefreshToken, at: i64| {
            let successor = new_refresh(&old.family_id, Some(b"another successor"));
            let old = old.token_hash.clone();
            async move {
                store
                    .rotate_refresh(rotation(&old, &successor, at, leeway))
                    .await
            }
        };
        assert_eq!(
            store
                .rotate_refresh(rotation(&token.token_hash, &first, NOW, leeway))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        for at in [NOW, NOW + 10, NOW + leeway] {
            assert_eq!(
                rotate(&token, at).await.unwrap(),
                RotateOutcome::Retried(b"sealed first successor".to_vec()),
                "{}: at +{}",
                db.backend,
                at - NOW
            );
        }
        assert_eq!(revoked_at(store, &token.family_id).await, None);
        // After the leeway: Reused, and the family (so the successor too) is revoked.
        assert_eq!(
            rotate(&token, NOW + leeway + 1).await.unwrap(),
            RotateOutcome::Reused
        );
        assert_eq!(
            revoked_at(store, &token.family_id).await,
            Some(NOW + leeway + 1)
        );
        assert_eq!(
            rotate(&first, NOW + leeway + 2).await.unwrap(),
            RotateOutcome::Invalid
        );

        // Within the leeway but the successor was used: Reused.
        let token = grant(store, &w).await;
        let first = new_refresh(&token.family_id, Some(b"sealed"));
        let second = new_refresh(&token.family_id, Some(b"sealed second"));
        store
            .rotate_refresh(rotation(&token.token_hash, &first, NOW, leeway))
            .await
            .unwrap();
        assert_eq!(
            store
                .rotate_refresh(rotation(&first.token_hash, &second, NOW + 1, leeway))
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        assert_eq!(
            rotate(&token, NOW + 2).await.unwrap(),
            RotateOutcome::Reused
        );
        assert_eq!(revoked_at(store, &token.family_id).await, Some(NOW + 2));

        // Within the leeway but no sealed successor kept: Reused.
        let token = grant(store, &w).await;
        let first = new_refresh(&token.family_id, None);
        store
            .rotate_refresh(rotation(&token.token_hash, &first, NOW, leeway))
            .await
            .unwrap();
        assert_eq!(
            rotate(&token, NOW + 1).await.unwrap(),
            RotateOutcome::Reused
        );

        // An unknown or expired token: Invalid, nothing revoked.
        assert_eq!(
            rotate(&new_refresh("none", None), NOW).await.unwrap(),
            RotateOutcome::Invalid
        );
        let token = grant(store, &w).await;
        assert_eq!(
            rotate(&token, token.expires_at).await.unwrap(),
            RotateOutcome::Invalid
        );
        assert_eq!(revoked_at(store, &token.family_id).await, None);
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
        let (a, b) = (
            new_refresh(&token.family_id, None),
            new_refresh(&token.family_id, None),
        );
        let (first, second) = tokio::join!(
            store.rotate_refresh(rotation(&token.token_hash, &a, NOW, 0)),
            store.rotate_refresh(rotation(&token.token_hash, &b, NOW, 0)),
        );
        assert_eq!(first.unwrap(), RotateOutcome::Rotated, "{}", db.backend);
        assert_eq!(second.unwrap(), RotateOutcome::Reused, "{}", db.backend);
        assert_eq!(revoked_at(store, &token.family_id).await, Some(NOW));
        assert!(store.refresh_token(&a.token_hash).await.unwrap().is_some());
        assert!(store.refresh_token(&b.token_hash).await.unwrap().is_none());

        let token = grant(store, &w).await;
        let (a, b) = (
            new_refresh(&token.family_id, Some(b"sealed a")),
            new_refresh(&token.family_id, Some(b"sealed b")),
        );
        let (first, second) = tokio::join!(
            store.rotate_refresh(rotation(&token.token_hash, &a, NOW, 30)),
            store.rotate_refresh(rotation(&token.token_hash, &b, NOW, 30)),
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
        let next = new_refresh(&token.family_id, Some(b"sealed next"));
        assert_eq!(
            store
                .rotate_refresh(rotation(&token.token_hash, &next, NOW, 30))
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
            let successor = new_refresh(&token.family_id, None);
            assert_eq!(
                store
                    .rotate_refresh(rotation(&old.token_hash, &successor, NOW + 3, 30))
                    .await
                    .unwrap(),
                RotateOutcome::Invalid,
                "{}",
                db.backend
            );
            assert!(store
                .refresh_token(&successor.token_hash)
                .await
                .unwrap()
                .is_none());
        }
        let (stored, family) = store
            .refresh_token(&next.token_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.used_at, None);
        assert_eq!(family.revoked_at, Some(NOW + 1));

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
        let successor = new_refresh(&token.family_id, None);
        assert_eq!(
            store
                .rotate_refresh(rotation(&token.token_hash, &successor, NOW + 5, 0))
                .await
                .unwrap(),
            RotateOutcome::Invalid
        );
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
                let family = new_family(&w, &unique("family"));
                let refresh = new_refresh(&family.id, None);
                tasks.spawn(async move {
                    let won = node
                        .redeem_code(&code_hash, NOW + 1, &family, Some(&refresh))
                        .await;
                    (family, refresh, won)
                });
            }
            let mut winners = 0;
            for (family, refresh, won) in tasks.join_all().await {
                let won = won.unwrap_or_else(|e| panic!("{}: {e:?}", db.backend));
                winners += usize::from(won);
                let stored_family = db.store.family(&family.id).await.unwrap();
                let stored_token = db.store.refresh_token(&refresh.token_hash).await.unwrap();
                assert_eq!(stored_family.is_some(), won, "{}", db.backend);
                assert_eq!(stored_token.is_some(), won, "{}", db.backend);
            }
            assert_eq!(winners, 1, "{}: exactly one redemption", db.backend);
            let stored = db.store.code(&code.code_hash).await.unwrap().unwrap();
            assert_eq!(stored.used_at, Some(NOW + 1));
            let family = new_family(&w, &unique("family"));
            assert!(!db
                .store
                .redeem_code(&code.code_hash, NOW + 2, &family, None)
                .await
                .unwrap());
        }
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
        // A refresh token of another family: the redemption fails whole, the code stays usable.
        let family = new_family(&w, &code.family_id);
        let stray = new_refresh("no-such-family", None);
        let redeemed = store
            .redeem_code(&code.code_hash, NOW, &family, Some(&stray))
            .await
            .map(|_| ());
        not_found(redeemed, "refresh token of an unknown family");
        assert_eq!(
            store.code(&code.code_hash).await.unwrap().unwrap().used_at,
            None
        );
        assert!(store.family(&family.id).await.unwrap().is_none());

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
            let calls = |node: &Arc<dyn Store>, order: Vec<&RefreshToken>| {
                let rotations = order.into_iter().map(|t| {
                    let node = node.clone();
                    let successor = new_refresh(&t.family_id, None);
                    let old = t.token_hash.clone();
                    async move {
                        node.rotate_refresh(rotation(&old, &successor, NOW + 1, 0))
                            .await
                    }
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

/// A rotation of `old` into `successor`.
fn rotation(old: &[u8], successor: &RefreshToken, now: i64, leeway: i64) -> Rotation {
    Rotation {
        old_hash: old.to_vec(),
        successor: successor.clone(),
        now,
        leeway,
    }
}
