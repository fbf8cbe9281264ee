//! The `notify` tool's notifications/message reaches the client with the nonce, in both eras;
//! under 2026-07-28 only a request that opted in (`_meta` logLevel at or below info) gets it.
use crate::target_util;

use std::time::Duration;

use serde_json::{Value, json};
use target_util::{start, wait_for_message};

fn is_notify(message: &Value, nonce: &str) -> bool {
    message["method"] == "notifications/message" && message["params"]["data"]["nonce"] == nonce
}

/// A 2026-07-28 `tools/call notify` whose `_meta` carries `logLevel` when given.
async fn notify_2026(target: &target_util::Target, nonce: &str, log_level: Option<&str>) -> target_util::Reply {
    let mut params = json!({"name": "notify", "arguments": {"nonce": nonce}});
    if let Some(level) = log_level {
        params["_meta"][LOG_LEVEL] = json!(level);
    }
    target.request_2026(1, "tools/call", Some("notify"), params).await.expect("tools/call notify")
}

const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

#[tokio::test]
async fn stateless_notification_precedes_result_on_post_stream() {
    let target = start().await;
    let reply = notify_2026(&target, "n-2026", Some("info")).await;
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
async fn stateless_notification_needs_the_log_level_opt_in() {
    let target = start().await;
    for (nonce, level) in [("n-none", None), ("n-warning", Some("warning")), ("n-emergency", Some("emergency"))] {
        let reply = notify_2026(&target, nonce, level).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let result = reply.response(1)["result"].clone();
        assert_eq!(result["isError"], false, "the call itself succeeds: {result}");
        let messages = reply.messages();
        assert!(
            !messages.iter().any(|m| m["method"] == "notifications/message"),
            "no log message for logLevel {level:?} (the tool logs at info): {messages:?}"
        );
    }
    for level in ["debug", "info"] {
        let reply = notify_2026(&target, level, Some(level)).await;
        assert!(reply.messages().iter().any(|m| is_notify(m, level)), "logLevel {level}: {reply:?}");
    }
    // A value that is not a log level is invalid params, not a silent opt-out.
    let reply = notify_2026(&target, "n-bad", Some("loud")).await;
    assert_eq!(reply.response(1)["error"]["code"], -32602, "{reply:?}");
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
