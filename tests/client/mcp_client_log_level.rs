//! Opting into log notifications (`ClientConfig::log_level`): under 2026-07-28 every request
//! carries `_meta["io.modelcontextprotocol/logLevel"]` (a server of that revision sends no
//! `notifications/message` for a request without it); under the 2025 revisions nothing changes on
//! the wire.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::protocol::META_LOG_LEVEL;
use mcp_canary::mcp::{LogLevel, McpClient};
use serde_json::{Value, json};
use std::time::Duration;

/// A 2026-07-28 server that, like the Python SDK 2.x, sends the `notify` tool's log message only
/// to a request that opted in.
async fn strict_stateless_server() -> Scripted {
    serve(|r| async move {
        let id = r.id();
        let meta = r.body.pointer("/params/_meta").cloned().unwrap_or(Value::Null);
        match r.rpc_method() {
            Some("server/discover") => json_reply(
                200,
                result(
                    &id,
                    json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
                    "capabilities": {"tools": {}, "logging": {}}}),
                ),
            ),
            Some("tools/call") => {
                let done = event(None, &result(&id, json!({"resultType": "complete", "content": []})));
                match meta.get(META_LOG_LEVEL) {
                    Some(level) => {
                        let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                            "params": {"level": "info", "data": {"nonce": "n1", "asked": level}}});
                        sse_reply(event(None, &log) + &done)
                    }
                    None => sse_reply(done),
                }
            }
            _ => json_reply(404, rpc_error(&id, -32601, "Method not found")),
        }
    })
    .await
}

/// The log message the server sent for one `notify` call, if any arrived within a short wait.
async fn notify_and_listen(client: &McpClient) -> Option<Value> {
    let mut rx = client.notifications();
    let called = client.call_tool("notify", json!({"nonce": "n1"}), Some("tok")).await.expect("tools/call");
    assert!(!called.is_error);
    // The message comes before the response on the same stream: it is already buffered.
    match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        Ok(Ok(n)) if n.method == "notifications/message" => Some(n.params.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn stateless_requests_carry_the_log_level_when_asked() {
    for own_connections in [false, true] {
        let server = strict_stateless_server().await;
        let mut cfg = config(&server.url);
        cfg.log_level = Some(LogLevel::Debug);
        let client = if own_connections {
            McpClient::with_own_connections(cfg, reqwest::Client::new())
        } else {
            McpClient::new(cfg, reqwest::Client::new())
        };
        assert!(client.connect().await.expect("discover").stateless);
        let got = notify_and_listen(&client).await.expect("the opted-in request gets its log message");
        assert_eq!(got["data"]["asked"], "debug", "{got}");
        // A subscriptions/listen stream opts in too (the server refuses it here: no stream).
        assert!(!client.open_stream().await.expect("listen refused cleanly"));

        let posts = server.received();
        assert!(posts.len() >= 3, "{posts:?}");
        for post in &posts {
            let meta = &post.body["params"]["_meta"];
            assert_eq!(meta[META_LOG_LEVEL], "debug", "own_connections={own_connections}: {}", post.body);
            assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28", "{}", post.body);
        }
        // The caller's own `_meta` keys are kept beside it.
        assert_eq!(server.posts_of("tools/call")[0].body["params"]["_meta"]["progressToken"], "tok");
        assert_eq!(server.posts_of("subscriptions/listen").len(), 1);
    }
}

#[tokio::test]
async fn without_a_level_no_opt_in_is_sent_and_no_log_message_comes() {
    let server = strict_stateless_server().await;
    let client = client(config(&server.url));
    client.connect().await.expect("discover");
    assert!(notify_and_listen(&client).await.is_none(), "a strict server sends nothing without the opt-in");
    for post in server.received() {
        assert!(post.body["params"]["_meta"].get(META_LOG_LEVEL).is_none(), "{}", post.body);
    }
}

#[tokio::test]
async fn session_revisions_send_no_log_level() {
    let server = serve(|r| async move {
        if let Some(reply) = handshake(&r, "s1") {
            return reply;
        }
        let id = r.id();
        match r.rpc_method() {
            Some("tools/call") => json_reply(200, result(&id, json!({"content": []}))),
            _ => json_reply(200, rpc_error(&id, -32601, "Method not found")),
        }
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.log_level = Some(LogLevel::Info);
    let client = client(cfg);
    assert!(!client.connect().await.expect("initialize").stateless);
    client.call_tool("notify", json!({"nonce": "n1"}), None).await.expect("tools/call");
    // Past the `server/discover` probe (a 2026-07-28 request, refused here), nothing opts in.
    for post in server.received().into_iter().filter(|p| p.rpc_method() != Some("server/discover")) {
        assert!(post.body["params"]["_meta"].get(META_LOG_LEVEL).is_none(), "{}", post.body);
        assert_ne!(post.rpc_method(), Some("logging/setLevel"), "the client sends no setLevel of its own");
    }
}
