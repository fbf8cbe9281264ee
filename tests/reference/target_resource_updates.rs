//! resources/subscribe records the URI; admin notify-resources sends resources/updated on the GET stream.
use crate::target_util;

use std::time::Duration;

use serde_json::json;
use target_util::{start, wait_for_message};

#[tokio::test]
async fn subscribed_uri_gets_updated_notification() {
    let target = start().await;
    let session = target.initialize_2025().await;
    let reply = target
        .request_2025(&session, 1, "resources/subscribe", json!({"uri": "canary://static/hello"}))
        .await
        .expect("subscribe");
    assert!(reply.response(1).get("result").is_some(), "{reply:?}");
    let stream = target.open_get_stream(&session).await;

    let (status, body) = target.admin_post("/admin/notify-resources", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["sent"], 1, "{body}");
    let seen = wait_for_message(stream, Duration::from_secs(5), |m| {
        m["method"] == "notifications/resources/updated" && m["params"]["uri"] == "canary://static/hello"
    })
    .await;
    assert!(seen.is_some(), "resources/updated on the GET stream");

    // A dropped session's subscription is pruned on the next notify.
    target.handle.expire_sessions().await;
    let (_, body) = target.admin_post("/admin/notify-resources", &json!({})).await;
    assert_eq!(body["sent"], 0, "{body}");
}
