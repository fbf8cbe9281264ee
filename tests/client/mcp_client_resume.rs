//! A POST's SSE stream cut before the response is resumed with GET + Last-Event-ID after `retry`;
//! the replayed event is dropped as a duplicate.
use crate::client_support;

use axum::http::Method;
use client_support::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[tokio::test]
async fn cut_stream_is_resumed_and_replay_deduplicated() {
    let call_id = Arc::new(AtomicU64::new(0));
    let cid = Arc::clone(&call_id);
    let server = serve(move |r| {
        let cid = Arc::clone(&cid);
        async move {
            if r.method == Method::GET {
                // Replay: the already-seen notification again (duplicate), an old response, then ours.
                assert_eq!(r.header("last-event-id").as_deref(), Some("s1-2"), "CR stripped from the id");
                let id = json!(cid.load(Ordering::SeqCst));
                let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
                let body = event(Some("s1-2"), &note)
                    + "data: {}\n\n"
                    + &event(Some("s0-9"), &result(&json!(1), json!({"old": true})))
                    + &event(Some("s1-3"), &result(&id, json!({"content": [], "isError": false})));
                return sse_then_stall(body);
            }
            if let Some(resp) = handshake(&r, "sess") {
                return resp;
            }
            cid.store(r.id().as_u64().unwrap(), Ordering::SeqCst);
            let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
            // Priming event with retry, one notification, then the server closes the stream.
            sse_reply(
                "id: s1-1\r\nretry: 50\r\ndata:\r\n\r\n".to_string() + &format!("data: {note}\r\nid: s1-2\r\n\r\n"),
            )
        }
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    let mut notes = client.notifications();
    let started = std::time::Instant::now();
    let r = client.call_tool("slow", json!({}), None).await.expect("response after resumption");
    assert!(!r.is_error);
    assert!(started.elapsed() >= std::time::Duration::from_millis(50), "waited for retry");
    let stats = client.stream_stats();
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.resumed, 1);
    assert_eq!(stats.duplicates_dropped, 2, "the replayed notification and the old response: {stats:?}");
    assert!(notes.try_recv().is_ok());
    assert!(notes.try_recv().is_err(), "the replayed notification is not delivered twice");
    let gets: Vec<_> = server.received().into_iter().filter(|r| r.method == Method::GET).collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].header("mcp-session-id").as_deref(), Some("sess"));
}

#[tokio::test]
async fn stream_ending_without_response_and_no_resumption_is_invalid_sse() {
    let server = serve(|r| async move {
        if r.method == Method::GET {
            return empty(405);
        }
        if let Some(resp) = handshake(&r, "sess") {
            return resp;
        }
        sse_reply("id: a1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n")
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    let e = client.list_tools().await.unwrap_err();
    assert_eq!(e.error_type(), mcp_canary::mcp::ErrorType::InvalidSse, "{e}");
}
