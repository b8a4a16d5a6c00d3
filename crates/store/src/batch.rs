//! Group commit for the writes a token request may wait on: refresh-token rotations, single-use
//! marks (DPoP proof and client assertion ids) and quota counts.
//!
//! Each such write must be committed before its response, and with `synchronous=FULL` a
//! commit is an fsync. One writer task per kind of write takes every job waiting at that
//! moment (up to [`MAX_BATCH`]), runs them all in one transaction, commits once, then answers
//! them all: the fsync and the transaction overhead are shared, and each caller still hears
//! back only after its write is durable. Outcomes are exactly those of running the jobs one
//! after another in arrival order — two presentations of one refresh token in a batch give one
//! `Rotated` and one `Reused`, two marks of one id give one `true` and one `false`, and the
//! last token under a quota goes to the first of two counts, as they would sequentially. If
//! the transaction fails, every caller in the batch gets the error and nothing of the batch is
//! written.
//!
//! This module owns the queues, the writer loop and the decision taken when a refresh token is
//! refused; each backend supplies the transactions ([`RunBatch`]) and runs [`rotate_one`] and
//! [`count_batch`], written once for both, inside them.

use async_trait::async_trait;
use calyx_core::model::{Family, Presented, QuotaHit, QuotaLimit, RotateOutcome, Rotation};
use calyx_core::store::{StoreError, StoreResult};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use calyx_core::store::RotationObserver;
use tokio::sync::{mpsc, oneshot};

use crate::{sql, RowsAffected};

/// The most jobs committed together.
pub(crate) const MAX_BATCH: usize = 256;

/// How many jobs may wait for a writer before callers wait to enqueue.
const QUEUE: usize = 4096;

/// A kind of write that is committed in groups, and what each one answers.
pub(crate) trait Batched: Send + Sync + 'static {
    type Outcome: Send + 'static;
}

impl Batched for Rotation {
    type Outcome = RotateOutcome;
}

/// Marks `key` used until `expires_at`; answers whether this was its first use
/// (`OneTime::use_once`).
pub(crate) struct Mark {
    pub key: Vec<u8>,
    pub expires_at: i64,
}

impl Batched for Mark {
    type Outcome = bool;
}

/// Counts one token against each of `limits` in its window at `now`, or nothing when one of
/// them is reached (`Quotas::count_token`).
pub(crate) struct Count {
    pub limits: Vec<QuotaLimit>,
    pub now: i64,
}

impl Batched for Count {
    type Outcome = Result<(), QuotaHit>;
}

/// One write waiting for its writer, and where its outcome goes.
pub(crate) struct Job<W: Batched> {
    pub work: W,
    pub reply: oneshot::Sender<StoreResult<W::Outcome>>,
}

/// One rotation waiting for the writer.
pub(crate) type RotateJob = Job<Rotation>;

/// One single-use mark waiting for the writer.
pub(crate) type MarkJob = Job<Mark>;

/// One quota count waiting for the writer.
pub(crate) type CountJob = Job<Count>;

/// A backend's side of group commit: run `jobs` in order in one transaction and commit it,
/// returning one outcome per job, or fail and write nothing.
#[async_trait]
pub(crate) trait RunBatch<W: Batched>: Send + Sync + 'static {
    async fn run_batch(&self, jobs: &[Job<W>]) -> StoreResult<Vec<W::Outcome>>;
}

/// Who hears about each rotation batch (`Meta::observe_rotations`), once one is set.
#[derive(Clone, Default)]
pub(crate) struct Observer(Arc<OnceLock<RotationObserver>>);

impl Observer {
    /// Sets the observer; the first one set stays.
    pub(crate) fn set(&self, observer: RotationObserver) {
        let _ = self.0.set(observer);
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

/// Starts a writer task: it takes every job waiting (up to [`MAX_BATCH`]), hands them to
/// `backend` as one batch, tells `observer` its size and duration, and answers each caller.
/// Returns the queue's sending end.
pub(crate) fn spawn_writer<W: Batched>(
    backend: impl RunBatch<W>,
    observer: Observer,
) -> mpsc::Sender<Job<W>> {
    let (tx, mut rx) = mpsc::channel::<Job<W>>(QUEUE);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let outcomes = backend.run_batch(&jobs).await;
            if let Some(observe) = observer.0.get() {
                observe(jobs.len(), started.elapsed().as_secs_f64());
            }
            reply_all(jobs, outcomes);
        }
    });
    tx
}

