//! calyx-client and calyx-guard against a third-party authorization server: panva's
//! oidc-provider (npm), run by Node from tests/interop/. `scripts/interop-test` installs it and
//! runs this with `--include-ignored`.

use std::process::{Command, Stdio};

use calyx_client::{AudienceParam, AuthMethod, Credentials, Endpoints, TokenSource};
use calyx_guard::{Guard, GuardConfig};
use calyx_testkit::process::spawn_announcing;

#[tokio::test]
#[ignore = "needs Node and tests/interop/node_modules: run by scripts/interop-test"]
async fn client_credentials_from_oidc_provider_and_the_guard_accepts_its_jwt() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/provider.mjs"
    );
    // Stopped when the test ends, even by panic.
    let (_provider, port, _) = spawn_announcing(
        Command::new("node").arg(script).stderr(Stdio::null()),
        "listening on ",
    );
    let issuer = format!("http://127.0.0.1:{port}");

    let http = reqwest::Client::new();
    let endpoints = Endpoints::discover(&http, &issuer)
        .await
        .expect("RFC 8414 / OIDC discovery");
    let creds = Credentials {
        client_id: "interop-client".into(),
        client_secret: Some("interop-secret-that-is-long-enough-for-hs256-0123456789".into()),
        method: AuthMethod::Basic,
    };
    let source =
        TokenSource::new(http, endpoints, creds).with_audience_param(AudienceParam::Resource);
    let audience = "https://api.interop.test/";
    let token = source
        .token(audience, Some("read:consumers"))
        .await
        .expect("a token from oidc-provider");
    assert_eq!(token.scope.as_deref(), Some("read:consumers"));
    let again = source
        .token(audience, Some("read:consumers"))
        .await
        .unwrap();
    assert_eq!(again.token, token.token, "cached");

    // calyx-guard validates the third party's RFC 9068 token (RS256, its own JWKS path).
    let mut cfg = GuardConfig::new(&issuer, audience);
    cfg.jwks_uri = Some(format!("{issuer}/jwks"));
    let verified = Guard::new(cfg)
        .validate(&token.token)
        .await
        .expect("the guard accepts it");
    assert!(verified.has_scope("read:consumers"));
}
