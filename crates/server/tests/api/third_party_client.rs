//! An independent OAuth client library (the `oauth2` crate) gets a token from Calyx.

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use crate::app_and_client;

#[tokio::test]
async fn the_oauth2_crate_gets_a_token_with_basic_auth_and_an_audience() {
    let (app, c) = app_and_client().await;
    let client = BasicClient::new(ClientId::new(c.client_id.clone()))
        .set_client_secret(ClientSecret::new(c.secret().to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap());
    let http = oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read:consumers".into()))
        .add_extra_param("audience", c.audience.clone())
        .request_async(&http)
        .await
        .expect("the oauth2 crate accepts Calyx's response");
    assert_eq!(token.expires_in().unwrap().as_secs(), 86400);
    assert_eq!(token.scopes().unwrap()[0].as_str(), "read:consumers");
    let claims = app.verify(token.access_token().secret(), &c.audience).await;
    assert_eq!(claims["scope"], "read:consumers");
}
