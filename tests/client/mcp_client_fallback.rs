//! Auto negotiation: a server without `server/discover` (400, 404, 405, -32601 or a result not
//! listing 2026-07-28) gets the 2025 handshake; a pinned version is used exactly.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::{ErrorType, ProtocolPreference};
use serde_json::json;

async fn fallback_after(discover: fn(serde_json::Value) -> axum::response::Response) {
    let server = serve(move |r| async move {
        match r.rpc_method() {
            Some("server/discover") => discover(r.id()),
            Some("initialize") => {
                assert_eq!(r.body["params"]["protocolVersion"], "2025-11-25");
                assert!(r.header("mcp-protocol-version").is_none());
                json_reply(200, init_result(&r.id(), "2025-03-26"))
            }
            Some("notifications/initialized") => empty(202),
            _ => json_reply(200, result(&r.id(), json!({}))),
        }
    })
    .await;
    let client = client(config(&server.url));
    let info = client.connect().await.expect("fallback connect");
    assert!(!info.stateless);
    assert_eq!(info.protocol_version, "2025-03-26");
    assert_eq!(info.session_id, None, "no session id issued: stateless 2025 server");
    client.ping().await.expect("ping");
    let ping = server.posts_of("ping").pop().unwrap();
    assert_eq!(ping.header("mcp-protocol-version").as_deref(), Some("2025-03-26"));
    assert!(ping.header("mcp-session-id").is_none());
    let order: Vec<_> = server.received().iter().filter_map(|r| r.rpc_method().map(str::to_string)).collect();
    assert_eq!(order, ["server/discover", "initialize", "notifications/initialized", "ping"]);
}

#[tokio::test]
async fn after_http_400() {
    fallback_after(|_| raw_reply(400, "text/plain", "Bad Request")).await;
}

#[tokio::test]
async fn after_http_405() {
    fallback_after(|_| empty(405)).await;
}

#[tokio::test]
async fn after_method_not_found() {
    fallback_after(|id| json_reply(200, rpc_error(&id, -32601, "Method not found"))).await;
}

#[tokio::test]
async fn after_discover_without_latest() {
    fallback_after(|id| json_reply(200, result(&id, json!({"supportedVersions": ["2025-11-25"]})))).await;
}

#[tokio::test]
async fn server_error_is_not_a_fallback() {
    let server = serve(|_| async move { raw_reply(503, "text/plain", "down") }).await;
    let client = client(config(&server.url));
    assert_eq!(client.connect().await.unwrap_err().error_type(), ErrorType::Http5xx);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn pinned_session_version_skips_discover_and_rejects_counter_offer() {
    let server = serve(|r| async move {
        match r.rpc_method() {
            Some("initialize") => json_reply(200, init_result(&r.id(), "2025-11-25")),
            _ => empty(202),
        }
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.protocol = ProtocolPreference::Pinned("2025-06-18".into());
    let e = client(cfg).connect().await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::JsonrpcError, "{e}");
    assert_eq!(server.posts_of("server/discover").len(), 0);
    assert_eq!(server.posts_of("initialize")[0].body["params"]["protocolVersion"], "2025-06-18");
}
