//! The 2025 GET stream: notifications arrive on it in the background, a dropped stream is resumed
//! with Last-Event-ID, close() stops it; 405 means no stream.
use crate::client_support;

use axum::http::Method;
use client_support::*;
use mcp_canary::mcp::StreamKind;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[tokio::test]
async fn notifications_on_get_stream_survive_a_drop() {
    let gets = Arc::new(AtomicU32::new(0));
    let g2 = Arc::clone(&gets);
    let server = serve(move |r| {
        let gets = Arc::clone(&g2);
        async move {
            if r.method == Method::GET {
                let n = gets.fetch_add(1, Ordering::SeqCst);
                let note = |i: u32| json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": format!("u{i}")}});
                return match n {
                    // First stream: priming with a short retry, one notification, then closed.
                    0 => sse_reply("id: g0\nretry: 20\ndata:\n\n".to_string() + &event(Some("g1"), &note(1))),
                    // Resumed: the duplicate g1, a server ping, then a new event; held open.
                    1 => {
                        assert_eq!(r.header("last-event-id").as_deref(), Some("g1"));
                        sse_then_stall(
                            event(Some("g1"), &note(1))
                                + &event(Some("g2"), &json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}))
                                + &event(Some("g3"), &note(2)),
                        )
                    }
                    _ => empty(405),
                };
            }
            if let Some(resp) = handshake(&r, "sess") {
                return resp;
            }
            empty(202)
        }
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    let mut notes = client.notifications();
    assert!(client.open_stream().await.expect("open"), "GET stream opened");
    let mut uris = Vec::new();
    for _ in 0..2 {
        let n = tokio::time::timeout(Duration::from_secs(3), notes.recv()).await.expect("in time").unwrap();
        assert_eq!(n.via, StreamKind::GetStream);
        uris.push(n.params["uri"].as_str().unwrap().to_string());
    }
    assert_eq!(uris, ["u1", "u2"]);
    // Wait (bounded) for the answer to the server's ping.
    for _ in 0..50 {
        if client.stream_stats().server_requests_answered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = client.stream_stats();
    assert_eq!(
        (stats.reconnects, stats.resumed, stats.duplicates_dropped, stats.server_requests_answered),
        (1, 1, 1, 1)
    );
    client.close().await.expect("close");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gets.load(Ordering::SeqCst), 2, "no reconnect after close");
    assert_eq!(server.received().iter().filter(|r| r.method == Method::DELETE).count(), 1);
}

#[tokio::test]
async fn method_not_allowed_means_no_stream() {
    let server = serve(|r| async move {
        if r.method == Method::GET {
            return empty(405);
        }
        handshake(&r, "sess").unwrap_or_else(|| empty(202))
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    assert!(!client.open_stream().await.expect("405 is not an error"));
}

#[tokio::test]
async fn dropping_the_client_ends_the_stream_task() {
    let server = serve(|r| async move {
        if r.method == Method::GET {
            return sse_then_stall(": open\n\n");
        }
        handshake(&r, "sess").unwrap_or_else(|| empty(202))
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    let notes = client.notifications();
    assert!(client.open_stream().await.unwrap());
    drop(client);
    // The background task held the only other sender; once it ends, the channel closes.
    let mut notes = notes;
    let r = tokio::time::timeout(Duration::from_secs(2), notes.recv()).await.expect("task ended");
    assert!(r.is_err());
}