/// Queues one write and waits for the batch that carries it to commit.
pub(crate) async fn submit<W: Batched>(
    queue: &mpsc::Sender<Job<W>>,
    work: W,
) -> StoreResult<W::Outcome> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Job { work, reply })
        .await
        .map_err(|_| writer_gone())?;
    answer.await.map_err(|_| writer_gone())?
}

/// One rotation inside the batch's transaction (see `RefreshTokens::rotate_refresh` for what
/// each outcome means). Written once for both backends: it uses no backend-specific result.
pub(crate) async fn rotate_one<DB>(
    conn: &mut DB::Connection,
    job: &RotateJob,
) -> sqlx::Result<RotateOutcome>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<Vec<u8>>: sqlx::Encode<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    bool: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    RefusedRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    MissRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let r = &job.work;
    match &r.presented {
        Presented::Generation {
            generation,
            token_hash,
        } => {
            let moved = sqlx::query(sql::ROTATE)
                .bind(&r.family_id)
                .bind(*generation)
                .bind(token_hash)
                .bind(r.now)
                .bind(r.successor.generation)
                .bind(&r.successor.token_hash)
                .bind(&r.successor_sealed)
                .bind(r.successor.expires_at)
                .execute(&mut *conn)
                .await?
                .rows();
            if moved == 1 {
                return Ok(RotateOutcome::Rotated);
            }
            let row: Option<MissRow> = sqlx::query_as(sql::ROTATE_MISS)
                .bind(&r.family_id)
                .fetch_optional(&mut *conn)
                .await?;
            match missed(row, *generation, r.now, r.leeway) {
                Missed::Invalid => Ok(RotateOutcome::Invalid),
                Missed::Retried(sealed) => Ok(RotateOutcome::Retried(sealed)),
                Missed::Reused => revoke(conn, &r.family_id, r.now).await,
            }
        }
        Presented::Legacy { token_hash } => rotate_legacy::<DB>(conn, r, token_hash.clone()).await,
    }
}

/// A legacy token's rotation: spend its row, then give its family its first generation token.
async fn rotate_legacy<DB>(
    conn: &mut DB::Connection,
    r: &Rotation,
    token_hash: Vec<u8>,
) -> sqlx::Result<RotateOutcome>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<Vec<u8>>: sqlx::Encode<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    bool: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    RefusedRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let spent: Option<String> = sqlx::query_scalar(sql::REFRESH_SPEND)
        .bind(&token_hash)
        .bind(r.now)
        .bind(&r.successor.token_hash)
        .bind(&r.successor_sealed)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(family_id) = spent {
        sqlx::query(sql::ROTATE_FROM_LEGACY)
            .bind(&family_id)
            .bind(r.now)
            .bind(r.successor.generation)
            .bind(&r.successor.token_hash)
            .bind(&r.successor_sealed)
            .bind(r.successor.expires_at)
            .execute(&mut *conn)
            .await?;
        return Ok(RotateOutcome::Rotated);
    }
    let row: Option<RefusedRow> = sqlx::query_as(sql::REFRESH_MISS)
        .bind(&token_hash)
        .fetch_optional(&mut *conn)
        .await?;
    let family_id = match refused(row, r.now, r.leeway) {
        Refused::Invalid => return Ok(RotateOutcome::Invalid),
        Refused::Reused { family_id } => family_id,
        Refused::MaybeRetry { sealed, family_id } => {
            let successor_unused: Option<bool> = sqlx::query_scalar(sql::REFRESH_SUCCESSOR_UNUSED)
                .bind(&token_hash)
                .fetch_optional(&mut *conn)
                .await?;
            if successor_unused == Some(true) {
                return Ok(RotateOutcome::Retried(sealed));
            }
            family_id
        }
    };
    revoke(conn, &family_id, r.now).await
}

/// Reuse of a spent token: revokes the whole chain.
async fn revoke<DB>(
    conn: &mut DB::Connection,
    family_id: &str,
    now: i64,
) -> sqlx::Result<RotateOutcome>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(sql::FAMILY_REVOKE)
        .bind(family_id.to_owned())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(RotateOutcome::Reused)
}

/// A quota window's row: `(subject, window_secs, window_start)`.
type Window = (String, i64, i64);

/// The window of `limit` that holds the instant `now`.
fn window(limit: &QuotaLimit, now: i64) -> Window {
    (
        limit.subject.clone(),
        limit.window_secs,
        limit.window_start(now),
    )
}

