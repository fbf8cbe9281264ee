//! The lean transport's own paths (`mcp::lean` and `mcp::h1`, profile sessions on plain http): a
//! server that closes every connection after its answer, and a GET stream whose response head is
//! larger than one socket read. The shared reqwest path must agree.
use crate::client_support;

use axum::http::{HeaderValue, Method};
use client_support::*;
use mcp_canary::mcp::{McpClient, StreamKind};
use serde_json::json;
use std::time::Duration;

/// `Connection: close` on every answer but the stream: no kept connection is ever reusable.
fn closing(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert("connection", HeaderValue::from_static("close"));
    r
}

async fn server() -> Scripted {
    serve(move |r| async move {
        if r.method == Method::GET {
            // A head larger than the 4 KB first read of a response head.
            let mut resp = sse_then_stall(event(
                Some("e1"),
                &json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "big-head"}}),
            ));
            resp.headers_mut().insert("x-padding", HeaderValue::from_str(&"p".repeat(9000)).unwrap());
            return resp;
        }
        if let Some(resp) = handshake(&r, "sess") {
            return closing(resp);
        }
        closing(json_reply(200, json!({"jsonrpc": "2.0", "id": r.id(), "result": {"tools": []}})))
    })
    .await
}

#[tokio::test]
async fn closed_connections_and_a_large_stream_head() {
    let server = server().await;
    let shared = McpClient::new(config(&server.url), reqwest::Client::new());
    let own = McpClient::with_own_connections(config(&server.url), reqwest::Client::new());
    assert!(!shared.owns_connections() && own.owns_connections());
    for client in [shared, own] {
        let info = client.connect().await.expect("handshake over connections the server closes");
        assert_eq!(info.session_id.as_deref(), Some("sess"));
        for _ in 0..3 {
            assert!(client.list_tools().await.expect("request after a closed connection").is_empty());
        }
        let mut notes = client.notifications();
        assert!(client.open_stream().await.expect("stream with a 9 KB head"), "GET stream opened");
        let n = tokio::time::timeout(Duration::from_secs(3), notes.recv()).await.expect("in time").unwrap();
        assert_eq!((n.via, n.params["data"].as_str()), (StreamKind::GetStream, Some("big-head")));
        client.close().await.expect("DELETE");
    }
    // server/discover, initialize, initialized and 3 x tools/list per client, each answered and
    // its connection closed; then one DELETE each.
    let count = |m: Method| server.received().iter().filter(|r| r.method == m).count();
    assert_eq!((count(Method::POST), count(Method::DELETE)), (2 * 6, 2));
}
