//! Configuration, declared once: [`Config`] is every `calyx serve` setting with its flag,
//! `CALYX_*` variable, default and help text (the CLI flattens it into its `serve` command;
//! tests start from [`Config::new`], which takes the same defaults). [`Config::validate`]
//! clamps what has a floor and refuses bad combinations at start-up rather than at the first
//! request, giving the [`Settings`] the server runs with. The pepper and the master key are
//! `SecretString`s from the flag on, so no `Debug` output can show them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{CommandFactory, FromArgMatches};
use secrecy::SecretString;
use url::Url;

/// The settings of `calyx serve`. The database URL, the pepper and the master key are the
/// binary's global flags (every command needs them); the CLI copies them in.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CALYX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL, as it appears in tokens' `iss` [default: http(s)://LISTEN].
    #[arg(long, env = "CALYX_ISSUER")]
    pub issuer: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "CALYX_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CALYX_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) of TLS client certificates: turns on mutual TLS (RFC 8705). The
    /// handshake then asks for a client certificate (without requiring one); clients
    /// registered for tls_client_auth must present one these CAs issued, with their subject
    /// DN, and self_signed_tls_client_auth clients one of their registered certificates.
    #[arg(long, env = "CALYX_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback issuer or address (client secrets would cross the
    /// network unencrypted).
    #[arg(long)]
    pub insecure_http: bool,
    /// Token requests per second allowed per client (0 = unlimited).
    #[arg(long, env = "CALYX_CLIENT_RATE_LIMIT", default_value_t = 0)]
    pub client_rate_limit: u32,
    /// How often to pick up changes made by the CLI or other nodes, milliseconds (at least
    /// 50): a secret rotated without grace or a retired key stops working on this node within
    /// it.
    #[arg(long = "reload-interval-ms", env = "CALYX_RELOAD_INTERVAL_MS", default_value = "100", value_name = "RELOAD_INTERVAL_MS", value_parser = millis)]
    pub reload_interval: Duration,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "CALYX_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's whole body (at least 1).
    #[arg(long, env = "CALYX_BODY_READ_TIMEOUT", default_value = "10", value_name = "BODY_READ_TIMEOUT", value_parser = seconds)]
    pub body_read_timeout: Duration,
    /// Seconds a client has to send a request's headers (or finish a TLS handshake); idle
    /// keep-alive connections are closed after the same time (at least 1).
    #[arg(long, env = "CALYX_HEADER_READ_TIMEOUT", default_value = "10", value_name = "HEADER_READ_TIMEOUT", value_parser = seconds)]
    pub header_read_timeout: Duration,
    /// Open connections at most; more wait in the listen backlog.
    #[arg(long, env = "CALYX_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Largest number of pooled database connections (SQLite: of read connections, beside
    /// the one writer). Default: 8; on SQLite, two per core up to 8.
    #[arg(long, env = "CALYX_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// SQLite durability: `full` fsyncs every commit (survives power loss); `normal` fsyncs at
    /// WAL checkpoints (survives a crash of Calyx, may lose the last commits on power loss).
    #[arg(
        long = "sqlite-synchronous",
        env = "CALYX_SQLITE_SYNCHRONOUS",
        value_name = "SQLITE_SYNCHRONOUS",
        action = clap::ArgAction::Set,
        default_value = "full",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(["full", "normal"]),
            |s: String| s == "full",
        )
    )]
    pub sqlite_sync_full: bool,
    /// Require a server nonce (`DPoP-Nonce`, RFC 9449 §8) in every DPoP proof at the token
    /// endpoint: a proof made ahead of time is then useless after a few minutes.
    #[arg(long, env = "CALYX_DPOP_NONCE")]
    pub dpop_nonce: bool,
    /// Seconds within which a just-spent refresh token may be presented again and get the
    /// same successor (0 = any reuse revokes the whole family).
    #[arg(long, env = "CALYX_REFRESH_REUSE_LEEWAY", default_value_t = 0)]
    pub refresh_reuse_leeway: i64,
    /// Legacy: also serve `POST /v1/users/authenticate/{user_id}` with
    /// `Authorization: Bearer <client_id>:<client_secret>`, answering the user token as plain
    /// text, for clients written against that older shape. Needs TLS or a loopback address.
    #[arg(long, env = "CALYX_LEGACY_USER_AUTHENTICATE_V1")]
    pub legacy_user_authenticate_v1: bool,
    /// Days audit events (and finished webhook deliveries, and usage counts) are kept; the
    /// purge removes older ones.
    #[arg(long, env = "CALYX_AUDIT_RETENTION_DAYS", default_value_t = crate::manage::DEFAULT_AUDIT_RETENTION_DAYS)]
    pub audit_retention_days: i64,
    /// Seconds between scheduled purges (0 = never; `calyx purge` still works). With many
    /// nodes, one at a time runs it.
    #[arg(long = "purge-interval", env = "CALYX_PURGE_INTERVAL", default_value = "3600", value_name = "PURGE_INTERVAL", value_parser = seconds)]
    pub purge_interval: Duration,
    /// The provider's name on every page (login, consent, errors, console, portal); stored,
    /// so it stays until changed again (also with `PATCH /admin/v1/branding`).
    #[arg(long, env = "CALYX_BRAND_NAME")]
    pub brand_name: Option<String>,
    /// A logo image URL shown beside the name (https, or a path on this server).
    #[arg(long, env = "CALYX_BRAND_LOGO_URL")]
    pub brand_logo_url: Option<String>,
    /// Accent colour of buttons, links and focus rings, `#rrggbb`, at least 4.5:1 against
    /// white.
    #[arg(long, env = "CALYX_BRAND_COLOR")]
    pub brand_color: Option<String>,
    /// Log lines as `text` (for people) or `json` (one object per line, for a log pipeline).
    /// Neither has colour codes unless standard error is a terminal.
    #[arg(long, env = "CALYX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Send traces (a span per request) over OTLP/HTTP to this collector base URL, e.g.
    /// `http://otel-collector:4318` (spans go to `/v1/traces` under it). Off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<Url>,
    /// Database URL (the global `--database-url`).
    #[arg(skip)]
    pub database_url: String,
    /// Pepper for secret hashes; when absent one is generated and kept in the database.
    #[arg(skip)]
    pub pepper: Option<SecretString>,
    /// Base64 AES-256 key sealing private signing keys at rest.
    #[arg(skip)]
    pub master_key: Option<SecretString>,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `tracing`'s human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target` and the event's fields at the
    /// top level.
    Json,
}