/// A batch's quota counts inside its transaction. Each window the batch touches is read once
/// with `sql::QUOTA_TAKE` (which creates a missing row and, on PostgreSQL, locks it; windows
/// are taken in one sorted order on every node, so two nodes' batches wait for each other
/// instead of deadlocking), the jobs are judged in memory in arrival order ([`tally`]), and
/// each window that changed is written once. A hot client's batch of a few hundred tokens is
/// thus four statements, not two per token. Written once for both backends.
pub(crate) async fn count_batch<DB>(
    conn: &mut DB::Connection,
    jobs: &[CountJob],
) -> sqlx::Result<Vec<Result<(), QuotaHit>>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB> + sqlx::Decode<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut counts = BTreeMap::new();
    for job in jobs {
        for l in &job.work.limits {
            counts.entry(window(l, job.work.now)).or_insert(0);
        }
    }
    for (w, count) in counts.iter_mut() {
        *count = sqlx::query_scalar::<DB, i64>(sql::QUOTA_TAKE)
            .bind(w.0.clone())
            .bind(w.1)
            .bind(w.2)
            .fetch_one(&mut *conn)
            .await?;
    }
    let before = counts.clone();
    let outcomes = tally(jobs, &mut counts);
    for (w, count) in &counts {
        if before.get(w) != Some(count) {
            sqlx::query(sql::QUOTA_SET)
                .bind(w.0.clone())
                .bind(w.1)
                .bind(w.2)
                .bind(*count)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(outcomes)
}

/// Judges `jobs` in order against the windows' counts, counting what passes: a job gains one
/// in each of its limits' windows unless one of them is reached (count ≥ limit); then it
/// counts nothing, and its hit says which limit and how long until that window ends.
fn tally(jobs: &[CountJob], counts: &mut BTreeMap<Window, i64>) -> Vec<Result<(), QuotaHit>> {
    jobs.iter()
        .map(|job| {
            let Count { limits, now } = &job.work;
            let windows: Vec<Window> = limits.iter().map(|l| window(l, *now)).collect();
            let hit = limits
                .iter()
                .zip(&windows)
                .position(|(l, w)| counts[w] >= l.limit);
            if let Some(index) = hit {
                return Err(QuotaHit {
                    index,
                    retry_after: windows[index].2 + limits[index].window_secs - now,
                });
            }
            for w in &windows {
                *counts.get_mut(w).expect("every window was read") += 1;
            }
            Ok(())
        })
        .collect()
}

/// Inserts a family with its first refresh token inside a transaction.
pub(crate) async fn insert_family<DB>(conn: &mut DB::Connection, f: &Family) -> sqlx::Result<()>
where
    DB: sqlx::Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> Option<Vec<u8>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let token = f.token.as_ref();
    sqlx::query(sql::FAMILY_INSERT)
        .bind(f.id.clone())
        .bind(f.client_id.clone())
        .bind(f.user_id.clone())
        .bind(f.org_id.clone())
        .bind(f.api_id.clone())
        .bind(f.scope.to_string())
        .bind(f.created_at)
        .bind(token.map_or(0, |t| t.generation))
        .bind(token.map(|t| t.token_hash.clone()))
        .bind(token.map(|t| t.issued_at))
        .bind(token.map(|t| t.expires_at))
        .bind(f.dpop_jkt.clone())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a refused generation token means.
pub(crate) enum Missed {
    /// The family is gone or revoked, the token is the current generation but expired or
    /// not the one stored (a candidate of a rotation that lost), or it names a generation
    /// never issued: nothing to write.
    Invalid,
    /// The generation just before the current one, spent within the leeway: the current
    /// token, sealed, is handed out again.
    Retried(Vec<u8>),
    /// An older generation, genuine (its tag checked out): the family is revoked.
    Reused,
}

/// The row a refused generation token is judged from, as `sql::ROTATE_MISS` reads it:
/// `(token_generation, token_issued_at, token_sealed, revoked_at)`.
pub(crate) type MissRow = (i64, Option<i64>, Option<Vec<u8>>, Option<i64>);

/// Judges a refused generation token presented as `generation`.
pub(crate) fn missed(row: Option<MissRow>, generation: i64, now: i64, leeway: i64) -> Missed {
    let Some((current, issued_at, sealed, None)) = row else {
        return Missed::Invalid;
    };
    if generation >= current {
        return Missed::Invalid;
    }
    match (sealed, issued_at) {
        (Some(sealed), Some(issued_at))
            if generation + 1 == current && leeway > 0 && now - issued_at <= leeway =>
        {
            Missed::Retried(sealed)
        }
        _ => Missed::Reused,
    }
}

/// What the gate's refusal of a legacy token means, from the refused token's row
/// (`used_at, successor_sealed, family_id, revoked_at`, none when the token is unknown).
pub(crate) enum Refused {
    /// Unknown, expired, or its family is revoked: nothing to write.
    Invalid,
    /// Spent within the leeway with a sealed successor: `Retried` if that successor is still
    /// unused, otherwise a reuse of the family.
    MaybeRetry { sealed: Vec<u8>, family_id: String },
    /// A spent token presented again: the family is revoked.
    Reused { family_id: String },
}

/// The row the refusal is judged from, as `sql::REFRESH_MISS` reads it.
pub(crate) type RefusedRow = (Option<i64>, Option<Vec<u8>>, String, Option<i64>);

/// Judges a refused legacy token (the row read back after the gate matched nothing).
pub(crate) fn refused(row: Option<RefusedRow>, now: i64, leeway: i64) -> Refused {
    let Some((used_at, sealed, family_id, revoked_at)) = row else {
        return Refused::Invalid;
    };
    let (Some(used_at), None) = (used_at, revoked_at) else {
        return Refused::Invalid;
    };
    match sealed {
        Some(sealed) if leeway > 0 && now - used_at <= leeway => {
            Refused::MaybeRetry { sealed, family_id }
        }
        _ => Refused::Reused { family_id },
    }
}

/// Answers every job of a batch: its own outcome, or the batch's error.
fn reply_all<W: Batched>(jobs: Vec<Job<W>>, outcomes: StoreResult<Vec<W::Outcome>>) {
    match outcomes {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            let unavailable = matches!(e, StoreError::Unavailable(_));
            let text = e.to_string();
            for job in jobs {
                let err = if unavailable {
                    StoreError::Unavailable(text.clone().into())
                } else {
                    StoreError::Other(text.clone().into())
                };
                let _ = job.reply.send(Err(err));
            }
        }
    }
}

