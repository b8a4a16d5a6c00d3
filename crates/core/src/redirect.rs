//! Redirect URI resolution for the authorization endpoint (RFC 6749 §3.1.2, SPEC §4.2).
//!
//! The request's URI, with its query component removed, must equal a registered URI exactly
//! (scheme, host, port, path — no normalization, no prefix or wildcard matching). Its query is
//! kept for the way back. A registered URI that has a query itself (RFC 6749 §3.1.2 allows one)
//! matches only when the request's URI equals it whole. A fragment is refused. When the
//! request names none, the client must have exactly one registered.

/// Why a redirect URI cannot be used. These are shown on an error page, never redirected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectError {
    /// The URI has a fragment (RFC 6749 §3.1.2).
    Fragment,
    /// The URI, without its query, is not registered for the client.
    NotRegistered,
    /// None given, and the client has more than one (or none) registered.
    Ambiguous,
}

impl RedirectError {
    /// A description for the error page.
    pub fn description(self) -> &'static str {
        match self {
            RedirectError::Fragment => "The redirect_uri must not contain a fragment (#...).",
            RedirectError::NotRegistered => "The redirect_uri is not registered for this application.",
            RedirectError::Ambiguous => {
                "The redirect_uri is required: this application has several (or no) registered redirect URIs."
            }
        }
    }
}

/// A usable redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Where to send the user back: the request's URI, query included.
    pub uri: String,
    /// True when the request named it; the token request must then repeat it exactly.
    pub given: bool,
}

/// Resolves the `redirect_uri` parameter against the registered URIs.
pub fn resolve(given: Option<&str>, registered: &[String]) -> Result<Redirect, RedirectError> {
    match given {
        Some(uri) => {
            if uri.contains('#') {
                return Err(RedirectError::Fragment);
            }
            let without_query = uri.split_once('?').map_or(uri, |(base, _)| base);
            if registered.iter().any(|r| r == uri || r == without_query) {
                Ok(Redirect {
                    uri: uri.to_owned(),
                    given: true,
                })
            } else {
                Err(RedirectError::NotRegistered)
            }
        }
        None => match registered {
            [only] => Ok(Redirect {
                uri: only.clone(),
                given: false,
            }),
            _ => Err(RedirectError::Ambiguous),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (
        Option<&'a str>,
        &'a [String],
        Result<&'a str, RedirectError>,
    );

    #[test]
    fn table_of_redirect_cases() {
        let reg = vec!["https://app.example.com/cb".to_owned()];
        let two = vec![
            "https://a.example/cb".to_owned(),
            "https://b.example/cb".to_owned(),
        ];
        use RedirectError::*;
        let cases: &[Case] = &[
            (
                Some("https://app.example.com/cb"),
                &reg,
                Ok("https://app.example.com/cb"),
            ),
            (
                Some("https://app.example.com/cb?x=1&y=2"),
                &reg,
                Ok("https://app.example.com/cb?x=1&y=2"),
            ),
            (Some("https://app.example.com/cb#f"), &reg, Err(Fragment)),
            (
                Some("https://app.example.com/cb/"),
                &reg,
                Err(NotRegistered),
            ),
            (
                Some("https://app.example.com/cb2"),
                &reg,
                Err(NotRegistered),
            ),
            (Some("https://APP.example.com/cb"), &reg, Err(NotRegistered)),
            (Some("http://app.example.com/cb"), &reg, Err(NotRegistered)),
            (
                Some("https://app.example.com:443/cb"),
                &reg,
                Err(NotRegistered),
            ),
            (
                Some("https://app.example.com.evil/cb"),
                &reg,
                Err(NotRegistered),
            ),
            (None, &reg, Ok("https://app.example.com/cb")),
            (None, &two, Err(Ambiguous)),
            (None, &[], Err(Ambiguous)),
        ];
        for (given, registered, want) in cases {
            let got = resolve(*given, registered).map(|r| r.uri);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{given:?}");
        }
    }

    /// Found by the `redirect_uri` fuzz target: a URI registered with a query could be
    /// registered but never matched, because only the request's URI lost its query.
    #[test]
    fn a_registered_uri_with_a_query_matches_only_itself() {
        let reg = vec!["https://app.example.com/cb?tenant=1".to_owned()];
        let ok = |u: &str| resolve(Some(u), &reg).map(|r| r.uri);
        assert_eq!(
            ok("https://app.example.com/cb?tenant=1").as_deref(),
            Ok("https://app.example.com/cb?tenant=1")
        );
        for other in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?tenant=2",
            "https://app.example.com/cb?tenant=1&x=2",
        ] {
            assert_eq!(ok(other), Err(RedirectError::NotRegistered), "{other}");
        }
    }
}
