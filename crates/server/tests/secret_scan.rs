//! The secret scan, run by `scripts/test` after the whole suite (on SQLite and PostgreSQL):
//! every client secret, refresh token, code and password that crossed the wire in the `api`
//! tests' recorded traffic is looked for in every line the servers logged, at trace level.
//! The recording, the extraction and the scanner are calyx-testkit's (`traffic`, `scan`).

use std::collections::HashMap;

use calyx_testkit::secret_scan_dir;
use calyx_testkit::traffic::{self, secrets_in, Kind};
use calyx_testkit::Scanner;

#[test]
#[ignore = "needs the api suite's recordings: scripts/test runs it after the whole suite"]
fn no_secret_that_crossed_the_wire_appears_in_a_server_log() {
    let dir = secret_scan_dir!();
    let streams = traffic::recorded_streams(&dir);
    assert!(
        !streams.is_empty(),
        "no recorded traffic in {}: run the api tests first",
        dir.display()
    );
    let mut secrets: HashMap<String, Kind> = HashMap::new();
    for stream in &streams {
        for (kind, value) in secrets_in(stream) {
            secrets.insert(value, kind);
        }
    }
    let mut per_kind: HashMap<Kind, usize> = HashMap::new();
    for kind in secrets.values() {
        *per_kind.entry(*kind).or_default() += 1;
    }
    eprintln!(
        "{} connections recorded; distinct secrets: {per_kind:?}",
        streams.len() / 2
    );
    for kind in [
        Kind::ClientSecret,
        Kind::RefreshToken,
        Kind::Code,
        Kind::Password,
    ] {
        assert!(
            per_kind.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind:?} found in the traffic: the scan would prove nothing"
        );
    }

    let scanner = Scanner::from_map(&secrets);
    let logs = traffic::files_named(&dir, "server-");
    assert!(!logs.is_empty(), "no server logs were captured");
    let (mut lines, mut leaks) = (0usize, Vec::new());
    for path in &logs {
        let text = std::fs::read_to_string(path).unwrap();
        lines += text.lines().count();
        for (line, kind, prefix) in scanner.leaks(&text) {
            leaks.push(format!("{}:{line}: a {kind:?} ({prefix}…)", path.display()));
        }
    }
    eprintln!("{lines} log lines from {} files scanned", logs.len());
    assert!(lines > 1000, "too few log lines ({lines}) to mean anything");
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn a_planted_secret_is_reported_with_its_line() {
    let secrets = HashMap::from([
        ("rt-0123456789abcdef".to_owned(), Kind::RefreshToken),
        ("pw-0123456789abcdef".to_owned(), Kind::Password),
    ]);
    let log =
        "INFO token issued client_id=abc\nDEBUG body=refresh_token=rt-0123456789abcdef\nINFO ok";
    let leaks = Scanner::from_map(&secrets).leaks(log);
    assert_eq!(leaks, vec![(2, Kind::RefreshToken, "rt-0".to_owned())]);
    assert!(Scanner::from_map(&secrets)
        .leaks("nothing here\n")
        .is_empty());
}

#[test]
fn each_kind_of_secret_is_found_wherever_it_travels() {
    let req = "POST /oauth/token HTTP/1.1\r\nAuthorization: Basic YXBwOnMlMkJlY3JldC12YWx1ZQ==\r\n\r\n\
                   grant_type=refresh_token&refresh_token=rt-0123456789&client_secret=cs%2B0123456789";
    let resp =
        "HTTP/1.1 303 See Other\r\nlocation: https://app/cb?code=code-0123456789&state=s\r\n\r\n\
                    {\"refresh_token\":\"rt-abcdefghij\",\"password\":\"pw-abcdefghij\"}";
    let mut found = secrets_in(req.as_bytes());
    found.extend(secrets_in(resp.as_bytes()));
    for want in [
        (Kind::ClientSecret, "s+ecret-value"),
        (Kind::RefreshToken, "rt-0123456789"),
        (Kind::ClientSecret, "cs+0123456789"),
        (Kind::Code, "code-0123456789"),
        (Kind::RefreshToken, "rt-abcdefghij"),
        (Kind::Password, "pw-abcdefghij"),
    ] {
        assert!(
            found.contains(&(want.0, want.1.to_owned())),
            "{want:?} not in {found:?}"
        );
    }
    // Look-alikes are not secrets.
    assert!(
        secrets_in(b"GET /authorize?response_type=code&code_challenge=abcdefghijkl").is_empty()
    );
}

/// The soak driver's case (`crates/testkit/src/bin/soak.rs`): secrets inside longer runs of
/// base64url text, and Basic credentials, which are not base64url.
#[test]
fn secrets_are_found_inside_longer_text_and_not_elsewhere() {
    let mut s = Scanner::default();
    s.add(
        "refresh token",
        "abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE",
    );
    s.add("Basic credential", "aWQ6c2VjcmV0+/=");
    assert!(s
        .found_in(b"x=\"zzabcdefghijklmnopqrstuvwxyz0123456789-_ABCDEzz\"")
        .contains(&"refresh token"));
    assert!(s
        .found_in(b"auth: Basic aWQ6c2VjcmV0+/=")
        .contains(&"Basic credential"));
    assert!(s
        .found_in(b"abcdefghijklmnopqrstuvwxyz0123456789-_ABCD.E")
        .is_empty());
}
