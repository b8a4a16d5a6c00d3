//! The accept loop: a connection limit, a deadline for request headers and for the TLS
//! handshake, and graceful shutdown, for plain HTTP and TLS alike.
//!
//! `axum::serve` gives hyper no timer, so a client that sends its headers one byte at a time
//! (slowloris) would hold its connection for ever, and it accepts without bound. Rather than
//! wrap it, this module drives hyper's HTTP/1.1 connection builder itself: the builder carries
//! the header deadline, which runs from the moment a connection can take a request — so a
//! connection that never sends a byte, or sits idle after a response, is closed too — and a
//! semaphore permit, taken before `accept`, caps open connections: past the cap, new
//! connections wait in the kernel's backlog instead of costing memory here.
//!
//! HTTP/1.1 only, TLS included (ALPN offers `http/1.1`): hyper's HTTP/2 server has no
//! header or idle deadline, and protocol detection would read a first byte with no timer
//! at all. Token endpoints gain nothing from multiplexing. Request *bodies* get their own deadline
//! and size limit in [`crate::routes`], where an error can be answered in JSON.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::mtls::{ClientCertificate, PeerCertificates};
use crate::routes::App;

/// What one client may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Time allowed for a request's headers (and for a TLS handshake) to arrive, counted
    /// from when the connection is ready for the next request.
    pub header_read_timeout: Duration,
}

/// How long in-flight requests may run on after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Largest request head (request line plus headers); beyond it the client gets 431. hyper's
/// default is ~400 KiB, far more than any OAuth request needs.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Loads a certificate chain and private key into a TLS acceptor (ALPN: HTTP/1.1).
pub(crate) fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key from {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?;
    let builder = match &files.client_cas {
        // Mutual TLS (RFC 8705): see `crate::mtls` for what is checked where.
        Some(cas) => builder.with_client_cert_verifier(Arc::new(
            crate::mtls::OptionalClientCertificates::new(cas.clone()),
        )),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("pairing the TLS certificate with its key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (up to [`DRAIN`]).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: App,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.context("the connection semaphore closed")?,
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(&builder, watcher, stream, remote, None, app).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let cert = client_certificate(stream.get_ref().1);
                            serve_connection(&builder, watcher, stream, remote, cert, app).await
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
        });
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("connections still open {}s after shutdown; closing them", DRAIN.as_secs());
        }
    }
    Ok(())
}

/// The client certificate of a mutual-TLS connection, if the client sent one.
fn client_certificate(conn: &rustls::ServerConnection) -> Option<ClientCertificate> {
    let (end_entity, intermediates) = conn.peer_certificates()?.split_first()?;
    Some(ClientCertificate(Arc::new(PeerCertificates {
        end_entity: end_entity.clone().into_owned(),
        intermediates: intermediates
            .iter()
            .map(|c| c.clone().into_owned())
            .collect(),
    })))
}

/// Serves one connection; the app learns each request's peer address and the connection's
/// client certificate.
async fn serve_connection<S>(
    builder: &http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    remote: SocketAddr,
    cert: Option<ClientCertificate>,
    app: App,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        app.call(req, remote)
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::trace!(%remote, error = %e, "connection ended with an error");
    }
}
