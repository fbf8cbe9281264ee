//! A dead session (404 by the spec, 400 from the TypeScript server) is SessionExpired, and
//! connect() on the same client starts a new session.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::McpError;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

async fn expiry_with(status: u16) {
    let sessions = Arc::new(AtomicU32::new(0));
    let s2 = Arc::clone(&sessions);
    let server = serve(move |r| {
        let sessions = Arc::clone(&s2);
        async move {
            if r.rpc_method() == Some("initialize") {
                let n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
                return with_session(json_reply(200, init_result(&r.id(), "2025-06-18")), &format!("sess-{n}"));
            }
            if let Some(resp) = handshake(&r, "unused") {
                return resp;
            }
            let current = format!("sess-{}", sessions.load(Ordering::SeqCst));
            // The first session dies after the handshake.
            if r.header("mcp-session-id").as_deref() != Some(current.as_str()) || current == "sess-1" {
                return json_reply(status, rpc_error(&json!(null), -32000, "Session not found"));
            }
            json_reply(200, result(&r.id(), json!({})))
        }
    })
    .await;
    let client = client(config(&server.url));
    let first = client.connect().await.expect("connect");
    assert_eq!(first.protocol_version, "2025-06-18", "counter-offer accepted");
    let e = client.ping().await.unwrap_err();
    assert!(matches!(e, McpError::SessionExpired { status: s } if s == status), "{e:?}");
    let second = client.connect().await.expect("reconnect");
    assert_eq!(second.session_id.as_deref(), Some("sess-2"));
    client.ping().await.expect("ping on the new session");
    let last = server.received().pop().unwrap();
    assert_eq!(last.header("mcp-session-id").as_deref(), Some("sess-2"));
}

#[tokio::test]
async fn expired_with_404() {
    expiry_with(404).await;
}

#[tokio::test]
async fn expired_with_400() {
    expiry_with(400).await;
}
