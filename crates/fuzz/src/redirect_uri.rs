//! Redirect URI resolution (RFC 6749 §3.1.2): exact matching, nothing normalized.
//!
//! Input, read as UTF-8 (lossily, as the server's form decoding does): the first line is the
//! `redirect_uri` parameter (empty: not sent), every further line a registered URI.

use calyx_core::redirect::{resolve, Redirect, RedirectError};

/// Resolves one redirect URI against a registration; panics when a property fails.
pub fn redirect_uri(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let given = lines.next().filter(|g| !g.is_empty());
    let registered: Vec<String> = lines.map(str::to_owned).collect();

    let got = resolve(given, &registered);
    match given {
        Some(uri) => check_given(uri, &registered, &got),
        None => match registered.as_slice() {
            [only] => assert_eq!(
                got,
                Ok(Redirect {
                    uri: only.clone(),
                    given: false
                })
            ),
            _ => assert_eq!(got, Err(RedirectError::Ambiguous)),
        },
    }

    // Every registered URI (without a fragment) is accepted when presented as it is, and, if it
    // has no query, with any query added.
    for r in registered
        .iter()
        .filter(|r| !r.is_empty() && !r.contains('#'))
    {
        assert!(
            resolve(Some(r), &registered).is_ok_and(|x| x.uri == *r && x.given),
            "registered {r:?} does not match itself"
        );
        assert!(
            resolve(Some(r), std::slice::from_ref(r)).is_ok(),
            "{r:?} alone does not match itself"
        );
        if !r.contains('?') {
            let query = given
                .and_then(|g| g.split_once('?'))
                .map_or("code=x", |(_, q)| q)
                .replace('#', "");
            let with_query = format!("{r}?{query}");
            assert!(
                resolve(Some(&with_query), &registered).is_ok_and(|x| x.uri == with_query),
                "{with_query:?}: a query on registered {r:?} is refused"
            );
        }
    }
    // The presented URI, registered on its own, matches itself.
    if let Some(uri) = given.filter(|g| !g.contains('#')) {
        let own = [uri.to_owned()];
        assert!(
            resolve(Some(uri), &own).is_ok(),
            "{uri:?} does not match its own registration"
        );
    }
}

/// A presented URI is accepted exactly when it, or it without its query, is registered
/// byte for byte; a fragment is always refused.
fn check_given(uri: &str, registered: &[String], got: &Result<Redirect, RedirectError>) {
    if uri.contains('#') {
        assert_eq!(*got, Err(RedirectError::Fragment), "{uri:?}");
        return;
    }
    let base = uri.split_once('?').map_or(uri, |(b, _)| b);
    let registered_exactly = registered.iter().any(|r| r == uri || r == base);
    match got {
        Ok(r) => {
            assert!(
                registered_exactly,
                "{uri:?} accepted against {registered:?}"
            );
            assert_eq!(r.uri, uri, "the query must be kept for the way back");
            assert!(r.given);
        }
        Err(e) => {
            assert_eq!(*e, RedirectError::NotRegistered, "{uri:?}");
            assert!(
                !registered_exactly,
                "{uri:?} refused against {registered:?}"
            );
        }
    }
    // Registering unrelated URIs besides never changes the answer.
    let mut more = registered.to_vec();
    more.push(format!("{base}/other"));
    more.push(format!("x{uri}"));
    assert_eq!(resolve(Some(uri), &more).is_ok(), got.is_ok(), "{uri:?}");
}
