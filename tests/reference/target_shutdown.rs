//! Cancelling the shutdown token stops the target promptly, even with an open GET stream.
use std::time::Duration;

use mcp_canary::reference::{self, TargetOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn stops_on_cancel_with_open_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let handle = reference::spawn(listener, TargetOptions::default(), shutdown.clone()).await.expect("spawn");

    // Raw requests: the helper's `Target` owns its own token, this test needs to hold it.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let reply = client
        .post(handle.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .expect("initialize");
    let session = reply.headers()["mcp-session-id"].to_str().expect("session id").to_owned();
    let _ = reply.text().await;
    let stream = client
        .get(handle.mcp_url())
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .expect("GET stream");
    assert_eq!(stream.status(), 200);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle.stopped()).await.expect("target stopped within 5 s");
    drop(stream);
    let refused = client.get(format!("http://{addr}/healthz")).timeout(Duration::from_secs(2)).send().await;
    assert!(refused.is_err(), "listener closed after shutdown");
}