fn millis(s: &str) -> Result<Duration, std::num::ParseIntError> {
    s.parse().map(Duration::from_millis)
}

fn seconds(s: &str) -> Result<Duration, std::num::ParseIntError> {
    s.parse().map(Duration::from_secs)
}

/// The most often the reload task may poll.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(50);

impl Config {
    /// The defaults the flags declare (the environment is not read), for a database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let command = Defaults::command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(["calyx"])
            .expect("every serve setting has a default");
        let mut config = Defaults::from_arg_matches(&matches)
            .expect("every serve setting has a default")
            .config;
        config.database_url = database_url.into();
        config
    }

    /// Where spans are sent: `--otlp-endpoint` with `/v1/traces` appended (the OTLP/HTTP
    /// rule for the base endpoint); `None` when tracing is off. The binary sets up its
    /// exporter with this before the rest of the settings are validated.
    pub fn otlp_traces_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = &self.otlp_endpoint else {
            return Ok(None);
        };
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
            bail!("--otlp-endpoint must be an http(s) base URL without a query, not {url}");
        }
        Ok(Some(format!(
            "{}/v1/traces",
            url.as_str().trim_end_matches('/')
        )))
    }

    /// Clamps what has a floor and checks what can be checked before binding.
    pub fn validate(mut self) -> anyhow::Result<Settings> {
        self.reload_interval = self.reload_interval.max(MIN_RELOAD_INTERVAL);
        self.body_read_timeout = self.body_read_timeout.max(Duration::from_secs(1));
        self.header_read_timeout = self.header_read_timeout.max(Duration::from_secs(1));
        self.max_connections = self.max_connections.max(1);
        self.refresh_reuse_leeway = self.refresh_reuse_leeway.max(0);
        if self.audit_retention_days < 1 {
            bail!("--audit-retention-days must be at least 1");
        }
        Settings::check(self)
    }
}

/// TLS files, checked to exist.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// The CAs of client certificates, loaded (mutual TLS).
    pub client_cas: Option<crate::mtls::TrustedCas>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration, clamped.
    pub config: Config,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
}

