//! The 2026-07-28 revision: `server/discover`, `_meta` and the `MCP-Protocol-Version`,
//! `Mcp-Method` and `Mcp-Name` headers on every POST; no ping; an `InputRequiredResult` is
//! answered and the request re-sent when the client declared what it asks for (bounded in
//! rounds), and an error otherwise.
use crate::client_support;

use client_support::*;
use mcp_canary::mcp::protocol::{INPUT_REQUIRED_CODE, MAX_INPUT_ROUNDS};
use mcp_canary::mcp::{ErrorType, LATEST_PROTOCOL, ServerRequestHandler};
use serde_json::{Value, json};

async fn stateless_server() -> Scripted {
    serve(|r| async move {
        let id = r.id();
        let complete = |v: Value| {
            let mut v = v;
            v["resultType"] = json!("complete");
            json_reply(200, result(&id, v))
        };
        match r.rpc_method() {
            Some("server/discover") => complete(json!({
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}, "resources": {}, "prompts": {}, "completions": {}},
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern", "version": "2.0"}}
            })),
            Some("tools/call") if r.body["params"]["name"] == "ask" => {
                json_reply(200, result(&id, json!({"resultType": "input_required", "inputRequests": {"a": {}}})))
            }
            // Asks for a confirmation until it gets one; then echoes what it got.
            Some("tools/call") if r.body["params"]["name"] == "confirm" => {
                let p = &r.body["params"];
                match p.get("inputResponses") {
                    Some(answers) => complete(json!({"content": [], "structuredContent": {
                        "answers": answers, "state": p["requestState"], "arguments": p["arguments"]}})),
                    None => json_reply(
                        200,
                        result(
                            &id,
                            json!({"resultType": "input_required",
                        "inputRequests": {"ok": {"method": "elicitation/create",
                            "params": {"message": "Sure?", "requestedSchema": {"type": "object"}}}},
                        "requestState": "round-1"}),
                        ),
                    ),
                }
            }
            Some("tools/call") if r.body["params"]["name"] == "forever" => json_reply(
                200,
                result(
                    &id,
                    json!({"resultType": "input_required",
                    "inputRequests": {"r": {"method": "roots/list"}}}),
                ),
            ),
            Some("tools/call") => sse_reply(event(
                None,
                &result(&id, json!({"resultType": "complete", "content": [], "structuredContent": {"ok": 1}})),
            )),
            Some("resources/read") => complete(json!({"contents": [{"uri": "demo://a", "text": "x"}]})),
            Some("prompts/get") => complete(json!({"messages": []})),
            Some("tools/list") => json_reply(200, result(&id, json!({"tools": []}))),
            _ => json_reply(404, rpc_error(&id, -32601, "Method not found")),
        }
    })
    .await
}

#[tokio::test]
async fn headers_and_meta_on_every_post() {
    let server = stateless_server().await;
    let client = client(config(&server.url));
    let info = client.connect().await.expect("discover");
    assert!(info.stateless);
    assert_eq!(info.protocol_version, LATEST_PROTOCOL);
    assert_eq!((info.name.as_str(), info.version.as_str()), ("modern", "2.0"));
    assert!(info.offers_completions && info.session_id.is_none());
    assert!(!client.supports_ping());

    assert!(client.list_tools().await.expect("list").is_empty());
    let r = client.call_tool("echo", json!({"m": 1}), Some("p1")).await.expect("call");
    assert_eq!(r.structured, Some(json!({"ok": 1})));
    client.read_resource("demo://a").await.expect("read");
    client.get_prompt("greet", Value::Null).await.expect("prompt");
    assert!(!client.open_stream().await.expect("no listen stream"), "404 on subscriptions/listen means none");

    let expect_name = [("tools/call", "echo"), ("resources/read", "demo://a"), ("prompts/get", "greet")];
    let posts = server.received();
    assert!(posts.len() >= 6);
    for p in &posts {
        let method = p.rpc_method().unwrap();
        assert_eq!(p.header("mcp-protocol-version").as_deref(), Some("2026-07-28"), "{method}");
        assert_eq!(p.header("mcp-method").as_deref(), Some(method));
        assert!(p.header("mcp-session-id").is_none());
        let meta = &p.body["params"]["_meta"];
        assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28", "{method}");
        assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
        assert_eq!(meta["io.modelcontextprotocol/clientInfo"]["name"], "client-test");
        let want = expect_name.iter().find(|(m, _)| *m == method).map(|(_, n)| n.to_string());
        assert_eq!(p.header("mcp-name"), want, "{method}");
    }
    let call = &server.posts_of("tools/call")[0];
    assert_eq!(call.body["params"]["_meta"]["progressToken"], "p1", "progress token kept beside the _meta keys");
    client.close().await.expect("close");
    assert!(!server.received().iter().any(|r| r.method == axum::http::Method::DELETE), "no DELETE when stateless");
}

#[tokio::test]
async fn input_required_is_a_classified_error() {
    let server = stateless_server().await;
    let client = client(config(&server.url));
    client.connect().await.expect("discover");
    let e = client.call_tool("ask", json!({}), None).await.unwrap_err();
    assert_eq!(e.error_type(), ErrorType::JsonrpcError);
    assert_eq!(e.rpc_code(), Some(INPUT_REQUIRED_CODE));
    assert!(e.to_string().contains("input_required"));
}

#[tokio::test]
async fn input_requests_are_answered_when_declared_and_the_request_resent() {
    let server = stateless_server().await;
    let mut cfg = config(&server.url);
    cfg.capabilities = json!({"elicitation": {}, "roots": {}});
    cfg.server_requests = ServerRequestHandler::new(|method: &str, params: &Value| match method {
        "elicitation/create" => Ok(json!({"action": "accept", "content": {"asked": params["message"]}})),
        "roots/list" => Ok(json!({"roots": []})),
        _ => Err((-32601, "Method not found".into())),
    });
    let client = client(cfg);
    client.connect().await.expect("discover");
    let r = client.call_tool("confirm", json!({"x": 1}), None).await.expect("answered and re-sent");
    let got = r.structured.expect("structured");
    assert_eq!(got["answers"], json!({"ok": {"action": "accept", "content": {"asked": "Sure?"}}}));
    assert_eq!((got["state"].as_str(), &got["arguments"]), (Some("round-1"), &json!({"x": 1})));
    let calls = server.posts_of("tools/call");
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].id(), calls[1].id(), "the retry is a new request");
    assert_eq!(calls[1].header("mcp-name").as_deref(), Some("confirm"));
    assert_eq!(client.stream_stats().server_requests_answered, 1);

    // A server that never stops asking: 1 + MAX_INPUT_ROUNDS requests, then an error.
    let e = client.call_tool("forever", json!({}), None).await.unwrap_err();
    assert_eq!((e.error_type(), e.rpc_code()), (ErrorType::JsonrpcError, Some(INPUT_REQUIRED_CODE)));
    assert!(e.to_string().contains("still asking after 4 rounds"), "{e}");
    let forever = server.posts_of("tools/call").len() - 2;
    assert_eq!(forever, 1 + MAX_INPUT_ROUNDS);

    // Without the capability declared: an error at once, nothing re-sent.
    let plain = client_support::client(config(&server.url));
    plain.connect().await.expect("discover");
    let e = plain.call_tool("confirm", json!({}), None).await.unwrap_err();
    assert_eq!(e.rpc_code(), Some(INPUT_REQUIRED_CODE));
    assert!(e.to_string().contains("did not declare elicitation"), "{e}");
    assert_eq!(server.posts_of("tools/call").len(), 2 + forever + 1);
}
