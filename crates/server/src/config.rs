//! Configuration: flags and `CALYX_*` variables parse into [`RawConfig`] (in the CLI); this
//! module turns that into [`Settings`], refusing bad combinations at start-up rather than at
//! the first request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use url::Url;

/// Configuration as given, before validation.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Public base URL; derived from the bound address when absent.
    pub issuer: Option<String>,
    /// Database URL.
    pub database_url: String,
    /// PEM certificate chain for TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// Allow an `http://` issuer on a non-loopback host.
    pub insecure_http: bool,
    /// Token issuance limit per client, requests per second; 0 = unlimited.
    pub client_rate_limit: u32,
    /// How often to check the database for changes made elsewhere (CLI, other nodes): the
    /// bound on how long a revoked secret or a retired key keeps working on this node.
    pub reload_interval: Duration,
    /// Base64 AES-256 key sealing private signing keys at rest (never printed).
    pub master_key: Option<SecretString>,
    /// Pepper for secret hashes; when absent one is generated and kept in the database.
    pub pepper: Option<SecretString>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Time allowed for a request's whole body to arrive.
    pub body_read_timeout: Duration,
    /// Time allowed for a request's headers (or a TLS handshake) to arrive; an idle
    /// keep-alive connection is closed after the same time.
    pub header_read_timeout: Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Largest number of pooled database connections.
    pub db_max_connections: u32,
    /// SQLite: fsync on every commit (see `ConnectOptions::sqlite_sync_full`).
    pub sqlite_sync_full: bool,
    /// Seconds within which a just-spent refresh token may be presented again and get the
    /// same successor (0 = any reuse revokes the family).
    pub refresh_reuse_leeway: i64,
    /// Serve the legacy `POST /v1/users/authenticate/{user_id}` (client credentials in a
    /// Bearer header, the user token as plain text). Needs TLS or a loopback address.
    pub legacy_user_authenticate_v1: bool,
}

impl RawConfig {
    /// Defaults for a database URL: loopback, port 8080.
    pub fn new(database_url: impl Into<String>) -> Self {
        RawConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            database_url: database_url.into(),
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            client_rate_limit: 0,
            reload_interval: Duration::from_millis(100),
            master_key: None,
            pepper: None,
            max_body_bytes: 16 * 1024,
            body_read_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            db_max_connections: 8,
            refresh_reuse_leeway: 0,
            sqlite_sync_full: true,
            legacy_user_authenticate_v1: false,
        }
    }
}

/// TLS files, checked to exist.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw configuration these came from.
    pub raw: RawConfig,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
}

impl Settings {
    /// Validates what can be checked before binding.
    pub fn validate(raw: RawConfig) -> anyhow::Result<Settings> {
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (Some(cert), Some(key)) => {
                for f in [cert, key] {
                    std::fs::metadata(f)
                        .with_context(|| format!("reading TLS file {}", f.display()))?;
                }
                Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        if let Some(issuer) = &raw.issuer {
            check_issuer(issuer, raw.insecure_http)?;
        } else if tls.is_none() && !raw.listen.ip().is_loopback() && !raw.insecure_http {
            bail!(
                "refusing to serve plain HTTP on {}: client secrets must never cross an \
                 unencrypted connection. Use --tls-cert/--tls-key, put a TLS proxy in front and \
                 pass --issuer https://..., or pass --insecure-http",
                raw.listen
            );
        }
        if raw.legacy_user_authenticate_v1 && tls.is_none() && !raw.listen.ip().is_loopback() {
            bail!(
                "--legacy-user-authenticate-v1 sends a client secret in every request: serve it \
                 with --tls-cert/--tls-key, or on a loopback address behind a TLS proxy"
            );
        }
        Ok(Settings { raw, tls })
    }

    /// The issuer once the bound address is known.
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        match &self.raw.issuer {
            Some(i) => i.clone(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{bound}")
            }
        }
    }
}

/// RFC 8414 §2: an https URL with no query or fragment. Plain http only for loopback hosts,
/// unless explicitly allowed.
fn check_issuer(issuer: &str, insecure_http: bool) -> anyhow::Result<()> {
    let url = Url::parse(issuer).with_context(|| format!("--issuer {issuer:?} is not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--issuer must not have a query or fragment (RFC 8414 §2)");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback || insecure_http {
                Ok(())
            } else {
                bail!(
                    "refusing the non-loopback http:// issuer {issuer}: client secrets must never \
                     cross an unencrypted connection (use https, or pass --insecure-http)"
                )
            }
        }
        other => bail!("--issuer must be an https URL, not {other}:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_rules() {
        assert!(check_issuer("https://auth.example.com", false).is_ok());
        assert!(check_issuer("http://127.0.0.1:8080", false).is_ok());
        assert!(check_issuer("http://localhost:8080", false).is_ok());
        assert!(check_issuer("http://[::1]:8080", false).is_ok());
        assert!(check_issuer("http://auth.example.com", false).is_err());
        assert!(check_issuer("http://auth.example.com", true).is_ok());
        assert!(check_issuer("https://a.example.com/?x=1", false).is_err());
        assert!(check_issuer("ftp://a.example.com", false).is_err());
    }

    #[test]
    fn printing_the_settings_never_shows_the_pepper_or_the_master_key() {
        let mut raw = RawConfig::new("sqlite::memory:");
        raw.pepper = Some("pepper-value-0d9f".into());
        raw.master_key = Some("bWFzdGVyLWtleS12YWx1ZQ==".into());
        let shown = format!("{:?}", Settings::validate(raw).unwrap());
        assert!(!shown.contains("pepper-value-0d9f"), "{shown}");
        assert!(!shown.contains("bWFzdGVyLWtleS12YWx1ZQ=="), "{shown}");
    }

    #[test]
    fn the_legacy_endpoint_needs_tls_or_loopback() {
        let mut raw = RawConfig::new("sqlite::memory:");
        raw.legacy_user_authenticate_v1 = true;
        assert!(Settings::validate(raw.clone()).is_ok(), "loopback");
        raw.listen = "0.0.0.0:8080".parse().unwrap();
        raw.insecure_http = true;
        assert!(
            Settings::validate(raw).is_err(),
            "plain http on a public interface"
        );
    }

    #[test]
    fn plain_http_on_a_public_interface_is_refused() {
        let mut raw = RawConfig::new("sqlite::memory:");
        raw.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(Settings::validate(raw.clone()).is_err());
        raw.insecure_http = true;
        assert!(Settings::validate(raw).is_ok());
    }
}
