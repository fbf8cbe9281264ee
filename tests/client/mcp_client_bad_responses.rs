//! Bad answers are classified: HTTP status first, then content type, then body.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::{ErrorType, McpError};
use serde_json::json;

/// Connect to a server that answers the handshake and then `tools/list` with `reply`.
async fn list_tools_against(reply: fn(serde_json::Value) -> axum::response::Response) -> McpError {
    let server = serve(move |r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        reply(r.id())
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.expect("connect");
    client.list_tools().await.expect_err("bad answer must fail")
}

#[tokio::test]
async fn html_500_page_is_http_5xx() {
    let e = list_tools_against(|_| {
        raw_reply(500, "text/html", "<html><body><h1>Internal Server Error</h1>".to_string() + &"x".repeat(5000))
    })
    .await;
    assert_eq!(e.error_type(), ErrorType::Http5xx);
    assert_eq!(e.http_status(), Some(500));
    assert!(e.to_string().len() < 260, "short snippet: {e}");
}

#[tokio::test]
async fn garbage_json_is_invalid_json() {
    let e =
        list_tools_against(|_| raw_reply(200, "application/json", "{\"jsonrpc\": \"2.0\", \"id\": 2, \"resu")).await;
    assert_eq!(e.error_type(), ErrorType::InvalidJson, "{e}");
    let e = list_tools_against(|_| json_reply(200, json!({"hello": "world"}))).await;
    assert_eq!(e.error_type(), ErrorType::InvalidJson, "not JSON-RPC: {e}");
}

#[tokio::test]
async fn wrong_content_type() {
    let e = list_tools_against(|_| raw_reply(200, "text/plain", "hello")).await;
    assert_eq!(e.error_type(), ErrorType::ContentType, "{e}");
}

#[tokio::test]
async fn jsonrpc_error_keeps_code() {
    let e = list_tools_against(|id| json_reply(200, rpc_error(&id, -32602, "bad params"))).await;
    assert_eq!(e.error_type(), ErrorType::JsonrpcError);
    assert_eq!(e.rpc_code(), Some(-32602));
    let e = list_tools_against(|_| json_reply(200, rpc_error(&json!("server-error"), -32603, "boom"))).await;
    assert_eq!(e.rpc_code(), Some(-32603), "error with a foreign id still answers this POST: {e}");
}

#[tokio::test]
async fn truncated_sse_is_invalid_sse() {
    // Ends mid-event without resumption (no event ids to resume from).
    let e = list_tools_against(|_| sse_reply("data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[]")).await;
    assert_eq!(e.error_type(), ErrorType::InvalidSse, "{e}");
}

#[tokio::test]
async fn forbidden_is_auth() {
    let e = list_tools_against(|_| raw_reply(403, "text/plain", "Forbidden")).await;
    assert_eq!(e.error_type(), ErrorType::Auth);
}
