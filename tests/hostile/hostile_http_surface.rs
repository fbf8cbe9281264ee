//! The daemon's own HTTP port against hostile clients: a half-sent request, a reader that never
//! reads and idle connections cannot delay SIGTERM past `shutdown_grace` plus the fixed bound;
//! hundreds of idle connections under a small open-file limit do not make `/metrics`
//! unreachable; a request head sent slowly, and an idle keep-alive connection, are closed after
//! the header-read timeout. All traffic stays on 127.0.0.1.

use crate::common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{scrape_until, start_daemon, start_daemon_nofile, start_target};
use mcp_canary::http::serve::{HEADER_READ_TIMEOUT, SHUTDOWN_BOUND};

fn config(mcp_url: &str, grace: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "{grace}"
[[targets]]
name = "plain"
url = "{mcp_url}"
interval = "30s"
timeout = "5s"
"#
    )
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").trim_end_matches('/').to_string()
}

async fn connect(addr: &str) -> TcpStream {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .expect("connect within 5 s")
        .expect("connect")
}

/// Read (and discard) until the server closes the connection or `within` passes; the time it
/// took, or `None` when the connection was still open.
async fn closed_within(stream: &mut (impl AsyncReadExt + Unpin), within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// SIGTERM while a probe is stalled by its target and clients hold a half-sent request, a
/// pipeline of `/metrics` requests whose answers they never read, and idle connections: exit 0
/// within `shutdown_grace` plus [`SHUTDOWN_BOUND`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_whatever_clients_hold() {
    let (_target, mcp_url) = start_target(&[]).await;
    let grace = Duration::from_secs(2);
    // The first cycle hangs on the target for 30 s: the stop waits `shutdown_grace` for it.
    common::admin(&mcp_url, "/admin/knobs", serde_json::json!({"stall": true})).await;
    let config = config(&mcp_url, "2s").replace("timeout = \"5s\"", "timeout = \"30s\"\njitter = 0.0");
    let (mut daemon, _dir, base) = start_daemon("http-hostile-shutdown", &config, &[]).await;
    let (_, ok) = scrape_until(&base, Duration::from_secs(20), |s| s.text.contains("mcp_canary_")).await;
    assert!(ok, "no scrape:\n{}", daemon.log_text());
    let addr = addr(&base);

    let mut half = connect(&addr).await;
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // 2,000 pipelined scrapes (tens of MB of answers) and not a byte read: the daemon's writes
    // block on a full socket.
    let mut reader = connect(&addr).await;
    let pipeline = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let _ = tokio::time::timeout(Duration::from_secs(5), reader.write_all(&pipeline)).await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(connect(&addr).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    // Generous for a loaded machine; the assertion below holds the documented bound.
    let code = daemon.terminate(grace + SHUTDOWN_BOUND + Duration::from_secs(10)).await;
    let took = started.elapsed();
    eprintln!("stopped {took:?} after SIGTERM (shutdown_grace {grace:?})");
    assert_eq!(code, Some(0), "no clean exit within {:?}; log:\n{}", took, daemon.log_text());
    assert!(
        took <= grace + SHUTDOWN_BOUND + Duration::from_secs(1),
        "stopped in {took:?}, beyond shutdown_grace {grace:?} + {SHUTDOWN_BOUND:?}:\n{}",
        daemon.log_text()
    );
    drop((half, reader, idle));
}

/// 400 idle connections to a daemon limited to 256 open files: `/metrics` still answers at once
/// (the connection cap keeps descriptors, and a new connection displaces an idle one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_starve_metrics() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (mut daemon, _dir, base) = start_daemon_nofile("http-hostile-idle", &config(&mcp_url, "2s"), 256).await;
    let (_, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        s.value("mcp_canary_probes_total", &[("target", "plain")]) >= 1.0
    })
    .await;
    assert!(ok, "no first cycle:\n{}", daemon.log_text());
    let addr = addr(&base);

    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(connect(&addr).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    // A scraper keeps its connection: three scrapes on it, more idle connections in between.
    for round in 0..3 {
        let started = Instant::now();
        let resp = client.get(format!("{base}/metrics")).send().await;
        let body = match resp {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!("scrape {round} after {} idle connections failed: {e}\n{}", idle.len(), daemon.log_text()),
        };
        assert!(body.contains("mcp_canary_probes_total"), "scrape {round}: {body}");
        eprintln!("scrape {round} after {} idle connections: {:?}", idle.len(), started.elapsed());
        assert!(started.elapsed() < Duration::from_secs(3), "scrape {round} took {:?}", started.elapsed());
        for _ in 0..100 {
            idle.push(connect(&addr).await);
        }
    }
    drop(idle);
    // Hundreds over the cap were displaced, and counted.
    let (scrape, ok) = scrape_until(&base, Duration::from_secs(5), |s| {
        s.value("mcp_canary_http_connections_closed_total", &[("reason", "displaced")]) >= 100.0
    })
    .await;
    assert!(ok, "displaced connections not counted:\n{}", scrape.text);
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0), "{}", daemon.log_text());
}

