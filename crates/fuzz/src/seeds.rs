//! Hand-written seed inputs: realistic requests, URIs, scopes and tokens, plus the edges each
//! rule has. `tests/replay.rs` runs them on every `cargo test`, and
//! `cargo test -p calyx-fuzz --test replay -- --ignored write_seeds` writes them to
//! `fuzz/corpus/<target>/seed-*` for the fuzzer to start from (after `cargo fuzz cmin` the
//! corpus may have dropped them, hence the replay).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::guard_jwt::{kid, server_header, sign_claims, sign_raw, AUDIENCE, ISSUER};

/// The seeds of `target` as (file name, bytes).
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let list = match target {
        "token_request" => token_request(),
        "redirect_uri" => text(REDIRECT_URI),
        "scope" => text(SCOPE),
        "guard_jwt" => guard_jwt(),
        other => panic!("no target {other:?}"),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, (name, bytes))| (format!("seed-{i:02}-{name}"), bytes))
        .collect()
}

fn text(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.as_bytes().to_vec()))
        .collect()
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", STANDARD.encode(credentials))
}

/// Mode digit (bit 0: JSON, bit 1: header line first), then header line, then body.
fn token_request() -> Vec<(String, Vec<u8>)> {
    let rfc = basic("s6BhdRkqt3:gX1fBat3bV"); // RFC 6749 §2.3.1's example client
    let list = [
        ("cc-form", "0grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=7Fjfp0ZBr1KtDRbnfVdmIw&audience=https%3A%2F%2Fapi.calyx.test%2F".to_owned()),
        ("cc-form-scope", "0grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=x&audience=urn%3Acalyx%3Abilling&scope=invoices%3Aread".to_owned()),
        ("cc-form-resource", "0grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=x&resource=https%3A%2F%2Fapi.calyx.test%2F&scope=read%3Aconsumers+write%3Aconsumers".to_owned()),
        ("cc-json", r#"1{"client_id":"s6BhdRkqt3","client_secret":"7Fjfp0ZBr1KtDRbnfVdmIw","audience":"https://api.calyx.test/","grant_type":"client_credentials"}"#.to_owned()),
        ("cc-json-null", r#"1{"grant_type":"client_credentials","client_id":"s6BhdRkqt3","client_secret":null,"scope":"read:consumers"}"#.to_owned()),
        ("code-basic", format!("2{rfc}\ngrant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")),
        ("refresh-basic-json", format!("3{rfc}\n{{\"grant_type\":\"refresh_token\",\"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\",\"scope\":\"read:consumers\"}}")),
        ("basic-urlencoded", format!("2{}\ngrant_type=client_credentials&client_id=my%3Aapp+1", basic("my%3Aapp+1:p%40ss%2Bword"))),
        ("basic-lowercase-scheme", format!("2basic  {}  \ngrant_type=client_credentials", STANDARD.encode("a:b"))),
        ("basic-and-post", format!("2{rfc}\ngrant_type=client_credentials&client_secret=gX1fBat3bV")),
        ("basic-other-id", format!("2{rfc}\nclient_id=other")),
        ("bearer", "2Bearer mF_9.B5f-4.1JqM\ngrant_type=client_credentials".to_owned()),
        ("basic-no-colon", format!("2{}\n", basic("s6BhdRkqt3"))),
        ("public-pkce", "0grant_type=authorization_code&client_id=pub_app&code=abc&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&redirect_uri=com.example.app%3A%2Fcb".to_owned()),
        ("token-exchange", "0grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&client_id=s6BhdRkqt3&client_secret=x&subject_token=eyJ.eyJ.sig&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token".to_owned()),
        ("repeated", "0grant_type=client_credentials&scope=a&scope=b".to_owned()),
        ("empty-then-value", "0scope=&scope=read".to_owned()),
        ("nul", "0client_id=abc%00def".to_owned()),
        ("json-repeated", r#"1{"scope":"a","scope":"b"}"#.to_owned()),
        ("json-number", r#"1{"client_id":"a","expires":3600}"#.to_owned()),
        ("json-unicode", r#"1{"client_id":"caf\u00e9 \"q\"","client_secret":"s\u0000"}"#.to_owned()),
        ("json-trailing", r#"1{"a":"b"} {}"#.to_owned()),
        ("audience-and-resource", "0grant_type=client_credentials&client_id=a&audience=x%3Ay&resource=x%3Az".to_owned()),
        ("resource-fragment", "0client_id=a&resource=https%3A%2F%2Fapi%2F%23f".to_owned()),
        ("unknown-audience", "0grant_type=client_credentials&client_id=a&audience=https%3A%2F%2Fnope%2F&scope=admin".to_owned()),
        ("secret-without-id", "0client_secret=x".to_owned()),
        ("empty", "0".to_owned()),
    ];
    list.into_iter()
        .map(|(n, s)| (n.to_owned(), s.into_bytes()))
        .collect()
}

/// First line: the `redirect_uri` parameter (empty: none); further lines: registered URIs.
const REDIRECT_URI: &[(&str, &str)] = &[
    (
        "exact",
        "https://app.example.com/cb\nhttps://app.example.com/cb",
    ),
    (
        "query-kept",
        "https://app.example.com/cb?x=1&y=2\nhttps://other.example/cb\nhttps://app.example.com/cb",
    ),
    (
        "fragment",
        "https://app.example.com/cb#frag\nhttps://app.example.com/cb",
    ),
    ("none-one", "\nhttps://app.example.com/cb"),
    ("none-two", "\nhttps://a.example/cb\nhttps://b.example/cb"),
    ("none-none", ""),
    (
        "host-case",
        "https://APP.example.com/cb\nhttps://app.example.com/cb",
    ),
    (
        "default-port",
        "https://app.example.com:443/cb\nhttps://app.example.com/cb",
    ),
    (
        "trailing-slash",
        "https://app.example.com/cb/\nhttps://app.example.com/cb",
    ),
    (
        "suffix-host",
        "https://app.example.com.evil/cb\nhttps://app.example.com/cb",
    ),
    (
        "loopback",
        "http://127.0.0.1:8080/callback?state=x\nhttp://127.0.0.1:8080/callback",
    ),
    ("ipv6", "http://[::1]:4000/cb\nhttp://[::1]:4000/cb"),
    (
        "native-scheme",
        "com.example.app:/oauth2redirect\ncom.example.app:/oauth2redirect",
    ),
    (
        "percent",
        "https://app.example.com/c%62\nhttps://app.example.com/cb",
    ),
    (
        "registered-query",
        "https://app.example.com/cb?tenant=1\nhttps://app.example.com/cb?tenant=1",
    ),
    (
        "unicode",
        "https://bücher.example/cb\nhttps://xn--bcher-kva.example/cb",
    ),
];

/// Lines: requested scope, what the client's grant allows, what the account allows.
const SCOPE: &[(&str, &str)] = &[
    ("narrow", "read:consumers\nread:consumers write:consumers\nread:consumers"),
    ("oidc", "openid profile email\nopenid profile email offline_access\nopenid profile"),
    ("seed-docs", "Standard\nStandard OrgAdmin users:write\nStandard StandardEditFinancialData users:write"),
    ("reserved", "users:write users:authenticate\nusers:write users:authenticate read\nusers:write read"),
    ("spaces", "  b   a  \na b c\nc b"),
    ("too-wide", "read admin\nread write\nread admin"),
    ("none-asked", "\nread write\nwrite"),
    ("blank-asked", " \nread\nwrite"),
    ("url-scope", "https://api.calyx.test/read:all\nhttps://api.calyx.test/read:all\nhttps://api.calyx.test/read:all"),
    ("quote", "a\"b\nx\ny"),
    ("backslash", "a\\b\nx\ny"),
    ("non-ascii", "caf\u{e9}\ncafe\ncafe"),
    ("tab", "tab\there\na\na"),
    ("edge-chars", "! # [ ] ~ %\n! #\n~"),
];

/// Mode digit (`0` token, `1` claims, `2` header line then claims), then the input.
fn guard_jwt() -> Vec<(String, Vec<u8>)> {
    let claims = |extra: Value| {
        let mut c = json!({
            "iss": ISSUER,
            "sub": "k3J9dVt0qW2mXbYc@clients",
            "aud": AUDIENCE,
            "exp": 4_102_444_800_i64,
            "iat": 1_700_000_000,
            "jti": "Zm9vYmFyYmF6cXV4cXV1eA",
            "client_id": "k3J9dVt0qW2mXbYc",
            "scope": "read:consumers write:consumers",
            "org_id": "org_3hTq8sPz0aYk1vX2",
        });
        for (k, v) in extra.as_object().expect("an object") {
            c[k] = v.clone();
        }
        c
    };
    let token = |c: Value| format!("0{}", sign_claims(&c)).into_bytes();
    let json_in = |c: Value| format!("1{c}").into_bytes();
    let header_in = |h: Value, c: Value| format!("2{h}\n{c}").into_bytes();
    let good = sign_claims(&claims(json!({})));
    let (head, rest) = good.split_once('.').expect("a JWS");
    let tampered = format!("0{head}.{}", rest.replacen('A', "B", 1));
    let k = kid();
    let list: Vec<(&str, Vec<u8>)> = vec![
        ("token-good", token(claims(json!({})))),
        ("token-user", token(claims(json!({"sub": "usr_8fK2", "sid": "fam_x1", "scope": "Standard"})))),
        ("token-expired", token(claims(json!({"exp": 1_000_000_000})))),
        ("token-wrong-aud", token(claims(json!({"aud": "https://other.calyx.test/"})))),
        ("token-wrong-iss", token(claims(json!({"iss": "https://evil.calyx.test"})))),
        ("token-tampered", tampered.into_bytes()),
        ("token-alg-none", format!("0{}.{}.", STANDARD.encode(r#"{"alg":"none","typ":"at+jwt"}"#), rest.split('.').next().unwrap_or("")).into_bytes()),
        ("token-garbage", b"0eyJ.eyJ.sig".to_vec()),
        ("claims-good", json_in(claims(json!({})))),
        ("claims-aud-array", json_in(claims(json!({"aud": ["https://other/", AUDIENCE]})))),
        ("claims-nbf-past", json_in(claims(json!({"nbf": 1_700_000_000})))),
        ("claims-nbf-future", json_in(claims(json!({"nbf": 4_102_444_800_i64})))),
        ("claims-nbf-float", json_in(claims(json!({"nbf": 1_700_000_000.6})))),
        ("claims-exp-float", json_in(claims(json!({"exp": 4_102_444_800.5})))),
        ("claims-exp-string", json_in(claims(json!({"exp": "4102444800"})))),
        ("claims-exp-max", json_in(claims(json!({"exp": i64::MAX})))),
        ("claims-no-sub", json_in(json!({"iss": ISSUER, "aud": AUDIENCE, "exp": 4_102_444_800_i64}))),
        ("claims-iss-array", json_in(claims(json!({"iss": [ISSUER]})))),
        ("claims-scope-odd", json_in(claims(json!({"scope": "  a  b ", "extra": {"nested": [1, null, true]}})))),
        ("claims-not-object", b"1[\"https://auth.calyx.test\"]".to_vec()),
        ("claims-not-json", b"1{\"iss\":".to_vec()),
        ("header-server", header_in(serde_json::from_slice(&server_header()).expect("JSON"), claims(json!({})))),
        ("header-media-type", header_in(json!({"alg": "EdDSA", "kid": k, "typ": "application/AT+JWT"}), claims(json!({})))),
        ("header-typ-jwt", header_in(json!({"alg": "EdDSA", "kid": k, "typ": "JWT"}), claims(json!({})))),
        ("header-alg-es256", header_in(json!({"alg": "ES256", "kid": k, "typ": "at+jwt"}), claims(json!({})))),
        ("header-alg-none", header_in(json!({"alg": "none", "kid": k, "typ": "at+jwt"}), claims(json!({})))),
        ("header-no-kid", header_in(json!({"alg": "EdDSA", "typ": "at+jwt"}), claims(json!({})))),
        ("header-other-kid", header_in(json!({"alg": "EdDSA", "kid": "k2", "typ": "at+jwt"}), claims(json!({})))),
        ("header-crit", header_in(json!({"alg": "EdDSA", "kid": k, "typ": "at+jwt", "crit": ["exp"], "jku": "https://evil/"}), claims(json!({})))),
        ("raw-duplicate-iss", format!("2{}\n{{\"iss\":\"https://evil\",\"iss\":\"{ISSUER}\",\"sub\":\"s\",\"aud\":\"{AUDIENCE}\",\"exp\":4102444800}}", String::from_utf8(server_header()).expect("UTF-8")).into_bytes()),
        ("raw-payload-only", format!("2{}", claims(json!({}))).into_bytes()),
        ("raw-signed", format!("0{}", sign_raw(&server_header(), b"{}")).into_bytes()),
    ];
    list.into_iter().map(|(n, b)| (n.to_owned(), b)).collect()
}
