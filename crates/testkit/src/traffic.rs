//! The secret scan's recording half, and what the checking half reads back.
//!
//! Recording: a server started with [`crate::Config::record_into`] is reached through a
//! [`Proxy`] that appends each chunk of traffic, in both directions, to `traffic-<pid>.bin`;
//! the server's own logs go, at trace level, to `server-<pid>.log`; both in that directory
//! (the `api` suite uses [`secret_scan_dir!`]: `target/tmp/secret-scan/`). Checking
//! (`crates/server/tests/secret_scan.rs`): the secrets that crossed the wire — client secrets,
//! refresh tokens, codes, passwords, in forms, JSON bodies, Basic headers and redirect
//! `Location`s — are pulled out of the traffic by [`secrets_in`], and no log line may contain
//! one ([`crate::Scanner`]).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the calling test binary's secret-scan recordings go: `secret-scan/` under Cargo's
/// `CARGO_TARGET_TMPDIR` (set when building integration tests), so every test binary of the
/// workspace agrees on it.
#[macro_export]
macro_rules! secret_scan_dir {
    () => {
        ::std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("secret-scan")
    };
}

struct Recorder {
    file: Mutex<std::fs::File>,
    next_conn: AtomicU64,
}

/// The process's recorder; the first caller's directory holds its file.
fn recorder(dir: &Path) -> &'static Recorder {
    static R: OnceLock<Recorder> = OnceLock::new();
    R.get_or_init(|| {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("traffic-{}.bin", std::process::id()));
        Recorder {
            file: Mutex::new(std::fs::File::create(path).unwrap()),
            next_conn: AtomicU64::new(0),
        }
    })
}

/// Direction of a recorded chunk.
const TO_SERVER: u8 = 0;
const TO_CLIENT: u8 = 1;

impl Recorder {
    /// Appends one frame: connection id, direction, length, bytes. Unbuffered, so nothing is
    /// lost when the test process exits.
    fn record(&self, conn: u64, direction: u8, bytes: &[u8]) {
        let mut frame = Vec::with_capacity(13 + bytes.len());
        frame.extend_from_slice(&conn.to_le_bytes());
        frame.push(direction);
        frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        frame.extend_from_slice(bytes);
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(&frame).unwrap();
    }
}

/// Sends the server's logs, at trace level, to `server-<pid>.log` in `dir` (once per process).
pub fn capture_server_logs(dir: &Path) {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("server-{}.log", std::process::id()));
        let file = std::fs::File::create(path).unwrap();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    });
}

/// A recording TCP proxy: bound first (so the server can be told its public address), then
/// started in front of the server.
pub struct Proxy {
    listener: tokio::net::TcpListener,
    dir: PathBuf,
}

impl Proxy {
    /// Binds a loopback port; the traffic will be recorded into `dir`.
    pub async fn bind(dir: &Path) -> Proxy {
        Proxy {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            dir: dir.to_owned(),
        }
    }

    /// The proxy's address: the server's public one.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Forwards every connection to `target`, recording both directions.
    pub fn start(self, target: SocketAddr) {
        let Proxy { listener, dir } = self;
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let recorder = recorder(&dir);
                let conn = recorder.next_conn.fetch_add(1, Ordering::Relaxed);
                let (client_r, client_w) = client.into_split();
                let (server_r, server_w) = server.into_split();
                tokio::spawn(pipe(recorder, conn, TO_SERVER, client_r, server_w));
                tokio::spawn(pipe(recorder, conn, TO_CLIENT, server_r, client_w));
            }
        });
    }
}

async fn pipe(
    recorder: &'static Recorder,
    conn: u64,
    direction: u8,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                recorder.record(conn, direction, &buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Every stream recorded in `dir`, reassembled: (process file, connection, direction) → bytes.
pub fn recorded_streams(dir: &Path) -> Vec<Vec<u8>> {
    let mut streams: HashMap<(PathBuf, u64, u8), Vec<u8>> = HashMap::new();
    for path in files_named(dir, "traffic-") {
        let data = std::fs::read(&path).unwrap();
        let mut at = 0;
        while at + 13 <= data.len() {
            let conn = u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
            let direction = data[at + 8];
            let len = u32::from_le_bytes(data[at + 9..at + 13].try_into().unwrap()) as usize;
            let body = &data[at + 13..(at + 13 + len).min(data.len())];
            streams
                .entry((path.clone(), conn, direction))
                .or_default()
                .extend_from_slice(body);
            at += 13 + len;
        }
    }
    streams.into_values().collect()
}

/// The files in `dir` whose names start with `prefix`, sorted.
pub fn files_named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    out.sort();
    out
}

/// What kind of secret a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A client secret (form, JSON or Basic credentials).
    ClientSecret,
    /// A refresh token.
    RefreshToken,
    /// An authorization code.
    Code,
    /// A user's password.
    Password,
}

/// Values shorter than this are not taken as secrets: tests send short wrong values such as
/// `nope`, and every real secret Calyx issues is far longer.
const MIN_LEN: usize = 8;

/// The secrets in one stream of HTTP traffic (either direction).
pub fn secrets_in(stream: &[u8]) -> Vec<(Kind, String)> {
    use regex::Regex;
    static PATTERNS: OnceLock<(Regex, Regex, Regex)> = OnceLock::new();
    let (form, json, basic) = PATTERNS.get_or_init(|| {
        (
            Regex::new(r"(?:^|[&?\s])(client_secret|refresh_token|code|password)=([^&\s]+)")
                .unwrap(),
            Regex::new(r#""(client_secret|refresh_token|code|password)"\s*:\s*"([^"]+)""#).unwrap(),
            Regex::new(r"(?i)authorization:\s*basic\s+([A-Za-z0-9+/=]+)").unwrap(),
        )
    });
    let text = String::from_utf8_lossy(stream);
    let kind = |name: &str| match name {
        "client_secret" => Kind::ClientSecret,
        "refresh_token" => Kind::RefreshToken,
        "code" => Kind::Code,
        _ => Kind::Password,
    };
    let decode = |v: &str| {
        url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for c in form.captures_iter(&text) {
        out.push((kind(&c[1]), decode(&c[2])));
    }
    for c in json.captures_iter(&text) {
        out.push((kind(&c[1]), c[2].to_owned()));
    }
    for c in basic.captures_iter(&text) {
        // Decoded as the server decodes it (RFC 6749 §2.3.1).
        if let Ok((_, secret)) = calyx_core::client_auth::parse_basic(&format!("Basic {}", &c[1])) {
            out.push((Kind::ClientSecret, secret));
        }
    }
    out.retain(|(_, v)| v.len() >= MIN_LEN);
    out
}
