//! Certificate-bound access tokens (RFC 8705 §3) at the resource server: a token whose `cnf`
//! names the SHA-256 thumbprint of a client certificate (`x5t#S256`, §3.1) is good only on a
//! request made over a mutual-TLS connection with that certificate.
//!
//! The guard does not see TLS: the resource server hands it the certificate its TLS stack
//! verified, as a [`ClientCertificate`] in the request's extensions (the layer and
//! [`Guard::authorize`] read it there) or as an argument ([`Guard::validate_with_certificate`],
//! [`Guard::validate_dpop_with_certificate`]). The rules:
//!
//! - **The thumbprint is read once**, when the token is first verified, and kept with the
//!   cached token beside `cnf.jkt`: a `cnf.x5t#S256` that is not the unpadded base64url of 32
//!   bytes (a SHA-256 hash) is refused as malformed, whatever the request carries. A token
//!   without it is checked as before, and a certificate on its request is not even looked at.
//! - **The certificate must be the one.** The SHA-256 of its DER, computed once when the
//!   [`ClientCertificate`] is made, is compared with the token's thumbprint in constant time
//!   (`subtle`). No certificate, or another one, is 401 `invalid_token` (§3), challenged in
//!   the scheme the request used.
//! - **Both bindings hold at once.** A token bound to a DPoP key and to a certificate needs
//!   the `DPoP` scheme with a proof of the key *and* the certificate; one bound to the
//!   certificate alone is sent with the `Bearer` scheme (RFC 6750, as §3 says).
//! - **Introspection** (§3.2): the answer's top-level `cnf.x5t#S256` binds the token as one in
//!   the token would; a token and an answer naming different certificates are refused.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Guard, GuardError, Verified};

/// The end-entity certificate the client presented in the TLS handshake of the connection a
/// request came on (DER), which the guard checks certificate-bound tokens against (RFC 8705
/// §3). Cheap to clone: make one per connection and put a clone in each of its requests.
///
/// **Terminating TLS yourself:** in the accept loop, take the first certificate of
/// `tokio_rustls::server::TlsStream::get_ref().1.peer_certificates()` (rustls puts the
/// end-entity certificate first) and insert a `ClientCertificate` into the extensions of every
/// request served on that connection, before the [`GuardLayer`](crate::GuardLayer) (or
/// [`Guard::authorize`]) sees them. The TLS handshake proves that the client holds the
/// certificate's private key; the guard then checks that it is the certificate the token is
/// bound to. A connection without a client certificate gets no extension.
///
/// ```
/// # let der: Vec<u8> = vec![0x30, 0x00];
/// # let mut request = axum::http::Request::new(());
/// use calyx_guard::ClientCertificate;
///
/// // Once per connection, `der` being the DER of the peer's first certificate:
/// let certificate = ClientCertificate::new(der);
/// // For each request of that connection:
/// request.extensions_mut().insert(certificate.clone());
/// ```
///
/// **Behind a TLS-terminating proxy**, insert it from whatever the proxy forwards (a header
/// holding the certificate, say), at your own risk: the guard trusts this extension entirely,
/// so the proxy must verify the handshake, must overwrite (never pass on) a client's copy of
/// that header, and must be the only way to reach the API.
#[derive(Clone)]
pub struct ClientCertificate {
    der: Arc<[u8]>,
    /// SHA-256 of `der`.
    thumbprint: [u8; 32],
}

impl ClientCertificate {
    /// The certificate whose DER encoding is `der`; its SHA-256 is computed here, once.
    pub fn new(der: impl Into<Arc<[u8]>>) -> Self {
        let der = der.into();
        let thumbprint = Sha256::digest(&der).into();
        ClientCertificate { der, thumbprint }
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its RFC 8705 §3.1 thumbprint: the unpadded base64url SHA-256 of the DER, which a token
    /// bound to it carries as `cnf.x5t#S256`.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .field("len", &self.der.len())
            .finish()
    }
}

/// The certificate a token is bound to (`cnf.x5t#S256`): as written, for
/// [`Verified::x5t_s256`], and decoded, for the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateThumbprint {
    encoded: Arc<str>,
    sha256: [u8; 32],
}

impl CertificateThumbprint {
    /// A `cnf.x5t#S256` member: a string holding the unpadded base64url of 32 bytes, or
    /// refused.
    pub(crate) fn parse(value: &serde_json::Value) -> Result<Self, GuardError> {
        const MALFORMED: GuardError = GuardError::InvalidToken("malformed cnf.x5t#S256");
        let encoded = value.as_str().ok_or(MALFORMED)?;
        // Decoding refuses padding, whitespace and non-canonical trailing bits, so one hash
        // has one spelling.
        let sha256 = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or(MALFORMED)?;
        Ok(CertificateThumbprint {
            encoded: Arc::from(encoded),
            sha256,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.encoded
    }
}

/// Refuses a certificate-bound token unless `certificate` is its certificate; a token bound to
/// none passes without `certificate` being asked for.
pub(crate) fn confirm<'a>(
    verified: &Verified,
    certificate: impl FnOnce() -> Option<&'a ClientCertificate>,
) -> Result<(), GuardError> {
    let Some(bound) = verified.certificate_binding() else {
        return Ok(());
    };
    let Some(certificate) = certificate() else {
        return Err(GuardError::InvalidToken(
            "the token is bound to a client certificate (cnf.x5t#S256) and the request came \
             with none",
        ));
    };
    if bool::from(bound.sha256.ct_eq(&certificate.thumbprint)) {
        Ok(())
    } else {
        Err(GuardError::InvalidToken(
            "invalid certificate binding: the client certificate is not the one the token is \
             bound to",
        ))
    }
}

impl Guard {
    /// [`Guard::validate`] for a request that came with `certificate` (the client certificate
    /// of its mutual-TLS connection, if any): a token bound to a certificate (`cnf.x5t#S256`,
    /// RFC 8705 §3.1, in the token or the introspection answer) passes only with that
    /// certificate. A token bound to a DPoP key is refused, as by [`Guard::validate`].
    pub async fn validate_with_certificate(
        &self,
        token: &str,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Arc<Verified>, GuardError> {
        let verified = self.bearer(token).await?;
        confirm(&verified, || certificate)?;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_unpadded_base64url_of_a_sha256_hash_is_a_thumbprint() {
        let hash = [7u8; 32];
        let good = URL_SAFE_NO_PAD.encode(hash);
        let parsed = CertificateThumbprint::parse(&json!(good)).unwrap();
        assert_eq!((parsed.as_str(), parsed.sha256), (good.as_str(), hash));
        let padded = base64::engine::general_purpose::URL_SAFE.encode(hash);
        let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode([0xfbu8; 32]);
        for bad in [
            json!(null),
            json!(42),
            json!([good]),
            json!({"x5t#S256": good}),
            json!(""),
            json!(padded),
            json!(standard),
            json!(format!(" {good}")),
            json!(URL_SAFE_NO_PAD.encode([7u8; 20])),
            json!(URL_SAFE_NO_PAD.encode([7u8; 48])),
        ] {
            assert_eq!(
                CertificateThumbprint::parse(&bad),
                Err(GuardError::InvalidToken("malformed cnf.x5t#S256")),
                "{bad}"
            );
        }
    }
}
