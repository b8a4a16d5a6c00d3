//! `calyx audit list | show`: the audit log, oldest first — who changed what (never a
//! secret), and the security events the server saw.

use calyx_core::audit::{AuditEvent, AuditFilter};
use calyx_server::manage::Manager;

use crate::output::{opt, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Audit events, oldest first; every option narrows the list.
    List {
        /// An event type (client.disabled), a family of them (security.*) or *.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Events about this organization.
        #[arg(long)]
        org: Option<String>,
        /// Events about this client.
        #[arg(long)]
        client: Option<String>,
        /// Events about this user.
        #[arg(long)]
        user: Option<String>,
        /// Events at or after this time: Unix seconds, or -<N>h / -<N>d before now.
        #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
        since: Option<Time>,
        /// Events before this time: Unix seconds, or -<N>h / -<N>d before now.
        #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
        until: Option<Time>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One audit event.
    Show {
        /// The event id (`evt_...`).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// A time as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// Unix seconds.
    At(i64),
    /// This many seconds before now.
    Ago(i64),
}

impl Time {
    /// Unix seconds, `now` being the present.
    fn resolve(self, now: i64) -> i64 {
        match self {
            Time::At(t) => t,
            Time::Ago(s) => now.saturating_sub(s),
        }
    }
}

/// `1764496800` (Unix seconds), `-12h` or `-7d`.
fn parse_time(s: &str) -> Result<Time, String> {
    let bad = || format!("expected Unix seconds, -<N>h or -<N>d, got {s:?}");
    if let Some(rel) = s.strip_prefix('-') {
        let (n, unit) = rel.split_at(rel.len().saturating_sub(1));
        let per = match unit {
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let n: u32 = n.parse().map_err(|_| bad())?;
        return Ok(Time::Ago(i64::from(n) * per));
    }
    s.parse().map(Time::At).map_err(|_| bad())
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::List {
            kind,
            org,
            client,
            user,
            since,
            until,
            json,
        } => {
            let now = m.clock.now();
            let filter = AuditFilter {
                kind,
                org_id: org,
                client_id: client,
                user_id: user,
                since: since.map(|t| t.resolve(now)),
                until: until.map(|t| t.resolve(now)),
            };
            let filter = &filter;
            super::list(
                json,
                &["ID", "AT", "TYPE", "ACTOR", "TARGET", "DETAIL"],
                |e: &AuditEvent| {
                    vec![
                        e.id.clone(),
                        e.at.to_string(),
                        e.kind.clone(),
                        e.actor.clone(),
                        opt(&e.target),
                        e.detail.to_string(),
                    ]
                },
                |after, limit| async move { m.list_audit(filter, after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => show(json, &m.audit_event(&id).await?)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_or_hours_or_days_ago() {
        assert_eq!(parse_time("1764496800"), Ok(Time::At(1_764_496_800)));
        assert_eq!(parse_time("-12h"), Ok(Time::Ago(43_200)));
        assert_eq!(parse_time("-7d"), Ok(Time::Ago(604_800)));
        assert_eq!(parse_time("-7d").map(|t| t.resolve(1_000_000)), Ok(395_200));
        for bad in [
            "",
            "-",
            "-h",
            "-3w",
            "2026-11-30T10:00:00Z",
            "-99999999999d",
            "--5h",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
