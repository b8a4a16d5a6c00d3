//! Redirect URI resolution for the authorization endpoint (RFC 6749 §3.1.2).
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

/// The parameters the authorization server adds to the redirect URI (RFC 6749 §4.1.2 and
/// §4.1.2.1, RFC 9207). A redirect URI whose query already holds one would reach the client
/// with two of it, and which of the two a client reads is anybody's guess.
pub const RESPONSE_PARAMETERS: [&str; 6] = [
    "code",
    "state",
    "error",
    "error_description",
    "error_uri",
    "iss",
];

/// The first response parameter that the query of `uri` already holds, if any.
pub fn reserved_parameter(uri: &str) -> Option<String> {
    let (_, query) = uri.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k)
        .find(|k| RESPONSE_PARAMETERS.contains(&k.as_ref()))
        .map(|k| k.into_owned())
}

/// True for `localhost` and loopback addresses (RFC 8252 §8.3).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a redirect URI for registration: absolute, no fragment, no whitespace, none of the
/// [`RESPONSE_PARAMETERS`] in its query, and a scheme a browser cannot turn into script or a
/// local file — `https`, `http` on a loopback host (RFC 8252 §7.3), or a private-use scheme
/// in reverse-domain form for native apps (RFC 8252 §7.1, e.g. `com.example.app:/cb`). The
/// error says why, for the person registering.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(uri).map_err(|_| format!("redirect URI {uri:?} is not an absolute URI"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(format!("redirect URI {uri:?} must not contain a fragment"));
    }
    if uri.chars().any(char::is_whitespace) {
        return Err(format!("redirect URI {uri:?} must not contain whitespace"));
    }
    if let Some(p) = reserved_parameter(uri) {
        return Err(format!(
            "redirect URI {uri:?} must not carry {p:?} in its query: the authorization response adds it"
        ));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?} must use https (plain http only on a loopback address)"
        )),
        s if s.contains('.') => Ok(()),
        s => Err(format!(
            "redirect URI {uri:?} must use https, http on a loopback address, or a private-use \
             scheme such as com.example.app: (RFC 8252), not {s}:"
        )),
    }
}

/// Checks a link shown to users (website, privacy policy, terms of service): `https`, or
/// `http` on a loopback host. Anything else (`javascript:`, `data:`, `file:` …) could run
/// script or reach local files from the consent page.
pub fn check_link(what: &str, uri: &str) -> Result<(), String> {
    let bad = || format!("{what} {uri:?} must be an https URL (http only on a loopback address)");
    let parsed = url::Url::parse(uri).map_err(|_| bad())?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err(bad()),
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
    fn registrable_redirect_uris() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?tenant=7",
            "http://127.0.0.1:4000/cb",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "http://app.example.com/cb",
            "https://app.example.com/cb#x",
            "https://app.example.com/cb?code=1",
            "https://app.example.com/cb?a=1&state=2",
            "https://app.example.com/cb?error=x",
            "https://app.example.com/cb?iss=x",
            "/relative",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_are_https_or_loopback_http() {
        assert!(check_link("website", "https://app.example.com/").is_ok());
        assert!(check_link("website", "http://127.0.0.1:3000/").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///x",
            "http://app.example.com/",
            "app.example.com",
        ] {
            assert!(check_link("website", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_parameters_in_a_query_are_found() {
        assert_eq!(reserved_parameter("https://a/cb"), None);
        assert_eq!(reserved_parameter("https://a/cb?x=1"), None);
        assert_eq!(
            reserved_parameter("https://a/cb?x=1&code=2"),
            Some("code".into())
        );
        assert_eq!(
            reserved_parameter("https://a/cb?%73tate=2"),
            Some("state".into())
        );
    }

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
