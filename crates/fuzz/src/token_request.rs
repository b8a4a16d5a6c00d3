//! The token request as the token endpoint reads it: body parameters (form or JSON, RFC 6749
//! §3.2), client authentication (§2.3.1), then the grant decisions that need no storage.
//!
//! Input: the first byte's bit 0 picks the body format (set: JSON), bit 1 says whether an
//! `Authorization` header is sent; if it is, the rest up to the first `\n` is its value and the
//! remainder the body, else the rest is the body.
//!
//! The parameter checks compare against a second reading of the body (form_urlencoded's pairs,
//! or every JSON member in order), so "repeats refused, NUL refused, empty means omitted" is
//! checked in both directions: what is refused must deserve it, what is accepted must keep it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use calyx_core::client_auth::{self, ClientAuth, Secret};
use calyx_core::grant;
use calyx_core::model::ClientGrant;
use calyx_core::params::Params;
use calyx_core::request::{Target, TokenParams};
use calyx_core::{ErrorCode, OAuthError, ScopeSet};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::assert_rfc_error;

/// Runs one token request; panics when a property fails.
pub fn token_request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let json = mode & 1 != 0;
    let (header, body) = if mode & 2 != 0 {
        let (h, b) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        (Some(String::from_utf8_lossy(h).into_owned()), b)
    } else {
        (None, rest)
    };

    let params = if json {
        check_json(body)
    } else {
        check_form(body)
    };
    if let Some(h) = &header {
        check_basic_header(h);
    }
    let Some(params) = params else { return };
    let typed = TokenParams::parse(params.clone()).expect("accepted parameters must type");
    for (name, value) in [
        ("grant_type", &typed.grant_type),
        ("client_id", &typed.client_id),
        ("client_secret", &typed.client_secret),
        ("audience", &typed.audience),
        ("resource", &typed.resource),
        ("scope", &typed.scope),
    ] {
        assert_eq!(
            value.as_deref(),
            params.get(name),
            "{name} typed differently"
        );
    }
    check_client_auth(header.as_deref(), &params, &typed);
    check_basic_round_trips(&params);
    check_grant_decisions(&params, &typed);
}

/// Form bodies against form_urlencoded's own pairs; returns the parameters if accepted.
fn check_form(body: &[u8]) -> Option<Params> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let expected_ok = admissible(pairs.iter().map(|(n, v)| (n.as_str(), Some(v.as_str()))));
    match Params::from_form(body) {
        Ok(p) => {
            assert!(
                expected_ok,
                "form body {body:?} accepted with NUL or a repeat"
            );
            for (n, v) in &pairs {
                assert_eq!(
                    p.get(n),
                    Some(v.as_str()).filter(|v| !v.is_empty()),
                    "{n:?}"
                );
            }
            // The same parameters as a JSON object read the same.
            let object: serde_json::Map<String, Value> = pairs
                .iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect();
            let as_json = Params::from_json(&serde_json::to_vec(&object).unwrap())
                .expect("a good form body, as JSON, is refused");
            agree(
                &p,
                &as_json,
                pairs.iter().map(|(n, _)| n.as_str()),
                "form and JSON",
            );
            Some(p)
        }
        Err(e) => refused(&e, expected_ok, body, "form body"),
    }
}

/// JSON bodies against every member of the object, repeats included; returns the parameters
/// if accepted.
fn check_json(body: &[u8]) -> Option<Params> {
    let members = serde_json::from_slice::<Members>(body).ok();
    let expected_ok = members.as_ref().is_some_and(|m| {
        let strings =
            m.0.iter()
                .all(|(_, v)| matches!(v, Value::String(_) | Value::Null));
        strings && admissible(m.0.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    });
    match Params::from_json(body) {
        Ok(p) => {
            assert!(
                expected_ok,
                "JSON body {body:?} accepted though it must not be"
            );
            let members = members.expect("checked above").0;
            for (n, v) in &members {
                assert_eq!(p.get(n), v.as_str().filter(|v| !v.is_empty()), "{n:?}");
            }
            // The same parameters as a form body read the same.
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (n, v) in &members {
                form.append_pair(n, v.as_str().unwrap_or(""));
            }
            let as_form = Params::from_form(form.finish().as_bytes())
                .expect("a good JSON body, as a form, is refused");
            agree(
                &p,
                &as_form,
                members.iter().map(|(n, _)| n.as_str()),
                "JSON and form",
            );
            Some(p)
        }
        Err(e) => refused(&e, expected_ok, body, "JSON body"),
    }
}

/// The two readings of one body in both formats agree on every name.
fn agree<'a>(one: &Params, other: &Params, names: impl Iterator<Item = &'a str>, what: &str) {
    for n in names {
        assert_eq!(one.get(n), other.get(n), "{n:?}: {what} disagree");
    }
}

