//! Reading the audit log (writing is [`Manager::record`]).

use calyx_core::audit::{AuditEvent, AuditFilter};

use super::{invalid, not_found, probe, Listing, ManageResult, Manager};

impl Manager {
    /// A page of audit events, oldest first, narrowed by `filter`.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<&str>,
        limit: i64,
    ) -> ManageResult<Listing<AuditEvent>> {
        if let Some(k) = &filter.kind {
            if !calyx_core::audit::kind::is_pattern(k) {
                return invalid(format!("unknown event type {k:?}"));
            }
        }
        let rows = self.store.list_audit(filter, probe(after, limit)).await?;
        Ok(Listing::from_rows(rows, limit, |e| e.id.clone(), |e| e))
    }

    /// One audit event.
    pub async fn audit_event(&self, id: &str) -> ManageResult<AuditEvent> {
        match self.store.audit_event(id).await? {
            Some(e) => Ok(e),
            None => not_found(format!("no audit event with id {id}")),
        }
    }
}
