//! Knob tool_error: echo answers with an isError result (a tool failure, not a JSON-RPC error).
use crate::target_util;

use serde_json::json;
use target_util::start;

#[tokio::test]
async fn tool_error_knob_makes_echo_fail() {
    let target = start().await;
    let (status, _) = target.admin_post("/admin/knobs", &json!({"tool_error": true})).await;
    assert_eq!(status, 200);
    let reply = target
        .request_2026(1, "tools/call", Some("echo"), json!({"name": "echo", "arguments": {"message": "x"}}))
        .await
        .expect("tools/call");
    assert_eq!(reply.status, 200, "{reply:?}");
    let response = reply.response(1);
    assert_eq!(response["result"]["isError"], true, "{response}");

    let (status, knobs) = target.get_path("/admin/knobs").await;
    assert_eq!(status, 200);
    assert!(knobs.contains("\"tool_error\":true"), "{knobs}");

    let reply = target
        .request_2026(2, "tools/call", Some("fail"), json!({"name": "fail", "arguments": {}}))
        .await
        .expect("tools/call fail");
    assert_eq!(reply.response(2)["result"]["isError"], true);
}
