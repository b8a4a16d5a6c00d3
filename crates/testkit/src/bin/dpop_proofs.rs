//! DPoP proofs for `DPOP=1 bench/client-credentials`: wrk cannot sign, so the proofs a run
//! sends are made just before it, one per request, and read by wrk's Lua script.
//!
//! Writes `COUNT` proofs for `POST URL` (each a fresh `jti`, `iat` now, one P-256 key per
//! file) into `FILES` files `PREFIX-1.txt` ... `PREFIX-FILES.txt`, one per wrk thread, each
//! made by its own thread. Signed with aws-lc-rs: the client side of a benchmark, not a
//! correctness check (the test suites make their proofs with jwt-compact).
//!
//! ```text
//! dpop_proofs COUNT URL PREFIX FILES
//! ```

use std::io::Write;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, count, url, prefix, files] = &args[..] else {
        eprintln!("usage: dpop_proofs COUNT URL PREFIX FILES");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let files: usize = files.parse().expect("FILES is a number");
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    std::thread::scope(|scope| {
        for f in 1..=files {
            let path = format!("{prefix}-{f}.txt");
            scope.spawn(move || write_proofs(&path, count / files, url, iat, f));
        }
    });
}

fn write_proofs(path: &str, n: usize, url: &str, iat: u64, file: usize) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = key.public_key().as_ref();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let header = json!({
        "typ": "dpop+jwt", "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])},
    });
    let header = b64(header.to_string().as_bytes());
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let claims =
            json!({"jti": format!("{file}-{i}-{iat}"), "htm": "POST", "htu": url, "iat": iat});
        let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let signature = key.sign(&rng, input.as_bytes()).unwrap();
        writeln!(out, "{input}.{}", b64(signature.as_ref())).unwrap();
    }
}
