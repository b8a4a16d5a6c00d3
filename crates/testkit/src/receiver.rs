//! [`Receiver`]: a webhook receiver on a local port that records what it is sent, answers
//! 500 to the first requests when told to (to make the sender retry), and checks signatures
//! as a real receiver would.

use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Calyx-Signature` header.
    pub signature: String,
    /// The `Calyx-Event-Id` header.
    pub event_id: String,
    /// The raw body.
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// True when the signature is `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` under
    /// `secret`, checked in constant time as a receiver should.
    pub fn signed_with(&self, secret: &str) -> bool {
        let mut t = None;
        let mut v1 = None;
        for part in self.signature.split(',') {
            match part.split_once('=') {
                Some(("t", v)) => t = Some(v),
                Some(("v1", v)) => v1 = Some(v),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return false;
        };
        let Some(tag) = decode_hex(v1) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hmac::verify(&key, format!("{t}.{}", self.body).as_bytes(), &tag).is_ok()
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// The URL to subscribe (`http://127.0.0.1:<port>/hook`).
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on a free port; the first `fail_first` requests get 500.
    pub async fn start(fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, fail_first)
    }

    /// Listens on `port` (one a webhook was already subscribed at).
    pub async fn start_on(port: u16, fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::serve(listener, fail_first)
    }

    fn serve(listener: tokio::net::TcpListener, fail_first: usize) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    let status = if log.len() < fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    log.push(Received {
                        signature: header("calyx-signature"),
                        event_id: header("calyx-event-id"),
                        body,
                        status: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            received,
            task,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
