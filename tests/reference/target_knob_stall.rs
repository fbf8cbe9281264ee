//! Knob stall: MCP requests hang (the client times out) until the knob is cleared.
use crate::target_util;

use std::time::Duration;

use mcp_canary::reference::KnobsPatch;
use serde_json::json;
use target_util::{meta_2026, start};

#[tokio::test]
async fn stalled_request_times_out_then_resumes_when_cleared() {
    let target = start().await;
    let knobs = target.handle.knobs();
    knobs.apply(&KnobsPatch { stall: Some(true), ..Default::default() }).expect("stall");

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta_2026()}});
    let request = || {
        target
            .client
            .post(target.mcp_url())
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "server/discover")
            .json(&body)
    };
    let err = request().timeout(Duration::from_millis(500)).send().await.expect_err("stalled request must time out");
    assert!(err.is_timeout(), "{err}");

    // A request already waiting is released when the knob is cleared.
    let waiting = tokio::spawn(request().timeout(Duration::from_secs(5)).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "still stalled");
    knobs.apply(&KnobsPatch { stall: Some(false), ..Default::default() }).expect("unstall");
    let response = waiting.await.expect("join").expect("released request");
    assert_eq!(response.status(), 200);
}
