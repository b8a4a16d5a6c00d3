//! An independent client library against the real `calyx serve`: panva's openid-client (npm,
//! pinned in tests/openid-client/package-lock.json), unchanged, run by Node from
//! tests/openid-client/calyx.mjs. It discovers Calyx, gets DPoP-bound client-credentials
//! tokens (RFC 9449), answers a `--dpop-nonce` server's `use_dpop_nonce`, and authenticates
//! with `private_key_jwt` (RFC 7523). `scripts/interop-test` installs the package and runs
//! these with `--include-ignored`.

use std::process::Command;

use calyx_testkit::{Calyx, ServeProcess};
use serde_json::Value;

mod common;
use common::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/openid-client/calyx.mjs"
);

/// Runs the script against the server at `node` with `vars`; the JSON line it printed.
fn openid_client(node: &ServeProcess, vars: &[(&str, &str)]) -> Value {
    let mut all = vec![("CALYX_ISSUER", node.base.as_str())];
    all.extend_from_slice(vars);
    script(&[], &all)
}

/// Runs tests/openid-client/calyx.mjs with `args` and `vars`; the JSON line it printed.
fn script(args: &[&str], vars: &[(&str, &str)]) -> Value {
    let out = Command::new("node")
        .arg(SCRIPT)
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("node runs (Node 20 or later on the PATH)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the openid-client script failed ({args:?}):\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().expect("the script prints a line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A DPoP token on the wire and to openid-client, whose `cnf.jkt` is the thumbprint jose
/// computes for openid-client's proof key.
fn assert_bound(seen: &Value) {
    assert_eq!(seen["token_type"], "dpop", "{seen}");
    assert_eq!(seen["wire_token_type"], "DPoP", "{seen}");
    let jkt = seen["cnf"]["jkt"].as_str().expect("cnf.jkt");
    assert_eq!(jkt, seen["thumbprint"], "{seen}");
}

#[test]
#[ignore = "needs Node and tests/openid-client/node_modules: run by scripts/interop-test"]
fn openid_client_gets_dpop_bound_tokens_and_answers_the_nonce_challenge() {
    let calyx = Calyx::in_temp_dir(BIN);
    let (id, secret, aud) = provision_machine_client(&calyx, "ES256");
    let vars = [
        ("CALYX_AUDIENCE", aud.as_str()),
        ("CALYX_CLIENT_ID", id.as_str()),
        ("CALYX_CLIENT_SECRET", secret.as_str()),
    ];

    // Without server nonces: one request per token.
    let node = calyx.serve(&[]);
    let plain = openid_client(&node, &vars);
    node.terminate();
    let dpop = &plain["dpop"];
    assert!(
        dpop["dpop_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|algs| algs.contains(&"ES256".into())),
        "{plain}"
    );
    for seen in [&dpop["first"], &dpop["second"]] {
        assert_bound(seen);
        assert_eq!(seen["client_id"], id.as_str(), "{plain}");
        assert_eq!(seen["requests"], 1, "{plain}");
        assert_eq!(seen["nonce_challenges"], 0, "{plain}");
    }
    assert_eq!(dpop["introspection"]["active"], true, "{plain}");
    assert_eq!(
        dpop["introspection"]["cnf"]["jkt"], dpop["first"]["cnf"]["jkt"],
        "{plain}"
    );

    // With `--dpop-nonce`: the first request is refused with use_dpop_nonce and a DPoP-Nonce
    // header, openid-client retries with the nonce by itself; the second token needs no retry.
    let node = calyx.serve(&["--dpop-nonce"]);
    let nonced = openid_client(&node, &vars);
    let dpop = &nonced["dpop"];
    assert_bound(&dpop["first"]);
    assert_eq!(dpop["first"]["nonce_challenges"], 1, "{nonced}");
    assert_bound(&dpop["second"]);
    assert_eq!(dpop["second"]["nonce_challenges"], 0, "{nonced}");
    let challenge = &nonced["token_requests"][0];
    assert_eq!(challenge["status"], 400, "{nonced}");
    assert_eq!(challenge["error"], "use_dpop_nonce", "{nonced}");
    assert_eq!(challenge["dpop_nonce_header"], true, "{nonced}");
    assert_eq!(
        nonced["token_requests"][1]["dpop_nonce_sent"], true,
        "{nonced}"
    );
    assert_eq!(dpop["introspection"]["active"], true, "{nonced}");
}

#[test]
#[ignore = "needs Node and tests/openid-client/node_modules: run by scripts/interop-test"]
fn openid_client_authenticates_with_private_key_jwt_with_and_without_dpop() {
    let calyx = Calyx::in_temp_dir(BIN);
    let (_, _, aud) = provision_machine_client(&calyx, "ES256");
    // The key pair is made by the script (jose), so that no Calyx code touches it; its public
    // half is registered as the client's JWK Set.
    let key = script(&["keygen"], &[]);
    let jwks = calyx.dir().join("jwks.json");
    std::fs::write(&jwks, key["jwks"].to_string()).unwrap();
    let org = calyx.json(&["org", "create", "--name", "Signers"]);
    let client = calyx.json(&[
        "client",
        "create",
        "--org",
        org["org_id"].as_str().unwrap(),
        "--name",
        "Signed backend",
        "--token-endpoint-auth-method",
        "private_key_jwt",
        "--jwks",
        jwks.to_str().unwrap(),
    ]);
    let id = client["client_id"].as_str().unwrap();
    grant_read_by_default(&calyx, id, &aud);

    let private_jwk = key["private_jwk"].to_string();
    let node = calyx.serve(&["--dpop-nonce"]);
    let seen = openid_client(
        &node,
        &[
            ("CALYX_AUDIENCE", aud.as_str()),
            ("CALYX_PKJWT_CLIENT_ID", id),
            ("CALYX_PKJWT_PRIVATE_JWK", &private_jwk),
        ],
    );
    let pkjwt = &seen["private_key_jwt"];

    // Without DPoP: a Bearer token for the client, got with an assertion iss = sub = client_id,
    // addressed to the issuer as the metadata gives it, signed with the registered key.
    let bearer = &pkjwt["bearer"];
    assert_eq!(bearer["token_type"], "bearer", "{seen}");
    assert_eq!(bearer["client_id"], id, "{seen}");
    assert_eq!(bearer["cnf"], Value::Null, "{seen}");
    let assertion = &bearer["assertion"];
    assert_eq!(assertion["claims"]["iss"], id, "{seen}");
    assert_eq!(assertion["claims"]["sub"], id, "{seen}");
    assert_eq!(assertion["claims"]["aud"], node.base.as_str(), "{seen}");
    assert_eq!(assertion["header"]["alg"], "ES256", "{seen}");
    assert_eq!(
        assertion["header"]["kid"], key["private_jwk"]["kid"],
        "{seen}"
    );

    // With DPoP, through the nonce challenge: the retry carries a fresh assertion (its jti is
    // single use) and the token is bound to openid-client's DPoP key.
    let bound = &pkjwt["dpop"];
    assert_bound(bound);
    assert_eq!(bound["client_id"], id, "{seen}");
    assert_eq!(bound["nonce_challenges"], 1, "{seen}");
    assert_eq!(bound["assertion_jtis"], 2, "{seen}");
    assert_eq!(pkjwt["introspection"]["active"], true, "{seen}");
    assert_eq!(pkjwt["introspection"]["cnf"], bound["cnf"], "{seen}");

    // What RFC 8414 §2 has the metadata say about the method.
    let methods = pkjwt["token_endpoint_auth_methods_supported"].as_array();
    assert!(
        methods.is_some_and(|m| m.contains(&"private_key_jwt".into())),
        "{seen}"
    );
    let algs = pkjwt["token_endpoint_auth_signing_alg_values_supported"].as_array();
    assert!(algs.is_some_and(|a| a.contains(&"ES256".into())), "{seen}");
}
