//! The secret scanner: finds any of a set of secrets in text (log lines, database files),
//! each secret labelled with what it is. Used by the secret scan after the `api` suite
//! (`crates/server/tests/secret_scan.rs`), by the CLI tests on a server's log and database, and
//! by the soak driver on the log of a whole run — hundreds of thousands of refresh tokens.
//!
//! Base64url secrets of 16 characters or more (client secrets, refresh tokens, codes, PKCE
//! verifiers) are kept in a hash set by value: such a secret in a line lies inside a maximal
//! run of base64url characters, so checking every window of its length in every run finds it
//! without a multi-pattern automaton over that many patterns. Anything else (passwords, Basic
//! credentials) is looked for as a plain substring.

use std::collections::{BTreeMap, HashMap};

/// A set of secrets to look for, each with a label `K` saying what it is.
#[derive(Debug, Clone)]
pub struct Scanner<K> {
    /// Base64url secrets, found as windows of base64url runs.
    tokens: HashMap<Vec<u8>, K>,
    /// The lengths of `tokens`.
    lengths: Vec<usize>,
    /// Anything else, found as a substring.
    other: Vec<(String, K)>,
    /// Distinct secrets per label.
    counts: BTreeMap<K, usize>,
}

impl<K> Default for Scanner<K> {
    fn default() -> Self {
        Scanner {
            tokens: HashMap::new(),
            lengths: Vec::new(),
            other: Vec::new(),
            counts: BTreeMap::new(),
        }
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl<K: Copy + Ord> Scanner<K> {
    /// A scanner for nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A scanner for every secret of `secrets` (secret → label).
    pub fn from_map(secrets: &HashMap<String, K>) -> Self {
        let mut s = Self::new();
        for (secret, kind) in secrets {
            s.add(*kind, secret);
        }
        s
    }

    /// Adds a secret (again: no effect). Panics on a secret shorter than 8 characters, which
    /// would match by chance.
    ///
    /// A secret that is not one base64url run but holds a run of 32 characters or more (a
    /// refresh token, `{family}.{generation}.{secret}.{tag}`, holds its 43-character secret)
    /// is looked for by that run: a line holding the secret holds the run, and runs are found
    /// by hashing, where a substring search of the whole log per secret takes hours for the
    /// hundreds of thousands of refresh tokens a load run makes.
    pub fn add(&mut self, kind: K, secret: &str) {
        let longest = secret
            .split(|c: char| !is_b64url(c as u8) || !c.is_ascii())
            .max_by_key(|run| run.len())
            .unwrap_or(secret);
        let secret = if longest.len() >= 32 { longest } else { secret };
        let b = secret.as_bytes();
        if b.len() >= 16 && b.iter().all(|&c| is_b64url(c)) {
            if self.tokens.insert(b.to_vec(), kind).is_none() {
                *self.counts.entry(kind).or_default() += 1;
            }
            if !self.lengths.contains(&b.len()) {
                self.lengths.push(b.len());
            }
        } else if !self.other.iter().any(|(o, _)| o == secret) {
            assert!(secret.len() >= 8, "a secret too short to search for");
            self.other.push((secret.to_owned(), kind));
            *self.counts.entry(kind).or_default() += 1;
        }
    }

    /// How many distinct secrets it looks for.
    pub fn len(&self) -> usize {
        self.tokens.len() + self.other.len()
    }

    /// Whether it looks for nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct secrets per label.
    pub fn counts(&self) -> &BTreeMap<K, usize> {
        &self.counts
    }

    /// Every secret in `line`, with its label.
    fn matches<'a>(&'a self, line: &[u8]) -> Vec<(&'a [u8], K)> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < line.len() {
            if !is_b64url(line[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && is_b64url(line[i]) {
                i += 1;
            }
            let run = &line[start..i];
            for &n in &self.lengths {
                for w in run.windows(n) {
                    if let Some((secret, kind)) = self.tokens.get_key_value(w) {
                        found.push((secret.as_slice(), *kind));
                    }
                }
            }
        }
        if !self.other.is_empty() {
            let text = String::from_utf8_lossy(line);
            for (s, kind) in &self.other {
                if text.contains(s.as_str()) {
                    found.push((s.as_bytes(), *kind));
                }
            }
        }
        found
    }

    /// The labels of the secrets `line` holds (one per occurrence).
    pub fn found_in(&self, line: &[u8]) -> Vec<K> {
        self.matches(line).into_iter().map(|(_, k)| k).collect()
    }

    /// (line number, label, first four characters) of every line of `text` holding a secret.
    pub fn leaks(&self, text: impl AsRef<[u8]>) -> Vec<(usize, K, String)> {
        text.as_ref()
            .split(|&b| b == b'\n')
            .enumerate()
            .filter_map(|(n, line)| {
                let (secret, kind) = self.matches(line).into_iter().next()?;
                let prefix = String::from_utf8_lossy(secret).chars().take(4).collect();
                Some((n + 1, kind, prefix))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_is_found_by_its_secret_part_and_a_family_id_alone_is_not() {
        let secret = "S".repeat(43);
        let token = format!("fam_0123456789abcdefABCDEF.7.{secret}.{}", "T".repeat(22));
        let mut s = Scanner::new();
        s.add("refresh", &token);
        assert_eq!(
            s.found_in(format!("rt={token}").as_bytes()),
            vec!["refresh"]
        );
        assert_eq!(
            s.found_in(format!("x {secret} y").as_bytes()),
            vec!["refresh"]
        );
        assert!(s.found_in(b"sid=fam_0123456789abcdefABCDEF").is_empty());
        // A password with no long run is still a substring.
        s.add("password", "pass word!");
        assert_eq!(s.found_in(b"said pass word! loudly"), vec!["password"]);
    }
}
