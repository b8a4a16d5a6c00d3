//! The console's maintenance: the purge of what is no longer live (expired codes, dead
//! sign-ins and their tokens, expired revocations, retired keys, old audit events and
//! deliveries), counted first with a dry run or run at once.
//!
//! A dry run changes nothing, so its counts are the answer to its POST; a purge is a change,
//! so it is answered with a 303 whose address carries the counts, which the page then shows.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use calyx_core::model::PurgeReport;
use serde::Deserialize;

use super::{Desk, Section};
use crate::pages::{Chrome, Posted};

/// The counts of a purge as the page shows them: `(what, how many)`.
fn counts(r: &PurgeReport) -> Vec<(&'static str, u64)> {
    vec![
        ("Expired authorization codes", r.codes),
        ("Revoked or expired sign-ins (grant families)", r.families),
        ("Expired refresh tokens", r.refresh_tokens),
        ("Expired token revocations", r.revoked_jtis),
        (
            "Expired proof and assertion ids, pushed requests",
            r.used_ids,
        ),
        ("Retired signing keys", r.keys),
        ("Audit events past the retention", r.audit_events),
        ("Finished webhook deliveries", r.deliveries),
    ]
}

/// `?purged=1&codes=..`: the counts of the purge just run.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PurgedQuery {
    purged: Option<u8>,
    codes: Option<u64>,
    families: Option<u64>,
    refresh_tokens: Option<u64>,
    revoked_jtis: Option<u64>,
    used_ids: Option<u64>,
    keys: Option<u64>,
    audit_events: Option<u64>,
    deliveries: Option<u64>,
}

#[derive(Template)]
#[template(path = "console/maintenance.html")]
struct MaintenancePage<'a> {
    chrome: &'a Chrome,
    /// What the counts are of: `"would"` (a dry run) or `"did"`; empty when there are none.
    report_of: &'static str,
    counts: Vec<(&'static str, u64)>,
}

fn show(desk: Desk, report_of: &'static str, report: Option<&PurgeReport>) -> Response {
    let desk = desk.at(Section::Maintenance);
    desk.show(
        StatusCode::OK,
        &MaintenancePage {
            chrome: &desk.chrome,
            report_of,
            counts: report.map(counts).unwrap_or_default(),
        },
    )
}

/// The maintenance page, with the counts of the purge just run when there was one.
pub(super) async fn page(desk: Desk, Query(q): Query<PurgedQuery>) -> Response {
    if q.purged.is_none() {
        return show(desk, "", None);
    }
    let report = PurgeReport {
        codes: q.codes.unwrap_or(0),
        families: q.families.unwrap_or(0),
        refresh_tokens: q.refresh_tokens.unwrap_or(0),
        revoked_jtis: q.revoked_jtis.unwrap_or(0),
        keys: q.keys.unwrap_or(0),
        audit_events: q.audit_events.unwrap_or(0),
        deliveries: q.deliveries.unwrap_or(0),
        used_ids: q.used_ids.unwrap_or(0),
    };
    show(desk, "did", Some(&report))
}

/// Purges (or, with `dry_run`, counts what a purge would remove).
pub(super) async fn purge(desk: Desk, posted: Posted) -> Response {
    let dry_run = !posted.get("dry_run").is_empty();
    let report = or_page!(desk, desk.manager.purge(dry_run).await);
    if dry_run {
        return show(desk, "would", Some(&report));
    }
    let r = report;
    let to = format!(
        "/console/maintenance?purged=1&codes={}&families={}&refresh_tokens={}&revoked_jtis={}&keys={}&audit_events={}&deliveries={}&used_ids={}",
        r.codes, r.families, r.refresh_tokens, r.revoked_jtis, r.keys, r.audit_events, r.deliveries,
        r.used_ids
    );
    desk.done(&to).await
}