/// A refused body must have deserved it, and be answered in the RFC 6749 §5.2 shape.
fn refused(e: &OAuthError, expected_ok: bool, body: &[u8], what: &str) -> Option<Params> {
    assert!(!expected_ok, "{what} {body:?} refused: {e}");
    assert_rfc_error(e, &[ErrorCode::InvalidRequest], what);
    None
}

/// RFC 6749 §3.2 as Calyx applies it: no name twice (an empty value counts as sent), and no
/// NUL anywhere.
fn admissible<'a>(pairs: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> bool {
    let mut seen = std::collections::HashSet::new();
    for (name, value) in pairs {
        if name.contains('\0') || value.is_some_and(|v| v.contains('\0')) || !seen.insert(name) {
            return false;
        }
    }
    true
}

/// Every member of a JSON object, in order, repeats included.
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The header on its own: a decoded pair is well formed and encodes back to itself.
fn check_basic_header(header: &str) {
    match client_auth::parse_basic(header) {
        Ok((id, secret)) => {
            assert!(!id.is_empty(), "{header:?}: empty client id accepted");
            assert_eq!(
                client_auth::parse_basic(&basic_rfc(&id, &secret)),
                Ok((id, secret)),
                "{header:?}: the decoded pair does not survive RFC 6749 §2.3.1 encoding"
            );
        }
        Err(e) => assert_rfc_error(&e, &[ErrorCode::InvalidClient], "Basic header"),
    }
}

/// `extract`: which method was used, and that the documented refusals happen exactly when
/// they should.
fn check_client_auth(header: Option<&str>, params: &Params, typed: &TokenParams) {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let asserting =
        params.get("client_assertion_type").is_some() || params.get("client_assertion").is_some();
    match client_auth::extract(header, typed.credentials()) {
        Ok(auth) => {
            assert_eq!(auth.is_basic(), header.is_some());
            match &auth {
                ClientAuth::Basic { client_id, secret } => {
                    let h = header.expect("Basic without a header");
                    assert!(
                        body_secret.is_none(),
                        "Basic and client_secret together were accepted"
                    );
                    assert!(body_id.is_none_or(|id| id == client_id));
                    assert_eq!(
                        client_auth::parse_basic(h),
                        Ok((client_id.clone(), secret.expose().to_owned()))
                    );
                }
                ClientAuth::Post { client_id, secret } => {
                    assert_eq!(Some(client_id.as_str()), body_id);
                    assert_eq!(Some(secret.expose()), body_secret);
                }
                ClientAuth::Assertion {
                    client_id,
                    assertion,
                } => {
                    assert!(
                        header.is_none() && body_secret.is_none(),
                        "two methods accepted"
                    );
                    assert_eq!(
                        params.get("client_assertion_type"),
                        Some(client_auth::JWT_BEARER)
                    );
                    assert_eq!(params.get("client_assertion"), Some(assertion.expose()));
                    assert!(body_id.is_none_or(|id| id == client_id));
                }
                ClientAuth::None { client_id } => {
                    assert_eq!(Some(client_id.as_str()), body_id);
                    assert!(body_secret.is_none() && !asserting);
                }
            }
            assert!(!auth.client_id().is_empty());
            assert_eq!(
                auth.secret().is_some(),
                matches!(auth, ClientAuth::Basic { .. } | ClientAuth::Post { .. })
            );
            // Debug output must not depend on the secret, or it could reach a log.
            let other = match &auth {
                ClientAuth::Basic { client_id, .. } => ClientAuth::Basic {
                    client_id: client_id.clone(),
                    secret: Secret::new("x"),
                },
                ClientAuth::Post { client_id, .. } => ClientAuth::Post {
                    client_id: client_id.clone(),
                    secret: Secret::new("x"),
                },
                ClientAuth::Assertion { client_id, .. } => ClientAuth::Assertion {
                    client_id: client_id.clone(),
                    assertion: Secret::new("x"),
                },
                none => none.clone(),
            };
            assert_eq!(
                format!("{auth:?}"),
                format!("{other:?}"),
                "Debug shows the secret"
            );
        }
        Err(e) => {
            assert_eq!(e.basic_tried, header.is_some());
            assert_rfc_error(
                &e.error,
                &[ErrorCode::InvalidRequest, ErrorCode::InvalidClient],
                "client authentication",
            );
            match header {
                Some(h) => {
                    let deserved = match client_auth::parse_basic(h) {
                        Err(_) => true,
                        Ok((id, _)) => {
                            asserting || body_secret.is_some() || body_id.is_some_and(|b| b != id)
                        }
                    };
                    assert!(deserved, "{h:?} with {params:?} refused: {:?}", e.error);
                }
                None => assert!(
                    body_id.is_none() || asserting,
                    "{params:?} refused: {:?}",
                    e.error
                ),
            }
        }
    }
}

