//! The purge: removes what is no longer live, so storage grows with what is live rather
//! than with history. `calyx purge` runs it by hand; `serve` runs it on a schedule, on one
//! node at a time (a lease in the database).

use calyx_core::audit::kind;
use calyx_core::model::PurgeReport;
use serde_json::json;

use super::{About, ManageResult, Manager};

/// The most rows one purge statement deletes: each batch is a short transaction, so that a
/// rotation or a sign-in waits behind one batch at most.
pub const PURGE_BATCH: i64 = 1_000;

/// Slack past the longest access-token lifetime before a finished family is removed, so that
/// introspection of its last access tokens still finds it.
const FAMILY_SLACK_SECS: i64 = 300;

impl Manager {
    /// Removes (or with `dry_run` counts) expired codes, dead families and their tokens,
    /// expired revocations, retired keys, and audit events past the retention.
    pub async fn purge(&self, dry_run: bool) -> ManageResult<PurgeReport> {
        let now = self.clock.now();
        let access_grace = self
            .store
            .apis()
            .await?
            .iter()
            .map(|a| a.user_token_lifetime.max(a.delegated_token_lifetime))
            .max()
            .unwrap_or(0)
            + FAMILY_SLACK_SECS;
        let report = self
            .store
            .purge(
                now,
                access_grace,
                now - self.audit_retention,
                dry_run,
                PURGE_BATCH,
            )
            .await?;
        if !dry_run && report != PurgeReport::default() {
            self.record(kind::PURGE_COMPLETED, About::default(), json!(report))
                .await?;
        }
        Ok(report)
    }
}
