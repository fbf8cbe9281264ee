//! A 50 MB body against a 1 MB cap fails fast as BodyTooLarge, as JSON and as SSE.
use crate::client_support;

use axum::body::Body;
use bytes::Bytes;
use client_support::*;
use futures::StreamExt;
use mcp_canary::mcp::ErrorType;
use std::time::{Duration, Instant};

/// 50 MB in 64 KiB chunks, produced lazily.
fn huge(prefix: &'static str) -> Body {
    let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from_static(prefix.as_bytes())) });
    Body::from_stream(head.chain(futures::stream::iter((0..800).map(move |_| Ok(chunk.clone())))))
}

async fn against(sse: bool) {
    let server = serve(move |r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        if sse {
            raw_reply(200, "text/event-stream", huge("data: {\"x\":\""))
        } else {
            raw_reply(200, "application/json", huge("{\"x\":\""))
        }
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.max_response_bytes = 1 << 20;
    cfg.request_timeout = Duration::from_secs(20);
    let client = client(cfg);
    client.connect().await.expect("connect");
    let start = Instant::now();
    let e = client.list_tools().await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::BodyTooLarge, "{e}");
    assert!(start.elapsed() < Duration::from_secs(3), "failed fast: {:?}", start.elapsed());
}

#[tokio::test]
async fn json_body_over_cap() {
    against(false).await;
}

#[tokio::test]
async fn sse_body_over_cap() {
    against(true).await;
}

/// A body announced (Content-Length) over the cap is refused before any of it is read: the
/// server here sends a few bytes of its 50 MB and then nothing.
#[tokio::test]
async fn announced_length_over_cap_is_refused_unread() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        let head = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"{\"x\":\"")) });
        let body = Body::from_stream(head.chain(futures::stream::pending()));
        let mut resp = raw_reply(200, "application/json", body);
        resp.headers_mut().insert("content-length", "50000000".parse().unwrap());
        resp
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.max_response_bytes = 1 << 20;
    cfg.request_timeout = Duration::from_secs(10);
    let client = client(cfg);
    client.connect().await.expect("connect");
    let start = Instant::now();
    let e = client.list_tools().await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::BodyTooLarge, "{e}");
    assert!(start.elapsed() < Duration::from_secs(3), "refused at once: {:?}", start.elapsed());
}
