//! `calyx-reference`: the yardstick for the overhead of Calyx's token endpoint.
//!
//! A token endpoint that does only the work every client-credentials grant must do, served the
//! way `calyx serve` serves: tokio's multi-thread runtime with its default worker count (one
//! per core), mimalloc, hyper's HTTP/1.1 connection builder with a header deadline, an axum
//! router. `POST /oauth/token` reads the form, authenticates its one client
//! (`client_secret_post` or HTTP Basic) by the HMAC-SHA256 of the secret under a pepper,
//! compared in constant time, checks the audience and scope against the client's one grant,
//! and signs an RFC 9068 access token with an ES256 key parsed once at start-up, whose JWS
//! header is encoded once too. The answer has Calyx's shape and cache headers.
//!
//! Left out is what Calyx's endpoint adds on top: JSON bodies, the client, grant and API
//! caches and the database behind them, key rotation, rate limits, metrics, tracing, usage
//! counts, the body deadline, the connection cap and graceful shutdown. `bench/client-credentials`
//! runs both under the same load, so Calyx's tokens/s over this one's is what that costs. Not a
//! server to deploy: one client, a key that dies with the process, no JWKS.
//!
//! ```text
//! REFERENCE_CLIENT_SECRET=... calyx-reference --listen 127.0.0.1:0 --client-id ID --audience AUD
//! ```

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use aws_lc_rs::{digest, hmac};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use clap::Parser;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    about = "Client credentials with only the essential work: the token endpoint's yardstick"
)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "REFERENCE_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The one client.
    #[arg(long, env = "REFERENCE_CLIENT_ID")]
    client_id: String,
    /// Its secret; better from the environment, which other users cannot read.
    #[arg(long, env = "REFERENCE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The audience of its grant, also taken when a request names none.
    #[arg(long, env = "REFERENCE_AUDIENCE")]
    audience: String,
    /// The grant's scopes, space-separated: all of them when a request names none.
    #[arg(long, default_value = "read:consumers write:consumers")]
    scope: String,
    /// The `org_id` claim.
    #[arg(long, default_value = "org_reference")]
    org_id: String,
    /// Token lifetime in seconds (Calyx's default for machine tokens).
    #[arg(long, default_value_t = 86400)]
    lifetime: i64,
}

/// Everything a request reads, made once at start-up.
struct Endpoint {
    issuer: String,
    args: Args,
    pepper: hmac::Key,
    /// HMAC-SHA256 of the client secret under `pepper`: all that is kept of the secret.
    secret_hash: Vec<u8>,
    key: EcdsaKeyPair,
    /// `{"alg":"ES256","kid":…,"typ":"at+jwt"}`, base64url.
    header_b64: String,
    rng: SystemRandom,
}

impl Endpoint {
    fn new(mut args: Args, issuer: String) -> anyhow::Result<Endpoint> {
        let rng = SystemRandom::new();
        let mut pepper = [0u8; 32];
        rng.fill(&mut pepper).context("drawing a pepper")?;
        let pepper = hmac::Key::new(hmac::HMAC_SHA256, &pepper);
        let secret_hash = hmac::sign(&pepper, args.client_secret.as_bytes())
            .as_ref()
            .to_vec();
        args.client_secret.clear();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).context("generating a P-256 key")?;
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).context("parsing the key")?;
        // kid: the RFC 7638 thumbprint of the public key (0x04 || x || y).
        let point = key.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..]),
        );
        let jwk = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, jwk.as_bytes()));
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt"}}"#);
        let header_b64 = URL_SAFE_NO_PAD.encode(header);
        Ok(Endpoint {
            issuer,
            args,
            pepper,
            secret_hash,
            key,
            header_b64,
            rng,
        })
    }

    /// RFC 6749 §4.4: the token response's body, or why not.
    fn issue(&self, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let form = form.and_then(|v| v.split(';').next()).map(str::trim);
        if !form.is_some_and(|v| v.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
            return Err(Refusal::request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let (mut grant_type, mut id, mut secret, mut audience, mut scope) = Default::default();
        for (name, value) in form_urlencoded::parse(body) {
            let slot: &mut Option<Cow<str>> = match &*name {
                "grant_type" => &mut grant_type,
                "client_id" => &mut id,
                "client_secret" => &mut secret,
                "audience" => &mut audience,
                "scope" => &mut scope,
                _ => continue,
            };
            // RFC 6749 §3.2: no parameter may be sent twice.
            if slot.replace(value).is_some() {
                return Err(Refusal::request("a parameter is repeated"));
            }
        }
        if grant_type.as_deref() != Some("client_credentials") {
            return Err(Refusal::bad(
                "unsupported_grant_type",
                "only client_credentials",
            ));
        }
        let (id, secret) = match (headers.get(header::AUTHORIZATION), id, secret) {
            (Some(_), _, Some(_)) => {
                return Err(Refusal::request("more than one authentication method"))
            }
            (Some(basic), id, None) => {
                let (basic_id, secret) = basic_credentials(basic)?;
                if id.is_some_and(|id| id != basic_id) {
                    return Err(Refusal::request(
                        "client_id differs from the Basic credentials",
                    ));
                }
                (Cow::Owned(basic_id), Cow::Owned(secret))
            }
            (None, Some(id), Some(secret)) => (id, secret),
            (None, _, None) | (None, None, _) => return Err(Refusal::client()),
        };
        let hash = hmac::sign(&self.pepper, secret.as_bytes());
        let secret_ok: bool = hash.as_ref().ct_eq(&self.secret_hash).into();
        if id != self.args.client_id || !secret_ok {
            return Err(Refusal::client());
        }
        let a = &self.args;
        if audience.is_some_and(|aud| aud != a.audience) {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "access_denied",
                "no grant for the audience",
            ));
        }
        let scope = scope.unwrap_or(Cow::Borrowed(&a.scope));
        if scope
            .split(' ')
            .any(|s| !a.scope.split(' ').any(|granted| granted == s))
        {
            return Err(Refusal::bad("invalid_scope", "scope not granted"));
        }
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).map_err(|_| Refusal::server())?;
        let claims = Claims {
            iss: &self.issuer,
            sub: format!("{}@clients", a.client_id),
            aud: &a.audience,
            exp: iat + a.lifetime,
            iat,
            jti: URL_SAFE_NO_PAD.encode(jti),
            client_id: &a.client_id,
            scope: &scope,
            org_id: &a.org_id,
        };
        let payload = serde_json::to_vec(&claims).map_err(|_| Refusal::server())?;
        let mut jwt = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        jwt.push_str(&self.header_b64);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let signature = self
            .key
            .sign(&self.rng, jwt.as_bytes())
            .map_err(|_| Refusal::server())?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
        let response = TokenResponse {
            access_token: &jwt,
            token_type: "Bearer",
            expires_in: a.lifetime,
            scope: &scope,
        };
        serde_json::to_vec(&response).map_err(|_| Refusal::server())
    }
}