impl Settings {
    fn check(raw: Config) -> anyhow::Result<Settings> {
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (Some(cert), Some(key)) => {
                for f in [cert, key] {
                    std::fs::metadata(f)
                        .with_context(|| format!("reading TLS file {}", f.display()))?;
                }
                let client_cas = raw
                    .tls_client_ca
                    .as_deref()
                    .map(crate::mtls::load_cas)
                    .transpose()?;
                Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_cas,
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
        raw.otlp_traces_url()?;
        if raw.legacy_user_authenticate_v1 && tls.is_none() && !raw.listen.ip().is_loopback() {
            bail!(
                "--legacy-user-authenticate-v1 sends a client secret in every request: serve it \
                 with --tls-cert/--tls-key, or on a loopback address behind a TLS proxy"
            );
        }
        Ok(Settings { config: raw, tls })
    }

    /// The issuer once the bound address is known.
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        match &self.config.issuer {
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
        let mut raw = Config::new("sqlite::memory:");
        raw.pepper = Some("pepper-value-0d9f".into());
        raw.master_key = Some("bWFzdGVyLWtleS12YWx1ZQ==".into());
        let shown = format!("{:?}", raw.validate().unwrap());
        assert!(!shown.contains("pepper-value-0d9f"), "{shown}");
        assert!(!shown.contains("bWFzdGVyLWtleS12YWx1ZQ=="), "{shown}");
    }

    #[test]
    fn the_legacy_endpoint_needs_tls_or_loopback() {
        let mut raw = Config::new("sqlite::memory:");
        raw.legacy_user_authenticate_v1 = true;
        assert!(raw.clone().validate().is_ok(), "loopback");
        raw.listen = "0.0.0.0:8080".parse().unwrap();
        raw.insecure_http = true;
        assert!(raw.validate().is_err(), "plain http on a public interface");
    }

    #[test]
    fn sqlite_synchronous_takes_full_or_normal() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        use clap::Parser;
        let parse = |v: &str| Cli::try_parse_from(["calyx", "--sqlite-synchronous", v]);
        assert!(parse("full").unwrap().config.sqlite_sync_full);
        assert!(!parse("normal").unwrap().config.sqlite_sync_full);
        assert!(parse("off").is_err());
    }

    #[test]
    fn the_defaults_are_the_flags_defaults_and_floors_are_enforced() {
        let c = Config::new("sqlite::memory:");
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.reload_interval, Duration::from_millis(100));
        assert!(c.sqlite_sync_full);
        assert_eq!(c.max_body_bytes, 16 * 1024);
        let mut c = c;
        c.reload_interval = Duration::from_millis(1);
        c.max_connections = 0;
        c.refresh_reuse_leeway = -5;
        let s = c.validate().unwrap();
        assert_eq!(s.config.reload_interval, MIN_RELOAD_INTERVAL);
        assert_eq!(s.config.max_connections, 1);
        assert_eq!(s.config.refresh_reuse_leeway, 0);
    }

    #[test]
    fn log_format_is_text_unless_json_is_asked_for() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        use clap::Parser;
        assert_eq!(Config::new("sqlite::memory:").log_format, LogFormat::Text);
        let parse = |v: &str| Cli::try_parse_from(["calyx", "--log-format", v]);
        assert_eq!(parse("json").unwrap().config.log_format, LogFormat::Json);
        assert_eq!(parse("text").unwrap().config.log_format, LogFormat::Text);
        assert!(parse("xml").is_err());
    }

    #[test]
    fn spans_go_to_v1_traces_under_the_otlp_endpoint() {
        let mut raw = Config::new("sqlite::memory:");
        assert_eq!(raw.otlp_traces_url().unwrap(), None);
        for (base, traces) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            (
                "https://otel.example.com/",
                "https://otel.example.com/v1/traces",
            ),
            ("http://gw:80/otlp", "http://gw/otlp/v1/traces"),
        ] {
            raw.otlp_endpoint = Some(base.parse().unwrap());
            assert_eq!(raw.otlp_traces_url().unwrap().as_deref(), Some(traces));
        }
        raw.otlp_endpoint = Some("grpc://collector:4317".parse().unwrap());
        assert!(raw.clone().validate().is_err());
    }

    #[test]
    fn plain_http_on_a_public_interface_is_refused() {
        let mut raw = Config::new("sqlite::memory:");
        raw.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(raw.clone().validate().is_err());
        raw.insecure_http = true;
        assert!(raw.validate().is_ok());
    }
}
