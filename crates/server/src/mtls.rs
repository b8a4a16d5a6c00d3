//! Mutual TLS (RFC 8705) when Calyx terminates TLS itself: the client certificate of a
//! connection, client authentication by it, and the thumbprint certificate-bound tokens carry.
//!
//! With `serve --tls-client-ca FILE` the TLS handshake asks for a client certificate but does
//! not require one (browsers and secret-holding clients connect as before), and accepts any
//! certificate whose handshake signature proves the key: which certificate authenticates
//! which client is decided per client, after the request names it, not by the handshake.
//! - `tls_client_auth` (§2.1): the certificate must chain to a CA of FILE (checked with the
//!   same webpki verifier rustls would use) and carry the client's registered subject DN.
//! - `self_signed_tls_client_auth` (§2.2): the certificate must be one of those registered in
//!   the client's JWK Set (`x5c`), byte for byte.
//!
//! A client that authenticated either way gets access tokens bound to the certificate
//! (`cnf.x5t#S256`, §3.1), which calyx-guard checks against the certificate it sees.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The certificate a client presented on its TLS connection: what the accept loop puts in
/// every request's extensions.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<PeerCertificates>);

/// The end-entity certificate and the intermediates sent with it, DER.
#[derive(Debug)]
pub struct PeerCertificates {
    /// The client's own certificate.
    pub end_entity: CertificateDer<'static>,
    /// Intermediate CA certificates it sent.
    pub intermediates: Vec<CertificateDer<'static>>,
}

/// The CAs of `--tls-client-ca`, as a verifier of certificate chains.
pub type TrustedCas = Arc<dyn ClientCertVerifier>;

/// Loads the CA certificates (PEM) that `tls_client_auth` certificates must chain to.
pub fn load_cas(path: &Path) -> anyhow::Result<TrustedCas> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading the client CAs from {}", path.display()))?
    {
        let cert = cert.with_context(|| format!("reading a certificate of {}", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("a certificate of {} is not a usable CA", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .with_context(|| format!("building a verifier for the CAs of {}", path.display()))
}

/// The handshake's verifier: asks for a certificate, requires none, and accepts any whose
/// signature proves its key (see the module header for where trust is decided).
#[derive(Debug)]
pub(crate) struct OptionalClientCertificates {
    trusted: TrustedCas,
    algorithms: WebPkiSupportedAlgorithms,
}

impl OptionalClientCertificates {
    pub(crate) fn new(trusted: TrustedCas) -> Self {
        OptionalClientCertificates {
            trusted,
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for OptionalClientCertificates {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.trusted.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `tls_client_auth` (RFC 8705 §2.1): the certificate chains to a trusted CA and its subject
/// is `subject_dn`.
pub(crate) fn ca_issued_with_subject(
    cas: &TrustedCas,
    cert: &PeerCertificates,
    subject_dn: &str,
) -> bool {
    let now = UnixTime::now();
    cas.verify_client_cert(&cert.end_entity, &cert.intermediates, now)
        .is_ok()
        && subject(&cert.end_entity).is_some_and(|s| same_dn(&s, subject_dn))
}

/// `self_signed_tls_client_auth` (RFC 8705 §2.2): the certificate is one of `registered`.
pub(crate) fn is_registered(
    cert: &PeerCertificates,
    mut registered: impl Iterator<Item = impl AsRef<[u8]>>,
) -> bool {
    registered.any(|r| r.as_ref() == cert.end_entity.as_ref())
}

/// `x5t#S256` (RFC 8705 §3.1): the base64url SHA-256 of the certificate's DER.
pub(crate) fn thumbprint(cert: &PeerCertificates) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.end_entity.as_ref());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The certificate's subject as RDNs of `type=value`, in the certificate's order.
fn subject(der: &[u8]) -> Option<Vec<(String, String)>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        for attr in rdn.iter() {
            let name = x509_parser::objects::oid2abbrev(
                attr.attr_type(),
                x509_parser::objects::oid_registry(),
            )
            .map(str::to_owned)
            .unwrap_or_else(|_| attr.attr_type().to_id_string());
            rdns.push((name.to_ascii_uppercase(), attr.as_str().ok()?.to_owned()));
        }
    }
    Some(rdns)
}

/// Whether `registered` (as RFC 4514 writes a DN: `CN=client,O=Example`, most specific first)
/// names `subject` (in the certificate's order, least specific first). Attribute types are
/// compared without case, values exactly; the order may be written either way, as operators
/// copy DNs from tools that print it either way.
fn same_dn(subject: &[(String, String)], registered: &str) -> bool {
    let Some(written) = registered
        .split(',')
        .map(|part| {
            let (name, value) = part.split_once('=')?;
            Some((name.trim().to_ascii_uppercase(), value.trim().to_owned()))
        })
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let reversed: Vec<_> = written.iter().rev().cloned().collect();
    written == subject || reversed == subject
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_dn_matches_in_either_order_with_types_in_any_case() {
        let subject = rdns(&[("C", "DE"), ("O", "Example"), ("CN", "client-1")]);
        assert!(same_dn(&subject, "CN=client-1,O=Example,C=DE"));
        assert!(same_dn(&subject, "c=DE, o=Example, cn=client-1"));
        assert!(!same_dn(&subject, "CN=client-2,O=Example,C=DE"));
        assert!(!same_dn(&subject, "CN=client-1,O=Example"));
        assert!(
            !same_dn(&subject, "CN=client-1,O=example,C=DE"),
            "values are exact"
        );
        assert!(!same_dn(&subject, "garbage"));
    }
}
