//! Fresh databases: a SQLite file in a test's own directory, or, when
//! `CALYX_TEST_DATABASE_URL` names a PostgreSQL server, a new database `calyx_t_<random>` on
//! it (`scripts/test` drops the leftovers of earlier runs before it starts).

use std::path::Path;

use sqlx::{Connection, Executor};

/// The variable that names the PostgreSQL server to test against.
pub const TEST_DATABASE_VAR: &str = "CALYX_TEST_DATABASE_URL";

/// The PostgreSQL server to test against, if any.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(TEST_DATABASE_VAR)
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// The URL of a SQLite file `calyx.db` in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("calyx.db").display())
}

/// A fresh PostgreSQL database when `CALYX_TEST_DATABASE_URL` names a server, else a SQLite
/// file in `dir`.
pub async fn test_database(dir: &Path) -> String {
    match postgres_admin_url() {
        Some(admin) => fresh_postgres_database(&admin).await,
        None => sqlite_url(dir),
    }
}

/// A fresh PostgreSQL database on the server `CALYX_TEST_DATABASE_URL` names; panics when it
/// is unset (for the tests that only make sense on PostgreSQL).
pub async fn fresh_database() -> String {
    let admin =
        postgres_admin_url().expect("CALYX_TEST_DATABASE_URL=postgres://... (see scripts/test)");
    fresh_postgres_database(&admin).await
}

/// Creates an empty database on the server at `admin` and returns its URL.
pub async fn fresh_postgres_database(admin: &str) -> String {
    let name = format!(
        "calyx_t_{}",
        calyx_token::secret::random_alphanumeric(16).to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connecting to the test PostgreSQL");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// One integer from the database at `url` (SQLite or PostgreSQL).
pub async fn scalar(url: &str, sql: &str) -> i64 {
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// Every byte a database holds: the files in `dir` for SQLite, a `pg_dump` for PostgreSQL.
pub fn database_bytes(url: &str, dir: &Path) -> Vec<(String, Vec<u8>)> {
    if url.starts_with("postgres") {
        let out = std::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(url)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return vec![("pg_dump".into(), out.stdout)];
    }
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect()
}