/// Ids and secrets from the body, sent instead as HTTP Basic, arrive unchanged: always when
/// encoded as RFC 6749 §2.3.1 says, and also unencoded (as many clients send them) when they
/// hold nothing that decoding changes (`%`, `+`) and the id has no `:`.
fn check_basic_round_trips(params: &Params) {
    let Some(id) = params.get("client_id") else {
        return;
    };
    let secret = params.get("client_secret").unwrap_or("");
    let want = Ok((id.to_owned(), secret.to_owned()));
    assert_eq!(
        client_auth::parse_basic(&basic_rfc(id, secret)),
        want,
        "RFC-encoded Basic credentials do not round-trip"
    );
    let plain = |s: &str| !s.contains(['%', '+']);
    if plain(id) && plain(secret) && !id.contains(':') {
        let raw = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        assert_eq!(
            client_auth::parse_basic(&raw),
            want,
            "unencoded Basic credentials without '%' or '+' are changed by decoding"
        );
    }
}

fn basic_rfc(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// grant_type, audience/resource, the client's grant and the scope decision.
fn check_grant_decisions(params: &Params, typed: &TokenParams) {
    match typed.grant_type() {
        Ok(g) => assert_eq!(Some(g.as_str()), params.get("grant_type")),
        Err(e) => {
            let want = match params.get("grant_type") {
                None => ErrorCode::InvalidRequest,
                Some(_) => ErrorCode::UnsupportedGrantType,
            };
            assert_rfc_error(&e, &[want], "grant_type");
        }
    }

    let grants = grants();
    let audience = params.get("audience");
    let resource = params.get("resource");
    let asked = Target {
        audience: typed.audience.clone(),
        resource: typed.resource.clone(),
    };
    let target = match grant::target_audience(&asked, &grants) {
        Ok(a) => a,
        Err(e) => {
            assert_rfc_error(
                &e,
                &[ErrorCode::InvalidRequest, ErrorCode::InvalidTarget],
                "audience",
            );
            return;
        }
    };
    match (audience, resource) {
        (Some(a), Some(r)) => assert!(a == target && r == target),
        (Some(a), None) => assert_eq!(a, target),
        (None, Some(r)) => {
            assert_eq!(r, target);
            assert!(
                !r.contains('#') && r.contains(':'),
                "resource {r:?} accepted"
            );
        }
        (None, None) => assert_eq!(target, "https://api.calyx.test/"),
    }

    let g = match grant::grant_for(&grants, target) {
        Ok(g) => g,
        Err(e) => {
            assert_rfc_error(&e, &[ErrorCode::AccessDenied], "grant");
            assert!(grants.iter().all(|g| g.audience != target));
            return;
        }
    };
    assert_eq!(g.audience, target);
    match grant::decide_scope(params.get("scope"), &g.scopes) {
        Ok(s) => assert!(s.is_subset(&g.scopes), "{s} granted beyond {}", g.scopes),
        Err(e) => assert_rfc_error(&e, &[ErrorCode::InvalidScope], "scope"),
    }
}

fn grants() -> [ClientGrant; 2] {
    let grant = |audience: &str, scopes: &str, is_default| ClientGrant {
        client_id: "s6BhdRkqt3".into(),
        api_id: "api_1".into(),
        audience: audience.into(),
        scopes: ScopeSet::parse(scopes).expect("valid scopes"),
        is_default,
    };
    [
        grant(
            "https://api.calyx.test/",
            "read:consumers write:consumers",
            true,
        ),
        grant("urn:calyx:billing", "invoices:read", false),
    ]
}
