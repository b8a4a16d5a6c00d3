//! The purge, written once for both backends: what is dead goes in bounded batches, each its
//! own short transaction, so that a rotation or a sign-in waits for one batch at most and
//! never for the whole purge (on SQLite they share the one writer connection).
//!
//! Dead families are found on a reader, page by page in id order, without the write lock;
//! each page is then deleted in one transaction that checks every family again (it may have
//! been rotated since it was read). A dry run counts what a real run would remove and writes
//! nothing. Signing keys are few and their delete touches the change counter, so each backend
//! removes them itself, in one statement.

use calyx_core::model::PurgeReport;
use sqlx::Pool;

use crate::{sql, RowsAffected};

/// What to purge, and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Purge {
    /// The time the purge judges by.
    pub now: i64,
    /// How long after its family's last activity an access token may still be live.
    pub access_grace: i64,
    /// Audit events, deliveries and usage older than this go.
    pub audit_before: i64,
    /// Count only.
    pub dry_run: bool,
    /// The most rows one statement deletes.
    pub batch: i64,
}

/// Purges (or counts) everything but the signing keys. `lock_family` is the backend's
/// statement that locks a family row by id (`$1`) before its legacy tokens are deleted.
pub(crate) async fn run<DB>(
    reader: &Pool<DB>,
    writer: &Pool<DB>,
    p: Purge,
    lock_family: &'static str,
) -> sqlx::Result<PurgeReport>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'r> sqlx::Decode<'r, DB>,
    i64: for<'r> sqlx::Decode<'r, DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let now_grace = [p.now, p.access_grace];
    let mut report = PurgeReport {
        revoked_jtis: kind(
            reader,
            writer,
            p,
            sql::PURGE_JTIS,
            sql::COUNT_JTIS,
            &[p.now],
        )
        .await?,
        audit_events: kind(
            reader,
            writer,
            p,
            sql::PURGE_AUDIT,
            sql::COUNT_AUDIT,
            &[p.audit_before],
        )
        .await?,
        deliveries: kind(
            reader,
            writer,
            p,
            sql::PURGE_DELIVERIES,
            sql::COUNT_DELIVERIES,
            &[p.audit_before],
        )
        .await?,
        codes: kind(
            reader,
            writer,
            p,
            sql::PURGE_CODES,
            sql::COUNT_CODES,
            &[p.now],
        )
        .await?,
        ..PurgeReport::default()
    };
    report.used_ids = kind(
        reader,
        writer,
        p,
        sql::PURGE_USED_IDS,
        sql::COUNT_USED_IDS,
        &[p.now],
    )
    .await?
        + kind(
            reader,
            writer,
            p,
            sql::PURGE_PUSHED,
            sql::COUNT_PUSHED,
            &[p.now],
        )
        .await?;
    kind(
        reader,
        writer,
        p,
        sql::PURGE_QUOTA_COUNTS,
        sql::COUNT_QUOTA_COUNTS,
        &[p.now],
    )
    .await?;
    kind(
        reader,
        writer,
        p,
        sql::PURGE_USAGE,
        sql::COUNT_USAGE,
        &[p.audit_before],
    )
    .await?;
    let (families, family_tokens) = families(reader, writer, p, lock_family).await?;
    report.families = families;
    report.refresh_tokens = family_tokens
        + kind(
            reader,
            writer,
            p,
            sql::PURGE_REFRESH_TOKENS,
            sql::COUNT_REFRESH_TOKENS,
            &now_grace,
        )
        .await?;
    Ok(report)
}

/// One kind of row: `delete` takes `binds` then the batch size and is repeated until it
/// removes fewer rows than that; a dry run runs `count` with `binds` instead.
async fn kind<DB>(
    reader: &Pool<DB>,
    writer: &Pool<DB>,
    p: Purge,
    delete: &'static str,
    count: &'static str,
    binds: &[i64],
) -> sqlx::Result<u64>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    if p.dry_run {
        let mut q = sqlx::query_as::<DB, (i64,)>(count);
        for b in binds {
            q = q.bind(*b);
        }
        return Ok(q.fetch_one(reader).await?.0 as u64);
    }
    let mut total = 0;
    loop {
        let mut q = sqlx::query::<DB>(delete);
        for b in binds {
            q = q.bind(*b);
        }
        let removed = q.bind(p.batch).execute(writer).await?.rows();
        total += removed;
        if removed < p.batch as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Dead families and their legacy tokens: `(families, tokens)` removed (or counted).
async fn families<DB>(
    reader: &Pool<DB>,
    writer: &Pool<DB>,
    p: Purge,
    lock_family: &'static str,
) -> sqlx::Result<(u64, u64)>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    if p.dry_run {
        let (families,): (i64,) = sqlx::query_as(&sql::COUNT_FAMILIES)
            .bind(p.now)
            .bind(p.access_grace)
            .fetch_one(reader)
            .await?;
        return Ok((families as u64, 0));
    }
    let (mut families, mut tokens) = (0, 0);
    let mut cursor = String::new();
    loop {
        let page: Vec<(String,)> = sqlx::query_as(&sql::PURGE_FAMILIES_PAGE)
            .bind(p.now)
            .bind(p.access_grace)
            .bind(cursor.clone())
            .bind(p.batch)
            .fetch_all(reader)
            .await?;
        let Some((last,)) = page.last() else {
            return Ok((families, tokens));
        };
        cursor = last.clone();
        let mut tx = writer.begin().await?;
        for (id,) in &page {
            sqlx::query(lock_family)
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
            for (statement, removed) in [
                (&*sql::PURGE_FAMILY_TOKENS, &mut tokens),
                (&*sql::PURGE_FAMILY, &mut families),
            ] {
                *removed += sqlx::query(statement)
                    .bind(p.now)
                    .bind(p.access_grace)
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await?
                    .rows();
            }
        }
        tx.commit().await?;
        if (page.len() as i64) < p.batch {
            return Ok((families, tokens));
        }
        tokio::task::yield_now().await;
    }
}
