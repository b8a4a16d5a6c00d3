//! Mutual TLS (RFC 8705) with `serve --tls-client-ca`: `tls_client_auth` (a CA-issued
//! certificate with the registered subject DN), `self_signed_tls_client_auth` (a certificate
//! registered in the client's JWK Set), and certificate-bound tokens (`cnf.x5t#S256`).
//! Certificates are made by rcgen; thumbprints are computed here with sha2.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use calyx_core::model::{ClientPolicy, KeyAuth};
use calyx_testkit::{jwt_parts, Provisioned, TestServer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A certificate and its key, as PEM, and the certificate's DER.
struct Cert {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
    public_raw: Vec<u8>,
}

impl Cert {
    /// The RFC 8705 §3.1 thumbprint.
    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }

    /// A reqwest client that trusts `server_ca` and presents this certificate.
    fn client(&self, server_ca: &str) -> reqwest::Client {
        let identity =
            reqwest::Identity::from_pem(format!("{}{}", self.pem, self.key_pem).as_bytes())
                .unwrap();
        base_client(server_ca).identity(identity).build().unwrap()
    }

    /// A public JWK of the certificate's P-256 key with the certificate in `x5c`.
    fn jwks(&self) -> Value {
        let point = &self.public_raw;
        json!({"keys": [{
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "x5c": [STANDARD.encode(&self.der)],
        }]})
    }
}

fn base_client(server_ca: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap())
}

fn params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
}

/// The world of a test: a CA that issues the server's and clients' certificates.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut p = params("Test CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Pki {
            ca: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn issue(&self, mut p: CertificateParams, usage: ExtendedKeyUsagePurpose) -> Cert {
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        Cert {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            public_raw: key.public_key_raw().to_vec(),
        }
    }
}

fn self_signed(cn: &str) -> Cert {
    let mut p = params(cn);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Cert {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        public_raw: key.public_key_raw().to_vec(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A server on TLS with the PKI's CA for client certificates.
async fn tls_server(pki: &Pki, dir: &Path) -> TestServer {
    let mut server = params("localhost");
    server.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let server = pki.issue(server, ExtendedKeyUsagePurpose::ServerAuth);
    let cert = write(dir, "server.pem", &server.pem);
    let key = write(dir, "server.key", &server.key_pem);
    let ca = write(dir, "clients-ca.pem", &pki.ca.pem());
    TestServer::spawn_with(|cfg| {
        cfg.tls_cert = Some(cert);
        cfg.tls_key = Some(key);
        cfg.tls_client_ca = Some(ca);
    })
    .await
}

/// A client-credentials request for `c` over `http`: status and body.
async fn token(app: &TestServer, http: &reqwest::Client, c: &Provisioned) -> (u16, Value) {
    let resp = http
        .post(format!("{}/oauth/token", app.issuer()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("audience", &c.audience),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_ca_issued_certificate_with_the_registered_subject_authenticates_and_binds_the_token() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let app = tls_server(&pki, dir.path()).await;
    let c = app
        .fixture()
        .policy(ClientPolicy {
            auth: Some(KeyAuth::TlsClientAuth),
            tls_subject_dn: Some("CN=client-a,O=Example".into()),
            ..ClientPolicy::default()
        })
        .build()
        .await;
    assert!(c.secret.is_none());
    let server_ca = pki.ca.pem();
    let mine = pki.issue(params("client-a"), ExtendedKeyUsagePurpose::ClientAuth);

    let (status, body) = token(&app, &mine.client(&server_ca), &c).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["token_type"], "Bearer",
        "RFC 8705 keeps the Bearer type"
    );
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"], json!({"x5t#S256": mine.x5t()}));

    let other_subject = pki.issue(params("client-b"), ExtendedKeyUsagePurpose::ClientAuth);
    let unknown_ca = self_signed("client-a");
    let no_certificate = base_client(&server_ca).build().unwrap();
    for (case, http) in [
        (
            "another subject from the CA",
            other_subject.client(&server_ca),
        ),
        (
            "the right subject, not from the CA",
            unknown_ca.client(&server_ca),
        ),
        ("no certificate", no_certificate),
    ] {
        let (status, body) = token(&app, &http, &c).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{case}: {body}"
        );
    }

    let metadata: Value = base_client(&server_ca)
        .build()
        .unwrap()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.issuer()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("tls_client_auth")));
    assert!(methods.contains(&json!("self_signed_tls_client_auth")));
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
}

#[tokio::test]
async fn a_registered_self_signed_certificate_authenticates_and_no_other_does() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let app = tls_server(&pki, dir.path()).await;
    let mine = self_signed("device-7");
    let c = app
        .fixture()
        .policy(ClientPolicy {
            auth: Some(KeyAuth::SelfSignedTlsClientAuth),
            jwks: Some(mine.jwks()),
            ..ClientPolicy::default()
        })
        .build()
        .await;
    let server_ca = pki.ca.pem();
    let (status, body) = token(&app, &mine.client(&server_ca), &c).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], mine.x5t());

    let ca_issued = pki.issue(params("device-7"), ExtendedKeyUsagePurpose::ClientAuth);
    let (status, _) = token(&app, &self_signed("device-7").client(&server_ca), &c).await;
    assert_eq!(status, 401, "same subject, another certificate");
    let (status, _) = token(&app, &ca_issued.client(&server_ca), &c).await;
    assert_eq!(
        status, 401,
        "a CA-issued certificate is not the registered one"
    );
}

#[tokio::test]
async fn a_secret_client_on_a_mutual_tls_server_is_unaffected_by_its_certificate() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let app = tls_server(&pki, dir.path()).await;
    let c = app.fixture().build().await;
    let server_ca = pki.ca.pem();
    let cert = pki.issue(params("whoever"), ExtendedKeyUsagePurpose::ClientAuth);
    for http in [
        cert.client(&server_ca),
        base_client(&server_ca).build().unwrap(),
    ] {
        let resp = http
            .post(format!("{}/oauth/token", app.issuer()))
            .form(&c.client_credentials(c.secret()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
        assert!(
            claims.get("cnf").is_none(),
            "a secret client's token is not bound"
        );
    }
}
