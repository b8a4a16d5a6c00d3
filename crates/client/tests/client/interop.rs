//! calyx-client and calyx-guard against a third-party authorization server: panva's
//! oidc-provider (npm), run by Node from tests/interop/. `scripts/interop-test` installs it and
//! runs this with `--include-ignored`.

use std::process::{Command, Stdio};

use calyx_client::{
    AudienceParam, AuthMethod, ClientKey, Credentials, DpopKey, Endpoints, Error, TokenSource,
    TokenType,
};
use calyx_guard::{Guard, GuardConfig};
use calyx_testkit::jwt_parts;
use calyx_testkit::process::{spawn_announcing, Reaped};

/// Starts tests/interop/provider.mjs; with `jwks`, it also registers the `private_key_jwt`
/// client with that key set. The process stops when the returned handle is dropped, even by
/// a panic. Returns the issuer.
fn start_provider(jwks: Option<&serde_json::Value>) -> (Reaped, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/provider.mjs"
    );
    let mut cmd = Command::new("node");
    cmd.arg(script).stderr(Stdio::null());
    if let Some(jwks) = jwks {
        cmd.env("INTEROP_CLIENT_JWKS", jwks.to_string());
    }
    let (provider, port, _) = spawn_announcing(&mut cmd, "listening on ");
    (provider, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
#[ignore = "needs Node and tests/interop/node_modules: run by scripts/interop-test"]
async fn client_credentials_from_oidc_provider_and_the_guard_accepts_its_jwt() {
    let (_provider, issuer) = start_provider(None);

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

#[tokio::test]
#[ignore = "needs Node and tests/interop/node_modules: run by scripts/interop-test"]
async fn dpop_bound_tokens_from_oidc_provider_with_private_key_jwt_through_its_nonce() {
    let client_key = ClientKey::generate().unwrap();
    let (_provider, issuer) = start_provider(Some(&client_key.jwks()));
    let http = reqwest::Client::new();
    let endpoints = Endpoints::discover(&http, &issuer).await.unwrap();
    let audience = "https://api.interop.test/";
    let dpop = DpopKey::generate().unwrap();
    let source = TokenSource::new(
        http.clone(),
        endpoints.clone(),
        Credentials::private_key_jwt("interop-pkjwt", client_key.clone()),
    )
    .with_audience_param(AudienceParam::Resource)
    .with_dpop(dpop.clone());

    // oidc-provider wants a nonce in every proof: the first request is refused with
    // use_dpop_nonce, the retry (with a new assertion: it spent the first one's jti) succeeds.
    let token = source
        .token(audience, Some("read:consumers"))
        .await
        .expect("a DPoP-bound token for a private_key_jwt client");
    assert_eq!(token.token_type, TokenType::DPoP);
    let (_, claims) = jwt_parts(&token.token);
    assert_eq!(claims["cnf"]["jkt"], dpop.thumbprint(), "bound to the key");
    assert_eq!(claims["client_id"], "interop-pkjwt");
    assert!(
        dpop.nonce_for(&endpoints.token).is_some(),
        "the provider's nonce is remembered"
    );

    // Assertions addressed to the issuer instead of the token endpoint, and the remembered
    // nonce used from the first proof on.
    let to_issuer = TokenSource::new(
        http.clone(),
        endpoints.clone(),
        Credentials::private_key_jwt(
            "interop-pkjwt",
            client_key.clone().with_audience(issuer.clone()),
        ),
    )
    .with_audience_param(AudienceParam::Resource)
    .with_dpop(dpop.clone());
    let again = to_issuer
        .token(audience, Some("read:consumers"))
        .await
        .expect("aud = the issuer");
    assert_ne!(again.token, token.token);
    assert_eq!(jwt_parts(&again.token).1["cnf"]["jkt"], dpop.thumbprint());

    // The client only gets DPoP-bound tokens: without a proof it is refused.
    let no_dpop = TokenSource::new(
        http.clone(),
        endpoints.clone(),
        Credentials::private_key_jwt("interop-pkjwt", client_key),
    )
    .with_audience_param(AudienceParam::Resource);
    let err = no_dpop.token(audience, None).await.unwrap_err();
    assert!(matches!(err, Error::OAuth { status: 400, .. }), "{err:?}");

    // A key the client did not register is refused as client authentication.
    let stranger = TokenSource::new(
        http,
        endpoints,
        Credentials::private_key_jwt("interop-pkjwt", ClientKey::generate().unwrap()),
    )
    .with_audience_param(AudienceParam::Resource)
    .with_dpop(dpop);
    let err = stranger.token(audience, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { status: 401, error, .. } if error == "invalid_client"),
        "{err:?}"
    );
}
