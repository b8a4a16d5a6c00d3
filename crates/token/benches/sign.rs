//! Token signing throughput: what one `/oauth/token` call spends on the JWT, per algorithm.
//! `cargo bench -p calyx-token --bench sign`

use calyx_token::{AccessClaims, SigningAlg, SigningKey};
use criterion::{criterion_group, criterion_main, Criterion};

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.com/".into(),
        sub: "k3J9dVt0qW2mXbYc@clients".into(),
        aud: "https://api.example.com/".into(),
        exp: 1_800_000_000,
        iat: 1_799_913_600,
        jti: "Zm9vYmFyYmF6cXV4cXV1eA".into(),
        client_id: "k3J9dVt0qW2mXbYc".into(),
        scope: "read:consumers write:consumers read:credit.score".into(),
        org_id: Some("org_3hTq8sPz0aYk1vX2".into()),
        sid: None,
        cnf: None,
    }
}

fn sign(c: &mut Criterion) {
    let claims = claims();
    for alg in SigningAlg::ALL {
        let (_, key) = SigningKey::generate(alg).unwrap();
        c.bench_function(&format!("sign_{alg}"), |b| {
            b.iter(|| key.sign(&claims).unwrap())
        });
    }
    let (der, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    c.bench_function("parse_es256_pkcs8", |b| {
        b.iter(|| SigningKey::from_pkcs8(SigningAlg::ES256, &der).unwrap())
    });
}

criterion_group!(benches, sign);
criterion_main!(benches);
