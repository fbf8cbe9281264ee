//! 2026-07-28: server/discover, then tools/call echo with `_meta` and the standard headers;
//! headers that disagree with `_meta` or the body are refused (400, -32020); `ping` and
//! `logging/setLevel` are unknown methods (404, -32601).
use crate::target_util;

use serde_json::json;
use target_util::{V2026, first_text, start};

#[tokio::test]
async fn discover_then_echo_without_session() {
    let target = start().await;

    let reply = target.request_2026(1, "server/discover", None, json!({})).await.expect("discover");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.session_id.is_none(), "2026-07-28 issues no session: {reply:?}");
    let result = reply.response(1)["result"].clone();
    let versions = result["supportedVersions"].as_array().expect("supportedVersions").clone();
    assert!(versions.contains(&json!(V2026)), "{result}");
    assert!(result["capabilities"]["tools"].is_object(), "{result}");

    let reply = target
        .request_2026(2, "tools/call", Some("echo"), json!({"name": "echo", "arguments": {"message": "hi 2026"}}))
        .await
        .expect("tools/call");
    assert_eq!(reply.status, 200, "{reply:?}");
    let result = reply.response(2)["result"].clone();
    assert_eq!(first_text(&result), "hi 2026", "{reply:?}");
    assert_eq!(result["resultType"], "complete", "{reply:?}");
}

#[tokio::test]
async fn mismatched_name_header_is_rejected() {
    let target = start().await;
    let reply = target
        .request_2026(1, "tools/call", Some("fail"), json!({"name": "echo", "arguments": {"message": "x"}}))
        .await
        .expect("tools/call");
    assert_eq!(reply.status, 400, "Mcp-Name must match params.name: {reply:?}");
}

#[tokio::test]
async fn methods_removed_in_2026_are_unknown() {
    let target = start().await;
    for (id, method, params) in [(1, "ping", json!({})), (2, "logging/setLevel", json!({"level": "debug"}))] {
        let reply = target.request_2026(id, method, None, params).await.expect(method);
        assert_eq!(reply.status, 404, "{method} is gone in 2026-07-28: {reply:?}");
        assert_eq!(reply.response(id)["error"]["code"], -32601, "{reply:?}");
    }
}

#[tokio::test]
async fn headers_must_match_meta_and_body() {
    let target = start().await;
    let mut params = json!({"name": "echo", "arguments": {"message": "x"}});
    params["_meta"] = target_util::meta_2026();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (
            "MCP-Protocol-Version differs from _meta",
            &[("MCP-Protocol-Version", "2025-11-25"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")],
        ),
        ("MCP-Protocol-Version missing", &[("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")]),
        (
            "Mcp-Method differs from the body",
            &[("MCP-Protocol-Version", V2026), ("Mcp-Method", "tools/list"), ("Mcp-Name", "echo")],
        ),
        ("Mcp-Method missing", &[("MCP-Protocol-Version", V2026), ("Mcp-Name", "echo")]),
        ("Mcp-Name missing", &[("MCP-Protocol-Version", V2026), ("Mcp-Method", "tools/call")]),
    ];
    for (what, headers) in cases {
        let reply = target.post(headers, &body).await.expect("POST");
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        assert_eq!(reply.response(1)["error"]["code"], -32020, "{what}: {reply:?}");
    }
}
