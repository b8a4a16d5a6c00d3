//! Scopes (RFC 6749 §3.3): a space-delimited, order-insensitive set of case-sensitive tokens.

use std::collections::BTreeSet;
use std::fmt;

use crate::OAuthError;

/// The scope names every API has implicitly; they let an organization's client manage its
/// users (`/v2/users`) and are never copied into user tokens.
pub const RESERVED_SCOPES: [&str; 2] = ["users:write", "users:authenticate"];

/// A set of scope tokens. Kept sorted so that its string form is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string. Runs of spaces are tolerated; a token with a
    /// character outside RFC 6749's `NQCHAR` (%x21 / %x23-5B / %x5D-7E) is refused.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_nqchar) {
                return Err(OAuthError::invalid_scope(
                    "scope tokens may only contain printable ASCII other than double quotes and backslashes",
                ));
            }
            set.insert(token.to_owned());
        }
        Ok(ScopeSet(set))
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// True when the set has this token.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// The tokens of `self` that are not in `other`, sorted.
    pub fn difference<'a>(&'a self, other: &'a ScopeSet) -> impl Iterator<Item = &'a str> {
        self.0.difference(&other.0).map(String::as_str)
    }

    /// The set less the reserved user-management scopes: the most a user may ever hold of it.
    pub fn without_reserved(&self) -> ScopeSet {
        self.iter()
            .filter(|s| !RESERVED_SCOPES.contains(s))
            .collect()
    }

    /// The tokens in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().map(Into::into).collect())
    }
}

fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_dedups() {
        let s = ScopeSet::parse("write:a  read:a read:a").unwrap();
        assert_eq!(s.to_string(), "read:a write:a");
    }

    #[test]
    fn refuses_quotes_and_backslashes() {
        for bad in ["a\"b", "a\\b", "caf\u{e9}", "tab\there"] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn subset_and_difference() {
        let allowed = ScopeSet::parse("a b c").unwrap();
        let asked = ScopeSet::parse("a d").unwrap();
        assert!(!asked.is_subset(&allowed));
        assert_eq!(asked.difference(&allowed).collect::<Vec<_>>(), ["d"]);
    }
}
