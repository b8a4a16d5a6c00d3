//! Group commit for refresh-token rotation.
//!
//! Every rotation must be committed before its response, and with `synchronous=FULL` a commit
//! is an fsync. One writer task takes every rotation waiting at that moment (up to
//! [`MAX_BATCH`]), runs each in the same transaction, commits once, then answers them all: the
//! fsync and the transaction overhead are shared, and each caller still hears back only after
//! its rotation is durable. Outcomes are exactly those of running the rotations one after
//! another in arrival order — two presentations of one token in a batch give one `Rotated`
//! and one `Reused`, as they would sequentially. If the transaction fails, every caller in the
//! batch gets the error and nothing of the batch is written.

use calyx_core::model::{RefreshToken, RotateOutcome};
use calyx_core::store::{StoreError, StoreResult};
use tokio::sync::oneshot;

/// The most rotations committed together.
pub(crate) const MAX_BATCH: usize = 256;

/// One rotation waiting for the writer.
pub(crate) struct RotateJob {
    pub old_hash: Vec<u8>,
    pub successor: RefreshToken,
    pub now: i64,
    pub leeway: i64,
    pub reply: oneshot::Sender<StoreResult<RotateOutcome>>,
}

/// Answers every job of a batch: its own outcome, or the batch's error.
pub(crate) fn reply_all(jobs: Vec<RotateJob>, outcomes: StoreResult<Vec<RotateOutcome>>) {
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

/// The error when the writer task has stopped (the runtime is shutting down).
pub(crate) fn writer_gone() -> StoreError {
    StoreError::Unavailable("the rotation writer has stopped".into())
}
