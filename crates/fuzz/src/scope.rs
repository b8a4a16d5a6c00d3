//! Scopes (RFC 6749 §3.3): `scope = scope-token *( SP scope-token )`,
//! `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, and the decisions made with them.
//!
//! Input, read as UTF-8 (lossily): up to three lines, the requested scope, what the client's
//! grant allows, and what the user's account allows. Each must parse exactly when all its
//! space-separated tokens are `NQCHAR`s; the set relations are checked against a plain
//! `BTreeSet` model.

use std::collections::BTreeSet;

use calyx_core::grant::{decide_scope, decide_user_scope};
use calyx_core::scope::RESERVED_SCOPES;
use calyx_core::{ErrorCode, ScopeSet};

use crate::assert_rfc_error;

/// Parses and compares up to three scope strings; panics when a property fails.
pub fn scope(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let requested = lines.next().unwrap_or("");
    let client = lines.next().unwrap_or("");
    let account = lines.next().unwrap_or("");

    let parsed: Vec<Option<ScopeSet>> = [requested, client, account]
        .iter()
        .map(|s| check_parse(s))
        .collect();

    if let (Some(a), Some(b)) = (&parsed[0], &parsed[1]) {
        check_relations(a, b);
        let union = ScopeSet::parse(&format!("{requested} {client}")).expect("both parsed");
        assert_eq!(model(&union), &model(a) | &model(b), "union");
    }

    if let Some(allowed) = &parsed[1] {
        let requested_param = Some(requested).filter(|r| !r.is_empty());
        match decide_scope(requested_param, allowed) {
            Ok(s) => {
                assert!(s.is_subset(allowed), "{s} granted beyond {allowed}");
                match &parsed[0] {
                    Some(a) if !a.is_empty() => assert_eq!(&s, a, "a narrower request is honoured"),
                    _ => assert_eq!(&s, allowed, "no scope asked: everything allowed"),
                }
            }
            Err(e) => {
                assert_rfc_error(&e, &[ErrorCode::InvalidScope], "decide_scope");
                assert!(
                    parsed[0].as_ref().is_none_or(|a| !a.is_subset(allowed)),
                    "{requested:?} within {allowed} refused"
                );
            }
        }
    }

    if let (Some(client), Some(account)) = (&parsed[1], &parsed[2]) {
        let max: BTreeSet<String> = (&model(client) & &model(account))
            .into_iter()
            .filter(|s| !RESERVED_SCOPES.contains(&s.as_str()))
            .collect();
        for req in [None, parsed[0].as_ref()] {
            // An empty request is no request (RFC 6749 §3.2: empty means omitted).
            let asked = req.filter(|r| !r.is_empty());
            match decide_user_scope(req, client, account) {
                Ok(s) => {
                    let s = model(&s);
                    assert!(s.is_subset(&max), "user scope {s:?} beyond {max:?}");
                    match asked {
                        Some(r) => assert_eq!(s, model(r)),
                        None => {
                            assert_eq!(s, max);
                            assert!(!max.is_empty(), "{req:?}: a grant with no scope at all");
                        }
                    }
                }
                Err(e) => {
                    let (deserved, code) = match asked {
                        Some(r) => (!model(r).is_subset(&max), ErrorCode::InvalidScope),
                        None => (max.is_empty(), ErrorCode::AccessDenied),
                    };
                    assert!(deserved, "{req:?} refused with {max:?} available: {e}");
                    assert_rfc_error(&e, &[code], "decide_user_scope");
                }
            }
        }
    }
}

fn is_nqchar(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Parses `s`, checking the answer against the grammar; returns the set if accepted.
fn check_parse(s: &str) -> Option<ScopeSet> {
    let tokens: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
    let grammatical = tokens.iter().all(|t| t.bytes().all(is_nqchar));
    match ScopeSet::parse(s) {
        Ok(set) => {
            assert!(grammatical, "{s:?} accepted");
            let want: BTreeSet<String> = tokens.iter().map(|t| t.to_string()).collect();
            assert_eq!(model(&set), want, "{s:?}");
            assert_eq!(set.is_empty(), tokens.is_empty());
            for t in &tokens {
                assert!(set.contains(t));
            }
            // parse → to_string → parse is a fixed point, and the string form is canonical:
            // sorted, deduplicated, single spaces.
            let printed = set.to_string();
            let again = ScopeSet::parse(&printed).expect("a printed scope parses");
            assert_eq!(again, set, "{s:?} -> {printed:?}");
            assert_eq!(again.to_string(), printed);
            assert_eq!(printed, want.into_iter().collect::<Vec<_>>().join(" "));
            assert!(printed.bytes().all(|b| b == b' ' || is_nqchar(b)));
            // Collecting the tokens gives the same set.
            assert_eq!(set.iter().collect::<ScopeSet>(), set);
            Some(set)
        }
        Err(e) => {
            assert!(!grammatical, "{s:?} refused: {e}");
            assert_rfc_error(&e, &[ErrorCode::InvalidScope], "scope");
            None
        }
    }
}

fn model(s: &ScopeSet) -> BTreeSet<String> {
    s.iter().map(str::to_owned).collect()
}

/// Subset, difference and intersection against the model.
fn check_relations(a: &ScopeSet, b: &ScopeSet) {
    let (ma, mb) = (model(a), model(b));
    assert_eq!(a.is_subset(b), ma.is_subset(&mb));
    assert!(a.is_subset(a));
    assert_eq!(a.is_subset(b) && b.is_subset(a), a == b);
    let diff: BTreeSet<String> = a.difference(b).map(str::to_owned).collect();
    assert_eq!(diff, &ma - &mb);
    assert_eq!(diff.is_empty(), a.is_subset(b));
    let inter: ScopeSet = a.iter().filter(|t| b.contains(t)).collect();
    assert!(inter.is_subset(a) && inter.is_subset(b));
    assert_eq!(model(&inter), &ma & &mb);
    // a = (a \ b) ∪ (a ∩ b)
    assert_eq!(&diff | &model(&inter), ma);
}
