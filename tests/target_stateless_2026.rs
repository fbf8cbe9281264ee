//! 2026-07-28: server/discover, then tools/call echo with `_meta` and the standard headers.
#[path = "common/target_util.rs"]
mod target_util;

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