/// RFC 9068 §2.2, in the order Calyx writes them.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
    org_id: &'a str,
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    scope: &'a str,
}

/// An RFC 6749 §5.2 error: status, `error`, `error_description`.
#[derive(Debug)]
struct Refusal(StatusCode, &'static str, &'static str);

impl Refusal {
    fn bad(error: &'static str, why: &'static str) -> Refusal {
        Refusal(StatusCode::BAD_REQUEST, error, why)
    }
    fn request(why: &'static str) -> Refusal {
        Refusal::bad("invalid_request", why)
    }
    fn client() -> Refusal {
        Refusal(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }
    fn server() -> Refusal {
        Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing failed",
        )
    }
}

/// RFC 6749 §2.3.1: Base64 of `id:secret`, each form-encoded first.
fn basic_credentials(value: &HeaderValue) -> Result<(String, String), Refusal> {
    let (scheme, b64) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .ok_or_else(Refusal::client)?;
    let raw = STANDARD
        .decode(b64.trim())
        .ok()
        .filter(|_| scheme.eq_ignore_ascii_case("basic"));
    let raw = raw
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(Refusal::client)?;
    let (id, secret) = raw.split_once(':').ok_or_else(Refusal::client)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok((decode(id), decode(secret)))
}

async fn token(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> Response {
    let (status, body) = match endpoint.issue(&headers, &body) {
        Ok(body) => (StatusCode::OK, body),
        Err(Refusal(status, error, description)) => {
            let body = serde_json::json!({"error": error, "error_description": description});
            (status, body.to_string().into_bytes())
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn router(endpoint: Endpoint) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .with_state(Arc::new(endpoint))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

/// Accepts for ever, one task per connection, as `calyx serve` does (without its connection cap
/// and graceful shutdown, which cost nothing per request).
async fn serve(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let app = router(Endpoint::new(args, format!("http://{addr}"))?);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_header_size(64 * 1024);
    let http = Arc::new(http);
    println!("listening on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, http) = (app.clone(), http.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(Body::new))
                });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn app() -> (Router, Vec<u8>) {
        let args = [
            "calyx-reference",
            "--client-id",
            "c1",
            "--client-secret",
            "s e&cret",
            "--audience",
            "https://api/",
        ];
        let endpoint = Endpoint::new(Args::parse_from(args), "http://issuer".into()).unwrap();
        let public = endpoint.key.public_key().as_ref().to_vec();
        (router(endpoint), public)
    }

    async fn post(
        app: &Router,
        body: &str,
        basic: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = axum::http::Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(b) = basic {
            req = req.header("authorization", format!("Basic {}", STANDARD.encode(b)));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_token_is_signed_with_the_key_and_carries_the_claims() {
        let (app, public) = app();
        let form = "grant_type=client_credentials&client_id=c1&client_secret=s+e%26cret&audience=https%3A%2F%2Fapi%2F";
        let (status, body) = post(&app, form, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (&body["token_type"], &body["expires_in"]),
            (&"Bearer".into(), &86400.into())
        );
        let jwt = body["access_token"].as_str().unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
            .verify(input.as_bytes(), &sig)
            .unwrap();
        let part = |i: usize| -> serde_json::Value {
            serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(input.split('.').nth(i).unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(part(0)["typ"], "at+jwt");
        let claims = part(1);
        assert_eq!(
            (&claims["sub"], &claims["aud"]),
            (&"c1@clients".into(), &"https://api/".into())
        );
        assert_eq!(claims["scope"], "read:consumers write:consumers");
    }

    #[tokio::test]
    async fn basic_credentials_work_and_wrong_or_doubled_ones_do_not() {
        let (app, _) = app();
        let (status, body) = post(
            &app,
            "grant_type=client_credentials&scope=read:consumers",
            Some("c1:s+e%26cret"),
        )
        .await;
        assert_eq!(
            (status, &body["scope"]),
            (StatusCode::OK, &"read:consumers".into())
        );
        let (status, _) = post(&app, "grant_type=client_credentials", Some("c1:s e&cres")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let doubled = "grant_type=client_credentials&client_secret=s+e%26cret";
        assert_eq!(
            post(&app, doubled, Some("c1:s+e%26cret")).await.0,
            StatusCode::BAD_REQUEST
        );
        let other_api = "grant_type=client_credentials&audience=https%3A%2F%2Fother%2F";
        assert_eq!(
            post(&app, other_api, Some("c1:s+e%26cret")).await.0,
            StatusCode::FORBIDDEN
        );
    }
}
