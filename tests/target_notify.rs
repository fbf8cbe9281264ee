//! The `notify` tool's notifications/message reaches the client with the nonce, in both eras.
#[path = "common/target_util.rs"]
mod target_util;

use std::time::Duration;

use serde_json::{Value, json};
use target_util::{start, wait_for_message};

fn is_notify(message: &Value, nonce: &str) -> bool {
    message["method"] == "notifications/message" && message["params"]["data"]["nonce"] == nonce
}

#[tokio::test]
async fn stateless_notification_precedes_result_on_post_stream() {
    let target = start().await;
    let reply = target
        .request_2026(1, "tools/call", Some("notify"), json!({"name": "notify", "arguments": {"nonce": "n-2026"}}))
        .await
        .expect("tools/call notify");
    assert!(reply.content_type.starts_with("text/event-stream"), "{reply:?}");
    let messages = reply.messages();
    let notify = messages.iter().position(|m| is_notify(m, "n-2026")).expect("notification on the POST stream");
    let result = messages.iter().position(|m| m["id"] == 1).expect("result on the POST stream");
    assert!(notify < result, "notification before result: {messages:?}");
    let data = &messages[notify]["params"]["data"];
    assert!(data["sent_at_ms"].as_u64().is_some_and(|ms| ms > 1_600_000_000_000), "{data}");
    assert_eq!(data["instance"], target.handle.instance());
}

#[tokio::test]
async fn session_notification_arrives_on_get_stream() {
    let target = start().await;
    let session = target.initialize_2025().await;
    let stream = target.open_get_stream(&session).await;
    let reply = target
        .request_2025(&session, 1, "tools/call", json!({"name": "notify", "arguments": {"nonce": "n-2025"}}))
        .await
        .expect("tools/call notify");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.response(1);
    let seen = wait_for_message(stream, Duration::from_secs(5), |m| is_notify(m, "n-2025")).await;
    assert!(seen.is_some(), "notifications/message with the nonce on the GET stream");
}