/// The error when a writer task has stopped (the runtime is shutting down).
fn writer_gone() -> StoreError {
    StoreError::Unavailable("the group-commit writer has stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(limits: &[(&str, i64, i64)], now: i64) -> CountJob {
        let limits = limits
            .iter()
            .map(|&(subject, window_secs, limit)| QuotaLimit {
                subject: subject.into(),
                window_secs,
                limit,
            })
            .collect();
        Job {
            work: Count { limits, now },
            reply: oneshot::channel().0,
        }
    }

    /// One batch judged in memory gives what the same counts one after another would: the
    /// last token under a limit goes to the first job, a job refused by its second limit
    /// counts nothing against its first, and a new window starts from what was read.
    #[test]
    fn a_batch_is_judged_as_its_jobs_one_after_another() {
        let now = 7_200 + 100;
        let client_a = [("a", 3600, 10), ("org", 3600, 3)];
        let client_b = [("b", 3600, 10), ("org", 3600, 3)];
        let jobs = [
            job(&client_a, now),
            job(&client_b, now),
            job(&client_a, now),
            job(&client_b, now),
            job(&client_a, now + 3_600),
            job(&[("z", 60, 0)], now),
        ];
        let mut counts: BTreeMap<Window, i64> = [
            (("a".into(), 3600, 7_200), 0),
            (("b".into(), 3600, 7_200), 0),
            (("org".into(), 3600, 7_200), 1),
            (("a".into(), 3600, 10_800), 9),
            (("org".into(), 3600, 10_800), 0),
            (("z".into(), 60, 7_260), 0),
        ]
        .into();
        let outcomes = tally(&jobs, &mut counts);
        let hit = |index, retry_after| Err(QuotaHit { index, retry_after });
        assert_eq!(
            outcomes,
            [
                Ok(()),
                Ok(()),
                hit(1, 10_800 - now),
                hit(1, 10_800 - now),
                Ok(()),
                hit(0, 7_320 - now),
            ]
        );
        let expected: BTreeMap<Window, i64> = [
            (("a".into(), 3600, 7_200), 1),
            (("b".into(), 3600, 7_200), 1),
            (("org".into(), 3600, 7_200), 3),
            (("a".into(), 3600, 10_800), 10),
            (("org".into(), 3600, 10_800), 1),
            (("z".into(), 60, 7_260), 0),
        ]
        .into();
        assert_eq!(counts, expected);
    }
}
