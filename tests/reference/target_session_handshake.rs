//! 2025 session handshake: initialize → initialized → tools/list lists the six tools → echo.
use crate::target_util;

use serde_json::json;
use target_util::{first_text, start};

#[tokio::test]
async fn handshake_lists_tools_and_echoes() {
    let target = start().await;
    let session = target.initialize_2025().await;

    let reply = target.request_2025(&session, 1, "tools/list", json!({})).await.expect("tools/list");
    assert_eq!(reply.status, 200, "{reply:?}");
    let tools = reply.response(1)["result"]["tools"].clone();
    let mut names: Vec<String> =
        tools.as_array().expect("tools array").iter().map(|t| t["name"].as_str().unwrap_or_default().into()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "broadcast",
            "echo",
            "fail",
            "get-roots-list",
            "notify",
            "progress",
            "slow",
            "trigger-elicitation-request",
            "trigger-sampling-request"
        ]
    );

    let reply = target
        .request_2025(&session, 2, "tools/call", json!({"name": "echo", "arguments": {"message": "canary"}}))
        .await
        .expect("tools/call echo");
    let result = reply.response(2)["result"].clone();
    assert_eq!(first_text(&result), "canary", "{reply:?}");
    assert_ne!(result["isError"], json!(true));

    let reply = target
        .request_2025(&session, 3, "resources/read", json!({"uri": "canary://static/hello"}))
        .await
        .expect("resources/read");
    assert_eq!(reply.response(3)["result"]["contents"][0]["text"], "hello from mcp-canary", "{reply:?}");

    let reply = target
        .request_2025(&session, 4, "prompts/get", json!({"name": "greeting", "arguments": {"name": "canary"}}))
        .await
        .expect("prompts/get");
    assert!(
        reply.response(4)["result"]["messages"][0]["content"]["text"].as_str().is_some_and(|t| t.contains("canary"))
    );
}
