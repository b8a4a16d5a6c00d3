//! Guard validation against the bare signature verification it wraps.
//! `cargo bench -p calyx-guard --bench validate`
//!
//! - `guard_cached`: a token seen before (SHA-256 of the token, cache lookup, expiry check).
//! - `guard_cold`: every check on a token the cache has not seen (cache disabled).
//! - `bare_verify`: `jsonwebtoken::decode` with a pre-built key, nothing else.
//! - `guard_dpop_cached`: a DPoP-bound token seen before, with a fresh proof (made outside the
//!   measurement): the cached token, the proof's checks and signature, the replay record.

use calyx_guard::{Guard, GuardConfig};
use calyx_testkit::jose::{Holder, ProofClaims};
use calyx_token::{AccessClaims, SigningAlg, SigningKey};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

fn bench(c: &mut Criterion) {
    let (_, key) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = AccessClaims {
        iss: "https://auth.example.com".into(),
        sub: "k3J9dVt0qW2mXbYc@clients".into(),
        aud: "https://api.example.com/".into(),
        exp: now + 86_400,
        iat: now,
        jti: "Zm9vYmFyYmF6cXV4cXV1eA".into(),
        client_id: "k3J9dVt0qW2mXbYc".into(),
        scope: "read:consumers write:consumers".into(),
        org_id: Some("org_3hTq8sPz0aYk1vX2".into()),
        sid: None,
        cnf: None,
    };
    let token = key.sign(&claims).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(serde_json::json!({"keys": [key.public_jwk()]})).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let cfg = GuardConfig::new("https://auth.example.com", "https://api.example.com/")
        .public_origin("https://api.example.com");
    let cached = Guard::from_jwks(cfg.clone(), &jwks);
    rt.block_on(cached.validate(&token)).unwrap();
    c.bench_function("guard_cached", |b| {
        b.to_async(&rt).iter(|| cached.validate(&token))
    });

    let holder = Holder::new();
    let mut bound = serde_json::to_value(&claims).unwrap();
    bound["cnf"] = serde_json::json!({"jkt": holder.thumbprint()});
    let bound = key.sign(&bound).unwrap();
    let htu = "https://api.example.com/v1/consumers";
    let proof = || holder.proof_with(&ProofClaims::new("GET", htu).for_token(&bound));
    rt.block_on(cached.validate_dpop(&bound, &proof(), "GET", htu))
        .unwrap();
    c.bench_function("guard_dpop_cached", |b| {
        b.to_async(&rt).iter_batched(
            proof,
            |p| {
                let (cached, bound) = (&cached, &bound);
                async move { cached.validate_dpop(bound, &p, "GET", htu).await.unwrap() }
            },
            BatchSize::SmallInput,
        )
    });

    let mut cold_cfg = cfg;
    cold_cfg.cache_capacity = 0;
    let cold = Guard::from_jwks(cold_cfg, &jwks);
    c.bench_function("guard_cold", |b| {
        b.to_async(&rt).iter(|| cold.validate(&token))
    });

    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["https://api.example.com/"]);
    v.set_issuer(&["https://auth.example.com"]);
    c.bench_function("bare_verify", |b| {
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &v).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
