//! A 2025 POST stream cut mid-request is resumed with GET + Last-Event-ID and yields the result.
use crate::target_util;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use target_util::{V2025, start, wait_for_message};

#[tokio::test]
async fn cut_stream_resumes_with_last_event_id() {
    let target = start().await;
    let session = target.initialize_2025().await;
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 800}}});
    let response = target
        .client
        .post(target.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &session)
        .header("MCP-Protocol-Version", V2025)
        .json(&body)
        .send()
        .await
        .expect("POST slow");
    assert_eq!(response.status(), 200);

    // Read the priming event (it carries `id:` and `retry:`), then drop the stream.
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !buffer.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("priming in time");
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("stream open").expect("chunk")));
    }
    drop(stream);
    let event_id = buffer
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("id:").map(|id| id.trim().to_owned()))
        .expect("priming event id");
    assert!(buffer.contains("retry:"), "{buffer}");

    let resumed = target
        .client
        .get(target.mcp_url())
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", &session)
        .header("MCP-Protocol-Version", V2025)
        .header("Last-Event-ID", &event_id)
        .send()
        .await
        .expect("resume GET");
    assert_eq!(resumed.status(), 200);
    let result = wait_for_message(resumed, Duration::from_secs(5), |m| m["id"] == 5).await;
    let result = result.expect("result replayed on the resumed stream");
    assert!(result["result"]["content"][0]["text"].as_str().is_some_and(|t| t.starts_with("burned")), "{result}");
}
