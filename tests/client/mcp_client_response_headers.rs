//! The client keeps the response headers a caller asks for (a balancer's served-by header) from
//! the latest response, failed ones included, and nothing when none were asked for.
use crate::client_support;

use axum::http::HeaderValue;
use client_support::*;
use mcp_canary::mcp::McpError;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[tokio::test]
async fn latest_response_headers_are_captured_even_on_errors() {
    let pings = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&pings);
    let server = serve(move |r| {
        let pings = Arc::clone(&counter);
        async move {
            let mut resp = match handshake(&r, "s-1") {
                Some(resp) => resp,
                // The first ping is served by replica b, the second by c, which does not know the session.
                None if pings.fetch_add(1, Ordering::SeqCst) == 0 => json_reply(200, result(&r.id(), json!({}))),
                None => json_reply(404, rpc_error(&json!(null), -32001, "Session not found")),
            };
            let served_by = match r.rpc_method() {
                Some("ping") if pings.load(Ordering::SeqCst) == 1 => "b",
                Some("ping") => "c",
                _ => "a",
            };
            resp.headers_mut().insert("x-served-by", HeaderValue::from_static(served_by));
            resp
        }
    })
    .await;

    let client = client(config(&server.url));
    client.capture_response_headers(vec!["x-served-by".parse().unwrap()]);
    assert!(client.last_response_headers().is_empty(), "nothing before the first response");
    client.connect().await.expect("connect");
    assert_eq!(client.last_response_headers()["x-served-by"], "a");
    client.ping().await.expect("first ping");
    assert_eq!(client.last_response_headers()["x-served-by"], "b");
    let lost = client.ping().await.expect_err("second ping");
    assert!(matches!(lost, McpError::SessionExpired { status: 404 }), "{lost:?}");
    assert_eq!(client.last_response_headers()["x-served-by"], "c", "the failed response's header");
    assert_eq!(client.last_response_headers().len(), 1, "only the asked-for header");

    // A client that asked for nothing keeps nothing.
    let other = client_support::client(config(&server.url));
    other.connect().await.expect("connect");
    assert!(other.last_response_headers().is_empty());
}
