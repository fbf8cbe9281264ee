//! Connect refused is Connect; a server that stalls is Timeout within the request timeout.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::ErrorType;
use std::time::{Duration, Instant};

#[tokio::test]
async fn connect_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client(config(&format!("http://{addr}/mcp").parse().unwrap()));
    let e = client.connect().await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::Connect, "{e}");
}

#[tokio::test]
async fn stalled_sse_response_times_out() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        sse_then_stall(": working\n\n")
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.request_timeout = Duration::from_millis(300);
    let client = client(cfg);
    client.connect().await.expect("connect");
    let start = Instant::now();
    let e = client.list_tools().await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::Timeout, "{e}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stalled_headers_time_out() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        empty(500)
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.request_timeout = Duration::from_millis(300);
    let client = client(cfg);
    client.connect().await.expect("connect");
    let e = client.ping().await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::Timeout, "{e}");
}
