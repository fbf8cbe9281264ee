//! A POST answered as SSE: a notification and a server request arrive before the response.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::StreamKind;
use serde_json::{Value, json};

#[tokio::test]
async fn notifications_and_server_requests_before_the_response() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "sess-1") {
            return resp;
        }
        match r.rpc_method() {
            Some("tools/call") => {
                let id = r.id();
                let body = event(Some("1"), &json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "tok", "progress": 1}}))
                    + &event(Some("2"), &json!({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"}))
                    + &event(Some("3"), &json!({"jsonrpc": "2.0", "id": "srv-2", "method": "sampling/createMessage", "params": {}}))
                    + &event(Some("4"), &result(&id, json!({"content": [{"type": "text", "text": "hi"}], "isError": true})));
                sse_reply(body)
            }
            Some("tools/list") => json_reply(200, result(&r.id(), json!({"tools": [{"name": "echo"}]}))),
            // Answers to server requests.
            None if r.body.get("result").is_some() || r.body.get("error").is_some() => empty(202),
            _ => json_reply(200, rpc_error(&r.id(), -32601, "nope")),
        }
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.headers.insert("authorization", "Bearer secret-token".parse().unwrap());
    let client = client(cfg);
    let info = client.connect().await.expect("connect");
    assert_eq!(info.protocol_version, "2025-11-25");
    assert_eq!(info.session_id.as_deref(), Some("sess-1"));
    assert!(!info.stateless && info.offers_tools && info.resources_subscribe);
    assert!(client.supports_ping());

    let mut notes = client.notifications();
    let tools = client.list_tools().await.expect("tools/list as JSON");
    assert_eq!(tools.len(), 1);
    let r = client.call_tool("echo", json!({"message": "x"}), Some("tok")).await.expect("tools/call as SSE");
    assert!(r.is_error, "isError results are returned, not raised");
    assert_eq!(r.content[0]["text"], "hi");

    let n = tokio::time::timeout(std::time::Duration::from_secs(1), notes.recv()).await.unwrap().unwrap();
    assert_eq!(n.method, "notifications/progress");
    assert_eq!(n.via, StreamKind::PostResponse);
    assert_eq!(client.stream_stats().server_requests_answered, 2);

    let answers: Vec<_> =
        server.received().into_iter().filter(|r| r.rpc_method().is_none() && r.body.get("id").is_some()).collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].body, json!({"jsonrpc": "2.0", "id": "srv-1", "result": {}}));
    assert_eq!(answers[1].body["error"]["code"], -32601);

    for r in server.received().iter().filter(|r| r.method == axum::http::Method::POST) {
        assert_eq!(r.header("accept").as_deref(), Some("application/json, text/event-stream"));
        assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
        assert_eq!(r.header("authorization").as_deref(), Some("Bearer secret-token"));
        assert!(r.header("origin").is_none());
        if r.rpc_method() != Some("initialize") && r.rpc_method() != Some("server/discover") {
            assert_eq!(r.header("mcp-session-id").as_deref(), Some("sess-1"), "{:?}", r.body);
            assert_eq!(r.header("mcp-protocol-version").as_deref(), Some("2025-11-25"));
        }
    }
    let call = &server.posts_of("tools/call")[0];
    assert_eq!(call.body["params"]["_meta"]["progressToken"], "tok");
    assert!(call.header("mcp-method").is_none(), "2025 era sends no Mcp-Method");

    client.close().await.expect("close");
    let deletes: Vec<_> = server.received().into_iter().filter(|r| r.method == axum::http::Method::DELETE).collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].header("mcp-session-id").as_deref(), Some("sess-1"));
    let _: Value = Value::Null;
}
