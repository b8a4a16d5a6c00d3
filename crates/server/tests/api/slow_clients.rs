//! Slow and hostile clients: a header deadline, a body deadline, a body size limit and a
//! connection limit, each shown with raw sockets against the real server.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use calyx_testkit::TestServer;

use crate::{spawn_app, spawn_app_with};

/// Reads until the server closes the connection (or `limit` passes); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// The server's own socket: these tests are about its connections, not the proxy's.
fn host_port(app: &TestServer) -> String {
    app.direct.to_string()
}

/// A connection straight to the server, on which `bytes` have been sent.
async fn connect_and_send(app: &TestServer, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(host_port(app)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

#[tokio::test]
async fn slowloris_connections_do_not_starve_other_clients() {
    let app = spawn_app_with(|cfg| {
        cfg.header_read_timeout = Duration::from_secs(3);
        cfg.max_connections = 1024;
    })
    .await;
    let c = app.fixture().build().await;
    let addr = host_port(&app);

    // 200 clients that start a request and then send one header byte every 100 ms, never
    // finishing: each would hold its connection for ever without a header deadline.
    const SLOW: usize = 200;
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: calyx\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        let mut closed_after = vec![None; slow.len()];
        while closed_after.iter().any(Option::is_none)
            && started.elapsed() < Duration::from_secs(15)
        {
            for (i, s) in slow.iter_mut().enumerate() {
                if closed_after[i].is_none() && s.write_all(b"x").await.is_err() {
                    closed_after[i] = Some(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed_after
    });

    // Meanwhile ordinary clients are served, each on a fresh connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..20 {
        let resp = tokio::time::timeout(
            Duration::from_secs(2),
            fresh
                .post(app.url("/oauth/token"))
                .form(&c.client_credentials(c.secret()))
                .send(),
        )
        .await
        .expect("an ordinary client is served while slow clients hold connections")
        .unwrap();
        assert_eq!(resp.status(), 200);
    }

    // And every slow connection was cut by the server near its header deadline, not before.
    let closed_after = trickle.await.unwrap();
    for (i, t) in closed_after.iter().enumerate() {
        let t = t.unwrap_or_else(|| panic!("slow connection {i} was never closed"));
        assert!(
            t >= Duration::from_secs(2),
            "slow connection {i} closed after only {t:?}"
        );
    }
}

#[tokio::test]
async fn connections_whose_headers_never_finish_or_never_start_are_closed_at_the_deadline() {
    let app = spawn_app_with(|cfg| cfg.header_read_timeout = Duration::from_secs(1)).await;
    let mut s = connect_and_send(&app, b"GET /healthz HTTP/1.1\r\nHost: calyx\r\n").await;
    let sent = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("the server closes a connection whose headers stop arriving");
    // Whatever hyper writes first (nothing, or a 408), it is never a served request.
    assert!(!String::from_utf8_lossy(&sent).contains("200 OK"));

    // So is a connection that never sends a byte...
    let mut s = TcpStream::connect(host_port(&app)).await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("the server closes a connection that sends nothing");

    // ...and an idle keep-alive connection, after the same deadline.
    let mut s = connect_and_send(&app, b"GET /healthz HTTP/1.1\r\nHost: calyx\r\n\r\n").await;
    let sent = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("the server closes an idle keep-alive connection");
    assert!(String::from_utf8_lossy(&sent).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_body_that_trickles_past_its_deadline_gets_408_invalid_request() {
    let app = spawn_app_with(|cfg| cfg.body_read_timeout = Duration::from_secs(1)).await;
    let mut s = connect_and_send(
        &app,
        b"POST /oauth/token HTTP/1.1\r\nHost: calyx\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n\
          grant_type=client_credentials",
    )
    .await;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    // Keep trickling one byte every 200 ms: the whole body has a deadline, not each byte.
    loop {
        tokio::select! {
            n = s.read(&mut buf) => {
                let n = n.unwrap();
                response.extend_from_slice(&buf[..n]);
                if n == 0 || response.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let _ = s.write_all(b"&").await;
                assert!(started.elapsed() < Duration::from_secs(10), "no answer to a slow body");
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""error":"invalid_request""#), "{text}");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413_without_a_content_length() {
    let app = spawn_app_with(|cfg| cfg.max_body_bytes = 1024).await;
    let mut s = TcpStream::connect(host_port(&app)).await.unwrap();
    let chunk = "a".repeat(600);
    let req = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: calyx\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains(r#""error":"invalid_request""#), "{text}");
}

#[tokio::test]
async fn oversized_request_headers_are_refused() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url("/healthz"))
        .header("x-filler", "a".repeat(80 * 1024))
        .send()
        .await;
    // hyper answers 431 or closes the connection; either way the request is not served.
    match resp {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
}

#[tokio::test]
async fn past_the_connection_limit_new_clients_wait_until_a_connection_frees() {
    let app = spawn_app_with(|cfg| {
        cfg.max_connections = 4;
        cfg.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = host_port(&app);
    // Four idle connections take every slot.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let url = app.url("/healthz");
        async move { reqwest::get(url).await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a fifth connection was served while four held every slot"
    );
    // One slot frees: the waiting client is served.
    drop(idle.pop());
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting client is served once a connection closes")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}
