//! SSE framing as real servers send it: CRLF, comments, `data:` before `id:`, `event: message`,
//! empty and `{}` priming events.
use crate::client_support;

use client_support::*;
use serde_json::json;

#[tokio::test]
async fn odd_but_valid_framing_is_understood() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        let id = r.id();
        let response = result(&id, json!({"tools": [{"name": "a"}, {"name": "b"}]}));
        let note =
            json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}});
        let body = format!(
            ": ping - 2026-11-25 10:00:00\r\n\r\n\
             id: p0\r\nretry: 100\r\ndata:\r\n\r\n\
             data: {{}}\r\nid: p1\r\n\r\n\
             event: message\r\ndata: {note}\r\nid: 7\r\n\r\n\
             data: {response}\r\nid: 8\r\n\r\n"
        );
        sse_reply(body)
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    let mut notes = client.notifications();
    let tools = client.list_tools().await.expect("tools/list over quirky SSE");
    assert_eq!(tools.len(), 2);
    let n = notes.try_recv().expect("notification before the response was delivered");
    assert_eq!(n.method, "notifications/message");
    assert!(notes.try_recv().is_err(), "priming events are not notifications");
}