/// A request head trickled a header a second, and an idle keep-alive connection after a
/// complete request, are both closed after [`HEADER_READ_TIMEOUT`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_are_disconnected() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (mut daemon, _dir, base) = start_daemon("http-hostile-slow", &config(&mcp_url, "2s"), &[]).await;
    let addr = addr(&base);
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);

    let slow = connect(&addr).await;
    let (mut slow_read, mut slow_write) = slow.into_split();
    slow_write.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if slow_write.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
    });

    let mut keep_alive = connect(&addr).await;
    keep_alive.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !answer.ends_with(b"ok\n") {
            let n = keep_alive.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answered within 5 s");

    let (slow_closed, idle_closed) =
        tokio::join!(closed_within(&mut slow_read, limit), closed_within(&mut keep_alive, limit));
    trickle.abort();
    let slow_closed = slow_closed.unwrap_or_else(|| panic!("slow request head still open after {limit:?}"));
    let idle_closed = idle_closed.unwrap_or_else(|| panic!("idle keep-alive connection still open after {limit:?}"));
    eprintln!("slow request head closed after {slow_closed:?}, idle keep-alive after {idle_closed:?}");
    assert!(slow_closed + Duration::from_secs(1) >= HEADER_READ_TIMEOUT, "closed too early: {slow_closed:?}");
    assert!(idle_closed + Duration::from_secs(1) >= HEADER_READ_TIMEOUT, "closed too early: {idle_closed:?}");
    // The daemon still serves, and counted both closes.
    let (scrape, ok) = scrape_until(&base, Duration::from_secs(5), |s| {
        s.value("mcp_canary_http_connections_closed_total", &[("reason", "header_timeout")]) >= 2.0
    })
    .await;
    assert!(ok, "header timeouts not counted:\n{}\n{}", scrape.text, daemon.log_text());
    assert_eq!(scrape.value("mcp_canary_http_connections_closed_total", &[("reason", "request_timeout")]), 0.0);
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0), "{}", daemon.log_text());
}

/// Over TLS: a client that stops in the middle of its handshake, and one that finishes the
/// handshake but never sends a request head, are both closed [`HEADER_READ_TIMEOUT`] after
/// they connected (the handshake counts against the head's time), while a real client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_are_closed_by_the_header_timeout() {
    use std::sync::Arc;

    let pki = crate::tls::Pki::new();
    let (_target, mcp_url) = start_target(&[]).await;
    let config = config(&mcp_url, "2s").replace("[[targets]]", &format!("{}[[targets]]", pki.server_tls("")));
    let (mut daemon, _dir, base) = start_daemon("http-hostile-tls", &config, &[]).await;
    let addr = base.trim_start_matches("https://").to_string();
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);

    // A TLS record header announcing a 512-byte ClientHello, and nothing more.
    let started = Instant::now();
    let mut stalled = connect(&addr).await;
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    // A complete handshake, then silence.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(pem_der(&pki.ca_pem))).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let silent_started = Instant::now();
    let mut silent = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, connect(&addr).await)
        .await
        .expect("TLS handshake");

    // Meanwhile a scraper is served.
    let scraped = pki.client(false).get(format!("{base}/metrics")).send().await.expect("scrape during the stall");
    assert!(scraped.status().is_success());

    let waiting = Instant::now();
    let (stalled_closed, silent_closed) =
        tokio::join!(closed_within(&mut stalled, limit), closed_within(&mut silent, limit));
    let stalled_closed = stalled_closed.unwrap_or_else(|| panic!("stalled handshake still open after {limit:?}"));
    let silent_closed = silent_closed.unwrap_or_else(|| panic!("silent TLS connection still open after {limit:?}"));
    // From each connect to its close.
    let stalled_total = waiting - started + stalled_closed;
    let silent_total = waiting - silent_started + silent_closed;
    eprintln!("stalled handshake closed after {stalled_total:?}, silent TLS connection after {silent_total:?}");
    for (what, total) in [("stalled handshake", stalled_total), ("silent TLS connection", silent_total)] {
        assert!(total + Duration::from_secs(1) >= HEADER_READ_TIMEOUT, "{what} closed too early: {total:?}");
        assert!(total <= HEADER_READ_TIMEOUT + Duration::from_secs(3), "{what} closed late: {total:?}");
    }

    let (scrape, ok) = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text = pki.client(false).get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
            let scrape = common::Scrape::parse(&text);
            if scrape.value("mcp_canary_http_connections_closed_total", &[("reason", "header_timeout")]) >= 2.0 {
                return (scrape, true);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .unwrap_or_default();
    assert!(ok, "header timeouts not counted:\n{}\n{}", scrape.text, daemon.log_text());
    assert_eq!(scrape.value("mcp_canary_http_connections_closed_total", &[("reason", "tls_handshake")]), 0.0);
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0), "{}", daemon.log_text());
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}
